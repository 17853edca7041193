//! Talking to devices: an SSH session with an interactive PTY shell (IOS
//! allows one exec channel per connection, so commands go through a shell),
//! prompt-driven commands with per-platform data, host keys checked against
//! known_hosts, legacy algorithms on request, and every wait bounded.

mod ansi;
mod connect;
pub mod gate;
pub mod jump;
pub mod known_hosts;
pub mod platform;
mod session;
mod transcript;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::PrivateKey;
use secrecy::SecretString;
use serde::Serialize;
use thiserror::Error;

#[cfg(test)]
pub(crate) use ansi::plain;
pub use connect::{legacy_algorithms, legacy_gex, modern_algorithms};
pub use gate::{GatePass, GateTicket, LoginGate, Proof};
pub use known_hosts::{KnownHosts, KnownHostsError, Verdict};
pub use session::{Session, display_addr as session_addr};

use crate::config::{Device, SshSettings};
use crate::platform::Platform;

/// Where in a device's session something went wrong or ran out of time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    Connect,
    Handshake,
    Auth,
    Prompt,
    Enable,
    Command,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Connect => "connect",
            Stage::Handshake => "SSH handshake",
            Stage::Auth => "authentication",
            Stage::Prompt => "waiting for the prompt",
            Stage::Enable => "enable",
            Stage::Command => "command",
        })
    }
}

#[derive(Debug, Error)]
pub enum DeviceError {
    #[error("{device}: cannot connect to {addr}: {reason}")]
    Unreachable {
        device: String,
        addr: String,
        reason: String,
    },
    #[error("{device}: timed out after {} during {stage}{}", humantime::format_duration(*.after), .command.as_ref().map(|c| format!(" (`{c}`)")).unwrap_or_default())]
    Timeout {
        device: String,
        stage: Stage,
        after: Duration,
        command: Option<String>,
    },
    #[error("{device}: SSH handshake failed: {reason}")]
    Handshake {
        device: String,
        reason: String,
        legacy_hint: bool,
    },
    #[error("{device}: unknown host key {fingerprint}, not in {known_hosts}")]
    HostKeyUnknown {
        device: String,
        fingerprint: String,
        known_hosts: PathBuf,
    },
    #[error(
        "{device}: HOST KEY CHANGED to {fingerprint} (known_hosts {known_hosts} line {line}); the device may be impersonated"
    )]
    HostKeyChanged {
        device: String,
        fingerprint: String,
        known_hosts: PathBuf,
        line: usize,
    },
    #[error("{device}: cannot record its host key")]
    HostKeyRecord {
        device: String,
        #[source]
        source: known_hosts::KnownHostsError,
    },
    #[error("{device}: login rejected for user {username}")]
    AuthRejected { device: String, username: String },
    #[error("{device}: no usable login method (the device offers: {offered})")]
    AuthUnsupported { device: String, offered: String },
    #[error("{device}: enable failed: {message}")]
    EnableFailed {
        device: String,
        message: String,
        /// The device refused the enable secret (a credential, counted by
        /// AAA like a failed login), as opposed to having none to offer.
        refused: bool,
        /// The device landed in user EXEC (`>`) and there is no enable
        /// secret to leave it with: nothing was tried.
        needed: bool,
    },
    #[error("{device}: `{command}` was refused: {message}")]
    CommandRejected {
        device: String,
        command: String,
        indicator: String,
        message: String,
    },
    #[error("{device}: the device asked \"{question}\" after `{command}`")]
    UnexpectedQuestion {
        device: String,
        command: String,
        question: String,
    },
    #[error("{device}: not logged in: {reason}")]
    CredentialsWithheld { device: String, reason: String },
    #[error("{device}: session closed during {stage}")]
    Closed { device: String, stage: Stage },
    #[error("{device}: through jump host {jump}: {reason}")]
    Jump {
        device: String,
        jump: String,
        reason: String,
    },
    #[error("{device}: SSH error during {stage}: {reason}")]
    Ssh {
        device: String,
        stage: Stage,
        reason: String,
    },
}

impl DeviceError {
    /// A stage of connecting that did not finish within `after`.
    pub(crate) fn timeout(device: &str, stage: Stage, after: Duration) -> DeviceError {
        DeviceError::Timeout {
            device: device.into(),
            stage,
            after,
            command: None,
        }
    }

    /// How to fix it, when nightshift knows.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            DeviceError::Unreachable { .. } => "check the address and port, and that SSH is enabled on the device (`ip ssh version 2`, `transport input ssh`)".into(),
            DeviceError::Timeout { stage: Stage::Connect | Stage::Handshake, .. } => "the device did not answer in time: check reachability, or raise connect_timeout for it".into(),
            DeviceError::Timeout { stage: Stage::Prompt, .. } => "logged in but no prompt came: check the device's exec/vty settings, or raise command_timeout".into(),
            DeviceError::Timeout { .. } => "the command did not finish in time: raise command_timeout for this device".into(),
            DeviceError::Handshake { legacy_hint: true, .. } => "this device speaks only old SSH algorithms: set algorithms = \"legacy\" for it".into(),
            DeviceError::Handshake { .. } => return None,
            DeviceError::HostKeyUnknown { .. } => "verify the key out of band and add it to known_hosts, or set host_key_policy = \"accept-new\" for a first contact".into(),
            DeviceError::HostKeyChanged { .. } => "do not proceed until you know why the key changed (RMA, re-keyed device, or an attack); then replace its line in known_hosts".into(),
            DeviceError::HostKeyRecord { .. } => "make the known_hosts file and its folder writable for nightshift".into(),
            DeviceError::AuthRejected { .. } => "the password or key was refused; fix it with `nightshift credentials set` before the account locks".into(),
            DeviceError::AuthUnsupported { .. } => "enable password or keyboard-interactive login on the device, or configure a key".into(),
            DeviceError::EnableFailed { refused: true, .. } => "the enable secret was refused; fix it with `nightshift credentials set` before the account locks".into(),
            DeviceError::EnableFailed { needed: true, .. } => "store the profile's enable secret with `nightshift credentials set` (the second line with --password-stdin); nothing was sent to this device".into(),
            DeviceError::EnableFailed { .. } => "check the enable secret stored for this profile".into(),
            // Not a refusal: what the device shows back differs from what
            // was sent (verification, a listing that does not line up).
            DeviceError::CommandRejected { indicator, .. } if indicator == "mismatch" => "the device shows something other than what nightshift sent: compare the report's entries with the device (someone may have changed the ACL at the same time), then run again".into(),
            DeviceError::CommandRejected { .. } => "the device does not accept this command as written".into(),
            DeviceError::UnexpectedQuestion { .. } => "the command asks for confirmation; nightshift answers only questions it expects".into(),
            DeviceError::CredentialsWithheld { .. } => return None,
            DeviceError::Closed { .. } => "the device or the network dropped the session".into(),
            DeviceError::Jump { jump, .. } => format!("the device was not reached: fix the jump host {jump} (its address, host key, login, or forwarding) and run again; nothing was sent to the device"),
            DeviceError::Ssh { .. } => return None,
        })
    }

    /// The device refused a credential: the login, or the enable secret
    /// (which AAA counts towards a lockout just the same). What the lockout
    /// brake counts.
    pub fn is_auth_rejected(&self) -> bool {
        matches!(
            self,
            DeviceError::AuthRejected { .. } | DeviceError::EnableFailed { refused: true, .. }
        )
    }
}

/// The algorithms a session negotiated, recorded with each device's result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Negotiated {
    pub kex: String,
    pub host_key: String,
    pub cipher: String,
    pub mac: String,
}

/// A user key for public-key login.
#[derive(Clone)]
pub struct UserKey {
    pub key: Arc<PrivateKey>,
    /// Sign RSA with SHA-1 (`ssh-rsa`), for old IOS that knows nothing newer.
    pub rsa_sha1: bool,
}

/// How to log in. Secrets stay in zeroizing types and never print.
#[derive(Clone)]
pub struct Login {
    pub username: String,
    pub password: Option<SecretString>,
    pub enable_secret: Option<SecretString>,
    pub key: Option<UserKey>,
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field(
                "enable_secret",
                &self.enable_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("key", &self.key.as_ref().map(|_| "<key>"))
            .finish()
    }
}

/// Everything needed to (re)connect to one device: a change that loses its
/// session opens a new one to restore what it touched.
#[derive(Clone)]
pub struct DeviceLink {
    pub target: Target,
    pub login: Login,
    pub known: Arc<KnownHosts>,
    /// The run's login gate for this device's credential profile, for its
    /// first login in a job (see [`LoginGate`]).
    pub gate: Option<Arc<GateTicket>>,
    /// Told of each step the device's job reaches; the job goes on only
    /// once it returns (the run journal writes it durably).
    pub on_step: Option<StepSink>,
    /// Asked just before a change to the device begins: `Some(why)` when it
    /// must not begin any more (the window has closed, the run was
    /// stopped). The device is then left as it was found.
    pub may_change: Option<ChangeGuard>,
}

/// See [`DeviceLink::may_change`].
pub type ChangeGuard = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// See [`DeviceLink::on_step`]: the steps reached and, at most once, what
/// the job found on the device before its first change.
pub type StepSink = Arc<
    dyn Fn(
            &[&'static str],
            Option<serde_json::Value>,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        + Send
        + Sync,
>;

impl DeviceLink {
    /// Opens a session. The first open of a job goes through the run's
    /// login gate; a later one (a reconnect to restore what a lost session
    /// touched) does not: this device has accepted the credentials.
    pub async fn open(&self) -> Result<Session, DeviceError> {
        let pass = self.gate.as_ref().and_then(|t| t.take());
        let mut session = Session::log_in(&self.target, &self.login, &self.known, pass).await?;
        session.defer_set_up();
        Ok(session)
    }
}

/// The device to connect to, with its effective SSH settings.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub platform: Platform,
    pub ssh: SshSettings,
    /// Where to write a transcript of the session (secrets masked).
    pub transcript: Option<PathBuf>,
    /// The bastion it is reached through (the pool of this run).
    pub jump: Option<Arc<jump::JumpPool>>,
}

impl Target {
    /// The device's target, reached directly (see [`jump::Jumps`] for the
    /// jump host a device names).
    pub fn from_device(d: &Device) -> Target {
        Target {
            name: d.name.clone(),
            host: d.host.clone(),
            port: d.port,
            platform: d.platform,
            ssh: d.ssh.clone(),
            transcript: None,
            jump: None,
        }
    }
}
