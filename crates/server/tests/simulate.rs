//! `switchboard simulate` as a load run or a developer starts it: the
//! simulators of the configured providers in a process of their own, their
//! addresses printed and written to the URL file, a real request answered,
//! and a clean stop on SIGTERM.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const AGENT: &str = "3c1d2a4e-5f60-4b7a-8c9d-0e1f2a3b4c5d";

/// Kills the child when a failed assertion unwinds past it.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn simulate_serves_each_provider_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("switchboard.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[providers.voice]
kind = "talkover"
token = "talq_simulate_test"
[providers.texts]
kind = "account-v2"
api_key_id = "sim-key-id"
api_secret_key = "sim-secret"
[simulators]
enabled = true
[simulators.accounts]
talkover = ["{AGENT}"]
"#
        ),
    )
    .unwrap();
    let urls_file = dir.path().join("urls.json");
    let mut child = KillOnDrop(
        Command::new(BIN)
            .args(["--config", cfg.to_str().unwrap(), "simulate"])
            .args(["--listen", "127.0.0.1:0", "--urls-file"])
            .arg(&urls_file)
            .current_dir(ROOT)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (tx, rx) = mpsc::channel::<(String, String)>();
    let stdout = child.0.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some((key, url)) = line.split_once(' ') {
                let _ = tx.send((key.to_owned(), url.to_owned()));
            }
        }
    });
    let mut printed = Vec::new();
    while printed.len() < 2 {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => printed.push(line),
            Err(_) => {
                let _ = child.0.kill();
                let mut err = String::new();
                let _ = child.0.stderr.take().unwrap().read_to_string(&mut err);
                panic!("simulate printed {printed:?}, then nothing:\n{err}");
            }
        }
    }
    printed.sort();
    assert_eq!(printed[0].0, "texts");
    assert_eq!(printed[1].0, "voice");
    let talkover = &printed[1].1;
    assert!(
        talkover.starts_with("http://127.0.0.1:") && talkover.ends_with("/api/v1"),
        "{talkover}"
    );
    assert_ne!(
        printed[0].1, printed[1].1,
        "each kind has its own socket on port 0"
    );

    // The URL file was written before the lines were printed.
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&urls_file).unwrap()).unwrap();
    assert_eq!(file["voice"], talkover.as_str());
    assert_eq!(file["texts"], printed[0].1.as_str());

    let client = reqwest::Client::new();
    let answer = client
        .get(format!("{talkover}/agents/{AGENT}/webhooks"))
        .bearer_auth("talq_simulate_test")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "the configured token is accepted");
    let refused = client
        .get(format!("{talkover}/agents/{AGENT}/webhooks"))
        .bearer_auth("talq_someone_else")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "other tokens are not");

    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.0.wait().unwrap();
    assert!(exit.success(), "SIGTERM stops it cleanly, got {exit:?}");
    reader.join().unwrap();
}

#[test]
fn simulate_without_providers_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("switchboard.toml");
    std::fs::write(&cfg, "[simulators]\nenabled = true\n").unwrap();
    let out = Command::new(BIN)
        .args(["--config", cfg.to_str().unwrap(), "simulate"])
        .current_dir(ROOT)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("providers"), "{stderr}");
}
