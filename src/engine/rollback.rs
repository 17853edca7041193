//! Rolling a run back: every device the run changed gets back the ACL the
//! run found on it, through the same push (no unprotected moment,
//! verified, restored on failure, saved). The devices, their ACLs before
//! and after, come from the run's report in the history; a device whose
//! ACL is no longer what the run left drifted and is skipped, unless the
//! rollback proceeds on drift (`--force`).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use std::sync::Arc;

use super::record::{RunPlan, history_path};
use crate::config::{Config, Job, JobKind};
use crate::jobs::acl::read::Found;
use crate::jobs::acl::{AclJob, Expected, OnDrift};
use crate::platform::Platform;

/// One device's way back.
#[derive(Debug, Clone)]
pub struct DeviceRollback {
    /// The push that puts the found ACL back.
    pub job: AclJob,
    /// What the run left on the device.
    pub left: Expected,
}

/// What a rollback job does, resolved from the history when its run starts.
#[derive(Debug, Clone, Default)]
pub struct RollbackSet {
    /// The run rolled back.
    pub of: String,
    /// By device name.
    pub devices: BTreeMap<String, DeviceRollback>,
    /// Devices the run changed that cannot be rolled back, and why.
    pub refused: BTreeMap<String, String>,
    /// Why nothing at all can be rolled back (no such run, a POTS run...).
    pub nothing: Option<String>,
    /// The run's jobs that changed ACLs, by name.
    pub jobs: Vec<String>,
}

/// Reads run `of`'s report from the history under `state_dir` and works
/// out every changed device's way back: one set per ACL job of the run
/// that changed a device, the run's last job first (an ACL two jobs
/// changed goes back through both, in reverse). A run that changed
/// nothing gives one set that says why.
pub fn resolve(config: &Config, state_dir: &Path, of: &str, on_drift: OnDrift) -> Vec<RollbackSet> {
    let all = resolve_run(config, state_dir, of, on_drift);
    if all.nothing.is_some() {
        return vec![RollbackSet {
            of: all.of,
            nothing: all.nothing,
            ..RollbackSet::default()
        }];
    }
    let mut parts: Vec<RollbackSet> = all
        .jobs
        .iter()
        .rev()
        .map(|job| RollbackSet {
            of: all.of.clone(),
            jobs: vec![job.clone()],
            ..RollbackSet::default()
        })
        .collect();
    for part in &mut parts {
        let job = &part.jobs[0];
        part.devices = all
            .by_job
            .iter()
            .filter(|((j, _), _)| j == job)
            .map(|((_, d), r)| (d.clone(), r.clone()))
            .collect();
        part.refused = all
            .refused_by_job
            .iter()
            .filter(|((j, _), _)| j == job)
            .map(|((_, d), r)| (d.clone(), r.clone()))
            .collect();
    }
    parts.retain(|p| !p.devices.is_empty() || !p.refused.is_empty());
    parts
}

/// `plan` with its rollback jobs resolved from the history: a job that
/// rolls back a run with several ACL jobs becomes one job per part (added
/// to the plan's `extra_jobs`), the run's last job first.
pub(super) fn resolve_plan(config: &Config, plan: &RunPlan) -> RunPlan {
    let mut plan = plan.clone();
    let mut jobs = Vec::with_capacity(plan.jobs.len());
    for name in std::mem::take(&mut plan.jobs) {
        let job = config.job(&name);
        let Some((job, JobKind::Rollback { run, on_drift })) = job.map(|j| (j, &j.kind)) else {
            jobs.push(name);
            continue;
        };
        if plan.rollbacks.contains_key(&name) {
            jobs.push(name);
            continue;
        }
        let parts = resolve(config, &config.daemon.state_dir, run, *on_drift);
        for part in &parts {
            let part_name = part_name(&name, &parts, part);
            if part_name != name {
                plan.extra_jobs.push(Job {
                    name: part_name.clone(),
                    ..job.clone()
                });
            }
            plan.rollbacks
                .insert(part_name.clone(), Arc::new(part.clone()));
            jobs.push(part_name);
        }
    }
    plan.jobs = jobs;
    plan
}

/// The name of the job that runs one part of a rollback: `base` itself
/// when the run changed ACLs through one job, else `base:JOB`.
pub fn part_name(base: &str, parts: &[RollbackSet], part: &RollbackSet) -> String {
    match part.jobs.first() {
        Some(job) if parts.len() > 1 => format!("{base}:{job}"),
        _ => base.to_string(),
    }
}

/// The whole run's ways back, by (job, device).
#[derive(Default)]
struct RunRollback {
    of: String,
    nothing: Option<String>,
    jobs: Vec<String>,
    by_job: BTreeMap<(String, String), DeviceRollback>,
    refused_by_job: BTreeMap<(String, String), String>,
}

fn resolve_run(config: &Config, state_dir: &Path, of: &str, on_drift: OnDrift) -> RunRollback {
    let mut set = RunRollback {
        of: of.to_string(),
        ..RunRollback::default()
    };
    let path = history_path(state_dir, of);
    let report: Value = match std::fs::read(&path) {
        Err(e) => {
            set.nothing = Some(format!(
                "no run {of} in the history ({}: {e}); `nightshift report list` shows the runs kept",
                path.display()
            ));
            return set;
        }
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                set.nothing = Some(format!(
                    "the report of run {of} cannot be read ({}: {e})",
                    path.display()
                ));
                return set;
            }
        },
    };
    if report["kind"] == "plan" {
        set.nothing = Some(format!(
            "{of} is a plan: it changed nothing, so there is nothing to roll back"
        ));
        return set;
    }
    let kinds: BTreeMap<&str, &str> = report["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|j| Some((j["name"].as_str()?, j["kind"].as_str()?)))
        .collect();
    if !kinds.is_empty() && kinds.values().all(|k| *k != "acl" && *k != "rollback") {
        set.nothing = Some(format!(
            "run {of} changed no ACL ({} job{}: {}): there is nothing to roll back",
            kinds.len(),
            if kinds.len() == 1 { "" } else { "s" },
            kinds.values().copied().collect::<Vec<_>>().join(", ")
        ));
        return set;
    }
    // In the run's order.
    set.jobs = report["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|j| j["name"].as_str())
        .filter(|n| matches!(kinds.get(n), Some(&"acl") | Some(&"rollback")))
        .map(str::to_string)
        .collect();
    let stamp = report["finished"].as_str().unwrap_or("?");
    for d in report["devices"].as_array().into_iter().flatten() {
        let (Some(name), Some(job)) = (d["name"].as_str(), d["job"].as_str()) else {
            continue;
        };
        if !matches!(kinds.get(job), Some(&"acl") | Some(&"rollback")) || d["status"] != "changed" {
            continue;
        }
        match one(
            config,
            d,
            job,
            &format!("run {of} left it ({stamp})"),
            on_drift,
        ) {
            Ok(r) => {
                set.by_job.insert((job.to_string(), name.to_string()), r);
            }
            Err(why) => {
                set.refused_by_job
                    .insert((job.to_string(), name.to_string()), why);
            }
        }
    }
    if set.by_job.is_empty() && set.refused_by_job.is_empty() {
        set.nothing = Some(format!(
            "run {of} changed no device: there is nothing to roll back"
        ));
    }
    set
}

fn one(
    config: &Config,
    d: &Value,
    job: &str,
    source: &str,
    on_drift: OnDrift,
) -> Result<DeviceRollback, String> {
    let name = d["name"].as_str().unwrap_or("?");
    let device = config
        .device(name)
        .ok_or_else(|| format!("{name} is no longer in the inventory"))?;
    let (acl, save, safety_net, revert) = match config.job(job).map(|j| &j.kind) {
        Some(crate::config::JobKind::Acl {
            acl_name,
            save,
            safety_net,
            revert_minutes,
            ..
        }) => (acl_name.clone(), *save, *safety_net, *revert_minutes),
        _ => (String::new(), true, true, 10),
    };
    let acl = d["acl"].as_str().map(str::to_string).unwrap_or(acl);
    if acl.is_empty() {
        return Err(format!(
            "the report does not name the ACL job {job} changed, and the job is no longer in the config"
        ));
    }
    let found: Found = serde_json::from_value(d["found"].clone()).map_err(|_| {
        "the report does not keep the ACL the run found (a report of nightshift before 0.9): roll it back by hand from its `before`".to_string()
    })?;
    if !found.exists {
        let created = crate::jobs::acl::AclRef {
            family: found.family,
            name: &acl,
        };
        return Err(format!(
            "{acl} did not exist before run; nightshift does not delete ACLs: once nothing refers to it, remove it by hand (`{}`)",
            created.delete(device.platform)
        ));
    }
    let after: Vec<String> = d["after"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    // NX-OS numbers every entry, remarks included: put them back under
    // their own numbers. IOS shows none for remarks: entries in order.
    let numbered = device.platform == Platform::CiscoNxos
        && !found.entries.is_empty()
        && found.entries.iter().all(|(seq, _)| seq.is_some());
    let lines: Vec<String> = found
        .entries
        .iter()
        .map(|(seq, shown)| match seq {
            Some(n) if numbered => format!("{n} {shown}"),
            _ => shown.clone(),
        })
        .collect();
    let job = AclJob::new(&acl, found.family, &lines, save, safety_net, revert)
        .map_err(|e| format!("the ACL the run found no longer parses: {}", e.message))?;
    Ok(DeviceRollback {
        job,
        left: Expected {
            found: Found {
                family: found.family,
                exists: true,
                entries: after.into_iter().map(|s| (None, s)).collect(),
            },
            source: source.to_string(),
            on_drift,
        },
    })
}
