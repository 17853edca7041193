//! nightshift: a daemon that runs network change windows.
//!
//! An engineer hands it credentials once; it proves them with one canary
//! login, keeps them in the OS keyring, and sleeps until the configured
//! change windows. When a window opens it pushes ACLs and tests POTS lines
//! on Cisco IOS and NX-OS devices over SSH, then mails a per-device report.
//!
//! # Layout
//! - [`cli`]: the command line (clap) and one function per command.
//! - [`config`]: the TOML file, parsed then validated with every problem
//!   located at `FILE:LINE:COLUMN`.
//! - [`schedule`]: crontab lines in IANA zones, with explicit DST rules.
//! - [`clock`]: injected time.
//! - [`platform`]: the device platforms users name in the config.

pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod credentials;
pub mod daemon;
pub mod device;
pub mod durable;
pub mod engine;
pub mod jobs;
pub mod lab;
pub mod planning;
pub mod platform;
pub mod report;
pub mod schedule;

/// An error and its sources on one line: `a: b: c`.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let more = inner.to_string();
        if !s.contains(&more) {
            s.push_str(": ");
            s.push_str(&more);
        }
        src = inner.source();
    }
    s
}
