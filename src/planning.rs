//! The change plan: every job of a window run read-only ahead of its
//! opening (the reads of `--dry-run`, nothing in configuration mode), kept
//! in the history beside the runs and mailed. At the opening, the ACL each
//! device had when the plan read it is what drift protection compares the
//! device with (see [`expectations`]).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::config::{Config, JobKind, Window};
use crate::engine::{RunPlan, history_path, journal_path};
use crate::jobs::acl::read::Found;
use crate::jobs::acl::{Expected, OnDrift};
use crate::report::Report;

/// The run id of the plan for a window's run `run_id`.
pub fn plan_id(run_id: &str) -> String {
    format!("{run_id}-plan")
}

/// The read-only run of window `w`'s jobs for the opening whose run id is
/// `run_id`. POTS jobs are left out (a test call is not a read); the
/// plan says so. A plan starts afresh: it has nothing to resume.
pub fn run_plan(config: &Config, w: &Window, run_id: &str) -> RunPlan {
    let id = plan_id(run_id);
    discard_journal(config, &id);
    RunPlan {
        run_id: id,
        window: Some(w.name.clone()),
        jobs: w
            .jobs
            .iter()
            .filter(|j| {
                config
                    .job(j)
                    .is_some_and(|j| !matches!(j.kind, JobKind::Pots { .. }))
            })
            .cloned()
            .collect(),
        deadline: None,
        dry_run: true,
        ..RunPlan::default()
    }
}

/// Removes plan `id`'s journal: a plan changes nothing, so it has nothing
/// to resume, and it is kept as its report.
pub fn discard_journal(config: &Config, id: &str) {
    let _ = std::fs::remove_file(journal_path(&config.daemon.state_dir, id));
}

/// A profile's credentials as the plan found them: the canary that proved
/// them, or the problem.
pub type CredentialCheck = (String, Result<String, String>);

/// Makes `report` (of the plan's run) the plan for `w`'s `opening`: its
/// kind, the opening, credentials, tiers and brakes, and an estimate of
/// the run's length against the window.
pub fn annotate(
    report: &mut Report,
    config: &Config,
    w: &Window,
    opening: DateTime<Utc>,
    credentials: &[CredentialCheck],
) {
    let state_dir = &config.daemon.state_dir;
    let j = &mut report.json;
    j["kind"] = json!("plan");
    j["planned_start"] = json!(opening);
    j["planned_end"] = json!(opening + chrono::Duration::from_std(w.duration).unwrap_or_default());
    j["timezone"] = json!(w.zone().name());
    let mut plan = serde_json::Map::new();
    plan.insert(
        "credentials".into(),
        json!(
            credentials
                .iter()
                .map(|(p, r)| match r {
                    Ok(canary) => format!("{p}: proven by one login to {canary}"),
                    Err(e) => format!("{p}: NOT USABLE ({e}); its devices would not be touched"),
                })
                .collect::<Vec<_>>()
        ),
    );
    plan.insert("brakes".into(), json!(brakes(config, w)));
    let not_read: Vec<String> = w
        .jobs
        .iter()
        .filter_map(|name| match config.job(name).map(|j| &j.kind) {
            Some(JobKind::Pots { lines, .. }) => Some(format!(
                "{name}: {} test call{} (not made by the plan: a call is not a read)",
                lines.len(),
                if lines.len() == 1 { "" } else { "s" }
            )),
            _ => None,
        })
        .collect();
    plan.insert("not_read".into(), json!(not_read));
    plan.insert(
        "estimate".into(),
        json!(estimate(config, w, &report.json, state_dir)),
    );
    report.json["plan"] = Value::Object(plan);
}

/// The tiers and brakes that apply, one line per job, and the lockout brake.
fn brakes(config: &Config, w: &Window) -> Vec<String> {
    let mut out = Vec::new();
    for name in &w.jobs {
        let Some(job) = config.job(name) else {
            continue;
        };
        if matches!(job.kind, JobKind::Pots { .. }) {
            continue;
        }
        let mut tiers: BTreeMap<u32, usize> = BTreeMap::new();
        for &i in &job.targets {
            *tiers.entry(config.devices[i].tier).or_default() += 1;
        }
        let tiers: Vec<String> = tiers
            .iter()
            .map(|(t, n)| format!("tier {t}: {n}"))
            .collect();
        let mut parts = vec![
            format!("{} devices ({})", job.targets.len(), tiers.join(", ")),
            format!("{} at a time", job.concurrency),
        ];
        for (sel, n) in &job.caps {
            parts.push(format!("at most {n} of {sel}"));
        }
        match job.max_failures {
            Some(crate::config::MaxFailures::Count(n)) => parts.push(format!(
                "more than {n} failures in a tier hold the later tiers"
            )),
            Some(crate::config::MaxFailures::Percent(p)) => parts.push(format!(
                "more than {p}% failures in a tier hold the later tiers"
            )),
            None => {}
        }
        parts.push(format!(
            "budget {} per device",
            humantime::format_duration(job.budget)
        ));
        match &job.kind {
            JobKind::Acl { on_drift, .. } | JobKind::Rollback { on_drift, .. } => {
                parts.push(match on_drift {
                    OnDrift::Skip => "a device changed since this plan is skipped".to_string(),
                    OnDrift::Proceed => {
                        "a device changed since this plan is replaced anyway (on_drift = proceed)"
                            .to_string()
                    }
                })
            }
            _ => {}
        }
        out.push(format!("{name}: {}", parts.join("; ")));
    }
    out.push(format!(
        "lockout brake: no new device starts after {} rejected login(s) (max_auth_failures)",
        config.daemon.max_auth_failures
    ));
    out
}

/// How long the run will take against the window's duration: from the
/// window's last run in the history, scaled to the devices to change now;
/// without one, a lower bound from the plan's own reads.
fn estimate(config: &Config, w: &Window, plan: &Value, state_dir: &Path) -> String {
    let window = humantime::format_duration(std::time::Duration::from_secs(w.duration.as_secs()));
    let to_change = plan["devices"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["status"] != "unchanged")
        .count();
    let last = crate::report::history::scan(state_dir)
        .into_iter()
        .filter_map(|r| {
            let v: Value = serde_json::from_slice(&std::fs::read(&r.file).ok()?).ok()?;
            (v["window"] == w.name.as_str()
                && v["kind"] != "plan"
                && !v["missed"].is_string()
                && v["devices"].as_array().is_some_and(|d| !d.is_empty()))
            .then_some(v)
        })
        .max_by_key(|v| v["started"].as_str().unwrap_or_default().to_string());
    let secs = |v: &Value| -> Option<i64> {
        let s: DateTime<Utc> = v["started"].as_str()?.parse().ok()?;
        let f: DateTime<Utc> = v["finished"].as_str()?.parse().ok()?;
        Some((f - s).num_seconds().max(0))
    };
    let fmt = |s: i64| humantime::format_duration(std::time::Duration::from_secs(s.max(0) as u64));
    let calls = w
        .jobs
        .iter()
        .filter_map(|j| config.job(j))
        .any(|j| matches!(j.kind, JobKind::Pots { .. }));
    if to_change == 0 {
        return format!(
            "nothing to change: the run reads each device once{}, well within the window ({window})",
            if calls {
                " (and places its test calls)"
            } else {
                ""
            }
        );
    }
    match last.as_ref().and_then(|v| Some((v, secs(v)?))) {
        Some((v, took)) => {
            let then = v["devices"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| d["status"] == "changed" || d["status"] == "failed")
                .count()
                .max(1);
            let est = (took as f64 * to_change as f64 / then as f64).ceil() as i64;
            let est = est.max(1);
            let verdict = if est as u64 > w.duration.as_secs() {
                "MORE than the window: devices beyond its end will not start"
            } else {
                "within the window"
            };
            format!(
                "about {} for {to_change} device(s) to change, {verdict} ({window}); the last run, {}, took {} for {then}{}",
                fmt(est),
                v["run_id"].as_str().unwrap_or("?"),
                fmt(took),
                if calls {
                    ", its test calls included"
                } else {
                    ""
                }
            )
        }
        None => {
            let read_ms: Vec<u64> = plan["devices"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(crate::report::device_ms)
                .collect();
            let mean = read_ms.iter().sum::<u64>() / read_ms.len().max(1) as u64;
            let concurrency = w
                .jobs
                .iter()
                .filter_map(|j| config.job(j))
                .filter(|j| !matches!(j.kind, JobKind::Pots { .. }))
                .map(|j| j.concurrency)
                .min()
                .unwrap_or(1)
                .max(1);
            let rounds = to_change.div_ceil(concurrency) as u64;
            format!(
                "no earlier run of this window to go by; at least {} for {to_change} device(s) to change ({rounds} round(s) of {concurrency} at the plan's {mean} ms per device read, and a change takes several reads), of the window's {window}",
                humantime::format_duration(std::time::Duration::from_millis(rounds * mean))
            )
        }
    }
}

/// What each device's ACL was when the plan for run `run_id` read it, by
/// (job, device), with the job's `on_drift`; empty without a plan. Only
/// jobs that still replace the same ACL count.
pub fn expectations(
    config: &Config,
    run_id: &str,
) -> (HashMap<(String, String), Expected>, Option<String>) {
    let id = plan_id(run_id);
    let path = history_path(&config.daemon.state_dir, &id);
    let Some(plan) = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .filter(|v| v["kind"] == "plan")
    else {
        return (HashMap::new(), None);
    };
    let read_at = plan["finished"]
        .as_str()
        .and_then(|t| t.parse::<DateTime<Utc>>().ok())
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "?".into());
    let source = format!("the plan {id} read it ({read_at})");
    let mut out = HashMap::new();
    for d in plan["devices"].as_array().into_iter().flatten() {
        let (Some(name), Some(job)) = (d["name"].as_str(), d["job"].as_str()) else {
            continue;
        };
        let Some(JobKind::Acl {
            acl_name, on_drift, ..
        }) = config.job(job).map(|j| &j.kind)
        else {
            continue;
        };
        if d["acl"].as_str() != Some(acl_name.as_str()) {
            continue;
        }
        if let Ok(found) = serde_json::from_value::<Found>(d["found"].clone()) {
            out.insert(
                (job.to_string(), name.to_string()),
                Expected {
                    found,
                    source: source.clone(),
                    on_drift: *on_drift,
                },
            );
        }
    }
    (out, Some(id))
}
