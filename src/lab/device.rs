//! One simulated device's state, kept for the lab's lifetime: running and
//! startup config, NX-OS sessions and checkpoints, the IOS revert timer,
//! modem lines (hub only), and what the lab observed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::acl::{Acl, AclKind, Dialect};
use super::modem::ModemLine;
use crate::platform::Platform;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub description: Option<String>,
    pub access_in: Option<String>,
    pub access_out: Option<String>,
    /// `ipv6 traffic-filter NAME in|out`.
    pub filter6_in: Option<String>,
    pub filter6_out: Option<String>,
}

impl Interface {
    /// Its ACL bindings as configuration words: (command, ACL, direction).
    pub fn bindings(&self) -> impl Iterator<Item = (&'static str, &String, &'static str)> {
        [
            ("ip access-group", &self.access_in, "in"),
            ("ip access-group", &self.access_out, "out"),
            ("ipv6 traffic-filter", &self.filter6_in, "in"),
            ("ipv6 traffic-filter", &self.filter6_out, "out"),
        ]
        .into_iter()
        .filter_map(|(word, acl, dir)| acl.as_ref().map(|a| (word, a, dir)))
    }

    pub fn new(name: String) -> Interface {
        Interface {
            name,
            description: None,
            access_in: None,
            access_out: None,
            filter6_in: None,
            filter6_out: None,
        }
    }
}

/// The vty lines' filters: `access-class NAME in`, `ipv6 access-class
/// NAME in` (on IOS under `line vty 0 4`, on NX-OS under `line vty`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vty {
    pub class_in: Option<String>,
    pub class6_in: Option<String>,
}

/// The part of the state that `write memory`, checkpoints and reverts copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningConfig {
    pub hostname: String,
    /// IPv4 ACLs, extended and standard (numbered ones under their number).
    pub acls: BTreeMap<String, Acl>,
    /// IPv6 ACLs (a namespace of their own).
    pub acls6: BTreeMap<String, Acl>,
    pub interfaces: Vec<Interface>,
    pub vty: Vty,
    /// IOS `archive` / `path ...`: required for the revert timer.
    pub archive_path: Option<String>,
    /// Network object-groups (IOS `object-group network`, NX-OS
    /// `object-group ip address`): only their names; entries that refer
    /// to one the device lacks are refused.
    pub object_groups: std::collections::BTreeSet<String>,
}

impl RunningConfig {
    /// An interface or the vty lines bound to an ACL that is absent or
    /// has no permit/deny entry filters nothing (or everything, by
    /// accident): "unprotected". IPv4 and IPv6 bindings alike.
    pub fn unprotected(&self) -> bool {
        let empty = |table: &BTreeMap<String, Acl>, name: &String| {
            table.get(name).is_none_or(|a| !a.has_ace())
        };
        let v4 = self
            .interfaces
            .iter()
            .flat_map(|i| [&i.access_in, &i.access_out])
            .chain([&self.vty.class_in])
            .flatten()
            .any(|n| empty(&self.acls, n));
        let v6 = self
            .interfaces
            .iter()
            .flat_map(|i| [&i.filter6_in, &i.filter6_out])
            .chain([&self.vty.class6_in])
            .flatten()
            .any(|n| empty(&self.acls6, n));
        v4 || v6
    }

    /// Whether the vty lines take an SSH login from `peer` to `local`:
    /// the access-class of the peer's address family decides, first match
    /// wins, and nothing matched is denied. No access-class, or one that
    /// names no ACL (or one without a rule), admits everyone, as on IOS.
    pub fn vty_admits(&self, peer: std::net::IpAddr, local: std::net::IpAddr) -> bool {
        let (class, kind) = if peer.is_ipv6() {
            (&self.vty.class6_in, AclKind::Ipv6)
        } else {
            (&self.vty.class_in, AclKind::Extended)
        };
        let table = self.table_of(kind);
        let Some(acl) = class.as_ref().and_then(|n| table.get(n)) else {
            return true;
        };
        if !acl.has_ace() {
            return true;
        }
        // In the order the device processes them (IOS: a standard ACL's
        // hosts first).
        super::standard::shown(acl)
            .into_iter()
            .find_map(|(_, e)| e.admits_ssh(peer, local))
            .unwrap_or(false)
    }

    /// The ACL table of a kind, to read.
    pub fn table_of(&self, kind: AclKind) -> &BTreeMap<String, Acl> {
        match kind {
            AclKind::Ipv6 => &self.acls6,
            _ => &self.acls,
        }
    }

    /// The ACL table of a kind: IPv4 or IPv6.
    pub fn table(&mut self, kind: AclKind) -> &mut BTreeMap<String, Acl> {
        match kind {
            AclKind::Ipv6 => &mut self.acls6,
            _ => &mut self.acls,
        }
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
    /// Logins the vty access-class turned away (the connection is closed
    /// as soon as it is accepted, as IOS and NX-OS do).
    pub vty_refused: u64,
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
