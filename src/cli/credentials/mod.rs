//! `nightshift credentials set|check|delete`: collect credentials once,
//! prove them with exactly one login to the profile's canary, and keep them
//! in the OS keyring, the running daemon's keyring, files in a credentials
//! directory, or systemd credentials.
//!
//! Where they go is decided, and checked, before anything is asked or
//! proved: the keyring must keep and give back a throw-away secret, and a
//! daemon is handed credentials only when it runs the same config file.

mod set;
mod target;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::EXIT_INVALID;
use crate::clock::Clock;
use crate::config::{Config, ConfigError};
use crate::control::{self, Request};
use crate::credentials::{self, CredentialsError, Store, profile_key};
use target::{Destination, Where};

/// Exit code when the canary could not be reached (nothing was proved).
pub const EXIT_UNREACHABLE: u8 = 3;

#[derive(Debug, clap::Args)]
pub struct CredentialsArgs {
    #[command(subcommand)]
    action: Action,
    /// The daemon's control socket [default: the config's [daemon] control_socket, else /run/nightshift/control.sock]
    #[arg(long, global = true, env = "NIGHTSHIFT_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Ask for credentials, prove them with ONE login to the profile's canary, then store them
    Set(SetArgs),
    /// Prove the stored credentials with one canary login per profile
    Check(Which),
    /// Forget the stored credentials of a profile
    Delete(Which),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum StoreChoice {
    /// The running daemon when its control socket exists (and it runs this config), else this user's keyring
    Auto,
    /// Hand them to the running daemon, which proves them with one canary login and keeps them in its keyring
    Daemon,
    /// This user's OS keyring (on Linux: the kernel keyring, this user's persistent keyring)
    Keyring,
    /// A file per profile in a credentials directory (--creds-dir, else $CREDENTIALS_DIRECTORY): for containers
    Files,
    /// An encrypted systemd credential (survives reboots; see systemd/README.md)
    SystemdCreds,
}

#[derive(Debug, clap::Args)]
struct SetArgs {
    /// The credential profile ([credentials.NAME]); needed when there are several
    #[arg(long)]
    profile: Option<String>,
    /// Login name [default: the profile's username, else your login name]
    #[arg(long)]
    username: Option<String>,
    /// Read the password (and, on a second line, the enable secret) from standard input
    #[arg(long)]
    password_stdin: bool,
    /// Set the SMTP relay's AUTH password ([mail] username) instead, proved with one login to the relay
    #[arg(long, conflicts_with_all = ["profile", "username"])]
    mail: bool,
    /// Where to keep them
    #[arg(long, value_enum, default_value = "auto")]
    store: StoreChoice,
    /// With --store files: the credentials directory [default: $CREDENTIALS_DIRECTORY];
    /// with --store systemd-creds: where to write NAME.cred [default: /etc/nightshift/credentials]
    #[arg(long, value_name = "DIR")]
    creds_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct Which {
    /// The credential profile [default: all (check) / the only one (delete)]
    #[arg(long)]
    profile: Option<String>,
    /// Where they are kept
    #[arg(long, value_enum, default_value = "auto")]
    store: StoreChoice,
}

/// The config, or why there is none to work with.
enum Loaded {
    Config(Box<Config>),
    /// Not readable by this user (a member of `control_group`: the file is
    /// `0640 root:nightshift`): the daemon's own answers stand in.
    Unreadable(String),
}

pub fn credentials(
    path: &Path,
    args: &CredentialsArgs,
    clock: &dyn Clock,
) -> anyhow::Result<ExitCode> {
    let loaded = match Config::load(path, clock.now()) {
        Ok(c) => Loaded::Config(Box::new(c)),
        Err(ConfigError::Read { source, .. })
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            Loaded::Unreadable(format!("{}: {source}", path.display()))
        }
        Err(_) => {
            let _ = super::load_config(path, clock)?;
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    let runtime = super::runtime(false)?;
    runtime.block_on(async {
        match &args.action {
            Action::Set(a) => set::set(&loaded, args.socket.as_deref(), a).await,
            Action::Check(w) => check(&loaded, args.socket.as_deref(), w).await,
            Action::Delete(w) => delete(&loaded, args.socket.as_deref(), w).await,
        }
    })
}

/// The profile to work on, from the names the config (or the daemon) has.
fn pick_profile(names: &[String], asked: Option<&str>, source: &str) -> anyhow::Result<String> {
    match asked {
        Some(p) if names.iter().any(|n| n == p) => Ok(p.to_string()),
        Some(p) => anyhow::bail!(
            "no credential profile \"{p}\" in {source} (profiles: {})",
            names.join(", ")
        ),
        None if names.len() == 1 => Ok(names[0].clone()),
        None => anyhow::bail!(
            "several credential profiles ({}): name one with --profile",
            names.join(", ")
        ),
    }
}

async fn check(loaded: &Loaded, socket: Option<&Path>, w: &Which) -> anyhow::Result<ExitCode> {
    let dest = match target::resolve(loaded, socket, w.store, None).await {
        Ok(d) => d,
        Err(code) => return Ok(code),
    };
    let profiles = match &w.profile {
        Some(p) => vec![pick_profile(&dest.profiles, Some(p), &dest.source)?],
        None => dest.profiles.clone(),
    };
    let mut failed = false;
    for profile in &profiles {
        // Each problem is printed where it is known, with its hint.
        let canary = match &dest.place {
            Where::Daemon(socket) => {
                let request = Request::Check {
                    profile: profile.clone(),
                };
                match control::call(socket, &request).await {
                    Ok(v) => Some(v["canary"].as_str().unwrap_or("?").to_string()),
                    Err(e) => {
                        eprintln!("nightshift credentials: profile {profile}: {e}");
                        None
                    }
                }
            }
            _ => {
                let (Loaded::Config(config), Some(store)) = (loaded, dest.local_store()) else {
                    eprintln!(
                        "nightshift credentials: systemd credentials are decrypted by the unit only: check them through the daemon (--store daemon)"
                    );
                    return Ok(ExitCode::from(1));
                };
                match credentials::check_stored(config, &store, std::slice::from_ref(profile)).await
                {
                    Ok(p) => Some(p.first().map(|p| p.canary.clone()).unwrap_or_default()),
                    Err(e) => {
                        print_error(&e);
                        None
                    }
                }
            }
        };
        match canary {
            Some(c) => {
                eprintln!("nightshift credentials: profile {profile}: OK (one login to {c})")
            }
            None => failed = true,
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

async fn delete(loaded: &Loaded, socket: Option<&Path>, w: &Which) -> anyhow::Result<ExitCode> {
    let dest = match target::resolve(loaded, socket, w.store, None).await {
        Ok(d) => d,
        Err(code) => return Ok(code),
    };
    let profile = pick_profile(&dest.profiles, w.profile.as_deref(), &dest.source)?;
    let key = profile_key(&profile);
    let existed = match &dest.place {
        Where::Daemon(socket) => control::call(socket, &Request::Delete { key }).await?["deleted"]
            .as_bool()
            .unwrap_or(false),
        Where::SystemdCreds(dir) => {
            let path = dir.join(format!("{key}.cred"));
            match std::fs::remove_file(&path) {
                Ok(()) => true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                Err(e) => anyhow::bail!("cannot remove {}: {e}", path.display()),
            }
        }
        _ => match dest.local_store() {
            Some(store) => delete_local(&store, &key)?,
            None => false,
        },
    };
    eprintln!(
        "nightshift credentials: profile {profile}: {}",
        if existed {
            "deleted"
        } else {
            "nothing was stored"
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// Deletes from the keyring, or the file in the credentials directory.
fn delete_local(store: &Store, key: &str) -> anyhow::Result<bool> {
    if let Some(dir) = store.credentials_dir() {
        let path = dir.join(key);
        if path.exists() {
            std::fs::remove_file(&path)
                .map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", path.display()))?;
            return Ok(true);
        }
    }
    Ok(store.delete(key)?)
}

pub fn print_error(e: &CredentialsError) {
    eprintln!("nightshift credentials: {}", crate::error_chain(e));
    if let Some(h) = e.hint() {
        eprintln!("    hint: {h}");
    }
}

impl Destination {
    /// Says where the secrets went, for the last line of `set`.
    pub fn describe(&self) -> String {
        match &self.place {
            Where::Daemon(s) => format!("the daemon's keyring (via {})", s.display()),
            Where::Local(store) => store.describe(),
            Where::Files(dir) => format!("the credentials directory {}", dir.display()),
            Where::SystemdCreds(dir) => format!("systemd credentials in {}", dir.display()),
        }
    }
}
