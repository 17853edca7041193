//! The daemon's state as `nightshift status` and systemd's `STATUS=` show it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use super::metrics::RunFacts;
use crate::config::Config;
use crate::credentials::CredentialsError;
use crate::engine::Progress;

#[derive(Debug, Clone, Serialize)]
pub struct CredentialState {
    /// ok, handed-over, missing, rejected, unreachable, error
    pub state: String,
    pub checked: DateTime<Utc>,
    pub canary: Option<String>,
    pub error: Option<String>,
}

impl CredentialState {
    pub fn ok(at: DateTime<Utc>, canary: String) -> Self {
        CredentialState {
            state: "ok".into(),
            checked: at,
            canary: Some(canary),
            error: None,
        }
    }
    pub fn handed_over(at: DateTime<Utc>) -> Self {
        CredentialState {
            state: "handed-over".into(),
            checked: at,
            canary: None,
            error: None,
        }
    }
    pub fn problem(at: DateTime<Utc>, e: &CredentialsError) -> Self {
        let state = e.kind();
        CredentialState {
            state: state.into(),
            checked: at,
            canary: None,
            error: Some(e.to_string()),
        }
    }
}

/// The last window's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct LastOutcome {
    pub window: String,
    pub run_id: String,
    pub finished: DateTime<Utc>,
    pub summary: String,
}

pub struct Status {
    pub config_path: PathBuf,
    pub started: DateTime<Utc>,
    pub pid: u32,
    /// The next opening of each window.
    pub next: Vec<(String, DateTime<Utc>)>,
    /// The window running now and its progress.
    pub running: Option<(String, Arc<Progress>)>,
    pub last: Option<LastOutcome>,
    pub credentials: BTreeMap<String, CredentialState>,
    pub last_reload: Option<(DateTime<Utc>, String)>,
    /// Each window's last run, for the metrics.
    pub runs: BTreeMap<String, RunFacts>,
    /// Openings missed since start, per window.
    pub missed: BTreeMap<String, u64>,
    /// Each window's last change plan.
    pub plans: BTreeMap<String, LastOutcome>,
}

impl Status {
    pub fn new(config_path: &Path, now: DateTime<Utc>) -> Status {
        Status {
            config_path: config_path.into(),
            started: now,
            pid: std::process::id(),
            next: Vec::new(),
            running: None,
            last: None,
            credentials: BTreeMap::new(),
            last_reload: None,
            runs: BTreeMap::new(),
            missed: BTreeMap::new(),
            plans: BTreeMap::new(),
        }
    }

    /// One line for systemd's STATUS=.
    pub fn line(&self, config: &Config) -> String {
        if let Some((w, p)) = &self.running {
            return format!("running {w}: {}", p.line());
        }
        let bad: Vec<&String> = self
            .credentials
            .iter()
            .filter(|(_, s)| !matches!(s.state.as_str(), "ok" | "handed-over"))
            .map(|(k, _)| k)
            .collect();
        let creds = if bad.is_empty() {
            String::new()
        } else {
            format!(
                "; CREDENTIALS NEEDED: {}",
                bad.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        match self.next.iter().min_by_key(|(_, t)| *t) {
            Some((w, t)) => {
                let local = config.window(w).map_or_else(
                    || t.format("%a %Y-%m-%d %H:%M UTC").to_string(),
                    |win| {
                        t.with_timezone(&win.zone())
                            .format("%a %Y-%m-%d %H:%M %Z")
                            .to_string()
                    },
                );
                format!("next window {w} at {local}{creds}")
            }
            None => format!("no window scheduled{creds}"),
        }
    }

    pub fn to_json(&self, config: &Config) -> Value {
        let next: Vec<Value> = self
            .next
            .iter()
            .map(|(w, t)| {
                let zone = config.window(w).map(|x| x.zone());
                json!({
                    "window": w,
                    "opens": t,
                    "opens_local": zone.map(|z| t.with_timezone(&z).format("%a %Y-%m-%d %H:%M %Z").to_string()),
                })
            })
            .collect();
        json!({
            "pid": self.pid,
            "config": self.config_path,
            "started": self.started,
            "line": self.line(config),
            "next": next,
            "running": self.running.as_ref().map(|(w, p)| json!({"window": w, "progress": p.line()})),
            "last": self.last,
            "plans": self.plans,
            "credentials": self.credentials,
            "last_reload": self.last_reload.as_ref().map(|(t, s)| json!({"at": t, "result": s})),
        })
    }
}
