//! Switchboard's domain: the normalized subscription and its validated parts,
//! provider capabilities as data, the provider adapter trait and the one
//! domain error enum. No I/O lives here; every other crate builds on it.

pub mod adapter;
pub mod callback_url;
pub mod capabilities;
pub mod catalog;
pub mod config;
pub mod error;
pub mod ids;
pub mod ingress;
pub mod kind;
pub mod operation;
pub mod path;
pub mod policy;
pub mod record;
pub mod secret;
pub mod subscription;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod transport;

pub use adapter::{AdapterShell, NativePlan, NativeRequest, NativeResource, ProviderAdapter};
pub use callback_url::CallbackUrl;
pub use capabilities::{AccountRule, AccountShape, Capabilities, EventsPerResource};
pub use catalog::EventCatalog;
pub use error::{Error, FieldError, UpstreamError, UpstreamErrorKind};
pub use ingress::{
    InboundEvent, Ingress, IngressCredential, IngressRefusal, IngressRequest, VerifyDelivery,
};
pub use kind::{NewAdapter, ProviderKind};
pub use path::PathSegment;
pub use secret::Secret;
pub use subscription::{
    CallbackAuth, Delivery, DeliveryFormat, DeliveryMethod, DeliveryMode, EventName, Filter,
    OnUnsupported, SpecDraft, SubscriptionSpec, SubscriptionStatus,
};
pub use transport::{NativeResponse, Transport, TransportError};
