//! `nightshift lab` as a process, and widely used clients against the lab:
//! OpenSSH (`ssh -tt` with sshpass) and Python's netmiko, with their
//! default settings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Polling a child process from a plain (non-async) test thread.
#![allow(clippy::disallowed_methods)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{PASSWORD, start_lab};
use nightshift::lab::{LabSpec, LabStats};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_nightshift")
}

/// A peer the test setup installs; its absence is a failure, not a skip.
fn peer(path: &str, how: &str) -> PathBuf {
    let p = Path::new(path);
    let found = if p.is_absolute() {
        p.exists()
    } else {
        which(path).is_some()
    };
    assert!(found, "test peer `{path}` is missing: {how}");
    which(path).unwrap_or_else(|| p.to_path_buf())
}

fn which(name: &str) -> Option<PathBuf> {
    if Path::new(name).is_absolute() {
        return Some(PathBuf::from(name));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.exists())
    })
}

#[test]
fn lab_process_writes_config_serves_openssh_and_stats_on_sigterm() {
    let sshpass = peer(
        "sshpass",
        "run `bash .ci/test`, which installs openssh-client and sshpass",
    );
    let ssh = peer(
        "ssh",
        "run `bash .ci/test`, which installs openssh-client and sshpass",
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("lab.toml");
    let stats = dir.path().join("stats.json");
    let mut child = Command::new(bin())
        .args([
            "lab",
            "--ios",
            "2",
            "--nxos",
            "1",
            "--dialer-lines",
            "2",
            "--branches",
            "4",
            "--latency",
            "5ms",
        ])
        .arg("--write-config")
        .arg(&config)
        .arg("--stats")
        .arg(&stats)
        .env("NIGHTSHIFT_LAB_PASSWORD", PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut ports = std::collections::BTreeMap::new();
    while ports.len() < 4 {
        let line = lines.next().expect("lab lists its devices").unwrap();
        let mut f = line.split_whitespace();
        let (name, addr) = (f.next().unwrap().to_string(), f.nth(1).unwrap().to_string());
        ports.insert(name, addr.rsplit(':').next().unwrap().to_string());
    }
    assert_eq!(
        ports.keys().collect::<Vec<_>>(),
        ["hub-1", "ios-001", "ios-002", "nxos-001"]
    );

    let check = Command::new(bin())
        .args(["-c", config.to_str().unwrap(), "check-config"])
        .output()
        .unwrap();
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(
        written.contains("[jobs.lock-it-down]")
            && written.contains("[jobs.pots]")
            && written.contains("canary = \"ios-001\"")
    );

    // OpenSSH, checking host keys strictly against the known_hosts the lab wrote.
    let mut ssh_child = Command::new(sshpass)
        .args(["-p", PASSWORD])
        .arg(ssh)
        .args(["-tt", "-o", "StrictHostKeyChecking=yes", "-o"])
        .arg(format!(
            "UserKnownHostsFile={}",
            config.with_extension("known_hosts").display()
        ))
        .args(["-p", &ports["ios-001"], "admin@127.0.0.1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    ssh_child
        .stdin
        .take()
        .unwrap()
        .write_all(b"terminal length 0\nshow version\nexit\n")
        .unwrap();
    let out = ssh_child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ios-001>show version") && stdout.contains("Cisco IOS Software"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "lab did not exit on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    let stats: LabStats = serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    let ios = stats.device("ios-001").unwrap();
    assert_eq!(ios.logins, 1);
    assert!(ios.first_login_ms.is_some() && ios.last_logout_ms.is_some());
    assert_eq!(stats.devices.len(), 4);
}

#[test]
fn lab_help_documents_faults_and_outcomes() {
    let out = Command::new(bin())
        .args(["lab", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "auth:DEV",
        "refuse:DEV",
        "hang:DEV",
        "drop:DEV:N",
        "reject:DEV:N",
        "slow:DEV:DUR",
        "legacy:DEV",
        "lockout:N",
        "NO DIALTONE",
        "--time-scale",
    ] {
        assert!(help.contains(word), "--help mentions {word}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netmiko_drives_ios_and_nxos_with_default_settings() {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/peers/venv/bin/python");
    assert!(
        python.exists(),
        "netmiko peer missing at {}: run `bash .ci/test`, which installs it",
        python.display()
    );
    let lab = start_lab(LabSpec {
        ios: 1,
        nxos: 1,
        latency: Duration::from_millis(2),
        ..Default::default()
    })
    .await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/netmiko_check.py");
    let port = |n: &str| lab.device(n).unwrap().addr.port().to_string();
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(&python)
            .arg(&script)
            .args(["127.0.0.1", &port("ios-001"), &port("nxos-001"), PASSWORD])
            .output(),
    )
    .await
    .expect("netmiko finished")
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = |k: &str| r[k].as_str().unwrap().to_string();
    assert_eq!(s("ios_prompt"), "ios-001#");
    assert!(s("ios_show").starts_with("Extended IP access list LOCK_IT_DOWN\n    20 permit tcp"));
    assert!(
        s("ios_after").contains("10 permit tcp any any eq 22")
            && s("ios_after").contains("20 deny ip any any")
    );
    assert!(s("ios_save").contains("[OK]"));
    assert_eq!(s("nxos_prompt"), "nxos-001#");
    assert!(s("nxos_show").contains("20 permit tcp 10.0.0.0/24 any eq 22"));
    assert!(s("nxos_after").contains("10 permit tcp any any eq 22"));
    let st = lab.stats();
    assert_eq!(
        st.device("ios-001").unwrap().acls["NETMIKO"],
        ["permit tcp any any eq 22", "deny ip any any"]
    );
    assert!(st.device("ios-001").unwrap().saved);
    assert_eq!(
        st.device("nxos-001").unwrap().acls["NETMIKO"],
        ["permit tcp any any eq 22"]
    );
    lab.shutdown().await;
}
