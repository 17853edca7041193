//! `nightshift run`: run a job, or a window's jobs, now, in the foreground.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::exec::select;
use super::{EXIT_INVALID, load_config, secrets};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::device::session_addr;
use crate::engine::{Engine, Progress, RunPlan, RunReport};
use crate::jobs::fleet;

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
    /// Also write the report as JSON to FILE
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Read the password (and, on a second line, the enable secret) from standard input
    #[arg(long)]
    password_stdin: bool,
    /// Devices worked on at once, overriding the jobs' concurrency
    #[arg(long)]
    concurrency: Option<usize>,
}

fn plan(config: &Config, args: &RunArgs, now: DateTime<Utc>) -> Result<RunPlan, String> {
    let stamp = now.format("%Y%m%dT%H%M%SZ");
    let (jobs, window, deadline, default_id) = match (&args.job, &args.window) {
        (Some(job), _) => {
            if config.job(job).is_none() {
                let names: Vec<&str> = config.jobs.iter().map(|j| j.name.as_str()).collect();
                return Err(format!("no job \"{job}\" (jobs: {})", names.join(", ")));
            }
            (vec![job.clone()], None, None, format!("{job}-{stamp}"))
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
                ),
                (None, true) => (
                    w.jobs.clone(),
                    Some(name.clone()),
                    Some(now + duration),
                    format!("{name}-{stamp}"),
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
    Ok(RunPlan {
        run_id: args.run_id.clone().unwrap_or(default_id),
        window,
        jobs,
        deadline,
        dry_run: args.dry_run,
        only: None,
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
    let mut targets: Vec<usize> = plan
        .jobs
        .iter()
        .filter_map(|j| config.job(j))
        .flat_map(|j| j.targets.iter().copied())
        .filter(|i| plan.only.as_ref().is_none_or(|o| o.contains(i)))
        .collect();
    targets.sort_unstable();
    targets.dedup();
    if targets.is_empty() {
        eprintln!("nightshift run: no device to run on (check --devices)");
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    let logins = match secrets::proven_logins(&config, &targets, args.password_stdin)? {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let links = fleet::links(&config, &targets, &logins).context("while loading known_hosts")?;
    eprintln!(
        "nightshift run: run id {} (after a crash, run again with --run-id {} to resume)",
        plan.run_id, plan.run_id
    );
    let engine = Engine {
        config: Arc::new(config),
        links: Arc::new(links),
        clock: Arc::new(SystemClock),
        stop: CancellationToken::new(),
        progress: Arc::new(Progress::default()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(async {
        let stop = engine.stop.clone();
        let ticker = tokio::spawn(show_progress(engine.progress.clone(), stop.clone()));
        let signals = tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\nnightshift run: stopping: no new device starts; devices in flight finish their step");
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
    let mut out = std::io::stdout().lock();
    print_report(&mut out, config, &report)?;
    let counts: Vec<String> = report
        .counts()
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    eprintln!("nightshift run {}: {}", plan.run_id, counts.join(", "));
    if let Some(file) = &args.json {
        let json = serde_json::to_string_pretty(&report_json(config, &report))
            .context("while rendering JSON")?;
        std::fs::write(file, json + "\n")
            .with_context(|| format!("while writing {}", file.display()))?;
    }
    Ok(if all_good(&report) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn all_good(r: &RunReport) -> bool {
    r.jobs.iter().all(|j| {
        j.devices.iter().all(|d| {
            matches!(
                d.status.as_str(),
                "changed" | "unchanged" | "would-change" | "ok" | "done"
            )
        }) && j.calls.iter().all(|c| c["result"] == "connect")
    })
}

/// A progress line on the terminal, and one in the log every 10 s.
async fn show_progress(p: Arc<Progress>, stop: CancellationToken) {
    let tty = std::io::stderr().is_terminal();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut n = 0u32;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        n += 1;
        if tty {
            eprint!("\r\x1b[2K{}", p.line());
        }
        if n.is_multiple_of(40) {
            tracing::info!(progress = %p.line(), "run in progress");
        }
    }
    if tty {
        eprint!("\r\x1b[2K");
    }
}

/// The JSON report: `jobs[]` as run, plus `devices[]` (every device of every
/// job, its job's result fields merged in) and `lines[]` (every POTS call).
pub fn report_json(config: &Config, r: &RunReport) -> Value {
    let mut devices = Vec::new();
    let mut lines = Vec::new();
    for j in &r.jobs {
        for d in &j.devices {
            let mut v = match d.detail_value() {
                Value::Object(m) => Value::Object(m),
                _ => Value::Object(serde_json::Map::new()),
            };
            v["name"] = Value::String(d.device.clone());
            v["job"] = Value::String(j.name.clone());
            v["status"] = Value::String(d.status.clone());
            if v.get("error").is_none_or(Value::is_null) {
                v["error"] = d.reason.clone().map_or(Value::Null, Value::String);
            }
            v["reason"] = d.reason.clone().map_or(Value::Null, Value::String);
            if let Some(dev) = config.device(&d.device) {
                v["address"] = Value::String(session_addr(&dev.host, dev.port));
            }
            devices.push(v);
        }
        lines.extend(j.calls.iter().cloned());
    }
    serde_json::json!({
        "run_id": r.run_id, "window": r.window, "started": r.started, "finished": r.finished,
        "deadline": r.deadline, "resumed": r.resumed, "counts": r.counts(), "jobs": r.jobs,
        "devices": devices, "lines": lines,
    })
}

fn print_report(
    out: &mut impl std::io::Write,
    config: &Config,
    r: &RunReport,
) -> std::io::Result<()> {
    for j in &r.jobs {
        writeln!(out, "## job {} ({})", j.name, j.kind)?;
        for d in &j.devices {
            let addr = config
                .device(&d.device)
                .map(|x| session_addr(&x.host, x.port))
                .unwrap_or_default();
            let v = &d.detail_value();
            match d.status.as_str() {
                "failed" => writeln!(
                    out,
                    "=== {} ({addr}): FAILED{}",
                    d.device,
                    v["step"]
                        .as_str()
                        .map(|s| format!(" at {s}"))
                        .unwrap_or_default()
                )?,
                s => writeln!(out, "=== {} ({addr}): {s}", d.device)?,
            }
            let field = |k: &str| v[k].as_str().map(str::to_string);
            if let Some(line) = field("line") {
                writeln!(out, "    line:     {line}")?;
            }
            match field("error") {
                Some(e) => writeln!(out, "    error:    {e}")?,
                None if d.status != "failed" => {
                    if let Some(reason) = &d.reason {
                        writeln!(out, "    reason:   {reason}")?;
                    }
                }
                None => writeln!(out, "    error:    {}", d.reason.as_deref().unwrap_or("?"))?,
            }
            if let Some(restored) = field("restored") {
                writeln!(out, "    restored: {restored}")?;
            }
            if let Some(h) = field("hint") {
                writeln!(out, "    hint:     {h}")?;
            }
            if matches!(d.status.as_str(), "changed" | "would-change") {
                for line in v["diff"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    writeln!(out, "    {line}")?;
                }
            }
            for o in v["outputs"].as_array().into_iter().flatten() {
                writeln!(
                    out,
                    "--- {}\n{}",
                    o["command"].as_str().unwrap_or_default(),
                    o["output"]
                        .as_str()
                        .or(o["error"].as_str())
                        .unwrap_or_default()
                )?;
            }
        }
        if let Some(h) = &j.held {
            writeln!(out, "held: {h}")?;
        }
        if !j.calls.is_empty() {
            print_calls(out, &j.calls)?;
        }
    }
    Ok(())
}

fn print_calls(out: &mut impl std::io::Write, calls: &[Value]) -> std::io::Result<()> {
    let secs = |v: &Value| {
        v.as_f64()
            .map_or_else(|| "-".to_string(), |s| format!("{s:.1} s"))
    };
    writeln!(
        out,
        "{:<14} {:<12} {:<10} {:>4}  {:<11} {:>6} {:>11} {:>9} {:>5}",
        "branch", "number", "dialer", "line", "result", "rate", "to CONNECT", "held", "tries"
    )?;
    for c in calls {
        let s = |k: &str| c[k].as_str().unwrap_or("-").to_string();
        let rate = c["rate"]
            .as_u64()
            .map_or_else(|| "-".into(), |r| r.to_string());
        writeln!(
            out,
            "{:<14} {:<12} {:<10} {:>4}  {:<11} {:>6} {:>11} {:>9} {:>5}",
            s("branch"),
            s("number"),
            s("dialer"),
            c["line"],
            s("result"),
            rate,
            secs(&c["connect_secs"]),
            secs(&c["call_secs"]),
            c["attempts"]
        )?;
        for k in ["error", "cleared"] {
            if let Some(t) = c[k].as_str() {
                writeln!(out, "    {}: {t}", s("branch"))?;
            }
        }
    }
    Ok(())
}
