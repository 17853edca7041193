//! The plain-text report: what `nightshift run` prints and the text part
//! of the mail.

use std::fmt::Write as _;

use serde_json::Value;

use super::{Report, show_time};

/// The header: title, times and counts.
pub fn render_header(r: &Report, out: &mut String) {
    let j = &r.json;
    let _ = writeln!(out, "nightshift report: {}", r.title());
    let _ = writeln!(out, "run id:   {}", j["run_id"].as_str().unwrap_or("?"));
    let zone = j["timezone"].as_str();
    if j["planned_start"].is_string() {
        let _ = writeln!(
            out,
            "window:   {} .. {}",
            show_time(j["planned_start"].as_str(), zone),
            show_time(j["planned_end"].as_str(), zone)
        );
    }
    if let Some(m) = j["missed"].as_str() {
        let _ = writeln!(out, "MISSED:   {m}");
    }
    if let Some(m) = j["interrupted"].as_str() {
        let _ = writeln!(out, "INTERRUPTED: {m}");
    }
    if j["stopped"] == true {
        let _ = writeln!(
            out,
            "STOPPED:  the run was stopped (SIGTERM, Ctrl-C) before it was done; the devices it did not begin are marked, and a later attempt inside the window does them"
        );
    }
    let _ = writeln!(
        out,
        "ran:      {} .. {}{}",
        show_time(j["started"].as_str(), zone),
        show_time(j["finished"].as_str(), zone),
        if j["resumed"] == true {
            " (resumed after a restart)"
        } else {
            ""
        }
    );
    let mut counts: Vec<String> = r.counts().iter().map(|(s, n)| format!("{n} {s}")).collect();
    let warned = r.warned().len();
    if warned > 0 {
        counts.push(format!("{warned} with warnings (below)"));
    }
    let _ = writeln!(out, "devices:  {}", counts.join(", "));
    if !r.lines().is_empty() {
        let calls: Vec<String> = r
            .call_counts()
            .iter()
            .map(|(s, n)| format!("{n} {s}"))
            .collect();
        let _ = writeln!(out, "lines:    {}", calls.join(", "));
    }
    out.push('\n');
}

/// The whole report as text, devices in inventory order per job.
pub fn render_text(r: &Report, with_header: bool) -> String {
    let mut out = String::new();
    if with_header {
        render_header(r, &mut out);
    }
    for job in r.jobs() {
        let name = job["name"].as_str().unwrap_or("?");
        let _ = writeln!(
            out,
            "## job {name} ({})",
            job["kind"].as_str().unwrap_or("?")
        );
        for d in r.devices().iter().filter(|d| d["job"] == name) {
            device(&mut out, d);
        }
        if let Some(h) = job["held"].as_str() {
            let _ = writeln!(out, "held: {h}");
        }
        let calls: Vec<&Value> = r.lines().iter().filter(|l| l["job"] == name).collect();
        if !calls.is_empty() {
            calls_table(&mut out, &calls);
        }
    }
    out
}

/// One device's block.
pub fn device(out: &mut String, v: &Value) {
    let s = |k: &str| v[k].as_str().map(str::to_string);
    let status = s("status").unwrap_or_default();
    let name = s("name").unwrap_or_default();
    let addr = s("address").unwrap_or_default();
    match status.as_str() {
        "failed" => {
            let _ = writeln!(
                out,
                "=== {name} ({addr}): FAILED{}",
                s("step").map(|s| format!(" at {s}")).unwrap_or_default()
            );
        }
        "interrupted" => {
            let _ = writeln!(out, "=== {name} ({addr}): INTERRUPTED");
        }
        st => {
            let _ = writeln!(out, "=== {name} ({addr}): {st}");
        }
    }
    if let Some(line) = s("line") {
        let _ = writeln!(out, "    line:     {line}");
    }
    let (error, reason) = (s("error"), s("reason"));
    if status == "failed" {
        let _ = writeln!(
            out,
            "    error:    {}",
            error.or(reason).as_deref().unwrap_or("?")
        );
    } else if let Some(e) = error.filter(|e| Some(e) != reason.as_ref()) {
        let _ = writeln!(out, "    error:    {e}");
    } else if let Some(r) = reason {
        let _ = writeln!(out, "    reason:   {r}");
    }
    if let Some(restored) = s("restored") {
        let _ = writeln!(out, "    restored: {restored}");
    }
    if let Some(h) = s("hint") {
        let _ = writeln!(out, "    hint:     {h}");
    }
    for w in v["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        let _ = writeln!(out, "    WARNING:  {w}");
    }
    if matches!(status.as_str(), "changed" | "would-change") {
        for line in v["diff"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            let _ = writeln!(out, "    {line}");
        }
    }
    for o in v["outputs"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "--- {}\n{}",
            o["command"].as_str().unwrap_or_default(),
            o["output"]
                .as_str()
                .or(o["error"].as_str())
                .unwrap_or_default()
        );
    }
}

fn calls_table(out: &mut String, calls: &[&Value]) {
    let secs = |v: &Value| {
        v.as_f64()
            .map_or_else(|| "-".to_string(), |s| format!("{s:.1} s"))
    };
    let _ = writeln!(
        out,
        "{:<14} {:<12} {:<10} {:>4}  {:<11} {:>6} {:>11} {:>9} {:>5}",
        "branch", "number", "dialer", "line", "result", "rate", "to CONNECT", "held", "tries"
    );
    for c in calls {
        let s = |k: &str| c[k].as_str().unwrap_or("-").to_string();
        let rate = c["rate"]
            .as_u64()
            .map_or_else(|| "-".into(), |r| r.to_string());
        let _ = writeln!(
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
        );
        for k in ["error", "cleared"] {
            if let Some(t) = c[k].as_str() {
                let _ = writeln!(out, "    {}: {t}", s("branch"));
            }
        }
    }
}
