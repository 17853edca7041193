//! Interop: the device session against OpenSSH's sshd (installed by the
//! test setup, started here in the foreground on 127.0.0.1), with a modern
//! config and with legacy-only ones that imitate old IOS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Waiting for a child process from plain test threads.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use nightshift::config::{AlgorithmProfile, HostKeyPolicy, SshSettings};
use nightshift::device::{DeviceError, KnownHosts, Login, Session, Target, UserKey};
use nightshift::platform::Platform;

const SSHD: &str = "/usr/sbin/sshd";

/// A stand-in CLI: prompts like a device, answers a command or two.
const FAKE_CLI: &str = r#"#!/bin/sh
printf 'sshd-cli#'
while IFS= read -r line; do
  case "$line" in
    "terminal length 0"|"terminal width 511"|"") ;;
    "show version") printf 'OpenSSH interop device\n' ;;
    exit) exit 0 ;;
    *) printf "%% Invalid input detected at '^' marker.\n" ;;
  esac
  printf 'sshd-cli#'
done
"#;

struct Sshd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path, args: &[&str]) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-N", "", "-f"])
        .arg(path)
        .args(args)
        .status()
        .expect("ssh-keygen (openssh-client) is installed by .ci/test");
    assert!(ok.success());
}

fn start_sshd(host_key: &[&str], user_key: &[&str], extra: &str) -> Sshd {
    assert!(
        Path::new(SSHD).exists(),
        "{SSHD} is missing: run `bash .ci/test`, which installs openssh-server"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(&d.join("host_key"), host_key);
    keygen(&d.join("user_key"), user_key);
    std::fs::copy(d.join("user_key.pub"), d.join("authorized_keys")).unwrap();
    std::fs::write(d.join("fakecli"), FAKE_CLI).unwrap();
    Command::new("chmod")
        .args(["0755"])
        .arg(d.join("fakecli"))
        .status()
        .unwrap();
    std::fs::create_dir_all("/run/sshd").unwrap();
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = d.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1\nPort {port}\nHostKey {dir}/host_key\nPidFile {dir}/sshd.pid\nAuthorizedKeysFile {dir}/authorized_keys\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n\
                 ForceCommand {dir}/fakecli\n{extra}\n",
                dir = d.display()
            ),
        )
        .unwrap();
        let mut child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut ready = false;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if line.contains("Server listening on 127.0.0.1") {
                ready = true;
                break;
            }
            if line.contains("Address already in use") || line.contains("Bind to port") {
                break;
            }
            assert!(
                !line.contains("bad configuration") && !line.contains("Unsupported"),
                "sshd: {line}"
            );
        }
        std::thread::spawn(move || for _ in lines {});
        if ready {
            return Sshd { child, port, dir };
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("sshd did not start");
}

impl Sshd {
    fn target(&self, algorithms: AlgorithmProfile) -> (Target, Arc<KnownHosts>) {
        let pubkey = std::fs::read_to_string(self.dir.path().join("host_key.pub")).unwrap();
        let mut f = pubkey.split_whitespace();
        let kh: PathBuf = self.dir.path().join("known_hosts");
        std::fs::write(
            &kh,
            format!(
                "[127.0.0.1]:{} {} {}\n",
                self.port,
                f.next().unwrap(),
                f.next().unwrap()
            ),
        )
        .unwrap();
        let target = Target {
            name: "sshd".into(),
            host: "127.0.0.1".into(),
            port: self.port,
            platform: Platform::CiscoIos,
            ssh: SshSettings {
                connect_timeout: Duration::from_secs(10),
                command_timeout: Duration::from_secs(10),
                known_hosts: kh.clone(),
                host_key_policy: HostKeyPolicy::Strict,
                algorithms,
            },
            transcript: None,
        };
        (target, Arc::new(KnownHosts::load(&kh).unwrap()))
    }

    fn login(&self, rsa_sha1: bool) -> Login {
        let key = russh::keys::load_secret_key(self.dir.path().join("user_key"), None).unwrap();
        Login {
            username: "root".into(),
            password: None,
            enable_secret: None,
            key: Some(UserKey {
                key: Arc::new(key),
                rsa_sha1,
            }),
        }
    }
}

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
