//! Credentials: proved with exactly one login to the profile's canary
//! device, then kept in the OS keyring (or systemd credentials). A
//! mistyped password costs one failed login, never one per device.

pub mod os_keyring;
pub mod store;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use secrecy::SecretString;
use thiserror::Error;

pub use store::{MAIL_KEY, SERVICE, Store, profile_key};

use crate::config::Config;
use crate::device::jump::Jumps;
use crate::device::{DeviceError, KnownHosts, Login, Negotiated, Session, Target};

/// A username and its secrets. Secrets are zeroized when dropped and never
/// printed by `Debug`.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: SecretString,
    pub enable_secret: Option<SecretString>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field(
                "enable_secret",
                &self.enable_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Credentials {
    pub fn login(&self) -> Login {
        Login {
            username: self.username.clone(),
            password: Some(self.password.clone()),
            enable_secret: self.enable_secret.clone(),
            key: None,
        }
    }
}

#[derive(Debug, Error)]
pub enum CredentialsError {
    #[error("no credential profile \"{0}\" in the config")]
    UnknownProfile(String),
    #[error("the canary {canary} of profile {profile} is not in the inventory")]
    UnknownCanary { profile: String, canary: String },
    #[error("profile {profile}: the canary {canary} REJECTED the login for user {username}")]
    Rejected {
        profile: String,
        canary: String,
        username: String,
        #[source]
        source: Box<DeviceError>,
    },
    #[error("profile {profile}: the canary {canary} could not be reached to check the credentials")]
    CanaryUnreachable {
        profile: String,
        canary: String,
        #[source]
        source: Box<DeviceError>,
    },
    #[error(
        "profile {profile}: the canary {canary} accepted the login but lands in user EXEC (`>`), and no enable secret was given: the profile cannot change devices"
    )]
    NeedsEnable { profile: String, canary: String },
    #[error("profile {profile}: no credentials stored")]
    Missing { profile: String },
    #[error("cannot load known_hosts for the canary: {0}")]
    KnownHosts(String),
    #[error("keyring entry {key}: {reason}")]
    Keyring { key: String, reason: String },
    #[error("the OS keyring cannot keep secrets here: {reason}")]
    KeyringUnusable { reason: String, hint: String },
    #[error("credentials file {}: {reason}", path.display())]
    File {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("a stored credential is not readable: {0}")]
    Corrupt(String),
}

impl CredentialsError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            CredentialsError::Rejected { profile, .. } => format!(
                "one failed login was spent; check the username and password, then run `nightshift credentials set --profile {profile}` again"
            ),
            CredentialsError::CanaryUnreachable { source, .. } => source
                .hint()
                .unwrap_or_else(|| "fix the canary's reachability; nothing was stored".into()),
            CredentialsError::NeedsEnable { profile, .. } => format!(
                "give the profile's enable secret: at the prompt of `nightshift credentials set --profile {profile}`, or as the second line of standard input with --password-stdin; no failed login was spent"
            ),
            CredentialsError::Missing { profile } => {
                format!("run `nightshift credentials set --profile {profile}`")
            }
            CredentialsError::Keyring { .. } => "check the kernel keyring with `keyctl show @u`; in a container that blocks it, keep the secrets as files under $CREDENTIALS_DIRECTORY".into(),
            CredentialsError::KeyringUnusable { hint, .. } => hint.clone(),
            CredentialsError::File { .. } => "make the folder writable (and readable) for this user".into(),
            _ => return None,
        })
    }

    /// A short name for the kind of problem, for the control socket and
    /// the status: `rejected`, `needs-enable`, `unreachable`, `missing`,
    /// `keyring`, `error`.
    pub fn kind(&self) -> &'static str {
        match self {
            CredentialsError::Rejected { .. } => "rejected",
            CredentialsError::NeedsEnable { .. } => "needs-enable",
            CredentialsError::CanaryUnreachable { .. } => "unreachable",
            CredentialsError::Missing { .. } => "missing",
            CredentialsError::Keyring { .. }
            | CredentialsError::KeyringUnusable { .. }
            | CredentialsError::File { .. } => "keyring",
            _ => "error",
        }
    }

    /// The password was refused (as opposed to "could not check").
    pub fn is_rejection(&self) -> bool {
        matches!(self, CredentialsError::Rejected { .. })
    }
}

/// The result of a successful canary login.
#[derive(Debug, Clone)]
pub struct Proof {
    pub canary: String,
    pub negotiated: Negotiated,
    pub learned_host_key: bool,
}

/// Logs in once to the profile's canary to prove `creds`. Exactly one
/// login attempt. A profile is proven only when the canary reaches
/// privileged EXEC: it lands at `#`, or `enable` with the profile's secret
/// succeeds (one attempt; a refused secret counts like a refused login).
/// A canary at `>` with no enable secret proves nothing
/// ([`CredentialsError::NeedsEnable`]) and costs no failed login.
pub async fn prove(
    config: &Config,
    profile: &str,
    creds: &Credentials,
) -> Result<Proof, CredentialsError> {
    let p = config
        .credentials
        .iter()
        .find(|c| c.name == profile)
        .ok_or_else(|| CredentialsError::UnknownProfile(profile.into()))?;
    if config.jump_host(&p.canary).is_some() {
        return prove_on_jump_host(config, profile, &p.canary, creds).await;
    }
    let device = config
        .device(&p.canary)
        .ok_or_else(|| CredentialsError::UnknownCanary {
            profile: profile.into(),
            canary: p.canary.clone(),
        })?;
    let known = KnownHosts::load(&device.ssh.known_hosts)
        .map_err(|e| CredentialsError::KnownHosts(e.to_string()))?;
    let login = creds.login();
    // Through its jump host, if it has one: a bastion that logs in with
    // this profile proves it there first (one login).
    let mut loaded = HashMap::new();
    let logins = HashMap::from([(profile.to_string(), login.clone())]);
    let jumps = Jumps::new(config, &logins, &mut loaded)
        .map_err(|e| CredentialsError::KnownHosts(e.to_string()))?;
    let target = Target {
        jump: device.jump.as_deref().and_then(|j| jumps.get(j)),
        ..Target::from_device(device)
    };
    tracing::info!(profile, canary = %device.name, "checking credentials with one login");
    // Logged in and enabled is the proof: the terminal setup the jobs
    // need would cost the canary a round trip more.
    match Session::log_in(&target, &login, &Arc::new(known), None).await {
        Err(DeviceError::EnableFailed {
            refused: false,
            needed: true,
            ..
        }) => Err(CredentialsError::NeedsEnable {
            profile: profile.into(),
            canary: device.name.clone(),
        }),
        Ok(session) => {
            let proof = Proof {
                canary: device.name.clone(),
                negotiated: session.negotiated().clone(),
                learned_host_key: session.learned_host_key(),
            };
            session.close().await;
            Ok(proof)
        }
        Err(
            e
            @ (DeviceError::AuthRejected { .. } | DeviceError::EnableFailed { refused: true, .. }),
        ) => Err(CredentialsError::Rejected {
            profile: profile.into(),
            canary: device.name.clone(),
            username: creds.username.clone(),
            source: Box::new(e),
        }),
        Err(e) => Err(CredentialsError::CanaryUnreachable {
            profile: profile.into(),
            canary: device.name.clone(),
            source: Box::new(e),
        }),
    }
}

/// A profile whose canary is a jump host: one login to that bastion (and
/// to the hops before it).
async fn prove_on_jump_host(
    config: &Config,
    profile: &str,
    jump: &str,
    creds: &Credentials,
) -> Result<Proof, CredentialsError> {
    let logins = HashMap::from([(profile.to_string(), creds.login())]);
    let jumps = Jumps::new(config, &logins, &mut HashMap::new())
        .map_err(|e| CredentialsError::KnownHosts(e.to_string()))?;
    let pool = jumps
        .get(jump)
        .ok_or_else(|| CredentialsError::UnknownCanary {
            profile: profile.into(),
            canary: jump.into(),
        })?;
    tracing::info!(profile, jump_host = %jump, "checking credentials with one login to the jump host");
    match pool.check().await {
        Ok(negotiated) => Ok(Proof {
            canary: jump.into(),
            negotiated,
            learned_host_key: false,
        }),
        Err(e @ DeviceError::AuthRejected { .. }) => Err(CredentialsError::Rejected {
            profile: profile.into(),
            canary: jump.into(),
            username: creds.username.clone(),
            source: Box::new(e),
        }),
        Err(e) => Err(CredentialsError::CanaryUnreachable {
            profile: profile.into(),
            canary: jump.into(),
            source: Box::new(e),
        }),
    }
}

/// The stored credentials of every profile used by `targets`.
pub fn logins_from_store(
    config: &Config,
    store: &Store,
    targets: &[usize],
) -> Result<HashMap<String, Login>, CredentialsError> {
    let mut out = HashMap::new();
    for &i in targets {
        let profile = &config.devices[i].credentials;
        if out.contains_key(profile) {
            continue;
        }
        let creds = store
            .get(&profile_key(profile))?
            .ok_or_else(|| CredentialsError::Missing {
                profile: profile.clone(),
            })?;
        out.insert(profile.clone(), creds.login());
    }
    // The profiles the targets' jump hosts log in with.
    for profile in jump_profiles(config, targets) {
        if out.contains_key(&profile) {
            continue;
        }
        let creds =
            store
                .get(&profile_key(&profile))?
                .ok_or_else(|| CredentialsError::Missing {
                    profile: profile.clone(),
                })?;
        out.insert(profile, creds.login());
    }
    Ok(out)
}

/// Credential profiles the jump hosts on the way to `targets` log in with.
pub fn jump_profiles(config: &Config, targets: &[usize]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for &i in targets {
        let mut next = config.devices[i].jump.as_deref();
        while let Some(j) = next.and_then(|n| config.jump_host(n)) {
            if let crate::config::JumpAuth::Profile(p) = &j.auth
                && !out.contains(p)
            {
                out.push(p.clone());
            }
            next = j.via.as_deref();
        }
    }
    out
}

/// Checks every profile used by `targets` with one canary login each,
/// reading what is stored. The first problem stops the check: a run never
/// starts on credentials that are missing or were refused.
pub async fn check_stored(
    config: &Config,
    store: &Store,
    profiles: &[String],
) -> Result<Vec<Proof>, CredentialsError> {
    let mut proofs = Vec::new();
    for profile in profiles {
        let creds = store
            .get(&profile_key(profile))?
            .ok_or_else(|| CredentialsError::Missing {
                profile: profile.clone(),
            })?;
        proofs.push(prove(config, profile, &creds).await?);
    }
    Ok(proofs)
}

/// The credential profiles used by these jobs' devices, in config order.
pub fn profiles_for_jobs(config: &Config, jobs: &[String]) -> Vec<String> {
    let mut used: Vec<String> = Vec::new();
    for j in jobs.iter().filter_map(|j| config.job(j)) {
        for &i in &j.targets {
            let p = &config.devices[i].credentials;
            if !used.contains(p) {
                used.push(p.clone());
            }
        }
    }
    let targets: Vec<usize> = jobs
        .iter()
        .filter_map(|j| config.job(j))
        .flat_map(|j| j.targets.iter().copied())
        .collect();
    for p in jump_profiles(config, &targets) {
        if !used.contains(&p) {
            used.push(p);
        }
    }
    used.sort_by_key(|p| config.credentials.iter().position(|c| &c.name == p));
    used
}

/// The SMTP relay's AUTH password, when `[mail] username` is set.
pub fn mail_password(
    config: &Config,
    store: &Store,
) -> Result<Option<SecretString>, CredentialsError> {
    let Some(mail) = &config.mail else {
        return Ok(None);
    };
    if mail.username.is_none() {
        return Ok(None);
    }
    match store.get(MAIL_KEY)? {
        Some(c) => Ok(Some(c.password)),
        None => Err(CredentialsError::Missing {
            profile: "mail".into(),
        }),
    }
}
