//! OpenSSH's sshd as a test peer: started in the foreground on 127.0.0.1
//! with a config of the test's own, a fake device CLI as its ForceCommand,
//! and a user key; stopped when dropped. Used by the interop tests and the
//! handshake benchmark.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Waiting for a child process from plain threads.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use nightshift::config::{AlgorithmProfile, HostKeyPolicy, SshSettings};
use nightshift::device::{KnownHosts, Login, Target, UserKey};
use nightshift::platform::Platform;

pub const SSHD: &str = "/usr/sbin/sshd";

/// A stand-in CLI: prompts like a device, answers a command or two.
/// Like a device's CLI (and unlike a Unix terminal) it echoes a line when
/// it reads it, after the prompt, not as soon as it is typed ahead.
const FAKE_CLI: &str = r#"#!/bin/sh
stty -echo 2>/dev/null
printf 'sshd-cli#'
while IFS= read -r line; do
  printf '%s\r\n' "$line"
  case "$line" in
    "terminal length 0"|"terminal width 511"|"") ;;
    "show version") printf 'OpenSSH interop device\n' ;;
    exit) exit 0 ;;
    *) printf "%% Invalid input detected at '^' marker.\n" ;;
  esac
  printf 'sshd-cli#'
done
"#;

pub struct Sshd {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// What sshd logged (`-e`), line by line.
    pub log: Arc<std::sync::Mutex<Vec<String>>>,
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

pub fn start_sshd(host_key: &[&str], user_key: &[&str], extra: &str) -> Sshd {
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
            // `extra` first: sshd keeps the first value of a keyword.
            format!(
                "{extra}\nListenAddress 127.0.0.1\nPort {port}\nHostKey {dir}/host_key\nPidFile {dir}/sshd.pid\nAuthorizedKeysFile {dir}/authorized_keys\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n\
                 ForceCommand {dir}/fakecli\n",
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
            if line.contains("Address already in use")
                || (line.contains("Bind to port") && line.contains("failed"))
            {
                break;
            }
            assert!(
                !line.contains("bad configuration") && !line.contains("Unsupported"),
                "sshd: {line}"
            );
        }
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in lines.map_while(Result::ok) {
                    log.lock().unwrap().push(line);
                }
            });
        }
        if ready {
            return Sshd {
                child,
                port,
                dir,
                log,
            };
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("sshd did not start");
}

impl Sshd {
    /// Stops sshd, keeping its folder (keys, known_hosts).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn target(&self, algorithms: AlgorithmProfile) -> (Target, Arc<KnownHosts>) {
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
            jump: None,
        };
        (target, Arc::new(KnownHosts::load(&kh).unwrap()))
    }

    pub fn login(&self, rsa_sha1: bool) -> Login {
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
