//! The served `/openapi.json` is something independent tools accept and
//! clients can be generated from: `openapi-spec-validator` validates it,
//! `openapi-python-client` generates a client from it without dropping
//! anything, and `tests/openapi_client/drive.py` drives the whole API
//! through that generated client against a real server on port 0 whose
//! four providers are simulators. What the script leaves behind is then
//! read from the simulators. Runs on SQLite and, when configured, Postgres.
//!
//! Without the Python packages (`pip install openapi-spec-validator
//! openapi-python-client`) the test reports a skip, unless
//! `SWITCHBOARD_REQUIRE_PYTHON_CLIENT=1` (set by CI, which installs them),
//! in which case it fails.

mod rig;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output};

use rig::*;
use serde_json::{Value, json};
use switchboard_sim::bird::DEFAULT_WORKSPACE;
use switchboard_sim::talkover::DEFAULT_AGENT;
use switchboard_sim::telegent::DEFAULT_ACCOUNT;
use switchboard_store::StoreOptions;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/openapi_client/drive.py");
const REQUIRE: &str = "SWITCHBOARD_REQUIRE_PYTHON_CLIENT";

/// `python3` that talks to loopback directly, whatever proxy is set.
fn python() -> Command {
    let mut cmd = Command::new("python3");
    cmd.env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
    cmd
}

/// Whether the validator, the generator and what generated clients import
/// are installed; `Err` says why not.
fn tools_installed() -> Result<(), String> {
    let imports = "import openapi_spec_validator, openapi_python_client, httpx, attrs";
    match python().args(["-c", imports]).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
        Err(e) => Err(format!("cannot run python3: {e}")),
    }
}

/// Runs `cmd` to completion off the async runtime (the server under test
/// answers on it meanwhile).
async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("python3 runs"))
        .await
        .unwrap()
}

/// stdout and stderr, for messages.
fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn a_generated_python_client_drives_the_whole_api() {
    if let Err(why) = tools_installed() {
        assert!(
            std::env::var(REQUIRE).as_deref() != Ok("1"),
            "{REQUIRE}=1 but openapi-spec-validator / openapi-python-client are not importable: {why}"
        );
        // Straight to the process's stderr: the test harness captures
        // `eprintln!`, and a skip must be seen.
        let _ = writeln!(
            std::io::stderr(),
            "\n*** openapi-spec-validator / openapi-python-client not installed; skipped \
             (pip install openapi-spec-validator openapi-python-client) ***\n{why}"
        );
        return;
    }
    for (name, store) in switchboard_store::testing::backends() {
        eprintln!("backend: {name}");
        generated_client(&store).await;
    }
}

async fn generated_client(store: &StoreOptions) {
    let rig = Rig::start(RigOpts::new(store.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let doc = reqwest::get(format!("{}/openapi.json", rig.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &doc).unwrap();

    validate(&file).await;
    let client_dir = dir.path().join("client");
    generate(&file, &client_dir).await;

    let accounts = json!({
        "talkover": DEFAULT_AGENT,
        "bird": DEFAULT_WORKSPACE,
        "telegent": DEFAULT_ACCOUNT,
    });
    let mut cmd = python();
    cmd.arg(SCRIPT)
        .arg(&client_dir)
        .arg(&rig.base)
        .arg(accounts.to_string())
        .env("DRIVE_TOKEN", TOKEN)
        .env("DRIVE_ADMIN_TOKEN", ADMIN);
    let out = run(cmd).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the script failed ({}):\n{}",
        out.status,
        text(&out)
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
    assert!(!stdout.contains("FAILED"), "{stdout}");

    // The script deleted everything it created: each provider was really
    // written to, and holds nothing now.
    for provider in PROVIDERS {
        let answered = rig
            .requests(provider)
            .iter()
            .filter(|r| r.method != "GET" && r.status.is_some_and(|s| s < 300))
            .count();
        assert!(
            answered >= 2,
            "{provider} was not created at and deleted from"
        );
    }
    assert_eq!(rig.talkover.webhooks(DEFAULT_AGENT), Vec::<Value>::new());
    assert_eq!(rig.telegent.webhooks(DEFAULT_ACCOUNT), Vec::<Value>::new());
    assert_eq!(
        rig.bird.subscriptions(DEFAULT_WORKSPACE),
        Vec::<Value>::new()
    );
    let sendblue = rig.sendblue.document();
    for bucket in ["receive", "outbound"] {
        assert_eq!(sendblue[bucket], json!([]), "sendblue {bucket}: {sendblue}");
    }
}

/// `openapi-spec-validator FILE` accepts the document.
async fn validate(file: &Path) {
    let mut cmd = python();
    cmd.args(["-m", "openapi_spec_validator"]).arg(file);
    let out = run(cmd).await;
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains(": OK"),
        "openapi-spec-validator refused /openapi.json:\n{}",
        text(&out)
    );
}

/// `openapi-python-client generate` builds a client into `dir`, with no
/// warning: the generator's warnings are how it reports an endpoint or a
/// model it left out.
async fn generate(file: &Path, dir: &Path) {
    let mut cmd = python();
    cmd.args(["-m", "openapi_python_client", "generate", "--path"])
        .arg(file)
        .arg("--output-path")
        .arg(dir);
    let out = run(cmd).await;
    let all = text(&out);
    assert!(out.status.success(), "openapi-python-client failed:\n{all}");
    assert!(
        !all.to_ascii_lowercase().contains("warning"),
        "openapi-python-client left something out:\n{all}"
    );
    assert!(
        dir.join("switchboard_client/api/subscriptions/list_subscriptions.py")
            .is_file(),
        "no listSubscriptions in the generated client:\n{all}"
    );
}
