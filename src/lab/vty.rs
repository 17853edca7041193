//! Whether the vty lines take a login: an access-class evaluated as the
//! device does for an SSH connection (first matching entry decides;
//! nothing matched is denied).

use std::net::IpAddr;

use super::acl::{Addr, Entry, Ports};

impl Addr {
    /// Whether `ip` falls in the address (an object-group, whose members
    /// the lab does not model, matches nothing).
    pub(super) fn matches(&self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Addr::Any, _) => true,
            (Addr::Wild(a, w), IpAddr::V4(ip)) => u32::from(ip) & !u32::from(*w) == u32::from(*a),
            (Addr::V6(a, len), IpAddr::V6(ip)) => {
                let mask = if *len == 0 {
                    0
                } else {
                    u128::MAX << (128 - len)
                };
                u128::from(ip) & mask == u128::from(*a)
            }
            _ => false,
        }
    }
}

impl Ports {
    pub(super) fn matches(&self, port: u16) -> bool {
        match self {
            Ports::Eq(v) => v.contains(&port),
            Ports::Neq(p) => *p != port,
            Ports::Lt(p) => port < *p,
            Ports::Gt(p) => port > *p,
            Ports::Range(a, b) => (*a..=*b).contains(&port),
        }
    }
}

impl Entry {
    /// For an SSH login from `peer` to `local` (port 22): `Some(permit)`
    /// when this entry decides it, `None` when it does not match.
    pub fn admits_ssh(&self, peer: IpAddr, local: IpAddr) -> Option<bool> {
        match self {
            Entry::Remark(_) => None,
            Entry::Std { permit, src, .. } => src.matches(peer).then_some(*permit),
            Entry::Ace(a) => {
                let proto = matches!(a.proto.as_str(), "ip" | "ipv6" | "tcp" | "6");
                let ports = |p: &Option<Ports>, port| p.as_ref().is_none_or(|p| p.matches(port));
                // The client's port is one of the ephemeral ones.
                let hit = proto
                    && a.src.matches(peer)
                    && a.src_ports.as_ref().is_none_or(|p| p.matches(50_000))
                    && a.dst.matches(local)
                    && ports(&a.dst_ports, 22)
                    && !a.flags.iter().any(|f| f == "established");
                hit.then_some(a.permit)
            }
        }
    }
}
