//! `nightshift run`: run a job, or a window's jobs, now, in the foreground.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::exec::select;
use super::{EXIT_INVALID, load_config, secrets};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::engine::{Engine, Progress, RunPlan, show_progress};
use crate::jobs::fleet;
use crate::report::{Report, render_text};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The job to run, as named in the config ([jobs.NAME])
    #[arg(required_unless_present = "window", conflicts_with = "window")]
    job: Option<String>,
    /// Run this window's jobs, in order, with the window's deadline: the
    /// current opening if the window is open now, else (with --now) one that opens now
    #[arg(long, value_name = "NAME")]
    window: Option<String>,
    /// With --window: run it now even if it is not open, for its duration
    #[arg(long, requires = "window")]
    now: bool,
    /// Resume the run with this id after a crash (finished devices are not touched again)
    #[arg(long, value_name = "ID")]
    run_id: Option<String>,
    /// Only these of the job's devices: names, globs or tag:X (comma-separated or repeated)
    #[arg(short, long = "devices", value_name = "SEL", value_delimiter = ',')]
    devices: Vec<String>,
    /// Show what would change on each device; send nothing in configuration mode
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    output: OutputArgs,
    /// Devices worked on at once, overriding the jobs' concurrency
    #[arg(long)]
    concurrency: Option<usize>,
}

/// Where a foreground run's report goes besides standard output (`run`,
/// `plan`, `rollback`).
#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    /// Also write the report as JSON to FILE
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Read the password (and, on a second line, the enable secret) from standard input
    #[arg(long)]
    password_stdin: bool,
    /// Also mail the report ([mail] in the config; kept in the outbox until sent)
    #[arg(long)]
    mail: bool,
}

impl OutputArgs {
    pub(super) fn output(
        &self,
        command: &'static str,
        plan_for: Option<(String, DateTime<Utc>)>,
    ) -> Output {
        Output {
            password_stdin: self.password_stdin,
            json: self.json.clone(),
            mail: self.mail,
            command,
            plan_for,
        }
    }
}

/// `id`, or `id-2`, `id-3`, … : the first without a journal.
pub(super) fn unused_run_id(state_dir: &Path, id: String) -> String {
    let taken = |id: &str| crate::engine::journal_path(state_dir, id).exists();
    if !taken(&id) {
        return id;
    }
    (2..)
        .map(|n| format!("{id}-{n}"))
        .find(|c| !taken(c))
        .unwrap_or(id)
}

fn plan(config: &Config, args: &RunArgs, now: DateTime<Utc>) -> Result<RunPlan, String> {
    let stamp = now.format("%Y%m%dT%H%M%SZ");
    // `fresh`: a new run, as opposed to the current opening of a window,
    // whose id is the opening's so that running it again resumes it.
    let (jobs, window, deadline, default_id, fresh) = match (&args.job, &args.window) {
        (Some(job), _) => {
            if config.job(job).is_none() {
                let names: Vec<&str> = config.jobs.iter().map(|j| j.name.as_str()).collect();
                return Err(format!("no job \"{job}\" (jobs: {})", names.join(", ")));
            }
            (
                vec![job.clone()],
                None,
                None,
                format!("{job}-{stamp}"),
                true,
            )
        }
        (None, Some(name)) => {
            let w = config
                .window(name)
                .ok_or_else(|| format!("no window \"{name}\""))?;
            let duration =
                chrono::Duration::from_std(w.duration).unwrap_or(chrono::Duration::zero());
            let opening = w
                .schedule
                .previous_at_or_before(now)
                .filter(|o| *o + duration > now);
            match (opening, args.now) {
                // Open now: the run id names the opening, so a restart resumes it.
                (Some(o), _) => (
                    w.jobs.clone(),
                    Some(name.clone()),
                    Some(o + duration),
                    format!("{name}-{}", o.format("%Y%m%dT%H%MZ")),
                    false,
                ),
                (None, true) => (
                    w.jobs.clone(),
                    Some(name.clone()),
                    Some(now + duration),
                    format!("{name}-{stamp}"),
                    true,
                ),
                (None, false) => {
                    let next = w.schedule.next_after(now).map_or_else(
                        || "never".into(),
                        |t| {
                            t.with_timezone(&w.zone())
                                .format("%a %Y-%m-%d %H:%M %Z")
                                .to_string()
                        },
                    );
                    return Err(format!(
                        "window {name} is not open now (next opening {next}); add --now to run it now for its duration"
                    ));
                }
            }
        }
        (None, None) => return Err("name a job or --window".into()),
    };
    // A fresh run never takes over an earlier run's journal: two runs in
    // the same second get `-2`, `-3`. (A window that is open now keeps its
    // opening's id, so that running it again resumes it.)
    let run_id = match &args.run_id {
        Some(id) => id.clone(),
        None if fresh => unused_run_id(&config.daemon.state_dir, default_id),
        None => default_id,
    };
    Ok(RunPlan {
        run_id,
        window,
        jobs,
        deadline,
        dry_run: args.dry_run,
        only: None,
        ..RunPlan::default()
    })
}

pub fn run(path: &Path, args: &RunArgs, clock: &dyn Clock) -> anyhow::Result<ExitCode> {
    let Some(mut config) = load_config(path, clock)? else {
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    if let Some(n) = args.concurrency {
        for j in &mut config.jobs {
            j.concurrency = n.max(1);
        }
    }
    let mut plan = match plan(&config, args, clock.now()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("nightshift run: {e} in {}", path.display());
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    if !args.devices.is_empty() {
        let Some(chosen) = select(&config, path, &args.devices, "run") else {
            return Ok(ExitCode::from(EXIT_INVALID));
        };
        plan.only = Some(chosen);
    }
    // A window's opening with a plan: devices changed since it are
    // handled by their job's on_drift.
    if plan.window.is_some() && !plan.dry_run {
        let (expected, plan_id) = crate::planning::expectations(&config, &plan.run_id);
        if let Some(id) = plan_id {
            eprintln!(
                "nightshift run: comparing each device with the plan {id}; one changed since is handled by its job's on_drift"
            );
        }
        plan.expected = expected;
    }
    execute(config, plan, &args.output.output("run", None), clock)
}

/// How a run's outcome is delivered.
pub(super) struct Output {
    pub password_stdin: bool,
    pub json: Option<PathBuf>,
    pub mail: bool,
    /// The command, for messages.
    pub command: &'static str,
    /// A plan: for this window's opening.
    pub plan_for: Option<(String, DateTime<Utc>)>,
}

/// Runs `plan` in the foreground: proves the credentials (one canary
/// login per profile), shows progress, prints the report, keeps it in the
/// history, and writes or mails it as asked.
pub(super) fn execute(
    config: Config,
    plan: RunPlan,
    out: &Output,
    clock: &dyn Clock,
) -> anyhow::Result<ExitCode> {
    let command = out.command;
    let mut targets = config.targets_of(&plan.jobs);
    targets.retain(|i| plan.only.as_ref().is_none_or(|o| o.contains(i)));
    if targets.is_empty() {
        eprintln!("nightshift {command}: no device to run on (check --devices)");
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    let logins = match secrets::proven_logins(&config, &targets, out.password_stdin)? {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let links = fleet::links(&config, &targets, &logins).context("while loading known_hosts")?;
    if out.plan_for.is_none() {
        eprintln!(
            "nightshift {command}: run id {} (after a crash, run again with --run-id {} to resume)",
            plan.run_id, plan.run_id
        );
    }
    let engine = Engine {
        config: Arc::new(config),
        links: Arc::new(links),
        clock: Arc::new(SystemClock),
        stop: CancellationToken::new(),
        progress: Arc::new(Progress::default()),
    };
    let runtime = super::runtime(true)?;
    let report = runtime.block_on(async {
        let stop = engine.stop.clone();
        let ticker = tokio::spawn(show_progress(engine.progress.clone(), stop.clone()));
        let signals = tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\nnightshift {command}: stopping: no new device starts and no new change begins; changes under way are verified or restored");
                stop.cancel();
            }
        });
        let report = engine.run(&plan).await;
        signals.abort();
        engine.stop.cancel();
        let _ = ticker.await;
        report
    })?;
    let config = &engine.config;
    let planned = plan
        .deadline
        .zip(plan.window.as_deref().and_then(|w| config.window(w)))
        .map(|(end, w)| {
            (
                end - chrono::Duration::from_std(w.duration).unwrap_or_default(),
                end,
            )
        });
    // The run's records are dropped once the report holds them: a big
    // run's are tens of MB.
    let mut report = {
        let run = report;
        Report::new(config, &run, planned)
    };
    if let Some((w, opening)) = &out.plan_for
        && let Some(w) = config.window(w)
    {
        let mut profiles: Vec<&str> = targets
            .iter()
            .map(|&i| config.devices[i].credentials.as_str())
            .collect();
        profiles.sort_unstable();
        profiles.dedup();
        // Proven before the run began, or it would not have.
        let checks: Vec<crate::planning::CredentialCheck> = profiles
            .iter()
            .map(|p| {
                let canary = config
                    .credentials
                    .iter()
                    .find(|c| c.name == *p)
                    .map(|c| c.canary.clone())
                    .unwrap_or_default();
                (p.to_string(), Ok(canary))
            })
            .collect();
        crate::planning::annotate(&mut report, config, w, *opening, &checks);
        crate::planning::discard_journal(config, &plan.run_id);
    }
    {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        // A plan is read before the window: its facts (credentials, tiers
        // and brakes, the estimate) come first.
        let header = out.plan_for.is_some();
        stdout.write_all(render_text(&report, header).as_bytes())?;
    }
    let counts: Vec<String> = report
        .counts()
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    eprintln!(
        "nightshift {command} {}: {}",
        plan.run_id,
        counts.join(", ")
    );
    match report.save(&config.daemon.state_dir) {
        Ok(p) => tracing::info!(path = %p.display(), "report kept in the run history"),
        Err(e) => eprintln!("nightshift {command}: warning: {e}"),
    }
    if let Some(file) = &out.json {
        // Streamed: a big run's report is tens of MB as text.
        let write = || -> std::io::Result<()> {
            use std::io::Write as _;
            let mut w = std::io::BufWriter::new(std::fs::File::create(file)?);
            serde_json::to_writer_pretty(&mut w, &report.json)?;
            w.write_all(b"\n")?;
            w.flush()
        };
        write().with_context(|| format!("while writing {}", file.display()))?;
    }
    if out.mail {
        super::report::mail_report(config, &report, &runtime, clock)?;
    }
    Ok(if report.all_good() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
