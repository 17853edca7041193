//! Fault injection, authentication methods and the lab's observations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{PASSWORD, Shell, connect, ios_enable, start_lab};
use nightshift::lab::{Lab, LabSpec};
use russh::client::KeyboardInteractiveAuthResponse;
use russh::keys::{Algorithm, PrivateKey, PrivateKeyWithHashAlg};

async fn lab_with(faults: &[&str]) -> Lab {
    start_lab(LabSpec {
        ios: 3,
        nxos: 1,
        faults: faults.iter().map(|f| f.parse().unwrap()).collect(),
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn auth_fault_rejects_the_right_password_and_counts_it() {
    let lab = lab_with(&["auth:ios-002"]).await;
    assert!(
        Shell::open_with(&lab, "ios-002", "admin", PASSWORD)
            .await
            .is_err()
    );
    assert!(
        Shell::open_with(&lab, "ios-001", "admin", PASSWORD)
            .await
            .is_ok()
    );
    let st = lab.stats();
    assert_eq!(st.auth_failures, 1);
    assert_eq!(st.device("ios-002").unwrap().auth_failures, 1);
    assert_eq!(st.device("ios-002").unwrap().logins, 0);
    lab.shutdown().await;
}

#[tokio::test]
async fn lockout_locks_the_account_fleet_wide() {
    let lab = lab_with(&["lockout:2"]).await;
    assert!(
        Shell::open_with(&lab, "ios-001", "admin", "typo")
            .await
            .is_err()
    );
    assert!(
        Shell::open_with(&lab, "nxos-001", "admin", "typo")
            .await
            .is_err()
    );
    // Locked now: even the right password is refused, on any device.
    assert!(
        Shell::open_with(&lab, "ios-003", "admin", PASSWORD)
            .await
            .is_err()
    );
    assert_eq!(lab.stats().auth_failures, 3);
    lab.shutdown().await;
}

#[tokio::test]
async fn refuse_hang_slow() {
    let lab = lab_with(&["refuse:ios-001", "hang:ios-002", "slow:ios-003:300ms"]).await;
    let err = tokio::net::TcpStream::connect(lab.device("ios-001").unwrap().addr)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);

    let mut hung = Shell::open(&lab, "ios-002").await;
    assert!(
        hung.try_expect(">$", Duration::from_millis(500))
            .await
            .is_err(),
        "no prompt after login"
    );
    assert_eq!(lab.stats().device("ios-002").unwrap().logins, 1);

    let mut slow = Shell::open(&lab, "ios-003").await;
    slow.expect("ios-003>$").await;
    let t = Instant::now();
    slow.cmd("show version").await;
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    lab.shutdown().await;
}

#[tokio::test]
async fn drop_and_reject_on_config_lines() {
    let lab = lab_with(&["drop:ios-001:3", "reject:ios-002:2"]).await;
    let mut s = ios_enable(&lab, "ios-002").await;
    s.cmd("configure terminal").await;
    assert!(!s.cmd("ip access-list extended X1").await.contains('%'));
    let rejected = s.cmd("permit ip any any").await;
    assert!(
        rejected.contains("% Invalid input detected at '^' marker."),
        "{rejected}"
    );
    assert!(!s.cmd("permit tcp any any").await.contains('%'));
    s.cmd("end").await;
    assert_eq!(
        lab.stats().device("ios-002").unwrap().acls["X1"],
        ["permit tcp any any"]
    );

    let mut d = ios_enable(&lab, "ios-001").await;
    d.cmd("configure terminal").await;
    d.cmd("ip access-list extended X2").await;
    d.cmd("permit ip any any").await;
    d.send("deny ip any any\r").await;
    assert!(
        d.wait_closed(Duration::from_secs(5)).await,
        "connection dropped after the third config line"
    );
    let st = lab.stats();
    assert_eq!(st.device("ios-001").unwrap().config_lines, 3);
    assert_eq!(
        st.device("ios-001").unwrap().acls["X2"],
        ["permit ip any any", "deny ip any any"]
    );
    lab.shutdown().await;
}

#[tokio::test]
async fn legacy_devices_need_the_legacy_algorithms() {
    let lab = lab_with(&["legacy:ios-001"]).await;
    let d = lab.device("ios-001").unwrap();
    let err = connect(d.addr, &d.host_key, None)
        .await
        .err()
        .expect("modern client must fail");
    assert!(err.to_string().contains("No common"), "{err}");
    let mut h = connect(
        d.addr,
        &d.host_key,
        Some(nightshift::device::legacy_algorithms()),
    )
    .await
    .expect("legacy client connects");
    assert!(
        h.authenticate_password("admin", PASSWORD)
            .await
            .unwrap()
            .success()
    );
    let mut s = Shell::on(h).await.unwrap();
    s.expect("ios-001>$").await;
    lab.shutdown().await;
}

#[tokio::test]
async fn keyboard_interactive_and_public_key_logins() {
    let user_key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap();
    let lab = start_lab(LabSpec {
        ios: 1,
        nxos: 0,
        authorized_keys: vec![user_key.public_key().clone()],
        ..Default::default()
    })
    .await;
    let d = lab.device("ios-001").unwrap();

    let mut h = connect(d.addr, &d.host_key, None).await.unwrap();
    match h
        .authenticate_keyboard_interactive_start("admin", None)
        .await
        .unwrap()
    {
        KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
            assert_eq!(prompts.len(), 1);
            assert_eq!(prompts[0].prompt, "Password: ");
            assert!(!prompts[0].echo);
        }
        other => panic!("expected a prompt, got {other:?}"),
    }
    let r = h
        .authenticate_keyboard_interactive_respond(vec![PASSWORD.into()])
        .await
        .unwrap();
    assert!(
        matches!(r, KeyboardInteractiveAuthResponse::Success),
        "{r:?}"
    );

    let mut h = connect(d.addr, &d.host_key, None).await.unwrap();
    let r = h
        .authenticate_publickey(
            "admin",
            PrivateKeyWithHashAlg::new(Arc::new(user_key), None),
        )
        .await
        .unwrap();
    assert!(r.success());
    let stranger = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap();
    let mut h = connect(d.addr, &d.host_key, None).await.unwrap();
    assert!(
        !h.authenticate_publickey(
            "admin",
            PrivateKeyWithHashAlg::new(Arc::new(stranger), None)
        )
        .await
        .unwrap()
        .success()
    );
    assert_eq!(
        lab.stats().auth_failures,
        0,
        "key rejections are not password failures"
    );
    lab.shutdown().await;
}

#[tokio::test]
async fn concurrency_and_login_times_are_recorded() {
    let lab = lab_with(&[]).await;
    let mut shells = Vec::new();
    for name in ["ios-001", "ios-002", "ios-003", "nxos-001"] {
        shells.push(Shell::open(&lab, name).await);
    }
    for mut s in shells {
        s.expect(r"[>#] ?$").await;
        s.send("exit\r").await;
        assert!(s.wait_closed(Duration::from_secs(5)).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let st = lab.stats();
    assert_eq!(st.max_concurrent_sessions, 4);
    for d in &st.devices {
        let (first, last) = (d.first_login_ms.unwrap(), d.last_logout_ms.unwrap());
        assert!(first <= last, "{}: {first} > {last}", d.name);
        assert_eq!(d.logins, 1);
    }
    lab.shutdown().await;
}

#[tokio::test]
async fn the_lab_refuses_anything_but_loopback() {
    let spec = LabSpec {
        host: "192.0.2.1".parse().unwrap(),
        ..Default::default()
    };
    let err = Lab::start(spec).await.err().expect("refused");
    assert!(err.to_string().contains("loopback"), "{err}");
    let spec = LabSpec {
        faults: vec!["auth:ios-999".parse().unwrap()],
        ..Default::default()
    };
    assert!(
        Lab::start(spec).await.is_err(),
        "faults must name real devices"
    );
}
