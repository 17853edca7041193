//! Logging in to lab devices with the product's SSH client: password,
//! keyboard-interactive and key authentication, one failed login for a
//! wrong password, host-key policies, legacy algorithms, the login gate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::device::{Fixture, faults, login};
use nightshift::config::{AlgorithmProfile, HostKeyPolicy};
use nightshift::device::{DeviceError, KnownHosts, Login, Session, Stage, UserKey};
use nightshift::lab::LabSpec;
use secrecy::SecretString;

#[tokio::test]
async fn auth_methods_password_keyboard_interactive_and_key() {
    let user_key =
        russh::keys::PrivateKey::random(&mut rand::rng(), russh::keys::Algorithm::Ed25519).unwrap();
    let f = Fixture::new(LabSpec {
        ios: 2,
        nxos: 0,
        faults: faults(&["kbdint:ios-002"]),
        authorized_keys: vec![user_key.public_key().clone()],
        ..Default::default()
    })
    .await;
    f.open("ios-001").await.unwrap().close().await;
    f.open("ios-002")
        .await
        .expect("keyboard-interactive with the password")
        .close()
        .await;
    let key_only = Login {
        password: None,
        key: Some(UserKey {
            key: Arc::new(user_key),
            rsa_sha1: false,
        }),
        ..login()
    };
    let s = Session::open(&f.target("ios-001"), &key_only, &f.known)
        .await
        .expect("public key");
    s.close().await;
    assert_eq!(f.lab.stats().auth_failures, 0);
}

#[tokio::test]
async fn a_wrong_password_costs_exactly_one_failed_login() {
    for device in ["ios-001", "ios-002"] {
        let f = Fixture::new(LabSpec {
            ios: 2,
            nxos: 0,
            faults: faults(&["kbdint:ios-002"]),
            ..Default::default()
        })
        .await;
        let wrong = Login {
            password: Some(SecretString::from("not-it")),
            ..login()
        };
        match Session::open(&f.target(device), &wrong, &f.known).await {
            Err(e @ DeviceError::AuthRejected { .. }) => {
                assert!(e.is_auth_rejected());
                assert!(!e.to_string().contains("not-it"));
            }
            other => panic!("{device}: {:?}", other.err()),
        }
        assert_eq!(
            f.lab.stats().auth_failures,
            1,
            "{device}: one attempt, one failure"
        );
    }
}

#[tokio::test]
async fn host_keys_strict_accept_new_and_changed() {
    let f = Fixture::new(LabSpec {
        ios: 2,
        nxos: 0,
        ..Default::default()
    })
    .await;
    let empty = f.dir.path().join("empty_known_hosts");
    let mut t = f.target("ios-001");
    t.ssh.known_hosts = empty.clone();
    let fresh = Arc::new(KnownHosts::load(&empty).unwrap());
    let err = Session::open(&t, &login(), &fresh).await.err().unwrap();
    assert!(matches!(err, DeviceError::HostKeyUnknown { .. }), "{err}");
    assert!(err.hint().unwrap().contains("accept-new"));
    assert_eq!(
        f.lab.stats().device("ios-001").unwrap().logins,
        0,
        "no password was sent to an unverified host"
    );

    t.ssh.host_key_policy = HostKeyPolicy::AcceptNew;
    let s = Session::open(&t, &login(), &fresh).await.unwrap();
    assert!(s.learned_host_key());
    s.close().await;
    let text = std::fs::read_to_string(&empty).unwrap();
    let port = f.lab.device("ios-001").unwrap().addr.port();
    assert!(
        text.starts_with(&format!("[127.0.0.1]:{port} ssh-ed25519 ")),
        "{text}"
    );
    let s = Session::open(&t, &login(), &fresh).await.unwrap();
    assert!(!s.learned_host_key(), "known now");
    s.close().await;

    // ios-002's key recorded under ios-001's address: changed, even with accept-new.
    let other = f
        .lab
        .device("ios-002")
        .unwrap()
        .host_key
        .to_openssh()
        .unwrap();
    let swapped = f.dir.path().join("swapped");
    std::fs::write(&swapped, format!("[127.0.0.1]:{port} {other}\n")).unwrap();
    let err = Session::open(&t, &login(), &Arc::new(KnownHosts::load(&swapped).unwrap()))
        .await
        .err()
        .unwrap();
    match &err {
        DeviceError::HostKeyChanged {
            line, fingerprint, ..
        } => {
            assert_eq!(*line, 1);
            assert!(fingerprint.starts_with("SHA256:"));
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("impersonated"));
}

#[tokio::test]
async fn legacy_device_needs_the_legacy_profile() {
    let f = Fixture::new(LabSpec {
        ios: 1,
        nxos: 0,
        faults: faults(&["legacy:ios-001"]),
        ..Default::default()
    })
    .await;
    let err = f.open("ios-001").await.err().unwrap();
    assert!(
        matches!(
            err,
            DeviceError::Handshake {
                legacy_hint: true,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.hint().unwrap().contains("algorithms = \"legacy\""));
    let mut t = f.target("ios-001");
    t.ssh.algorithms = AlgorithmProfile::Legacy;
    let mut s = Session::open(&t, &login(), &f.known).await.unwrap();
    let n = s.negotiated().clone();
    assert_eq!(
        (n.kex.as_str(), n.host_key.as_str(), n.mac.as_str()),
        ("diffie-hellman-group14-sha1", "ssh-rsa", "hmac-sha1")
    );
    assert!(n.cipher.ends_with("-cbc"), "{n:?}");
    assert!(s.command("show version").await.is_ok());
}

#[tokio::test]
async fn at_the_login_gate_a_rejected_password_is_sent_once_and_an_unfinished_login_hands_over() {
    use nightshift::device::{LoginGate, Proof};
    let f = Arc::new(
        Fixture::new(LabSpec {
            ios: 5,
            nxos: 0,
            faults: faults(&["slowauth:ios-001"]),
            ..Default::default()
        })
        .await,
    );
    // Every device starts at once; its number is its place in the inventory.
    let open_all = |gate: &Arc<LoginGate>, devices: &[u64], login: &Login| {
        devices
            .iter()
            .map(|&n| {
                let pass = gate.pass(n);
                let (f, login) = (f.clone(), login.clone());
                let mut target = f.target(&format!("ios-{n:03}"));
                target.ssh.connect_timeout = Duration::from_secs(1);
                tokio::spawn(
                    async move { Session::log_in(&target, &login, &f.known, Some(pass)).await },
                )
            })
            .collect::<Vec<_>>()
    };

    // A wrong password: ios-002, first in order, tries it; the others
    // connect, wait, and are turned away without sending it.
    let wrong = Login {
        password: Some(SecretString::from("not-it")),
        ..login()
    };
    let gate = LoginGate::new("ops");
    let mut all = open_all(&gate, &[5, 3, 2, 4], &wrong);
    let first = all.remove(2);
    assert!(matches!(
        first.await.unwrap(),
        Err(DeviceError::AuthRejected { .. })
    ));
    for r in all {
        match r.await.unwrap() {
            Err(DeviceError::CredentialsWithheld { reason, .. }) => {
                assert!(reason.contains("rejected by ios-002"), "{reason}")
            }
            other => panic!("{:?}", other.err()),
        }
    }
    assert_eq!(f.lab.stats().auth_failures, 1, "one attempt in all");

    // ios-001 never answers the password: its login proves nothing, so the
    // next device in order tries, and then the rest go.
    let gate = LoginGate::new("ops");
    let mut all = open_all(&gate, &[1, 2, 3, 4, 5], &login());
    let first = all.remove(0);
    assert!(matches!(
        first.await.unwrap(),
        Err(DeviceError::Timeout {
            stage: Stage::Auth,
            ..
        })
    ));
    for r in all {
        r.await.unwrap().unwrap().close().await;
    }
    assert_eq!(gate.proof(), Proof::Proven);
    assert_eq!(f.lab.stats().auth_failures, 1);
}
