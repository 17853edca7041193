//! A relay that misbehaves (issue #23): a real SMTP server (aiosmtpd with a
//! handler of ours) that drops the connection after DATA or in the middle
//! of the message body, answers 421, 451 or 452, refuses with 550 or 554,
//! stalls past the timeout, or presents a certificate the configured CA did
//! not sign. After each, the mail is
//! either delivered exactly once or kept in the outbox with its state and
//! reason, and `report list` says which.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::smtp::{ForgetMailPassword, SmtpPeer, free_port, set_mail_password};
use common::{ns, text};
use nightshift::lab::LabSpec;
use nightshift::report::mail::Rendered;
use nightshift::report::outbox::Outbox;

fn put(state: &Path, subject: &str) -> String {
    let mail = Rendered {
        subject: subject.into(),
        from: "nightshift@example.test".into(),
        to: vec!["netops@example.test".into()],
        bytes: format!(
            "From: nightshift@example.test\r\nTo: netops@example.test\r\nSubject: {subject}\r\n\r\nbody\r\n"
        )
        .into_bytes(),
    };
    let now = nightshift::clock::Clock::now(&nightshift::clock::SystemClock);
    Outbox::new(state)
        .put("alert", subject, &mail, true, now)
        .unwrap()
        .id
}

fn delivered(peer_dir: &Path, subject: &str) -> usize {
    SmtpPeer::messages_in(peer_dir)
        .iter()
        .filter(|m| {
            m.contains(&format!("Subject: {subject}\n"))
                || m.contains(&format!("Subject: {subject}\r\n"))
        })
        .count()
}

fn listed<'a>(list: &'a str, id: &str) -> &'a str {
    let at = list
        .find(id)
        .unwrap_or_else(|| panic!("{id} not listed: {list}"));
    let rest = &list[at..];
    // The entry's line and its "last error" line.
    let end = rest
        .match_indices('\n')
        .nth(1)
        .map_or(rest.len(), |(i, _)| i);
    &rest[..end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mail_is_delivered_once_or_kept_with_its_reason_whatever_the_relay_does() {
    let peer_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut peer = SmtpPeer::start(peer_dir.path(), "auth", port);
    let (lab, dir, config) = common::lab_with_config(LabSpec {
        ios: 1,
        ..Default::default()
    })
    .await;
    let (cfg, service) = common::own_keyring(&config, &dir.path().join("none.sock"));
    let mail = peer
        .mail_section("netops@example.test")
        .replace("timeout = \"5s\"", "timeout = \"2s\"");
    let _forget = ForgetMailPassword(service);
    std::fs::write(
        &config,
        cfg.replace("[credentials.lab]", &format!("{mail}[credentials.lab]")),
    )
    .unwrap();
    set_mail_password(&config);
    let state = dir.path().join("lab.state");

    // (mode, transient, what the kept reason says)
    let cases = [
        ("misbehave-drop", true, "closed before the relay answered"),
        ("misbehave-cut", true, "closed before the relay answered"),
        ("misbehave-421", true, "421"),
        ("misbehave-451", true, "451"),
        ("misbehave-452", true, "452"),
        ("misbehave-stall", true, ""),
        ("misbehave-550", false, "550"),
        ("misbehave-554", false, "554"),
        ("badtls", true, "TLS certificate is not trusted"),
    ];
    for (mode, transient, says) in cases {
        peer.stop();
        peer = SmtpPeer::start(peer_dir.path(), mode, port);
        let subject = format!("mail for {mode}");
        let id = put(&state, &subject);
        let out = ns(&config, &["report", "flush"], "");
        assert_eq!(out.status.code(), Some(1), "{mode}: {}", text(&out));
        assert_eq!(delivered(peer_dir.path(), &subject), 0, "{mode}");
        let list = text(&ns(&config, &["report", "list"], ""));
        let entry = listed(&list, &id);
        let state_word = if transient { "pending" } else { "FAILED" };
        assert!(entry.contains(state_word), "{mode}: {entry}");
        assert!(
            entry.contains("last error:") && entry.contains(says),
            "{mode}: {entry}"
        );
        // Once more: a transient failure goes out now (badtls still fails),
        // a refusal for good is not tried again. Never twice.
        let out = ns(&config, &["report", "flush"], "");
        let again = text(&ns(&config, &["report", "list"], ""));
        let entry = listed(&again, &id);
        match (transient, mode) {
            (true, "badtls") => {
                assert_eq!(out.status.code(), Some(1), "{mode}: {}", text(&out));
                assert!(entry.contains("pending"), "{mode}: {entry}");
                assert_eq!(delivered(peer_dir.path(), &subject), 0, "{mode}");
            }
            (true, _) => {
                assert_eq!(out.status.code(), Some(0), "{mode}: {}", text(&out));
                assert!(entry.contains("sent"), "{mode}: {entry}");
                assert_eq!(
                    delivered(peer_dir.path(), &subject),
                    1,
                    "{mode}: exactly once"
                );
            }
            (false, _) => {
                assert!(entry.contains("FAILED"), "{mode}: {entry}");
                assert_eq!(delivered(peer_dir.path(), &subject), 0, "{mode}");
            }
        }
    }
    // Nothing delivered before was sent again by the later flushes.
    for (mode, transient, _) in cases {
        let n = delivered(peer_dir.path(), &format!("mail for {mode}"));
        assert_eq!(n, usize::from(transient && mode != "badtls"), "{mode}");
    }
    peer.stop();
    lab.shutdown().await;
}
