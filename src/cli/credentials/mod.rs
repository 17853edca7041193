//! `nightshift credentials set|check|delete`: collect credentials once,
//! prove them with exactly one login to the profile's canary, and keep them
//! in the OS keyring, the running daemon's keyring, or systemd credentials.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

use super::{EXIT_INVALID, load_config, secrets};
use crate::clock::Clock;
use crate::config::Config;
use crate::control::{self, Request};
use crate::credentials::{self, Credentials, CredentialsError, Store, profile_key, store};

/// Exit code when the canary could not be reached (nothing was proved).
pub const EXIT_UNREACHABLE: u8 = 3;
/// The longest `systemd-creds encrypt` may take.
const SYSTEMD_CREDS_WAIT: std::time::Duration = std::time::Duration::from_secs(60);
/// At most this many interactive attempts: each costs one failed login.
const MAX_ATTEMPTS: u32 = 3;

#[derive(Debug, clap::Args)]
pub struct CredentialsArgs {
    #[command(subcommand)]
    action: Action,
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
    /// The running daemon when its control socket exists, else this user's keyring
    Auto,
    /// Hand them to the running daemon over its control socket
    Daemon,
    /// This user's OS keyring
    Keyring,
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
    /// With --store systemd-creds: where to write NAME.cred
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/etc/nightshift/credentials"
    )]
    creds_dir: PathBuf,
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

pub fn credentials(
    path: &Path,
    args: &CredentialsArgs,
    clock: &dyn Clock,
) -> anyhow::Result<ExitCode> {
    let Some(config) = load_config(path, clock)? else {
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let runtime = super::runtime(false)?;
    runtime.block_on(async {
        match &args.action {
            Action::Set(a) => set(&config, a).await,
            Action::Check(w) => check(&config, w).await,
            Action::Delete(w) => delete(&config, w).await,
        }
    })
}

fn pick_profile(config: &Config, asked: Option<&str>) -> anyhow::Result<String> {
    let names: Vec<&str> = config.credentials.iter().map(|c| c.name.as_str()).collect();
    match asked {
        Some(p) if names.contains(&p) => Ok(p.to_string()),
        Some(p) => bail!(
            "no credential profile \"{p}\" in {} (profiles: {})",
            config.source.display(),
            names.join(", ")
        ),
        None if names.len() == 1 => Ok(names[0].to_string()),
        None => bail!(
            "several credential profiles ({}): name one with --profile",
            names.join(", ")
        ),
    }
}

fn use_daemon(config: &Config, choice: StoreChoice) -> bool {
    match choice {
        StoreChoice::Daemon => true,
        StoreChoice::Auto => config.daemon.control_socket.exists(),
        _ => false,
    }
}

async fn set(config: &Config, a: &SetArgs) -> anyhow::Result<ExitCode> {
    if a.mail {
        return set_mail(config, a).await;
    }
    let profile = pick_profile(config, a.profile.as_deref())?;
    let default_user = a.username.clone().or_else(|| {
        config
            .credentials
            .iter()
            .find(|c| c.name == profile)
            .and_then(|c| c.username.clone())
    });
    let interactive = !a.password_stdin && std::io::stdin().is_terminal();
    if !a.password_stdin && !interactive {
        bail!(
            "standard input is not a terminal: pass --password-stdin to read the password from it"
        );
    }
    let mut attempt = 0;
    let creds = loop {
        attempt += 1;
        let creds = if a.password_stdin {
            secrets::stdin_credentials(default_user.clone())?
        } else {
            secrets::prompt_credentials(&profile, default_user.clone())?
        };
        match credentials::prove(config, &profile, &creds).await {
            Ok(proof) => {
                eprintln!(
                    "nightshift credentials: profile {profile}: login to canary {} accepted ({} / {})",
                    proof.canary, proof.negotiated.kex, proof.negotiated.host_key
                );
                break creds;
            }
            Err(e) => {
                print_error(&e);
                if !e.is_rejection() {
                    eprintln!("    nothing was stored");
                    return Ok(ExitCode::from(EXIT_UNREACHABLE));
                }
                if !interactive || attempt >= MAX_ATTEMPTS {
                    eprintln!("    nothing was stored");
                    return Ok(ExitCode::from(1));
                }
                eprintln!(
                    "    try again ({} attempt{} left; each costs one failed login)",
                    MAX_ATTEMPTS - attempt,
                    if MAX_ATTEMPTS - attempt == 1 { "" } else { "s" }
                );
            }
        }
    };
    let key = profile_key(&profile);
    let where_ = store_in(config, a.store, &a.creds_dir, &key, &creds).await?;
    eprintln!("nightshift credentials: profile {profile} stored in {where_}");
    Ok(ExitCode::SUCCESS)
}

async fn store_in(
    config: &Config,
    choice: StoreChoice,
    creds_dir: &Path,
    key: &str,
    creds: &Credentials,
) -> anyhow::Result<String> {
    Ok(match choice {
        StoreChoice::SystemdCreds => systemd_encrypt(creds_dir, key, creds).await?,
        choice if use_daemon(config, choice) => {
            let secret = store::encode(creds)?.to_string();
            control::call(
                &config.daemon.control_socket,
                &Request::Store {
                    key: key.to_string(),
                    secret,
                },
            )
            .await
            .context("while handing the credentials to the daemon (nothing was stored)")?;
            format!(
                "the daemon's keyring (via {})",
                config.daemon.control_socket.display()
            )
        }
        _ => {
            let store = Store::keyring(&config.daemon.keyring_service);
            store.set(key, creds)?;
            store.describe()
        }
    })
}

/// The relay's AUTH password: one login to the relay, then stored.
async fn set_mail(config: &Config, a: &SetArgs) -> anyhow::Result<ExitCode> {
    let Some(mail) = &config.mail else {
        bail!("no [mail] section in {}", config.source.display());
    };
    let Some(user) = mail.username.clone() else {
        bail!(
            "[mail] has no username in {}: the relay takes no AUTH, there is nothing to store",
            config.source.display()
        );
    };
    let creds = if a.password_stdin {
        secrets::stdin_credentials(Some(user))?
    } else {
        let password =
            rpassword::prompt_password(format!("SMTP password for {user} at {}: ", mail.relay))
                .context("cannot read the password from the terminal; use --password-stdin")?;
        Credentials {
            username: user,
            password: secrecy::SecretString::from(password),
            enable_secret: None,
        }
    };
    if let Err(e) = crate::report::mail::check_login(mail, &creds.password).await {
        eprintln!("nightshift credentials: mail: {e}");
        eprintln!("    nothing was stored");
        return Ok(ExitCode::from(if e.is_transient() {
            EXIT_UNREACHABLE
        } else {
            1
        }));
    }
    let where_ = store_in(config, a.store, &a.creds_dir, credentials::MAIL_KEY, &creds).await?;
    eprintln!(
        "nightshift credentials: mail: login to {}:{} accepted; stored in {where_}",
        mail.relay, mail.port
    );
    Ok(ExitCode::SUCCESS)
}

/// Encrypts the credentials with `systemd-creds`, the secret on its
/// standard input (never in arguments); at most [`SYSTEMD_CREDS_WAIT`].
async fn systemd_encrypt(dir: &Path, key: &str, creds: &Credentials) -> anyhow::Result<String> {
    use tokio::io::AsyncWriteExt as _;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let out = dir.join(format!("{key}.cred"));
    let mut child = tokio::process::Command::new("systemd-creds")
        .args(["encrypt", &format!("--name={key}"), "-"])
        .arg(&out)
        .stdin(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot run systemd-creds (systemd 250 or later is needed)")?;
    let blob = store::encode(creds)?;
    let run = async {
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(blob.as_bytes())
                .await
                .context("while writing to systemd-creds")?;
        }
        child
            .wait()
            .await
            .context("while waiting for systemd-creds")
    };
    let status = tokio::time::timeout(SYSTEMD_CREDS_WAIT, run)
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "systemd-creds did not finish within {}s (a TPM prompt?); nothing was stored",
                SYSTEMD_CREDS_WAIT.as_secs()
            )
        })??;
    if !status.success() {
        bail!("systemd-creds encrypt failed ({status}); nothing was stored");
    }
    Ok(format!(
        "{} (load it with LoadCredentialEncrypted={key}:{} in the unit)",
        out.display(),
        out.display()
    ))
}

async fn check(config: &Config, w: &Which) -> anyhow::Result<ExitCode> {
    let profiles = match &w.profile {
        Some(p) => vec![pick_profile(config, Some(p))?],
        None => config.credentials.iter().map(|c| c.name.clone()).collect(),
    };
    let mut failed = false;
    for profile in &profiles {
        // Each problem is printed where it is known, with its hint.
        let canary = if use_daemon(config, w.store) {
            let request = Request::Check {
                profile: profile.clone(),
            };
            match control::call(&config.daemon.control_socket, &request).await {
                Ok(v) => Some(v["canary"].as_str().unwrap_or("?").to_string()),
                Err(e) => {
                    eprintln!("nightshift credentials: profile {profile}: {e}");
                    None
                }
            }
        } else {
            let store = Store::keyring(&config.daemon.keyring_service);
            match credentials::check_stored(config, &store, std::slice::from_ref(profile)).await {
                Ok(p) => Some(p.first().map(|p| p.canary.clone()).unwrap_or_default()),
                Err(e) => {
                    print_error(&e);
                    None
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

async fn delete(config: &Config, w: &Which) -> anyhow::Result<ExitCode> {
    let profile = pick_profile(config, w.profile.as_deref())?;
    let key = profile_key(&profile);
    let existed = if use_daemon(config, w.store) {
        control::call(&config.daemon.control_socket, &Request::Delete { key }).await?["deleted"]
            .as_bool()
            .unwrap_or(false)
    } else {
        Store::keyring(&config.daemon.keyring_service).delete(&key)?
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

pub fn print_error(e: &CredentialsError) {
    eprintln!("nightshift credentials: {}", crate::error_chain(e));
    if let Some(h) = e.hint() {
        eprintln!("    hint: {h}");
    }
}
