//! `nightshift rollback RUN_ID`: put back, on every device a run changed,
//! the ACL the run found there — with the same method and guarantees as
//! the push itself.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use super::exec::select;
use super::run::{OutputArgs, execute, unused_run_id};
use super::{EXIT_INVALID, load_config};
use crate::clock::Clock;
use crate::config::{Job, JobKind};
use crate::engine::RunPlan;
use crate::engine::rollback::{self, resolve};
use crate::jobs::acl::OnDrift;

#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The run to roll back, as `nightshift report list` shows it
    run: String,
    /// Only these of the run's devices: names, globs or tag:X (comma-separated or repeated)
    #[arg(short, long = "devices", value_name = "SEL", value_delimiter = ',')]
    devices: Vec<String>,
    /// Show what would be put back on each device; send nothing in configuration mode
    #[arg(long)]
    dry_run: bool,
    /// Also roll back devices whose ACL changed since the run (their drift is overwritten)
    #[arg(long)]
    force: bool,
    /// Resume the rollback with this id after a crash
    #[arg(long, value_name = "ID")]
    run_id: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
    /// Devices worked on at once [default: the concurrency of the run's job]
    #[arg(long)]
    concurrency: Option<usize>,
}

pub fn rollback(path: &Path, args: &RollbackArgs, clock: &dyn Clock) -> anyhow::Result<ExitCode> {
    let Some(mut config) = load_config(path, clock)? else {
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let on_drift = if args.force {
        OnDrift::Proceed
    } else {
        OnDrift::Skip
    };
    let parts = resolve(&config, &config.daemon.state_dir, &args.run, on_drift);
    if let Some(why) = parts.first().and_then(|p| p.nothing.as_ref()) {
        eprintln!("nightshift rollback: {why}");
        let unknown = !crate::engine::history_path(&config.daemon.state_dir, &args.run).exists();
        return Ok(if unknown {
            ExitCode::from(EXIT_INVALID)
        } else {
            ExitCode::SUCCESS
        });
    }
    let chosen = if args.devices.is_empty() {
        None
    } else {
        let Some(c) = select(&config, path, &args.devices, "rollback") else {
            return Ok(ExitCode::from(EXIT_INVALID));
        };
        Some(c)
    };
    // One job per ACL job of the run, the run's last first.
    let base = format!("rollback-of-{}", args.run);
    let mut jobs = Vec::new();
    let mut rollbacks = std::collections::HashMap::new();
    for part in &parts {
        let targets: Vec<usize> = config
            .devices
            .iter()
            .enumerate()
            .filter(|(_, d)| {
                part.devices.contains_key(&d.name) || part.refused.contains_key(&d.name)
            })
            .map(|(i, _)| i)
            .filter(|i| chosen.as_ref().is_none_or(|c| c.contains(i)))
            .collect();
        if targets.is_empty() {
            continue;
        }
        // The run's own concurrency, unless told otherwise.
        let concurrency = args.concurrency.unwrap_or_else(|| {
            part.jobs
                .iter()
                .filter_map(|j| config.job(j))
                .map(|j| j.concurrency)
                .next()
                .unwrap_or(crate::config::DEFAULT_CONCURRENCY)
        });
        let name = rollback::part_name(&base, &parts, part);
        config.jobs.push(Job {
            name: name.clone(),
            kind: JobKind::Rollback {
                run: args.run.clone(),
                on_drift,
            },
            selectors: Vec::new(),
            targets,
            concurrency: concurrency.max(1),
            caps: Vec::new(),
            max_failures: None,
            budget: std::time::Duration::from_secs(300),
        });
        rollbacks.insert(name.clone(), Arc::new(part.clone()));
        jobs.push(name);
    }
    if jobs.is_empty() {
        eprintln!(
            "nightshift rollback: run {} changed none of the devices --devices picks",
            args.run
        );
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    let run_id = match &args.run_id {
        Some(id) => id.clone(),
        None => unused_run_id(&config.daemon.state_dir, format!("{}-rollback", args.run)),
    };
    let plan = RunPlan {
        run_id,
        jobs,
        dry_run: args.dry_run,
        rollbacks,
        ..RunPlan::default()
    };
    execute(config, plan, &args.output.output("rollback", None), clock)
}
