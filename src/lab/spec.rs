//! What fleet to simulate, and the faults to inject.

use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::time::Duration;

use russh::keys::{PrivateKey, PublicKey};

use crate::platform::Platform;

/// The dialer hub's name.
pub const HUB: &str = "hub-1";
/// The hub's first modem line (tty); reverse telnet port is 2000 + line.
pub const FIRST_LINE: u32 = 33;

#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// The password is always rejected.
    Auth,
    /// The enable secret is always refused (a device whose own secret
    /// differs from the profile's).
    Enable,
    /// Connections are refused.
    Refuse,
    /// Login succeeds, but no prompt ever comes.
    Hang,
    /// The connection drops after this many config lines.
    Drop(u64),
    /// This config line (counted over the device's life) is rejected.
    Reject(u64),
    /// Extra time per command.
    Slow(Duration),
    /// Only SHA-1 key exchange, ssh-rsa, CBC ciphers and hmac-sha1.
    Legacy,
    /// The account locks after this many failed logins on any device.
    Lockout(u64),
    /// This modem line starts held by a session that is gone.
    Stuck(u32),
    /// Only keyboard-interactive login is offered (as many Cisco AAA setups).
    KbdInt,
    /// The password is never answered (an AAA server that does not reply).
    SlowAuth,
    /// NX-OS: `no checkpoint` is refused ("another checkpoint/rollback
    /// operation is in progress").
    CheckpointBusy,
    /// NX-OS: the switch starts with this many user checkpoints of others
    /// (ten is its limit).
    Checkpoints(u32),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub kind: FaultKind,
    /// The device it applies to (`None` for fleet-wide `lockout`).
    pub device: Option<String>,
}

impl FromStr for Fault {
    type Err = String;

    /// `KIND:DEVICE[:ARG]`; `lockout:N` (or `lockout:*:N`) is fleet-wide.
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let kind = parts.first().copied().unwrap_or_default();
        let need = |i: usize, what: &str| -> Result<&str, String> {
            parts
                .get(i)
                .copied()
                .filter(|p| !p.is_empty())
                .ok_or_else(|| format!("fault \"{s}\": {kind} needs {what}"))
        };
        let num = |i: usize, what: &str| -> Result<u64, String> {
            need(i, what)?
                .parse()
                .map_err(|_| format!("fault \"{s}\": {what} must be a whole number"))
        };
        if kind == "lockout" {
            let n = if parts.len() == 2 {
                num(1, "a count")?
            } else {
                num(2, "a count")?
            };
            return Ok(Fault {
                kind: FaultKind::Lockout(n),
                device: None,
            });
        }
        let device = Some(need(1, "a device name")?.to_string());
        let kind = match kind {
            "auth" => FaultKind::Auth,
            "enable" => FaultKind::Enable,
            "refuse" => FaultKind::Refuse,
            "hang" => FaultKind::Hang,
            "legacy" => FaultKind::Legacy,
            "kbdint" => FaultKind::KbdInt,
            "slowauth" => FaultKind::SlowAuth,
            "checkpoint-busy" => FaultKind::CheckpointBusy,
            "checkpoints" => FaultKind::Checkpoints(num(2, "a number of checkpoints")? as u32),
            "drop" => FaultKind::Drop(num(2, "a number of config lines")?),
            "reject" => FaultKind::Reject(num(2, "a config line number")?),
            "stuck" => FaultKind::Stuck(num(2, "a line number")? as u32),
            "slow" => FaultKind::Slow(
                humantime::parse_duration(need(2, "a duration such as 2s")?)
                    .map_err(|e| format!("fault \"{s}\": {e}"))?,
            ),
            other => {
                return Err(format!(
                    "unknown fault kind \"{other}\" (known: auth, enable, refuse, hang, drop, reject, slow, legacy, kbdint, slowauth, lockout, stuck, checkpoint-busy, checkpoints)"
                ));
            }
        };
        if parts.len() > 3 {
            return Err(format!("fault \"{s}\": expected KIND:DEVICE[:ARG]"));
        }
        Ok(Fault { kind, device })
    }
}

/// The faults that apply to one device.
#[derive(Debug, Clone, Default)]
pub struct DeviceFaults {
    pub auth: bool,
    pub enable: bool,
    pub refuse: bool,
    pub hang: bool,
    pub drop: Option<u64>,
    pub reject: Option<u64>,
    pub slow: Option<Duration>,
    pub legacy: bool,
    pub kbd_only: bool,
    pub slow_auth: bool,
    pub checkpoint_busy: bool,
    pub checkpoints: u32,
}

impl DeviceFaults {
    /// No fault that stops a login (a good canary).
    pub fn is_clean(&self) -> bool {
        !(self.auth || self.enable || self.refuse || self.hang)
    }
}

#[derive(Debug, Clone)]
pub struct LabSpec {
    pub ios: usize,
    pub nxos: usize,
    pub dialer_lines: u32,
    pub branches: u32,
    /// The link's round-trip time, with ±20% jitter: input reaches the
    /// device this long after it was sent, so pipelined lines pay it once.
    pub latency: Duration,
    /// Multiplies modem, revert-timer and reload delays.
    pub time_scale: f64,
    /// Password (and enable secret) of user `admin`.
    pub password: String,
    pub host: IpAddr,
    /// Device N listens on base_port + N; `None`: ports chosen by the OS.
    pub base_port: Option<u16>,
    pub faults: Vec<Fault>,
    pub authorized_keys: Vec<PublicKey>,
}

impl Default for LabSpec {
    fn default() -> Self {
        LabSpec {
            ios: 2,
            nxos: 1,
            dialer_lines: 0,
            branches: 0,
            latency: Duration::ZERO,
            time_scale: 1.0,
            password: "lab".into(),
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            base_port: None,
            faults: Vec::new(),
            authorized_keys: Vec::new(),
        }
    }
}

fn numbered(prefix: &str, i: usize, total: usize) -> String {
    let width = total.to_string().len().max(3);
    format!("{prefix}-{i:0width$}")
}

pub fn branch_name(i: u32, total: u32) -> String {
    numbered("branch", i as usize, total as usize)
}

impl LabSpec {
    /// Every device: name, platform, tier. IOS closets are tier 1, NX-OS
    /// distribution tier 2, the hub tier 1.
    pub fn device_names(&self) -> Vec<(String, Platform, u32)> {
        let mut v: Vec<_> = (1..=self.ios)
            .map(|i| (numbered("ios", i, self.ios), Platform::CiscoIos, 1))
            .collect();
        v.extend((1..=self.nxos).map(|i| (numbered("nxos", i, self.nxos), Platform::CiscoNxos, 2)));
        if self.dialer_lines > 0 {
            v.push((HUB.to_string(), Platform::CiscoIos, 1));
        }
        v
    }

    pub fn faults_for(&self, device: &str) -> DeviceFaults {
        let mut f = DeviceFaults::default();
        for fault in self
            .faults
            .iter()
            .filter(|x| x.device.as_deref() == Some(device))
        {
            match &fault.kind {
                FaultKind::Auth => f.auth = true,
                FaultKind::Enable => f.enable = true,
                FaultKind::Refuse => f.refuse = true,
                FaultKind::Hang => f.hang = true,
                FaultKind::Drop(n) => f.drop = Some(*n),
                FaultKind::Reject(n) => f.reject = Some(*n),
                FaultKind::Slow(d) => f.slow = Some(*d),
                FaultKind::Legacy => f.legacy = true,
                FaultKind::KbdInt => f.kbd_only = true,
                FaultKind::SlowAuth => f.slow_auth = true,
                FaultKind::CheckpointBusy => f.checkpoint_busy = true,
                FaultKind::Checkpoints(n) => f.checkpoints = *n,
                FaultKind::Lockout(_) | FaultKind::Stuck(_) => {}
            }
        }
        f
    }

    pub fn lockout_after(&self) -> Option<u64> {
        self.faults.iter().find_map(|f| match f.kind {
            FaultKind::Lockout(n) => Some(n),
            _ => None,
        })
    }

    pub fn stuck_line(&self) -> Option<u32> {
        self.faults.iter().find_map(|f| match f.kind {
            FaultKind::Stuck(n) => Some(n),
            _ => None,
        })
    }
}

/// An RSA host key for legacy devices (ssh-rsa with SHA-1 signatures).
pub fn legacy_host_key(rng: &mut impl rand::CryptoRng) -> Result<PrivateKey, String> {
    use russh::keys::ssh_key::private::RsaKeypair;
    let pair = RsaKeypair::random(rng, 1024)
        .or_else(|_| RsaKeypair::random(rng, 2048))
        .map_err(|e| e.to_string())?;
    Ok(PrivateKey::from(pair))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse() {
        assert_eq!(
            "drop:ios-001:3".parse::<Fault>().unwrap(),
            Fault {
                kind: FaultKind::Drop(3),
                device: Some("ios-001".into())
            }
        );
        assert_eq!(
            "lockout:2".parse::<Fault>().unwrap().kind,
            FaultKind::Lockout(2)
        );
        assert_eq!(
            "lockout:*:2".parse::<Fault>().unwrap().kind,
            FaultKind::Lockout(2)
        );
        assert_eq!(
            "slow:nxos-001:2s".parse::<Fault>().unwrap().kind,
            FaultKind::Slow(Duration::from_secs(2))
        );
        assert!("drop:ios-001".parse::<Fault>().is_err());
        assert!("melt:ios-001".parse::<Fault>().is_err());
    }

    #[test]
    fn names_widen_with_the_fleet() {
        let spec = LabSpec {
            ios: 1200,
            nxos: 2,
            dialer_lines: 8,
            ..Default::default()
        };
        let names = spec.device_names();
        assert_eq!(names[0].0, "ios-0001");
        assert_eq!(names[1200].0, "nxos-001");
        assert_eq!(names.last().unwrap().0, "hub-1");
    }
}
