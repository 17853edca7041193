//! The config file: `version = 1` TOML, parsed and then validated as a
//! whole, so that every problem is reported at once with its
//! `FILE:LINE:COLUMN`, key path and a hint (see `config/nightshift.toml` for
//! every key, documented).

mod doc;
mod read;
mod selector;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use thiserror::Error;

pub use doc::{Location, Problem};
pub use read::DEFAULT_CONCURRENCY;
pub use selector::Selector;

pub use crate::jobs::acl::OnDrift;
use crate::platform::Platform;
use crate::schedule::Schedule;

/// Where the config is read from when neither `-c` nor `NIGHTSHIFT_CONFIG`
/// says otherwise.
pub const DEFAULT_PATH: &str = "/etc/nightshift/nightshift.toml";

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} has {} problem{}", .file, .problems.len(), if .problems.len() == 1 { "" } else { "s" })]
    Invalid {
        file: String,
        problems: Vec<Problem>,
    },
}

/// A validated config. Everything in it has been checked; later stages rely
/// on names resolving and values being in range.
#[derive(Debug, Clone)]
pub struct Config {
    pub source: PathBuf,
    pub daemon: DaemonSettings,
    pub ssh: SshSettings,
    pub credentials: Vec<CredentialProfile>,
    pub mail: Option<MailSettings>,
    pub devices: Vec<Device>,
    pub jobs: Vec<Job>,
    pub windows: Vec<Window>,
    /// `[jump_hosts.NAME]`: bastions devices are reached through.
    pub jump_hosts: Vec<JumpHost>,
    /// `[tags.NAME] vars = {...}`: values for the ACL templates of the
    /// devices with that tag.
    pub tag_vars: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
}

/// A bastion: devices behind it are reached over forwarded channels
/// (`direct-tcpip`) of a few SSH connections to it, as OpenSSH's
/// `ProxyJump`.
#[derive(Debug, Clone)]
pub struct JumpHost {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub auth: JumpAuth,
    /// Connect timeout, known_hosts, host-key policy and algorithms for the
    /// bastion itself (`[ssh]` with this table's overrides).
    pub ssh: SshSettings,
    /// The hop before this one, if any.
    pub via: Option<String>,
    /// Devices with any of these tags go through this jump host (unless
    /// they name one themselves).
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JumpAuth {
    /// A private key file (OpenSSH format) and the user to log in as.
    Key { username: String, file: PathBuf },
    /// The stored password of a credential profile.
    Profile(String),
}

#[derive(Debug, Clone)]
pub struct DaemonSettings {
    /// Journal, outbox, run history and known_hosts live here.
    pub state_dir: PathBuf,
    /// Default zone for windows that name none.
    pub timezone: Option<Tz>,
    /// Group (besides root) admitted to the control socket.
    pub control_group: Option<String>,
    /// The daemon's control socket.
    pub control_socket: PathBuf,
    /// Rejected logins in one run after which no new device is started.
    pub max_auth_failures: u32,
    /// How long before a window the stored credentials are proved (again
    /// at the opening itself).
    pub credential_check_lead: Duration,
    /// The keyring service name the secrets are kept under.
    pub keyring_service: String,
    /// Prometheus text-format metrics, rewritten atomically after every
    /// change that matters (node_exporter's textfile collector).
    pub metrics_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// Unknown and changed keys are refused.
    Strict,
    /// Unknown keys are learnt (and the report says so); changed keys are refused.
    AcceptNew,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlgorithmProfile {
    /// russh's defaults.
    Modern,
    /// Adds SHA-1 key exchange, ssh-rsa, CBC ciphers and hmac-sha1 for old IOS.
    Legacy,
}

/// SSH settings: the `[ssh]` defaults, or a device's view after its overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSettings {
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub known_hosts: PathBuf,
    pub host_key_policy: HostKeyPolicy,
    pub algorithms: AlgorithmProfile,
}

#[derive(Debug, Clone)]
pub struct CredentialProfile {
    pub name: String,
    /// Asked for by `credentials set` when absent.
    pub username: Option<String>,
    /// The one device a login is tried on before any other.
    pub canary: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailTls {
    StartTls,
    Tls,
    None,
}

#[derive(Debug, Clone)]
pub struct MailSettings {
    pub relay: String,
    pub port: u16,
    pub tls: MailTls,
    pub from: String,
    pub to: Vec<String>,
    /// SMTP AUTH user; its password lives in the keyring.
    pub username: Option<String>,
    pub timeout: Duration,
    pub ca_file: Option<PathBuf>,
    /// The largest mail the relay takes, in bytes (`max_size_kb`): a
    /// report that would be bigger leaves its attachments in the run
    /// history and says where.
    pub max_size: usize,
}

/// `max_size_kb`'s default, 10 MB: Postfix's `message_size_limit`
/// (10,240,000 bytes) rounded down; Exchange's default is about the same.
pub const DEFAULT_MAIL_MAX_SIZE: usize = 10_000_000;

#[derive(Debug, Clone)]
pub struct Device {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub platform: Platform,
    pub credentials: String,
    pub tier: u32,
    pub tags: Vec<String>,
    /// `[ssh]` with this device's overrides applied.
    pub ssh: SshSettings,
    /// The jump host it is reached through (device, tag or `[ssh]`), or
    /// none: directly.
    pub jump: Option<String>,
    /// Its own values for ACL templates (`vars = {...}`).
    pub vars: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct PotsLine {
    pub branch: String,
    pub dialer: String,
    pub line: u32,
    pub number: String,
    /// Regex for the remote prompt that proves the call reached the branch.
    pub expect: String,
    pub timeout: Duration,
    pub retries: u32,
    pub retry_pause: Duration,
}

#[derive(Debug, Clone)]
pub enum JobKind {
    Acl {
        acl_name: String,
        /// Extended (the default), standard or IPv6; a number as the name
        /// is an IOS numbered ACL of the family its range says.
        family: crate::jobs::acl::Family,
        /// The engineer's lines as pasted, blank lines dropped (a
        /// template's lines as written).
        acl_lines: Vec<String>,
        /// A template's lines as rendered for each target device (by
        /// device index); empty when `acl_lines` is no template.
        per_device: std::collections::BTreeMap<usize, Vec<String>>,
        /// Save the running config after a verified change.
        save: bool,
        /// Arm the device's own undo while changing (IOS revert timer with
        /// `archive`, NX-OS checkpoint) where it is available.
        safety_net: bool,
        /// Minutes of the IOS revert timer.
        revert_minutes: u32,
        /// A device whose ACL changed since the window's plan read it.
        on_drift: OnDrift,
    },
    /// Puts back the ACL run `run` found on every device it changed.
    Rollback {
        run: String,
        /// A device whose ACL is no longer what the run left.
        on_drift: OnDrift,
    },
    Pots {
        lines: Vec<PotsLine>,
        /// Hayes guard time around `+++` when hanging up.
        guard_time: Duration,
    },
    Exec {
        commands: Vec<String>,
    },
}

impl JobKind {
    pub fn name(&self) -> &'static str {
        match self {
            JobKind::Acl { .. } => "acl",
            JobKind::Pots { .. } => "pots",
            JobKind::Exec { .. } => "exec",
            JobKind::Rollback { .. } => "rollback",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub kind: JobKind,
    pub selectors: Vec<Selector>,
    /// Devices this job touches, as indexes into `Config::devices`, in
    /// inventory order.
    pub targets: Vec<usize>,
    pub concurrency: usize,
    /// At most this many devices at once among those a selector picks.
    pub caps: Vec<(Selector, usize)>,
    /// More failures than this in a tier hold the later tiers.
    pub max_failures: Option<MaxFailures>,
    /// Time one device may take: none starts unless this much of the
    /// window is left.
    pub budget: Duration,
}

/// A failure brake: a count, or a share of the tier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxFailures {
    Count(usize),
    Percent(f64),
}

impl MaxFailures {
    /// Whether `failed` of `total` is more than allowed.
    pub fn exceeded(self, failed: usize, total: usize) -> bool {
        match self {
            MaxFailures::Count(n) => failed > n,
            MaxFailures::Percent(p) => total > 0 && failed as f64 * 100.0 / total as f64 > p,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Window {
    pub name: String,
    pub schedule: Schedule,
    pub duration: Duration,
    /// How late after its opening a window may still start (misfire policy).
    pub latest_start: Duration,
    /// How long before each opening the daemon mails the change plan
    /// (every job read-only); none: no plan.
    pub plan_lead: Option<Duration>,
    pub jobs: Vec<String>,
}

impl Window {
    pub fn zone(&self) -> Tz {
        self.schedule.zone()
    }
}

impl Config {
    /// Reads and validates a config file. `now` anchors the "does this
    /// schedule ever fire" check.
    pub fn load(path: &Path, now: DateTime<Utc>) -> Result<Config, ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_bytes(path, &bytes, now)
    }

    /// Validates the bytes of a config file read from `path`. Text that is
    /// not UTF-8 is a problem at the line and column of its first bad byte.
    pub fn from_bytes(
        path: &Path,
        bytes: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let src = std::str::from_utf8(bytes).map_err(|e| ConfigError::Invalid {
            file: file.clone(),
            problems: vec![doc::not_utf8(&file, bytes, e.valid_up_to())],
        })?;
        Config::parse(&file, src, now).map(|mut c| {
            c.source = path.to_path_buf();
            c
        })
    }

    /// Validates config text; `file` is the name used in messages.
    pub fn parse(file: &str, src: &str, now: DateTime<Utc>) -> Result<Config, ConfigError> {
        read::read(file, src, now).map_err(|problems| ConfigError::Invalid {
            file: file.to_string(),
            problems,
        })
    }

    pub fn device(&self, name: &str) -> Option<&Device> {
        self.devices.iter().find(|d| d.name == name)
    }

    pub fn job(&self, name: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.name == name)
    }

    /// A job of a run: a configured job, or one part of a configured
    /// rollback job (`NAME:JOB`, one per ACL job of the run it rolls back).
    pub fn job_of_run(&self, name: &str) -> Option<&Job> {
        self.job(name).or_else(|| {
            let (base, _) = name.rsplit_once(':')?;
            self.job(base)
                .filter(|j| matches!(j.kind, JobKind::Rollback { .. }))
        })
    }

    /// The devices these jobs work on, in inventory order, each once.
    pub fn targets_of(&self, jobs: &[String]) -> Vec<usize> {
        let mut targets: Vec<usize> = jobs
            .iter()
            .filter_map(|j| self.job(j))
            .flat_map(|j| j.targets.iter().copied())
            .collect();
        targets.sort_unstable();
        targets.dedup();
        targets
    }

    pub fn jump_host(&self, name: &str) -> Option<&JumpHost> {
        self.jump_hosts.iter().find(|j| j.name == name)
    }

    pub fn window(&self, name: &str) -> Option<&Window> {
        self.windows.iter().find(|w| w.name == name)
    }

    /// Indexes of the devices that `selectors` pick, in inventory order.
    pub fn select(&self, selectors: &[Selector]) -> Vec<usize> {
        self.devices
            .iter()
            .enumerate()
            .filter(|(_, d)| selectors.iter().any(|s| s.matches(&d.name, &d.tags)))
            .map(|(i, _)| i)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::MaxFailures;

    #[test]
    fn a_brake_trips_on_more_failures_than_it_allows() {
        assert!(!MaxFailures::Count(0).exceeded(0, 10));
        assert!(MaxFailures::Count(0).exceeded(1, 10));
        assert!(!MaxFailures::Count(2).exceeded(2, 10));
        assert!(MaxFailures::Count(2).exceeded(3, 10));
        // 1 of 10 is 10 %: not more than "10%", more than "9.5%".
        assert!(!MaxFailures::Percent(10.0).exceeded(1, 10));
        assert!(MaxFailures::Percent(9.5).exceeded(1, 10));
        assert!(MaxFailures::Percent(0.0).exceeded(1, 1000));
        assert!(!MaxFailures::Percent(0.0).exceeded(0, 0), "an empty tier");
    }
}
