//! How results are shown: one Markdown table row per measured run, and
//! the same rows as JSON.

use serde::Serialize;

use crate::load::Outcome;

/// One measured run.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `sqlite` or `postgres` (suite runs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// Subscriptions in the database (suite runs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscriptions: Option<u64>,
    /// What was measured (`create`, `walk p1-10`, ...).
    pub scenario: String,
    /// Concurrent connections.
    pub connections: usize,
    /// Counted requests.
    pub requests: u64,
    /// Of which not 2xx (or not answered).
    pub errors: u64,
    /// Requests per second.
    pub rps: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Slowest request, ms.
    pub max_ms: f64,
    /// Highest server RSS seen, MiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_mib: Option<f64>,
    /// The first error, status and body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

impl Row {
    /// The row of `outcome`.
    pub fn new(scenario: impl Into<String>, connections: usize, outcome: &Outcome) -> Self {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let h = &outcome.histogram;
        let some = !h.is_empty();
        Self {
            backend: None,
            subscriptions: None,
            scenario: scenario.into(),
            connections,
            requests: outcome.ok + outcome.errors,
            errors: outcome.errors,
            rps: outcome.rate(),
            p50_ms: if some {
                ms(h.value_at_quantile(0.5))
            } else {
                0.0
            },
            p99_ms: if some {
                ms(h.value_at_quantile(0.99))
            } else {
                0.0
            },
            max_ms: if some { ms(h.max()) } else { 0.0 },
            rss_mib: outcome.max_rss_kib.map(|k| k as f64 / 1024.0),
            first_error: outcome.first_error.clone(),
        }
    }
}

/// The header of [`markdown`] rows.
pub fn header() -> String {
    "| subscriptions | scenario | conns | requests | req/s | p50 ms | p99 ms | max ms | errors | server RSS MiB |\n\
     |---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
        .to_owned()
}

/// `row` as a Markdown table row.
pub fn markdown(row: &Row) -> String {
    let subs = row
        .subscriptions
        .map(|n| n.to_string())
        .unwrap_or_else(|| "–".into());
    let rss = row
        .rss_mib
        .map(|m| format!("{m:.0}"))
        .unwrap_or_else(|| "–".into());
    format!(
        "| {subs} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.1} | {} | {rss} |",
        row.scenario,
        row.connections,
        row.requests,
        row.rps,
        row.p50_ms,
        row.p99_ms,
        row.max_ms,
        row.errors,
    )
}

/// The first error of each row that has one, for the notes under a table.
pub fn errors(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .filter_map(|r| {
            r.first_error.as_ref().map(|e| {
                format!(
                    "- {} at {} conns: {} errors, first: {e}",
                    r.scenario, r.connections, r.errors
                )
            })
        })
        .collect()
}
