//! The daemon in-process with an injected clock: windows open at the right
//! instant across a DST change, a clock jump past a window records it
//! missed, a late start runs and ends by the window's end. Runs in the
//! session keyring `.ci/test` gives the suite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::PASSWORD;
use common::daemon::{history, logins, setup, start, utc, wait_for_mail, window};
use nightshift::clock::OffsetClock;
use nightshift::credentials::{Credentials, Store, profile_key};
use nightshift::lab::LabSpec;
use secrecy::SecretString;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_berlin_window_opens_when_the_spring_gap_ends() {
    let s = setup(
        LabSpec {
            ios: 3,
            nxos: 0,
            ..Default::default()
        },
        &window("berlin", "30 2 * * *", "Europe/Berlin", "1h"),
    )
    .await;
    // Two seconds before 03:00 CEST on 2026-03-29: 02:30 does not exist that night.
    let clock = Arc::new(OffsetClock::at(utc("2026-03-29T00:59:58Z")));
    let (task, shutdown, notes) = start(&s.config, clock.clone());
    let report = history(&s.state, "berlin-20260329T0100Z", Duration::from_secs(30)).await;
    let started: DateTime<Utc> = report["started"].as_str().unwrap().parse().unwrap();
    assert!(
        started >= utc("2026-03-29T01:00:00Z") && started < utc("2026-03-29T01:00:05Z"),
        "started {started}"
    );
    assert_eq!(report["planned_start"], "2026-03-29T01:00:00Z");
    assert!(
        common::statuses(&report).iter().all(|s| *s == "changed"),
        "{report}"
    );
    shutdown.cancel();
    task.await.unwrap();
    let notes = notes.0.lock().unwrap().clone();
    assert_eq!(
        notes.first().map(String::as_str),
        Some("READY=1"),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n == "STATUS=next window berlin at Sun 2026-03-29 03:00 CEST"),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("STATUS=next window berlin at Mon 2026-03-30 02:30 CEST")),
        "{notes:?}"
    );
    // While the window ran, its progress was the status.
    assert!(
        notes.iter().any(|n| n == "STATUS=running berlin: starting"
            || n.starts_with("STATUS=running berlin: lock-it-down: ") && n.contains("/3 devices")),
        "{notes:?}"
    );
    s.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_jump_past_a_window_records_it_missed_and_runs_nothing() {
    let s = setup(
        LabSpec {
            ios: 3,
            nxos: 0,
            ..Default::default()
        },
        &window("nightly", "0 2 * * *", "America/New_York", "2h"),
    )
    .await;
    // 02:00 EST is 07:00 UTC; the daemon wakes two seconds before.
    let clock = Arc::new(OffsetClock::at(utc("2026-11-26T06:59:58Z")));
    let (task, shutdown, _) = start(&s.config, clock.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let logins_before = logins(&s.lab);
    // A suspend: when the alarm fires, the wall clock says 10:00 UTC, past the window.
    clock.jump(chrono::Duration::hours(3));
    let report = history(&s.state, "nightly-20261126T0700Z", Duration::from_secs(30)).await;
    assert!(
        report["missed"]
            .as_str()
            .unwrap()
            .contains("closed at Thu 2026-11-26 04:00 EST"),
        "{report}"
    );
    assert_eq!(logins(&s.lab), logins_before, "no device touched");
    // The alert says so, in the outbox (no relay configured).
    wait_for_mail(
        &s.state,
        "alert-window-nightly-missed",
        Duration::from_secs(10),
    )
    .await;
    shutdown.cancel();
    task.await.unwrap();
    s.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_start_inside_latest_start_runs_and_ends_by_the_windows_end() {
    // Each device takes a few seconds; one at a time; 6 s of window left.
    let s = setup(
        LabSpec {
            ios: 8,
            nxos: 0,
            latency: Duration::from_millis(60),
            time_scale: 0.1,
            ..Default::default()
        },
        &(window("nightly", "0 2 * * *", "UTC", "30s") + "latest_start = \"25s\"\n"),
    )
    .await;
    let text = std::fs::read_to_string(&s.config)
        .unwrap()
        .replace("concurrency = 20\n", "concurrency = 1\nbudget = \"1s\"\n");
    std::fs::write(&s.config, text).unwrap();
    // The daemon starts 24 s after the opening: late, but inside latest_start.
    let clock = Arc::new(OffsetClock::at(utc("2026-11-26T02:00:24Z")));
    let (task, shutdown, _) = start(&s.config, clock.clone());
    let report = history(&s.state, "nightly-20261126T0200Z", Duration::from_secs(30)).await;
    let finished: DateTime<Utc> = report["finished"].as_str().unwrap().parse().unwrap();
    assert!(
        finished <= utc("2026-11-26T02:00:31Z"),
        "finished {finished}, after the window's end"
    );
    let statuses: Vec<&str> = common::statuses(&report);
    assert!(statuses.contains(&"changed"), "{statuses:?}");
    assert!(statuses.contains(&"not-started"), "{statuses:?}");
    for st in s.lab.stats().devices {
        assert_eq!(st.unprotected_ms, 0, "{}", st.name);
    }
    shutdown.cancel();
    task.await.unwrap();
    s.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_at_the_opening_touch_no_device_and_raise_an_alert() {
    let s = setup(
        LabSpec {
            ios: 4,
            nxos: 0,
            ..Default::default()
        },
        &window("nightly", "0 2 * * *", "UTC", "1h"),
    )
    .await;
    // Someone changed the password on the AAA server since it was stored.
    Store::keyring(&s._key.0)
        .set(
            &profile_key("lab"),
            &Credentials {
                username: "admin".into(),
                password: SecretString::from("expired-Pass-0"),
                enable_secret: None,
            },
        )
        .unwrap();
    let clock = Arc::new(OffsetClock::at(utc("2026-11-26T01:59:58Z")));
    let (task, shutdown, notes) = start(&s.config, clock.clone());
    wait_for_mail(
        &s.state,
        "at-the-opening-of-window-nightly",
        Duration::from_secs(30),
    )
    .await;
    let st = s.lab.stats();
    // One refused login at start-up, one at the opening; nothing else.
    assert_eq!(st.auth_failures, 2);
    assert_eq!(st.devices.iter().map(|d| d.logins).sum::<u64>(), 0);
    assert!(!s.state.join("history").exists(), "nothing ran");
    shutdown.cancel();
    task.await.unwrap();
    let notes = notes.0.lock().unwrap().clone();
    assert!(
        notes.iter().any(|n| n.contains("CREDENTIALS NEEDED: lab")),
        "{notes:?}"
    );
    s.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_credentials_in_credentials_directory_are_read_before_the_keyring() {
    let s = setup(
        LabSpec {
            ios: 2,
            nxos: 0,
            ..Default::default()
        },
        &window("nightly", "0 2 * * *", "UTC", "1h"),
    )
    .await;
    let _ = Store::keyring(&s._key.0).delete(&profile_key("lab"));
    // What systemd decrypts for LoadCredentialEncrypted=credentials.lab:...
    let creds_dir = tempfile::tempdir().unwrap();
    let blob = nightshift::credentials::store::encode(&Credentials {
        username: "admin".into(),
        password: SecretString::from(PASSWORD),
        enable_secret: Some(SecretString::from(PASSWORD)),
    })
    .unwrap();
    std::fs::write(creds_dir.path().join("credentials.lab"), blob.as_bytes()).unwrap();
    let store = Store::with_credentials_dir(&s._key.0, creds_dir.path());
    let config = nightshift::config::Config::load(&s.config, utc("2026-11-26T00:00:00Z")).unwrap();
    let proofs = nightshift::credentials::check_stored(&config, &store, &["lab".to_string()])
        .await
        .unwrap();
    assert_eq!(proofs[0].canary, "ios-001");
    assert_eq!(logins(&s.lab), 1);
    s.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_inside_the_window_resumes_its_run_even_past_latest_start() {
    let s = setup(
        LabSpec {
            ios: 3,
            nxos: 0,
            ..Default::default()
        },
        &window("nightly", "0 2 * * *", "UTC", "1h"),
    )
    .await;
    // The daemon started the 02:00 run, then died; it comes back at 02:40,
    // past latest_start (30 min) but inside the window.
    let path = nightshift::engine::journal_path(&s.state, "nightly-20261126T0200Z");
    let (journal, writer) = nightshift::engine::Journal::open(&path).unwrap();
    assert!(
        journal
            .record(&nightshift::engine::Event::RunStarted {
                run_id: "nightly-20261126T0200Z".into(),
                window: Some("nightly".into()),
                deadline: Some(utc("2026-11-26T03:00:00Z")),
                at: utc("2026-11-26T02:00:01Z"),
                planned: vec![(
                    "lock-it-down".into(),
                    vec!["ios-001".into(), "ios-002".into(), "ios-003".into()]
                )],
            })
            .await
    );
    drop(journal);
    writer.await.unwrap();
    let clock = Arc::new(OffsetClock::at(utc("2026-11-26T02:40:00Z")));
    let (task, shutdown, _) = start(&s.config, clock.clone());
    let report = history(&s.state, "nightly-20261126T0200Z", Duration::from_secs(30)).await;
    assert_eq!(report["resumed"], true, "{report}");
    assert!(report.get("missed").is_none(), "{report}");
    assert!(
        common::statuses(&report).iter().all(|s| *s == "changed"),
        "{report}"
    );
    shutdown.cancel();
    task.await.unwrap();
    s.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_mid_change_is_reported_from_its_journal_once_its_window_closed() {
    let s = setup(
        LabSpec {
            ios: 40,
            nxos: 0,
            latency: Duration::from_millis(15),
            ..Default::default()
        },
        &window("nightly", &common::schedule_closed_now(), "UTC", "1h"),
    )
    .await;
    // The window's run, started by hand for its duration, is killed (-9)
    // once some devices are done and others are in the middle of a change.
    let journal_dir = s.state.join("journal");
    let killed = {
        let config = s.config.clone();
        tokio::task::spawn_blocking(move || {
            let mut child = common::spawn_nightshift(
                &config,
                &["run", "--window", "nightly", "--now"],
                PASSWORD,
            );
            let t0 = std::time::Instant::now();
            loop {
                assert!(t0.elapsed() < Duration::from_secs(60), "no change began");
                let text: String = std::fs::read_dir(&journal_dir)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                    .collect();
                // Each device's last journalled event: kill when three
                // devices are done and two are between `applying` and
                // `apply` (the change half-sent).
                let mut last = std::collections::HashMap::new();
                for line in text.lines() {
                    let Ok(e) = serde_json::from_str::<serde_json::Value>(line) else {
                        continue;
                    };
                    if let Some(device) = e["data"]["device"].as_str() {
                        let what = match e["event"].as_str() {
                            Some("step") => e["data"]["step"].as_str().unwrap_or_default(),
                            Some(other) => other,
                            None => "",
                        };
                        last.insert(device.to_string(), what.to_string());
                    }
                }
                let count = |what: &str| last.values().filter(|w| *w == what).count();
                if count("finished") >= 3 && count("applying") >= 2 {
                    break;
                }
                #[allow(clippy::disallowed_methods)] // a blocking thread of its own
                std::thread::sleep(Duration::from_millis(2));
            }
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap()
        })
        .await
        .unwrap()
    };
    assert!(!killed.success());
    let journal = common::file_names(&s.state.join("journal"));
    assert_eq!(journal.len(), 1, "{journal:?}");
    let run_id = journal[0].trim_end_matches(".jsonl").to_string();

    // The daemon comes back two hours later: the window has closed.
    // The killed run used the real clock; the daemon's is two hours on.
    let later =
        nightshift::clock::Clock::now(&nightshift::clock::SystemClock) + chrono::Duration::hours(2);
    let (task, shutdown, _) = start(&s.config, Arc::new(OffsetClock::at(later)));
    let report = history(&s.state, &run_id, Duration::from_secs(30)).await;
    shutdown.cancel();
    task.await.unwrap();

    assert!(
        report["interrupted"]
            .as_str()
            .unwrap()
            .contains("before the run could resume"),
        "{report}"
    );
    let devices = report["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 40, "every planned device is accounted for");
    let with = |status: &str| devices.iter().filter(|d| d["status"] == status).count();
    assert!(with("changed") >= 3, "{report}");
    assert!(with("interrupted") >= 2, "{report}");
    assert_eq!(
        with("changed") + with("interrupted") + with("not-started"),
        40,
        "{report}"
    );
    assert!(
        devices
            .iter()
            .any(|d| d["status"] == "interrupted"
                && d["reason"].as_str().unwrap().contains("CHANGING")),
        "a device killed mid-change says so: {report}"
    );
    // The mail's text says so at the top and per device.
    let text = nightshift::report::render_text(
        &nightshift::report::Report {
            json: report.clone(),
        },
        true,
    );
    assert!(
        text.contains("INTERRUPTED: nightshift stopped during this run"),
        "{text}"
    );
    assert!(
        text.contains("): INTERRUPTED\n    reason:   nightshift stopped"),
        "{text}"
    );
    let outbox = nightshift::report::outbox::Outbox::new(&s.state);
    let mails = outbox.list().unwrap();
    let reports: Vec<_> = mails.iter().filter(|m| m.kind == "report").collect();
    assert_eq!(reports.len(), 1, "{mails:?}");
    assert!(
        // "(interrupted)" for the run, and the count of interrupted devices.
        reports[0].subject.contains("(interrupted)")
            && reports[0].subject.matches("interrupted").count() >= 2,
        "{}",
        reports[0].subject
    );

    // Another restart does not report it again (it is done by READY).
    let (task, shutdown, notes) = start(&s.config, Arc::new(OffsetClock::at(later)));
    let t0 = std::time::Instant::now();
    while !notes.0.lock().unwrap().iter().any(|n| n == "READY=1") {
        assert!(t0.elapsed() < Duration::from_secs(30), "daemon not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    task.await.unwrap();
    let again = outbox.list().unwrap();
    assert_eq!(again.iter().filter(|m| m.kind == "report").count(), 1);
    s.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opening_found_closed_whose_run_had_started_is_reported_interrupted_not_missed() {
    use nightshift::engine::{Event, Journal, journal_path};
    let s = setup(
        LabSpec {
            ios: 3,
            nxos: 0,
            ..Default::default()
        },
        &window("nightly", "0 2 * * *", "UTC", "2h"),
    )
    .await;
    // The 02:00 run had started: one device changing when it stopped.
    let run_id = "nightly-20261126T0200Z";
    let (journal, writer) = Journal::open(&journal_path(&s.state, run_id)).unwrap();
    for e in [
        Event::RunStarted {
            run_id: run_id.into(),
            window: Some("nightly".into()),
            deadline: Some(utc("2026-11-26T04:00:00Z")),
            at: utc("2026-11-26T02:00:01Z"),
            planned: vec![(
                "lock-it-down".into(),
                vec!["ios-001".into(), "ios-002".into(), "ios-003".into()],
            )],
        },
        Event::Started {
            job: "lock-it-down".into(),
            device: "ios-001".into(),
            at: utc("2026-11-26T02:00:02Z"),
        },
        Event::Step {
            job: "lock-it-down".into(),
            device: "ios-001".into(),
            step: "applying".into(),
        },
    ] {
        assert!(journal.record(&e).await);
    }
    drop(journal);
    writer.await.unwrap();
    // The daemon wakes just before the opening; a suspend makes the alarm
    // fire at 05:00, after the window closed.
    let clock = Arc::new(OffsetClock::at(utc("2026-11-26T01:59:58Z")));
    let (task, shutdown, _) = start(&s.config, clock.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    clock.jump(chrono::Duration::hours(3));
    let report = history(&s.state, run_id, Duration::from_secs(30)).await;
    shutdown.cancel();
    task.await.unwrap();
    assert!(report.get("missed").is_none_or(|m| m.is_null()), "{report}");
    assert!(report["interrupted"].is_string(), "{report}");
    let status: Vec<&str> = common::statuses(&report);
    assert_eq!(
        status,
        ["interrupted", "not-started", "not-started"],
        "{report}"
    );
    s.lab.shutdown().await;
}

/// While a window runs, `nightshift status` (over the control socket) shows
/// its progress: the job, devices done of all, and the counts per status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_running_windows_progress() {
    let s = setup(
        LabSpec {
            ios: 6,
            nxos: 0,
            latency: Duration::from_millis(30),
            ..Default::default()
        },
        &window("nightly", "0 3 * * *", "UTC", "1h"),
    )
    .await;
    // One device at a time: the run lasts a few seconds.
    let text = std::fs::read_to_string(&s.config)
        .unwrap()
        .replace("concurrency = 20\n", "concurrency = 1\n");
    std::fs::write(&s.config, text).unwrap();
    let clock = Arc::new(OffsetClock::at(utc("2026-06-01T02:59:59Z")));
    let (task, shutdown, _notes) = start(&s.config, clock);
    let config = s.config.clone();
    let seen = tokio::task::spawn_blocking(move || {
        let t0 = std::time::Instant::now();
        loop {
            let out = common::text(&common::ns(&config, &["status"], ""));
            if out
                .lines()
                .any(|l| l.starts_with("running:") && l.contains("changed)"))
            {
                return out;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "no progress in 30 s: {out}"
            );
            #[allow(clippy::disallowed_methods)] // polls another process
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .unwrap();
    let line = seen.lines().find(|l| l.starts_with("running:")).unwrap();
    let progress = line
        .strip_prefix("running:")
        .unwrap()
        .trim()
        .strip_prefix("nightly lock-it-down: ")
        .unwrap_or_else(|| panic!("{seen}"));
    // e.g. `2/6 devices (2 changed)`, fewer than all done.
    let (done, rest) = progress.split_once("/6 devices (").unwrap();
    let done: usize = done.parse().unwrap();
    assert!((1..6).contains(&done), "{seen}");
    assert_eq!(rest, format!("{done} changed)"), "{seen}");
    assert!(
        seen.contains(&format!(
            "now:         running nightly: lock-it-down: {done}/6"
        )),
        "{seen}"
    );
    let report = history(&s.state, "nightly-20260601T0300Z", Duration::from_secs(60)).await;
    assert!(
        common::statuses(&report).iter().all(|s| *s == "changed"),
        "{report}"
    );
    shutdown.cancel();
    task.await.unwrap();
    s.lab.shutdown().await;
}
