//! Reading an ACL and its bindings from what the device shows.

use super::ace::{Entry, parse_entry};
use super::family::{AclRef, Family};
use crate::platform::Platform;

/// One entry as the device has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Present {
    pub seq: Option<u32>,
    pub entry: Entry,
    /// As the device printed it (without sequence number).
    pub shown: String,
}

/// Where an ACL is applied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Binding {
    pub interface: String,
    pub direction: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclState {
    pub exists: bool,
    pub entries: Vec<Present>,
    pub bindings: Vec<Binding>,
    /// NX-OS: the checkpoints the switch holds, read in the same round
    /// trip as the ACL (or why they could not be listed).
    pub checkpoints: Option<Result<Vec<String>, String>>,
}

impl AclState {
    pub fn entries_only(&self) -> Vec<Entry> {
        self.entries.iter().map(|p| p.entry.clone()).collect()
    }
}

/// The ACL a push found on a device before its first change, as the run
/// journal keeps it ([`crate::engine::Event::Found`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Found {
    /// Absent in reports of earlier versions, which had extended ACLs only.
    #[serde(default)]
    pub family: Family,
    pub exists: bool,
    /// Sequence number (where the device showed one) and entry as shown.
    pub entries: Vec<(Option<u32>, String)>,
}

impl Found {
    pub fn of(state: &AclState, family: Family) -> Found {
        Found {
            family,
            exists: state.exists,
            entries: state
                .entries
                .iter()
                .map(|p| (p.seq, p.shown.clone()))
                .collect(),
        }
    }

    /// The state it describes, with the bindings read now; `None` when an
    /// entry no longer parses (a journal of another version).
    pub fn state(&self, now: &AclState) -> Option<AclState> {
        let entries = self
            .entries
            .iter()
            .map(|(seq, shown)| {
                parse_entry(shown, self.family).ok().map(|l| Present {
                    seq: *seq,
                    entry: l.entry,
                    shown: shown.clone(),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(AclState {
            exists: self.exists,
            entries,
            bindings: now.bindings.clone(),
            checkpoints: now.checkpoints.clone(),
        })
    }
}

fn present(line: &str, family: Family) -> Option<Present> {
    let l = parse_entry(line, family).ok()?;
    Some(Present {
        seq: l.seq,
        shown: l.text.clone(),
        entry: l.entry,
    })
}

/// IOS: the ACL as the running config shows it (see
/// [`AclRef::ios_show`]): every entry, remarks included, in order,
/// without sequence numbers (IPv6: with `sequence N` where shown).
/// Named ACLs are a header and indented entries; numbered ones are
/// `access-list N …` lines.
pub fn ios_running(output: &str, acl: &AclRef<'_>) -> (bool, Vec<Present>) {
    let mut exists = false;
    let mut entries = Vec::new();
    if let Some(n) = acl.number() {
        let prefix = format!("access-list {n} ");
        for line in output.lines() {
            if let Some(rest) = line.trim_end().strip_prefix(&prefix) {
                exists = true;
                entries.extend(present(rest, acl.family));
            }
        }
        return (exists, entries);
    }
    let header = acl.header(Platform::CiscoIos);
    let mut inside = false;
    for line in output.lines() {
        if !line.starts_with(' ') {
            inside = line.trim_end() == header;
            exists |= inside;
            continue;
        }
        if inside {
            entries.extend(present(line, acl.family));
        }
    }
    (exists, entries)
}

/// Where `acl` is bound, from configuration text: interfaces and lines
/// (`line vty 0 4`) and the binding commands under them.
pub fn config_bindings(output: &str, acl: &AclRef<'_>) -> Vec<Binding> {
    let mut current = String::new();
    let mut out = Vec::new();
    for line in output.lines() {
        let t = line.trim_end();
        if !t.starts_with(' ') {
            current = t
                .strip_prefix("interface ")
                .or_else(|| t.strip_prefix("line "))
                .map(|n| n.trim().to_string())
                .unwrap_or_default();
            continue;
        }
        if let Some(direction) = acl.binds(t)
            && !current.is_empty()
        {
            out.push(Binding {
                interface: current.clone(),
                direction,
            });
        }
    }
    out
}

/// NX-OS `show running-config aclmgr`: the ACL with sequence numbers and
/// remarks, and the interfaces and lines it is applied to.
pub fn nxos_aclmgr(output: &str, acl: &AclRef<'_>) -> AclState {
    let mut state = AclState::default();
    let header = acl.header(Platform::CiscoNxos);
    let mut inside = false;
    for line in output.lines() {
        if line.trim().is_empty() || line.starts_with('!') {
            continue;
        }
        if !line.starts_with(' ') {
            inside = line.trim_end() == header;
            state.exists |= inside;
            continue;
        }
        if inside {
            state.entries.extend(present(line, acl.family));
        }
    }
    state.bindings = config_bindings(output, acl);
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(family: Family, name: &str) -> AclRef<'_> {
        AclRef { family, name }
    }

    #[test]
    fn ios_outputs() {
        let run = "ip access-list extended LOCK\n remark legacy\n permit tcp 10.0.0.0 0.0.0.255 any eq 22\n deny   ip any any\nip access-list extended LOCK2\n permit ip any any\n";
        let (exists, e) = ios_running(run, &acl(Family::Extended, "LOCK"));
        assert!(exists);
        assert_eq!(
            e.iter().map(|p| p.entry.to_string()).collect::<Vec<_>>(),
            [
                "remark legacy",
                "permit tcp 10.0.0.0/24 any eq 22",
                "deny ip any any"
            ]
        );
        let numbered = "access-list 10 remark mgmt\naccess-list 10 permit 10.0.0.0 0.0.0.255\naccess-list 10 deny   any log\n";
        let (exists, e) = ios_running(numbered, &acl(Family::Standard, "10"));
        assert!(exists);
        assert_eq!(
            e.iter().map(|p| p.entry.to_string()).collect::<Vec<_>>(),
            ["remark mgmt", "permit 10.0.0.0/24", "deny any log"]
        );
        let v6 = "ipv6 access-list V6\n permit tcp 2001:DB8::/32 any eq 22\n sequence 30 deny ipv6 any any log\n";
        let (_, e) = ios_running(v6, &acl(Family::Ipv6, "V6"));
        assert_eq!(e[1].seq, Some(30));
        assert_eq!(e[0].entry.to_string(), "permit tcp 2001:db8::/32 any eq 22");
        let bound = "interface Gi0/0\n ip access-group MGMT in\ninterface Gi0/1\n ip access-group LOCK out\n ipv6 traffic-filter V6 in\nline vty 0 4\n access-class 10 in\n ipv6 access-class V6 in\n";
        assert_eq!(
            config_bindings(bound, &acl(Family::Extended, "LOCK")).len(),
            1
        );
        let b = config_bindings(bound, &acl(Family::Ipv6, "V6"));
        assert_eq!(b.len(), 2);
        assert_eq!(b[1].interface, "vty 0 4");
        assert_eq!(
            config_bindings(bound, &acl(Family::Standard, "10"))[0].interface,
            "vty 0 4"
        );
    }

    #[test]
    fn nxos_aclmgr_output() {
        let out = "\n!Command: show running-config aclmgr\nversion 9.3(8)\nip access-list LOCK\n  statistics per-entry\n  10 remark legacy\n  20 permit tcp 10.0.0.0/24 any eq 22\nip access-list OTHER\n  10 permit ip any any\nipv6 access-list LOCK\n  10 permit ipv6 any any\n\ninterface Ethernet1/2\n  ip access-group LOCK in\n  ipv6 traffic-filter LOCK in\nline vty\n  access-class LOCK in\n";
        let s = nxos_aclmgr(out, &acl(Family::Extended, "LOCK"));
        assert!(s.exists);
        assert_eq!(s.entries.len(), 2);
        assert_eq!(s.entries[1].seq, Some(20));
        assert_eq!(
            s.bindings,
            [
                Binding {
                    interface: "Ethernet1/2".into(),
                    direction: "in".into()
                },
                Binding {
                    interface: "vty".into(),
                    direction: "in".into()
                }
            ]
        );
        let s = nxos_aclmgr(out, &acl(Family::Ipv6, "LOCK"));
        assert_eq!(s.entries.len(), 1);
        assert_eq!(s.bindings.len(), 1);
    }
}
