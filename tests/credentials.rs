//! Credentials: one canary login per attempt, a proof that covers
//! privileged EXEC, the real kernel keyring (how each environment reaches
//! it is in `keyring.rs`), and no secret left anywhere on disk.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::ns;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::PASSWORD;
use nightshift::lab::{Fault, LabSpec};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A unique keyring service per test, removed by `Cleanup`.
struct Cleanup {
    config: std::path::PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = ns(
            &self.config,
            &["credentials", "delete", "--store", "keyring"],
            "",
        );
    }
}

async fn lab_config(
    spec: LabSpec,
) -> (
    nightshift::lab::Lab,
    tempfile::TempDir,
    std::path::PathBuf,
    Cleanup,
) {
    let (lab, dir, path) = common::lab_with_config(spec).await;
    let (text, _service) = common::own_keyring(&path, &dir.path().join("no-daemon.sock"));
    std::fs::write(&path, text).unwrap();
    let cleanup = Cleanup {
        config: path.clone(),
    };
    (lab, dir, path, cleanup)
}

fn set(config: &Path, password: &str) -> Output {
    ns(
        config,
        &[
            "credentials",
            "set",
            "--store",
            "keyring",
            "--password-stdin",
        ],
        &format!("{password}\n{password}\n"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_costs_one_login_and_is_not_stored() {
    let (lab, _dir, config, _cleanup) = lab_config(LabSpec {
        ios: 20,
        nxos: 20,
        ..Default::default()
    })
    .await;
    let out = set(&config, "typo-Pass-1");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("REJECTED the login for user admin"), "{err}");
    assert!(err.contains("nothing was stored"), "{err}");
    assert!(err.contains("hint: one failed login was spent"), "{err}");
    let stats = lab.stats();
    assert_eq!(
        stats.auth_failures, 1,
        "exactly one failed login fleet-wide"
    );
    assert_eq!(stats.devices.iter().map(|d| d.logins).sum::<u64>(), 0);
    // Nothing stored: check says so and touches no device.
    let out = ns(&config, &["credentials", "check", "--store", "keyring"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no credentials stored"),
        "{}",
        stderr(&out)
    );
    assert_eq!(lab.stats().auth_failures, 1);
    // A run with a wrong password never starts: one more failed login, no device touched.
    let out = ns(
        &config,
        &["run", "lock-it-down", "--password-stdin"],
        "typo-Pass-1\n",
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no device was touched"),
        "{}",
        stderr(&out)
    );
    let stats = lab.stats();
    assert_eq!(stats.auth_failures, 2);
    assert_eq!(stats.devices.iter().map(|d| d.logins).sum::<u64>(), 0);
    assert!(stats.devices.iter().all(|d| d.config_lines == 0));
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lockout_fault_sees_one_failure_per_attempt() {
    // The fleet's AAA locks the account after 3 failures.
    let (lab, _dir, config, _cleanup) = lab_config(LabSpec {
        ios: 10,
        faults: vec!["lockout:3".parse::<Fault>().unwrap()],
        ..Default::default()
    })
    .await;
    for n in 1..=2 {
        let out = set(&config, "wrong");
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert_eq!(lab.stats().auth_failures, n);
    }
    // Still not locked: the right password gets in.
    let out = set(&config, PASSWORD);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_right_password_is_stored_and_read_back_by_another_process() {
    let (lab, dir, config, _cleanup) = lab_config(LabSpec {
        ios: 6,
        nxos: 2,
        ..Default::default()
    })
    .await;
    let out = set(&config, PASSWORD);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("accepted"), "{err}");
    assert!(err.contains("stored in the kernel keyring"), "{err}");
    assert_eq!(
        lab.stats().devices.iter().map(|d| d.logins).sum::<u64>(),
        1,
        "one login: the canary"
    );
    // The secret is a real kernel key, not a mock's.
    let service = std::fs::read_to_string(&config)
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("keyring_service = \"")
                .map(|s| s.trim_end_matches('"').to_string())
        })
        .unwrap();
    let listing = std::fs::read_to_string("/proc/keys").unwrap();
    assert!(
        listing.contains(&format!("keyring-rs:credentials.lab@{service}")),
        "{listing}"
    );

    // Another process reads it back and proves it with one login.
    let out = ns(&config, &["credentials", "check", "--store", "keyring"], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("profile lab: OK"), "{}", stderr(&out));
    assert_eq!(lab.stats().devices.iter().map(|d| d.logins).sum::<u64>(), 2);

    // A run with nothing on standard input uses the stored credentials.
    let json = dir.path().join("run.json");
    let out = ns(
        &config,
        &["run", "lock-it-down", "--json", json.to_str().unwrap()],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert!(
        common::statuses(&report).iter().all(|s| *s == "changed"),
        "{report}"
    );

    // No trace of the password in the state directory, the report or the output.
    for text in [
        stderr(&out),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ] {
        assert!(!text.contains(PASSWORD));
    }
    assert_no_secret_under(dir.path(), PASSWORD);

    let out = ns(
        &config,
        &["credentials", "delete", "--store", "keyring"],
        "",
    );
    assert!(stderr(&out).contains("deleted"), "{}", stderr(&out));
    let out = ns(&config, &["credentials", "check", "--store", "keyring"], "");
    assert_eq!(out.status.code(), Some(1));
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_canary_is_not_a_wrong_password() {
    let (lab, _dir, config, _cleanup) = lab_config(LabSpec {
        ios: 3,
        nxos: 0,
        faults: vec![
            "refuse:ios-001".parse().unwrap(),
            "refuse:ios-002".parse().unwrap(),
            "refuse:ios-003".parse().unwrap(),
        ],
        ..Default::default()
    })
    .await;
    let out = set(&config, PASSWORD);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("could not be reached"), "{err}");
    assert!(err.contains("nothing was stored"), "{err}");
    assert!(!err.contains("REJECTED"), "{err}");
    assert_eq!(lab.stats().auth_failures, 0);
    lab.shutdown().await;
}

/// Fails if any file under `dir` contains `secret`.
pub fn assert_no_secret_under(dir: &Path, secret: &str) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            assert_no_secret_under(&path, secret);
        } else if let Ok(bytes) = std::fs::read(&path) {
            assert!(
                !String::from_utf8_lossy(&bytes).contains(secret),
                "{} contains the password",
                path.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_a_terminal_the_password_is_not_echoed_and_a_rejection_asks_again() {
    let (lab, _dir, config, _cleanup) = lab_config(LabSpec {
        ios: 5,
        nxos: 0,
        ..Default::default()
    })
    .await;
    // A real terminal: util-linux `script` runs the command on a pty. The
    // engineer types slowly: Enter (default user), a typo, Enter (no enable
    // secret); then Enter, the right password twice.
    let command = format!(
        "{} -c {} credentials set --store keyring",
        env!("CARGO_BIN_EXE_nightshift"),
        config.display()
    );
    let out = tokio::task::spawn_blocking(move || {
        common::on_a_terminal(
            &command,
            &["", "typo-Pass-1", "", "", PASSWORD, PASSWORD],
            Duration::from_millis(700),
            Duration::from_secs(2),
        )
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("REJECTED the login"), "{text}");
    assert!(
        text.contains("try again (2 attempts left; each costs one failed login)"),
        "{text}"
    );
    assert!(text.contains("stored in the kernel keyring"), "{text}");
    assert!(
        !text.contains("typo-Pass-1") && !text.contains(PASSWORD),
        "a password was echoed: {text}"
    );
    let stats = lab.stats();
    assert_eq!(stats.auth_failures, 1);
    assert_eq!(stats.devices.iter().map(|d| d.logins).sum::<u64>(), 1);
    lab.shutdown().await;
}

/// `--password-stdin` typed at a terminal (a pty from util-linux `script`)
/// is read without echo, like the interactive prompts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_stdin_typed_at_a_terminal_is_not_echoed() {
    let (lab, _dir, config, _cleanup) = lab_config(LabSpec {
        ios: 1,
        nxos: 0,
        ..Default::default()
    })
    .await;
    let command = format!(
        "{} -c {} exec --password-stdin -- show version",
        env!("CARGO_BIN_EXE_nightshift"),
        config.display()
    );
    let out = tokio::task::spawn_blocking(move || {
        // Typed once nightshift waits for it, echo off.
        common::on_a_terminal(
            &command,
            &[PASSWORD, PASSWORD],
            Duration::from_millis(1_500),
            Duration::from_secs(1),
        )
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("Cisco IOS Software"), "{text}");
    assert!(!text.contains(PASSWORD), "the password was echoed: {text}");
    lab.shutdown().await;
}

/// A profile is proven only when the canary reaches privileged EXEC: the
/// lab's IOS devices land at `>`, as real ones do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_at_user_exec_without_an_enable_secret_proves_nothing() {
    let (lab, _dir, config, _cleanup) = lab_config(LabSpec {
        ios: 3,
        nxos: 1,
        ..Default::default()
    })
    .await;
    // The password alone, no second line.
    let out = ns(
        &config,
        &[
            "credentials",
            "set",
            "--store",
            "keyring",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("lands in user EXEC"), "{err}");
    assert!(err.contains("enable secret"), "{err}");
    assert!(err.contains("second line of standard input"), "{err}");
    assert!(err.contains("nothing was stored"), "{err}");
    let stats = lab.stats();
    assert_eq!(stats.auth_failures, 0, "no failed login was spent");
    assert!(stats.devices.iter().all(|d| d.enable_failures == 0));
    assert_eq!(stats.devices.iter().map(|d| d.logins).sum::<u64>(), 1);
    let out = ns(&config, &["credentials", "check", "--store", "keyring"], "");
    assert!(
        stderr(&out).contains("no credentials stored"),
        "{}",
        stderr(&out)
    );
    lab.shutdown().await;
}

/// At a terminal, a canary at `>` asks for the enable secret it needs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_a_terminal_a_canary_at_user_exec_asks_for_the_enable_secret() {
    let (lab, _dir, config, _cleanup) = lab_config(LabSpec {
        ios: 2,
        nxos: 0,
        ..Default::default()
    })
    .await;
    let command = format!(
        "{} -c {} credentials set --store keyring",
        env!("CARGO_BIN_EXE_nightshift"),
        config.display()
    );
    // Enter (default user), the password, Enter (no enable secret); then
    // the secret, when asked for it.
    let out = tokio::task::spawn_blocking(move || {
        common::on_a_terminal(
            &command,
            &["", PASSWORD, "", PASSWORD],
            Duration::from_millis(700),
            Duration::from_secs(2),
        )
    })
    .await
    .unwrap();
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("lands in user EXEC (>): enable secret"),
        "{text}"
    );
    assert!(text.contains("stored in the kernel keyring"), "{text}");
    assert!(!text.contains(PASSWORD), "a secret was echoed: {text}");
    let stats = lab.stats();
    assert_eq!(stats.auth_failures, 0);
    assert!(stats.devices.iter().all(|d| d.enable_failures == 0));
    lab.shutdown().await;
}

/// At run time a device at `>` without an enable secret fails at login,
/// naming enable; no configuration command reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_without_an_enable_secret_changes_no_ios_device() {
    let (lab, dir, config, _cleanup) = lab_config(LabSpec {
        ios: 4,
        nxos: 2,
        ..Default::default()
    })
    .await;
    // An NX-OS canary (it lands at `#`) proves the password alone.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("canary = \"ios-001\"", "canary = \"nxos-001\"");
    std::fs::write(&config, text).unwrap();
    let json = dir.path().join("run.json");
    let out = ns(
        &config,
        &[
            "run",
            "lock-it-down",
            "--password-stdin",
            "--json",
            json.to_str().unwrap(),
        ],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(out.status.code(), Some(1), "{}", common::text(&out));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    for d in report["devices"].as_array().unwrap() {
        let name = d["name"].as_str().unwrap();
        if name.starts_with("ios-") {
            assert_eq!(d["status"], "failed", "{d}");
            let error = d["error"].as_str().unwrap();
            assert!(error.contains("enable secret"), "{name}: {error}");
            assert!(d["hint"].as_str().unwrap().contains("enable secret"), "{d}");
        } else {
            assert_eq!(d["status"], "changed", "{d}");
        }
    }
    let stats = lab.stats();
    for d in &stats.devices {
        if d.name.starts_with("ios-") {
            assert_eq!(d.config_lines, 0, "{}: no configuration command", d.name);
        }
    }
    assert_eq!(stats.auth_failures, 0);
    // With the secret, every device is changed.
    let out = ns(
        &config,
        &[
            "run",
            "lock-it-down",
            "--password-stdin",
            "--json",
            json.to_str().unwrap(),
        ],
        &format!("{PASSWORD}\n{PASSWORD}\n"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert!(
        common::statuses(&report)
            .iter()
            .all(|s| *s == "changed" || *s == "unchanged"),
        "{report}"
    );
    lab.shutdown().await;
}
