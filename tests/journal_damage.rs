//! A real run journal, cut at every byte offset and with garbage appended
//! (issue #23): it loads without panic, every planned device is accounted
//! for, a torn last record is reported rather than dropped in silence, and
//! a run resumed from a torn journal finishes every device, says so in its
//! report and leaves a journal that reads clean.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use common::PASSWORD;
use nightshift::config::Config;
use nightshift::engine::journal::parse;
use nightshift::engine::{Event, report_from_events};
use nightshift::lab::LabSpec;
use proptest::prelude::*;

/// Planned (job, device) pairs of a journal's first event.
fn planned(events: &[Event]) -> Vec<(String, String)> {
    events
        .iter()
        .find_map(|e| match e {
            Event::RunStarted { planned, .. } => Some(
                planned
                    .iter()
                    .flat_map(|(job, devices)| {
                        devices.iter().map(move |d| (job.clone(), d.clone()))
                    })
                    .collect(),
            ),
            _ => None,
        })
        .unwrap_or_default()
}

/// Every planned device of `bytes` has exactly one record in the report
/// rebuilt from them, and the damage is what the cut made.
fn check(config: &Config, bytes: &[u8], complete_lines: usize, torn: bool) {
    let loaded = parse(bytes);
    assert_eq!(
        loaded.events.len(),
        complete_lines,
        "events of {} bytes",
        bytes.len()
    );
    assert_eq!(
        loaded.damage.iter().any(|d| d.torn),
        torn,
        "torn record at {} bytes: {:?}",
        bytes.len(),
        loaded.damage
    );
    assert!(loaded.damage.iter().filter(|d| !d.torn).count() == 0);
    let Some(report) = report_from_events(config, &loaded.events) else {
        assert!(loaded.events.is_empty() || planned(&loaded.events).is_empty());
        return;
    };
    let mut seen: Vec<(String, String)> = report
        .jobs
        .iter()
        .flat_map(|j| {
            j.devices
                .iter()
                .map(move |d| (j.name.clone(), d.device.clone()))
        })
        .collect();
    seen.sort();
    let mut want = planned(&loaded.events);
    want.sort();
    assert_eq!(
        seen,
        want,
        "every planned device once, cut at {} bytes",
        bytes.len()
    );
}

async fn real_journal() -> (
    nightshift::lab::Lab,
    tempfile::TempDir,
    std::path::PathBuf,
    Vec<u8>,
) {
    let (lab, dir, config) = common::lab_with_config(LabSpec {
        ios: 8,
        nxos: 4,
        latency: Duration::from_millis(1),
        ..Default::default()
    })
    .await;
    let r = common::run_json(
        &config,
        &["run", "lock-it-down", "--run-id", "cut-me"],
        PASSWORD,
    )
    .await;
    assert_eq!(r.code, Some(0), "{}", r.text());
    let journal = dir.path().join("lab.state/journal/cut-me.jsonl");
    let bytes = std::fs::read(&journal).unwrap();
    (lab, dir, config, bytes)
}

fn load_config(path: &Path) -> Config {
    Config::load(path, Utc.with_ymd_and_hms(2026, 12, 5, 3, 0, 0).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_cut_at_every_byte_offset_accounts_for_every_device() {
    let (lab, _dir, config_path, bytes) = real_journal().await;
    let config = load_config(&config_path);
    assert!(
        bytes.ends_with(b"\n") && bytes.len() > 2000,
        "{} bytes",
        bytes.len()
    );
    let mut complete = 0;
    for cut in 0..=bytes.len() {
        let head = &bytes[..cut];
        let at_boundary = cut == 0 || head.ends_with(b"\n");
        check(&config, head, complete, !at_boundary);
        if cut < bytes.len() && bytes[cut] == b'\n' {
            complete += 1;
        }
    }
    lab.shutdown().await;
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(200),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// What a bad disk or a stray `echo >>` leaves: each unreadable line is
    /// listed with its number, and every whole event around it still counts.
    #[test]
    fn garbage_appended_or_spliced_in_is_listed_and_skipped(
        garbage in proptest::collection::vec(any::<u8>(), 1..200),
        at in any::<usize>(),
    ) {
        let good = include_str!("data/journal.jsonl").as_bytes();
        let lines: Vec<&[u8]> = good.split_inclusive(|b| *b == b'\n').collect();
        let at = at % (lines.len() + 1);
        let mut bytes = Vec::new();
        for l in &lines[..at] {
            bytes.extend_from_slice(l);
        }
        bytes.extend_from_slice(&garbage);
        bytes.push(b'\n');
        for l in &lines[at..] {
            bytes.extend_from_slice(l);
        }
        let loaded = parse(&bytes);
        // The garbage may hold newlines (more lines) or even a whole event;
        // the good lines are all there, in order, whatever it holds.
        let good_events = parse(good).events.len();
        prop_assert!(loaded.events.len() >= good_events);
        let damaged: usize = loaded.damage.len();
        let garbage_lines = garbage.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)).count();
        prop_assert!(damaged <= garbage_lines);
        // Line numbers point into the garbage, which spans this many lines.
        let span = garbage.split(|b| *b == b'\n').count();
        prop_assert!(loaded.damage.iter().all(|d| !d.torn && d.line > at && d.line <= at + span), "{:?}", loaded.damage);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_resumed_from_a_torn_journal_reports_the_tear_and_finishes_every_device() {
    let (lab, dir, config, bytes) = real_journal().await;
    let journal = dir.path().join("lab.state/journal/cut-me.jsonl");
    // Keep the run's start and its first few events, then half a record:
    // a crash in the middle of a write.
    let ends: Vec<usize> = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i + 1)
        .collect();
    let cut = ends[3] + (ends[4] - ends[3]) / 2;
    std::fs::write(&journal, &bytes[..cut]).unwrap();
    // Devices whose result the kept part holds are not touched again.
    let kept = parse(&bytes[..cut]);
    let done: Vec<String> = kept
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Finished { device, .. } => Some(device.clone()),
            _ => None,
        })
        .collect();
    let logins_before: Vec<(String, u64)> = lab
        .stats()
        .devices
        .iter()
        .map(|d| (d.name.clone(), d.logins))
        .collect();
    let r = common::run_json(
        &config,
        &["run", "lock-it-down", "--run-id", "cut-me"],
        PASSWORD,
    )
    .await;
    assert_eq!(r.code, Some(0), "{}", r.text());
    assert_eq!(r.json["resumed"], true, "{}", r.text());
    let damage = r.json["journal_damage"]
        .as_array()
        .expect("the tear is reported");
    assert_eq!(damage.len(), 1, "{damage:?}");
    let note = damage[0].as_str().unwrap();
    assert!(
        note.contains("cut-me.jsonl:5:") && note.contains("cut short by a crash"),
        "{note}"
    );
    let devices = r.json["devices"].as_array().unwrap();
    assert_eq!(
        devices.len(),
        12,
        "every device accounted for: {}",
        r.text()
    );
    assert!(
        devices
            .iter()
            .all(|d| d["status"] == "changed" || d["status"] == "unchanged")
    );
    let st = lab.stats();
    for (name, before) in &logins_before {
        if done.contains(name) {
            let check = u64::from(name == "ios-001");
            assert_eq!(
                st.device(name).unwrap().logins,
                *before + check,
                "{name} touched again"
            );
        }
    }
    assert!(st.devices.iter().all(|d| d.unprotected_ms == 0));
    // The tear was cut off before the resumed attempt appended: the journal
    // now reads clean from start to end.
    let after = parse(&std::fs::read(&journal).unwrap());
    assert!(after.damage.is_empty(), "{:?}", after.damage);
    assert!(after.events.len() > kept.events.len());
    lab.shutdown().await;
}

/// A crash while the very first record (the run's plan) was being written:
/// the next attempt writes the plan itself, so a later crash can still be
/// reported from the journal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_first_record_was_torn_writes_its_plan_again() {
    let (lab, dir, config, bytes) = real_journal().await;
    let journal = dir.path().join("lab.state/journal/cut-me.jsonl");
    let first_end = bytes.iter().position(|b| *b == b'\n').unwrap();
    std::fs::write(&journal, &bytes[..first_end / 2]).unwrap();
    let r = common::run_json(
        &config,
        &["run", "lock-it-down", "--run-id", "cut-me"],
        PASSWORD,
    )
    .await;
    assert_eq!(r.code, Some(0), "{}", r.text());
    assert_eq!(r.json["journal_damage"].as_array().map(Vec::len), Some(1));
    let after = parse(&std::fs::read(&journal).unwrap());
    assert!(after.damage.is_empty(), "{:?}", after.damage);
    assert!(
        matches!(after.events.first(), Some(Event::RunStarted { .. })),
        "{:?}",
        after.events.first()
    );
    assert_eq!(planned(&after.events).len(), 12);
    lab.shutdown().await;
}
