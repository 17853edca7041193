//! Reports and mail against a real SMTP server (aiosmtpd with STARTTLS and
//! AUTH): content, a relay that is down then up, a 5xx kept in the outbox.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{ns, text};

use std::path::{Path, PathBuf};
use std::process::Output;

use common::PASSWORD;
use common::smtp::{ForgetMailPassword, SMTP_PASSWORD, SmtpPeer, free_port, set_mail_password};
use nightshift::lab::{Lab, LabSpec};

/// A lab whose config mails to `mail` (a [mail] section), with a unique
/// keyring service holding the relay's password.
async fn setup(spec: LabSpec, mail: &str) -> (Lab, tempfile::TempDir, PathBuf, ForgetMailPassword) {
    let (lab, dir, path) = common::lab_with_config(spec).await;
    let (text, service) = common::own_keyring(&path, &dir.path().join("none.sock"));
    let text = text.replace("[credentials.lab]", &format!("{mail}[credentials.lab]"));
    std::fs::write(&path, text).unwrap();
    (lab, dir, path, ForgetMailPassword(service))
}

fn run_mail(config: &Path) -> Output {
    ns(
        config,
        &["run", "lock-it-down", "--mail", "--password-stdin"],
        &format!("{PASSWORD}\n{PASSWORD}\n"),
    )
}

fn outbox_list(config: &Path) -> String {
    text(&ns(config, &["report", "list"], ""))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_arrives_as_multipart_text_and_html_over_starttls_with_auth() {
    let smtp_dir = tempfile::tempdir().unwrap();
    let peer = SmtpPeer::start(smtp_dir.path(), "auth", 0);
    let (lab, dir, config, _forget) = setup(
        LabSpec {
            ios: 5,
            nxos: 2,
            faults: vec!["reject:ios-003:2".parse().unwrap()],
            ..Default::default()
        },
        &peer.mail_section("netops@example.test"),
    )
    .await;
    // A wrong relay password is refused by the relay and not stored.
    let out = ns(
        &config,
        &[
            "credentials",
            "set",
            "--mail",
            "--store",
            "keyring",
            "--password-stdin",
        ],
        "nope\n",
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("535"), "{}", text(&out));
    set_mail_password(&config);

    let out = run_mail(&config);
    assert_eq!(
        out.status.code(),
        Some(1),
        "one device failed: {}",
        text(&out)
    );
    let messages = peer.messages();
    assert_eq!(messages.len(), 1, "{}", text(&out));
    let m = &messages[0];
    assert!(
        m.contains("Subject: [nightshift] lock-it-down: 6 changed, 1 failed"),
        "{m}"
    );
    assert!(m.contains("To: netops@example.test"), "{m}");
    assert!(m.contains("multipart/alternative"), "{m}");
    assert!(m.contains("text/plain") && m.contains("text/html"), "{m}");
    let body = decode_qp(m);
    assert!(body.contains("=== ios-003"), "{body}");
    assert!(body.contains("FAILED at"), "{body}");
    assert!(body.contains("Needs attention (1)"), "{body}");
    assert!(body.contains("+ "), "the ACL diff is in the mail: {body}");
    assert!(!m.contains(PASSWORD) && !m.contains(SMTP_PASSWORD));
    let list = outbox_list(&config);
    assert!(
        list.contains("sent") && list.contains("lock-it-down"),
        "{list}"
    );
    // The run history keeps the JSON.
    let history: Vec<_> = std::fs::read_dir(dir.path().join("lab.state/history"))
        .unwrap()
        .collect();
    assert_eq!(history.len(), 1);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_is_down_keeps_the_mail_until_it_is_back() {
    let smtp_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // The section for a peer that is not running yet.
    let mut peer = SmtpPeer::start(smtp_dir.path(), "auth", port);
    let section = peer.mail_section("netops@example.test");
    let (lab, _dir, config, _forget) = setup(
        LabSpec {
            ios: 3,
            nxos: 0,
            ..Default::default()
        },
        &section,
    )
    .await;
    set_mail_password(&config);
    peer.stop();

    let out = run_mail(&config);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("not sent"), "{}", text(&out));
    assert!(
        text(&out).contains("retried with backoff"),
        "{}",
        text(&out)
    );
    let list = outbox_list(&config);
    assert!(
        list.contains("pending") && list.contains("last error"),
        "{list}"
    );

    let peer = SmtpPeer::start(smtp_dir.path(), "auth", port);
    assert!(peer.messages().is_empty());
    let out = ns(&config, &["report", "flush"], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(peer.messages().len(), 1);
    assert!(peer.messages()[0].contains("Subject: [nightshift] lock-it-down: 3 changed"));
    assert!(outbox_list(&config).contains("sent"));
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_keeps_the_mail_in_the_outbox_until_it_is_resent() {
    let smtp_dir = tempfile::tempdir().unwrap();
    let mut peer = SmtpPeer::start(smtp_dir.path(), "reject", 0);
    let (lab, _dir, config, _forget) = setup(
        LabSpec {
            ios: 2,
            nxos: 0,
            ..Default::default()
        },
        &peer.mail_section("netops@example.test"),
    )
    .await;
    set_mail_password(&config);
    let out = run_mail(&config);
    let t = text(&out);
    assert!(t.contains("554"), "{t}");
    assert!(t.contains("refused it for good"), "{t}");
    let list = outbox_list(&config);
    assert!(
        list.contains("FAILED") && list.contains("(554): 5.7.1 Message rejected"),
        "{list}"
    );
    let id = list.split_whitespace().next().unwrap().to_string();
    let shown = text(&ns(&config, &["report", "show", &id], ""));
    assert!(
        shown.contains("Subject: [nightshift] lock-it-down: 2 changed"),
        "{shown}"
    );
    assert!(peer.messages().is_empty());
    // Once the cause is fixed, `report resend` sends it as it was kept.
    peer.stop();
    let peer = SmtpPeer::start(smtp_dir.path(), "auth", peer.port);
    let out = ns(&config, &["report", "resend", &id], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(peer.messages().len(), 1);
    assert!(outbox_list(&config).contains(&format!("{id}  sent")));
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4xx_is_retried_later() {
    let smtp_dir = tempfile::tempdir().unwrap();
    let peer = SmtpPeer::start(smtp_dir.path(), "defer", 0);
    let (lab, _dir, config, _forget) = setup(
        LabSpec {
            ios: 2,
            nxos: 0,
            ..Default::default()
        },
        &peer.mail_section("netops@example.test"),
    )
    .await;
    set_mail_password(&config);
    let t = text(&run_mail(&config));
    assert!(
        t.contains("451") && t.contains("retried with backoff"),
        "{t}"
    );
    let list = outbox_list(&config);
    assert!(
        list.contains("pending") && list.contains("1 tries"),
        "{list}"
    );
    // `report flush` tries again now; still 451: still pending, one more try.
    let out = ns(&config, &["report", "flush"], "");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(outbox_list(&config).contains("2 tries"));
    assert!(peer.messages().is_empty());
    lab.shutdown().await;
}

/// The message with quoted-printable soft breaks and escapes undone, and
/// base64 parts decoded, for content checks.
fn decode_qp(m: &str) -> String {
    let mut out = m.replace("=\r\n", "").replace("=\n", "");
    for (code, ch) in [("=3D", "="), ("=20", " "), ("=09", "\t")] {
        out = out.replace(code, ch);
    }
    out
}

/// Outbox files cut short, changed or missing, and a damaged run history:
/// `report list` names each (exit 1); `report flush` skips them with a
/// clear error and sends every other mail exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_outbox_and_history_files_are_listed_and_cost_no_other_mail() {
    use nightshift::report::mail::Rendered;
    use nightshift::report::outbox::Outbox;

    let smtp_dir = tempfile::tempdir().unwrap();
    let peer = SmtpPeer::start(smtp_dir.path(), "auth", 0);
    let (lab, dir, config, _forget) = setup(
        LabSpec {
            ios: 1,
            ..Default::default()
        },
        &peer.mail_section("netops@example.test"),
    )
    .await;
    set_mail_password(&config);
    let state = dir.path().join("lab.state");
    let outbox = Outbox::new(&state);
    let now = nightshift::clock::Clock::now(&nightshift::clock::SystemClock);
    let ids: Vec<String> = (0..7)
        .map(|n| {
            let mail = Rendered {
                subject: format!("mail {n}"),
                from: "nightshift@example.test".into(),
                to: vec!["netops@example.test".into()],
                bytes: format!(
                    "From: nightshift@example.test\r\nTo: netops@example.test\r\nSubject: mail {n}\r\n\r\nbody of mail {n}\r\n"
                )
                .into_bytes(),
            };
            outbox.put("alert", &format!("m{n}"), &mail, true, now).unwrap().id
        })
        .collect();
    let file = |id: &str, ext: &str| outbox.dir().join(format!("{id}.{ext}"));
    let cut = |p: &Path| {
        let b = std::fs::read(p).unwrap();
        std::fs::write(p, &b[..b.len() / 2]).unwrap();
    };
    cut(&file(&ids[0], "json")); // state cut short
    cut(&file(&ids[1], "eml")); // message cut short
    let mut b = std::fs::read(file(&ids[2], "eml")).unwrap();
    let i = b.len() - 5;
    b[i] = b'X'; // changed, same length
    std::fs::write(file(&ids[2], "eml"), b).unwrap();
    std::fs::remove_file(file(&ids[3], "eml")).unwrap(); // message missing
    std::fs::remove_file(file(&ids[4], "json")).unwrap(); // a crash between the writes
    // ids[5] and ids[6] are intact.
    let history = state.join("history");
    std::fs::create_dir_all(&history).unwrap();
    std::fs::write(
        history.join("good.json"),
        r#"{"run_id":"good","jobs":[],"devices":[],"counts":{}}"#,
    )
    .unwrap();
    std::fs::write(
        history.join("torn.json"),
        r#"{"run_id":"torn","jobs":[{"na"#,
    )
    .unwrap();

    let out = ns(&config, &["report", "list"], "");
    let list = text(&out);
    assert_eq!(out.status.code(), Some(1), "{list}");
    for (k, why) in [
        (0, "state file unreadable"),
        (1, "cut short or changed"),
        (2, "changed since it was stored"),
        (3, "message unreadable"),
        (4, "message without its state file"),
    ] {
        let line = list
            .lines()
            .find(|l| l.starts_with(&ids[k]))
            .unwrap_or_else(|| panic!("{} not listed: {list}", ids[k]));
        assert!(line.contains("DAMAGED") && line.contains(why), "{line}");
    }
    for k in [5, 6] {
        assert!(list.contains(&format!("{}  pending", ids[k])), "{list}");
    }
    assert!(
        list.contains("torn  DAMAGED") && list.contains("not JSON"),
        "{list}"
    );
    assert!(list.lines().any(|l| l.starts_with("good  ")), "{list}");

    let out = ns(&config, &["report", "flush"], "");
    let flushed = text(&out);
    assert_eq!(out.status.code(), Some(1), "{flushed}");
    for id in &ids[..5] {
        assert!(
            flushed.contains(&format!("{id}: ")),
            "{id} not named: {flushed}"
        );
    }
    let got = peer.messages();
    assert_eq!(got.len(), 2, "{flushed}");
    assert!(got.iter().any(|m| m.contains("Subject: mail 5")));
    assert!(got.iter().any(|m| m.contains("Subject: mail 6")));
    // Again: nothing more is sent, the damage is still named.
    let out = ns(&config, &["report", "flush"], "");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(peer.messages().len(), 2);
    let list = text(&ns(&config, &["report", "list"], ""));
    for k in [5, 6] {
        assert!(list.contains(&format!("{}  sent", ids[k])), "{list}");
    }
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_with_a_size_limit_gets_a_mail_it_takes_and_the_rest_stays_in_the_history() {
    const LIMIT: usize = 100_000;
    let smtp_dir = tempfile::tempdir().unwrap();
    // No message over 100 kB: SIZE in EHLO, 552 above it.
    let peer = SmtpPeer::start(smtp_dir.path(), &format!("size-{LIMIT}"), 0);
    let (lab, dir, config, _forget) = setup(
        LabSpec {
            ios: 6,
            nxos: 4,
            ..Default::default()
        },
        &peer.mail_section("netops@example.test"),
    )
    .await;
    set_mail_password(&config);
    // A 400-entry ACL: every device's diff in the body, or the JSON
    // report attached, is more than the relay takes.
    let acl: Vec<String> = (0..399)
        .map(|i| {
            format!(
                "permit tcp 10.{}.{}.0 0.0.0.255 any eq 443",
                i / 250,
                i % 250
            )
        })
        .chain(["deny ip any any log".to_string()])
        .collect();
    let with_acl =
        common::with_acl_lines(&std::fs::read_to_string(&config).unwrap(), &acl.join("\n"));
    std::fs::write(&config, &with_acl).unwrap();
    let dry_run = || {
        ns(
            &config,
            &[
                "run",
                "lock-it-down",
                "--mail",
                "--password-stdin",
                "--dry-run",
            ],
            &format!("{PASSWORD}\n{PASSWORD}\n"),
        )
    };

    // Not told the relay's limit (10 MB by default): the whole report goes
    // in the body, and the relay refuses it for good.
    let out = dry_run();
    assert!(text(&out).contains("552"), "{}", text(&out));
    assert!(
        text(&out).contains("refused the mail as too big: set [mail] max_size_kb"),
        "{}",
        text(&out)
    );
    assert!(peer.messages().is_empty());

    // Told: the mail fits, and says where the rest is.
    let told = with_acl.replace(
        "timeout = \"5s\"\n",
        &format!("timeout = \"5s\"\nmax_size_kb = {}\n", LIMIT / 1000),
    );
    std::fs::write(&config, told).unwrap();
    let out = dry_run();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let messages = peer.messages();
    assert_eq!(messages.len(), 1, "{}", text(&out));
    let m = &messages[0];
    assert!(m.len() <= LIMIT, "{} bytes", m.len());
    assert!(
        m.contains("Subject: [nightshift] lock-it-down: 10 would change"),
        "{m}"
    );
    let body = decode_qp(m);
    let history = std::fs::read_dir(dir.path().join("lab.state/history"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| body.contains(&p.display().to_string()))
        .unwrap_or_else(|| panic!("the body names the report in the run history: {body}"));
    assert!(
        body.contains("too big for a mail of at most 100 kB (max_size_kb = 100)"),
        "{body}"
    );
    assert!(m.contains("Content-Type: text/csv"), "the CSV is attached");
    assert!(
        !m.contains("Content-Type: application/json"),
        "the JSON is not"
    );
    // The named file reads back as the whole report.
    let html = common::render_html(&config, &history);
    assert!(
        html.contains("permit tcp 10.1.148.0 0.0.0.255 any eq 443"),
        "the last device's diff"
    );
    assert_eq!(
        html.matches("would-change</span>").count(),
        11,
        "10 devices and the count"
    );
    lab.shutdown().await;
}
