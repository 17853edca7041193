//! One simulated device's state, kept for the lab's lifetime: running and
//! startup config, NX-OS sessions and checkpoints, the IOS revert timer,
//! modem lines (hub only), and what the lab observed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::acl::{Acl, Dialect};
use super::modem::ModemLine;
use crate::platform::Platform;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub description: Option<String>,
    pub access_in: Option<String>,
    pub access_out: Option<String>,
}

/// The part of the state that `write memory`, checkpoints and reverts copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningConfig {
    pub hostname: String,
    pub acls: BTreeMap<String, Acl>,
    pub interfaces: Vec<Interface>,
    /// IOS `archive` / `path ...`: required for the revert timer.
    pub archive_path: Option<String>,
    /// Network object-groups (IOS `object-group network`, NX-OS
    /// `object-group ip address`): only their names; entries that refer
    /// to one the device lacks are refused.
    pub object_groups: std::collections::BTreeSet<String>,
}

impl RunningConfig {
    /// An interface bound to an ACL that is absent or has no permit/deny
    /// entry filters nothing (or everything, by accident): "unprotected".
    pub fn unprotected(&self) -> bool {
        self.interfaces.iter().any(|i| {
            [&i.access_in, &i.access_out]
                .into_iter()
                .flatten()
                .any(|name| self.acls.get(name).is_none_or(|a| !a.has_ace()))
        })
    }

    pub fn interface_mut(&mut self, name: &str) -> Option<&mut Interface> {
        self.interfaces
            .iter_mut()
            .find(|i| i.name.eq_ignore_ascii_case(name))
    }
}

/// A pending `configure terminal revert timer`: the config to go back to.
#[derive(Debug, Clone)]
pub struct Revert {
    pub snapshot: RunningConfig,
    pub deadline: Instant,
}

#[derive(Debug, Default, Clone)]
pub struct Observed {
    pub logins: u64,
    pub auth_failures: u64,
    pub enable_failures: u64,
    pub first_login: Option<Instant>,
    pub last_logout: Option<Instant>,
    pub config_lines: u64,
    /// Entry lines typed in ACL configuration mode (`permit …`, `no 20`,
    /// `remark …`; not `exit`/`end`): what changing an ACL takes, as
    /// opposed to cleaning up a session (`abort`) or moving between modes.
    pub acl_lines: u64,
    /// Times the device answered everything it had been sent and then
    /// received more: the round trips a client waited for.
    pub round_trips: u64,
    pub unprotected: Duration,
    pub reverts: u64,
}

#[derive(Debug)]
pub struct DeviceState {
    pub platform: Platform,
    pub running: RunningConfig,
    pub startup: RunningConfig,
    pub observed: Observed,
    unprotected_since: Option<Instant>,
    pub revert: Option<Revert>,
    /// NX-OS `configure session NAME`: queued commands, applied on commit.
    pub config_sessions: BTreeMap<String, Vec<(super::cli::ConfigMode, String)>>,
    pub checkpoints: BTreeMap<String, RunningConfig>,
    /// Modem lines (hub only), by tty number.
    pub lines: BTreeMap<u32, ModemLine>,
    pub reload_at: Option<Instant>,
}

impl DeviceState {
    pub fn new(platform: Platform, running: RunningConfig) -> Self {
        let now = Instant::now();
        let mut s = DeviceState {
            platform,
            startup: running.clone(),
            running,
            observed: Observed::default(),
            unprotected_since: None,
            revert: None,
            config_sessions: BTreeMap::new(),
            checkpoints: BTreeMap::new(),
            lines: BTreeMap::new(),
            reload_at: None,
        };
        s.recheck(now);
        s
    }

    pub fn dialect(&self) -> Dialect {
        match self.platform {
            Platform::CiscoIos => Dialect::Ios,
            Platform::CiscoNxos => Dialect::Nxos,
        }
    }

    /// Changes the running config and accounts for any unprotected time.
    pub fn mutate<R>(&mut self, f: impl FnOnce(&mut RunningConfig) -> R) -> R {
        let r = f(&mut self.running);
        self.recheck(Instant::now());
        r
    }

    /// Replaces the whole running config (revert, rollback, reload).
    pub fn replace(&mut self, config: RunningConfig) {
        self.mutate(|rc| *rc = config);
    }

    fn recheck(&mut self, now: Instant) {
        match (self.running.unprotected(), self.unprotected_since) {
            (true, None) => self.unprotected_since = Some(now),
            (false, Some(since)) => {
                self.observed.unprotected += now - since;
                self.unprotected_since = None;
            }
            _ => {}
        }
    }

    /// Unprotected time so far, including a stretch still going on.
    pub fn unprotected_total(&self) -> Duration {
        self.observed.unprotected
            + self
                .unprotected_since
                .map_or(Duration::ZERO, |s| s.elapsed())
    }

    pub fn saved(&self) -> bool {
        self.running == self.startup
    }

    /// Fires a due revert timer: the device goes back by itself.
    pub fn fire_revert_if_due(&mut self, now: Instant) -> bool {
        match &self.revert {
            Some(r) if r.deadline <= now => {
                let snapshot = r.snapshot.clone();
                self.revert = None;
                self.replace(snapshot);
                self.observed.reverts += 1;
                true
            }
            _ => false,
        }
    }
}
