//! Prometheus metrics in the text exposition format, written atomically to
//! `[daemon] metrics_file` for node_exporter's textfile collector after
//! every change that matters: the windows armed, a run's progress, its end,
//! credentials checked, the outbox. Names follow Prometheus's conventions
//! (`nightshift_` prefix, base units, `_total` for counters,
//! `_timestamp_seconds` for instants); the README lists them with example
//! alert rules.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};

use super::status::Status;
use crate::report::Report;
use crate::report::outbox::{Entry, State};

/// What the metrics keep of a window's last run.
#[derive(Debug, Clone, Default)]
pub struct RunFacts {
    pub run_id: String,
    pub started: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
    /// (job, status) → devices.
    pub devices: BTreeMap<(String, String), usize>,
    /// (job, result) → POTS lines.
    pub lines: BTreeMap<(String, String), usize>,
}

impl RunFacts {
    pub fn of(report: &Report) -> RunFacts {
        let time = |k: &str| report.json[k].as_str().and_then(|t| t.parse().ok());
        let mut facts = RunFacts {
            run_id: report.json["run_id"].as_str().unwrap_or_default().into(),
            started: time("started"),
            finished: time("finished"),
            ..RunFacts::default()
        };
        // Every status a job can give, at 0 when no device had it: an
        // alert on `> 0` needs the series to exist.
        for job in report.jobs() {
            let name = job["name"].as_str().unwrap_or("?").to_string();
            for status in ["changed", "unchanged", "failed", "not-started", "skipped"] {
                facts.devices.insert((name.clone(), status.into()), 0);
            }
        }
        for d in report.devices() {
            let key = (
                d["job"].as_str().unwrap_or("?").to_string(),
                d["status"].as_str().unwrap_or("?").to_string(),
            );
            *facts.devices.entry(key).or_insert(0) += 1;
        }
        for l in report.lines() {
            let key = (
                l["job"].as_str().unwrap_or("?").to_string(),
                l["result"].as_str().unwrap_or("?").to_string(),
            );
            *facts.lines.entry(key).or_insert(0) += 1;
        }
        facts
    }
}

/// A label value as the text format wants it.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn seconds(t: DateTime<Utc>) -> String {
    format!("{:.3}", t.timestamp_millis() as f64 / 1000.0)
}

/// One metric family: HELP, TYPE and its samples (labels, value).
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, String)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

/// The whole metrics text.
pub fn render(status: &Status, windows: &[String], outbox: &[Entry], damaged: usize) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "nightshift_build_info",
        "gauge",
        "The running nightshift's version (always 1).",
        &[(
            format!("version=\"{}\"", label(env!("CARGO_PKG_VERSION"))),
            "1".into(),
        )],
    );
    family(
        &mut out,
        "nightshift_start_time_seconds",
        "gauge",
        "When the daemon started (Unix time).",
        &[(String::new(), seconds(status.started))],
    );
    let next: Vec<(String, String)> = status
        .next
        .iter()
        .map(|(w, t)| (format!("window=\"{}\"", label(w)), seconds(*t)))
        .collect();
    family(
        &mut out,
        "nightshift_window_next_open_timestamp_seconds",
        "gauge",
        "The next opening of each window that is armed (Unix time).",
        &next,
    );
    let missed: Vec<(String, String)> = windows
        .iter()
        .map(|w| {
            (
                format!("window=\"{}\"", label(w)),
                status.missed.get(w).copied().unwrap_or(0).to_string(),
            )
        })
        .collect();
    family(
        &mut out,
        "nightshift_window_missed_total",
        "counter",
        "Openings missed since the daemon started (the host was down or the clock jumped).",
        &missed,
    );
    let running = status.running.as_ref();
    let in_progress: Vec<(String, String)> = windows
        .iter()
        .map(|w| {
            let now = running.is_some_and(|(r, _)| r == w);
            (
                format!("window=\"{}\"", label(w)),
                u8::from(now).to_string(),
            )
        })
        .collect();
    family(
        &mut out,
        "nightshift_run_in_progress",
        "gauge",
        "1 while the window's run is going on.",
        &in_progress,
    );
    let (mut done, mut total) = (Vec::new(), Vec::new());
    if let Some((w, p)) = running {
        let (job, d, t) = p.snapshot();
        if !job.is_empty() {
            let l = format!("window=\"{}\",job=\"{}\"", label(w), label(&job));
            done.push((l.clone(), d.to_string()));
            total.push((l, t.to_string()));
        }
    }
    family(
        &mut out,
        "nightshift_run_progress_done_devices",
        "gauge",
        "Devices finished so far by the job that is running.",
        &done,
    );
    family(
        &mut out,
        "nightshift_run_progress_devices",
        "gauge",
        "Devices of the job that is running.",
        &total,
    );
    let mut starts = Vec::new();
    let mut ends = Vec::new();
    let mut devices = Vec::new();
    let mut lines = Vec::new();
    for (w, facts) in &status.runs {
        let wl = format!("window=\"{}\"", label(w));
        if let Some(t) = facts.started {
            starts.push((wl.clone(), seconds(t)));
        }
        if let Some(t) = facts.finished {
            ends.push((wl.clone(), seconds(t)));
        }
        for ((job, st), n) in &facts.devices {
            devices.push((
                format!("{wl},job=\"{}\",status=\"{}\"", label(job), label(st)),
                n.to_string(),
            ));
        }
        for ((job, result), n) in &facts.lines {
            lines.push((
                format!("{wl},job=\"{}\",result=\"{}\"", label(job), label(result)),
                n.to_string(),
            ));
        }
    }
    family(
        &mut out,
        "nightshift_last_run_start_timestamp_seconds",
        "gauge",
        "When the window's last run started (Unix time).",
        &starts,
    );
    family(
        &mut out,
        "nightshift_last_run_end_timestamp_seconds",
        "gauge",
        "When the window's last run ended (Unix time).",
        &ends,
    );
    family(
        &mut out,
        "nightshift_last_run_devices",
        "gauge",
        "Devices of the window's last run, per job and status (changed, unchanged, failed, not-started, ...).",
        &devices,
    );
    family(
        &mut out,
        "nightshift_last_run_pots_lines",
        "gauge",
        "POTS lines of the window's last run, per job and result (connect, busy, no-carrier, ...).",
        &lines,
    );
    let mut valid = Vec::new();
    let mut checked = Vec::new();
    for (profile, c) in &status.credentials {
        let pl = format!("profile=\"{}\"", label(profile));
        let ok = matches!(c.state.as_str(), "ok" | "handed-over");
        valid.push((pl.clone(), u8::from(ok).to_string()));
        checked.push((pl, seconds(c.checked)));
    }
    family(
        &mut out,
        "nightshift_credentials_valid",
        "gauge",
        "1 when the profile's stored credentials were proved at the last check, else 0.",
        &valid,
    );
    family(
        &mut out,
        "nightshift_credentials_checked_timestamp_seconds",
        "gauge",
        "When the profile's credentials were last checked (Unix time).",
        &checked,
    );
    let mut states: BTreeMap<&str, usize> = [
        ("pending", 0),
        ("failed", 0),
        ("kept", 0),
        ("damaged", damaged),
    ]
    .into_iter()
    .collect();
    for e in outbox {
        let key = match e.state {
            State::Pending => "pending",
            State::Failed => "failed",
            State::Kept => "kept",
            State::Sent => continue,
        };
        *states.entry(key).or_insert(0) += 1;
    }
    let mails: Vec<(String, String)> = states
        .iter()
        .map(|(s, n)| (format!("state=\"{s}\""), n.to_string()))
        .collect();
    family(
        &mut out,
        "nightshift_outbox_mails",
        "gauge",
        "Mails (reports and alerts) in the outbox not delivered: pending (to be retried), failed (refused for good, or its message damaged), kept (no relay configured), damaged (files `report list` names as unusable).",
        &mails,
    );
    out
}

/// Replaces `path` with `text` in one step (a temporary name, then a
/// rename), readable by the collector (mode 0644). The folder is made if
/// missing.
pub fn write(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Not `*.prom`: the collector never reads a half-written file.
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
