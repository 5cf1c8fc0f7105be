//! Shared by the relay's integration tests: verification of deliveries by
//! the independent Python library `standardwebhooks` (PyPI, 1.1.0), through
//! `tests/verify_delivery.py`.
//!
//! Without the library the calling test reports a skip, unless
//! `SWITCHBOARD_REQUIRE_PYTHON_CLIENT=1` (set by CI, which installs it), in
//! which case it fails.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

// Relative to the crate that includes this module (the relay crate, or
// the server's tests through `#[path]`).
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../relay/tests/verify_delivery.py"
);
const REQUIRE: &str = "SWITCHBOARD_REQUIRE_PYTHON_CLIENT";

/// One delivery for the Python verifier.
pub struct Case {
    /// The `whsec_…` text.
    pub secret: String,
    /// The delivery's headers, as received.
    pub headers: BTreeMap<String, String>,
    /// The exact body bytes.
    pub body: Vec<u8>,
    /// Whether the body is JSON (the library then parses it).
    pub json: bool,
}

/// Whether the library can be imported; `Err` says why not.
fn library_installed() -> Result<(), String> {
    match Command::new("python3")
        .args(["-c", "import standardwebhooks"])
        .output()
    {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
        Err(e) => Err(format!("cannot run python3: {e}")),
    }
}

/// Each case's verdict from the Python library: `Ok(envelope id)` (None
/// for a non-JSON body) or `Err(the library's complaint)`. `None` when
/// the library is missing and not required (the skip is reported).
pub fn python_verify(cases: &[Case]) -> Option<Vec<Result<Option<String>, String>>> {
    if let Err(why) = library_installed() {
        assert!(
            std::env::var(REQUIRE).as_deref() != Ok("1"),
            "{REQUIRE}=1 but the Python package standardwebhooks is not importable: {why}"
        );
        // Straight to the process's stderr: the harness captures `eprintln!`.
        let _ = writeln!(
            std::io::stderr(),
            "\n*** Python standardwebhooks not installed; skipped (pip install standardwebhooks==1.1.0) ***\n{why}"
        );
        return None;
    }
    let input: Vec<Value> = cases
        .iter()
        .map(|c| {
            json!({
                "secret": c.secret,
                "headers": c.headers,
                "body_b64": STANDARD.encode(&c.body),
                "json": c.json,
            })
        })
        .collect();
    let mut child = Command::new("python3")
        .arg(SCRIPT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&serde_json::to_vec(&input).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "verify_delivery.py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts: Vec<_> = stdout
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            if v["ok"] == true {
                Ok(v["id"].as_str().map(str::to_owned))
            } else {
                Err(v["error"].as_str().unwrap_or_default().to_owned())
            }
        })
        .collect();
    assert_eq!(verdicts.len(), cases.len(), "{stdout}");
    Some(verdicts)
}

/// Header map of an `http` request or response, names lower-cased, for
/// the verifier (multi-valued headers are not part of the contract).
pub fn header_map(headers: &http::HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect()
}
