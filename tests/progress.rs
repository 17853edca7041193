//! The progress of a run: a line with counts per status, redrawn on a
//! terminal and never written to a pipe, and in the log every 10 s (the
//! daemon's status is tested in `daemon.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::PASSWORD;
use nightshift::engine::{Progress, show_progress};
use nightshift::lab::LabSpec;
use tokio_util::sync::CancellationToken;

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
        common::on_a_terminal(
            &command,
            &[PASSWORD, PASSWORD],
            Duration::ZERO,
            Duration::ZERO,
        )
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

/// The log shows the progress line every 10 s while a run lasts.
#[tokio::test(start_paused = true)]
async fn the_log_shows_the_progress_every_ten_seconds() {
    let log = common::log::capture();
    let progress = Arc::new(Progress::default());
    progress.start_job("lock-it-down", 500);
    for _ in 0..120 {
        progress.done("changed");
    }
    progress.done("failed");
    let stop = CancellationToken::new();
    let ticker = tokio::spawn(show_progress(progress.clone(), stop.clone()));
    // Paused time: these 25 s pass at once.
    tokio::time::sleep(Duration::from_millis(25_100)).await;
    stop.cancel();
    ticker.await.unwrap();
    let lines = log.lines.lock().unwrap();
    let logged: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("message=run in progress"))
        .collect();
    assert_eq!(logged.len(), 2, "at 10 s and 20 s: {lines:#?}");
    assert!(
        logged[0].contains("progress=lock-it-down: 121/500 devices (120 changed, 1 failed)"),
        "{logged:?}"
    );
}
