//! The options after a rule's addresses and ports, normalised so that the
//! forms IOS and NX-OS print (and engineers write) compare equal:
//!
//! | option | written or shown as | canonical |
//! |---|---|---|
//! | ICMP message | `echo`, `8`; `port-unreachable`, `3 3` | type, and code where the name has one: `8`, `3 3` |
//! | DSCP | `dscp ef`, `dscp 46`; `dscp af11`, `dscp 10` | `dscp 46`, `dscp 10` |
//! | precedence | `precedence network`, `precedence 7` | `precedence 7` |
//! | time-range | `time-range OffHours` | kept as written (the name is case-sensitive) |
//! | other words | `established`, `log`, `log-input`, `fragments`, TCP flags | lower-cased, in order |

/// ICMP message names (IOS and NX-OS share them): type and, for the names
/// that pick one, code.
const ICMP: &[(&str, u8, Option<u8>)] = &[
    ("administratively-prohibited", 3, Some(13)),
    ("alternate-address", 6, None),
    ("conversion-error", 31, None),
    ("dod-host-prohibited", 3, Some(10)),
    ("dod-net-prohibited", 3, Some(9)),
    ("echo", 8, None),
    ("echo-reply", 0, None),
    ("general-parameter-problem", 12, Some(0)),
    ("host-isolated", 3, Some(8)),
    ("host-precedence-unreachable", 3, Some(14)),
    ("host-redirect", 5, Some(1)),
    ("host-tos-redirect", 5, Some(3)),
    ("host-tos-unreachable", 3, Some(12)),
    ("host-unknown", 3, Some(7)),
    ("host-unreachable", 3, Some(1)),
    ("information-reply", 16, None),
    ("information-request", 15, None),
    ("mask-reply", 18, None),
    ("mask-request", 17, None),
    ("mobile-redirect", 32, None),
    ("net-redirect", 5, Some(0)),
    ("net-tos-redirect", 5, Some(2)),
    ("net-tos-unreachable", 3, Some(11)),
    ("net-unreachable", 3, Some(0)),
    ("network-unknown", 3, Some(6)),
    ("no-room-for-option", 12, Some(2)),
    ("option-missing", 12, Some(1)),
    ("packet-too-big", 3, Some(4)),
    ("parameter-problem", 12, None),
    ("port-unreachable", 3, Some(3)),
    ("precedence-unreachable", 3, Some(15)),
    ("protocol-unreachable", 3, Some(2)),
    ("reassembly-timeout", 11, Some(1)),
    ("redirect", 5, None),
    ("router-advertisement", 9, None),
    ("router-solicitation", 10, None),
    ("source-quench", 4, None),
    ("source-route-failed", 3, Some(5)),
    ("time-exceeded", 11, None),
    ("timestamp-reply", 14, None),
    ("timestamp-request", 13, None),
    ("traceroute", 30, None),
    ("ttl-exceeded", 11, Some(0)),
    ("unreachable", 3, None),
];

const DSCP: &[(&str, u8)] = &[
    ("default", 0),
    ("cs1", 8),
    ("af11", 10),
    ("af12", 12),
    ("af13", 14),
    ("cs2", 16),
    ("af21", 18),
    ("af22", 20),
    ("af23", 22),
    ("cs3", 24),
    ("af31", 26),
    ("af32", 28),
    ("af33", 30),
    ("cs4", 32),
    ("af41", 34),
    ("af42", 36),
    ("af43", 38),
    ("cs5", 40),
    ("ef", 46),
    ("cs6", 48),
    ("cs7", 56),
];

const PRECEDENCE: &[&str] = &[
    "routine",
    "priority",
    "immediate",
    "flash",
    "flash-override",
    "critical",
    "internet",
    "network",
];

/// The names, for generating test input.
pub fn icmp_names() -> impl Iterator<Item = (&'static str, u8, Option<u8>)> {
    ICMP.iter().copied()
}

pub fn dscp_names() -> impl Iterator<Item = (&'static str, u8)> {
    DSCP.iter().copied()
}

pub fn precedence_names() -> impl Iterator<Item = (&'static str, u8)> {
    PRECEDENCE.iter().enumerate().map(|(i, n)| (*n, i as u8))
}

/// The canonical options of a rule of protocol `proto` (`tokens` after
/// its addresses and ports).
pub fn normalise(proto: &str, tokens: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    // An ICMP message comes first: a name, or a type and maybe a code.
    if proto == "icmp"
        && let Some(t) = tokens.first()
    {
        let lower = t.to_ascii_lowercase();
        if let Some((_, ty, code)) = ICMP.iter().find(|(n, _, _)| *n == lower) {
            out.push(ty.to_string());
            if let Some(c) = code {
                out.push(c.to_string());
            }
            i = 1;
        } else if let Ok(ty) = t.parse::<u8>() {
            out.push(ty.to_string());
            i = 1;
            if let Some(c) = tokens.get(1).and_then(|c| c.parse::<u8>().ok()) {
                out.push(c.to_string());
                i = 2;
            }
        }
    }
    while i < tokens.len() {
        let word = tokens[i].to_ascii_lowercase();
        let next = tokens.get(i + 1).copied();
        match (word.as_str(), next) {
            ("dscp", Some(v)) => {
                let lower = v.to_ascii_lowercase();
                let n = DSCP
                    .iter()
                    .find(|(name, _)| *name == lower)
                    .map(|(_, n)| n.to_string())
                    .unwrap_or(lower);
                out.push("dscp".into());
                out.push(n);
                i += 2;
            }
            ("precedence", Some(v)) => {
                let lower = v.to_ascii_lowercase();
                let n = PRECEDENCE
                    .iter()
                    .position(|name| *name == lower)
                    .map(|n| n.to_string())
                    .unwrap_or(lower);
                out.push("precedence".into());
                out.push(n);
                i += 2;
            }
            ("time-range", Some(name)) => {
                out.push("time-range".into());
                out.push(name.to_string());
                i += 2;
            }
            _ => {
                out.push(word);
                i += 1;
            }
        }
    }
    out
}
