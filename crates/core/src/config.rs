//! Shared parsing of a provider's `[providers.<key>]` table: every adapter
//! deserializes its own typed config from it, and errors carry the key path.

use serde::de::DeserializeOwned;

/// Deserializes a provider table; the error names the offending key
/// (`token: missing field`), so the caller can prefix `providers.<key>.`.
pub fn parse_table<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.inner().to_string()
        } else {
            format!("{path}: {}", e.inner())
        }
    })
}
