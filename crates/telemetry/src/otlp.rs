//! The optional OTLP trace export: every `tracing` span (the API's
//! `request` span, each `upstream_call` under it) becomes an OpenTelemetry
//! span, batched and sent as protobuf over HTTP to a collector's
//! `/v1/traces`. The batch runs on a thread of its own with a blocking
//! client, so it neither needs nor disturbs the server's runtime; build it
//! before the runtime starts and shut it down after the runtime's work is
//! done.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, Tracer};
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::registry::LookupSpan;

/// Where and what to export (`[telemetry]` in config).
#[derive(Debug, Clone)]
pub struct OtlpSettings {
    /// The collector's OTLP/HTTP base URL (`http://collector:4318`);
    /// spans go to `<endpoint>/v1/traces`, as the OTLP specification
    /// derives a signal's URL from the base endpoint.
    pub endpoint: String,
    /// `service.name` of every span.
    pub service_name: String,
    /// Share of traces kept, 0 to 1; a span follows its parent's decision.
    pub sample_ratio: f64,
}

/// How long one export (and the flush at shutdown) may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// A running exporter. Spans reach it through [`TraceExport::layer`];
/// [`TraceExport::shutdown`] sends what is still batched.
#[derive(Debug)]
pub struct TraceExport {
    provider: SdkTracerProvider,
}

impl TraceExport {
    /// Builds the exporter and its batch thread. Call it outside an async
    /// runtime: the blocking HTTP client starts a runtime of its own.
    pub fn start(settings: &OtlpSettings) -> Result<Self, String> {
        let url = format!("{}/v1/traces", settings.endpoint.trim_end_matches('/'));
        let exporter = SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url)
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?;
        let sampler =
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(settings.sample_ratio)));
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(sampler)
            .with_resource(
                Resource::builder_empty()
                    .with_service_name(settings.service_name.clone())
                    .build(),
            )
            .build();
        Ok(Self { provider })
    }

    /// The `tracing` layer that turns spans into exported ones.
    pub fn layer<S>(&self) -> OpenTelemetryLayer<S, Tracer>
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    {
        let tracer = self.provider.tracer("switchboard");
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            // Thread ids and source locations say nothing an operator
            // needs and make every span larger.
            .with_threads(false)
            .with_location(false)
    }

    /// Exports what is still batched and stops the batch thread.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("switchboard: flushing traces at shutdown failed: {e}");
        }
    }
}
