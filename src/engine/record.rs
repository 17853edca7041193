//! What a run is asked to do, and what it reports: one record per device
//! and job, in inventory order.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::rollback::RollbackSet;
use crate::jobs::acl::Expected;

/// Where run `run_id`'s report is kept: `<state_dir>/history/<run_id>.json`.
pub fn history_path(state_dir: &Path, run_id: &str) -> PathBuf {
    state_dir.join("history").join(format!("{run_id}.json"))
}

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct RunPlan {
    /// Names the journal: a run started again with the same id resumes.
    pub run_id: String,
    pub window: Option<String>,
    pub jobs: Vec<String>,
    /// When the window closes.
    pub deadline: Option<DateTime<Utc>>,
    pub dry_run: bool,
    /// Only these devices (indexes), when given.
    pub only: Option<Vec<usize>>,
    /// What each device's ACL is expected to be when its push begins, by
    /// (job, device): what the window's plan read (drift protection).
    pub expected: HashMap<(String, String), Expected>,
    /// Rollback jobs, by job name, as resolved from the history when the
    /// run starts (filled by the engine).
    pub rollbacks: HashMap<String, Arc<RollbackSet>>,
    /// Jobs the run has that the config does not: a rollback job split in
    /// one part per ACL job of the run it rolls back (filled by the engine).
    pub extra_jobs: Vec<crate::config::Job>,
}

/// One device's outcome in one job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceRecord {
    pub device: String,
    /// changed, unchanged, would-change, ok, failed, skipped, held, not-started, done
    pub status: String,
    pub reason: Option<String>,
    /// The job's own result for the device (ACL diff, outputs, calls ...),
    /// kept as compact JSON: a run holds one for every device of the fleet.
    #[serde(default)]
    pub detail: Option<Box<serde_json::value::RawValue>>,
    /// Not started, or stopped before its change began, because the run
    /// was stopped (SIGTERM, Ctrl-C): a later attempt of the run (a restart
    /// inside the window, `--run-id`) does it. Nothing was changed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped: bool,
}

impl DeviceRecord {
    pub(super) fn plain(device: &str, status: &str, reason: String) -> Self {
        DeviceRecord {
            device: device.into(),
            status: status.into(),
            reason: Some(reason),
            detail: None,
            stopped: false,
        }
    }

    pub fn failed(&self) -> bool {
        self.status == "failed"
    }

    /// The job's own result, parsed (null when there is none).
    pub fn detail_value(&self) -> serde_json::Value {
        self.detail
            .as_ref()
            .and_then(|d| serde_json::from_str(d.get()).ok())
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobReport {
    pub name: String,
    pub kind: String,
    pub devices: Vec<DeviceRecord>,
    /// POTS: one entry per call, in the job's order.
    pub calls: Vec<serde_json::Value>,
    /// Why later tiers were held, if they were.
    pub held: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    pub run_id: String,
    pub window: Option<String>,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    pub deadline: Option<DateTime<Utc>>,
    /// This run picked up a journal left by an earlier attempt.
    pub resumed: bool,
    /// The run stopped and could not resume: why, and when (rebuilt from
    /// its journal after its window closed).
    #[serde(default)]
    pub interrupted: Option<String>,
    /// The run was stopped (SIGTERM, Ctrl-C) before it was done: the
    /// devices it did not begin are marked, and a later attempt of the run
    /// inside its window does them.
    #[serde(default)]
    pub stopped: bool,
    /// Journal lines of an earlier attempt that could not be read (a torn
    /// last write, damage), each with its file:line and what was done.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub journal_damage: Vec<String>,
    pub jobs: Vec<JobReport>,
}

impl RunReport {
    /// Devices per status over all jobs (for summaries and mail subjects).
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut c = BTreeMap::new();
        for j in &self.jobs {
            for d in &j.devices {
                *c.entry(d.status.clone()).or_insert(0) += 1;
            }
        }
        c
    }
}
