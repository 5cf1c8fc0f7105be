//! The process-global Prometheus recorder: installed once per process,
//! whatever number of servers the process builds (tests build many), and
//! rendered in the text exposition format by whoever serves `/metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::names::{
    LATENCY_BUCKETS, PASS_BUCKETS, RECONCILE_PASS_DURATION, RELAY_DELIVERY_LATENCY,
    RELAY_LATENCY_BUCKETS, describe,
};

/// The media type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A handle on the installed recorder; cheap to clone.
#[derive(Clone)]
pub struct Metrics(PrometheusHandle);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

static INSTALLED: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the recorder the first time it is called and returns a handle
/// on it every time. Every server in the process records into this one
/// recorder, so what a scrape shows is the process's, not one server's.
pub fn install() -> Metrics {
    let handle = INSTALLED.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(LATENCY_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(RECONCILE_PASS_DURATION.name.into()),
                    PASS_BUCKETS,
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(RELAY_DELIVERY_LATENCY.name.into()),
                    RELAY_LATENCY_BUCKETS,
                )
            })
            .expect("the bucket lists are not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!(
                "another metrics recorder is installed; /metrics shows nothing of Switchboard's"
            );
        }
        describe();
        crate::record::build_info();
        handle
    });
    Metrics(handle.clone())
}

impl Metrics {
    /// Everything recorded so far, in the text exposition format.
    pub fn render(&self) -> String {
        self.0.render()
    }

    /// Drains histogram samples into their buckets. Rendering does it
    /// too; this bounds memory when nobody scrapes for a long time.
    pub fn run_upkeep(&self) {
        self.0.run_upkeep();
    }
}
