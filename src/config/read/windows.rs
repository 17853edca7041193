//! `[windows.NAME]`: schedule, zone, duration, latest start, jobs.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::super::doc::{Doc, Table, as_table};
use super::super::{Config, Window};
use super::{valid_name, zone};
use crate::schedule::Schedule;

const WINDOW_KEYS: &[&str] = &[
    "schedule",
    "timezone",
    "duration",
    "latest_start",
    "plan_lead",
    "jobs",
];

pub(super) fn read_windows(
    top: &mut Table<'_, '_>,
    doc: &mut Doc<'_>,
    config: &Config,
    now: DateTime<Utc>,
) -> Vec<Window> {
    let mut out = Vec::new();
    for (name, value) in top.named_tables(doc, "windows") {
        let path = format!("windows.{}", name.value);
        if !valid_name(&name.value) {
            doc.problem(
                name.span.clone(),
                path.clone(),
                "window names may use letters, digits, '-', '_' and '.' only",
                None,
            );
        }
        let Some(mut t) = as_table(doc, value, path.clone(), WINDOW_KEYS) else {
            continue;
        };
        let expr = t.required_string(doc, "schedule", "a 5-field crontab line in the window's zone, e.g. schedule = \"0 2 * * 2\" (Tuesdays 02:00)");
        let zone = if t.contains("timezone") {
            zone(&mut t, doc, "timezone")
        } else if config.daemon.timezone.is_some() {
            config.daemon.timezone
        } else {
            doc.problem(t.span.clone(), format!("{path}.timezone"), "no time zone for this window", Some("set timezone = \"Europe/Berlin\" (any IANA name) here or in [daemon]; nightshift never assumes UTC".into()));
            None
        };
        let duration = if t.contains("duration") {
            t.duration(doc, "duration")
        } else {
            doc.problem(
                t.span.clone(),
                format!("{path}.duration"),
                "`duration` is missing",
                Some("say how long the window stays open, e.g. duration = \"3h\"".into()),
            );
            None
        };
        let latest_start = t.duration(doc, "latest_start");
        let plan_lead = t.duration(doc, "plan_lead");
        let jobs = if t.contains("jobs") {
            t.string_list(doc, "jobs")
        } else {
            doc.problem(
                t.span.clone(),
                format!("{path}.jobs"),
                "`jobs` is missing",
                Some("list the jobs to run, in order, e.g. jobs = [\"acl-push\"]".into()),
            );
            None
        };
        let mut seen = HashSet::new();
        for (i, j) in jobs.iter().flatten().enumerate() {
            if !top.has_named("jobs", &j.value) {
                doc.problem(
                    j.span.clone(),
                    format!("{path}.jobs[{i}]"),
                    format!("unknown job \"{}\"", j.value),
                    Some("define it as [jobs.NAME] or fix the name".into()),
                );
            }
            if !seen.insert(j.value.clone()) {
                doc.problem(
                    j.span.clone(),
                    format!("{path}.jobs[{i}]"),
                    format!("job \"{}\" is listed twice", j.value),
                    None,
                );
            }
        }
        if let Some(v) = t
            .raw("jobs")
            .filter(|_| jobs.as_ref().is_some_and(Vec::is_empty))
        {
            doc.problem(
                v.span(),
                format!("{path}.jobs"),
                "no jobs",
                Some("list at least one job".into()),
            );
        }
        let schedule = match (&expr, zone) {
            (Some(e), Some(z)) => match Schedule::parse(&e.value, z, now) {
                Ok(s) => Some(s),
                Err(err) => {
                    doc.problem(e.span.clone(), format!("{path}.schedule"), format!("\"{}\": {err}", e.value), Some("write minute hour day-of-month month day-of-week, e.g. \"30 1 * * 2\"; no seconds field".into()));
                    None
                }
            },
            _ => None,
        };
        if let (Some(l), Some(d)) = (&latest_start, &duration)
            && l.value > d.value
        {
            doc.problem(
                l.span.clone(),
                format!("{path}.latest_start"),
                "later than the window's end",
                Some("latest_start must not exceed duration".into()),
            );
        }
        if let (Some(s), Some(d), Some(e)) = (&schedule, &duration, &expr)
            && let Some(gap) = shortest_gap(s, now)
            && d.value > gap
        {
            doc.problem(
                d.span.clone(),
                format!("{path}.duration"),
                format!(
                    "lasts {} but \"{}\" opens again after {}",
                    humantime::format_duration(d.value),
                    e.value,
                    humantime::format_duration(gap)
                ),
                Some("make the window shorter than the time between its openings".into()),
            );
        }
        if let (Some(s), Some(d), Some(p)) = (&schedule, &duration, &plan_lead)
            && let Some(gap) = shortest_gap(s, now)
            && p.value + d.value > gap
        {
            doc.problem(
                p.span.clone(),
                format!("{path}.plan_lead"),
                format!(
                    "the plan would be made while the window's previous opening is still open ({} before an opening, but the window opens every {} for {})",
                    humantime::format_duration(p.value),
                    humantime::format_duration(gap),
                    humantime::format_duration(d.value)
                ),
                Some(format!(
                    "make plan_lead at most {} (the time between openings less the duration)",
                    humantime::format_duration(gap.saturating_sub(d.value))
                )),
            );
        }
        t.finish(doc);
        if let (Some(schedule), Some(duration), Some(jobs)) = (schedule, duration, jobs) {
            let latest_start = latest_start.map_or(duration.value / 2, |l| l.value);
            out.push(Window {
                name: name.value,
                schedule,
                duration: duration.value,
                latest_start,
                plan_lead: plan_lead.map(|p| p.value).filter(|p| !p.is_zero()),
                jobs: jobs.into_iter().map(|j| j.value).collect(),
            });
        }
    }
    out
}

/// The shortest time between consecutive openings over the next few dozen.
fn shortest_gap(s: &Schedule, now: DateTime<Utc>) -> Option<Duration> {
    let openings: Vec<_> = s.openings_after(now).take(48).collect();
    openings
        .windows(2)
        .filter_map(|w| (w[1] - w[0]).to_std().ok())
        .min()
}
