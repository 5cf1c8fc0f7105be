//! The framework's ceiling: a bare axum JSON echo, in a process of its
//! own (`switchboard-bench echo`), measured with preview's request at
//! each connection count before the suite runs.
//!
//! This VM's speed changes from day to day by up to a factor of two, so
//! an absolute figure only compares with figures of the same run. The
//! echo parses the body and writes it back, which is what any JSON
//! endpoint on this stack costs before it does its own work: preview's
//! rate divided by the echo's is the share of the ceiling Switchboard
//! reaches, and that ratio holds from one day to the next.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use axum::Json;
use axum::routing::post;

use crate::client::Target;
use crate::load::{self, Inputs, Plan, Scenario, Stop};
use crate::process::Child;
use crate::report::Row;
use crate::run::RunOptions;

/// What the echo prints once it accepts connections, before its URL.
const READY: &str = "echo listening on ";

/// The row label of the echo's figures.
pub const LABEL: &str = "axum JSON echo";

/// Serves the echo on `listen` until the process is stopped. It answers
/// preview's path, so the preview scenario drives it unchanged.
pub async fn serve(listen: SocketAddr) -> Result<(), String> {
    async fn echo(Json(body): Json<serde_json::Value>) -> Json<serde_json::Value> {
        Json(body)
    }
    let app = axum::Router::new().route("/v1/subscriptions/preview", post(echo));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("{listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("{READY}http://{addr}");
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}

/// Starts the echo from this executable and measures it with preview's
/// request at each of `opts`' connection counts.
pub async fn measure(opts: &RunOptions, inputs: &Inputs) -> Result<Vec<Row>, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let log =
        std::env::temp_dir().join(format!("switchboard-bench-echo-{}.log", std::process::id()));
    let mut child = Child::spawn(
        "switchboard-bench echo",
        Command::new(exe).args(["echo", "--listen", "127.0.0.1:0"]),
        &log,
    )?;
    let url = child
        .announced(READY, Instant::now() + Duration::from_secs(30))
        .await?;
    let target = Target::new(&url, "unused").await?;
    let mut rows = Vec::new();
    for &connections in &opts.connections {
        let plan = Plan {
            scenario: Scenario::Preview,
            connections,
            stop: Stop::After(opts.duration),
            warmup: opts.warmup,
            pid: Some(child.pid()),
        };
        let outcome = load::run(&target, &plan, inputs).await?;
        let mut row = Row::new(LABEL, connections, &outcome);
        row.backend = Some("ceiling".into());
        rows.push(row);
    }
    child.stop();
    let _ = std::fs::remove_file(&log);
    Ok(rows)
}
