//! ACL entries normalised so that what a device shows can be compared with
//! what the engineer wrote.
//!
//! The canonical form of a rule:
//! - sequence numbers and hit counters (`(12 matches)`) are dropped, and runs
//!   of spaces collapsed (IOS pads `deny   ip` in the running config);
//! - addresses: `any` (also `0.0.0.0/0` and `A 255.255.255.255`); `host A`, `A 0.0.0.0` and `A/32` are `A/32`; an
//!   address with a contiguous wildcard (`10.0.0.0 0.0.0.255`) or a prefix
//!   (`10.0.0.0/24`) is `10.0.0.0/24`, with host bits cleared as IOS does;
//!   a non-contiguous wildcard stays `A W`;
//! - ports are numbers (`www` → 80, `domain` → 53, per protocol);
//! - protocol numbers of the common protocols are names (6 → tcp);
//! - an object-group reference for addresses (IOS `object-group NAME`,
//!   NX-OS `addrgroup NAME`) is `group NAME`;
//! - the options after the addresses are normalised as `options.rs`
//!   describes (ICMP names → type and code, DSCP and precedence names →
//!   numbers); everything else (`log`, `established`, TCP flags) is kept as
//!   written, lower-cased.
//!
//! Remarks compare by their text. The engineer's lines and the device's
//! output go through the same function.

use std::fmt;

use super::addr;
pub use super::family::Family;
use crate::platform::Platform;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Remark(String),
    /// The canonical rule text.
    Rule(String),
}

impl Entry {
    pub fn is_rule(&self) -> bool {
        matches!(self, Entry::Rule(_))
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Remark(r) => write!(f, "remark {r}"),
            Entry::Rule(r) => f.write_str(r),
        }
    }
}

/// A line as written or shown, with its sequence number if it had one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub seq: Option<u32>,
    pub entry: Entry,
    /// The text to send to a device (as the engineer wrote it, without the
    /// sequence number).
    pub text: String,
}

const TCP: &[(&str, u16)] = &[
    ("bgp", 179),
    ("chargen", 19),
    ("cmd", 514),
    ("daytime", 13),
    ("discard", 9),
    ("domain", 53),
    ("echo", 7),
    ("exec", 512),
    ("finger", 79),
    ("ftp", 21),
    ("ftp-data", 20),
    ("gopher", 70),
    ("hostname", 101),
    ("ident", 113),
    ("irc", 194),
    ("msrpc", 135),
    ("pim-auto-rp", 496),
    ("snmp", 161),
    ("syslog", 514),
    ("drip", 3949),
    ("onep-plain", 15001),
    ("onep-tls", 15002),
    ("klogin", 543),
    ("kshell", 544),
    ("login", 513),
    ("lpd", 515),
    ("nntp", 119),
    ("pop2", 109),
    ("pop3", 110),
    ("smtp", 25),
    ("sunrpc", 111),
    ("tacacs", 49),
    ("talk", 517),
    ("telnet", 23),
    ("time", 37),
    ("uucp", 540),
    ("whois", 43),
    ("www", 80),
    ("http", 80),
    ("https", 443),
    ("ssh", 22),
];
const UDP: &[(&str, u16)] = &[
    ("biff", 512),
    ("bootpc", 68),
    ("bootps", 67),
    ("discard", 9),
    ("dnsix", 195),
    ("domain", 53),
    ("echo", 7),
    ("isakmp", 500),
    ("mobile-ip", 434),
    ("nameserver", 42),
    ("netbios-dgm", 138),
    ("netbios-ns", 137),
    ("netbios-ss", 139),
    ("non500-isakmp", 4500),
    ("ntp", 123),
    ("rip", 520),
    ("ripv6", 521),
    // IOS shows UDP 80 as `www` too.
    ("www", 80),
    ("pim-auto-rp", 496),
    ("snmp", 161),
    ("snmptrap", 162),
    ("sunrpc", 111),
    ("syslog", 514),
    ("tacacs", 49),
    ("talk", 517),
    ("tftp", 69),
    ("time", 37),
    ("who", 513),
    ("xdmcp", 177),
];
const PROTOCOL_NUMBERS: &[(u8, &str)] = &[
    (1, "icmp"),
    (2, "igmp"),
    (6, "tcp"),
    (17, "udp"),
    (47, "gre"),
    (50, "esp"),
    (51, "ahp"),
    (88, "eigrp"),
    (89, "ospf"),
    (103, "pim"),
];

fn port_number(proto: &str, tok: &str) -> Option<u16> {
    if let Ok(n) = tok.parse() {
        return Some(n);
    }
    let table = match proto {
        "tcp" => TCP,
        "udp" => UDP,
        _ => return None,
    };
    table.iter().find(|(n, _)| *n == tok).map(|(_, p)| *p)
}

/// Why a line is not an ACL entry: the message, and the word it is about
/// (for the column of a config problem).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    pub token: Option<String>,
}

impl ParseError {
    pub fn new(message: impl Into<String>) -> ParseError {
        ParseError {
            message: message.into(),
            token: None,
        }
    }

    /// About `token` (a word of the line).
    pub fn at(token: &str, message: impl Into<String>) -> ParseError {
        ParseError {
            message: message.into(),
            token: Some(token.to_string()),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn ports(tokens: &[&str], i: &mut usize, proto: &str, out: &mut String) -> Result<(), ParseError> {
    if !matches!(proto, "tcp" | "udp") {
        return Ok(());
    }
    // NX-OS: a port object-group.
    if tokens.get(*i) == Some(&"portgroup") {
        let name = tokens
            .get(*i + 1)
            .ok_or_else(|| ParseError::new("`portgroup` needs a group name"))?;
        *i += 2;
        out.push_str(&format!(" portgroup {name}"));
        return Ok(());
    }
    let Some(op) = tokens
        .get(*i)
        .copied()
        .filter(|t| matches!(*t, "eq" | "neq" | "lt" | "gt" | "range"))
    else {
        return Ok(());
    };
    *i += 1;
    let take = |i: &mut usize| -> Result<u16, ParseError> {
        let t = tokens
            .get(*i)
            .ok_or_else(|| ParseError::new(format!("`{op}` needs a port")))?;
        *i += 1;
        port_number(proto, t)
            .ok_or_else(|| ParseError::at(t, format!("\"{t}\" is not a {proto} port")))
    };
    let mut list = vec![take(i)?];
    match op {
        "range" => list.push(take(i)?),
        "eq" => {
            while let Some(p) = tokens.get(*i).and_then(|t| port_number(proto, t)) {
                *i += 1;
                list.push(p);
            }
        }
        _ => {}
    }
    out.push_str(&format!(
        " {op} {}",
        list.iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    ));
    Ok(())
}

/// Parses a line of an extended ACL as written in a config or shown by a
/// device.
pub fn parse_line(line: &str) -> Result<Line, ParseError> {
    parse_entry(line, Family::Extended)
}

/// Parses a line of an ACL of `family`, as written in a config or shown
/// by a device: an entry that does not belong to the family is an error
/// about the word that shows it.
pub fn parse_entry(line: &str, family: Family) -> Result<Line, ParseError> {
    let text = line.trim();
    let mut tokens: Vec<&str> = text.split_whitespace().collect();
    let mut seq = None;
    // IOS IPv6: `sequence N` before the entry (configuration) or after it
    // (`show ipv6 access-list`).
    if family == Family::Ipv6 {
        if let ["sequence", n, ..] = tokens.as_slice()
            && let Ok(n) = n.parse::<u32>()
        {
            seq = Some(n);
            tokens.drain(..2);
        } else if let [.., "sequence", n] = tokens.as_slice()
            && let Ok(n) = n.parse::<u32>()
        {
            seq = Some(n);
            tokens.truncate(tokens.len() - 2);
        }
    }
    if let Some(n) = tokens.first().and_then(|t| t.parse::<u32>().ok())
        && seq.is_none()
        && tokens.len() > 1
    {
        seq = Some(n);
        tokens.remove(0);
    }
    // Hit counters after a rule: `(12 matches)`, `(1 match)`. Not after a
    // remark: devices print none there, and the words are the engineer's.
    if tokens.first() != Some(&"remark")
        && let [.., count, word] = tokens.as_slice()
        && count
            .strip_prefix('(')
            .is_some_and(|n| n.parse::<u64>().is_ok())
        && matches!(*word, "match)" | "matches)")
    {
        tokens.truncate(tokens.len() - 2);
    }
    let body = tokens.join(" ");
    match tokens.first().copied() {
        Some("remark") => {
            let r = tokens[1..].join(" ");
            Ok(Line {
                seq,
                entry: Entry::Remark(r),
                text: body,
            })
        }
        Some(action @ ("permit" | "deny")) => {
            let rule = match family {
                Family::Standard => standard_rule(action, &tokens)?,
                Family::Extended | Family::Ipv6 => extended_rule(action, &tokens, family)?,
            };
            Ok(Line {
                seq,
                entry: Entry::Rule(rule),
                text: body,
            })
        }
        _ => Err(ParseError::new(format!("\"{text}\" is not an ACL entry"))),
    }
}

/// `permit|deny ADDRESS [log]`.
fn standard_rule(action: &str, tokens: &[&str]) -> Result<String, ParseError> {
    let mut i = 1;
    let mut rule = format!("{action} {}", addr::v4_standard(tokens, &mut i)?);
    for t in &tokens[i..] {
        let lower = t.to_ascii_lowercase();
        if lower != "log" {
            return Err(ParseError::at(
                t,
                format!(
                    "\"{t}\" does not belong in a standard entry, which matches the source address only (for protocols, ports and options, family = \"extended\")"
                ),
            ));
        }
        rule.push_str(" log");
    }
    Ok(rule)
}

/// `permit|deny PROTOCOL SOURCE [PORTS] DESTINATION [PORTS] [OPTIONS]`,
/// IPv4 or IPv6.
fn extended_rule(action: &str, tokens: &[&str], family: Family) -> Result<String, ParseError> {
    let v6 = family == Family::Ipv6;
    let raw = *tokens
        .get(1)
        .ok_or_else(|| ParseError::new("protocol missing"))?;
    let raw_proto = raw.to_ascii_lowercase();
    // A standard entry (an address where the protocol goes).
    if !v6 && (raw_proto == "any" || raw_proto == "host" || raw_proto.contains('.')) {
        return Err(ParseError::at(
            raw,
            format!(
                "\"{raw}\" is not a protocol: this looks like a standard entry (family = \"standard\")"
            ),
        ));
    }
    match (v6, raw_proto.as_str()) {
        (true, "ip") => {
            return Err(ParseError::at(
                raw,
                "IPv6 entries name the protocol `ipv6`, not `ip`",
            ));
        }
        (false, "ipv6") => {
            return Err(ParseError::at(
                raw,
                "`ipv6` in an IPv4 ACL: for IPv6 entries set family = \"ipv6\"",
            ));
        }
        _ => {}
    }
    let proto = raw_proto
        .parse::<u8>()
        .ok()
        .and_then(|n| {
            PROTOCOL_NUMBERS
                .iter()
                .find(|(p, _)| *p == n)
                .map(|(_, name)| name.to_string())
        })
        .unwrap_or(raw_proto);
    let mut i = 2;
    // IOS: a service object-group in place of the protocol.
    let proto = if proto == "object-group" {
        let name = tokens
            .get(2)
            .ok_or_else(|| ParseError::new("`object-group` needs a group name"))?;
        i = 3;
        format!("object-group {name}")
    } else {
        proto
    };
    let address = if v6 { addr::v6 } else { addr::v4_extended };
    let mut rule = format!("{action} {proto} {}", address(tokens, &mut i)?);
    ports(tokens, &mut i, &proto, &mut rule)?;
    rule.push(' ');
    rule.push_str(&address(tokens, &mut i)?);
    ports(tokens, &mut i, &proto, &mut rule)?;
    // ICMP names differ between IPv4 and IPv6: IPv6 ones stay words.
    let options_proto = if v6 && proto == "icmp" {
        "icmpv6"
    } else {
        proto.as_str()
    };
    for t in super::options::normalise(options_proto, &tokens[i..]) {
        rule.push(' ');
        rule.push_str(&t);
    }
    Ok(rule)
}

/// The entry written in the device's own syntax, from its canonical
/// form: what nightshift would send for it. IOS: prefixes as wildcards
/// (`host A` for one address; IPv6 keeps prefixes, `host A` for /128) and
/// groups as `object-group`; NX-OS: prefixes, groups as `addrgroup`.
/// Reading it back gives the same entry.
pub fn write(entry: &Entry, family: Family, platform: Platform) -> String {
    let rule = match entry {
        Entry::Remark(r) => return format!("remark {r}"),
        Entry::Rule(r) => r,
    };
    let ios = platform == Platform::CiscoIos;
    let mut out: Vec<String> = Vec::new();
    let mut words = rule.split(' ').peekable();
    while let Some(w) = words.next() {
        if w == "group" {
            if let Some(name) = words.next() {
                out.push(if ios { "object-group" } else { "addrgroup" }.into());
                out.push(name.to_string());
            }
            continue;
        }
        match w.split_once('/') {
            Some((a, "128")) if ios && family == Family::Ipv6 => {
                out.push("host".into());
                out.push(a.to_string());
            }
            Some((a, len)) if ios && family != Family::Ipv6 => {
                let len: u32 = len.parse().unwrap_or(32);
                if len == 32 {
                    out.push("host".into());
                    out.push(a.to_string());
                } else {
                    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                    out.push(a.to_string());
                    out.push(std::net::Ipv4Addr::from(!mask).to_string());
                }
            }
            _ => out.push(w.to_string()),
        }
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> Entry {
        parse_line(s).unwrap().entry
    }

    #[test]
    fn ios_and_nxos_forms_compare_equal() {
        assert_eq!(
            rule("permit udp host 10.0.0.53 any eq 53"),
            rule("20 permit udp 10.0.0.53/32 any eq domain")
        );
        assert_eq!(
            rule("permit tcp 10.0.0.0 0.0.0.255 any eq www"),
            rule("10 permit tcp 10.0.0.0/24 any eq 80 (12 matches)")
        );
        assert_eq!(rule("deny   ip any any log"), rule("deny ip any any log"));
        assert_eq!(
            rule("permit 6 10.0.0.7 0.0.0.255 any"),
            rule("permit tcp 10.0.0.0/24 any")
        );
        assert_eq!(
            rule("permit tcp 10.0.0.0 0.0.255.0 any").to_string(),
            "permit tcp 10.0.0.0 0.0.255.0 any"
        );
        assert_ne!(
            rule("permit tcp any any eq 22"),
            rule("permit tcp any eq 22 any")
        );
    }

    #[test]
    fn options_compare_by_meaning() {
        assert_eq!(
            rule("permit icmp any any echo"),
            rule("permit icmp any any 8")
        );
        assert_eq!(
            rule("permit icmp any any port-unreachable"),
            rule("permit icmp any any 3 3")
        );
        assert_ne!(
            rule("permit icmp any any unreachable"),
            rule("permit icmp any any port-unreachable")
        );
        assert_eq!(
            rule("permit ip any any dscp ef log"),
            rule("permit ip any any dscp 46 log")
        );
        assert_eq!(
            rule("permit tcp any any precedence network"),
            rule("permit tcp any any precedence 7")
        );
        assert_ne!(
            rule("permit ip any any time-range OffHours"),
            rule("permit ip any any time-range offhours")
        );
        assert_eq!(
            rule("permit tcp object-group BRANCHES any eq 22"),
            rule("permit tcp addrgroup BRANCHES any eq 22")
        );
        assert_eq!(
            rule("permit object-group WEB any any").to_string(),
            "permit object-group WEB any any"
        );
        assert_eq!(
            rule("permit tcp any portgroup WEB any").to_string(),
            "permit tcp any portgroup WEB any"
        );
        assert_ne!(
            rule("permit ip any any log"),
            rule("permit ip any any log-input")
        );
    }

    #[test]
    fn sequence_numbers_and_remarks() {
        let l = parse_line("15 remark managed  by nightshift").unwrap();
        assert_eq!(l.seq, Some(15));
        assert_eq!(l.entry, Entry::Remark("managed by nightshift".into()));
        assert_eq!(l.text, "remark managed by nightshift");
        assert!(parse_line("permti ip any any").is_err());
        assert!(parse_line("permit tcp any any eq sshh").is_err());
    }
}
