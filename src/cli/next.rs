//! `nightshift next`: when each window opens next.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};

use super::{EXIT_INVALID, load_config};
use crate::clock::{Clock, FixedClock};
use crate::config::Window;

#[derive(Debug, clap::Args)]
pub struct NextArgs {
    /// How many openings to show per window
    #[arg(short = 'n', long, default_value_t = 5)]
    count: usize,
    /// Only this window
    #[arg(short, long, value_name = "NAME")]
    window: Option<String>,
    /// Show openings after this instant instead of now (RFC 3339, e.g. 2026-03-08T00:00:00-05:00)
    #[arg(long, value_name = "INSTANT")]
    at: Option<String>,
}

/// One line per opening: local time with zone abbreviation and offset, the
/// same instant in UTC, and when the window closes (local).
pub fn format_opening(window: &Window, opening: DateTime<Utc>) -> String {
    let local = opening.with_timezone(&window.zone());
    let close = (opening
        + chrono::Duration::from_std(window.duration).unwrap_or(chrono::Duration::zero()))
    .with_timezone(&window.zone());
    format!(
        "{}  {}  until {}",
        local.format("%a %Y-%m-%d %H:%M %Z (%:z)"),
        opening.format("%Y-%m-%d %H:%M UTC"),
        close.format("%a %H:%M %Z"),
    )
}

pub fn next(path: &Path, args: &NextArgs, clock: &dyn Clock) -> anyhow::Result<ExitCode> {
    let at = match &args.at {
        Some(s) => Some(
            DateTime::parse_from_rfc3339(s)
                .with_context(|| {
                    format!("--at {s:?}: expected RFC 3339, e.g. 2026-03-08T00:00:00Z")
                })?
                .with_timezone(&Utc),
        ),
        None => None,
    };
    let fixed;
    let clock: &dyn Clock = match at {
        Some(t) => {
            fixed = FixedClock(t);
            &fixed
        }
        None => clock,
    };
    let Some(config) = load_config(path, clock)? else {
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let windows: Vec<&Window> = match &args.window {
        Some(name) => match config.window(name) {
            Some(w) => vec![w],
            None => {
                let names: Vec<&str> = config.windows.iter().map(|w| w.name.as_str()).collect();
                eprintln!(
                    "nightshift next: no window \"{name}\" (windows: {})",
                    names.join(", ")
                );
                return Ok(ExitCode::from(EXIT_INVALID));
            }
        },
        None => config.windows.iter().collect(),
    };
    if windows.is_empty() {
        println!("no windows configured");
    }
    let now = clock.now();
    for w in windows {
        println!(
            "{}: \"{}\" in {}, open {}",
            w.name,
            w.schedule.expr(),
            w.zone(),
            humantime::format_duration(w.duration)
        );
        for opening in w.schedule.openings_after(now).take(args.count) {
            println!("  {}", format_opening(w, opening));
        }
    }
    Ok(ExitCode::SUCCESS)
}
