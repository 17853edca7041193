//! Every ACL in a device's output: `show access-lists`, `show ip
//! access-lists`, `show ipv6 access-list` and running or startup configs,
//! IOS, IOS-XE and NX-OS. Entries of the families nightshift replaces are
//! parsed (an entry that does not parse is an error with its line);
//! families it does not replace (MAC, FQDN, role-based, reflexive, IOS
//! numbered MAC or protocol-type lists) are recognised and their entries
//! kept as text.

use super::ace::{Line, ParseError, parse_entry};
use super::family::Family;
use crate::platform::Platform;

/// One ACL as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    /// `None`: a family nightshift does not replace.
    pub family: Option<Family>,
    /// What the output called it (`Extended IP access list`,
    /// `ip access-list standard`, `access-list 10`, `mac access-list` …).
    pub kind: String,
    pub entries: Vec<Line>,
    /// The entries of a family nightshift does not replace, as shown.
    pub other: Vec<String>,
    /// Entries that do not belong to the family the title says but read
    /// as extended ones (a standard list holding `deny udp …`, as one
    /// published sample has): kept apart, never taken for standard.
    pub mismatched: Vec<Line>,
}

/// A line that could not be read: its number (1-based) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingError {
    pub line: usize,
    pub text: String,
    pub error: ParseError,
}

/// Lines under an ACL that are settings, not entries.
const SETTINGS: &[&str] = &[
    "statistics per-entry",
    "fragments permit-all",
    "fragments deny-all",
];

/// The family a `show` title names (`None` inside: one nightshift does
/// not replace); `None` outside: not a title.
fn show_title(line: &str) -> Option<(Option<Family>, &str, &str)> {
    // NX-OS releases say `IP access list N` or `IPV4 ACL N`.
    let (title, name) = line
        .split_once(" access list ")
        .or_else(|| line.split_once(" ACL "))?;
    let family = match title {
        "Standard IP" => Some(Family::Standard),
        "Extended IP" | "IP" | "IPV4" => Some(Family::Extended),
        "IPv6" | "IPV6" => Some(Family::Ipv6),
        "Reflexive IP" | "Extended MAC" | "MAC" | "FQDN IP" | "IPv6 FQDN" | "Role-based IP"
        | "IPv6 Role-based" => None,
        _ => return None,
    };
    Some((family, title, name.split_whitespace().next()?))
}

/// Global `ip access-list` commands that are not an ACL.
const IP_ACL_SETTINGS: &[&str] = &[
    "logging",
    "log-update",
    "resequence",
    "persistent",
    "counters",
    "match-local-traffic",
    "fqdn",
];

/// A configuration header: `ip access-list standard|extended NAME`,
/// NX-OS `ip access-list NAME`, `ipv6 access-list NAME`, `mac access-list
/// NAME`, `ip access-list role-based NAME`.
fn config_header(line: &str, platform: Platform) -> Option<(Option<Family>, String, String)> {
    let w: Vec<&str> = line.split_whitespace().collect();
    let header = |family, n: usize| Some((family, w[..n].join(" "), w.get(n)?.to_string()));
    match w.as_slice() {
        ["ip", "access-list", "standard", _, ..] => header(Some(Family::Standard), 3),
        ["ip", "access-list", "extended", _, ..] => header(Some(Family::Extended), 3),
        ["ip", "access-list", "role-based" | "fqdn", _, ..] => header(None, 3),
        ["ip", "access-list", x, ..] if IP_ACL_SETTINGS.contains(x) => None,
        ["ip", "access-list", _] if platform == Platform::CiscoNxos => {
            header(Some(Family::Extended), 2)
        }
        ["ipv6", "access-list", x, ..] if ["log-update", "cache", "fqdn"].contains(x) => None,
        ["ipv6", "access-list", _] => header(Some(Family::Ipv6), 2),
        ["mac", "access-list", _, ..] | ["arp", "access-list", _, ..] => header(None, 2),
        _ => None,
    }
}

/// Every ACL in `text`, in order. A numbered IOS ACL's `access-list N …`
/// lines make one ACL.
pub fn listings(text: &str, platform: Platform) -> Result<Vec<Listed>, ListingError> {
    let mut out: Vec<Listed> = Vec::new();
    // Index in `out` of the ACL indented lines belong to.
    let mut open: Option<usize> = None;
    for (k, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        if line.trim().is_empty() || line.trim_start().starts_with('!') {
            continue;
        }
        let fail = |error| ListingError {
            line: k + 1,
            text: line.to_string(),
            error,
        };
        // A `show` title, however indented (some captures indent them).
        if let Some((family, kind, name)) = show_title(line.trim_start()) {
            out.push(Listed {
                name: name.to_string(),
                family,
                kind: format!("{kind} access list"),
                entries: Vec::new(),
                other: Vec::new(),
                mismatched: Vec::new(),
            });
            open = Some(out.len() - 1);
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            let Some(at) = open else { continue };
            let acl = &mut out[at];
            let entry = line.trim();
            if SETTINGS.contains(&entry) {
                continue;
            }
            match acl.family {
                Some(f) => match parse_entry(entry, f) {
                    Ok(l) => acl.entries.push(l),
                    Err(e) => match parse_entry(entry, Family::Extended) {
                        Ok(l) if f == Family::Standard => acl.mismatched.push(l),
                        _ => return Err(fail(e)),
                    },
                },
                None => acl.other.push(entry.to_string()),
            }
            continue;
        }
        open = None;
        if let Some((family, kind, name)) = config_header(line, platform) {
            out.push(Listed {
                name,
                family,
                kind,
                entries: Vec::new(),
                other: Vec::new(),
                mismatched: Vec::new(),
            });
            open = Some(out.len() - 1);
            continue;
        }
        // `access-list N …`: IOS numbered.
        if let Some(rest) = line.strip_prefix("access-list ")
            && let Some((number, entry)) = rest.split_once(' ')
            && let Ok(n) = number.parse::<u32>()
        {
            let family = Family::of_number(n);
            let at = match out
                .iter()
                .position(|a| a.kind == "access-list" && a.name == number)
            {
                Some(at) => at,
                None => {
                    out.push(Listed {
                        name: number.to_string(),
                        family,
                        kind: "access-list".into(),
                        entries: Vec::new(),
                        other: Vec::new(),
                        mismatched: Vec::new(),
                    });
                    out.len() - 1
                }
            };
            let acl = &mut out[at];
            match family {
                Some(f) if !entry.starts_with("dynamic ") => {
                    acl.entries.push(parse_entry(entry, f).map_err(fail)?)
                }
                _ => acl.other.push(entry.to_string()),
            }
        }
    }
    Ok(out)
}
