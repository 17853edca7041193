//! The progress of a run: a line with counts per status, redrawn on a
//! terminal and never written to a pipe (its log line and the daemon's
//! status are tested beside the code and in `daemon.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::PASSWORD;
use nightshift::lab::LabSpec;

/// An interactive run shows a progress line with counts per status on the
/// terminal (util-linux `script` gives it a real pty) and clears it before
/// the report; a run whose output goes to a pipe shows none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_shows_the_progress_line_and_a_pipe_does_not() {
    let (lab, _dir, config) = common::lab_with_config(LabSpec {
        ios: 3,
        nxos: 0,
        latency: Duration::from_millis(20),
        ..Default::default()
    })
    .await;
    // One device at a time (~0.6 s each): the line, redrawn every 250 ms,
    // shows each count in turn.
    let command = format!(
        "{} -c {} run lock-it-down --password-stdin --concurrency 1",
        env!("CARGO_BIN_EXE_nightshift"),
        config.display()
    );
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let mut child = std::process::Command::new("script")
            .args(["-q", "-e", "-c", &command, "/dev/null"])
            .env_remove("NIGHTSHIFT_LOG")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("util-linux `script` (Debian: apt-get install bsdutils)");
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(format!("{PASSWORD}\n{PASSWORD}\n").as_bytes())
            .unwrap();
        drop(stdin);
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let tty = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{tty}");
    for line in [
        "\x1b[2Klock-it-down: 0/3 devices\r",
        "\x1b[2Klock-it-down: 1/3 devices (1 changed)\r",
        "\x1b[2Klock-it-down: 2/3 devices (2 changed)\r",
        // Cleared before the report.
        "\r\x1b[2K## job lock-it-down",
    ] {
        assert!(tty.contains(line), "no {line:?} in {tty:?}");
    }
    assert!(tty.contains(": 3 changed"), "{tty}");

    // The same run again, its output to pipes: no progress line (every
    // device is unchanged now).
    let r = common::run_json(
        &config,
        &["run", "lock-it-down", "--concurrency", "1"],
        PASSWORD,
    )
    .await;
    let text = r.text();
    let (code, report) = (r.code, r.json);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(report["devices"].as_array().unwrap().len(), 3, "{report}");
    assert!(
        !text.contains("\x1b[2K") && !text.contains("/3 devices"),
        "{text:?}"
    );
    lab.shutdown().await;
}
