//! `nightshift check-config`: the one validator that CI, `ExecStartPre=` and
//! `ExecReload=` share.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use super::next::format_opening;
use super::{EXIT_INVALID, load_config};
use crate::clock::Clock;
use crate::config::{Config, JobKind, MailTls};
use crate::platform::Platform;

pub fn check_config(path: &Path, clock: &dyn Clock) -> anyhow::Result<ExitCode> {
    let Some(config) = load_config(path, clock)? else {
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    print!("{}", summary(&config, clock));
    Ok(ExitCode::SUCCESS)
}

/// A one-screen summary of a valid config.
pub fn summary(config: &Config, clock: &dyn Clock) -> String {
    let mut out = format!("{}: OK\n", config.source.display());
    let mut by_platform: BTreeMap<Platform, BTreeMap<u32, usize>> = BTreeMap::new();
    for d in &config.devices {
        *by_platform
            .entry(d.platform)
            .or_default()
            .entry(d.tier)
            .or_default() += 1;
    }
    out += &format!("devices: {}\n", config.devices.len());
    for (platform, tiers) in &by_platform {
        let total: usize = tiers.values().sum();
        let tiers: Vec<String> = tiers
            .iter()
            .map(|(t, n)| format!("tier {t}: {n}"))
            .collect();
        out += &format!("  {platform:<11} {total:>5}  ({})\n", tiers.join(", "));
    }
    out += &format!("credentials: {}\n", config.credentials.len());
    for c in &config.credentials {
        let user = c
            .username
            .as_deref()
            .unwrap_or("(asked at `credentials set`)");
        out += &format!("  {:<20} user {user}, canary {}\n", c.name, c.canary);
    }
    out += &format!("jobs: {}\n", config.jobs.len());
    for j in &config.jobs {
        let what = match &j.kind {
            JobKind::Acl {
                acl_name,
                acl_lines,
                per_device,
                ..
            } => {
                if per_device.is_empty() {
                    format!("acl {acl_name} ({} lines)", acl_lines.len())
                } else {
                    format!(
                        "acl {acl_name} ({} template lines, rendered for each device)",
                        acl_lines.len()
                    )
                }
            }
            JobKind::Pots { lines, .. } => format!("pots, {} lines", lines.len()),
            JobKind::Exec { commands } => format!("exec, {} commands", commands.len()),
            JobKind::Rollback { run, .. } => format!("rollback of run {run}"),
        };
        out += &format!(
            "  {:<20} {what} on {} devices, concurrency {}\n",
            j.name,
            j.targets.len(),
            j.concurrency
        );
    }
    out += &format!("windows: {}\n", config.windows.len());
    let now = clock.now();
    for w in &config.windows {
        let next = w
            .schedule
            .next_after(now)
            .map_or_else(|| "never".to_string(), |t| format_opening(w, t));
        out += &format!(
            "  {:<20} \"{}\" {} for {}, jobs: {}\n    next: {next}\n",
            w.name,
            w.schedule.expr(),
            w.zone(),
            humantime::format_duration(w.duration),
            w.jobs.join(", ")
        );
    }
    match &config.mail {
        Some(m) => {
            let tls = match m.tls {
                MailTls::StartTls => "STARTTLS",
                MailTls::Tls => "TLS",
                MailTls::None => "plain (loopback)",
            };
            out += &format!(
                "mail: {}:{} {tls}, from {} to {}, at most {} kB a mail\n",
                m.relay,
                m.port,
                m.from,
                m.to.join(", "),
                m.max_size / 1000
            );
        }
        None => out += "mail: not configured; reports are kept in the outbox only\n",
    }
    out += &format!("state: {}\n", config.daemon.state_dir.display());
    out
}
