//! `nightshift run JOB`: run a job now, in the foreground.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use super::exec::{run_commands, select};
use super::{EXIT_INVALID, load_config, secrets};
use crate::clock::Clock;
use crate::config::JobKind;
use crate::device::session_addr;
use crate::jobs::acl::{AclJob, AclResult, Status, push_acl};
use crate::jobs::fleet;
use crate::jobs::pots::{CallResult, Classified, run_pots};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The job to run, as named in the config ([jobs.NAME])
    job: String,
    /// Only these of the job's devices: names, globs or tag:X (comma-separated or repeated)
    #[arg(short, long = "devices", value_name = "SEL", value_delimiter = ',')]
    devices: Vec<String>,
    /// Show what would change on each device; send nothing in configuration mode
    #[arg(long)]
    dry_run: bool,
    /// Also write the per-device results as JSON to FILE
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Read the password (and, on a second line, the enable secret) from standard input
    #[arg(long)]
    password_stdin: bool,
    /// Devices worked on at once [default: the job's concurrency]
    #[arg(long)]
    concurrency: Option<usize>,
}

pub fn run(path: &Path, args: &RunArgs, clock: &dyn Clock) -> anyhow::Result<ExitCode> {
    let Some(config) = load_config(path, clock)? else {
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let Some(job) = config.job(&args.job).cloned() else {
        let names: Vec<&str> = config.jobs.iter().map(|j| j.name.as_str()).collect();
        eprintln!(
            "nightshift run: no job \"{}\" in {} (jobs: {})",
            args.job,
            path.display(),
            names.join(", ")
        );
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let mut targets = job.targets.clone();
    if !args.devices.is_empty() {
        let Some(chosen) = select(&config, path, &args.devices, "run") else {
            return Ok(ExitCode::from(EXIT_INVALID));
        };
        targets.retain(|i| chosen.contains(i));
        if targets.is_empty() {
            eprintln!(
                "nightshift run: --devices selects none of job {}'s devices",
                job.name
            );
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    }
    let concurrency = args.concurrency.unwrap_or(job.concurrency);
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")
    };
    match &job.kind {
        JobKind::Acl {
            acl_name,
            acl_lines,
            save,
            safety_net,
            revert_minutes,
        } => {
            let acl = AclJob::new(acl_name, acl_lines, *save, *safety_net, *revert_minutes)
                .map_err(|e| anyhow::anyhow!("job {}: {}", job.name, e.0))?;
            let logins = secrets::logins_for(&config, &targets, args.password_stdin)?;
            let links = Arc::new(
                fleet::links(&config, &targets, &logins).context("while loading known_hosts")?,
            );
            let config = Arc::new(config);
            let (acl, dry_run) = (Arc::new(acl), args.dry_run);
            let work = {
                let (links, acl, config) = (links.clone(), acl.clone(), config.clone());
                move |i: usize| {
                    let (links, acl, config) = (links.clone(), acl.clone(), config.clone());
                    async move {
                        match links.get(&i) {
                            Some(link) => push_acl(link, &acl, dry_run).await,
                            None => AclResult::skipped(
                                &config.devices[i].name,
                                "no login for its credential profile".into(),
                            ),
                        }
                    }
                }
            };
            let not_tried =
                |i: usize, why: String| AclResult::skipped(&config.devices[i].name, why);
            let results = runtime()?.block_on(fleet::run_fleet(
                &config,
                &targets,
                concurrency,
                work,
                not_tried,
            ));
            let mut out = std::io::stdout().lock();
            let mut counts = std::collections::BTreeMap::new();
            for (i, r) in &results {
                let d = &config.devices[*i];
                print_acl(&mut out, r, &session_addr(&d.host, d.port))?;
                *counts.entry(r.status.name()).or_insert(0usize) += 1;
            }
            let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
            eprintln!(
                "nightshift run {}{}: {}",
                job.name,
                if dry_run { " (dry run)" } else { "" },
                summary.join(", ")
            );
            if let Some(file) = &args.json {
                let devices: Vec<serde_json::Value> = results
                    .iter()
                    .map(|(i, r)| {
                        let mut v = serde_json::to_value(r).unwrap_or_default();
                        v["address"] = serde_json::Value::String(session_addr(
                            &config.devices[*i].host,
                            config.devices[*i].port,
                        ));
                        v
                    })
                    .collect();
                let json = serde_json::json!({ "job": job.name, "kind": "acl", "dry_run": dry_run, "devices": devices });
                std::fs::write(
                    file,
                    serde_json::to_string_pretty(&json).context("while rendering JSON")? + "\n",
                )
                .with_context(|| format!("while writing {}", file.display()))?;
            }
            let failed = results
                .values()
                .any(|r| matches!(r.status, Status::Failed | Status::Skipped));
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        JobKind::Exec { commands } => {
            let logins = secrets::logins_for(&config, &targets, args.password_stdin)?;
            let links =
                fleet::links(&config, &targets, &logins).context("while loading known_hosts")?;
            let results = runtime()?.block_on(run_commands(
                Arc::new(config),
                targets,
                links,
                Arc::new(commands.clone()),
                concurrency,
            ));
            let failed = results.iter().filter(|r| r.status != "ok").count();
            let mut out = std::io::stdout().lock();
            for r in &results {
                writeln!(
                    out,
                    "=== {} ({}){} ===",
                    r.name,
                    r.address,
                    if r.status == "ok" { "" } else { " FAILED" }
                )?;
                if let Some(e) = &r.error {
                    writeln!(out, "error: {e}")?;
                }
                for c in &r.outputs {
                    writeln!(
                        out,
                        "--- {}\n{}",
                        c.command,
                        c.output
                            .as_deref()
                            .or(c.error.as_deref())
                            .unwrap_or_default()
                    )?;
                }
            }
            eprintln!(
                "nightshift run {}: {} ok, {failed} failed",
                job.name,
                results.len() - failed
            );
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        JobKind::Pots { lines, guard_time } => {
            if args.dry_run {
                eprintln!(
                    "nightshift run {}: --dry-run applies to acl jobs; a line test changes nothing, so nothing was done",
                    job.name
                );
                return Ok(ExitCode::from(EXIT_INVALID));
            }
            let dialers: Vec<String> = targets
                .iter()
                .map(|&i| config.devices[i].name.clone())
                .collect();
            let calls: Vec<_> = lines
                .iter()
                .filter(|l| dialers.contains(&l.dialer))
                .cloned()
                .collect();
            let logins = secrets::logins_for(&config, &targets, args.password_stdin)?;
            let links =
                fleet::links(&config, &targets, &logins).context("while loading known_hosts")?;
            let links = links
                .into_values()
                .map(|l| (l.target.name.clone(), l))
                .collect();
            let results =
                runtime()?.block_on(run_pots(Arc::new(calls), links, concurrency, *guard_time));
            let mut out = std::io::stdout().lock();
            print_pots(&mut out, &results)?;
            let mut counts = std::collections::BTreeMap::new();
            for r in &results {
                *counts.entry(r.result.name()).or_insert(0usize) += 1;
            }
            let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
            eprintln!(
                "nightshift run {}: {} calls: {}",
                job.name,
                results.len(),
                summary.join(", ")
            );
            if let Some(file) = &args.json {
                let json = serde_json::json!({ "job": job.name, "kind": "pots", "lines": results });
                std::fs::write(
                    file,
                    serde_json::to_string_pretty(&json).context("while rendering JSON")? + "\n",
                )
                .with_context(|| format!("while writing {}", file.display()))?;
            }
            let all_connected = results.iter().all(|r| r.result == Classified::Connect);
            Ok(if all_connected {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

fn print_acl(out: &mut impl std::io::Write, r: &AclResult, address: &str) -> std::io::Result<()> {
    let ms: u64 = r.steps.iter().map(|s| s.ms).sum();
    match r.status {
        Status::Failed => writeln!(
            out,
            "=== {} ({address}): FAILED at {}",
            r.name,
            r.step.as_deref().unwrap_or("?")
        )?,
        Status::Skipped => writeln!(out, "=== {} ({address}): skipped", r.name)?,
        s => writeln!(
            out,
            "=== {} ({address}): {} ({:.2} s)",
            r.name,
            s.name(),
            ms as f64 / 1000.0
        )?,
    }
    if let Some(line) = &r.line {
        writeln!(out, "    line:     {line}")?;
    }
    if let Some(e) = &r.error {
        writeln!(out, "    error:    {e}")?;
    }
    if let Some(restored) = &r.restored {
        writeln!(out, "    restored: {restored}")?;
    }
    if let Some(h) = &r.hint {
        writeln!(out, "    hint:     {h}")?;
    }
    if matches!(r.status, Status::Changed | Status::WouldChange) {
        for d in &r.diff {
            writeln!(out, "    {d}")?;
        }
    }
    Ok(())
}

fn print_pots(out: &mut impl std::io::Write, results: &[CallResult]) -> std::io::Result<()> {
    let secs = |s: Option<f64>| s.map_or_else(|| "-".to_string(), |s| format!("{s:.1} s"));
    writeln!(
        out,
        "{:<14} {:<12} {:<10} {:>4}  {:<11} {:>6} {:>11} {:>9} {:>5}",
        "branch", "number", "dialer", "line", "result", "rate", "to CONNECT", "held", "tries"
    )?;
    for r in results {
        writeln!(
            out,
            "{:<14} {:<12} {:<10} {:>4}  {:<11} {:>6} {:>11} {:>9} {:>5}",
            r.branch,
            r.number,
            r.dialer,
            r.line,
            r.result.name(),
            r.rate.map_or_else(|| "-".into(), |x| x.to_string()),
            secs(r.connect_secs),
            secs(r.call_secs),
            r.attempts
        )?;
        if let Some(e) = &r.error {
            writeln!(out, "    {}: {e}", r.branch)?;
        }
        if let Some(c) = &r.cleared {
            writeln!(out, "    {}: {c}", r.branch)?;
        }
    }
    Ok(())
}
