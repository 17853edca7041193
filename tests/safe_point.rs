//! Devices in flight when a run must end — its window closes, or it is
//! stopped (SIGTERM, Ctrl-C) — stop at a safe point: one that has not begun
//! its change leaves the device as it found it; one that has begun runs to
//! verification or restore (see `resume_after_kill_9…` and the ACL tests).
//! A stopped POTS job aborts the calls still dialling, hangs up their lines
//! and places no other.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::PASSWORD;
use nightshift::clock::{Clock, SystemClock};
use nightshift::config::Config;
use nightshift::device::Login;
use nightshift::engine::{Engine, Progress, RunPlan, RunReport};
use nightshift::jobs::fleet;
use nightshift::lab::{Lab, LabSpec};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

/// Two IOS devices answering each command after 500 ms, pushed one at a
/// time with a budget of 1 s: reaching the change takes a device ≥ 3.5 s
/// (seven round trips or more: prompt, enable and its secret, set-up,
/// reading the ACL and its bindings).
async fn slow_fleet() -> (Lab, tempfile::TempDir, Engine) {
    let (lab, dir, path) = common::lab_with_config(LabSpec {
        ios: 2,
        nxos: 0,
        latency: Duration::from_millis(500),
        ..Default::default()
    })
    .await;
    let mut config = Config::load(&path, SystemClock.now()).unwrap();
    for j in &mut config.jobs {
        j.concurrency = 1;
        j.budget = Duration::from_secs(1);
    }
    (lab, dir, engine(config))
}

/// The engine over every device of `config`, with the lab's credentials.
fn engine(config: Config) -> Engine {
    let login = Login {
        username: "admin".into(),
        password: Some(SecretString::from(PASSWORD)),
        enable_secret: Some(SecretString::from(PASSWORD)),
        key: None,
    };
    let targets: Vec<usize> = (0..config.devices.len()).collect();
    let logins = HashMap::from([("lab".to_string(), login)]);
    let links = Arc::new(fleet::links(&config, &targets, &logins).unwrap());
    Engine {
        config: Arc::new(config),
        links,
        clock: Arc::new(SystemClock),
        stop: CancellationToken::new(),
        progress: Arc::new(Progress::default()),
    }
}

fn plan(deadline: Option<chrono::DateTime<chrono::Utc>>) -> RunPlan {
    RunPlan {
        run_id: "safe-point".into(),
        window: deadline.map(|_| "nightly".into()),
        jobs: vec!["lock-it-down".into()],
        deadline,
        dry_run: false,
        only: None,
        ..RunPlan::default()
    }
}

fn record<'a>(report: &'a RunReport, device: &str) -> (&'a str, &'a str) {
    let d = report.jobs[0]
        .devices
        .iter()
        .find(|d| d.device == device)
        .unwrap_or_else(|| panic!("{device} in {report:?}"));
    (d.status.as_str(), d.reason.as_deref().unwrap_or_default())
}

/// The window closes while the first device is still reading: it does not
/// begin its change after the close, and the second is not started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_reaches_its_change_after_the_window_closed_is_left_as_it_was() {
    let (lab, _dir, engine) = slow_fleet().await;
    // Time for the first device to start (1 s budget), not to reach its change.
    let deadline = SystemClock.now() + chrono::Duration::milliseconds(2_000);
    let report = engine.run(&plan(Some(deadline))).await.unwrap();
    let (status, why) = record(&report, "ios-001");
    assert_eq!(status, "not-started", "{report:?}");
    assert!(
        why.starts_with("window closed at ")
            && why.ends_with("before this device's change began; nothing was changed"),
        "{why}"
    );
    let (status, why) = record(&report, "ios-002");
    assert_eq!(status, "not-started");
    assert!(why.starts_with("window closed at "), "{why}");
    let first = lab.stats().device("ios-001").unwrap().clone();
    assert_eq!(first.logins, 1, "it did connect and read");
    assert_eq!(
        first.config_lines, 0,
        "nothing was sent in configuration mode"
    );
    assert_eq!(first.unprotected_ms, 0);
    assert_eq!(lab.stats().device("ios-002").unwrap().logins, 0);
    lab.shutdown().await;
}

/// Stopped (as by SIGTERM) while the first device is reading: it does not
/// begin its change, and no other device starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_before_a_devices_change_began_leaves_the_device_as_it_was() {
    let (lab, _dir, engine) = slow_fleet().await;
    let stop = engine.stop.clone();
    let stopper = tokio::spawn(async move {
        // Started and logging in by now, far from its change (≥ 3.5 s).
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        stop.cancel();
    });
    let report = engine.run(&plan(None)).await.unwrap();
    stopper.await.unwrap();
    let (status, why) = record(&report, "ios-001");
    assert_eq!(status, "not-started", "{report:?}");
    assert_eq!(
        why,
        "the run was stopped before this device's change began; nothing was changed"
    );
    assert_eq!(record(&report, "ios-002").0, "not-started");
    let first = lab.stats().device("ios-001").unwrap().clone();
    assert_eq!(first.logins, 1);
    assert_eq!(first.config_lines, 0);
    assert_eq!(lab.stats().device("ios-002").unwrap().logins, 0);
    lab.shutdown().await;
}

/// Stopped while the hub's modems dial (a call takes 4–6 s here): the calls
/// dialling are aborted and their lines hung up, none of the others is
/// placed, and the run ends at once instead of after the calls' timeouts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_pots_run_aborts_the_calls_dialling_and_places_no_other() {
    let (lab, _dir, path) = common::lab_with_config(LabSpec {
        ios: 0,
        nxos: 0,
        dialer_lines: 2,
        branches: 10,
        time_scale: 0.1,
        ..Default::default()
    })
    .await;
    let engine = engine(Config::load(&path, SystemClock.now()).unwrap());
    let stop = engine.stop.clone();
    let stopper = tokio::spawn(async move {
        // Both lines dialling (branches 1 and 2 connect after 4–6 s).
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        stop.cancel();
    });
    let t0 = std::time::Instant::now();
    let report = engine
        .run(&RunPlan {
            run_id: "pots-stop".into(),
            window: None,
            jobs: vec!["pots".into()],
            deadline: None,
            dry_run: false,
            only: None,
            ..RunPlan::default()
        })
        .await
        .unwrap();
    stopper.await.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    let calls = &report.jobs[0].calls;
    assert_eq!(calls.len(), 10, "{calls:?}");
    for c in calls {
        let branch = c["branch"].as_str().unwrap();
        if branch == "branch-001" || branch == "branch-002" {
            assert_eq!(c["result"], "aborted", "{c}");
            assert_eq!(
                c["error"],
                "the run was stopped while the call was dialling; it was aborted"
            );
            assert!(c["cleared"].is_null(), "the line was left free: {c}");
        } else {
            assert_eq!(c["result"], "not-started", "{c}");
            assert_eq!(
                c["error"],
                "not started: the run was stopped before the call was placed"
            );
        }
    }
    lab.shutdown().await;
}

/// A run stopped (SIGTERM: `systemctl restart`, an upgrade) is resumed by
/// its next attempt: what the stopped attempt finished is not touched
/// again, what it did not begin is done, and its report says which.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_run_is_resumed_and_the_devices_it_did_not_begin_are_done() {
    let (lab, _dir, path) = common::lab_with_config(LabSpec {
        ios: 4,
        nxos: 0,
        latency: Duration::from_millis(150),
        ..Default::default()
    })
    .await;
    let mut config = Config::load(&path, SystemClock.now()).unwrap();
    for j in &mut config.jobs {
        j.concurrency = 1;
    }
    let first = engine(config.clone());
    let progress = first.progress.clone();
    let stop = first.stop.clone();
    let stopper = tokio::spawn(async move {
        // Once the first device is done, stop: the second is in flight.
        while progress.line().contains("0/4") || !progress.line().contains("/4") {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.cancel();
    });
    let report = first.run(&plan(None)).await.unwrap();
    stopper.await.unwrap();
    assert!(report.stopped, "{report:?}");
    assert_eq!(record(&report, "ios-001").0, "changed");
    let begun: Vec<&str> = report.jobs[0]
        .devices
        .iter()
        .filter(|d| !d.stopped)
        .map(|d| d.device.as_str())
        .collect();
    let not_begun: Vec<&str> = report.jobs[0]
        .devices
        .iter()
        .filter(|d| d.stopped)
        .map(|d| d.device.as_str())
        .collect();
    assert!(!not_begun.is_empty(), "{report:?}");
    assert!(
        report.jobs[0]
            .devices
            .iter()
            .filter(|d| d.stopped)
            .all(|d| d.status == "not-started")
    );
    let before = lab.stats();

    // The next attempt of the same run.
    let again = engine(config).run(&plan(None)).await.unwrap();
    assert!(again.resumed && !again.stopped, "{again:?}");
    let after = lab.stats();
    for d in &begun {
        assert_eq!(
            after.device(d).unwrap().logins,
            before.device(d).unwrap().logins,
            "{d} finished in the stopped attempt and is not touched again"
        );
    }
    for d in &not_begun {
        assert_eq!(record(&again, d).0, "changed", "{d}: {again:?}");
    }
    assert_eq!(record(&again, "ios-001").0, "changed");
    assert!(after.devices.iter().all(|d| d.unprotected_ms == 0));
    lab.shutdown().await;
}
