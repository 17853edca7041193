//! The HTML part of the mail: inline styles only, no external resources,
//! tables that mail clients render.

use std::fmt::Write as _;

use serde_json::Value;

use super::{GOOD, Report, device_ms, show_time};

const TABLE: &str = "border-collapse:collapse;font-family:Arial,Helvetica,sans-serif;font-size:13px;margin:8px 0 16px 0";
const TH: &str = "text-align:left;padding:4px 8px;border-bottom:2px solid #444;background:#eee";
const TD: &str = "padding:4px 8px;border-bottom:1px solid #ddd;vertical-align:top";

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Background and text colour of a status badge.
fn colours(status: &str) -> (&'static str, &'static str) {
    match status {
        "changed" | "ok" | "done" | "connect" => ("#d4edda", "#155724"),
        "unchanged" | "would-change" => ("#e2e3e5", "#383d41"),
        "failed" | "interrupted" | "error" | "no-dialtone" | "no-carrier" => ("#f8d7da", "#721c24"),
        _ => ("#fff3cd", "#856404"),
    }
}

fn badge(status: &str) -> String {
    let (bg, fg) = colours(status);
    format!(
        "<span style=\"background:{bg};color:{fg};padding:2px 6px;border-radius:3px;font-weight:bold;white-space:nowrap\">{}</span>",
        esc(status)
    )
}

/// The whole report, or (`full = false`) its summary and problems only.
pub fn render_html(r: &Report, full: bool) -> String {
    let j = &r.json;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body style=\"margin:0;padding:16px;font-family:Arial,Helvetica,sans-serif;color:#222;background:#fff\">",
        esc(&r.subject())
    );
    let _ = write!(
        out,
        "<h1 style=\"font-size:20px;margin:0 0 8px 0\">nightshift: {}</h1>",
        esc(&r.title())
    );
    let mut facts = vec![("Run id", j["run_id"].as_str().unwrap_or("?").to_string())];
    let zone = j["timezone"].as_str();
    if j["planned_start"].is_string() {
        facts.push((
            "Window",
            format!(
                "{} to {}",
                show_time(j["planned_start"].as_str(), zone),
                show_time(j["planned_end"].as_str(), zone)
            ),
        ));
    }
    if let Some(m) = j["missed"].as_str() {
        facts.push(("MISSED", m.to_string()));
    }
    if let Some(m) = j["interrupted"].as_str() {
        facts.push(("INTERRUPTED", m.to_string()));
    }
    if j["stopped"] == true {
        facts.push((
            "STOPPED",
            "the run was stopped before it was done; the devices it did not begin are marked, and a later attempt inside the window does them".to_string(),
        ));
    }
    facts.push((
        "Ran",
        format!(
            "{} to {}{}",
            show_time(j["started"].as_str(), zone),
            show_time(j["finished"].as_str(), zone),
            if j["resumed"] == true {
                " (resumed after a restart)"
            } else {
                ""
            }
        ),
    ));
    let _ = write!(out, "<table style=\"{TABLE}\">");
    for (k, v) in facts {
        let _ = write!(
            out,
            "<tr><td style=\"{TD};font-weight:bold\">{k}</td><td style=\"{TD}\">{}</td></tr>",
            esc(&v)
        );
    }
    out.push_str("</table>");

    // Counts at the top.
    out.push_str("<p style=\"font-size:15px;margin:8px 0\">");
    for (s, n) in r.counts() {
        let _ = write!(out, "<b>{n}</b> {} &nbsp; ", badge(&s));
    }
    if !r.lines().is_empty() {
        out.push_str("<br>POTS lines: ");
        for (s, n) in r.call_counts() {
            let _ = write!(out, "<b>{n}</b> {} &nbsp; ", badge(&s));
        }
    }
    out.push_str("</p>");

    let problems = r.attention();
    if !problems.is_empty() {
        let _ = write!(
            out,
            "<h2 style=\"font-size:16px;color:#721c24\">Needs attention ({})</h2>",
            problems.len()
        );
        device_table(&mut out, problems.into_iter(), false);
    }
    if full {
        for job in r.jobs() {
            let name = job["name"].as_str().unwrap_or("?");
            let _ = write!(
                out,
                "<h2 style=\"font-size:16px\">Job {} <span style=\"color:#666;font-weight:normal\">({})</span></h2>",
                esc(name),
                esc(job["kind"].as_str().unwrap_or("?"))
            );
            if let Some(h) = job["held"].as_str() {
                let _ = write!(
                    out,
                    "<p style=\"color:#856404\"><b>Held:</b> {}</p>",
                    esc(h)
                );
            }
            device_table(
                &mut out,
                r.devices().iter().filter(|d| d["job"] == name),
                true,
            );
            let calls: Vec<&Value> = r.lines().iter().filter(|l| l["job"] == name).collect();
            if !calls.is_empty() {
                calls_table(&mut out, &calls);
            }
        }
    } else {
        out.push_str("<p>The full report (every device) is attached as JSON and CSV.</p>");
    }
    out.push_str("<p style=\"color:#666;font-size:11px\">Sent by nightshift. Devices are listed in inventory order.</p></body></html>\n");
    out
}

fn device_table<'a>(out: &mut String, devices: impl Iterator<Item = &'a Value>, with_diff: bool) {
    let _ = write!(
        out,
        "<table style=\"{TABLE}\"><tr><th style=\"{TH}\">Device</th><th style=\"{TH}\">Status</th>\
         <th style=\"{TH}\">Details</th><th style=\"{TH}\">Time</th><th style=\"{TH}\">SSH</th></tr>"
    );
    for d in devices {
        let s = |k: &str| d[k].as_str().unwrap_or_default();
        let status = s("status");
        let mut details = String::new();
        if !GOOD.contains(&status) {
            if !s("step").is_empty() {
                let _ = write!(details, "<b>Step:</b> {}<br>", esc(s("step")));
            }
            if !s("line").is_empty() {
                let _ = write!(details, "<b>Line:</b> <code>{}</code><br>", esc(s("line")));
            }
            let msg = if s("error").is_empty() {
                s("reason")
            } else {
                s("error")
            };
            if !msg.is_empty() {
                let _ = write!(details, "<b>Message:</b> {}<br>", esc(msg));
            }
            if !s("restored").is_empty() {
                let _ = write!(details, "<b>Restored:</b> {}<br>", esc(s("restored")));
            }
            if !s("hint").is_empty() {
                let _ = write!(details, "<i>Hint: {}</i>", esc(s("hint")));
            }
        } else if !s("reason").is_empty() {
            details.push_str(&esc(s("reason")));
        }
        for w in d["warnings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            let _ = write!(
                details,
                "<div style=\"color:#856404\"><b>Warning:</b> {}</div>",
                esc(w)
            );
        }
        if with_diff && matches!(status, "changed" | "would-change") {
            let diff: Vec<String> = d["diff"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|l| {
                    let colour = match l.chars().next() {
                        Some('+') => "#155724",
                        Some('-') => "#721c24",
                        _ => "#444",
                    };
                    format!("<span style=\"color:{colour}\">{}</span>", esc(l))
                })
                .collect();
            if !diff.is_empty() {
                let _ = write!(
                    details,
                    "<pre style=\"margin:0;font-family:Consolas,Menlo,monospace;font-size:12px\">{}</pre>",
                    diff.join("\n")
                );
            }
        }
        let time =
            device_ms(d).map_or_else(String::new, |ms| format!("{:.1} s", ms as f64 / 1000.0));
        let ssh = d["algorithms"]["kex"]
            .as_str()
            .map(|k| {
                format!(
                    "{}<br>{}<br>{}",
                    esc(k),
                    esc(d["algorithms"]["host_key"].as_str().unwrap_or_default()),
                    esc(d["algorithms"]["cipher"].as_str().unwrap_or_default())
                )
            })
            .unwrap_or_default();
        let _ = write!(
            out,
            "<tr><td style=\"{TD}\"><b>{}</b><br><span style=\"color:#666\">{}</span></td>\
             <td style=\"{TD}\">{}</td><td style=\"{TD}\">{details}</td>\
             <td style=\"{TD};white-space:nowrap\">{time}</td><td style=\"{TD};font-size:11px;color:#666\">{ssh}</td></tr>",
            esc(s("name")),
            esc(s("address")),
            badge(status)
        );
    }
    out.push_str("</table>");
}

fn calls_table(out: &mut String, calls: &[&Value]) {
    let _ = write!(
        out,
        "<table style=\"{TABLE}\"><tr><th style=\"{TH}\">Branch</th><th style=\"{TH}\">Number</th>\
         <th style=\"{TH}\">Result</th><th style=\"{TH}\">Rate</th><th style=\"{TH}\">To CONNECT</th>\
         <th style=\"{TH}\">Attempts</th><th style=\"{TH}\">Line</th><th style=\"{TH}\">Note</th></tr>"
    );
    for c in calls {
        let s = |k: &str| c[k].as_str().unwrap_or_default();
        let secs = c["connect_secs"]
            .as_f64()
            .map_or_else(String::new, |v| format!("{v:.1} s"));
        let rate = c["rate"]
            .as_u64()
            .map_or_else(String::new, |r| format!("{r} bps"));
        let note = [s("error"), s("cleared")]
            .iter()
            .filter(|x| !x.is_empty())
            .map(|x| esc(x))
            .collect::<Vec<_>>()
            .join("<br>");
        let _ = write!(
            out,
            "<tr><td style=\"{TD}\"><b>{}</b></td><td style=\"{TD}\">{}</td><td style=\"{TD}\">{}</td>\
             <td style=\"{TD}\">{rate}</td><td style=\"{TD}\">{secs}</td><td style=\"{TD}\">{}</td>\
             <td style=\"{TD}\">{} / {}</td><td style=\"{TD}\">{note}</td></tr>",
            esc(s("branch")),
            esc(s("number")),
            badge(s("result")),
            c["attempts"],
            esc(s("dialer")),
            c["line"]
        );
    }
    out.push_str("</table>");
}
