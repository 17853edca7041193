//! The run engine against the lab: order, caps, brakes, deadline, resume.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// The kill test waits on a blocking thread before killing the child.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::PASSWORD;
use nightshift::lab::{Lab, LabSpec};

async fn fleet(spec: LabSpec, extra: &str, job_keys: &str) -> (Lab, tempfile::TempDir, PathBuf) {
    let (lab, dir, path) = common::lab_with_config(spec).await;
    let mut text = std::fs::read_to_string(&path).unwrap();
    text = text.replace(
        "concurrency = 20\n",
        &format!("concurrency = 20\n{job_keys}"),
    );
    text = text.replace("[windows.nightly]", &format!("{extra}\n[windows.nightly]"));
    std::fs::write(&path, text).unwrap();
    (lab, dir, path)
}

fn spawn_run(config: &Path, args: &[&str]) -> std::process::Child {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    common::spawn_nightshift(config, &all, PASSWORD)
}

async fn run(config: &Path, args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    let r = common::run_json(config, &all, PASSWORD).await;
    let text = r.text();
    (r.code, r.json, text)
}

fn status_of(v: &serde_json::Value, job: &str, device: &str) -> (String, String) {
    let d = v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["job"] == job && d["name"] == device)
        .unwrap_or_else(|| panic!("{job}/{device} in {v}"));
    (
        d["status"].as_str().unwrap().to_string(),
        d["reason"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiers_then_serial_order_and_caps() {
    let (lab, _dir, config) = fleet(
        LabSpec {
            ios: 4,
            nxos: 3,
            latency: Duration::from_millis(3),
            ..Default::default()
        },
        "",
        "",
    )
    .await;
    let (code, _, text) = run(&config, &["lock-it-down"]).await;
    assert_eq!(code, Some(0), "{text}");
    let st = lab.stats();
    let last_tier1 = st
        .devices
        .iter()
        .filter(|d| d.name.starts_with("ios"))
        .map(|d| d.last_logout_ms.unwrap())
        .max()
        .unwrap();
    let first_tier2 = st
        .devices
        .iter()
        .filter(|d| d.name.starts_with("nxos"))
        .map(|d| d.first_login_ms.unwrap())
        .min()
        .unwrap();
    assert!(
        last_tier1 <= first_tier2,
        "tier 1 finished ({last_tier1} ms) before tier 2 started ({first_tier2} ms)"
    );

    // concurrency = 1: strictly serial, in inventory order.
    let (lab, _dir, config) = fleet(
        LabSpec {
            ios: 4,
            nxos: 0,
            latency: Duration::from_millis(3),
            ..Default::default()
        },
        "",
        "",
    )
    .await;
    let (code, _, _) = run(&config, &["lock-it-down", "--concurrency", "1"]).await;
    assert_eq!(code, Some(0));
    let st = lab.stats();
    assert_eq!(st.max_concurrent_sessions, 1);
    for w in st.devices.windows(2) {
        assert!(
            w[0].last_logout_ms.unwrap() <= w[1].first_login_ms.unwrap(),
            "{} before {}",
            w[0].name,
            w[1].name
        );
    }

    // A cap of 2 on the closets, concurrency 20.
    let (lab, _dir, config) = fleet(
        LabSpec {
            ios: 8,
            nxos: 0,
            latency: Duration::from_millis(5),
            ..Default::default()
        },
        "",
        "caps = { \"tag:closet\" = 2 }\n",
    )
    .await;
    let (code, _, _) = run(&config, &["lock-it-down"]).await;
    assert_eq!(code, Some(0));
    assert_eq!(lab.stats().max_concurrent_sessions, 2);
    lab.shutdown().await;
}

const SHOW_JOB: &str = "[jobs.show]\nkind = \"exec\"\ndevices = [\"ios-*\", \"nxos-*\"]\ncommands = [\"show version\"]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_device_is_skipped_by_later_jobs_and_the_failure_brake_holds_tiers() {
    let faults = vec!["reject:ios-002:3".parse().unwrap()];
    let (lab, _dir, config) = fleet(
        LabSpec {
            ios: 3,
            nxos: 2,
            faults,
            ..Default::default()
        },
        SHOW_JOB,
        "max_failures = 0\n",
    )
    .await;
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "jobs = [\"lock-it-down\"]",
        "jobs = [\"lock-it-down\", \"show\"]",
    );
    std::fs::write(&config, text).unwrap();
    let (code, v, text) = run(&config, &["--window", "nightly", "--now"]).await;
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(
        status_of(&v, "lock-it-down", "ios-002").0,
        "failed",
        "{text}"
    );
    assert_eq!(status_of(&v, "lock-it-down", "ios-001").0, "changed");
    let (held, why) = status_of(&v, "lock-it-down", "nxos-001");
    assert_eq!(held, "held");
    assert!(why.contains("tier 1: 1 of 3 devices failed"), "{why}");
    assert_eq!(
        status_of(&v, "show", "ios-002"),
        ("skipped".into(), "failed in job lock-it-down".into())
    );
    assert_eq!(status_of(&v, "show", "ios-001").0, "ok");
    assert_eq!(
        status_of(&v, "show", "nxos-001").0,
        "ok",
        "held in one job is not failed"
    );
    assert!(text.contains("held: tier 1: 1 of 3 devices failed"));
    assert_eq!(lab.stats().device("nxos-001").unwrap().config_lines, 0);
    lab.shutdown().await;
}

/// The report lists devices in inventory order, not in the order they
/// finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_in_inventory_order_whatever_the_order_of_completion() {
    let (lab, _dir, config) = fleet(
        LabSpec {
            ios: 4,
            nxos: 0,
            faults: vec!["slow:ios-001:100ms".parse().unwrap()],
            ..Default::default()
        },
        "",
        "",
    )
    .await;
    let (code, v, text) = run(&config, &["lock-it-down"]).await;
    assert_eq!(code, Some(0), "{text}");
    let st = lab.stats();
    let ended = |d: &str| st.device(d).unwrap().last_logout_ms.unwrap();
    assert!(ended("ios-001") > ended("ios-004"), "ios-001 finished last");
    let names: Vec<&str> = v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ios-001", "ios-002", "ios-003", "ios-004"]);
    let at = |d: &str| text.find(&format!("=== {d} ")).unwrap();
    assert!(
        at("ios-001") < at("ios-002") && at("ios-003") < at("ios-004"),
        "{text}"
    );
    lab.shutdown().await;
}

/// `max_failures` as a share of the tier: one failure in three (33 %) holds
/// the next tier under "30%", not under "50%".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failure_brake_as_a_percentage_of_the_tier() {
    for (share, held) in [("30%", true), ("50%", false)] {
        let faults = vec!["reject:ios-002:3".parse().unwrap()];
        let (lab, _dir, config) = fleet(
            LabSpec {
                ios: 3,
                nxos: 2,
                faults,
                ..Default::default()
            },
            "",
            &format!("max_failures = \"{share}\"\n"),
        )
        .await;
        let (code, v, text) = run(&config, &["lock-it-down"]).await;
        assert_eq!(code, Some(1), "{text}");
        assert_eq!(status_of(&v, "lock-it-down", "ios-002").0, "failed");
        let (status, why) = status_of(&v, "lock-it-down", "nxos-001");
        if held {
            assert_eq!(status, "held", "{share}: {text}");
            assert!(why.contains("tier 1: 1 of 3 devices failed"), "{why}");
            assert_eq!(lab.stats().device("nxos-001").unwrap().logins, 0);
        } else {
            assert_eq!(status, "changed", "{share}: {text}");
        }
        lab.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lockout_brake_stops_new_devices_after_one_rejection() {
    let faults = ["auth:ios-003", "auth:ios-004", "auth:ios-005"]
        .iter()
        .map(|f| f.parse().unwrap())
        .collect();
    let (lab, _dir, config) = fleet(
        LabSpec {
            ios: 8,
            nxos: 0,
            faults,
            ..Default::default()
        },
        "",
        "",
    )
    .await;
    let (code, v, _) = run(&config, &["lock-it-down", "--concurrency", "1"]).await;
    assert_eq!(code, Some(1));
    assert_eq!(
        lab.stats().auth_failures,
        1,
        "one rejected login, not one per device"
    );
    assert_eq!(status_of(&v, "lock-it-down", "ios-003").0, "failed");
    for n in ["ios-004", "ios-005", "ios-006", "ios-007", "ios-008"] {
        let (s, why) = status_of(&v, "lock-it-down", n);
        assert_eq!(s, "not-started", "{n}");
        assert!(
            why.starts_with("lockout brake: 1 login(s) rejected"),
            "{why}"
        );
    }
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_auth_failures_lets_a_device_with_an_account_of_its_own_fail_alone() {
    // Found by the fault soak: once the canary had proven the credentials,
    // the first device that refused them stopped every other device of the
    // profile, whatever `max_auth_failures` allowed.
    let faults = ["auth:ios-003", "auth:ios-005"]
        .iter()
        .map(|f| f.parse().unwrap())
        .collect();
    let (lab, _dir, config) = fleet(
        LabSpec {
            ios: 8,
            nxos: 0,
            faults,
            ..Default::default()
        },
        "",
        "",
    )
    .await;
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[ssh]", "max_auth_failures = 3\n\n[ssh]");
    // `max_auth_failures` belongs to [daemon], the table before [ssh].
    std::fs::write(&config, text).unwrap();
    let (code, v, text) = run(&config, &["lock-it-down", "--concurrency", "1"]).await;
    assert_eq!(code, Some(1), "{text}");
    for n in 1..=8 {
        let name = format!("ios-{n:03}");
        let (s, why) = status_of(&v, "lock-it-down", &name);
        if n == 3 || n == 5 {
            assert_eq!(s, "failed", "{name}: {why}");
            assert!(why.contains("login rejected"), "{name}: {why}");
        } else {
            assert!(s == "changed" || s == "unchanged", "{name}: {s} {why}");
        }
    }
    assert_eq!(lab.stats().auth_failures, 2, "{text}");
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_password_is_sent_once_though_twenty_devices_connect_at_once() {
    // The canary (ios-001, not in this run) takes the password; the 30
    // devices of the run refuse it, as when a fleet's AAA differs from the
    // canary's. At concurrency 20 the first wave connects and exchanges
    // keys at once, but only one device sends the password, and it is
    // refused: nobody else sends it.
    let faults = (2..=31)
        .map(|n| format!("auth:ios-{n:03}").parse().unwrap())
        .collect();
    let (lab, _dir, config) = fleet(
        LabSpec {
            ios: 31,
            nxos: 0,
            faults,
            ..Default::default()
        },
        "",
        "",
    )
    .await;
    let names = (2..=31)
        .map(|n| format!("ios-{n:03}"))
        .collect::<Vec<_>>()
        .join(",");
    let r = common::run_json(
        &config,
        &["run", "lock-it-down", "--devices", &names],
        PASSWORD,
    )
    .await;
    let text = r.text();
    assert_eq!(r.code, Some(1), "{text}");
    let st = lab.stats();
    assert_eq!(st.auth_failures, 1, "{text}");
    let statuses: Vec<(String, String)> = (2..=31)
        .map(|n| status_of(&r.json, "lock-it-down", &format!("ios-{n:03}")))
        .collect();
    let failed: Vec<_> = statuses.iter().filter(|(s, _)| s == "failed").collect();
    assert_eq!(failed.len(), 1, "{statuses:?}");
    assert!(failed[0].1.contains("login rejected"), "{statuses:?}");
    // The first device in inventory order proves, not the fastest.
    assert_eq!(statuses[0].0, "failed", "ios-002 tried: {statuses:?}");
    let mut at_the_gate = 0;
    for (s, why) in statuses.iter().filter(|(s, _)| s != "failed") {
        assert_eq!(s, "not-started", "{statuses:?}");
        if why.contains("no login was tried") {
            at_the_gate += 1;
        } else {
            assert!(why.starts_with("lockout brake"), "{why}");
        }
    }
    assert!(
        at_the_gate > 0,
        "the first wave waited at the gate: {statuses:?}"
    );
    assert!(
        st.devices.iter().skip(1).all(|d| d.logins == 0),
        "nobody but the canary logged in"
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_enable_secret_trips_the_lockout_brake_too() {
    // AAA counts a wrong enable secret like a failed login: after one
    // refusal no other device is asked for it.
    let (lab, _dir, config) = fleet(
        LabSpec {
            ios: 6,
            nxos: 0,
            faults: vec!["enable:ios-002".parse().unwrap()],
            ..Default::default()
        },
        "",
        "",
    )
    .await;
    let (code, v, text) = run(&config, &["lock-it-down", "--concurrency", "1"]).await;
    assert_eq!(code, Some(1), "{text}");
    let (s, why) = status_of(&v, "lock-it-down", "ios-002");
    assert_eq!(s, "failed");
    assert!(why.contains("enable secret was refused"), "{why}");
    let stats = lab.stats();
    assert_eq!(
        stats.device("ios-002").unwrap().enable_failures,
        1,
        "{text}"
    );
    for n in ["ios-003", "ios-004", "ios-005", "ios-006"] {
        let (s, why) = status_of(&v, "lock-it-down", n);
        assert_eq!(s, "not-started", "{n}");
        assert!(
            why.starts_with("lockout brake: 1 login(s) rejected"),
            "{why}"
        );
        assert_eq!(stats.device(n).unwrap().logins, 0, "{n} never tried");
    }
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_starts_that_cannot_finish_before_the_window_closes() {
    // Budget 30 s, window 20 s: no device fits.
    let (lab, _dir, config) = fleet(
        LabSpec {
            ios: 2,
            nxos: 0,
            ..Default::default()
        },
        "",
        "budget = \"30s\"\n",
    )
    .await;
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("duration = \"4h\"", "duration = \"20s\"");
    std::fs::write(&config, text).unwrap();
    let (code, v, _) = run(&config, &["--window", "nightly", "--now"]).await;
    assert_eq!(code, Some(1));
    let (s, why) = status_of(&v, "lock-it-down", "ios-001");
    assert_eq!(s, "not-started");
    assert!(why.starts_with("window closed"), "{why}");
    // Only the canary's credential check logged in.
    assert_eq!(lab.stats().devices.iter().map(|d| d.logins).sum::<u64>(), 1);

    // Budget 1 s, window 3 s, devices taking ~0.7 s one at a time: some run, the rest do not start.
    // Time scale 0.1: the 10-minute revert timer is 60 s, longer than the change.
    let (lab, _dir, config) = fleet(
        LabSpec {
            ios: 8,
            nxos: 0,
            latency: Duration::from_millis(60),
            time_scale: 0.1,
            ..Default::default()
        },
        "",
        "budget = \"1s\"\n",
    )
    .await;
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("duration = \"4h\"", "duration = \"3s\"");
    std::fs::write(&config, text).unwrap();
    let (_, v, text) = run(
        &config,
        &["--window", "nightly", "--now", "--concurrency", "1"],
    )
    .await;
    let statuses: Vec<String> = (1..=8)
        .map(|i| status_of(&v, "lock-it-down", &format!("ios-{i:03}")).0)
        .collect();
    let changed = statuses.iter().filter(|s| *s == "changed").count();
    assert!(
        changed >= 1 && statuses.iter().any(|s| s == "not-started"),
        "{statuses:?}\n{text}"
    );
    // Started devices finished; none was cut half-way.
    assert!(
        statuses
            .iter()
            .all(|s| s == "changed" || s == "not-started"),
        "{statuses:?}"
    );
    assert!(lab.stats().devices.iter().all(|d| d.unprotected_ms == 0));
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_after_kill_9_touches_no_finished_device_again() {
    // Time scale 0.1: revert timers (60 s) outlive the kills, so resuming
    // must confirm the ones an attempt left pending.
    let (lab, dir, config) = fleet(
        LabSpec {
            ios: 450,
            nxos: 50,
            latency: Duration::from_millis(2),
            time_scale: 0.1,
            ..Default::default()
        },
        "",
        "",
    )
    .await;
    let run_id = "resume-test";
    let journal = dir
        .path()
        .join("lab.state/journal")
        .join(format!("{run_id}.jsonl"));
    fn finished_in(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["event"] == "finished")
            .map(|e| e["data"]["device"].as_str().unwrap().to_string())
            .collect()
    }
    // Kill at random points: once the journal shows a random number of
    // finished devices, then again further on.
    let mut threshold = 20 + usize::from(rand::random::<u8>()) % 100;
    for attempt in 0..2 {
        let (cfg, journal) = (config.clone(), journal.clone());
        let killed = tokio::task::spawn_blocking(move || {
            let mut child = spawn_run(
                &cfg,
                &["lock-it-down", "--run-id", run_id, "--concurrency", "40"],
            );
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            while finished_in(&journal).len() < threshold && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill(); // SIGKILL
            child.wait().unwrap()
        })
        .await
        .unwrap();
        assert!(!killed.success(), "attempt {attempt} was killed");
        threshold += 50 + usize::from(rand::random::<u8>()) % 150;
    }
    let done_before = finished_in(&journal);
    assert!(
        !done_before.is_empty() && done_before.len() < 500,
        "killed mid-run: {} finished",
        done_before.len()
    );
    let logins_before: Vec<(String, u64)> = lab
        .stats()
        .devices
        .iter()
        .map(|d| (d.name.clone(), d.logins))
        .collect();
    let (code, v, text) = run(
        &config,
        &["lock-it-down", "--run-id", run_id, "--concurrency", "40"],
    )
    .await;
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(v["resumed"], true);
    let devices = v["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 500, "every device accounted for");
    assert!(
        devices
            .iter()
            .all(|d| d["status"] == "changed" || d["status"] == "unchanged"),
        "{text}"
    );
    let st = lab.stats();
    for (name, before) in &logins_before {
        if done_before.contains(name) {
            // The canary gets one more login: the credential check of the resumed run.
            let check = u64::from(name == "ios-001");
            assert_eq!(
                st.device(name).unwrap().logins,
                *before + check,
                "{name} finished before the kill and was touched again"
            );
        }
    }
    for d in &st.devices {
        assert_eq!(d.unprotected_ms, 0, "{}", d.name);
        assert!(d.saved, "{}", d.name);
    }
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_device_that_fails_gets_back_the_acl_the_run_found_not_the_one_the_crash_left() {
    // Found by the fault soak. An attempt died halfway through ios-002's
    // change (its journal ends at "applying"); the resumed attempt read the
    // half-changed ACL, failed, and "restored" that, reporting "previous
    // ACL restored and verified" over an ACL the device never had before
    // the run. The journal now keeps what the first attempt found.
    let (lab, dir, config) = fleet(
        LabSpec {
            ios: 3,
            nxos: 0,
            // The resumed attempt's second configuration line is refused.
            faults: vec!["reject:ios-002:2".parse().unwrap()],
            ..Default::default()
        },
        "",
        "",
    )
    .await;
    let original: Vec<String> = lab
        .acl("ios-002", "LOCK_IT_DOWN")
        .unwrap()
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    // What the crash left: one new rule in, the old ones still there.
    let left = [
        "permit tcp 10.0.0.0 0.0.0.255 any eq 22",
        "permit tcp 10.0.0.0 0.0.0.255 any eq 443",
        "permit icmp any any echo",
        "deny ip any any",
    ];
    lab.seed_acl("ios-002", "LOCK_IT_DOWN", &left).unwrap();
    let at = "2026-12-05T01:00:00Z";
    let found = serde_json::json!({
        "exists": true,
        "entries": original.iter().map(|e| [serde_json::Value::Null, e.as_str().into()]).collect::<Vec<_>>(),
    });
    let events = [
        serde_json::json!({"event": "run-started", "data": {"run_id": "half", "window": null, "deadline": null, "at": at,
            "planned": [["lock-it-down", ["ios-001", "ios-002", "ios-003"]]]}}),
        serde_json::json!({"event": "started", "data": {"job": "lock-it-down", "device": "ios-002", "at": at}}),
        serde_json::json!({"event": "step", "data": {"job": "lock-it-down", "device": "ios-002", "step": "connect"}}),
        serde_json::json!({"event": "step", "data": {"job": "lock-it-down", "device": "ios-002", "step": "read"}}),
        serde_json::json!({"event": "found", "data": {"job": "lock-it-down", "device": "ios-002", "found": found}}),
        serde_json::json!({"event": "step", "data": {"job": "lock-it-down", "device": "ios-002", "step": "applying"}}),
    ];
    let journal = dir.path().join("lab.state/journal");
    std::fs::create_dir_all(&journal).unwrap();
    let text: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(journal.join("half.jsonl"), text).unwrap();

    let (code, v, text) = run(&config, &["lock-it-down", "--run-id", "half"]).await;
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(v["resumed"], true, "{text}");
    let d = v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "ios-002")
        .unwrap()
        .clone();
    assert_eq!(d["status"], "failed", "{d}");
    assert_eq!(d["restored"], "previous ACL restored and verified", "{d}");
    let now: Vec<String> = lab
        .acl("ios-002", "LOCK_IT_DOWN")
        .unwrap()
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    assert_eq!(now, original, "the ACL the run found is back");
    // The report's "before" is what the run found, too.
    assert_eq!(d["before"], serde_json::json!(original), "{d}");
    assert_eq!(lab.stats().device("ios-002").unwrap().unprotected_ms, 0);
    lab.shutdown().await;
}
