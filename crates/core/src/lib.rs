//! Switchboard's domain: the normalized subscription and its validated parts,
//! provider capabilities as data, the provider adapter trait and the one
//! domain error enum. No I/O lives here; every other crate builds on it.

pub mod adapter;
pub mod capabilities;
pub mod catalog;
pub mod config;
pub mod error;
pub mod ids;
pub mod policy;
pub mod secret;
pub mod subscription;
pub mod transport;

pub use adapter::{NativePlan, NativeRequest, NativeResource, ProviderAdapter};
pub use capabilities::{AccountRule, Capabilities, EventsPerResource};
pub use catalog::EventCatalog;
pub use error::{Error, FieldError, UpstreamError, UpstreamErrorKind};
pub use secret::Secret;
pub use subscription::{
    CallbackAuth, CallbackUrl, DeliveryFormat, DeliveryMethod, EventName, Filter, OnUnsupported,
    SubscriptionSpec, SubscriptionStatus,
};
pub use transport::{NativeResponse, Transport, TransportError};
