//! POTS line tests against the lab's dialer hub.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::PASSWORD;
use nightshift::lab::{Lab, LabSpec};

const SCALE: f64 = 0.01;

async fn lab(spec: LabSpec) -> (Lab, tempfile::TempDir, std::path::PathBuf) {
    common::lab_with_config(LabSpec {
        time_scale: SCALE,
        ..spec
    })
    .await
}

async fn run(config: &Path, password: &str) -> (Option<i32>, serde_json::Value, String) {
    let r = common::run_json(config, &["run", "pots"], password).await;
    let text = r.text();
    (r.code, r.json, text)
}

/// The lab's documented outcome for branch N.
fn expected(n: u64) -> &'static str {
    if n % 50 == 23 {
        "no-dialtone"
    } else if n % 10 == 4 {
        "busy"
    } else if n % 10 == 7 {
        "no-answer"
    } else if n % 25 == 9 {
        "no-carrier"
    } else if n % 20 == 13 {
        "no-prompt"
    } else {
        "connect"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_outcome_is_classified_and_a_stuck_line_is_cleared() {
    let faults = vec!["stuck:hub-1:34".parse().unwrap()];
    let (lab, _dir, config) = lab(LabSpec {
        ios: 0,
        nxos: 0,
        dialer_lines: 4,
        branches: 30,
        faults,
        ..Default::default()
    })
    .await;
    let (code, v, text) = run(&config, PASSWORD).await;
    assert_eq!(code, Some(1), "not every line connected: {text}");
    let lines = v["lines"].as_array().unwrap_or_else(|| panic!("{text}"));
    assert_eq!(lines.len(), 30);
    for (i, l) in lines.iter().enumerate() {
        let n = i as u64 + 1;
        assert_eq!(l["branch"], format!("branch-{n:03}"));
        assert_eq!(l["result"], expected(n), "branch {n}: {l}");
        match expected(n) {
            "connect" => {
                assert_eq!(l["rate"], 33600);
                assert_eq!(l["protocol"], "ARQ/V34/LAPM/V42BIS");
                assert!(
                    l["prompt_seen"].as_bool().unwrap() && l["hung_up"].as_bool().unwrap(),
                    "{l}"
                );
                let want = (15 + n * 37 % 46) as f64 * SCALE;
                let got = l["connect_secs"].as_f64().unwrap();
                assert!(
                    got >= want * 0.9 && got < want + 0.25,
                    "branch {n}: CONNECT after {got} s, lab delay {want} s"
                );
                assert!(l["call_secs"].as_f64().unwrap() >= got);
            }
            "no-prompt" => {
                assert!(!l["prompt_seen"].as_bool().unwrap() && l["hung_up"].as_bool().unwrap())
            }
            _ => assert!(l["connect_secs"].is_null()),
        }
        assert_eq!(l["attempts"], 1);
        assert!((33..=36).contains(&l["line"].as_u64().unwrap()));
    }
    let cleared: Vec<_> = lines.iter().filter(|l| !l["cleared"].is_null()).collect();
    assert_eq!(cleared.len(), 1, "{text}");
    assert_eq!(
        cleared[0]["cleared"],
        "line 34 was held by an earlier session; cleared it"
    );
    assert!(text.contains("line 34 was held by an earlier session; cleared it"));
    // One session per line, every line used.
    let st = lab.stats();
    assert_eq!(st.max_concurrent_sessions, 4);
    let used: std::collections::BTreeSet<u64> =
        lines.iter().map(|l| l["line"].as_u64().unwrap()).collect();
    assert_eq!(used.len(), 4);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_is_retried_and_an_unreachable_dialer_fails_only_its_calls() {
    let faults = vec!["refuse:ios-001".parse().unwrap()];
    let (lab, _dir, config) = lab(LabSpec {
        ios: 1,
        nxos: 0,
        dialer_lines: 2,
        branches: 6,
        faults,
        ..Default::default()
    })
    .await;
    let mut text = std::fs::read_to_string(&config).unwrap();
    // Branch 4 is busy: two more tries, 50 ms apart.
    text = text.replace(
        "number = \"5550004\"\n",
        "number = \"5550004\"\nretries = 2\nretry_pause = \"50ms\"\n",
    );
    // A second "dialer" that refuses connections, with one call of its own.
    text = text.replace("[windows.nightly]", "[[jobs.pots.lines]]\nbranch = \"far-away\"\ndialer = \"ios-001\"\nline = 33\nnumber = \"5550001\"\n\n[windows.nightly]");
    std::fs::write(&config, text).unwrap();
    let (code, v, out) = run(&config, PASSWORD).await;
    assert_eq!(code, Some(1));
    let lines = v["lines"].as_array().unwrap_or_else(|| panic!("{out}"));
    let get = |b: &str| lines.iter().find(|l| l["branch"] == b).unwrap().clone();
    assert_eq!(get("branch-004")["result"], "busy");
    assert_eq!(get("branch-004")["attempts"], 3);
    assert_eq!(get("branch-001")["result"], "connect");
    let far = get("far-away");
    assert_eq!(far["result"], "error");
    assert!(
        far["error"]
            .as_str()
            .unwrap()
            .starts_with("dialer ios-001 unreachable: ios-001: cannot connect"),
        "{far}"
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_costs_one_login_not_one_per_line() {
    let (lab, _dir, config) = lab(LabSpec {
        ios: 0,
        nxos: 0,
        dialer_lines: 8,
        branches: 10,
        ..Default::default()
    })
    .await;
    let out = tokio::task::spawn_blocking(move || {
        common::spawn_nightshift(&config, &["run", "pots"], "typo")
            .wait_with_output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // The canary (the hub) refuses it once; no line is dialled.
    assert_eq!(lab.stats().auth_failures, 1);
    assert!(
        stderr.contains("REJECTED") && stderr.contains("no device was touched"),
        "{stderr}"
    );
    lab.shutdown().await;
}

/// In a window, no call starts that could not end before the window closes
/// (each call may take its `timeout`, 2 s here); the calls left are
/// `not-started`, and every call that connected was hung up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_call_starts_that_could_not_end_before_the_window_closes() {
    let (lab, _dir, config) = lab(LabSpec {
        ios: 0,
        nxos: 0,
        dialer_lines: 1,
        branches: 40,
        ..Default::default()
    })
    .await;
    // The dialer's own budget fits; each call's timeout decides.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("duration = \"4h\"", "duration = \"4s\"")
        .replace("kind = \"pots\"\n", "kind = \"pots\"\nbudget = \"1s\"\n");
    std::fs::write(&config, text).unwrap();
    let r = common::run_json(&config, &["run", "--window", "nightly", "--now"], PASSWORD).await;
    let out = r.text();
    assert_eq!(r.code, Some(1), "{out}");
    let lines = r.json["lines"]
        .as_array()
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(lines.len(), 40, "{out}");
    let started: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["result"] != "not-started")
        .collect();
    // One line, calls of ~0.3–0.9 s: a few fit in the first 2 s, not 40.
    assert!(
        !started.is_empty() && started.len() < 20,
        "{} started: {out}",
        started.len()
    );
    for l in lines {
        if l["result"] == "not-started" {
            assert_eq!(
                l["error"], "not started: the window closes before the call could end",
                "{l}"
            );
        }
    }
    // The calls that ran came first, in the job's order.
    let first_not_started = lines
        .iter()
        .position(|l| l["result"] == "not-started")
        .unwrap();
    assert_eq!(first_not_started, started.len(), "{out}");
    for l in started.iter().filter(|l| l["result"] == "connect") {
        assert_eq!(l["hung_up"], true, "{l}");
    }
    lab.shutdown().await;
}
