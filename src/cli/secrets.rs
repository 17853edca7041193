//! Asking for passwords: without echo on the terminal, or from standard
//! input for automation. Secrets go straight into zeroizing types.

use std::collections::HashMap;

use anyhow::{Context, bail};
use secrecy::SecretString;
use zeroize::Zeroize as _;

use crate::config::Config;
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

/// A login per credential profile used by `targets`.
pub fn logins_for(
    config: &Config,
    targets: &[usize],
    from_stdin: bool,
) -> anyhow::Result<HashMap<String, Login>> {
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
    let mut logins = HashMap::new();
    for name in profiles {
        let profile = config
            .credentials
            .iter()
            .find(|c| c.name == name)
            .context("unknown profile")?;
        let username = profile.username.clone().unwrap_or_else(login_name);
        let (password, enable_secret) = if from_stdin {
            let mut stdin = std::io::stdin().lock();
            let password = stdin_secret(&mut stdin)?
                .context("--password-stdin: standard input had no password line")?;
            let enable = stdin_secret(&mut stdin)?;
            (password, enable)
        } else {
            let password =
                rpassword::prompt_password(format!("Password for {username} (profile {name}): "))
                    .context("cannot read the password from the terminal; use --password-stdin")?;
            let mut enable = rpassword::prompt_password(format!(
                "Enable secret for profile {name} (Enter if none): "
            ))
            .context("cannot read from the terminal")?;
            let enable_secret = if enable.is_empty() {
                enable.zeroize();
                None
            } else {
                Some(SecretString::from(enable))
            };
            (SecretString::from(password), enable_secret)
        };
        logins.insert(
            name.to_string(),
            Login {
                username,
                password: Some(password),
                enable_secret,
                key: None,
            },
        );
    }
    Ok(logins)
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
