//! IOS's own rules for standard ACLs, as Cisco documents them (the CCNA
//! "IOS reorders standard ACLs" material and the `% Access rule can't be
//! configured at higher sequence num` refusal):
//! - a host entry (one address) is refused at a higher sequence number
//!   than a range entry that already covers it;
//! - host entries are kept, shown and processed first, in the order of an
//!   internal hash, not as entered; range entries (and `any`) follow in
//!   sequence order. Sequence numbers still say the order of entry.
//!
//! The lab's hash is its own; what matters is that it is not the order of
//! entry, as on a real device. Remarks keep their place among the ranges.

use std::net::Ipv4Addr;

use super::acl::{Acl, AclKind, Addr, Entry};

/// The address of a host entry of a standard ACL.
fn host(e: &Entry) -> Option<Ipv4Addr> {
    match e {
        Entry::Std {
            src: Addr::Wild(a, w),
            ..
        } if w.is_unspecified() => Some(*a),
        _ => None,
    }
}

/// Whether a range entry (`any` included) covers `ip`.
fn covers(e: &Entry, ip: Ipv4Addr) -> bool {
    match e {
        Entry::Std { src: Addr::Any, .. } => true,
        Entry::Std {
            src: Addr::Wild(a, w),
            ..
        } if !w.is_unspecified() => u32::from(ip) & !u32::from(*w) == u32::from(*a),
        _ => false,
    }
}

/// The sequence number of the range entry that refuses `entry` at `seq`,
/// if one does.
pub fn refused_by(acl: &Acl, seq: u32, entry: &Entry) -> Option<u32> {
    if acl.kind != AclKind::Standard {
        return None;
    }
    let ip = host(entry)?;
    acl.entries
        .range(..seq)
        .find(|(_, e)| covers(e, ip))
        .map(|(s, _)| *s)
}

/// The lab's stand-in for IOS's host hash: a fixed scramble of the address.
fn hash(ip: Ipv4Addr) -> u32 {
    u32::from(ip).wrapping_mul(0x9E37_79B1).rotate_left(3)
}

/// The entries in the order IOS shows and processes them: for a standard
/// ACL, hosts first in hash order, then the rest in sequence order; for
/// any other ACL, sequence order.
pub fn shown(acl: &Acl) -> Vec<(u32, &Entry)> {
    let mut all: Vec<(u32, &Entry)> = acl.entries.iter().map(|(s, e)| (*s, e)).collect();
    if acl.kind == AclKind::Standard {
        all.sort_by_key(|(seq, e)| match host(e) {
            Some(ip) => (0, hash(ip), *seq),
            None => (1, 0, *seq),
        });
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn std(permit: bool, a: &str, w: &str) -> Entry {
        Entry::Std {
            permit,
            src: Addr::Wild(a.parse().unwrap(), w.parse().unwrap()),
            log: false,
        }
    }

    fn acl(entries: Vec<(u32, Entry)>) -> Acl {
        Acl {
            kind: AclKind::Standard,
            entries: entries.into_iter().collect(),
            statistics: false,
        }
    }

    #[test]
    fn hosts_come_first_not_in_entry_order_ranges_keep_theirs() {
        let a = acl(vec![
            (10, std(false, "192.168.10.0", "0.0.0.255")),
            (20, std(false, "192.168.11.0", "0.0.0.255")),
            (30, std(true, "10.1.1.1", "0.0.0.0")),
            (40, std(true, "10.1.1.2", "0.0.0.0")),
            (50, std(true, "10.1.1.3", "0.0.0.0")),
            (60, std(true, "10.1.1.4", "0.0.0.0")),
        ]);
        let seqs: Vec<u32> = shown(&a).iter().map(|(s, _)| *s).collect();
        assert_eq!(&seqs[4..], [10, 20]);
        assert_ne!(&seqs[..4], [30, 40, 50, 60], "hash order, not entry order");
    }

    #[test]
    fn a_host_under_an_earlier_range_is_refused() {
        let a = acl(vec![(10, std(false, "192.168.10.0", "0.0.0.255"))]);
        let inside = std(true, "192.168.10.10", "0.0.0.0");
        assert_eq!(refused_by(&a, 20, &inside), Some(10));
        assert_eq!(refused_by(&a, 5, &inside), None, "before the range: fine");
        assert_eq!(
            refused_by(&a, 20, &std(true, "192.168.11.10", "0.0.0.0")),
            None
        );
        let any = acl(vec![(
            10,
            Entry::Std {
                permit: false,
                src: Addr::Any,
                log: false,
            },
        )]);
        assert_eq!(refused_by(&any, 20, &inside), Some(10));
    }
}
