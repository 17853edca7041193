//! What the report templates show: the report's JSON turned into the
//! values each part of a template needs (texts, colours, table rows). The
//! templates (`templates/report.txt`, `templates/report.html`) only lay
//! them out; minijinja escapes every value in the HTML one, so a device's
//! message with markup in it is shown, never obeyed.

use serde_json::{Value, json};

use super::{GOOD, Report, device_ms, show_time};

/// Background and text colour of a status badge.
fn colours(status: &str) -> (&'static str, &'static str) {
    match status {
        "changed" | "ok" | "done" | "connect" => ("#d4edda", "#155724"),
        "unchanged" | "would-change" => ("#e2e3e5", "#383d41"),
        "failed" | "interrupted" | "error" | "no-dialtone" | "no-carrier" => ("#f8d7da", "#721c24"),
        _ => ("#fff3cd", "#856404"),
    }
}

fn badge(status: &str) -> Value {
    let (bg, fg) = colours(status);
    json!({"text": status, "bg": bg, "fg": fg})
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// One device's block.
fn device(d: &Value) -> Value {
    let s = |k: &str| d[k].as_str().map(str::to_string);
    let status = s("status").unwrap_or_default();
    let headline = match status.as_str() {
        "failed" => format!(
            "FAILED{}",
            s("step").map(|s| format!(" at {s}")).unwrap_or_default()
        ),
        "interrupted" => "INTERRUPTED".into(),
        st => st.to_string(),
    };
    // The text's one line about why: the error of a failure, else an error
    // that says more than the reason, else the reason.
    let (error, reason) = (s("error"), s("reason"));
    let why = if status == "failed" {
        Some((
            "error",
            error.clone().or(reason.clone()).unwrap_or("?".into()),
        ))
    } else if let Some(e) = error.clone().filter(|e| Some(e) != reason.as_ref()) {
        Some(("error", e))
    } else {
        reason.clone().map(|r| ("reason", r))
    };
    let good = GOOD.contains(&status.as_str());
    let with_diff = matches!(status.as_str(), "changed" | "would-change");
    // The change, then how the device drifted from what was expected
    // (the plan's read, what a rolled-back run left).
    let shown = if with_diff {
        strings(&d["diff"])
    } else {
        Vec::new()
    };
    let diff: Vec<Value> = shown
        .into_iter()
        .chain(
            strings(&d["drift"])
                .into_iter()
                .map(|l| format!("drift {l}")),
        )
        .map(|l| {
            let colour = match l.trim_start_matches("drift ").chars().next() {
                Some('+') => "#155724",
                Some('-') => "#721c24",
                _ => "#444",
            };
            json!({"text": l, "colour": colour})
        })
        .collect();
    let outputs: Vec<Value> = d["outputs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            json!({
                "command": o["command"].as_str().unwrap_or_default(),
                "text": o["output"].as_str().or(o["error"].as_str()).unwrap_or_default(),
            })
        })
        .collect();
    let ssh: Vec<&str> = ["kex", "host_key", "cipher"]
        .iter()
        .filter_map(|k| d["algorithms"][k].as_str())
        .collect();
    json!({
        "name": s("name").unwrap_or_default(),
        "address": s("address").unwrap_or_default(),
        "status": badge(&status),
        "headline": headline,
        "good": good,
        "step": s("step"),
        "line": s("line"),
        "why": why.map(|(label, text)| json!({"label": label, "text": text})),
        "message": if error.as_deref().unwrap_or_default().is_empty() { reason.clone() } else { error.clone() },
        "reason": reason,
        "restored": s("restored"),
        "hint": s("hint"),
        "warnings": strings(&d["warnings"]),
        "diff": diff,
        "outputs": outputs,
        "time": device_ms(d).map(|ms| format!("{:.1} s", ms as f64 / 1000.0)),
        "ssh": ssh,
    })
}

/// One POTS call: the HTML's cells, and the text's padded row.
fn call(c: &Value) -> Value {
    let s = |k: &str| c[k].as_str().unwrap_or("-").to_string();
    let secs = |v: &Value| v.as_f64().map(|s| format!("{s:.1} s"));
    let rate = c["rate"].as_u64();
    let row = format!(
        "{:<14} {:<12} {:<10} {:>4}  {:<11} {:>6} {:>11} {:>9} {:>5}",
        s("branch"),
        s("number"),
        s("dialer"),
        c["line"],
        s("result"),
        rate.map_or_else(|| "-".into(), |r| r.to_string()),
        secs(&c["connect_secs"]).unwrap_or("-".into()),
        secs(&c["call_secs"]).unwrap_or("-".into()),
        c["attempts"]
    );
    let notes: Vec<&str> = ["error", "cleared"]
        .iter()
        .filter_map(|k| c[k].as_str())
        .filter(|t| !t.is_empty())
        .collect();
    json!({
        "row": row,
        "branch": s("branch"),
        "number": s("number"),
        "dialer": s("dialer"),
        "line": c["line"],
        "result": badge(c["result"].as_str().unwrap_or("?")),
        "rate": rate.map(|r| format!("{r} bps")),
        "to_connect": secs(&c["connect_secs"]),
        "attempts": c["attempts"],
        "notes": notes,
    })
}

/// The header's facts: `label` (text), `heading` (HTML) and either a
/// `value` or a time range (`from`, `to`, `note`) that each template joins
/// in its own words.
fn facts(r: &Report) -> Vec<Value> {
    let j = &r.json;
    let zone = j["timezone"].as_str();
    let mut out = vec![json!({
        "label": "run id", "heading": "Run id",
        "value": j["run_id"].as_str().unwrap_or("?"),
    })];
    if let Some(of) = j["rollback_of"].as_array() {
        let of: Vec<&str> = of.iter().filter_map(Value::as_str).collect();
        out.push(json!({"label": "rollback", "heading": "Rollback of", "value": of.join(", ")}));
    }
    if j["planned_start"].is_string() {
        out.push(json!({
            "label": "window", "heading": "Window",
            "from": show_time(j["planned_start"].as_str(), zone),
            "to": show_time(j["planned_end"].as_str(), zone),
            "note": "",
        }));
    }
    if j["kind"] == "plan" {
        let p = &j["plan"];
        let lines = |k: &str| -> Vec<String> {
            p[k].as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        };
        out.push(json!({
            "label": "PLAN", "heading": "Plan",
            "value": "read-only: nothing was changed; this is what the window will do if nothing changes before it opens",
        }));
        for c in lines("credentials") {
            out.push(json!({"label": "login", "heading": "Credentials", "value": c}));
        }
        for b in lines("brakes") {
            out.push(json!({"label": "brakes", "heading": "Tiers and brakes", "value": b}));
        }
        for n in lines("not_read") {
            out.push(json!({"label": "not read", "heading": "Not read", "value": n}));
        }
        if let Some(e) = p["estimate"].as_str() {
            out.push(json!({"label": "estimate", "heading": "Estimate", "value": e}));
        }
    }
    if let Some(m) = j["missed"].as_str() {
        out.push(json!({"label": "MISSED", "heading": "MISSED", "value": m}));
    }
    if let Some(m) = j["interrupted"].as_str() {
        out.push(json!({"label": "INTERRUPTED", "heading": "INTERRUPTED", "value": m}));
    }
    if let Some(notes) = j["journal_damage"].as_array().filter(|n| !n.is_empty()) {
        let text: Vec<&str> = notes.iter().filter_map(Value::as_str).collect();
        out.push(json!({"label": "JOURNAL", "heading": "Journal", "value": text.join("; ")}));
    }
    if j["stopped"] == true {
        out.push(json!({
            "label": "STOPPED", "heading": "STOPPED",
            "value": "the run was stopped (SIGTERM, Ctrl-C) before it was done; the devices it did not begin are marked, and a later attempt inside the window does them",
        }));
    }
    let (label, heading) = if j["kind"] == "plan" {
        ("read", "Read")
    } else {
        ("ran", "Ran")
    };
    out.push(json!({
        "label": label, "heading": heading,
        "from": show_time(j["started"].as_str(), zone),
        "to": show_time(j["finished"].as_str(), zone),
        "note": if j["resumed"] == true { " (resumed after a restart)" } else { "" },
    }));
    out
}

/// Everything the templates show; `full`: every device (else the summary
/// and the devices that need attention). Each device's part comes rendered
/// by `block` (its view, and whether its diff is shown): a run's report
/// holds every device's lines, and their views side by side would take
/// many times the memory of the report itself.
pub fn report(r: &Report, full: bool, block: &dyn Fn(&Value, bool) -> String) -> Value {
    let counts: Vec<Value> = r
        .counts()
        .iter()
        .map(|(s, n)| json!({"n": n, "status": badge(s), "text": format!("{n} {s}")}))
        .collect();
    let call_counts: Vec<Value> = r
        .call_counts()
        .iter()
        .map(|(s, n)| json!({"n": n, "status": badge(s), "text": format!("{n} {s}")}))
        .collect();
    let jobs: Vec<Value> = r
        .jobs()
        .iter()
        .map(|job| {
            let name = job["name"].as_str().unwrap_or("?");
            json!({
                "name": name,
                "kind": job["kind"].as_str().unwrap_or("?"),
                "held": job["held"].as_str(),
                "devices": if full {
                    r.devices().iter().filter(|d| d["job"] == name).map(|d| block(&device(d), true)).collect::<String>()
                } else {
                    String::new()
                },
                "calls": r.lines().iter().filter(|l| l["job"] == name).map(call).collect::<Vec<_>>(),
            })
        })
        .collect();
    let attention = r.attention();
    json!({
        "subject": r.subject(),
        "title": r.title(),
        "facts": facts(r),
        "counts": counts,
        "call_counts": call_counts,
        "warned": r.warned().len(),
        "attention": attention.iter().map(|d| block(&device(d), false)).collect::<String>(),
        "attention_count": attention.len(),
        "full": full,
        "jobs": jobs,
        "calls_header": format!(
            "{:<14} {:<12} {:<10} {:>4}  {:<11} {:>6} {:>11} {:>9} {:>5}",
            "branch", "number", "dialer", "line", "result", "rate", "to CONNECT", "held", "tries"
        ),
    })
}
