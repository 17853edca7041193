//! Interop: the device session against OpenSSH's sshd (installed by the
//! test setup, started here in the foreground on 127.0.0.1), with a modern
//! config and with legacy-only ones that imitate old IOS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Waiting for a child process from plain test threads.
#![allow(clippy::disallowed_methods)]

use std::time::Duration;

use nightshift::config::AlgorithmProfile;
use nightshift::device::{DeviceError, Session};

#[path = "common/sshd.rs"]
mod sshd;
use sshd::{Sshd, start_sshd};

async fn show_version(
    sshd: &Sshd,
    algorithms: AlgorithmProfile,
    rsa_sha1: bool,
) -> Result<nightshift::device::Negotiated, DeviceError> {
    let (target, known) = sshd.target(algorithms);
    let mut s = Session::open(&target, &sshd.login(rsa_sha1), &known).await?;
    assert_eq!(s.command("show version").await?, "OpenSSH interop device");
    assert!(matches!(
        s.command("show foo").await,
        Err(DeviceError::CommandRejected { .. })
    ));
    let n = s.negotiated().clone();
    s.close().await;
    Ok(n)
}

#[tokio::test]
async fn modern_sshd() {
    let sshd = start_sshd(&["-t", "ed25519"], &["-t", "ed25519"], "");
    let n = show_version(&sshd, AlgorithmProfile::Modern, false)
        .await
        .unwrap();
    assert_eq!(n.host_key, "ssh-ed25519");
    assert!(
        n.kex.starts_with("curve25519") || n.kex.starts_with("mlkem"),
        "{n:?}"
    );
}

const LEGACY_RSA: &str =
    "HostKeyAlgorithms ssh-rsa\nMACs hmac-sha1\nPubkeyAcceptedAlgorithms +ssh-rsa";

#[tokio::test]
async fn legacy_group14_sha1_ssh_rsa_aes128_cbc_hmac_sha1() {
    let sshd = start_sshd(
        &["-t", "rsa", "-b", "1024"],
        &["-t", "ed25519"],
        &format!("{LEGACY_RSA}\nKexAlgorithms diffie-hellman-group14-sha1\nCiphers aes128-cbc"),
    );
    let err = show_version(&sshd, AlgorithmProfile::Modern, false)
        .await
        .err()
        .unwrap();
    assert!(
        err.hint().unwrap().contains("algorithms = \"legacy\""),
        "{err}"
    );
    let n = show_version(&sshd, AlgorithmProfile::Legacy, false)
        .await
        .unwrap();
    assert_eq!(
        (
            n.kex.as_str(),
            n.host_key.as_str(),
            n.cipher.as_str(),
            n.mac.as_str()
        ),
        (
            "diffie-hellman-group14-sha1",
            "ssh-rsa",
            "aes128-cbc",
            "hmac-sha1"
        )
    );
}

#[tokio::test]
async fn legacy_group1_sha1_3des_cbc() {
    let sshd = start_sshd(
        &["-t", "rsa", "-b", "1024"],
        &["-t", "ed25519"],
        &format!("{LEGACY_RSA}\nKexAlgorithms diffie-hellman-group1-sha1\nCiphers 3des-cbc"),
    );
    let n = show_version(&sshd, AlgorithmProfile::Legacy, false)
        .await
        .unwrap();
    assert_eq!(
        (n.kex.as_str(), n.cipher.as_str()),
        ("diffie-hellman-group1-sha1", "3des-cbc")
    );
}

#[tokio::test]
async fn legacy_gex_sha1_aes256_ctr() {
    let sshd = start_sshd(
        &["-t", "rsa", "-b", "1024"],
        &["-t", "ed25519"],
        &format!(
            "{LEGACY_RSA}\nKexAlgorithms diffie-hellman-group-exchange-sha1\nCiphers aes256-ctr"
        ),
    );
    let n = show_version(&sshd, AlgorithmProfile::Legacy, false)
        .await
        .unwrap();
    assert_eq!(
        (n.kex.as_str(), n.cipher.as_str()),
        ("diffie-hellman-group-exchange-sha1", "aes256-ctr")
    );
}

#[tokio::test]
async fn rsa_user_key_signed_with_sha1() {
    let sshd = start_sshd(
        &["-t", "rsa", "-b", "2048"],
        &["-t", "rsa", "-b", "2048"],
        "HostKeyAlgorithms ssh-rsa\nPubkeyAcceptedAlgorithms ssh-rsa",
    );
    // An sshd that accepts only ssh-rsa signatures refuses SHA-2 ones...
    assert!(matches!(
        show_version(&sshd, AlgorithmProfile::Legacy, false).await,
        Err(DeviceError::AuthRejected { .. })
    ));
    // ...and accepts the SHA-1 signature old IOS needs.
    show_version(&sshd, AlgorithmProfile::Legacy, true)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_device_whose_login_grace_ran_out_at_the_login_gate_is_reconnected() {
    // sshd drops a connection that has not authenticated within
    // LoginGraceTime, as IOS does after `ip ssh time-out`. A device that
    // waited longer than that at the login gate connects again instead of
    // failing.
    let sshd = start_sshd(&["-t", "ed25519"], &["-t", "ed25519"], "LoginGraceTime 1");
    let (target, known) = sshd.target(AlgorithmProfile::Modern);
    use nightshift::device::LoginGate;
    let gate = LoginGate::new("ops");
    let prover = LoginGate::enter(gate.pass(1), "canary", Duration::from_secs(5))
        .await
        .unwrap()
        .expect("the canary proves");
    let (login, pass) = (sshd.login(false), gate.pass(2));
    let waiting =
        tokio::spawn(async move { Session::log_in(&target, &login, &known, Some(pass)).await });
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!waiting.is_finished(), "it waits at the gate");
    prover.accepted();
    let mut s = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        s.command("show version").await.unwrap(),
        "OpenSSH interop device"
    );
    s.close().await;
}
