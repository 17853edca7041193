//! The device lab: a simulated fleet of Cisco IOS and NX-OS devices and a
//! dialer hub with modem lines, served over real SSH on loopback only.
//!
//! Tests start it in-process ([`Lab::start`]); `nightshift lab` serves it
//! in the foreground. It keeps each device's state for its lifetime and
//! records what it observed ([`Lab::stats`]): logins, failed logins,
//! config lines, and how long any interface was bound to an absent or
//! empty ACL (`unprotected_ms`).

mod acl;
mod cli;
mod config;
mod device;
mod ios;
mod modem;
mod nxos;
mod ports;
mod server;
mod spec;
mod standard;
mod stats;
mod term;
mod vty;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use russh::keys::{PrivateKey, PublicKey};
use thiserror::Error;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use acl::AclKind;
pub use modem::{branch_number, call_result};
pub use spec::{DeviceFaults, Fault, FaultKind, LabSpec};
pub use stats::{DeviceStats, LOCK_IT_DOWN, LabStats};

use crate::platform::Platform;
use cli::{Cli, Mode};
use device::{DeviceState, Interface, RunningConfig};

/// One ACL entry as a lab device of `platform` would take it in ACL
/// configuration mode and show it back in its running config: for tests
/// that compare nightshift's reader with the lab's own, independent one.
/// `Err` carries the index of the token the device would refuse.
pub fn entry_as_shown(line: &str, platform: Platform) -> Result<String, usize> {
    entry_as_shown_of(line, platform, AclKind::Extended)
}

/// [`entry_as_shown`] for an ACL of `kind`.
pub fn entry_as_shown_of(line: &str, platform: Platform, kind: AclKind) -> Result<String, usize> {
    let dialect = match platform {
        Platform::CiscoIos => acl::Dialect::Ios,
        Platform::CiscoNxos => acl::Dialect::Nxos,
    };
    acl::parse_entry(line, dialect, kind)
        .map(|(_, entry)| acl::render(&entry, dialect))
        .map_err(|bad| bad.index)
}

#[derive(Debug, Error)]
pub enum LabError {
    #[error("the lab serves loopback addresses only (127.0.0.0/8 or ::1), not {0}")]
    NotLoopback(IpAddr),
    #[error("cannot listen on {addr} for {device}")]
    Bind {
        device: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot generate a host key for {device}: {reason}")]
    HostKey { device: String, reason: String },
    #[error("fault names unknown device \"{0}\"")]
    UnknownFaultDevice(String),
    #[error("cannot write {path}")]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One simulated device.
pub struct LabDevice {
    pub name: String,
    pub platform: Platform,
    pub addr: SocketAddr,
    pub host_key: PublicKey,
    pub tier: u32,
    pub faults: DeviceFaults,
    state: Mutex<DeviceState>,
}

impl LabDevice {
    fn lock(&self) -> MutexGuard<'_, DeviceState> {
        // A panic while holding the lock cannot leave the simulation in a
        // state worth refusing to read: take it anyway.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What all sessions share.
pub struct LabShared {
    start: Instant,
    latency: Duration,
    time_scale: f64,
    password: String,
    branches: u32,
    host: IpAddr,
    sessions: AtomicU64,
    /// Shells still working through input: a client that is gone may have
    /// sent lines the device has yet to take (they are on the link).
    shells: AtomicU64,
    max_sessions: AtomicU64,
    auth_failures: AtomicU64,
    lockout_after: Option<u64>,
    next_session: AtomicU64,
    authorized_keys: Vec<PublicKey>,
    tracker: TaskTracker,
    cancel: CancellationToken,
}

impl LabShared {
    fn new_cli(self: &Arc<Self>, dev: &Arc<LabDevice>) -> Cli {
        Cli {
            dev: dev.clone(),
            lab: self.clone(),
            id: self.next_session.fetch_add(1, Ordering::SeqCst) + 1,
            mode: match dev.platform {
                Platform::CiscoIos => Mode::User,
                Platform::CiscoNxos => Mode::Enable,
            },
            term_length: 24,
            term_width: 80,
            config_session: None,
            telnet: None,
        }
    }

    /// The device reverts by itself when its revert timer runs out.
    fn arm_revert(&self, dev: Arc<LabDevice>, deadline: Instant) {
        let cancel = self.cancel.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline.into()) => { dev.lock().fire_revert_if_due(Instant::now()); }
                _ = cancel.cancelled() => {}
            }
        });
    }

    /// `reload in N`: unsaved changes are lost when it fires.
    fn arm_reload(&self, dev: Arc<LabDevice>, at: Instant) {
        let cancel = self.cancel.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep_until(at.into()) => {
                    let mut st = dev.lock();
                    if st.reload_at == Some(at) {
                        st.reload_at = None;
                        st.revert = None;
                        st.config_sessions.clear();
                        let startup = st.startup.clone();
                        st.replace(startup);
                    }
                }
                _ = cancel.cancelled() => {}
            }
        });
    }
}

/// A running lab. Dropping it without [`Lab::shutdown`] cancels everything
/// too, but does not wait.
pub struct Lab {
    shared: Arc<LabShared>,
    devices: Vec<Arc<LabDevice>>,
    /// Ports of `refuse` devices: bound, never listening.
    _reserved: Vec<tokio::net::TcpSocket>,
}

enum Endpoint {
    Listening(TcpListener),
    Refusing(tokio::net::TcpSocket),
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
    }
}

/// Interfaces and the ACLs a fresh device starts with.
fn initial_config(name: &str, platform: Platform, index: usize) -> RunningConfig {
    let names: Vec<String> = match platform {
        Platform::CiscoIos => (0..4).map(|i| format!("GigabitEthernet0/{i}")).collect(),
        Platform::CiscoNxos => (1..=4).map(|i| format!("Ethernet1/{i}")).collect(),
    };
    let mut interfaces: Vec<Interface> = names.into_iter().map(Interface::new).collect();
    let dialect = match platform {
        Platform::CiscoIos => acl::Dialect::Ios,
        Platform::CiscoNxos => acl::Dialect::Nxos,
    };
    let mut acls = BTreeMap::new();
    let make = |lines: &[&str]| {
        let mut a = acl::Acl {
            statistics: platform == Platform::CiscoNxos,
            ..Default::default()
        };
        for l in lines {
            if let Ok((_, e)) = acl::parse_entry(l, dialect, acl::AclKind::Extended) {
                let seq = a.next_seq();
                a.entries.insert(seq, e);
            }
        }
        a
    };
    acls.insert(
        "MGMT_ONLY".to_string(),
        make(&[
            "permit tcp 10.0.0.0 0.0.0.255 any eq 22",
            "deny ip any any log",
        ]),
    );
    interfaces[0].description = Some("uplink".into());
    interfaces[0].access_in = Some("MGMT_ONLY".into());
    // Every tenth device has never had LOCK_IT_DOWN.
    if index % 10 != 9 {
        acls.insert(
            "LOCK_IT_DOWN".to_string(),
            make(&[
                "remark legacy rules",
                "permit tcp 10.0.0.0 0.0.0.255 any eq 22",
                "permit icmp any any echo",
                "deny ip any any",
            ]),
        );
        interfaces[1].access_in = Some("LOCK_IT_DOWN".into());
    }
    RunningConfig {
        hostname: name.to_string(),
        acls,
        acls6: BTreeMap::new(),
        interfaces,
        vty: Default::default(),
        archive_path: (platform == Platform::CiscoIos).then(|| "flash:archive".to_string()),
        object_groups: Default::default(),
    }
}

impl Lab {
    /// Starts the fleet: binds every device on the spec's loopback host.
    pub async fn start(spec: LabSpec) -> Result<Lab, LabError> {
        if !spec.host.is_loopback() {
            return Err(LabError::NotLoopback(spec.host));
        }
        let names = spec.device_names();
        for f in &spec.faults {
            if let Some(d) = &f.device
                && !names.iter().any(|(n, _, _)| n == d)
            {
                return Err(LabError::UnknownFaultDevice(d.clone()));
            }
        }
        let shared = Arc::new(LabShared {
            start: Instant::now(),
            latency: spec.latency,
            time_scale: spec.time_scale,
            password: spec.password.clone(),
            branches: spec.branches,
            host: spec.host,
            sessions: AtomicU64::new(0),
            shells: AtomicU64::new(0),
            max_sessions: AtomicU64::new(0),
            auth_failures: AtomicU64::new(0),
            lockout_after: spec.lockout_after(),
            next_session: AtomicU64::new(0),
            authorized_keys: spec.authorized_keys.clone(),
            tracker: TaskTracker::new(),
            cancel: CancellationToken::new(),
        });
        let mut rng = rand::rng();
        let mut legacy_key: Option<PrivateKey> = None;
        let mut devices = Vec::with_capacity(names.len());
        let mut reserved = Vec::new();
        for (index, (name, platform, tier)) in names.into_iter().enumerate() {
            let faults = spec.faults_for(&name);
            let key = if faults.legacy {
                match &legacy_key {
                    Some(k) => k.clone(),
                    None => {
                        let k = spec::legacy_host_key(&mut rng).map_err(|reason| {
                            LabError::HostKey {
                                device: name.clone(),
                                reason,
                            }
                        })?;
                        legacy_key = Some(k.clone());
                        k
                    }
                }
            } else {
                PrivateKey::random(&mut rng, russh::keys::Algorithm::Ed25519).map_err(|e| {
                    LabError::HostKey {
                        device: name.clone(),
                        reason: e.to_string(),
                    }
                })?
            };
            let port = spec.base_port.map_or(0, |p| p + index as u16);
            let want = SocketAddr::new(spec.host, port);
            let bind_err = |source| LabError::Bind {
                device: name.clone(),
                addr: want,
                source,
            };
            // `refuse`: a socket that is bound but never listens. Connections
            // are refused, and the port stays reserved (a closed listener's
            // port could be taken by another process meanwhile).
            let (socket, addr) = if spec.faults_for(&name).refuse {
                let sock = if want.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()
                } else {
                    tokio::net::TcpSocket::new_v6()
                }
                .map_err(bind_err)?;
                sock.bind(want).map_err(bind_err)?;
                let addr = sock.local_addr().map_err(bind_err)?;
                (Endpoint::Refusing(sock), addr)
            } else {
                let listener = TcpListener::bind(want).await.map_err(bind_err)?;
                let addr = listener.local_addr().map_err(bind_err)?;
                (Endpoint::Listening(listener), addr)
            };
            let mut state = DeviceState::new(platform, initial_config(&name, platform, index));
            for k in 1..=faults.checkpoints {
                let rc = state.running.clone();
                state.checkpoints.insert(format!("ops-checkpoint-{k}"), rc);
            }
            if name == spec::HUB {
                for l in 0..spec.dialer_lines {
                    state
                        .lines
                        .insert(spec::FIRST_LINE + l, modem::ModemLine::default());
                }
                if let Some(stuck) = spec.stuck_line()
                    && let Some(l) = state.lines.get_mut(&stuck)
                {
                    l.held_by = Some(0);
                    l.stuck = true;
                    l.epoch = 1;
                }
            }
            let dev = Arc::new(LabDevice {
                name: name.clone(),
                platform,
                addr,
                host_key: key.public_key().clone(),
                tier,
                faults,
                state: Mutex::new(state),
            });
            match socket {
                Endpoint::Refusing(sock) => reserved.push(sock),
                Endpoint::Listening(listener) => {
                    let config = Arc::new(server::server_config(&dev, key));
                    shared.tracker.spawn(server::serve(
                        dev.clone(),
                        listener,
                        config,
                        shared.clone(),
                    ));
                }
            }
            devices.push(dev);
        }
        Ok(Lab {
            shared,
            devices,
            _reserved: reserved,
        })
    }

    /// Gives `device` the extended ACL `name` with these entries (sequence
    /// numbers 10, 20, … unless a line has its own), in its running and
    /// startup config, as if an engineer had configured and saved it: the
    /// "before" of a test. Bindings stay as they are.
    pub fn seed_acl(&self, device: &str, name: &str, lines: &[&str]) -> Result<(), String> {
        self.seed_acl_of(device, AclKind::Extended, name, lines)
    }

    /// [`Lab::seed_acl`] for an ACL of any kind (IOS: numbered when the
    /// name is a number; IPv6 lines with `sequence N` on IOS).
    pub fn seed_acl_of(
        &self,
        device: &str,
        kind: AclKind,
        name: &str,
        lines: &[&str],
    ) -> Result<(), String> {
        let dev = self
            .device(device)
            .ok_or_else(|| format!("no device {device}"))?;
        let mut st = dev.lock();
        let dialect = st.dialect();
        let mut a = acl::Acl {
            kind,
            statistics: dev.platform == Platform::CiscoNxos,
            ..Default::default()
        };
        for l in lines {
            let (seq, e) = acl::parse_entry(l, dialect, kind)
                .map_err(|b| format!("{device}: \"{l}\" is not an entry (word {})", b.index))?;
            let seq = seq.unwrap_or_else(|| a.next_seq());
            a.entries.insert(seq, e);
        }
        st.mutate(|rc| rc.table(kind).insert(name.to_string(), a));
        st.startup = st.running.clone();
        Ok(())
    }

    /// Binds ACL `name` of `kind` (saved): inbound on interface number
    /// `interface` (`ip access-group` / `ipv6 traffic-filter`), or, with
    /// `None`, on the vty lines (`access-class` / `ipv6 access-class`).
    pub fn bind(
        &self,
        device: &str,
        kind: AclKind,
        name: &str,
        interface: Option<usize>,
    ) -> Result<(), String> {
        let dev = self
            .device(device)
            .ok_or_else(|| format!("no device {device}"))?;
        let mut st = dev.lock();
        let v6 = kind == AclKind::Ipv6;
        let name = Some(name.to_string());
        st.mutate(|rc| match interface {
            Some(k) => match rc.interfaces.get_mut(k) {
                Some(i) if v6 => i.filter6_in = name,
                Some(i) => i.access_in = name,
                None => {}
            },
            None if v6 => rc.vty.class6_in = name,
            None => rc.vty.class_in = name,
        });
        st.startup = st.running.clone();
        Ok(())
    }

    /// Gives `device` a network object-group called `name` (saved).
    pub fn seed_object_group(&self, device: &str, name: &str) -> Result<(), String> {
        let dev = self
            .device(device)
            .ok_or_else(|| format!("no device {device}"))?;
        let mut st = dev.lock();
        st.mutate(|rc| {
            rc.object_groups.insert(name.to_string());
        });
        st.startup = st.running.clone();
        Ok(())
    }

    /// Binds ACL `name` inbound on `device`'s second interface (as the
    /// fresh lab does with LOCK_IT_DOWN), so that the unprotected-time
    /// meter watches it.
    pub fn bind_in(&self, device: &str, name: &str) -> Result<(), String> {
        let dev = self
            .device(device)
            .ok_or_else(|| format!("no device {device}"))?;
        let mut st = dev.lock();
        st.mutate(|rc| {
            if let Some(i) = rc.interfaces.get_mut(1) {
                i.access_in = Some(name.to_string());
            }
        });
        st.startup = st.running.clone();
        Ok(())
    }

    /// The sequence numbers and entries of `device`'s ACL `name` as the
    /// device holds them (remarks included), or `None`.
    pub fn acl(&self, device: &str, name: &str) -> Option<Vec<(u32, String)>> {
        self.acl_of(device, AclKind::Extended, name)
    }

    /// [`Lab::acl`] for an ACL of any kind.
    pub fn acl_of(&self, device: &str, kind: AclKind, name: &str) -> Option<Vec<(u32, String)>> {
        let dev = self.device(device)?;
        let st = dev.lock();
        let dialect = st.dialect();
        st.running.table_of(kind).get(name).map(|a| {
            a.entries
                .iter()
                .map(|(s, e)| (*s, acl::render(e, dialect)))
                .collect()
        })
    }

    /// The user checkpoints an NX-OS device holds.
    pub fn checkpoints(&self, device: &str) -> Vec<String> {
        self.device(device)
            .map(|d| d.lock().checkpoints.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The hub's modem lines that are held by a session or stuck (held by
    /// one that is gone), in tty order: empty once every call hung up.
    pub fn held_lines(&self) -> Vec<u32> {
        self.device(spec::HUB)
            .map(|d| {
                d.lock()
                    .lines
                    .iter()
                    .filter(|(_, l)| l.held_by.is_some() || l.stuck)
                    .map(|(n, _)| *n)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Shells that have not ended yet, including those of clients that are
    /// gone but whose last input is still on its way (the link's latency).
    pub fn shells_running(&self) -> u64 {
        self.shared.shells.load(Ordering::SeqCst)
    }

    pub fn devices(&self) -> &[Arc<LabDevice>] {
        &self.devices
    }

    pub fn device(&self, name: &str) -> Option<&Arc<LabDevice>> {
        self.devices.iter().find(|d| d.name == name)
    }

    pub fn host(&self) -> IpAddr {
        self.shared.host
    }

    /// OpenSSH `known_hosts` lines for every device.
    pub fn known_hosts(&self) -> String {
        self.devices
            .iter()
            .map(|d| {
                format!(
                    "[{}]:{} {}\n",
                    d.addr.ip(),
                    d.addr.port(),
                    d.host_key.to_openssh().unwrap_or_default()
                )
            })
            .collect()
    }

    /// Stops accepting, ends every session and waits for all lab tasks.
    pub async fn shutdown(self) {
        self.shared.cancel.cancel();
        self.shared.tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.shared.tracker.wait()).await;
    }
}
