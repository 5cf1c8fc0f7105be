//! Operability: what Switchboard measures and how it is exported.
//!
//! - `names`: every metric's name, type, unit, labels and help text, once;
//! - `record`: one function per counted event, with the label keys and the
//!   fixed label vocabularies (the crates that record depend on this and
//!   the `metrics` facade only);
//! - `prometheus` (feature `prometheus`): the process-global recorder,
//!   installed once, and its text rendering for `/metrics`;
//! - `otlp` (feature `otlp`): the optional OTLP/HTTP trace export as a
//!   `tracing` layer.

pub mod names;
#[cfg(feature = "otlp")]
pub mod otlp;
#[cfg(feature = "prometheus")]
pub mod prometheus;
pub mod record;

#[cfg(feature = "prometheus")]
pub use prometheus::{Metrics, install};
