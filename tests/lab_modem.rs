//! Modem lines on the lab's dialer hub, reached by reverse telnet.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{PASSWORD, Shell, start_lab};
use nightshift::lab::{Lab, LabSpec, branch_number};

async fn hub_lab(faults: &[&str]) -> Lab {
    start_lab(LabSpec {
        ios: 0,
        nxos: 0,
        dialer_lines: 3,
        branches: 30,
        time_scale: 0.001,
        faults: faults.iter().map(|f| f.parse().unwrap()).collect(),
        ..Default::default()
    })
    .await
}

async fn hub(lab: &Lab) -> Shell {
    let mut s = Shell::open(lab, "hub-1").await;
    s.expect("hub-1>$").await;
    s.cmd("terminal length 0").await;
    s.send("enable\r").await;
    s.expect("Password: $").await;
    s.send(&format!("{PASSWORD}\r")).await;
    s.expect("hub-1#$").await;
    s
}

/// Reverse telnet to `line`, health check, dial, and return the result text.
async fn dial(s: &mut Shell, line: u32, number: &str) -> String {
    s.send(&format!("telnet 127.0.0.1 {}\r", 2000 + line)).await;
    s.expect(&format!(
        r"Trying 127\.0\.0\.1, {} \.\.\. Open\r\n$",
        2000 + line
    ))
    .await;
    s.send("AT\r").await;
    s.expect("\r\nOK\r\n$").await;
    s.send(&format!("ATDT{number}\r")).await;
    s.expect(r"(CONNECT \S+|BUSY|NO CARRIER|NO DIALTONE|NO ANSWER)\r\n")
        .await
}

async fn leave(s: &mut Shell) {
    s.send("\x1ex").await;
    s.expect("hub-1#$").await;
    s.send("disconnect\r").await;
    s.expect(r"Closing connection to 127\.0\.0\.1 \[confirm\]$")
        .await;
    s.send("\r").await;
    s.expect("hub-1#$").await;
}

#[tokio::test]
async fn every_outcome_is_produced() {
    let lab = hub_lab(&[]).await;
    let mut s = hub(&lab).await;
    for (branch, want) in [
        (4, "BUSY"),
        (7, "NO ANSWER"),
        (9, "NO CARRIER"),
        (23, "NO DIALTONE"),
    ] {
        let got = dial(&mut s, 33, &branch_number(branch)).await;
        assert!(
            got.ends_with(&format!("{want}\r\n")),
            "branch {branch}: {got:?}"
        );
        leave(&mut s).await;
    }
    assert!(
        dial(&mut s, 33, "5559999")
            .await
            .ends_with("NO CARRIER\r\n"),
        "unknown numbers do not answer"
    );
    leave(&mut s).await;

    let got = dial(&mut s, 34, &branch_number(1)).await;
    assert!(
        got.ends_with("CONNECT 33600/ARQ/V34/LAPM/V42BIS\r\n"),
        "{got:?}"
    );
    s.expect("User Access Verification\r\n\r\nUsername: $")
        .await;
    let line = s.cmd_on_hub_show_line_while_suspended(34).await;
    assert!(
        line.contains("Modem state: Connected") && line.contains("CTS DSR"),
        "{line}"
    );
    s.send("\r").await; // an empty line resumes the connection
    s.expect(r"\[Resuming connection 1 to 127\.0\.0\.1 \.\.\. \]\r\n$")
        .await;
    s.send("+++\r").await;
    s.expect("\r\nOK\r\n$").await;
    s.send("ATH\r").await;
    s.expect("\r\nOK\r\n$").await;
    leave(&mut s).await;
    assert!(s.cmd("show line 34").await.contains("Modem state: Idle"));

    // Connected, but the branch router never prompts.
    assert!(
        dial(&mut s, 35, &branch_number(13))
            .await
            .contains("CONNECT")
    );
    assert!(
        s.try_expect("Username:", Duration::from_millis(300))
            .await
            .is_err()
    );
    leave(&mut s).await;
    lab.shutdown().await;
}

trait ShowLine {
    async fn cmd_on_hub_show_line_while_suspended(&mut self, line: u32) -> String;
}

impl ShowLine for Shell {
    async fn cmd_on_hub_show_line_while_suspended(&mut self, line: u32) -> String {
        self.send("\x1ex").await;
        self.expect("hub-1#$").await;
        self.cmd(&format!("show line {line}")).await
    }
}

#[tokio::test]
async fn a_line_in_use_is_refused() {
    let lab = hub_lab(&[]).await;
    let mut a = hub(&lab).await;
    a.send("telnet 127.0.0.1 2033\r").await;
    a.expect("Open\r\n$").await;
    let mut b = hub(&lab).await;
    let refused = b.cmd("telnet 127.0.0.1 2033").await;
    assert!(
        refused.contains("% Connection refused by remote host"),
        "{refused}"
    );
    assert!(b.cmd("show line").await.contains("*    33 TTY"));
    lab.shutdown().await;
}

#[tokio::test]
async fn a_line_left_by_a_dead_session_stays_busy_until_cleared() {
    let lab = hub_lab(&[]).await;
    let mut a = hub(&lab).await;
    assert!(
        dial(&mut a, 33, &branch_number(1))
            .await
            .contains("CONNECT")
    );
    // The session dies without hanging up or leaving the line.
    a.handle
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await
        .unwrap();
    drop(a);
    tokio::time::sleep(Duration::from_millis(100)).await;

    let mut b = hub(&lab).await;
    assert!(
        b.cmd("telnet 127.0.0.1 2033")
            .await
            .contains("% Connection refused")
    );
    b.send("clear line 33\r").await;
    b.expect(r"\[confirm\]$").await;
    b.send("\r").await;
    b.expect(r" \[OK\]\r\nhub-1#$").await;
    assert!(b.cmd("show line 33").await.contains("Modem state: Idle"));
    assert!(dial(&mut b, 33, &branch_number(4)).await.contains("BUSY"));
    lab.shutdown().await;
}

#[tokio::test]
async fn stuck_fault_starts_with_a_busy_line() {
    let lab = hub_lab(&["stuck:hub-1:34"]).await;
    let mut s = hub(&lab).await;
    let lines = s.cmd("show line").await;
    assert!(
        lines.contains("*    34 TTY") && lines.contains("     33 TTY"),
        "{lines}"
    );
    lab.shutdown().await;
}

#[tokio::test]
async fn dialling_is_aborted_by_a_key_and_at_errors() {
    let lab = hub_lab(&[]).await;
    let mut s = hub(&lab).await;
    s.send("telnet 127.0.0.1 2033\r").await;
    s.expect("Open\r\n$").await;
    s.send("ATX9Q\r").await;
    s.expect("\r\nERROR\r\n$").await;
    s.send("hello\r").await;
    s.expect("\r\nERROR\r\n$").await;
    // Branch 2 takes 15 + 74 % 46 = 43 s at scale 1: 43 ms here. Typing
    // during the dial aborts it, as on a real modem.
    s.send("ATDT5550002\r\r").await;
    s.expect("NO CARRIER\r\n$").await;
    leave(&mut s).await;
    lab.shutdown().await;
}
