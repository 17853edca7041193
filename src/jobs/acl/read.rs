//! Reading an ACL and its bindings from what the device shows.

use super::ace::{Entry, parse_line};

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
    pub exists: bool,
    /// Sequence number (where the device showed one) and entry as shown.
    pub entries: Vec<(Option<u32>, String)>,
}

impl Found {
    pub fn of(state: &AclState) -> Found {
        Found {
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
                parse_line(shown).ok().map(|l| Present {
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

fn present(line: &str) -> Option<Present> {
    let l = parse_line(line).ok()?;
    Some(Present {
        seq: l.seq,
        shown: l.text.clone(),
        entry: l.entry,
    })
}

/// IOS `show running-config | section ip access-list extended NAME$`:
/// every entry, remarks included, in order, without sequence numbers.
pub fn ios_running_section(output: &str, name: &str) -> (bool, Vec<Present>) {
    let header = format!("ip access-list extended {name}");
    let mut inside = false;
    let mut exists = false;
    let mut entries = Vec::new();
    for line in output.lines() {
        if !line.starts_with(' ') {
            inside = line.trim_end() == header;
            exists |= inside;
            continue;
        }
        if inside {
            entries.extend(present(line));
        }
    }
    (exists, entries)
}

/// IOS `show ip access-lists NAME`: rules (no remarks) with their sequence numbers.
pub fn ios_show_acl(output: &str, name: &str) -> Vec<Present> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in output.lines() {
        if !line.starts_with(' ') {
            inside = line.trim_end().ends_with(&format!("IP access list {name}"));
            continue;
        }
        if inside {
            out.extend(present(line));
        }
    }
    out
}

/// IOS `show ip interface`: where `name` is applied.
pub fn ios_bindings(output: &str, name: &str) -> Vec<Binding> {
    let mut current = String::new();
    let mut out = Vec::new();
    for line in output.lines() {
        if !line.starts_with(' ') && line.contains(" is ") {
            current = line
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            continue;
        }
        let t = line.trim();
        for (prefix, dir) in [
            ("Outgoing access list is ", "out"),
            ("Inbound  access list is ", "in"),
            ("Inbound access list is ", "in"),
        ] {
            if let Some(acl) = t.strip_prefix(prefix)
                && acl.trim() == name
            {
                out.push(Binding {
                    interface: current.clone(),
                    direction: dir.into(),
                });
            }
        }
    }
    out
}

/// NX-OS `show running-config aclmgr`: the ACL with sequence numbers and
/// remarks, and the interfaces it is applied to.
pub fn nxos_aclmgr(output: &str, name: &str) -> AclState {
    let mut state = AclState::default();
    let mut block = (String::new(), String::new()); // (kind, name)
    for line in output.lines() {
        if line.trim().is_empty() || line.starts_with('!') {
            continue;
        }
        if !line.starts_with(' ') {
            let mut w = line.split_whitespace();
            block = match (w.next(), w.next(), w.next()) {
                (Some("ip"), Some("access-list"), Some(n)) => ("acl".into(), n.into()),
                (Some("interface"), Some(n), _) => ("interface".into(), n.into()),
                _ => (String::new(), String::new()),
            };
            if block.0 == "acl" && block.1 == name {
                state.exists = true;
            }
            continue;
        }
        match block.0.as_str() {
            "acl" if block.1 == name => state.entries.extend(present(line)),
            "interface" => {
                let w: Vec<&str> = line.split_whitespace().collect();
                if let ["ip", "access-group", acl, dir] = w.as_slice()
                    && *acl == name
                {
                    state.bindings.push(Binding {
                        interface: block.1.clone(),
                        direction: (*dir).to_string(),
                    });
                }
            }
            _ => {}
        }
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ios_outputs() {
        let run = "ip access-list extended LOCK\n remark legacy\n permit tcp 10.0.0.0 0.0.0.255 any eq 22\n deny   ip any any\nip access-list extended LOCK2\n permit ip any any\n";
        let (exists, e) = ios_running_section(run, "LOCK");
        assert!(exists);
        assert_eq!(
            e.iter().map(|p| p.entry.to_string()).collect::<Vec<_>>(),
            [
                "remark legacy",
                "permit tcp 10.0.0.0/24 any eq 22",
                "deny ip any any"
            ]
        );
        let show = "Extended IP access list LOCK\n    20 permit tcp 10.0.0.0 0.0.0.255 any eq 22 (7 matches)\n    30 deny ip any any\n";
        assert_eq!(
            ios_show_acl(show, "LOCK")
                .iter()
                .map(|p| p.seq)
                .collect::<Vec<_>>(),
            [Some(20), Some(30)]
        );
        let ipint = "Gi0/0 is up, line protocol is up\n  Outgoing access list is not set\n  Inbound  access list is MGMT\nGi0/1 is up, line protocol is up\n  Outgoing access list is LOCK\n  Inbound  access list is LOCK\n";
        assert_eq!(ios_bindings(ipint, "LOCK").len(), 2);
    }

    #[test]
    fn nxos_aclmgr_output() {
        let out = "\n!Command: show running-config aclmgr\nversion 9.3(8)\nip access-list LOCK\n  statistics per-entry\n  10 remark legacy\n  20 permit tcp 10.0.0.0/24 any eq 22\nip access-list OTHER\n  10 permit ip any any\n\ninterface Ethernet1/2\n  ip access-group LOCK in\n";
        let s = nxos_aclmgr(out, "LOCK");
        assert!(s.exists);
        assert_eq!(s.entries.len(), 2);
        assert_eq!(s.entries[1].seq, Some(20));
        assert_eq!(
            s.bindings,
            [Binding {
                interface: "Ethernet1/2".into(),
                direction: "in".into()
            }]
        );
    }
}
