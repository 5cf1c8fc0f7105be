//! Relay deliveries, subscriber side: the contract Switchboard keeps with
//! the receivers of relayed events, as pure parts plus the one HTTP sender.
//!
//! A provider delivers to Switchboard's ingress; each delivery becomes one
//! [`Envelope`] (`envelope.rs`), whose body bytes in the subscription's
//! format are signed with Standard Webhooks (`signing.rs`) and sent as one
//! [`request::build`]-built request per attempt (`request.rs`) by the
//! [`Sender`] (`send.rs`), which applies the callback URL policy to the
//! resolved addresses (`resolve.rs`). What an attempt produced
//! (`attempt.rs`) goes to the [`RetrySchedule`] (`schedule.rs`), which
//! decides: delivered, retry at, give up, or gone.

pub mod attempt;
pub mod envelope;
pub mod request;
pub mod resolve;
pub mod schedule;
pub mod send;
pub mod signing;

pub use attempt::{Attempt, AttemptOutcome};
pub use envelope::{Envelope, event_id};
pub use request::{AttemptRequest, RequestError, Target, build, check_headers};
pub use schedule::{Decision, RetrySchedule};
pub use send::{Sender, SenderError};
pub use signing::{SecretFormatError, SigningSecret, VerifyError, sign, verify};
