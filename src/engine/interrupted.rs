//! A run that stopped (crash, `kill -9`, power cut) and could not resume
//! before its window closed: its report, rebuilt from the journal, so what
//! was done and what was not is never lost. Devices the run was working on
//! when it stopped are `interrupted`, with the last step the journal holds
//! and what that means for the device.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::journal::Event;
use super::{DeviceRecord, JobReport, RunReport};
use crate::config::{Config, JobKind};

/// Which run a journal belongs to, from its first event.
pub struct RunStart<'a> {
    pub run_id: &'a str,
    pub window: Option<&'a str>,
    pub deadline: Option<DateTime<Utc>>,
}

/// The start of the run a journal belongs to.
pub fn run_started(events: &[Event]) -> Option<RunStart<'_>> {
    events.iter().find_map(|e| match e {
        Event::RunStarted {
            run_id,
            window,
            deadline,
            ..
        } => Some(RunStart {
            run_id,
            window: window.as_deref(),
            deadline: *deadline,
        }),
        _ => None,
    })
}

/// The report of the run a journal holds, rebuilt from its events (`None`
/// when it holds no run: empty, or a torn first line).
pub fn report_from_events(config: &Config, events: &[Event]) -> Option<RunReport> {
    let Some(Event::RunStarted {
        run_id,
        window,
        deadline,
        at,
        planned,
    }) = events
        .iter()
        .find(|e| matches!(e, Event::RunStarted { .. }))
    else {
        return None;
    };
    let mut finished: HashMap<(&str, &str), &DeviceRecord> = HashMap::new();
    let mut started: HashSet<(&str, &str)> = HashSet::new();
    let mut last_step: HashMap<(&str, &str), &str> = HashMap::new();
    let mut ended = None;
    for e in events {
        match e {
            Event::Started { job, device, .. } => {
                started.insert((job, device));
            }
            Event::Step { job, device, step } => {
                last_step.insert((job, device), step);
            }
            Event::Finished {
                job,
                device,
                record,
            } => {
                finished.insert((job, device), record);
            }
            Event::RunFinished { at } => ended = Some(*at),
            Event::RunStarted { .. } | Event::Found { .. } => {}
        }
    }
    let closed = deadline.map(|d| d.format("%H:%M UTC").to_string());
    let jobs = planned
        .iter()
        .map(|(job, devices)| {
            let kind = config
                .job_of_run(job)
                .map(|j| kind_name(&j.kind))
                .unwrap_or("unknown");
            let devices: Vec<DeviceRecord> = devices
                .iter()
                .map(|device| {
                    let key = (job.as_str(), device.as_str());
                    if let Some(r) = finished.get(&key) {
                        (*r).clone()
                    } else if started.contains(&key) {
                        interrupted(device, kind, last_step.get(&key).copied())
                    } else {
                        DeviceRecord::plain(
                            device,
                            "not-started",
                            match &closed {
                                Some(c) => format!(
                                    "nightshift stopped before this device started, and the window closed at {c} before the run could resume"
                                ),
                                None => "nightshift stopped before this device started".into(),
                            },
                        )
                    }
                })
                .collect();
            // A POTS job's finished dialers carry their calls.
            let calls = devices
                .iter()
                .filter_map(|d: &DeviceRecord| match d.detail_value() {
                    serde_json::Value::Array(calls) => Some(calls),
                    _ => None,
                })
                .flatten()
                .collect();
            JobReport {
                name: job.clone(),
                kind: kind.into(),
                devices,
                calls,
                held: None,
            }
        })
        .collect();
    // The last moment the journal knows of (steps carry no time).
    let last = events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::Started { at, .. } => Some(*at),
            _ => None,
        })
        .unwrap_or(*at);
    let interrupted = ended.is_none().then(|| {
        match &closed {
            Some(c) => format!(
                "nightshift stopped during this run (last device started {}) and its window closed at {c} before the run could resume",
                last.format("%H:%M:%S UTC")
            ),
            None => format!(
                "nightshift stopped during this run (last device started {})",
                last.format("%H:%M:%S UTC")
            ),
        }
    });
    Some(RunReport {
        run_id: run_id.clone(),
        window: window.clone(),
        started: *at,
        finished: ended.unwrap_or(last),
        deadline: *deadline,
        resumed: false,
        interrupted,
        stopped: false,
        journal_damage: Vec::new(),
        jobs,
    })
}

pub fn kind_name(kind: &JobKind) -> &'static str {
    match kind {
        JobKind::Acl { .. } => "acl",
        JobKind::Exec { .. } => "exec",
        JobKind::Pots { .. } => "pots",
        JobKind::Rollback { .. } => "rollback",
    }
}

/// A device the run was working on when it stopped: what its last
/// journalled step means for it.
fn interrupted(device: &str, kind: &str, last_step: Option<&str>) -> DeviceRecord {
    // Steps are an ACL push's; a POTS dialer has lines, not steps.
    if kind == "pots" {
        return DeviceRecord::plain(
            device,
            "interrupted",
            "nightshift stopped while this dialer was testing lines: a call may still hold a modem line; check `show line` and clear it".into(),
        );
    }
    if kind != "acl" && last_step.is_none() {
        return DeviceRecord::plain(
            device,
            "interrupted",
            "nightshift stopped while working on this device; its result was not recorded".into(),
        );
    }
    let reason = match last_step {
        None | Some("connect") | Some("read") => format!(
            "nightshift stopped while working on this device (last step: {}), before it sent any change; nothing was changed by this run",
            last_step.unwrap_or("start")
        ),
        Some("applying") | Some("apply") | Some("verify") => format!(
            "nightshift stopped while CHANGING this device (last step: {}): the ACL may be partly applied, or rolled back by the device's safety net (revert timer or checkpoint); check the ACL and its interfaces on the device now",
            last_step.unwrap_or_default()
        ),
        Some("confirm") => "nightshift stopped after the change was verified and confirmed, before it was saved: the running config has the new ACL, the startup config may not; check and save it".into(),
        Some(step) => format!(
            "nightshift stopped after step {step}, before the device's result was recorded; check the device"
        ),
    };
    DeviceRecord::plain(device, "interrupted", reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn ev(s: &str) -> Event {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn every_planned_device_is_accounted_for() {
        let config = Config::parse(
            "t.toml",
            "version = 1\n[daemon]\nstate_dir = \"/tmp/x\"\n",
            "2026-11-26T00:00:00Z".parse().unwrap(),
        );
        let config = match config {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let events = vec![
            ev(
                r#"{"event":"run-started","data":{"run_id":"w-1","window":"w","deadline":"2026-11-26T04:00:00Z","at":"2026-11-26T02:00:00Z","planned":[["push",["a","b","c","d","e"]],["lines",["hub-1"]]]}}"#,
            ),
            ev(
                r#"{"event":"started","data":{"job":"push","device":"a","at":"2026-11-26T02:00:01Z"}}"#,
            ),
            ev(
                r#"{"event":"finished","data":{"job":"push","device":"a","record":{"device":"a","status":"changed","reason":null}}}"#,
            ),
            ev(
                r#"{"event":"started","data":{"job":"push","device":"b","at":"2026-11-26T02:00:02Z"}}"#,
            ),
            ev(r#"{"event":"step","data":{"job":"push","device":"b","step":"read"}}"#),
            ev(
                r#"{"event":"started","data":{"job":"push","device":"c","at":"2026-11-26T02:00:03Z"}}"#,
            ),
            ev(r#"{"event":"step","data":{"job":"push","device":"c","step":"applying"}}"#),
            ev(
                r#"{"event":"started","data":{"job":"push","device":"d","at":"2026-11-26T02:00:04Z"}}"#,
            ),
            ev(r#"{"event":"step","data":{"job":"push","device":"d","step":"confirm"}}"#),
            ev(
                r#"{"event":"finished","data":{"job":"lines","device":"hub-1","record":{"device":"hub-1","status":"done","reason":null,"detail":[{"branch":"b1","result":"connect"}]}}}"#,
            ),
        ];
        let r = report_from_events(&config, &events).unwrap();
        let status: Vec<&str> = r.jobs[0]
            .devices
            .iter()
            .map(|d| d.status.as_str())
            .collect();
        assert_eq!(
            status,
            [
                "changed",
                "interrupted",
                "interrupted",
                "interrupted",
                "not-started"
            ]
        );
        let why = |i: usize| r.jobs[0].devices[i].reason.clone().unwrap_or_default();
        assert!(why(1).contains("nothing was changed"), "{}", why(1));
        assert!(why(2).contains("CHANGING"), "{}", why(2));
        assert!(why(3).contains("before it was saved"), "{}", why(3));
        assert!(why(4).contains("window closed at 04:00 UTC"), "{}", why(4));
        let note = r.interrupted.unwrap();
        assert!(note.contains("last device started 02:00:04 UTC"), "{note}");
        assert_eq!(
            r.finished,
            utc("2026-11-26T02:00:04Z"),
            "the last it knew of"
        );
        // A POTS dialer's calls come back with it.
        assert_eq!(r.jobs[1].calls.len(), 1);
        assert_eq!(r.jobs[1].calls[0]["branch"], "b1");
    }
}
