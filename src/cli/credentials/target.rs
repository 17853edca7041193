//! Where credentials go (or are read from), decided before anything is
//! asked or proved: the running daemon, when it runs the same config file;
//! this user's keyring, when it can keep a secret; a credentials directory;
//! systemd credentials.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value;

use super::{Loaded, StoreChoice};
use crate::control::{self, ControlError, DEFAULT_SOCKET, Request};
use crate::credentials::Store;
use crate::credentials::store::CREDENTIALS_DIRECTORY;

/// Where `--store systemd-creds` writes by default.
const SYSTEMD_CREDS_DIR: &str = "/etc/nightshift/credentials";

pub enum Where {
    /// The running daemon, over its control socket: it proves and stores.
    Daemon(PathBuf),
    /// This process's store: the keyring, after `$CREDENTIALS_DIRECTORY`.
    Local(Store),
    /// Files in a credentials directory (written by `set`).
    Files(PathBuf),
    /// Encrypted systemd credentials in this folder (written by `set`).
    SystemdCreds(PathBuf),
}

pub struct Destination {
    pub place: Where,
    /// The credential profiles, in config order.
    pub profiles: Vec<String>,
    /// Each profile's configured username.
    pub usernames: HashMap<String, Option<String>>,
    /// The config file, for messages.
    pub source: String,
    /// The keyring service of the config.
    pub service: String,
}

impl Destination {
    /// The store to read (check) or delete from in this process: the
    /// keyring, or a credentials directory's files before it. `None` for
    /// the daemon and for systemd credentials (which only the unit can
    /// decrypt).
    pub fn local_store(&self) -> Option<Store> {
        match &self.place {
            Where::Local(s) => Some(s.clone()),
            Where::Files(dir) => Some(Store::with_credentials_dir(&self.service, dir)),
            Where::Daemon(_) | Where::SystemdCreds(_) => None,
        }
    }
}

/// Decides where to go; prints the problem and returns the exit code when
/// nowhere will do. `for_set`: probe the keyring first (before anything is
/// asked or proved).
pub async fn resolve(
    loaded: &Loaded,
    socket: Option<&Path>,
    choice: StoreChoice,
    creds_dir: Option<&Path>,
) -> Result<Destination, ExitCode> {
    resolve_for(loaded, socket, choice, creds_dir, false).await
}

pub async fn resolve_for(
    loaded: &Loaded,
    socket: Option<&Path>,
    choice: StoreChoice,
    creds_dir: Option<&Path>,
    for_set: bool,
) -> Result<Destination, ExitCode> {
    let socket: PathBuf = match (socket, loaded) {
        (Some(s), _) => s.to_path_buf(),
        (None, Loaded::Config(c)) => c.daemon.control_socket.clone(),
        (None, Loaded::Unreadable(_)) => PathBuf::from(DEFAULT_SOCKET),
    };
    let use_daemon = match choice {
        StoreChoice::Daemon => true,
        StoreChoice::Auto => socket.exists() || matches!(loaded, Loaded::Unreadable(_)),
        _ => false,
    };
    if use_daemon {
        return daemon(loaded, &socket, for_set).await;
    }
    let config = match loaded {
        Loaded::Config(c) => c,
        Loaded::Unreadable(why) => {
            eprintln!("nightshift credentials: cannot read the config: {why}");
            eprintln!(
                "    hint: as a member of [daemon] control_group, hand the credentials to the daemon (--store daemon); this store needs the config"
            );
            return Err(ExitCode::from(1));
        }
    };
    let service = &config.daemon.keyring_service;
    let place = match choice {
        StoreChoice::Files => {
            let dir = creds_dir
                .map(Path::to_path_buf)
                .or_else(|| std::env::var_os(CREDENTIALS_DIRECTORY).map(PathBuf::from));
            match dir {
                Some(d) => Where::Files(d),
                None => {
                    eprintln!(
                        "nightshift credentials: --store files needs a folder: --creds-dir DIR, or set {CREDENTIALS_DIRECTORY}"
                    );
                    return Err(ExitCode::from(super::EXIT_INVALID));
                }
            }
        }
        StoreChoice::SystemdCreds => Where::SystemdCreds(
            creds_dir.map_or_else(|| PathBuf::from(SYSTEMD_CREDS_DIR), Path::to_path_buf),
        ),
        _ => {
            let store = Store::from_env(service);
            if for_set && let Err(e) = store.probe() {
                super::print_error(&e);
                eprintln!("    nothing was asked or tried: no login was spent");
                return Err(ExitCode::from(1));
            }
            Where::Local(store)
        }
    };
    Ok(Destination {
        place,
        profiles: config.credentials.iter().map(|c| c.name.clone()).collect(),
        usernames: config
            .credentials
            .iter()
            .map(|c| (c.name.clone(), c.username.clone()))
            .collect(),
        source: config.source.display().to_string(),
        service: service.clone(),
    })
}

/// The running daemon, when it answers, runs this config and can keep a
/// secret.
async fn daemon(loaded: &Loaded, socket: &Path, for_set: bool) -> Result<Destination, ExitCode> {
    let info = match control::call(socket, &Request::Info).await {
        Ok(v) => v,
        Err(e) => {
            eprintln!("nightshift credentials: {e}");
            let hint = match e {
                ControlError::Refused { .. } => {
                    "only root, the daemon's user and members of [daemon] control_group may talk to the daemon"
                }
                _ => {
                    "is the daemon running (`systemctl status nightshift`)? Without it, keep them in your own keyring with --store keyring"
                }
            };
            eprintln!("    hint: {hint}; nothing was asked or stored");
            return Err(ExitCode::from(EXIT_NO_DAEMON));
        }
    };
    let daemon_config = info["config"].as_str().unwrap_or("?").to_string();
    if let Loaded::Config(c) = loaded {
        let mine = std::fs::canonicalize(&c.source).unwrap_or_else(|_| c.source.clone());
        if Path::new(&daemon_config) != mine {
            eprintln!(
                "nightshift credentials: the daemon at {} runs {daemon_config}, not {}: nothing was stored",
                socket.display(),
                mine.display()
            );
            eprintln!(
                "    hint: give the daemon's config with -c {daemon_config}, or keep them in your own keyring with --store keyring"
            );
            return Err(ExitCode::from(1));
        }
    }
    if for_set && info["keyring"]["usable"] != Value::Bool(true) {
        let text = |k: &str| info["keyring"][k].as_str().unwrap_or("?").to_string();
        eprintln!(
            "nightshift credentials: the daemon's keyring cannot keep secrets: {}",
            text("reason")
        );
        eprintln!(
            "    hint: {}; nothing was asked or tried: no login was spent",
            text("hint")
        );
        return Err(ExitCode::from(1));
    }
    let profiles = info["profiles"].as_array().cloned().unwrap_or_default();
    Ok(Destination {
        place: Where::Daemon(socket.to_path_buf()),
        profiles: profiles
            .iter()
            .filter_map(|p| p["name"].as_str().map(String::from))
            .collect(),
        usernames: profiles
            .iter()
            .filter_map(|p| {
                let name = p["name"].as_str()?;
                Some((name.to_string(), p["username"].as_str().map(String::from)))
            })
            .collect(),
        source: daemon_config,
        service: String::new(),
    })
}

/// Exit code when the daemon could not be reached or refused the caller.
pub const EXIT_NO_DAEMON: u8 = 3;
