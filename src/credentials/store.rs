//! Where validated secrets live: the OS keyring (the default; see
//! `os_keyring`), or files in a credentials directory, read first: the
//! systemd encrypted credentials the unit decrypts into
//! `$CREDENTIALS_DIRECTORY`, or secrets mounted as files the way Docker and
//! Kubernetes mount them (the same layout, one file per key).

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{Credentials, CredentialsError, os_keyring};

// keyring 3 silently falls back to a mock store that keeps nothing when no
// platform store is compiled in; refuse to build where we enable none.
#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
compile_error!(
    "nightshift keeps secrets in the OS keyring, and this platform has no store enabled in Cargo.toml"
);

/// The keyring service name under which nightshift's entries live.
pub const SERVICE: &str = "nightshift";

/// The name of a credential profile's entry (`credentials.NAME`).
pub fn profile_key(profile: &str) -> String {
    format!("credentials.{profile}")
}

/// The name of the SMTP relay password's entry.
pub const MAIL_KEY: &str = "mail";

/// The variable naming a credentials directory: set by systemd for a unit
/// with `LoadCredential*=`, and by hand in a container.
pub const CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";

/// A credential store: the OS keyring (kernel keyutils on Linux,
/// Keychain, Credential Manager) under `service`, read after the files of
/// a credentials directory (`$CREDENTIALS_DIRECTORY`) when there is one.
/// Writes always go to the keyring.
#[derive(Debug, Clone)]
pub struct Store {
    service: String,
    /// Plain files named after the key; read-only, read first.
    credentials_dir: Option<PathBuf>,
}

/// The on-store form: one small JSON document per entry.
#[derive(Serialize, Deserialize)]
struct Stored {
    username: String,
    password: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    enable: Option<String>,
}

impl Drop for Stored {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        self.password.zeroize();
        self.enable.zeroize();
    }
}

impl Store {
    /// The store of this process: `$CREDENTIALS_DIRECTORY` (set by systemd
    /// when the unit loads credentials, or by hand in a container) before
    /// the keyring. The daemon and the commands read the same way.
    pub fn from_env(service: &str) -> Store {
        let dir = std::env::var_os(CREDENTIALS_DIRECTORY).filter(|d| !d.is_empty());
        Store {
            service: service.into(),
            credentials_dir: dir.map(PathBuf::from),
        }
    }

    pub fn keyring(service: &str) -> Store {
        Store {
            service: service.into(),
            credentials_dir: None,
        }
    }

    /// The keyring under `service`, after the systemd credentials in `dir`.
    pub fn with_credentials_dir(service: &str, dir: &Path) -> Store {
        Store {
            service: service.into(),
            credentials_dir: Some(dir.into()),
        }
    }

    /// Where a secret would be read from, for messages.
    pub fn describe(&self) -> String {
        let keyring = os_keyring::describe(&self.service);
        match &self.credentials_dir {
            Some(d) => format!("the credentials directory {}, then {keyring}", d.display()),
            None => keyring,
        }
    }

    /// The same keyring, without a credentials directory before it.
    pub fn without_credentials_dir(&self) -> Store {
        Store::keyring(&self.service)
    }

    /// The credentials directory read before the keyring, if any.
    pub fn credentials_dir(&self) -> Option<&Path> {
        self.credentials_dir.as_deref()
    }

    /// Checks, before anything is proved or stored, that the keyring can
    /// keep a secret and give it back; says why not and how to fix it.
    pub fn probe(&self) -> Result<(), CredentialsError> {
        os_keyring::probe(&self.service).map_err(|u| CredentialsError::KeyringUnusable {
            reason: u.reason,
            hint: u.hint,
        })
    }

    /// Whether `key` can be read without the keyring: a file for it in the
    /// credentials directory.
    pub fn has_file(&self, key: &str) -> bool {
        self.credentials_dir
            .as_ref()
            .is_some_and(|d| d.join(key).is_file())
    }

    pub fn get(&self, key: &str) -> Result<Option<Credentials>, CredentialsError> {
        if let Some(dir) = &self.credentials_dir
            && let Some(c) = dir_get(dir, key)?
        {
            return Ok(Some(c));
        }
        keyring_get(&self.service, key)
    }

    pub fn set(&self, key: &str, creds: &Credentials) -> Result<(), CredentialsError> {
        let blob = encode(creds)?;
        entry(&self.service, key)?
            .set_password(&blob)
            .map_err(|e| CredentialsError::Keyring {
                key: key.into(),
                reason: e.to_string(),
            })
    }

    /// Deletes the keyring entry; `Ok(false)` when there was none.
    pub fn delete(&self, key: &str) -> Result<bool, CredentialsError> {
        match entry(&self.service, key)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(CredentialsError::Keyring {
                key: key.into(),
                reason: e.to_string(),
            }),
        }
    }
}

/// The JSON form of credentials, for the keyring, a systemd credential or
/// the control socket. Zeroized when dropped.
pub fn encode(creds: &Credentials) -> Result<Zeroizing<String>, CredentialsError> {
    let stored = Stored {
        username: creds.username.clone(),
        password: creds.password.expose_secret().to_string(),
        enable: creds
            .enable_secret
            .as_ref()
            .map(|s| s.expose_secret().to_string()),
    };
    serde_json::to_string(&stored)
        .map(Zeroizing::new)
        .map_err(|e| CredentialsError::Corrupt(e.to_string()))
}

pub fn decode(blob: &str) -> Result<Credentials, CredentialsError> {
    let mut s: Stored = serde_json::from_str(blob.trim_end_matches(['\r', '\n']))
        // serde_json's message names no secret, only the position.
        .map_err(|e| CredentialsError::Corrupt(e.to_string()))?;
    Ok(Credentials {
        username: s.username.clone(),
        password: SecretString::from(std::mem::take(&mut s.password)),
        enable_secret: s.enable.take().map(SecretString::from),
    })
}

fn entry(service: &str, key: &str) -> Result<keyring::Entry, CredentialsError> {
    os_keyring::entry(service, key)
}

/// Writes `creds` as the file `dir/key` (mode 0600, replaced atomically):
/// a credentials directory for a container, mounted where
/// `$CREDENTIALS_DIRECTORY` points. Returns the file's path.
pub fn write_file(dir: &Path, key: &str, creds: &Credentials) -> Result<PathBuf, CredentialsError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |path: &Path, e: std::io::Error| CredentialsError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let path = dir.join(key);
    let tmp = dir.join(format!(".{key}.{}.tmp", std::process::id()));
    let blob = encode(creds)?;
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(blob.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()
        });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, &path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&path, e));
    }
    Ok(path)
}

fn keyring_get(service: &str, key: &str) -> Result<Option<Credentials>, CredentialsError> {
    match entry(service, key)?.get_password() {
        Ok(blob) => {
            let blob = Zeroizing::new(blob);
            decode(&blob).map(Some)
        }
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(CredentialsError::Keyring {
            key: key.into(),
            reason: e.to_string(),
        }),
    }
}

fn dir_get(dir: &Path, key: &str) -> Result<Option<Credentials>, CredentialsError> {
    let path = dir.join(key);
    match std::fs::read_to_string(&path) {
        Ok(blob) => decode(&Zeroizing::new(blob)).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CredentialsError::Keyring {
            key: key.into(),
            reason: format!("{}: {e}", path.display()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_systemd_credentials() {
        let c = Credentials {
            username: "netops".into(),
            password: SecretString::from("pa\"ss"),
            enable_secret: Some(SecretString::from("en")),
        };
        let blob = encode(&c).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("credentials.core"), format!("{}\n", &*blob)).unwrap();
        let back = dir_get(dir.path(), "credentials.core").unwrap().unwrap();
        assert_eq!(back.username, "netops");
        assert_eq!(back.password.expose_secret(), "pa\"ss");
        assert_eq!(back.enable_secret.unwrap().expose_secret(), "en");
        assert!(dir_get(dir.path(), "credentials.other").unwrap().is_none());
        std::fs::write(dir.path().join("bad"), "not json").unwrap();
        let err = dir_get(dir.path(), "bad").err().unwrap().to_string();
        assert!(!err.contains("not json"), "{err}");
    }
}
