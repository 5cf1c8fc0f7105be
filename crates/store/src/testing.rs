//! Backends for tests: a fresh SQLite file always, and a fresh Postgres
//! schema when `SWITCHBOARD_TEST_POSTGRES_URL` is set (CI sets it). When it
//! is not set, the skip is printed so nobody mistakes a green run for a
//! Postgres-tested one.

use crate::{Cipher, SecretKey, StoreOptions};

/// A cipher with one fresh random key.
pub fn cipher() -> Cipher {
    Cipher::new(vec![SecretKey::generate("test").0]).expect("one key")
}

/// Environment variable naming the Postgres server for tests.
pub const POSTGRES_ENV: &str = "SWITCHBOARD_TEST_POSTGRES_URL";

/// A unique lower-case suffix for file and schema names.
fn unique() -> String {
    ulid::Ulid::new().to_string().to_lowercase()
}

/// Options for a new, empty SQLite database file in the temp directory.
pub fn sqlite() -> StoreOptions {
    let path = std::env::temp_dir().join(format!("switchboard-test-{}.db", unique()));
    StoreOptions::new(format!("sqlite://{}?mode=rwc", path.display()), cipher())
}

/// Options for a new, empty Postgres schema, or `None` (with a printed
/// notice) when no test server is configured.
pub fn postgres() -> Option<StoreOptions> {
    match std::env::var(POSTGRES_ENV) {
        Ok(url) if !url.is_empty() => {
            let mut o = StoreOptions::new(url, cipher());
            o.pg_schema = Some(format!("t_{}", unique()));
            o.max_connections = 4;
            Some(o)
        }
        _ => {
            eprintln!("Postgres skipped: {POSTGRES_ENV} is not set");
            None
        }
    }
}

/// Every backend a test should run against: `("sqlite", …)` and, when
/// configured, `("postgres", …)`.
pub fn backends() -> Vec<(&'static str, StoreOptions)> {
    let mut all = vec![("sqlite", sqlite())];
    if let Some(pg) = postgres() {
        all.push(("postgres", pg));
    }
    all
}
