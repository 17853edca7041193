//! `nightshift credentials set`: where they go is checked first, then the
//! credentials are asked for (or read), proved with one canary login — by
//! this process, or by the daemon that will keep them — and stored.

use std::io::IsTerminal as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use secrecy::SecretString;
use zeroize::Zeroize as _;

use super::target::{self, Destination, Where};
use super::{EXIT_UNREACHABLE, Loaded, SetArgs, print_error};
use crate::cli::secrets;
use crate::control::{self, ControlError, Request};
use crate::credentials::{self, Credentials, CredentialsError, Store, profile_key, store};

/// The longest `systemd-creds encrypt` may take.
const SYSTEMD_CREDS_WAIT: std::time::Duration = std::time::Duration::from_secs(60);
/// At most this many interactive attempts: each costs one failed login.
const MAX_ATTEMPTS: u32 = 3;

/// Why an attempt proved nothing, sorted by what to do next.
enum Refusal {
    /// The password (or enable secret) was refused: one failed login.
    Rejected,
    /// Logged in at `>` with no enable secret: no failed login.
    NeedsEnable,
    /// The canary could not be reached: nothing was tried.
    Unreachable,
    Other,
}

pub async fn set(loaded: &Loaded, socket: Option<&Path>, a: &SetArgs) -> anyhow::Result<ExitCode> {
    if a.mail {
        let Loaded::Config(config) = loaded else {
            bail!(
                "setting the relay's password needs the config file, which this user cannot read"
            );
        };
        return set_mail(config, socket, a).await;
    }
    let dest =
        match target::resolve_for(loaded, socket, a.store, a.creds_dir.as_deref(), true).await {
            Ok(d) => d,
            Err(code) => return Ok(code),
        };
    let profile = super::pick_profile(&dest.profiles, a.profile.as_deref(), &dest.source)?;
    let default_user = a
        .username
        .clone()
        .or_else(|| dest.usernames.get(&profile).cloned().flatten());
    let interactive = !a.password_stdin && std::io::stdin().is_terminal();
    if !a.password_stdin && !interactive {
        bail!(
            "standard input is not a terminal: pass --password-stdin to read the password from it"
        );
    }
    let mut attempt = 0;
    let mut creds = read(a.password_stdin, &profile, default_user.clone())?;
    loop {
        attempt += 1;
        let refusal = match prove(loaded, &dest, &profile, &creds).await {
            Ok(line) => {
                eprintln!("nightshift credentials: profile {profile}: {line}");
                break;
            }
            Err(r) => r,
        };
        match refusal {
            Refusal::NeedsEnable if interactive && creds.enable_secret.is_none() => {
                // Logged in, at `>`: ask for the secret the canary needs.
                creds.enable_secret = ask_enable(&profile)?;
                if creds.enable_secret.is_none() {
                    eprintln!("    nothing was stored");
                    return Ok(ExitCode::from(1));
                }
                continue;
            }
            Refusal::Rejected if interactive && attempt < MAX_ATTEMPTS => {
                eprintln!(
                    "    try again ({} attempt{} left; each costs one failed login)",
                    MAX_ATTEMPTS - attempt,
                    if MAX_ATTEMPTS - attempt == 1 { "" } else { "s" }
                );
                creds = read(false, &profile, default_user.clone())?;
            }
            Refusal::Unreachable => {
                eprintln!("    nothing was stored");
                return Ok(ExitCode::from(EXIT_UNREACHABLE));
            }
            _ => {
                eprintln!("    nothing was stored");
                return Ok(ExitCode::from(1));
            }
        }
    }
    let key = profile_key(&profile);
    let where_ = keep(&dest, &key, &creds).await?;
    eprintln!("nightshift credentials: profile {profile} stored in {where_}");
    Ok(ExitCode::SUCCESS)
}

fn read(from_stdin: bool, profile: &str, user: Option<String>) -> anyhow::Result<Credentials> {
    if from_stdin {
        secrets::stdin_credentials(user)
    } else {
        secrets::prompt_credentials(profile, user)
    }
}

fn ask_enable(profile: &str) -> anyhow::Result<Option<SecretString>> {
    let mut s = rpassword::prompt_password(format!(
        "The canary lands in user EXEC (>): enable secret for profile {profile}: "
    ))
    .context("cannot read from the terminal")?;
    if s.is_empty() {
        s.zeroize();
        return Ok(None);
    }
    Ok(Some(SecretString::from(s)))
}

/// One login to the canary: by this process, or by the daemon. `Ok` is
/// the line to print; a refusal has been printed with its hint.
async fn prove(
    loaded: &Loaded,
    dest: &Destination,
    profile: &str,
    creds: &Credentials,
) -> Result<String, Refusal> {
    match &dest.place {
        Where::Daemon(socket) => {
            let secret = store::encode(creds)
                .map_err(|_| Refusal::Other)?
                .to_string();
            let request = Request::Set {
                profile: profile.to_string(),
                secret,
            };
            match control::call(socket, &request).await {
                Ok(v) => Ok(format!(
                    "the daemon's login to canary {} accepted ({} / {})",
                    v["canary"].as_str().unwrap_or("?"),
                    v["kex"].as_str().unwrap_or("?"),
                    v["host_key"].as_str().unwrap_or("?")
                )),
                Err(ControlError::Refused {
                    message,
                    kind,
                    hint,
                }) => {
                    eprintln!("nightshift credentials: {message}");
                    if let Some(h) = hint {
                        eprintln!("    hint: {h}");
                    }
                    Err(match kind.as_deref() {
                        Some("rejected") => Refusal::Rejected,
                        Some("needs-enable") => Refusal::NeedsEnable,
                        Some("unreachable") => Refusal::Unreachable,
                        _ => Refusal::Other,
                    })
                }
                Err(e) => {
                    eprintln!("nightshift credentials: {e}");
                    Err(Refusal::Other)
                }
            }
        }
        _ => {
            let Loaded::Config(config) = loaded else {
                return Err(Refusal::Other);
            };
            match credentials::prove(config, profile, creds).await {
                Ok(proof) => Ok(format!(
                    "login to canary {} accepted ({} / {})",
                    proof.canary, proof.negotiated.kex, proof.negotiated.host_key
                )),
                Err(e) => {
                    print_error(&e);
                    Err(match e {
                        CredentialsError::Rejected { .. } => Refusal::Rejected,
                        CredentialsError::NeedsEnable { .. } => Refusal::NeedsEnable,
                        CredentialsError::CanaryUnreachable { .. } => Refusal::Unreachable,
                        _ => Refusal::Other,
                    })
                }
            }
        }
    }
}

/// Stores proved credentials; returns where, in words. (The daemon
/// stored them when it proved them.)
async fn keep(dest: &Destination, key: &str, creds: &Credentials) -> anyhow::Result<String> {
    Ok(match &dest.place {
        Where::Daemon(_) => dest.describe(),
        Where::Local(store) => {
            store.set(key, creds)?;
            keyring_only(store).describe()
        }
        Where::Files(dir) => {
            let path = store::write_file(dir, key, creds)?;
            format!(
                "{} (mode 0600; read where {} points at its folder)",
                path.display(),
                store::CREDENTIALS_DIRECTORY
            )
        }
        Where::SystemdCreds(dir) => systemd_encrypt(dir, key, creds).await?,
    })
}

/// The keyring part of a store, for saying where a write went.
fn keyring_only(store: &Store) -> Store {
    store.without_credentials_dir()
}

/// The relay's AUTH password: one login to the relay, then stored.
async fn set_mail(
    config: &crate::config::Config,
    socket: Option<&Path>,
    a: &SetArgs,
) -> anyhow::Result<ExitCode> {
    let Some(mail) = &config.mail else {
        bail!("no [mail] section in {}", config.source.display());
    };
    let Some(user) = mail.username.clone() else {
        bail!(
            "[mail] has no username in {}: the relay takes no AUTH, there is nothing to store",
            config.source.display()
        );
    };
    let loaded = Loaded::Config(Box::new(config.clone()));
    let dest =
        match target::resolve_for(&loaded, socket, a.store, a.creds_dir.as_deref(), true).await {
            Ok(d) => d,
            Err(code) => return Ok(code),
        };
    let creds = if a.password_stdin {
        secrets::stdin_credentials(Some(user))?
    } else {
        let password =
            rpassword::prompt_password(format!("SMTP password for {user} at {}: ", mail.relay))
                .context("cannot read the password from the terminal; use --password-stdin")?;
        Credentials {
            username: user,
            password: SecretString::from(password),
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
    let where_ = match &dest.place {
        Where::Daemon(socket) => {
            let secret = store::encode(&creds)?.to_string();
            let request = Request::Store {
                key: credentials::MAIL_KEY.to_string(),
                secret,
            };
            control::call(socket, &request)
                .await
                .context("while handing the password to the daemon (nothing was stored)")?;
            dest.describe()
        }
        _ => keep(&dest, credentials::MAIL_KEY, &creds).await?,
    };
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
