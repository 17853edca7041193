//! The OS keyring, reached the same way from every process of a user.
//!
//! On Linux the secrets go into the kernel keyring (keyutils), into the
//! user's **persistent keyring** (persistent-keyring(7)), which every
//! process of the same uid finds whatever its session keyring: a root
//! shell without one (SSH without `pam_keyinit`, cron, containers), a
//! fresh one (`keyctl session -`, systemd's `KeyringMode=private`), or a
//! `sudo` that gave it one. Each process links the persistent keyring into
//! its own *process* keyring, which makes it (and every key in it) the
//! process's own for as long as it runs; nothing depends on the session
//! keyring, which is what broke in a shell without one.
//!
//! Lifetime: memory only. A key lives as long as the persistent keyring,
//! which the kernel removes after `/proc/sys/kernel/keys/persistent_keyring_expiry`
//! seconds (three days by default) in which no process of the user opened
//! it; every read or write opens it again. Gone at reboot.
//!
//! Where the kernel has no persistent keyrings (`CONFIG_PERSISTENT_KEYRINGS`
//! off), the user keyring (`@u`) is used instead: it lives while any
//! process of the user runs.
//!
//! macOS and Windows use Keychain and Credential Manager through the
//! `keyring` crate's default store.

use std::fmt;

use super::CredentialsError;

/// A keyring that cannot keep a secret, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable {
    /// What failed, in the kernel's words.
    pub reason: String,
    pub hint: String,
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// An entry named `key` under `service`.
pub fn entry(service: &str, key: &str) -> Result<keyring::Entry, CredentialsError> {
    imp::entry(service, key)
}

/// Writes a throw-away secret, reads it back and removes it: can this
/// process keep secrets in the keyring at all? Cheap, and spends no login.
pub fn probe(service: &str) -> Result<(), Unusable> {
    imp::probe(service)
}

/// Where the secrets go, for messages.
pub fn describe(service: &str) -> String {
    imp::describe(service)
}

#[cfg(target_os = "linux")]
mod imp {
    use keyring::keyutils::KeyutilsCredential;
    use linux_keyutils::{KeyError, KeyRing, KeyRingIdentifier};

    use super::{CredentialsError, Unusable};

    /// The keyring nightshift's keys live in, linked into this process's
    /// own keyring so that they are possessed (readable) by it.
    fn home() -> Result<KeyRing, KeyError> {
        match KeyRing::get_persistent(KeyRingIdentifier::Process) {
            Err(KeyError::OperationNotSupported) => {
                // No persistent keyrings in this kernel: the user keyring.
                let user = KeyRing::from_special_id(KeyRingIdentifier::User, true)?;
                let process = KeyRing::from_special_id(KeyRingIdentifier::Process, true)?;
                process.link_keyring(user)?;
                Ok(user)
            }
            other => other,
        }
    }

    /// The description keyring 3 gives an entry: kept, so that secrets
    /// stored by earlier versions (which also linked them into the
    /// persistent keyring) are still found.
    fn description(service: &str, key: &str) -> String {
        format!("keyring-rs:{key}@{service}")
    }

    pub fn entry(service: &str, key: &str) -> Result<keyring::Entry, CredentialsError> {
        let _ = key;
        let ring = home().map_err(|e| {
            let u = unusable(&e, "open the persistent keyring");
            CredentialsError::KeyringUnusable {
                reason: u.reason,
                hint: u.hint,
            }
        })?;
        let credential = KeyutilsCredential {
            session: ring,
            persistent: None,
            description: description(service, key),
        };
        Ok(keyring::Entry::new_with_credential(Box::new(credential)))
    }

    pub fn probe(service: &str) -> Result<(), Unusable> {
        let ring = home().map_err(|e| unusable(&e, "open the persistent keyring"))?;
        let name = format!(
            "nightshift-probe:{}@{service}:{}",
            std::process::id(),
            rand::random::<u32>()
        );
        let payload = b"nightshift keyring probe";
        let key = ring
            .add_key(&name, payload)
            .map_err(|e| unusable(&e, "add a key"))?;
        let read = ring
            .search(&name)
            .and_then(|k| k.read_to_vec())
            .map_err(|e| unusable(&e, "read a key back"));
        let _ = key.invalidate();
        match read? {
            back if back == payload => Ok(()),
            _ => Err(Unusable {
                reason: "the kernel keyring returned a different secret than was stored".into(),
                hint: "report this: the keyring cannot be trusted on this machine".into(),
            }),
        }
    }

    pub fn describe(service: &str) -> String {
        format!("the kernel keyring (this user's persistent keyring, service \"{service}\")")
    }

    /// Says why the kernel refused, and what to do about it.
    fn unusable(e: &KeyError, doing: &str) -> Unusable {
        let (reason, hint) = match e {
            KeyError::PermissionDenied | KeyError::Unknown(libc_enosys::ENOSYS) => (
                format!(
                    "the kernel keyring system calls are blocked here (cannot {doing}: Operation not permitted); a container's seccomp profile does this (Docker's default, systemd-nspawn's)"
                ),
                "allow the keyring calls (systemd-nspawn --system-call-filter='add_key keyctl request_key'; Docker: a seccomp profile that allows add_key, keyctl, request_key), or keep the secrets as files: set CREDENTIALS_DIRECTORY to a folder holding credentials.NAME files (`nightshift credentials set --store files --creds-dir DIR` writes them)".to_string(),
            ),
            KeyError::QuotaExceeded => (
                format!("the user's key quota is full (cannot {doing})"),
                "remove unused keys (keyctl show @u), or raise /proc/sys/kernel/keys/maxkeys and maxbytes".to_string(),
            ),
            KeyError::AccessDenied => (
                format!("the kernel refused access (cannot {doing}: Permission denied)"),
                "run nightshift as the user whose keyring holds the secrets, or hand them to the daemon with `--store daemon`".to_string(),
            ),
            other => (
                format!("cannot {doing}: {other:?}"),
                "check that the kernel has key management (CONFIG_KEYS) and that keyctl works: `keyctl show @u`".to_string(),
            ),
        };
        Unusable { reason, hint }
    }

    /// ENOSYS: a seccomp filter may answer it instead of EPERM.
    mod libc_enosys {
        pub const ENOSYS: i32 = 38;
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::{CredentialsError, Unusable};

    pub fn entry(service: &str, key: &str) -> Result<keyring::Entry, CredentialsError> {
        keyring::Entry::new(service, key).map_err(|e| CredentialsError::Keyring {
            key: key.into(),
            reason: e.to_string(),
        })
    }

    pub fn probe(service: &str) -> Result<(), Unusable> {
        let fail = |e: keyring::Error| Unusable {
            reason: e.to_string(),
            hint: "unlock the login keychain / credential manager of this user".into(),
        };
        let e = keyring::Entry::new(service, "nightshift-probe").map_err(fail)?;
        e.set_password("probe").map_err(fail)?;
        let back = e.get_password().map_err(fail)?;
        let _ = e.delete_credential();
        if back == "probe" {
            Ok(())
        } else {
            Err(Unusable {
                reason: "the keyring returned a different secret than was stored".into(),
                hint: "report this".into(),
            })
        }
    }

    pub fn describe(service: &str) -> String {
        format!("the OS keyring (service \"{service}\")")
    }
}
