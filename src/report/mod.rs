//! The report of a run: what the engineer reads the morning after. Its
//! canonical form is JSON (kept in the run history, attached to big mails);
//! the text, HTML and CSV forms are rendered from it.

pub mod history;
pub mod mail;
pub mod outbox;
mod templates;
mod view;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use thiserror::Error;

pub use templates::{render_html, render_html_summary, render_text, render_text_summary};

use crate::config::Config;
use crate::device::session_addr;
use crate::engine::RunReport;

/// Statuses that mean "all is well" for a device.
pub const GOOD: &[&str] = &["changed", "unchanged", "would-change", "ok", "done"];

/// Beyond this many devices a mail carries the summary and the failures,
/// and the full report as JSON and CSV attachments.
pub const FULL_BODY_LIMIT: usize = 200;

#[derive(Debug, Error)]
pub enum ReportError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error(transparent)]
    Mail(#[from] mail::MailError),
}

/// A report: its JSON form, with the accessors the renderers need.
#[derive(Debug, Clone)]
pub struct Report {
    pub json: Value,
}

impl Report {
    /// The report of `run`. `planned` is the window's opening and closing
    /// when the run belongs to one.
    pub fn new(
        config: &Config,
        run: &RunReport,
        planned: Option<(DateTime<Utc>, DateTime<Utc>)>,
    ) -> Report {
        let mut json = report_json(config, run);
        let mut rollbacks: Vec<&str> = run
            .jobs
            .iter()
            .filter_map(|r| match config.job_of_run(&r.name).map(|j| &j.kind) {
                Some(crate::config::JobKind::Rollback { run, .. }) => Some(run.as_str()),
                _ => None,
            })
            .collect();
        let all_rollback = !rollbacks.is_empty() && rollbacks.len() == run.jobs.len();
        // One run rolled back in several parts is named once.
        rollbacks.dedup();
        json["kind"] = json!(if all_rollback { "rollback" } else { "run" });
        if !rollbacks.is_empty() {
            json["rollback_of"] = json!(rollbacks);
        }
        if let Some((start, end)) = planned {
            json["planned_start"] = json!(start);
            json["planned_end"] = json!(end);
        }
        if let Some(w) = run.window.as_deref().and_then(|w| config.window(w)) {
            json["timezone"] = json!(w.zone().name());
        }
        Report { json }
    }

    /// What the report is of: "run", "plan" or "rollback" (reports kept
    /// before there were kinds are runs).
    pub fn kind(&self) -> &str {
        self.json["kind"].as_str().unwrap_or("run")
    }

    /// The title: the window's name, else the jobs'; a plan and a
    /// rollback say so.
    pub fn title(&self) -> String {
        let base = self.base_title();
        match self.kind() {
            "plan" => format!("plan for {base}"),
            "rollback" => {
                let of: Vec<&str> = self.json["rollback_of"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                format!("rollback of {}", of.join(", "))
            }
            _ => base,
        }
    }

    fn base_title(&self) -> String {
        match self.json["window"].as_str() {
            Some(w) => w.to_string(),
            None => self
                .jobs()
                .iter()
                .map(|j| j["name"].as_str().unwrap_or("?"))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    pub fn jobs(&self) -> &[Value] {
        self.json["jobs"].as_array().map_or(&[], Vec::as_slice)
    }

    pub fn devices(&self) -> &[Value] {
        self.json["devices"].as_array().map_or(&[], Vec::as_slice)
    }

    pub fn lines(&self) -> &[Value] {
        self.json["lines"].as_array().map_or(&[], Vec::as_slice)
    }

    /// Devices per status, most important first.
    pub fn counts(&self) -> Vec<(String, usize)> {
        let mut c: BTreeMap<String, usize> = BTreeMap::new();
        for d in self.devices() {
            *c.entry(d["status"].as_str().unwrap_or("?").to_string())
                .or_default() += 1;
        }
        let order = [
            "changed",
            "unchanged",
            "would-change",
            "ok",
            "done",
            "failed",
            "interrupted",
            "skipped",
            "held",
            "not-started",
        ];
        let mut out: Vec<(String, usize)> = order
            .iter()
            .filter_map(|s| c.remove(*s).map(|n| (s.to_string(), n)))
            .collect();
        out.extend(c);
        out
    }

    /// POTS calls per result.
    pub fn call_counts(&self) -> Vec<(String, usize)> {
        let mut c: BTreeMap<String, usize> = BTreeMap::new();
        for l in self.lines() {
            *c.entry(l["result"].as_str().unwrap_or("?").to_string())
                .or_default() += 1;
        }
        c.into_iter().collect()
    }

    /// Devices that did not end well, in inventory order.
    pub fn problems(&self) -> Vec<&Value> {
        self.devices()
            .iter()
            .filter(|d| !GOOD.contains(&d["status"].as_str().unwrap_or("?")))
            .collect()
    }

    /// Devices whose outcome came with warnings (a change that stands, but
    /// whose cleanup or save needs a look), in inventory order.
    pub fn warned(&self) -> Vec<&Value> {
        self.devices()
            .iter()
            .filter(|d| d["warnings"].as_array().is_some_and(|w| !w.is_empty()))
            .collect()
    }

    /// Devices that need a look: those that did not end well, and those
    /// with warnings.
    pub fn attention(&self) -> Vec<&Value> {
        self.devices()
            .iter()
            .filter(|d| {
                !GOOD.contains(&d["status"].as_str().unwrap_or("?"))
                    || d["warnings"].as_array().is_some_and(|w| !w.is_empty())
            })
            .collect()
    }

    /// All went well: every device good and every call connected.
    pub fn all_good(&self) -> bool {
        self.problems().is_empty() && self.lines().iter().all(|l| l["result"] == "connect")
    }

    /// The mail subject: the outcome at a glance.
    pub fn subject(&self) -> String {
        let mut parts: Vec<String> = self
            .counts()
            .iter()
            .map(|(s, n)| format!("{n} {}", s.replace('-', " ")))
            .collect();
        let warned = self.warned().len();
        if warned > 0 {
            parts.push(format!(
                "{warned} with warning{}",
                if warned == 1 { "" } else { "s" }
            ));
        }
        let lines = self.lines();
        if !lines.is_empty() {
            let ok = lines.iter().filter(|l| l["result"] == "connect").count();
            parts.push(format!("{ok}/{} lines answered", lines.len()));
        }
        let prefix = if self.json["interrupted"].is_string() {
            " (interrupted)"
        } else if self.json["stopped"] == true {
            " (stopped)"
        } else if self.json["resumed"] == true {
            " (resumed)"
        } else {
            ""
        };
        format!(
            "[nightshift] {}{prefix}: {}",
            self.title(),
            if parts.is_empty() {
                "nothing to do".into()
            } else {
                parts.join(", ")
            }
        )
    }

    /// Every device as CSV: one row per device and job.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "device,address,job,status,step,error,hint,warnings,diff_lines,duration_ms\n",
        );
        for d in self.devices() {
            let s = |k: &str| csv_field(d[k].as_str().unwrap_or_default());
            let ms = device_ms(d).unwrap_or(0);
            let warnings: Vec<&str> = d["warnings"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{}\n",
                s("name"),
                s("address"),
                s("job"),
                s("status"),
                s("step"),
                s("error"),
                s("hint"),
                csv_field(&warnings.join("; ")),
                d["diff"].as_array().map_or(0, Vec::len),
                ms
            ));
        }
        out
    }

    /// Where [`Report::save`] keeps it: `<state_dir>/history/<run_id>.json`.
    pub fn history_path(&self, state_dir: &Path) -> PathBuf {
        let id = self.json["run_id"].as_str().unwrap_or("run");
        state_dir.join("history").join(format!("{id}.json"))
    }

    /// Writes the report into the run history: `<state_dir>/history/<run_id>.json`.
    pub fn save(&self, state_dir: &Path) -> Result<PathBuf, ReportError> {
        let path = self.history_path(state_dir);
        let dir = path.parent().unwrap_or(state_dir).to_path_buf();
        let write = |path: &Path| -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            crate::durable::write_durably_with(path, |w| {
                serde_json::to_writer_pretty(w, &self.json).map_err(std::io::Error::other)
            })
        };
        write(&path).map_err(|source| ReportError::Write {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }
}

/// An RFC 3339 instant from the report as a reader wants it: to the second,
/// in the window's zone (and UTC).
pub fn show_time(rfc3339: Option<&str>, zone: Option<&str>) -> String {
    let Some(t) = rfc3339.and_then(|s| s.parse::<DateTime<Utc>>().ok()) else {
        return "?".into();
    };
    let utc = t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    match zone.and_then(|z| z.parse::<chrono_tz::Tz>().ok()) {
        Some(tz) if tz != chrono_tz::UTC => {
            format!(
                "{} ({utc})",
                t.with_timezone(&tz).format("%a %Y-%m-%d %H:%M:%S %Z")
            )
        }
        _ => t.format("%a %Y-%m-%d %H:%M:%S UTC").to_string(),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Milliseconds a device spent, from its step times.
pub fn device_ms(d: &Value) -> Option<u64> {
    let steps = d["steps"].as_array()?;
    Some(steps.iter().filter_map(|s| s["ms"].as_u64()).sum())
}

/// The JSON report: `jobs[]` (name, kind, held), `devices[]` (every device
/// of every job, its job's result fields merged in) and `lines[]` (every
/// POTS call).
pub fn report_json(config: &Config, r: &RunReport) -> Value {
    let mut devices = Vec::new();
    let mut lines = Vec::new();
    let mut jobs = Vec::new();
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
        lines.extend(j.calls.iter().map(|c| {
            let mut c = c.clone();
            c["job"] = json!(j.name);
            c
        }));
        jobs.push(json!({"name": j.name, "kind": j.kind, "held": j.held, "devices": j.devices.len(), "calls": j.calls.len()}));
    }
    json!({
        "run_id": r.run_id, "window": r.window, "started": r.started, "finished": r.finished,
        "deadline": r.deadline, "resumed": r.resumed, "interrupted": r.interrupted, "stopped": r.stopped,
        "journal_damage": r.journal_damage, "counts": r.counts(), "jobs": jobs,
        "devices": devices, "lines": lines,
    })
}
