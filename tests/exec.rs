//! `nightshift exec` against the lab, as a process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Command, Output};

use common::PASSWORD;
use nightshift::lab::{Lab, LabSpec};

fn exec(config: &std::path::Path, args: &[&str], password: &str) -> Output {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    common::spawn_nightshift(config, &all, password)
        .wait_with_output()
        .unwrap()
}

async fn lab_config(spec: LabSpec) -> (Lab, tempfile::TempDir, std::path::PathBuf) {
    common::lab_with_config(spec).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_prints_all_500_devices_in_inventory_order() {
    let (lab, dir, config) = lab_config(LabSpec {
        ios: 480,
        nxos: 20,
        ..Default::default()
    })
    .await;
    let json = dir.path().join("out.json");
    let pw = PASSWORD.to_string();
    let cfg = config.clone();
    let json_arg = json.to_str().unwrap().to_string();
    let out = tokio::task::spawn_blocking(move || {
        exec(
            &cfg,
            &[
                "--concurrency",
                "50",
                "--json",
                &json_arg,
                "--",
                "show",
                "version",
            ],
            &pw,
        )
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let blocks: Vec<&str> = stdout.split("=== ").skip(1).collect();
    assert_eq!(blocks.len(), 500);
    let names: Vec<String> = lab.devices().iter().map(|d| d.name.clone()).collect();
    for (block, name) in blocks.iter().zip(&names) {
        assert!(
            block.starts_with(&format!("{name} (127.0.0.1:")),
            "inventory order: {block}"
        );
        if name.starts_with("ios") {
            assert!(block.contains(&format!("{name} uptime is")), "{block}");
        } else {
            assert!(block.contains(&format!("Device name: {name}")), "{block}");
        }
    }
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let devices = v["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 500);
    assert!(
        devices
            .iter()
            .all(|d| d["status"] == "ok" && d["algorithms"]["host_key"] == "ssh-ed25519")
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("500 ok, 0 failed"));
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failed_device_does_not_stop_the_others() {
    let faults = ["auth:ios-002", "refuse:ios-003"]
        .iter()
        .map(|f| f.parse().unwrap())
        .collect();
    let (lab, _dir, config) = lab_config(LabSpec {
        ios: 4,
        nxos: 1,
        faults,
        ..Default::default()
    })
    .await;
    let pw = PASSWORD.to_string();
    let out =
        tokio::task::spawn_blocking(move || exec(&config, &["--", "show version; show foo"], &pw))
            .await
            .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains("=== ios-002 (127.0.0.1:")
            && stdout.contains("error: ios-002: login rejected for user admin"),
        "{stdout}"
    );
    assert!(
        stdout.contains("error: ios-003: cannot connect to 127.0.0.1:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("--- show version\nCisco IOS Software"),
        "{stdout}"
    );
    assert!(
        stdout.contains("--- show foo\nerror: ios-001: `show foo` was refused: % Invalid input"),
        "{stdout}"
    );
    // Once, under the command; not again as the device's error.
    assert_eq!(
        stdout.matches("ios-001: `show foo` was refused").count(),
        1,
        "{stdout}"
    );
    assert_eq!(lab.stats().auth_failures, 1);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_password_is_tried_once_not_on_every_device() {
    let (lab, _dir, config) = lab_config(LabSpec {
        ios: 30,
        nxos: 0,
        ..Default::default()
    })
    .await;
    let out = tokio::task::spawn_blocking(move || exec(&config, &["--", "show version"], "typo"))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    // The canary proves the password before anything else: one failed
    // login in the whole fleet, and no device is touched.
    assert_eq!(
        lab.stats().auth_failures,
        1,
        "one failed login in the whole fleet"
    );
    assert!(
        stderr.contains("canary ios-001 REJECTED the login"),
        "{stderr}"
    );
    assert!(stderr.contains("no device was touched"), "{stderr}");
    assert_eq!(lab.stats().devices.iter().map(|d| d.logins).sum::<u64>(), 0);
    assert!(!stdout.contains("typo") && !String::from_utf8_lossy(&out.stderr).contains("typo"));
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_the_fleet_refuses_is_sent_once_even_when_the_first_device_is_down() {
    // The canary (ios-001, not a target) takes the password; ios-002, first
    // of the targets, refuses connections; the others refuse the password.
    // An unreachable device proves nothing, so the password still goes to
    // one device at a time until one answers: one failed login in all.
    let mut faults = vec!["refuse:ios-002".parse().unwrap()];
    faults.extend((3..=12).map(|n| format!("auth:ios-{n:03}").parse().unwrap()));
    let (lab, _dir, config) = lab_config(LabSpec {
        ios: 12,
        nxos: 0,
        faults,
        ..Default::default()
    })
    .await;
    let names = (2..=12)
        .map(|n| format!("ios-{n:03}"))
        .collect::<Vec<_>>()
        .join(",");
    let out = tokio::task::spawn_blocking(move || {
        exec(
            &config,
            &["--devices", &names, "--", "show version"],
            PASSWORD,
        )
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_eq!(lab.stats().auth_failures, 1, "{stdout}");
    assert!(stdout.contains("cannot connect"), "{stdout}");
    assert_eq!(stdout.matches("login rejected").count(), 1, "{stdout}");
    assert_eq!(stdout.matches("not tried:").count(), 9, "{stdout}");
    lab.shutdown().await;
}

#[test]
fn selectors_that_match_nothing_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_nightshift"))
        .args([
            "-c",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/nightshift.toml"),
            "exec",
            "--devices",
            "nope-*",
            "--",
            "show version",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--devices nope-* matches no device"));
}
