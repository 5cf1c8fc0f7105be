//! The conformance suite, run for every kind in
//! `switchboard_registry::kinds()` against its simulator over real HTTP on
//! loopback: one `#[tokio::test]` per case, each looping over the kinds.

switchboard_conformance::conformance_suite!();
