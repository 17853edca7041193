//! The change plan ahead of a window (`plan_lead`): every job of the
//! window read-only, kept in the history and mailed through the outbox.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::policy::run_id;
use super::status::LastOutcome;
use crate::config::Window;
use crate::credentials;
use crate::engine::{Engine, Progress};
use crate::planning::{CredentialCheck, annotate, run_plan};
use crate::report::Report;

/// Makes, keeps and mails the plan for `w`'s `opening`.
pub async fn plan_window(
    shared: &Arc<Shared>,
    w: &Window,
    opening: DateTime<Utc>,
    shutdown: &CancellationToken,
) {
    use tracing::Instrument as _;
    let id = run_id(&w.name, opening);
    let span = tracing::info_span!("plan", window = %w.name, run = %id);
    make(shared, w, opening, &id, shutdown)
        .instrument(span)
        .await;
}

async fn make(
    shared: &Arc<Shared>,
    w: &Window,
    opening: DateTime<Utc>,
    id: &str,
    shutdown: &CancellationToken,
) {
    let config = shared.config();
    let mut plan = run_plan(&config, w, id);
    tracing::info!(opening = %opening, "making the change plan");
    // Each profile proven by one canary login; the devices of a profile
    // that fails are not read, and the plan says why.
    let profiles = credentials::profiles_for_jobs(&config, &plan.jobs);
    super::check_credentials(
        shared,
        &profiles,
        &format!("for the plan of window {}", w.name),
    )
    .await;
    let checks: Vec<CredentialCheck> = {
        let status = shared.status();
        profiles
            .iter()
            .map(|p| {
                let state = status.credentials.get(p);
                let r = match state {
                    Some(s) if s.state == "ok" => Ok(s.canary.clone().unwrap_or_default()),
                    Some(s) => Err(s.error.clone().unwrap_or_else(|| s.state.clone())),
                    None => Err("not checked".into()),
                };
                (p.clone(), r)
            })
            .collect()
    };
    let usable: Vec<&str> = checks
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(p, _)| p.as_str())
        .collect();
    let targets: Vec<usize> = config
        .targets_of(&plan.jobs)
        .into_iter()
        .filter(|&i| usable.contains(&config.devices[i].credentials.as_str()))
        .collect();
    plan.only = Some(targets.clone());
    let links = match super::runner::fleet_links(shared, &config, &targets) {
        Ok(l) => l,
        Err(e) => {
            shared
                .alert(&format!("no plan for window {}", w.name), &format!("{e}\n"))
                .await;
            return;
        }
    };
    let engine = Engine {
        config: config.clone(),
        links: Arc::new(links),
        clock: shared.clock.clone(),
        stop: shutdown.child_token(),
        progress: Arc::new(Progress::default()),
    };
    let run = match engine.run(&plan).await {
        Ok(r) => r,
        Err(e) => {
            shared
                .alert(
                    &format!("no plan for window {}", w.name),
                    &format!("The plan {} could not be made: {e}\n", plan.run_id),
                )
                .await;
            return;
        }
    };
    let mut report = Report::new(&config, &run, None);
    annotate(&mut report, &config, w, opening, &checks);
    crate::planning::discard_journal(&config, &plan.run_id);
    let subject = report.subject();
    tracing::info!(summary = %subject, "plan made");
    if let Err(e) = report.save(&config.daemon.state_dir) {
        tracing::error!(error = %e, "cannot keep the plan in the history");
    }
    super::runner::send_report(shared, &report).await;
    shared.status().plans.insert(
        w.name.clone(),
        LastOutcome {
            window: w.name.clone(),
            run_id: plan.run_id.clone(),
            finished: shared.clock.now(),
            summary: subject,
        },
    );
    shared.publish();
}
