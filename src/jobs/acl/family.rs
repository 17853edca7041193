//! ACL families: what kind of ACL a job replaces, and everything that
//! differs between them as data — the header that enters it, the command
//! that reads it, how the running config shows it, how entries are
//! numbered and deleted, and which bindings use it.
//!
//! | family | IOS | NX-OS |
//! |---|---|---|
//! | `extended` | `ip access-list extended NAME`; numbered 100–199, 2000–2699 (`access-list N …`) | `ip access-list NAME` |
//! | `standard` | `ip access-list standard NAME`; numbered 1–99, 1300–1999 | — (NX-OS has none) |
//! | `ipv6` | `ipv6 access-list NAME` (`sequence N` entries) | `ipv6 access-list NAME` |
//!
//! Numbered IOS ACLs are edited in the named-ACL mode
//! (`ip access-list extended 101`), which takes sequence numbers like a
//! named one, and show in the running config as `access-list N …` lines.

use serde::{Deserialize, Serialize};

use crate::platform::Platform;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4 extended (NX-OS: its only IPv4 kind).
    #[default]
    Extended,
    /// IPv4 standard: source address only (IOS).
    Standard,
    Ipv6,
}

impl Family {
    pub const ALL: [Family; 3] = [Family::Extended, Family::Standard, Family::Ipv6];

    pub fn name(self) -> &'static str {
        match self {
            Family::Extended => "extended",
            Family::Standard => "standard",
            Family::Ipv6 => "ipv6",
        }
    }

    pub fn from_name(s: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.name() == s)
    }

    /// The family an IOS numbered ACL's number implies.
    pub fn of_number(n: u32) -> Option<Family> {
        match n {
            1..=99 | 1300..=1999 => Some(Family::Standard),
            100..=199 | 2000..=2699 => Some(Family::Extended),
            _ => None,
        }
    }

    /// Whether the platform has this family.
    pub fn on(self, platform: Platform) -> bool {
        !(self == Family::Standard && platform == Platform::CiscoNxos)
    }
}

/// One ACL: its family and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclRef<'a> {
    pub family: Family,
    pub name: &'a str,
}

/// A regex that matches `name` literally enough: IOS reads `_` in a
/// pattern as a delimiter (space, comma, start, end), not an underscore,
/// so every character but letters and digits matches any one character.
/// Whatever else matches is dropped by the exact header check when read.
fn pattern(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '.' })
        .collect()
}

impl AclRef<'_> {
    /// IOS numbered ACL (`access-list N …` in the running config).
    pub fn number(&self) -> Option<u32> {
        if self.family == Family::Ipv6 {
            return None;
        }
        self.name.parse().ok()
    }

    /// What names the ACL's checkpoint and configuration session on NX-OS:
    /// the name, with `v6-` before it for IPv6 (IPv4 and IPv6 ACLs may
    /// share a name).
    pub fn key(&self) -> String {
        match self.family {
            Family::Ipv6 => format!("v6-{}", self.name),
            _ => self.name.to_string(),
        }
    }

    /// The configuration command that enters the ACL.
    pub fn header(&self, platform: Platform) -> String {
        let name = self.name;
        match (platform, self.family) {
            (_, Family::Ipv6) => format!("ipv6 access-list {name}"),
            (Platform::CiscoNxos, _) => format!("ip access-list {name}"),
            (Platform::CiscoIos, f) => format!("ip access-list {} {name}", f.name()),
        }
    }

    /// The command that deletes the ACL.
    pub fn delete(&self, platform: Platform) -> String {
        match self.number() {
            Some(n) if platform == Platform::CiscoIos => format!("no access-list {n}"),
            _ => format!("no {}", self.header(platform)),
        }
    }

    /// IOS: the read-only command that shows the ACL's entries, remarks
    /// included, in order.
    pub fn ios_show(&self) -> String {
        match self.number() {
            // `_` after the number: `access-list 10` must not match 101.
            Some(n) => format!("show running-config | include ^access-list {n}_"),
            None => format!(
                "show running-config | section ^{}$",
                pattern(&self.header(Platform::CiscoIos))
            ),
        }
    }

    /// Renumbers the entries `start, start + step, …`.
    pub fn resequence(&self, platform: Platform, start: u64, step: u64) -> String {
        let (v, name) = (
            if self.family == Family::Ipv6 {
                "ipv6"
            } else {
                "ip"
            },
            self.name,
        );
        match platform {
            Platform::CiscoIos => format!("{v} access-list resequence {name} {start} {step}"),
            Platform::CiscoNxos => format!("resequence {v} access-list {name} {start} {step}"),
        }
    }

    /// An entry under sequence number `seq` (IOS IPv6: `sequence N …`).
    pub fn numbered(&self, platform: Platform, seq: u64, text: &str) -> String {
        match (platform, self.family) {
            (Platform::CiscoIos, Family::Ipv6) => format!("sequence {seq} {text}"),
            _ => format!("{seq} {text}"),
        }
    }

    /// Deletes entry `seq`.
    pub fn no_seq(&self, platform: Platform, seq: u64) -> String {
        match (platform, self.family) {
            (Platform::CiscoIos, Family::Ipv6) => format!("no sequence {seq}"),
            _ => format!("no {seq}"),
        }
    }

    /// Whether a configuration line binds this ACL, and in which
    /// direction: `ip access-group` / `ipv6 traffic-filter` on
    /// interfaces, `access-class` / `ipv6 access-class` on vty lines.
    pub fn binds(&self, line: &str) -> Option<String> {
        let w: Vec<&str> = line.split_whitespace().collect();
        let (acl, dir) = match (self.family, w.as_slice()) {
            (Family::Ipv6, ["ipv6", "traffic-filter" | "access-class", acl, dir]) => (acl, dir),
            (
                Family::Extended | Family::Standard,
                ["ip", "access-group", acl, dir] | ["access-class", acl, dir],
            ) => (acl, dir),
            _ => return None,
        };
        (*acl == self.name).then(|| dir.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_per_family() {
        let ext = AclRef {
            family: Family::Extended,
            name: "LOCK_IT",
        };
        assert_eq!(
            ext.ios_show(),
            "show running-config | section ^ip.access.list.extended.LOCK.IT$"
        );
        assert_eq!(ext.header(Platform::CiscoNxos), "ip access-list LOCK_IT");
        let num = AclRef {
            family: Family::Standard,
            name: "10",
        };
        assert_eq!(
            num.ios_show(),
            "show running-config | include ^access-list 10_"
        );
        assert_eq!(num.delete(Platform::CiscoIos), "no access-list 10");
        assert_eq!(num.header(Platform::CiscoIos), "ip access-list standard 10");
        let v6 = AclRef {
            family: Family::Ipv6,
            name: "V6",
        };
        assert_eq!(
            v6.numbered(Platform::CiscoIos, 20, "permit ipv6 any any"),
            "sequence 20 permit ipv6 any any"
        );
        assert_eq!(v6.no_seq(Platform::CiscoNxos, 20), "no 20");
        assert_eq!(
            v6.resequence(Platform::CiscoNxos, 10, 10),
            "resequence ipv6 access-list V6 10 10"
        );
        assert_eq!(
            v6.binds(" ipv6 traffic-filter V6 in").as_deref(),
            Some("in")
        );
        assert_eq!(v6.binds(" ip access-group V6 in"), None);
        assert_eq!(num.binds(" access-class 10 in").as_deref(), Some("in"));
        assert_eq!(Family::of_number(1300), Some(Family::Standard));
        assert_eq!(Family::of_number(2699), Some(Family::Extended));
        assert_eq!(Family::of_number(200), None);
    }
}
