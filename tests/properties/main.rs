//! Property tests (issue #23): generated input for every reader of what
//! users, devices and crashes hand us. `.ci/test` runs each with the case
//! count given here; for a longer hunt locally:
//!
//! ```sh
//! PROPTEST_CASES=100000 cargo test --release --test properties
//! ```
//!
//! A failure prints the smallest input that shows it and keeps it under
//! `tests/properties/*.regressions` (proptest's files), replayed first
//! on every later run: commit them with the fix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

mod acl;
mod acl_families;
mod acl_standard_push;
mod config;
mod outbox;

use proptest::test_runner::{Config, FileFailurePersistence};

/// The case count `.ci/test` runs, unless `PROPTEST_CASES` says more.
fn config(cases: u32) -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(cases),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..Config::default()
    }
}
