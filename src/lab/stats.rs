//! What the lab observed (`--stats FILE`), and the nightshift config that
//! runs against it (`--write-config FILE`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};

use super::acl::render;
use super::spec::{FIRST_LINE, HUB, branch_name};
use super::{Lab, LabError, branch_number};
use crate::platform::Platform;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabStats {
    pub max_concurrent_sessions: u64,
    pub auth_failures: u64,
    pub devices: Vec<DeviceStats>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceStats {
    pub name: String,
    pub platform: String,
    pub logins: u64,
    pub auth_failures: u64,
    /// Enable secrets refused.
    #[serde(default)]
    pub enable_failures: u64,
    /// Milliseconds after the lab started.
    pub first_login_ms: Option<u64>,
    pub last_logout_ms: Option<u64>,
    /// ACL name → entries as `show` prints them, without sequence numbers.
    pub acls: BTreeMap<String, Vec<String>>,
    pub unprotected_ms: u64,
    pub config_lines: u64,
    /// Entry lines typed in ACL configuration mode (see `Observed`).
    #[serde(default)]
    pub acl_lines: u64,
    /// Interactive round trips: bursts of input the device received after
    /// it had answered everything before them.
    #[serde(default)]
    pub round_trips: u64,
    /// Logins the vty lines' access-class turned away.
    #[serde(default)]
    pub vty_refused: u64,
    pub saved: bool,
    pub reverts: u64,
}

impl LabStats {
    pub fn device(&self, name: &str) -> Option<&DeviceStats> {
        self.devices.iter().find(|d| d.name == name)
    }
}

/// The ACL the written config pushes: the classic script's LOCK_IT_DOWN.
pub const LOCK_IT_DOWN: &[&str] = &[
    "remark managed by nightshift",
    "permit tcp 10.0.0.0 0.0.0.255 any eq 22",
    "permit tcp 10.0.0.0 0.0.0.255 any eq 443",
    "permit udp host 10.0.0.53 any eq 53",
    "permit icmp any any echo",
    "deny ip any any log",
];

impl Lab {
    pub fn stats(&self) -> LabStats {
        let start = self.shared.start;
        let ms = |t: Option<std::time::Instant>| t.map(|t| (t - start).as_millis() as u64);
        let devices = self
            .devices
            .iter()
            .map(|d| {
                let st = d.lock();
                let dialect = st.dialect();
                let acls = st
                    .running
                    .acls
                    .iter()
                    .map(|(n, a)| {
                        let shown = super::standard::shown(a)
                            .into_iter()
                            .map(|(_, e)| e)
                            // IOS's `show ip access-lists` does not print remarks.
                            .filter(|e| d.platform == Platform::CiscoNxos || e.is_ace())
                            .map(|e| render(e, dialect))
                            .collect();
                        (n.clone(), shown)
                    })
                    .collect();
                DeviceStats {
                    name: d.name.clone(),
                    platform: d.platform.name().to_string(),
                    logins: st.observed.logins,
                    auth_failures: st.observed.auth_failures,
                    enable_failures: st.observed.enable_failures,
                    first_login_ms: ms(st.observed.first_login),
                    last_logout_ms: ms(st.observed.last_logout),
                    acls,
                    unprotected_ms: st.unprotected_total().as_millis() as u64,
                    config_lines: st.observed.config_lines,
                    acl_lines: st.observed.acl_lines,
                    round_trips: st.observed.round_trips,
                    vty_refused: st.observed.vty_refused,
                    saved: st.saved(),
                    reverts: st.observed.reverts,
                }
            })
            .collect();
        LabStats {
            max_concurrent_sessions: self.shared.max_sessions.load(Ordering::SeqCst),
            auth_failures: self.shared.auth_failures.load(Ordering::SeqCst),
            devices,
        }
    }

    pub fn write_stats(&self, path: &Path) -> Result<(), LabError> {
        let json = serde_json::to_string_pretty(&self.stats()).unwrap_or_default();
        std::fs::write(path, json + "\n").map_err(|source| LabError::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    /// A nightshift config for this fleet as it is now.
    pub fn config_toml(&self, known_hosts: &Path, state_dir: &Path, lines: u32) -> String {
        let mut out = String::from(
            "# Written by `nightshift lab --write-config` for the lab that is running now.\nversion = 1\n\n",
        );
        let _ = write!(
            out,
            "[daemon]\nstate_dir = {:?}\ntimezone = \"UTC\"\n\n[ssh]\nconnect_timeout = \"10s\"\ncommand_timeout = \"30s\"\nknown_hosts = {:?}\nhost_key_policy = \"strict\"\n\n",
            state_dir.display().to_string(),
            known_hosts.display().to_string()
        );
        let canary = self
            .devices
            .iter()
            .find(|d| d.faults.is_clean())
            .or_else(|| self.devices.first())
            .map(|d| d.name.clone())
            .unwrap_or_default();
        let _ = write!(
            out,
            "[credentials.lab]\nusername = \"admin\"\ncanary = \"{canary}\"\n\n"
        );
        for d in &self.devices {
            let tag = match (d.name.as_str(), d.platform) {
                (HUB, _) => "dialer",
                (_, Platform::CiscoIos) => "closet",
                (_, Platform::CiscoNxos) => "distribution",
            };
            let _ = write!(
                out,
                "[[devices]]\nname = \"{}\"\nhost = \"{}\"\nport = {}\nplatform = \"{}\"\ntier = {}\ntags = [\"lab\", \"{tag}\"]\n",
                d.name,
                d.addr.ip(),
                d.addr.port(),
                d.platform,
                d.tier
            );
            if d.faults.legacy {
                out.push_str("algorithms = \"legacy\"\n");
            }
            out.push('\n');
        }
        let mut jobs = Vec::new();
        let selectors: Vec<&str> = [
            ("ios-*", Platform::CiscoIos),
            ("nxos-*", Platform::CiscoNxos),
        ]
        .into_iter()
        .filter(|(sel, p)| {
            self.devices
                .iter()
                .any(|d| d.platform == *p && d.name.starts_with(&sel[..sel.len() - 1]))
        })
        .map(|(s, _)| s)
        .collect();
        if !selectors.is_empty() {
            jobs.push("lock-it-down");
            let _ = write!(
                out,
                "[jobs.lock-it-down]\nkind = \"acl\"\ndevices = [{}]\nconcurrency = 20\nacl_name = \"LOCK_IT_DOWN\"\nacl_lines = \"\"\"\n{}\n\"\"\"\n\n",
                selectors
                    .iter()
                    .map(|s| format!("\"{s}\""))
                    .collect::<Vec<_>>()
                    .join(", "),
                LOCK_IT_DOWN.join("\n")
            );
        }
        let branches = self.shared.branches;
        if lines > 0 && branches > 0 {
            jobs.push("pots");
            let timeout_ms = ((90_000.0 * self.shared.time_scale) as u64).max(2_000);
            let guard_ms = ((1_000.0 * self.shared.time_scale) as u64).max(1);
            let _ = write!(
                out,
                "[jobs.pots]\nkind = \"pots\"\nconcurrency = {lines}\nguard_time = \"{guard_ms}ms\"\n\n"
            );
            for i in 1..=branches {
                let _ = write!(
                    out,
                    "[[jobs.pots.lines]]\nbranch = \"{}\"\ndialer = \"{HUB}\"\nline = {}\nnumber = \"{}\"\ntimeout = \"{timeout_ms}ms\"\n\n",
                    branch_name(i, branches),
                    FIRST_LINE + (i - 1) % lines,
                    branch_number(i)
                );
            }
        }
        if !jobs.is_empty() {
            let _ = write!(
                out,
                "[windows.nightly]\nschedule = \"0 2 * * *\"\ntimezone = \"UTC\"\nduration = \"4h\"\njobs = [{}]\n",
                jobs.iter()
                    .map(|j| format!("\"{j}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        out
    }

    /// Writes the config to `path` and the fleet's host keys beside it
    /// (`path` + `.known_hosts`).
    pub fn write_config(&self, path: &Path) -> Result<(), LabError> {
        let known_hosts = path.with_extension("known_hosts");
        let state_dir = path.with_extension("state");
        let lines = self
            .devices
            .iter()
            .find(|d| d.name == HUB)
            .map_or(0, |d| d.lock().lines.len() as u32);
        let write = |p: &Path, text: String| {
            std::fs::write(p, text).map_err(|source| LabError::Write {
                path: p.to_path_buf(),
                source,
            })
        };
        write(&known_hosts, self.known_hosts())?;
        write(
            path,
            self.config_toml(&absolute(&known_hosts), &absolute(&state_dir), lines),
        )
    }
}

fn absolute(p: &Path) -> std::path::PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
