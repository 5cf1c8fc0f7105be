//! The client side of the `switchboard` binary: commands that talk to a
//! running server over the v1 API (`subscriptions list/get/…`,
//! `providers`, `events`, `healthcheck`) and subscriptions as code
//! (`plan` / `apply` of a TOML file, with `--prune`).
//!
//! [`api`] is the typed HTTP client, [`problem`] reads and renders the
//! server's problem documents, [`table`] and [`render`] make tables,
//! [`file`] owns the subscriptions file format, [`plan`] plans and applies
//! it, and [`cli`] holds the clap definitions and [`run`].

pub mod api;
pub mod cli;
pub mod file;
pub mod plan;
pub mod problem;
pub mod render;
pub mod table;

pub use cli::{Command, run};
