//! Asking for passwords: without echo on the terminal, or from standard
//! input for automation. Secrets go straight into zeroizing types.

use std::collections::HashMap;

use anyhow::{Context, bail};
use secrecy::SecretString;
use zeroize::Zeroize as _;

use crate::config::Config;
use crate::credentials::{Credentials, Store, profile_key};
use crate::device::Login;

/// Reads one line from standard input into a secret, without the newline.
fn stdin_secret(stdin: &mut impl std::io::BufRead) -> anyhow::Result<Option<SecretString>> {
    let mut line = String::new();
    if stdin
        .read_line(&mut line)
        .context("while reading standard input")?
        == 0
    {
        return Ok(None);
    }
    let len = line.trim_end_matches(['\r', '\n']).len();
    line.truncate(len);
    if line.is_empty() {
        line.zeroize();
        return Ok(None);
    }
    Ok(Some(SecretString::from(line)))
}

fn login_name() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "admin".into())
}

/// One line typed at the terminal, without echo.
fn hidden_line() -> anyhow::Result<Option<SecretString>> {
    let mut line = rpassword::read_password().context("cannot read from the terminal")?;
    if line.is_empty() {
        line.zeroize();
        return Ok(None);
    }
    Ok(Some(SecretString::from(line)))
}

/// Reads the password and, on a second line, the enable secret from
/// standard input; typed at a terminal, without echo.
pub fn stdin_credentials(username: Option<String>) -> anyhow::Result<Credentials> {
    use std::io::IsTerminal as _;
    let (password, enable_secret) = if std::io::stdin().is_terminal() {
        (hidden_line()?, hidden_line()?)
    } else {
        let mut stdin = std::io::stdin().lock();
        (stdin_secret(&mut stdin)?, stdin_secret(&mut stdin)?)
    };
    let password = password.context("--password-stdin: standard input had no password line")?;
    Ok(Credentials {
        username: username.unwrap_or_else(login_name),
        password,
        enable_secret,
    })
}

/// Asks on the terminal: the username (with its default), the password
/// and the enable secret, the secrets without echo.
pub fn prompt_credentials(profile: &str, username: Option<String>) -> anyhow::Result<Credentials> {
    let default = username.unwrap_or_else(login_name);
    eprint!("Username for profile {profile} [{default}]: ");
    let mut typed = String::new();
    std::io::stdin()
        .read_line(&mut typed)
        .context("cannot read from the terminal")?;
    let typed = typed.trim();
    let username = if typed.is_empty() {
        default
    } else {
        typed.to_string()
    };
    let password =
        rpassword::prompt_password(format!("Password for {username} (profile {profile}): "))
            .context("cannot read the password from the terminal; use --password-stdin")?;
    let mut enable = rpassword::prompt_password(format!(
        "Enable secret for profile {profile} (Enter if none): "
    ))
    .context("cannot read from the terminal")?;
    let enable_secret = if enable.is_empty() {
        enable.zeroize();
        None
    } else {
        Some(SecretString::from(enable))
    };
    Ok(Credentials {
        username,
        password: SecretString::from(password),
        enable_secret,
    })
}

/// A login per credential profile used by `targets`: from `store` when it
/// holds them (and not `from_stdin`), else asked for.
pub fn logins_for(
    config: &Config,
    targets: &[usize],
    from_stdin: bool,
    store: Option<&Store>,
) -> anyhow::Result<HashMap<String, Credentials>> {
    let mut profiles: Vec<&str> = targets
        .iter()
        .map(|&i| config.devices[i].credentials.as_str())
        .collect();
    profiles.sort_unstable();
    profiles.dedup();
    if from_stdin && profiles.len() > 1 {
        bail!(
            "the selected devices use {} credential profiles ({}); --password-stdin reads one password: select devices of one profile with --devices",
            profiles.len(),
            profiles.join(", ")
        );
    }
    let mut out = HashMap::new();
    for name in profiles {
        let profile = config
            .credentials
            .iter()
            .find(|c| c.name == name)
            .context("unknown profile")?;
        let stored = match (from_stdin, store) {
            (false, Some(store)) => match store.get(&profile_key(name)) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!(
                        "nightshift: cannot read the stored credentials of profile {name}: {e}"
                    );
                    if let Some(h) = e.hint() {
                        eprintln!("    hint: {h}");
                    }
                    None
                }
            },
            _ => None,
        };
        let creds = match stored {
            Some(c) => c,
            None if from_stdin => stdin_credentials(profile.username.clone())?,
            None => prompt_credentials(name, profile.username.clone())?,
        };
        out.insert(name.to_string(), creds);
    }
    Ok(out)
}

/// The logins for `targets`, each profile proved first with one login to
/// its canary: a run never starts on unproved credentials. `Ok(Err(code))`
/// means the problem was printed and the command should exit with `code`.
pub fn proven_logins(
    config: &Config,
    targets: &[usize],
    from_stdin: bool,
) -> anyhow::Result<Result<HashMap<String, Login>, std::process::ExitCode>> {
    let store = Store::from_env(&config.daemon.keyring_service);
    let creds = logins_for(config, targets, from_stdin, Some(&store))?;
    let runtime = super::runtime(false)?;
    let mut names: Vec<&String> = creds.keys().collect();
    names.sort();
    for name in names {
        if let Err(e) = runtime.block_on(crate::credentials::prove(config, name, &creds[name])) {
            super::credentials::print_error(&e);
            eprintln!("    no device was touched");
            let code = match e {
                crate::credentials::CredentialsError::CanaryUnreachable { .. } => {
                    super::credentials::EXIT_UNREACHABLE
                }
                _ => 1,
            };
            return Ok(Err(std::process::ExitCode::from(code)));
        }
    }
    Ok(Ok(creds.into_iter().map(|(k, c)| (k, c.login())).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret as _;

    #[test]
    fn reads_lines_without_newlines() {
        let mut input = std::io::Cursor::new("pa ss\r\nsecret\n");
        assert_eq!(
            stdin_secret(&mut input).unwrap().unwrap().expose_secret(),
            "pa ss"
        );
        assert_eq!(
            stdin_secret(&mut input).unwrap().unwrap().expose_secret(),
            "secret"
        );
        assert!(stdin_secret(&mut input).unwrap().is_none());
    }
}
