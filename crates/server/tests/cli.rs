//! The `switchboard` binary as an operator runs it: `config check`, and
//! `serve --config FILE` in demo mode, with its whole output checked for
//! secrets and a graceful stop on SIGTERM.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn write_config(dir: &tempfile::TempDir, body: &str) -> std::path::PathBuf {
    let path = dir.path().join("switchboard.toml");
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn config_check_names_the_bad_key_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(&dir, "[server]\nlisten = \"not-an-address\"\n");
    let out = Command::new(BIN)
        .args(["--config", cfg.to_str().unwrap(), "config", "check"])
        .current_dir(ROOT)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("server.listen"), "{stderr}");

    let cfg = write_config(
        &dir,
        "[simulators]\nenabled = true\n[providers.tk]\nkind = \"talkover\"\n",
    );
    let out = Command::new(BIN)
        .args(["--config", cfg.to_str().unwrap(), "config", "check"])
        .current_dir(ROOT)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("providers.tk.token"));

    let cfg = write_config(
        &dir,
        "[simulators]\nenabled = true\n[providers.tk]\nkind = \"carrier-pigeon\"\ntoken = \"x\"\n",
    );
    let out = Command::new(BIN)
        .args(["--config", cfg.to_str().unwrap(), "config", "check"])
        .current_dir(ROOT)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("providers.tk.kind"));

    let out = Command::new(BIN)
        .args(["config", "check"])
        .env("SWITCHBOARD_CONFIG", format!("{ROOT}/config/default.toml"))
        .env("SWITCHBOARD_SERVER__LISTEN", "nope")
        .current_dir(ROOT)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "environment overrides the file");
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.listen"));

    let out = Command::new(BIN)
        .args(["--config", "config/default.toml", "config", "check"])
        .current_dir(ROOT)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn serve_keeps_secrets_out_of_output_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sb.db");
    let token = "ops-token-0123456789";
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()));
    let cfg = write_config(
        &dir,
        &format!(
            r#"
[server]
listen = "127.0.0.1:0"
[database]
url = "sqlite://{db}?mode=rwc"
[[auth.tokens]]
name = "ops"
tenant = "ops"
token_sha256 = "{hash}"
[providers.talkover]
kind = "talkover"
token = "talq_PROVIDER_SECRET"
[simulators]
enabled = true
[secrets]
demo_key_file = "{key}"
[log]
level = "trace"
format = "json"
"#,
            db = db.display(),
            key = dir.path().join("demo.key").display(),
        ),
    );

    let mut child = Command::new(BIN)
        .args(["--config", cfg.to_str().unwrap(), "serve"])
        .current_dir(ROOT)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("Switchboard listening on ") {
                let _ = tx.send(addr.to_owned());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let mut stderr = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let Ok(base) = rx.recv_timeout(Duration::from_secs(60)) else {
        let _ = child.kill();
        panic!(
            "server did not start:\n{}\n{}",
            reader.join().unwrap(),
            err_reader.join().unwrap()
        );
    };

    let client = reqwest::Client::new();
    let body = json!({
        "provider": "talkover",
        "account": "9fbef0b7-8d4e-4a08-9207-66c22155721d",
        "url": "https://billing.example.com/hooks",
        "events": ["call.ended"],
        "auth": {"type": "bearer", "token": "CALLBACK_BEARER_SECRET"},
        "signing_secret": "SIGNING_SECRET_VALUE"
    });
    let created = client
        .post(format!("{base}/v1/subscriptions"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let sub: serde_json::Value = created.json().await.unwrap();
    let id = sub["id"].as_str().unwrap();
    let patched = client
        .patch(format!("{base}/v1/subscriptions/{id}"))
        .bearer_auth(token)
        .json(&json!({"signing_secret": "ROTATED_SECRET_VALUE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let mut bad = body.clone();
    bad["timeout_seconds"] = json!(999);
    let rejected = client
        .post(format!("{base}/v1/subscriptions"))
        .bearer_auth(token)
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(rejected.status(), 422);
    let unauth = client
        .get(format!("{base}/v1/subscriptions"))
        .bearer_auth("WRONG_TOKEN_SECRET")
        .send()
        .await
        .unwrap();
    assert_eq!(unauth.status(), 401);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits 0, got {exit:?}");
    let out = reader.join().unwrap() + &err_reader.join().unwrap();
    assert!(
        out.contains("generated a data-encryption key"),
        "demo mode says so"
    );
    let key_file = dir.path().join("demo.key");
    assert!(key_file.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the key file is private");
    }
    // The database (and its WAL) holds no secret in plaintext.
    let mut stored = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        if let Ok(bytes) = std::fs::read(format!("{}{suffix}", db.display())) {
            stored.extend(bytes);
        }
    }
    assert!(stored.len() > 1000, "the database was written");
    let stored = String::from_utf8_lossy(&stored);
    assert!(stored.contains("sub_"), "ids are stored in the clear");
    for secret in [
        "CALLBACK_BEARER_SECRET",
        "SIGNING_SECRET_VALUE",
        "ROTATED_SECRET_VALUE",
    ] {
        assert!(
            !stored.contains(secret),
            "`{secret}` is in the database file"
        );
    }
    assert!(out.contains("\"request_id\""), "logs carry request ids");
    for secret in [
        token,
        "talq_PROVIDER_SECRET",
        "CALLBACK_BEARER_SECRET",
        "SIGNING_SECRET_VALUE",
        "ROTATED_SECRET_VALUE",
        "WRONG_TOKEN_SECRET",
    ] {
        assert!(
            !out.contains(secret),
            "`{secret}` appeared in the output:\n{out}"
        );
    }
}
