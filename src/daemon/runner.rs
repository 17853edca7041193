//! Running one window's opening: credentials first, then the engine, then
//! the report into the history and the outbox.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::metrics::RunFacts;
use super::policy::{end_of, run_id};
use super::status::LastOutcome;
use crate::config::Window;
use crate::credentials;
use crate::engine::{Engine, Progress, RunPlan};
use crate::jobs::fleet;
use crate::report::Report;
use crate::report::outbox::mail_report;

/// How often `STATUS=` shows the progress of a running window.
const STATUS_EVERY: Duration = Duration::from_secs(5);

pub async fn run_window(
    shared: &Arc<Shared>,
    w: &Window,
    opening: DateTime<Utc>,
    deadline: DateTime<Utc>,
    shutdown: &CancellationToken,
) {
    use tracing::Instrument as _;
    let span = tracing::info_span!("window", window = %w.name, run = %run_id(&w.name, opening));
    run_in_span(shared, w, opening, deadline, shutdown)
        .instrument(span)
        .await;
}

async fn run_in_span(
    shared: &Arc<Shared>,
    w: &Window,
    opening: DateTime<Utc>,
    deadline: DateTime<Utc>,
    shutdown: &CancellationToken,
) {
    let config = shared.config();
    let id = run_id(&w.name, opening);
    tracing::info!(deadline = %deadline, "window opens");

    let profiles = credentials::profiles_for_jobs(&config, &w.jobs);
    if !super::check_credentials(
        shared,
        &profiles,
        &format!("at the opening of window {}", w.name),
    )
    .await
    {
        let summary = "not run: the stored credentials could not be proved; no device was touched"
            .to_string();
        tracing::error!("{summary}");
        shared.status().last = Some(LastOutcome {
            window: w.name.clone(),
            run_id: id,
            finished: shared.clock.now(),
            summary,
        });
        return;
    }

    let targets = config.targets_of(&w.jobs);
    let links = match fleet_links(shared, &config, &targets) {
        Ok(l) => l,
        Err(e) => {
            shared
                .alert(&format!("window {} not run", w.name), &format!("{e}\n"))
                .await;
            return;
        }
    };
    let progress = Arc::new(Progress::default());
    let engine = Engine {
        config: config.clone(),
        links: Arc::new(links),
        clock: shared.clock.clone(),
        stop: shutdown.child_token(),
        progress: progress.clone(),
    };
    shared.status().running = Some((w.name.clone(), progress.clone()));
    // Devices changed since the plan read them: each job's on_drift.
    let (expected, plan_id) = crate::planning::expectations(&config, &id);
    if let Some(plan_id) = plan_id {
        tracing::info!(plan = %plan_id, devices = expected.len(), "comparing devices with the plan");
    }
    let plan = RunPlan {
        run_id: id.clone(),
        window: Some(w.name.clone()),
        jobs: w.jobs.clone(),
        deadline: Some(deadline),
        dry_run: false,
        only: None,
        expected,
        ..RunPlan::default()
    };
    let ticker_stop = CancellationToken::new();
    let ticker = {
        let shared = shared.clone();
        let stop = ticker_stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(STATUS_EVERY);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {
                        shared.publish();
                        if let Some((_, p)) = &shared.status().running {
                            tracing::info!(progress = %p.line(), "window in progress");
                        }
                    }
                }
            }
        })
    };
    let result = engine.run(&plan).await;
    ticker_stop.cancel();
    let _ = ticker.await;
    shared.status().running = None;
    let run = match result {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "the run failed");
            shared
                .alert(&format!("window {} failed", w.name), &format!("The run {id} could not go on: {e}\nIts journal is in {}; a restart inside the window resumes it.\n", config.daemon.state_dir.display()))
                .await;
            return;
        }
    };
    let report = Report::new(&config, &run, Some((opening, end_of(w, opening))));
    // The report holds the records now: a big run's are tens of MB.
    drop(run);
    let subject = report.subject();
    tracing::info!(summary = %subject, "window done");
    if let Err(e) = report.save(&config.daemon.state_dir) {
        tracing::error!(error = %e, "cannot keep the report in the run history");
    }
    shared
        .status()
        .runs
        .insert(w.name.clone(), RunFacts::of(&report));
    send_report(shared, &report).await;
    shared.status().last = Some(LastOutcome {
        window: w.name.clone(),
        run_id: id,
        finished: shared.clock.now(),
        summary: subject,
    });
    shared.publish();
}

/// Sessions to `targets` with the stored logins (known_hosts loaded).
pub(super) fn fleet_links(
    shared: &Shared,
    config: &crate::config::Config,
    targets: &[usize],
) -> Result<std::collections::BTreeMap<usize, crate::device::DeviceLink>, String> {
    let logins = credentials::logins_from_store(config, &shared.store, targets)
        .map_err(|e| e.to_string())?;
    fleet::links(config, targets, &logins).map_err(|e| e.to_string())
}

/// The report into the outbox, and out when a relay is configured.
pub async fn send_report(shared: &Shared, report: &Report) {
    let config = shared.config();
    match mail_report(&config, &shared.store, report, shared.clock.now()).await {
        Ok(m) => {
            if let Some(e) = &m.password_problem {
                tracing::error!(error = %e, "the relay's password is not usable; the mail waits in the outbox");
            }
            tracing::info!(id = %m.entry.id, state = ?m.entry.state, "report mail kept in the outbox");
        }
        Err(e) => tracing::error!(error = %e, "cannot keep the report mail in the outbox"),
    }
    shared.publish();
}

/// A missed opening: kept in the history (so a restart does not try it
/// again) and mailed.
pub async fn record_missed(shared: &Shared, w: &Window, opening: DateTime<Utc>, reason: &str) {
    let config = shared.config();
    let id = run_id(&w.name, opening);
    tracing::warn!(window = %w.name, run = %id, "window MISSED: {reason}");
    *shared.status().missed.entry(w.name.clone()).or_insert(0) += 1;
    let report = Report {
        json: json!({
            "run_id": id, "window": w.name, "missed": reason,
            "planned_start": opening, "planned_end": end_of(w, opening),
            "timezone": w.zone().name(),
            "jobs": [], "devices": [], "lines": [],
        }),
    };
    if let Err(e) = report.save(&config.daemon.state_dir) {
        tracing::error!(error = %e, "cannot record the missed window");
    }
    let local = opening
        .with_timezone(&w.zone())
        .format("%a %Y-%m-%d %H:%M %Z");
    shared
        .alert(
            &format!("window {} missed", w.name),
            &format!("The window {} due to open {local} did not run: {reason}.\nNo device was touched. Its jobs ({}) run at the next opening.\n", w.name, w.jobs.join(", ")),
        )
        .await;
    shared.status().last = Some(LastOutcome {
        window: w.name.clone(),
        run_id: id,
        finished: shared.clock.now(),
        summary: format!("missed: {reason}"),
    });
}

/// Runs that stopped (crash, kill, power cut) and whose window has closed
/// since, or left the config: their reports, rebuilt from the journal, are
/// kept and mailed, so what was done and what was not is never lost. A run
/// whose window is still open is left to resume.
pub async fn conclude_interrupted(shared: &Shared) {
    let config = shared.config();
    let state_dir = &config.daemon.state_dir;
    let Ok(entries) = std::fs::read_dir(state_dir.join("journal")) else {
        return;
    };
    let mut paths: Vec<std::path::PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        // A journal is named after its run: one with a report in the
        // history is done, and is not read at every start.
        .filter(|p| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .is_none_or(|id| !super::history_path(state_dir, id).exists())
        })
        .collect();
    paths.sort();
    for path in paths {
        conclude_journal(shared, &path).await;
    }
}

/// Reports the run of one journal from it if the run stopped and its
/// window has closed (or left the config). Returns whether it did.
pub async fn conclude_journal(shared: &Shared, path: &std::path::Path) -> bool {
    let config = shared.config();
    let state_dir = &config.daemon.state_dir;
    let now = shared.clock.now();
    let (events, damage) = match crate::engine::journal::load(path) {
        Ok(loaded) => {
            let notes = loaded.notes(path);
            (loaded.events, notes)
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot read a run journal");
            shared
                    .alert(
                        "run journal damaged",
                        &format!("{e}\nThe run it belongs to cannot be reported from it; its devices may need checking by hand.\n"),
                    )
                    .await;
            return false;
        }
    };
    let Some(crate::engine::RunStart {
        run_id: id,
        window: Some(window),
        deadline,
    }) = crate::engine::run_started(&events)
    else {
        // A foreground run: `nightshift run --run-id` resumes it.
        return false;
    };
    if super::history_path(state_dir, id).exists() {
        return false;
    }
    // A plan that stopped changed nothing: it is made again, not reported.
    if id.ends_with("-plan") {
        let _ = std::fs::remove_file(path);
        return false;
    }
    let w = config.window(window);
    if w.is_some() && deadline.is_some_and(|d| d > now) {
        return false;
    }
    let Some(mut run) = crate::engine::report_from_events(&config, &events) else {
        return false;
    };
    run.journal_damage = damage;
    // The window as this run had it: it closed at the run's deadline (a
    // run started with `--now` opened it then).
    let planned = w.zip(run.deadline).map(|(w, end)| {
        (
            end - chrono::Duration::from_std(w.duration).unwrap_or_default(),
            end,
        )
    });
    let report = Report::new(&config, &run, planned);
    tracing::warn!(run = %run.run_id, summary = %report.subject(), "reporting a run that stopped and whose window closed before it could resume");
    if let Err(e) = report.save(state_dir) {
        tracing::error!(error = %e, "cannot keep the report in the run history");
    }
    shared
        .status()
        .runs
        .insert(window.to_string(), RunFacts::of(&report));
    send_report(shared, &report).await;
    shared.status().last = Some(LastOutcome {
        window: window.to_string(),
        run_id: run.run_id.clone(),
        finished: now,
        summary: report.subject(),
    });
    true
}
