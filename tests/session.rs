//! Device sessions (the product's SSH client) against the lab: the expect
//! layer — commands, pages, echo, ANSI noise, failure indicators,
//! configuration mode, timeouts — and what it logs. Logging in (methods,
//! host keys, legacy algorithms, the login gate) is in `login.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::PASSWORD;
use common::device::{Fixture, faults, login};
use nightshift::device::{DeviceError, Login, Session, Stage};
use nightshift::lab::LabSpec;
use secrecy::SecretString;

#[tokio::test]
async fn ios_login_enable_commands_and_algorithms() {
    let f = Fixture::new(LabSpec {
        ios: 1,
        nxos: 0,
        ..Default::default()
    })
    .await;
    let mut s = f.open("ios-001").await.unwrap();
    assert_eq!(s.hostname(), "ios-001");
    assert!(s.privileged(), "enabled with the secret: {}", s.prompt());
    let v = s.command("show version").await.unwrap();
    assert!(v.starts_with("Cisco IOS Software"), "echo removed: {v:?}");
    assert!(!v.contains("ios-001#"), "prompt removed");
    assert!(!v.contains('\r'));
    let neg = s.negotiated().clone();
    assert!(
        neg.kex.contains("curve25519") || neg.kex.contains("mlkem"),
        "{neg:?}"
    );
    assert_eq!(neg.host_key, "ssh-ed25519");
    assert!(!s.learned_host_key());
    s.close().await;
}

/// Where a device's time goes is in the debug log, phase by phase, with
/// each phase's duration (the engine bench's `--phases` reads the same).
#[tokio::test]
async fn each_phase_of_a_session_is_a_debug_event_with_its_duration() {
    let log = common::log::capture();
    let f = Fixture::new(LabSpec {
        ios: 1,
        nxos: 0,
        ..Default::default()
    })
    .await;
    let mut s = f.open("ios-001").await.unwrap();
    s.command("show version").await.unwrap();
    s.close().await;
    let lines = log.lines.lock().unwrap();
    let mut at = 0;
    for phase in [
        "key exchange done",
        "authenticated",
        "prompt found",
        "enabled",
        "answered",
        "logged out",
    ] {
        let found = lines[at..].iter().position(|l| {
            l.starts_with(&format!(" message={phase} "))
                && l.contains(" device=ios-001")
                && (phase == "logged out" || l.contains(" ms="))
        });
        let Some(i) = found else {
            panic!("no {phase:?} event after {:#?}", &lines[..at]);
        };
        at += i + 1;
    }
}

#[tokio::test]
async fn long_output_split_into_packets_and_pages_comes_back_whole() {
    let f = Fixture::new(LabSpec {
        ios: 1,
        nxos: 0,
        ..Default::default()
    })
    .await;
    let mut s = f.open("ios-001").await.unwrap();
    let mut lines = vec!["ip access-list extended BIG".to_string()];
    lines.extend((1..=40).map(|i| format!("permit tcp host 10.0.{i}.1 any eq 22")));
    s.configure(&lines).await.unwrap();
    let whole = s.command("show running-config").await.unwrap();
    assert!(
        whole.len() > 3 * 700,
        "several 700-byte packets: {}",
        whole.len()
    );
    assert_eq!(whole.matches("permit tcp host 10.0.").count(), 40);
    s.command("terminal length 10").await.unwrap();
    let paged = s.command("show running-config").await.unwrap();
    assert!(!paged.contains("More"), "{paged}");
    let strip = |t: &str| {
        t.lines()
            .filter(|l| !l.starts_with("Current configuration"))
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&paged), strip(&whole));
    s.close().await;
}

#[tokio::test]
async fn nxos_prompt_with_ansi_noise() {
    let f = Fixture::new(LabSpec {
        ios: 0,
        nxos: 1,
        ..Default::default()
    })
    .await;
    let mut s = f.open("nxos-001").await.unwrap();
    assert_eq!(s.prompt(), "nxos-001# ");
    let acl = s
        .command("show ip access-lists LOCK_IT_DOWN")
        .await
        .unwrap();
    assert!(
        acl.contains("IP access list LOCK_IT_DOWN") && !acl.contains('\x1b'),
        "{acl:?}"
    );
    s.close().await;
}

#[tokio::test]
async fn failure_indicators_become_typed_errors() {
    let f = Fixture::new(LabSpec {
        ios: 1,
        nxos: 1,
        ..Default::default()
    })
    .await;
    let mut s = f.open("ios-001").await.unwrap();
    for (cmd, indicator) in [
        ("show foo", "% Invalid input"),
        ("show", "% Incomplete command"),
        ("c", "% Ambiguous command"),
    ] {
        match s.command(cmd).await {
            Err(DeviceError::CommandRejected {
                device,
                command,
                indicator: i,
                message,
            }) => {
                assert_eq!(
                    (device.as_str(), command.as_str(), i.as_str()),
                    ("ios-001", cmd, indicator)
                );
                assert!(message.starts_with('%'), "{message}");
            }
            other => panic!("{cmd}: {other:?}"),
        }
    }
    assert!(
        s.command("show version").await.is_ok(),
        "the session goes on after a refused command"
    );
    let mut n = f.open("nxos-001").await.unwrap();
    assert!(
        matches!(n.command("show ip access-lsts").await, Err(DeviceError::CommandRejected { indicator, .. }) if indicator == "% Invalid command")
    );
}

#[tokio::test]
async fn configure_applies_lines_and_stops_at_a_refused_one() {
    let f = Fixture::new(LabSpec {
        ios: 1,
        nxos: 0,
        ..Default::default()
    })
    .await;
    let mut s = f.open("ios-001").await.unwrap();
    let lines: Vec<String> = [
        "ip access-list extended S1",
        "permit tcp any any eq 22",
        "permti ip any any",
        "deny ip any any",
    ]
    .map(String::from)
    .to_vec();
    match s.configure(&lines).await {
        Err(DeviceError::CommandRejected { command, .. }) => {
            assert_eq!(command, "permti ip any any")
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !s.in_config_mode(),
        "left configuration mode: {}",
        s.prompt()
    );
    assert_eq!(
        f.lab.stats().device("ios-001").unwrap().acls["S1"],
        ["permit tcp any any eq 22"]
    );
    s.configure(&[
        "ip access-list extended S1".into(),
        "deny ip any any".into(),
    ])
    .await
    .unwrap();
    assert_eq!(
        f.lab.stats().device("ios-001").unwrap().acls["S1"],
        ["permit tcp any any eq 22", "deny ip any any"]
    );
    let saved = s.save().await.unwrap();
    assert!(saved.contains("[OK]"), "{saved}");
    assert!(f.lab.stats().device("ios-001").unwrap().saved);
    s.close().await;
}

#[tokio::test]
async fn every_wait_has_a_timeout() {
    let f = Fixture::new(LabSpec {
        ios: 3,
        nxos: 0,
        faults: faults(&["hang:ios-001", "slow:ios-002:2s", "refuse:ios-003"]),
        ..Default::default()
    })
    .await;
    let mut t = f.target("ios-001");
    t.ssh.command_timeout = Duration::from_millis(400);
    let err = Session::open(&t, &login(), &f.known).await.err().unwrap();
    assert!(
        matches!(
            err,
            DeviceError::Timeout {
                stage: Stage::Prompt,
                ..
            }
        ),
        "{err}"
    );

    let mut t = f.target("ios-002");
    t.ssh.command_timeout = Duration::from_millis(2500);
    let mut s = Session::open(&t, &login(), &f.known).await.unwrap();
    s.set_command_timeout(Duration::from_millis(500));
    match s.command("show version").await {
        Err(
            e @ DeviceError::Timeout {
                stage: Stage::Command,
                ..
            },
        ) => assert!(e.to_string().contains("`show version`"), "{e}"),
        other => panic!("{other:?}"),
    }

    let err = f.open("ios-003").await.err().unwrap();
    assert!(matches!(err, DeviceError::Unreachable { .. }), "{err}");

    // An AAA server that never answers: the login times out.
    let g = Fixture::new(LabSpec {
        ios: 1,
        nxos: 0,
        faults: faults(&["slowauth:ios-001"]),
        ..Default::default()
    })
    .await;
    let mut t = g.target("ios-001");
    t.ssh.connect_timeout = Duration::from_millis(400);
    let err = Session::open(&t, &login(), &g.known).await.err().unwrap();
    assert!(
        matches!(
            err,
            DeviceError::Timeout {
                stage: Stage::Auth,
                ..
            }
        ),
        "{err}"
    );

    // A listener whose queue is full and never accepts: the TCP connect
    // itself hangs (Linux drops further SYNs) and times out.
    let full = tokio::net::TcpSocket::new_v4().unwrap();
    full.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let full_addr = full.local_addr().unwrap();
    let full = full.listen(0).unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(c)) = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(full_addr),
        )
        .await
        {
            fillers.push(c);
        }
    }
    let mut t = f.target("ios-001");
    t.port = full_addr.port();
    t.ssh.connect_timeout = Duration::from_millis(300);
    let err = Session::open(&t, &login(), &f.known).await.err().unwrap();
    assert!(
        matches!(
            err,
            DeviceError::Timeout {
                stage: Stage::Connect,
                ..
            }
        ),
        "{err}"
    );
    drop((full, fillers));

    // A listener that never speaks SSH: the handshake times out.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut t = f.target("ios-001");
    t.port = silent.local_addr().unwrap().port();
    t.ssh.connect_timeout = Duration::from_millis(300);
    let err = Session::open(&t, &login(), &f.known).await.err().unwrap();
    assert!(
        matches!(
            err,
            DeviceError::Timeout {
                stage: Stage::Handshake,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_dropped_session_is_an_error_not_a_hang() {
    let f = Fixture::new(LabSpec {
        ios: 1,
        nxos: 0,
        faults: faults(&["drop:ios-001:2"]),
        ..Default::default()
    })
    .await;
    let mut s = f.open("ios-001").await.unwrap();
    let err = s
        .configure(&[
            "ip access-list extended D".into(),
            "permit ip any any".into(),
            "deny ip any any".into(),
        ])
        .await
        .err()
        .unwrap();
    assert!(matches!(err, DeviceError::Closed { .. }), "{err}");
}

#[tokio::test]
async fn secrets_stay_out_of_transcripts_and_debug() {
    let f = Fixture::new(LabSpec {
        ios: 1,
        nxos: 0,
        ..Default::default()
    })
    .await;
    let mut t = f.target("ios-001");
    let path = f.dir.path().join("transcripts/ios-001.log");
    t.transcript = Some(path.clone());
    // Log in as `admin` with no enable secret, then enable by hand so the
    // secret goes over the channel.
    let mut s = Session::open(
        &t,
        &Login {
            enable_secret: Some(SecretString::from(PASSWORD)),
            ..login()
        },
        &f.known,
    )
    .await
    .unwrap();
    s.command("show version").await.unwrap();
    s.close().await;
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("ios-001#") && text.contains(">>> show version"),
        "{text}"
    );
    assert!(
        text.contains(">>> ********"),
        "the enable secret is masked: {text}"
    );
    assert!(!text.contains(PASSWORD));
    assert!(!format!("{:?}", login()).contains(PASSWORD));
}

#[tokio::test]
async fn long_hostnames_shortened_in_config_mode() {
    let f = Fixture::new(LabSpec {
        ios: 1,
        nxos: 0,
        ..Default::default()
    })
    .await;
    let mut s = f.open("ios-001").await.unwrap();
    // Renaming changes the prompt mid-command; the first session times out
    // waiting for its old prompt, which is what a real device would do too.
    s.set_command_timeout(Duration::from_millis(500));
    let _ = s
        .configure(&["hostname ios-001-distribution-switch-a".into()])
        .await;
    let mut s = f.open("ios-001").await.unwrap();
    assert_eq!(s.hostname(), "ios-001-distribution-switch-a");
    s.configure(&[
        "ip access-list extended LONG".into(),
        "permit ip any any".into(),
    ])
    .await
    .unwrap();
    assert!(s.prompt().ends_with("switch-a#"));
    assert_eq!(
        f.lab.stats().device("ios-001").unwrap().acls["LONG"],
        ["permit ip any any"]
    );
}

#[tokio::test]
async fn pasted_lines_are_attributed_to_the_line_that_failed() {
    let f = Fixture::new(LabSpec {
        ios: 1,
        nxos: 0,
        ..Default::default()
    })
    .await;
    let mut s = f.open("ios-001").await.unwrap();
    s.command("configure terminal").await.unwrap();
    let lines: Vec<String> = [
        "ip access-list extended P",
        "10 permit tcp any any eq 22",
        "20 permti ip any any",
        "30 deny ip any any",
    ]
    .map(String::from)
    .to_vec();
    match s.send_batch(&lines).await {
        Err(DeviceError::CommandRejected {
            command, message, ..
        }) => {
            assert_eq!(command, "20 permti ip any any");
            assert!(message.contains("% Invalid input"));
        }
        other => panic!("{other:?}"),
    }
    // Typed-ahead lines after the refused one were still read by the device.
    assert!(s.in_config_mode(), "{}", s.prompt());
    s.command("end").await.unwrap();
    assert_eq!(
        f.lab.stats().device("ios-001").unwrap().acls["P"],
        ["permit tcp any any eq 22", "deny ip any any"]
    );
    let outputs = s
        .send_batch(&["show ip access-lists P".into(), "show version".into()])
        .await
        .unwrap();
    assert!(
        outputs[0].starts_with("Extended IP access list P")
            && outputs[1].starts_with("Cisco IOS Software"),
        "{outputs:?}"
    );
}
