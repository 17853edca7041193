//! The daemon in-process with an injected clock, a notifier that records
//! what it tells systemd, and the lab's credentials in a keyring service of
//! the test's own: the fixture of the daemon tests.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use nightshift::clock::OffsetClock;
use nightshift::credentials::{Credentials, Store, profile_key};
use nightshift::daemon::{self, Notifier, Options};
use nightshift::lab::{Lab, LabSpec};
use secrecy::SecretString;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::PASSWORD;

/// What the daemon told systemd, in order.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<String>>);

impl Notifier for Recorder {
    fn ready(&self) {
        self.0.lock().unwrap().push("READY=1".into());
    }
    fn reloading(&self) {
        self.0.lock().unwrap().push("RELOADING=1".into());
    }
    fn stopping(&self) {
        self.0.lock().unwrap().push("STOPPING=1".into());
    }
    fn status(&self, line: &str) {
        self.0.lock().unwrap().push(format!("STATUS={line}"));
    }
}

pub struct Setup {
    pub lab: Lab,
    pub _dir: tempfile::TempDir,
    pub config: PathBuf,
    pub state: PathBuf,
    pub _key: KeyGuard,
}

/// Deletes the test's keyring entry.
pub struct KeyGuard(pub String);

impl Drop for KeyGuard {
    fn drop(&mut self) {
        let _ = Store::keyring(&self.0).delete(&profile_key("lab"));
    }
}

/// A lab, a config whose only window is `window` (TOML lines), and the
/// lab's credentials in a keyring service of the test's own.
pub async fn setup(spec: LabSpec, window: &str) -> Setup {
    let (lab, dir, config) = super::lab_with_config(spec).await;
    let (mut text, service) = super::own_keyring(&config, &dir.path().join("control.sock"));
    let at = text.find("[windows.nightly]").unwrap();
    text.truncate(at);
    text.push_str(window);
    std::fs::write(&config, text).unwrap();
    Store::keyring(&service)
        .set(
            &profile_key("lab"),
            &Credentials {
                username: "admin".into(),
                password: SecretString::from(PASSWORD),
                enable_secret: Some(SecretString::from(PASSWORD)),
            },
        )
        .unwrap();
    let state = config.with_extension("state");
    Setup {
        lab,
        _dir: dir,
        config,
        state,
        _key: KeyGuard(service),
    }
}

pub fn start(
    config: &Path,
    clock: Arc<OffsetClock>,
) -> (
    tokio::task::JoinHandle<()>,
    CancellationToken,
    Arc<Recorder>,
) {
    let shutdown = CancellationToken::new();
    let notes = Arc::new(Recorder::default());
    let task = {
        let (config, shutdown, notes) = (config.to_path_buf(), shutdown.clone(), notes.clone());
        tokio::spawn(async move {
            daemon::run(
                &config,
                Options {
                    clock,
                    notifier: notes,
                    shutdown,
                    reload: Arc::new(Notify::new()),
                },
            )
            .await
            .unwrap();
        })
    };
    (task, shutdown, notes)
}

/// Waits (at most `limit`) for the run history to hold `run_id`.
pub async fn history(state: &Path, run_id: &str, limit: Duration) -> serde_json::Value {
    let path = state.join("history").join(format!("{run_id}.json"));
    let t0 = std::time::Instant::now();
    while !path.exists() {
        assert!(
            t0.elapsed() < limit,
            "{} not written within {limit:?}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Waits until a mail whose file name contains `part` is complete in the
/// outbox (the daemon writes it under a temporary name, then renames it).
pub async fn wait_for_mail(state: &Path, part: &str, limit: Duration) {
    let outbox = state.join("outbox");
    let t0 = std::time::Instant::now();
    loop {
        let names: Vec<String> = super::file_names(&outbox);
        if names
            .iter()
            .any(|n| n.contains(part) && n.ends_with(".eml"))
        {
            return;
        }
        assert!(
            t0.elapsed() < limit,
            "no mail {part} within {limit:?}: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `[windows.NAME]` running lock-it-down, with these keys.
pub fn window(name: &str, schedule: &str, zone: &str, duration: &str) -> String {
    format!(
        "[windows.{name}]\nschedule = \"{schedule}\"\ntimezone = \"{zone}\"\nduration = \"{duration}\"\njobs = [\"lock-it-down\"]\n"
    )
}

/// Logins the lab has seen, over all its devices.
pub fn logins(lab: &Lab) -> u64 {
    lab.stats().devices.iter().map(|d| d.logins).sum()
}

pub fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}
