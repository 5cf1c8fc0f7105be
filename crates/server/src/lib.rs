//! The `switchboard` server: configuration, wiring of store, adapters,
//! engine and API, the built-in simulators of demo mode, and graceful
//! shutdown. `main.rs` is only the command line around this.

pub mod app;
pub mod config;
pub mod demo;
mod listen;
pub mod providers;
pub mod simulate;

pub use app::{App, Running, StartError};
pub use config::Config;
