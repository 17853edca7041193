//! A lab with a known_hosts file, and device sessions to it: the fixture of
//! the session and login tests.

use std::sync::Arc;
use std::time::Duration;

use nightshift::config::{AlgorithmProfile, HostKeyPolicy, SshSettings};
use nightshift::device::{DeviceError, KnownHosts, Login, Session, Target};
use nightshift::lab::{Lab, LabSpec};
use secrecy::SecretString;

use super::{PASSWORD, start_lab};

pub fn login() -> Login {
    Login {
        username: "admin".into(),
        password: Some(SecretString::from(PASSWORD)),
        enable_secret: Some(SecretString::from(PASSWORD)),
        key: None,
    }
}

pub struct Fixture {
    pub lab: Lab,
    pub dir: tempfile::TempDir,
    pub known: Arc<KnownHosts>,
}

impl Fixture {
    pub async fn new(spec: LabSpec) -> Fixture {
        let lab = start_lab(spec).await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("known_hosts"), lab.known_hosts()).unwrap();
        let known = Arc::new(KnownHosts::load(&dir.path().join("known_hosts")).unwrap());
        Fixture { lab, dir, known }
    }

    pub fn target(&self, name: &str) -> Target {
        let d = self.lab.device(name).unwrap();
        Target {
            name: name.into(),
            host: d.addr.ip().to_string(),
            port: d.addr.port(),
            platform: d.platform,
            ssh: SshSettings {
                connect_timeout: Duration::from_secs(5),
                command_timeout: Duration::from_secs(5),
                known_hosts: self.dir.path().join("known_hosts"),
                host_key_policy: HostKeyPolicy::Strict,
                algorithms: AlgorithmProfile::Modern,
            },
            transcript: None,
            jump: None,
        }
    }

    pub async fn open(&self, name: &str) -> Result<Session, DeviceError> {
        Session::open(&self.target(name), &login(), &self.known).await
    }
}

pub fn faults(list: &[&str]) -> Vec<nightshift::lab::Fault> {
    list.iter().map(|f| f.parse().unwrap()).collect()
}
