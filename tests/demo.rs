//! `nightshift demo`: the whole flow on the embedded lab, in under a
//! minute, exit 0, mail kept in the outbox or sent to a real SMTP server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::smtp::SmtpPeer;

#[test]
fn the_demo_runs_a_whole_window_and_mails_the_report() {
    let smtp_dir = tempfile::tempdir().unwrap();
    let peer = SmtpPeer::start(smtp_dir.path(), "plain", 0);
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_nightshift"))
        .args(["demo", "--dir"])
        .arg(dir.path())
        .args([
            "--mail",
            &format!("127.0.0.1:{}", peer.port),
            "--to",
            "noc@example.test",
        ])
        .output()
        .unwrap();
    let took = t0.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(took < Duration::from_secs(60), "the demo took {took:?}");
    // The report: both jobs, the faults visible, every device accounted for.
    assert!(
        stdout.contains("## job lock-it-down (acl)") && stdout.contains("## job pots (pots)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("=== ios-005")
            && stdout.contains("restored: previous ACL restored and verified"),
        "{stdout}"
    );
    assert!(
        stdout.contains("=== ios-011") && stdout.contains("cannot connect"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("=== ").count(),
        19,
        "18 switches and the dialer hub: {stdout}"
    );
    assert!(stdout.contains("branch-036"), "{stdout}");
    assert!(
        stderr.contains("credentials proved with one login to the canary"),
        "{stderr}"
    );
    assert!(
        stderr.contains("0 ms with an interface unfiltered"),
        "{stderr}"
    );
    // The mail arrived, with the per-device content.
    let messages = peer.messages();
    assert_eq!(messages.len(), 1, "{stderr}");
    let m = messages[0]
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    assert!(
        m.contains("Subject: [nightshift] demo: 15 changed, 1 done, 3 failed"),
        "{m}"
    );
    assert!(
        m.contains("=== ios-005") && m.contains("Needs attention (3)"),
        "{m}"
    );
    assert!(dir.path().join("report.html").exists());
    // Nothing left running: the lab's ports are closed once the demo exits.
    let config = std::fs::read_to_string(dir.path().join("demo.toml")).unwrap();
    let devices = &config[config.find("[[devices]]").unwrap()..];
    let ports: Vec<u16> = devices
        .lines()
        .filter_map(|l| l.strip_prefix("port = "))
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(ports.len(), 19);
    for port in ports {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "the lab still listens on {port}"
        );
    }
}
