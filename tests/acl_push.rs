//! ACL push against the lab: `nightshift run JOB` as a process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::PASSWORD;
use nightshift::jobs::acl::ace::{Entry, parse_line};
use nightshift::lab::{Lab, LabSpec, LabStats};

const INTENT: &[&str] = &[
    "remark managed by nightshift",
    "permit tcp 10.0.0.0 0.0.0.255 any eq 22",
    "permit tcp 10.0.0.0 0.0.0.255 any eq 443",
    "permit udp host 10.0.0.53 any eq 53",
    "permit icmp any any echo",
    "deny ip any any log",
];

fn intent(platform: &str) -> Vec<Entry> {
    // IOS does not show remarks in `show ip access-lists`; the lab's stats
    // list entries as `show` prints them.
    INTENT
        .iter()
        .map(|l| parse_line(l).unwrap().entry)
        .filter(|e| platform == "cisco_nxos" || e.is_rule())
        .collect()
}

fn shown(lines: &[String]) -> Vec<Entry> {
    lines.iter().map(|l| parse_line(l).unwrap().entry).collect()
}

type Run = common::RunOutput;

async fn run(config: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["run", "lock-it-down"];
    args.extend_from_slice(extra);
    common::run_json(config, &args, PASSWORD).await
}

async fn lab(spec: LabSpec) -> (Lab, tempfile::TempDir, PathBuf) {
    common::lab_with_config(spec).await
}

fn statuses(r: &Run) -> Vec<(String, String)> {
    r.json["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap().to_string(),
                d["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn assert_protected_and_intended(st: &LabStats, except: &[&str]) {
    for d in &st.devices {
        assert_eq!(d.unprotected_ms, 0, "{}: never unprotected", d.name);
        if !except.contains(&d.name.as_str()) {
            assert_eq!(
                shown(&d.acls["LOCK_IT_DOWN"]),
                intent(&d.platform),
                "{}",
                d.name
            );
            assert!(d.saved, "{}: saved after verification", d.name);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_to_200_devices_then_nothing_to_do() {
    let (lab, _dir, config) = lab(LabSpec {
        ios: 180,
        nxos: 20,
        ..Default::default()
    })
    .await;
    let first = run(&config, &[]).await;
    assert_eq!(first.code, Some(0), "{}", first.stdout);
    assert!(
        statuses(&first).iter().all(|(_, s)| s == "changed"),
        "{:?}",
        statuses(&first)
    );
    let st = lab.stats();
    assert_protected_and_intended(&st, &[]);
    // Every tenth device had no LOCK_IT_DOWN: it was created, bound nowhere.
    let created = &first.json["devices"][9];
    assert_eq!(created["name"], "ios-010");
    assert!(
        created["before"].as_array().unwrap().is_empty()
            && created["bindings"].as_array().unwrap().is_empty()
    );
    let bound = &first.json["devices"][0];
    assert_eq!(bound["bindings"][0]["interface"], "GigabitEthernet0/1");
    assert_eq!(bound["safety_net"], "IOS revert timer (10 min)");
    assert_eq!(
        first.json["devices"][180]["safety_net"],
        "NX-OS checkpoint nightshift-LOCK_IT_DOWN"
    );
    assert!(
        bound["diff"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("+ permit udp host 10.0.0.53 any eq 53"))
    );
    assert!(bound["algorithms"]["kex"].as_str().is_some());

    let lines_before: Vec<u64> = st.devices.iter().map(|d| d.config_lines).collect();
    let second = run(&config, &[]).await;
    assert_eq!(second.code, Some(0));
    assert!(
        statuses(&second).iter().all(|(_, s)| s == "unchanged"),
        "{:?}",
        statuses(&second)
    );
    let lines_after: Vec<u64> = lab.stats().devices.iter().map(|d| d.config_lines).collect();
    assert_eq!(
        lines_before, lines_after,
        "an unchanged device gets no config command"
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faulty_devices_keep_their_previous_acl_and_the_rest_change() {
    let faults = [
        "reject:ios-002:4",
        "drop:ios-003:3",
        "hang:ios-004",
        "reject:nxos-001:3",
        "drop:nxos-002:2",
    ];
    let (lab, dir, config) = lab(LabSpec {
        ios: 6,
        nxos: 3,
        faults: faults.iter().map(|f| f.parse().unwrap()).collect(),
        ..Default::default()
    })
    .await;
    // The hung device must not hold the run for the default 30 s.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("command_timeout = \"30s\"", "command_timeout = \"3s\"");
    std::fs::write(&config, text).unwrap();
    let before = lab.stats();
    let r = run(&config, &[]).await;
    assert_eq!(r.code, Some(1));
    let st = statuses(&r);
    let status = |n: &str| st.iter().find(|(d, _)| d == n).unwrap().1.clone();
    for ok in ["ios-001", "ios-005", "ios-006", "nxos-003"] {
        assert_eq!(status(ok), "changed", "{ok}: {}", r.stdout);
    }
    for bad in ["ios-002", "ios-003", "ios-004", "nxos-001", "nxos-002"] {
        assert_eq!(status(bad), "failed", "{bad}");
    }
    let dev = |n: &str| {
        r.json["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == n)
            .unwrap()
            .clone()
    };
    let rejected = dev("ios-002");
    assert_eq!(rejected["step"], "apply");
    // The fourth configuration line: the second entry inserted.
    assert!(
        rejected["line"]
            .as_str()
            .unwrap()
            .ends_with(" permit tcp 10.0.0.0 0.0.0.255 any eq 443"),
        "{rejected}"
    );
    assert!(
        rejected["error"]
            .as_str()
            .unwrap()
            .contains("% Invalid input detected")
    );
    assert_eq!(rejected["restored"], "previous ACL restored and verified");
    assert!(
        dev("ios-003")["error"]
            .as_str()
            .unwrap()
            .contains("session closed")
    );
    assert_eq!(
        dev("ios-003")["restored"],
        "previous ACL restored and verified"
    );
    assert_eq!(dev("ios-004")["step"], "connect");
    assert!(
        dev("ios-004")["error"]
            .as_str()
            .unwrap()
            .contains("waiting for the prompt")
    );
    assert_eq!(
        dev("nxos-001")["restored"],
        "nothing was changed on the device",
        "a refused line aborts the session"
    );
    assert_eq!(
        dev("nxos-002")["restored"],
        "previous ACL restored and verified"
    );
    assert!(r.stdout.contains("=== ios-002 (127.0.0.1:") && r.stdout.contains("FAILED at apply"));

    let after = lab.stats();
    assert_protected_and_intended(
        &after,
        &["ios-002", "ios-003", "ios-004", "nxos-001", "nxos-002"],
    );
    for bad in ["ios-002", "ios-003", "ios-004", "nxos-001", "nxos-002"] {
        let (b, a) = (before.device(bad).unwrap(), after.device(bad).unwrap());
        assert_eq!(
            a.acls["LOCK_IT_DOWN"], b.acls["LOCK_IT_DOWN"],
            "{bad}: previous ACL"
        );
        assert_eq!(a.acls.len(), b.acls.len(), "{bad}: no stray ACL left");
    }
    assert!(
        after.device("ios-002").unwrap().saved,
        "restored exactly, sequence numbers included"
    );
    drop(dir);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_changes_nothing_and_shows_the_diff() {
    let (lab, _dir, config) = lab(LabSpec {
        ios: 3,
        nxos: 1,
        ..Default::default()
    })
    .await;
    let r = run(&config, &["--dry-run"]).await;
    assert_eq!(r.code, Some(0));
    assert!(statuses(&r).iter().all(|(_, s)| s == "would-change"));
    assert!(
        r.stdout
            .contains("    - remark legacy rules\n    + remark managed by nightshift\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("    - deny ip any any\n    + deny ip any any log\n"),
        "{}",
        r.stdout
    );
    assert!(lab.stats().devices.iter().all(|d| d.config_lines == 0));
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_revert_timer_is_confirmed_so_the_device_keeps_the_change() {
    let (lab, _dir, config) = lab(LabSpec {
        ios: 1,
        nxos: 0,
        time_scale: 0.001,
        ..Default::default()
    })
    .await;
    let r = run(&config, &[]).await;
    assert_eq!(r.code, Some(0));
    // 10 minutes at time scale 0.001 is 600 ms.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let st = lab.stats();
    assert_eq!(st.device("ios-001").unwrap().reverts, 0);
    assert_eq!(
        shown(&st.device("ios-001").unwrap().acls["LOCK_IT_DOWN"]),
        intent("cisco_ios")
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_archive_there_is_no_revert_timer_and_the_report_says_so() {
    let (lab, _dir, config) = lab(LabSpec {
        ios: 1,
        nxos: 0,
        ..Default::default()
    })
    .await;
    let mut s = common::ios_enable(&lab, "ios-001").await;
    s.cmd("configure terminal").await;
    s.cmd("no archive").await;
    s.cmd("end").await;
    s.send("write memory\r").await;
    s.expect(r"\[OK\]").await;
    let r = run(&config, &[]).await;
    assert_eq!(r.code, Some(0), "{}", r.stdout);
    assert_eq!(
        r.json["devices"][0]["safety_net"],
        "none: archive is not configured on the device, so no revert timer"
    );
    assert_protected_and_intended(&lab.stats(), &[]);
    lab.shutdown().await;
}
