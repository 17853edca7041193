//! The lab's own model of IPv4 ACL entries: what a device accepts in
//! `(config-ext-nacl)#` / `(config-acl)#`, and how each platform prints it
//! back. Written independently of the client's normaliser on purpose, so a
//! bug in one cannot hide a bug in the other.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::ports::{parse_port, port_name};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    Any,
    /// Address and wildcard mask (`host X` is wildcard 0.0.0.0).
    Wild(Ipv4Addr, Ipv4Addr),
    /// A network object-group (IOS `object-group NAME`, NX-OS `addrgroup NAME`).
    Group(String),
    /// An IPv6 prefix (`host X` is /128), host bits cleared.
    V6(Ipv6Addr, u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ports {
    Eq(Vec<u16>),
    Neq(u16),
    Lt(u16),
    Gt(u16),
    Range(u16, u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ace {
    pub permit: bool,
    pub proto: String,
    pub src: Addr,
    pub src_ports: Option<Ports>,
    pub dst: Addr,
    pub dst_ports: Option<Ports>,
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Remark(String),
    Ace(Ace),
    /// A standard ACL's entry: the source address only.
    Std {
        permit: bool,
        src: Addr,
        log: bool,
    },
}

impl Entry {
    pub fn is_ace(&self) -> bool {
        !matches!(self, Entry::Remark(_))
    }
}

/// What kind of ACL: which entries it takes and how it is shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AclKind {
    #[default]
    Extended,
    Standard,
    Ipv6,
}

impl AclKind {
    /// IOS's numbered ranges.
    pub fn of_number(n: u32) -> Option<AclKind> {
        match n {
            1..=99 | 1300..=1999 => Some(AclKind::Standard),
            100..=199 | 2000..=2699 => Some(AclKind::Extended),
            _ => None,
        }
    }
}

/// Platform dialect for parsing and printing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Ios,
    Nxos,
}

/// A named ACL: entries by sequence number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    pub kind: AclKind,
    pub entries: BTreeMap<u32, Entry>,
    /// NX-OS `statistics per-entry`.
    pub statistics: bool,
}

impl Acl {
    pub fn has_ace(&self) -> bool {
        self.entries.values().any(Entry::is_ace)
    }

    pub fn next_seq(&self) -> u32 {
        self.entries
            .keys()
            .next_back()
            .map_or(10, |s| s + 10 - s % 10)
    }

    pub fn resequence(&mut self, start: u32, step: u32) {
        let entries = std::mem::take(&mut self.entries);
        for (i, e) in entries.into_values().enumerate() {
            self.entries.insert(start + step * i as u32, e);
        }
    }
}

const PROTOCOLS: &[&str] = &[
    "ip", "tcp", "udp", "icmp", "gre", "esp", "ahp", "eigrp", "ospf", "pim", "igmp", "ipinip",
    "nos", "pcp", "sctp",
];
const FLAGS: &[&str] = &[
    "log",
    "log-input",
    "established",
    "fragments",
    "echo",
    "echo-reply",
    "unreachable",
    "time-exceeded",
    "ttl-exceeded",
    "packet-too-big",
    "redirect",
    "traceroute",
    "host-unreachable",
    "port-unreachable",
    "net-unreachable",
    "administratively-prohibited",
    "parameter-problem",
    "source-quench",
    "ack",
    "fin",
    "psh",
    "rst",
    "syn",
    "urg",
    // The other ICMP message names both platforms take.
    "alternate-address",
    "conversion-error",
    "dod-host-prohibited",
    "dod-net-prohibited",
    "general-parameter-problem",
    "host-isolated",
    "host-precedence-unreachable",
    "host-redirect",
    "host-tos-redirect",
    "host-tos-unreachable",
    "host-unknown",
    "information-reply",
    "information-request",
    "mask-reply",
    "mask-request",
    "mobile-redirect",
    "net-redirect",
    "net-tos-redirect",
    "net-tos-unreachable",
    "network-unknown",
    "no-room-for-option",
    "option-missing",
    "precedence-unreachable",
    "protocol-unreachable",
    "reassembly-timeout",
    "router-advertisement",
    "router-solicitation",
    "source-route-failed",
    "timestamp-reply",
    "timestamp-request",
];
/// IPv6 protocols and ICMPv6 messages the lab takes.
const PROTOCOLS6: &[&str] = &["ipv6", "tcp", "udp", "icmp", "ahp", "esp", "pcp", "sctp"];
const FLAGS6: &[&str] = &[
    "echo-request",
    "nd-na",
    "nd-ns",
    "router-solicitation",
    "router-advertisement",
];

/// Flags that take one argument.
const FLAGS_WITH_ARG: &[&str] = &["dscp", "precedence", "tos", "ttl", "time-range"];

/// A parse error at token `index` (for the caret under the echoed line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadToken {
    pub index: usize,
    /// The line ended where more was required (`% Incomplete command.`).
    pub incomplete: bool,
}

struct Tokens<'a> {
    items: Vec<&'a str>,
    pos: usize,
}

impl<'a> Tokens<'a> {
    fn next(&mut self) -> Result<&'a str, BadToken> {
        let t = self.items.get(self.pos).copied().ok_or(BadToken {
            index: self.pos,
            incomplete: true,
        })?;
        self.pos += 1;
        Ok(t)
    }
    fn peek(&self) -> Option<&'a str> {
        self.items.get(self.pos).copied()
    }
    fn bad(&self) -> BadToken {
        BadToken {
            index: self.pos.saturating_sub(1),
            incomplete: false,
        }
    }
}

fn wildcard_from_prefix(len: u32) -> Ipv4Addr {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Ipv4Addr::from(!mask)
}

fn parse_addr(t: &mut Tokens<'_>, dialect: Dialect) -> Result<Addr, BadToken> {
    let tok = t.next()?;
    if tok == "any" {
        return Ok(Addr::Any);
    }
    if tok == "host" {
        let a: Ipv4Addr = t.next()?.parse().map_err(|_| t.bad())?;
        return Ok(Addr::Wild(a, Ipv4Addr::UNSPECIFIED));
    }
    let group_word = match dialect {
        Dialect::Ios => "object-group",
        Dialect::Nxos => "addrgroup",
    };
    if tok == group_word {
        return Ok(Addr::Group(t.next()?.to_string()));
    }
    if let Some((a, len)) = tok.split_once('/') {
        if dialect == Dialect::Ios {
            return Err(t.bad());
        }
        let a: Ipv4Addr = a.parse().map_err(|_| t.bad())?;
        let len: u32 = len
            .parse()
            .ok()
            .filter(|l| *l <= 32)
            .ok_or_else(|| t.bad())?;
        return Ok(wild(a, wildcard_from_prefix(len)));
    }
    let a: Ipv4Addr = tok.parse().map_err(|_| t.bad())?;
    let w: Ipv4Addr = t.next()?.parse().map_err(|_| t.bad())?;
    Ok(wild(a, w))
}

/// A standard entry's source: `any`, `host A`, `A` (a host) or `A W`.
fn parse_std_addr(t: &mut Tokens<'_>) -> Result<Addr, BadToken> {
    let tok = t.next()?;
    match tok {
        "any" => Ok(Addr::Any),
        "host" => {
            let a: Ipv4Addr = t.next()?.parse().map_err(|_| t.bad())?;
            Ok(Addr::Wild(a, Ipv4Addr::UNSPECIFIED))
        }
        _ => {
            let a: Ipv4Addr = tok.parse().map_err(|_| t.bad())?;
            match t.peek().map(str::parse::<Ipv4Addr>) {
                Some(Ok(w)) => {
                    t.pos += 1;
                    Ok(wild(a, w))
                }
                _ => Ok(Addr::Wild(a, Ipv4Addr::UNSPECIFIED)),
            }
        }
    }
}

/// An IPv6 address: `any`, `host X`, `X/LEN`.
fn parse_addr6(t: &mut Tokens<'_>) -> Result<Addr, BadToken> {
    let tok = t.next()?;
    if tok == "any" {
        return Ok(Addr::Any);
    }
    let (a, len) = if tok == "host" {
        (t.next()?, "128")
    } else {
        tok.split_once('/').ok_or_else(|| t.bad())?
    };
    let a: Ipv6Addr = a.parse().map_err(|_| t.bad())?;
    let len: u8 = len
        .parse()
        .ok()
        .filter(|l| *l <= 128)
        .ok_or_else(|| t.bad())?;
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    Ok(Addr::V6(Ipv6Addr::from(u128::from(a) & mask), len))
}

fn parse_any(t: &mut Tokens<'_>, dialect: Dialect, v6: bool) -> Result<Addr, BadToken> {
    if v6 {
        parse_addr6(t)
    } else {
        parse_addr(t, dialect)
    }
}

/// An address and wildcard as the device keeps them: the bits the
/// wildcard ignores are cleared (`10.0.0.5 0.0.0.255` is `10.0.0.0 0.0.0.255`).
fn wild(a: Ipv4Addr, w: Ipv4Addr) -> Addr {
    Addr::Wild(Ipv4Addr::from(u32::from(a) & !u32::from(w)), w)
}

fn parse_ports(t: &mut Tokens<'_>, proto: &str) -> Result<Option<Ports>, BadToken> {
    if !matches!(proto, "tcp" | "udp") {
        return Ok(None);
    }
    let op = match t.peek() {
        Some(op @ ("eq" | "neq" | "lt" | "gt" | "range")) => op,
        _ => return Ok(None),
    };
    t.pos += 1;
    let one = |t: &mut Tokens<'_>| -> Result<u16, BadToken> {
        let s = t.next()?;
        parse_port(proto, s).ok_or_else(|| t.bad())
    };
    Ok(Some(match op {
        "eq" => {
            let mut v = vec![one(t)?];
            while let Some(p) = t.peek().and_then(|s| parse_port(proto, s)) {
                t.pos += 1;
                v.push(p);
            }
            Ports::Eq(v)
        }
        "neq" => Ports::Neq(one(t)?),
        "lt" => Ports::Lt(one(t)?),
        "gt" => Ports::Gt(one(t)?),
        _ => Ports::Range(one(t)?, one(t)?),
    }))
}

/// Parses one entry line as typed in ACL config mode (`[SEQ] permit ...`,
/// `remark ...`). Returns the sequence number if one was given.
pub fn parse_entry(
    line: &str,
    dialect: Dialect,
    kind: AclKind,
) -> Result<(Option<u32>, Entry), BadToken> {
    let items: Vec<&str> = line.split_whitespace().collect();
    let mut t = Tokens { items, pos: 0 };
    let mut seq = None;
    let mut first = t.next()?;
    // IOS IPv6 numbers an entry with `sequence N`; a bare number is wrong.
    let ios6 = dialect == Dialect::Ios && kind == AclKind::Ipv6;
    if ios6 && first == "sequence" {
        first = t.next()?;
        let n: u32 = first.parse().map_err(|_| t.bad())?;
        if n == 0 {
            return Err(t.bad());
        }
        seq = Some(n);
        first = t.next()?;
    } else if let Ok(n) = first.parse::<u32>() {
        if ios6 {
            return Err(t.bad());
        }
        if n == 0 || n > 2_147_483_647 {
            return Err(t.bad());
        }
        seq = Some(n);
        first = t.next()?;
    }
    match first {
        "remark" => {
            let idx = line.find("remark").unwrap_or(0) + "remark".len();
            let text = line[idx..].trim();
            if text.is_empty() {
                return Err(BadToken {
                    index: t.pos,
                    incomplete: true,
                });
            }
            Ok((seq, Entry::Remark(text.to_string())))
        }
        "permit" | "deny" if kind == AclKind::Standard => {
            let src = parse_std_addr(&mut t)?;
            let log = match t.peek() {
                None => false,
                Some("log") => {
                    t.pos += 1;
                    true
                }
                Some(_) => {
                    t.pos += 1;
                    return Err(t.bad());
                }
            };
            if t.peek().is_some() {
                t.pos += 1;
                return Err(t.bad());
            }
            Ok((
                seq,
                Entry::Std {
                    permit: first == "permit",
                    src,
                    log,
                },
            ))
        }
        "permit" | "deny" => {
            let proto = t.next()?;
            let v6 = kind == AclKind::Ipv6;
            let proto_ok = if v6 {
                PROTOCOLS6.contains(&proto)
            } else {
                PROTOCOLS.contains(&proto)
            } || proto.parse::<u8>().is_ok();
            if !proto_ok {
                return Err(t.bad());
            }
            let src = parse_any(&mut t, dialect, v6)?;
            let src_ports = parse_ports(&mut t, proto)?;
            let dst = parse_any(&mut t, dialect, v6)?;
            let dst_ports = parse_ports(&mut t, proto)?;
            let mut flags = Vec::new();
            // ICMP: a message type by number, and maybe its code.
            if proto == "icmp"
                && let Some(ty) = t.peek().and_then(|s| s.parse::<u8>().ok())
            {
                t.pos += 1;
                match t.peek().and_then(|s| s.parse::<u8>().ok()) {
                    Some(code) => {
                        t.pos += 1;
                        flags.push(format!("{ty} {code}"));
                    }
                    None => flags.push(ty.to_string()),
                }
            }
            while let Some(f) = t.peek() {
                t.pos += 1;
                if FLAGS.contains(&f) || (v6 && FLAGS6.contains(&f)) {
                    flags.push(f.to_string());
                } else if FLAGS_WITH_ARG.contains(&f) {
                    let arg = t.next()?;
                    flags.push(format!("{f} {arg}"));
                } else {
                    return Err(t.bad());
                }
            }
            Ok((
                seq,
                Entry::Ace(Ace {
                    permit: first == "permit",
                    proto: proto.to_string(),
                    src,
                    src_ports,
                    dst,
                    dst_ports,
                    flags,
                }),
            ))
        }
        _ => Err(t.bad()),
    }
}

impl Entry {
    /// The network object-groups the entry refers to.
    pub fn groups(&self) -> Vec<&str> {
        match self {
            Entry::Ace(a) => [&a.src, &a.dst]
                .into_iter()
                .filter_map(|x| match x {
                    Addr::Group(n) => Some(n.as_str()),
                    _ => None,
                })
                .collect(),
            Entry::Remark(_) | Entry::Std { .. } => Vec::new(),
        }
    }
}

fn contiguous_prefix(w: Ipv4Addr) -> Option<u32> {
    let inv = !u32::from(w);
    (inv.leading_ones() == inv.count_ones()).then(|| inv.count_ones())
}

fn render_addr(out: &mut String, a: &Addr, dialect: Dialect) {
    match (a, dialect) {
        (Addr::Any, _) => out.push_str("any"),
        // IOS prints IPv6 addresses in capitals, NX-OS in lower case.
        (Addr::V6(ip, 128), Dialect::Ios) => {
            let _ = write!(out, "host {}", ip.to_string().to_uppercase());
        }
        (Addr::V6(ip, len), Dialect::Ios) => {
            let _ = write!(out, "{}/{len}", ip.to_string().to_uppercase());
        }
        (Addr::V6(ip, len), Dialect::Nxos) => {
            let _ = write!(out, "{ip}/{len}");
        }
        (Addr::Group(name), Dialect::Ios) => {
            let _ = write!(out, "object-group {name}");
        }
        (Addr::Group(name), Dialect::Nxos) => {
            let _ = write!(out, "addrgroup {name}");
        }
        (Addr::Wild(ip, w), Dialect::Ios) if w.is_unspecified() => {
            let _ = write!(out, "host {ip}");
        }
        (Addr::Wild(ip, w), Dialect::Ios) => {
            let _ = write!(out, "{ip} {w}");
        }
        (Addr::Wild(ip, w), Dialect::Nxos) => match contiguous_prefix(*w) {
            Some(len) => {
                let _ = write!(out, "{ip}/{len}");
            }
            None => {
                let _ = write!(out, "{ip} {w}");
            }
        },
    }
}

fn render_ports(out: &mut String, p: &Option<Ports>, proto: &str) {
    let Some(p) = p else { return };
    let name = |n: u16| port_name(proto, n);
    let _ = match p {
        Ports::Eq(v) => write!(
            out,
            " eq {}",
            v.iter().map(|n| name(*n)).collect::<Vec<_>>().join(" ")
        ),
        Ports::Neq(n) => write!(out, " neq {}", name(*n)),
        Ports::Lt(n) => write!(out, " lt {}", name(*n)),
        Ports::Gt(n) => write!(out, " gt {}", name(*n)),
        Ports::Range(a, b) => write!(out, " range {} {}", name(*a), name(*b)),
    };
}

/// How the platform prints an entry (without its sequence number).
pub fn render(entry: &Entry, dialect: Dialect) -> String {
    match entry {
        Entry::Remark(r) => format!("remark {r}"),
        Entry::Std { permit, src, log } => {
            let mut out = String::from(if *permit { "permit " } else { "deny " });
            match src {
                // The running config shows a host as the bare address.
                Addr::Wild(ip, w) if w.is_unspecified() => {
                    let _ = write!(out, "{ip}");
                }
                other => render_addr(&mut out, other, Dialect::Ios),
            }
            if *log {
                out.push_str(" log");
            }
            out
        }
        Entry::Ace(a) => {
            let mut out = String::from(if a.permit { "permit " } else { "deny " });
            out.push_str(&a.proto);
            out.push(' ');
            render_addr(&mut out, &a.src, dialect);
            render_ports(&mut out, &a.src_ports, &a.proto);
            out.push(' ');
            render_addr(&mut out, &a.dst, dialect);
            render_ports(&mut out, &a.dst_ports, &a.proto);
            for f in &a.flags {
                out.push(' ');
                out.push_str(f);
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ios(line: &str) -> String {
        render(
            &parse_entry(line, Dialect::Ios, AclKind::Extended)
                .unwrap()
                .1,
            Dialect::Ios,
        )
    }

    #[test]
    fn ios_prints_names_and_hosts() {
        assert_eq!(
            ios("permit udp 10.0.0.53 0.0.0.0 any eq 53"),
            "permit udp host 10.0.0.53 any eq domain"
        );
        assert_eq!(
            ios("permit tcp 10.0.0.0 0.0.0.255 any eq 22"),
            "permit tcp 10.0.0.0 0.0.0.255 any eq 22"
        );
        assert_eq!(ios("20 deny ip any any log"), "deny ip any any log");
    }

    #[test]
    fn nxos_prints_prefixes() {
        let (_, e) = parse_entry(
            "permit tcp 10.0.0.0 0.0.0.255 host 192.0.2.1 eq www",
            Dialect::Nxos,
            AclKind::Extended,
        )
        .unwrap();
        assert_eq!(
            render(&e, Dialect::Nxos),
            "permit tcp 10.0.0.0/24 192.0.2.1/32 eq www"
        );
    }

    #[test]
    fn errors_point_at_the_bad_token() {
        assert_eq!(
            parse_entry("permti tcp any any", Dialect::Ios, AclKind::Extended)
                .unwrap_err()
                .index,
            0
        );
        assert_eq!(
            parse_entry(
                "permit tcp any any eq sshh",
                Dialect::Ios,
                AclKind::Extended
            )
            .unwrap_err()
            .index,
            5
        );
        assert!(
            parse_entry("permit tcp any", Dialect::Ios, AclKind::Extended)
                .unwrap_err()
                .incomplete
        );
        assert!(parse_entry("permit ip 10.0.0.0/8 any", Dialect::Ios, AclKind::Extended).is_err());
    }

    #[test]
    fn standard_and_ipv6_entries() {
        let std = |l: &str| {
            parse_entry(l, Dialect::Ios, AclKind::Standard).map(|(_, e)| render(&e, Dialect::Ios))
        };
        assert_eq!(std("permit host 10.0.0.1").unwrap(), "permit 10.0.0.1");
        assert_eq!(
            std("deny 10.0.0.7 0.0.0.255 log").unwrap(),
            "deny 10.0.0.0 0.0.0.255 log"
        );
        assert!(std("permit tcp any any").is_err());
        let v6 = |l: &str, d| parse_entry(l, d, AclKind::Ipv6).map(|(s, e)| (s, render(&e, d)));
        assert_eq!(
            v6(
                "sequence 20 permit tcp 2001:db8::/32 any eq 22",
                Dialect::Ios
            )
            .unwrap(),
            (Some(20), "permit tcp 2001:DB8::/32 any eq 22".to_string())
        );
        assert!(v6("20 permit ipv6 any any", Dialect::Ios).is_err());
        assert_eq!(
            v6("20 permit ipv6 host 2001:DB8::1 any", Dialect::Nxos).unwrap(),
            (Some(20), "permit ipv6 2001:db8::1/128 any".to_string())
        );
        assert!(v6("permit ip any any", Dialect::Nxos).is_err());
        assert!(v6("permit ipv6 10.0.0.0/8 any", Dialect::Nxos).is_err());
    }
}
