//! IOS's own rules for standard ACLs (named and numbered), which make them
//! unlike every other family:
//! - IOS keeps, shows and processes **host entries first**, in the order of
//!   an internal hash, then the range entries (`any` included) in sequence
//!   order. `show running-config` and `show access-lists` both list them
//!   so; the sequence numbers still tell the order of entry.
//! - It refuses a host entry at a higher sequence number than a range that
//!   already covers it (`% Access rule can't be configured at higher
//!   sequence num as it is part of the existing rule at sequence num N`),
//!   so hosts first never changes what the ACL does.
//!
//! So nightshift compares a standard ACL the way IOS processes it (hosts as
//! a set, then the rest in order: [`processed_order`]), `check-config` refuses
//! the host IOS would refuse ([`covered_by`]), and a change knows each
//! entry's sequence number from `show ip access-lists` instead of from the
//! order shown (`ios.rs` reads it back after resequencing).

use super::ace::Entry;
use super::family::AclRef;
use super::plan;
use crate::platform::Platform;

const IOS: Platform = Platform::CiscoIos;

/// A standard rule's source as (address, wildcard), from its canonical
/// text (`permit 10.1.1.1/32`, `deny 10.0.0.0 0.255.0.255 log`, `permit any`).
fn source(e: &Entry) -> Option<(u32, u32)> {
    let Entry::Rule(text) = e else {
        return None;
    };
    let mut words = text.split_whitespace().skip(1);
    let first = words.next()?;
    if first == "any" {
        return Some((0, u32::MAX));
    }
    if let Some((a, len)) = first.split_once('/') {
        let a: std::net::Ipv4Addr = a.parse().ok()?;
        let len: u32 = len.parse().ok()?;
        let wild = u32::MAX.checked_shr(len).unwrap_or(0);
        return Some((u32::from(a), wild));
    }
    let a: std::net::Ipv4Addr = first.parse().ok()?;
    let w: std::net::Ipv4Addr = words.next()?.parse().ok()?;
    Some((u32::from(a), u32::from(w)))
}

/// A host entry: one address (`host A`, `A`, `A 0.0.0.0`).
pub fn is_host(e: &Entry) -> bool {
    source(e).is_some_and(|(_, w)| w == 0)
}

/// The range entry among `earlier` that covers the host entry `e`, if any:
/// IOS refuses `e` after it.
pub fn covered_by<'a>(earlier: impl IntoIterator<Item = &'a Entry>, e: &Entry) -> Option<usize> {
    let (ip, 0) = source(e)? else {
        return None;
    };
    earlier
        .into_iter()
        .position(|r| source(r).is_some_and(|(base, w)| w != 0 && ip & !w == base & !w))
}

/// The order in which IOS processes the entries, as indices: hosts first
/// (sorted, as their own order is IOS's hash), then the rest in order.
pub fn processed_order(entries: &[Entry]) -> Vec<usize> {
    let mut hosts: Vec<usize> = (0..entries.len())
        .filter(|&i| is_host(&entries[i]))
        .collect();
    hosts.sort_by_key(|&i| entries[i].to_string());
    hosts.extend((0..entries.len()).filter(|&i| !is_host(&entries[i])));
    hosts
}

/// The entries as IOS processes them ([`processed_order`]).
#[cfg(test)]
fn as_processed(entries: &[Entry]) -> Vec<Entry> {
    processed_order(entries)
        .into_iter()
        .map(|i| entries[i].clone())
        .collect()
}

/// The resequencing step that leaves room for every new entry in any gap
/// and below the first entry.
pub fn step(new_len: usize) -> u64 {
    (new_len as u64 + 1).next_multiple_of(10)
}

/// The entries in sequence order with their numbers, after
/// `ip access-list resequence NAME STEP STEP`: `shown` is what the running
/// config lists (remarks included, hosts first), `listed` what
/// `show ip access-lists` lists (sequence numbers, no remarks). A number
/// the listing skips is a remark's; remarks keep their order.
pub fn in_seq_order(
    shown: &[Entry],
    listed: &[(u32, Entry)],
    step: u64,
) -> Result<Vec<(u64, Entry)>, String> {
    let mut remarks = shown.iter().filter(|e| !e.is_rule());
    let mut out = Vec::with_capacity(shown.len());
    for k in 1..=shown.len() as u64 {
        let seq = k * step;
        match listed.iter().find(|(s, _)| u64::from(*s) == seq) {
            Some((_, e)) => out.push((seq, e.clone())),
            None => match remarks.next() {
                Some(r) => out.push((seq, r.clone())),
                None => return Err(format!("no entry at sequence number {seq}")),
            },
        }
    }
    let mut rules: Vec<String> = shown
        .iter()
        .filter(|e| e.is_rule())
        .map(ToString::to_string)
        .collect();
    let mut got: Vec<String> = out
        .iter()
        .filter(|(_, e)| e.is_rule())
        .map(|(_, e)| e.to_string())
        .collect();
    rules.sort();
    got.sort();
    if rules != got || remarks.next().is_some() || listed.len() != got.len() {
        return Err("show ip access-lists and the running config list different entries".into());
    }
    Ok(out)
}

/// The commands that turn `old` (in sequence order, numbered) into
/// `target`, in two lists like `ios.rs`'s: new hosts go in first,
/// below every entry (nothing before them can cover them); the ranges and
/// remarks are planned in order as in any ACL; kept hosts stay; old hosts
/// and ranges go last.
pub fn commands(
    acl: &AclRef<'_>,
    old: &[(u64, Entry)],
    target: &[(Entry, String)],
) -> (Vec<String>, Vec<String>) {
    let (old_hosts, old_rest): (Vec<_>, Vec<_>) = old.iter().partition(|(_, e)| is_host(e));
    let (new_hosts, new_rest): (Vec<_>, Vec<_>) = target.iter().partition(|(e, _)| is_host(e));
    let mut add = vec![acl.header(IOS)];
    let mut below = 0;
    for (e, text) in &new_hosts {
        if !old_hosts.iter().any(|(_, o)| o == e) {
            below += 1;
            add.push(acl.numbered(IOS, below, text));
        }
    }
    let rest_old: Vec<Entry> = old_rest.iter().map(|(_, e)| e.clone()).collect();
    let rest_new: Vec<Entry> = new_rest.iter().map(|(e, _)| e.clone()).collect();
    let p = plan::plan(&rest_old, &rest_new);
    let gaps = p.gaps();
    let number = |j: usize| {
        gaps.iter()
            .find(|g| g.0 == j)
            .map_or(0, |&(_, prev, rank)| {
                prev.map_or(below, |i| old_rest[i].0) + rank as u64
            })
    };
    add.extend(
        p.added
            .iter()
            .map(|&j| acl.numbered(IOS, number(j), &new_rest[j].1)),
    );
    let mut finish = Vec::new();
    for &(i, j) in &p.moved {
        finish.push(acl.no_seq(IOS, old_rest[i].0));
        finish.push(acl.numbered(IOS, number(j), &new_rest[j].1));
    }
    for (seq, e) in &old_hosts {
        if !new_hosts.iter().any(|(n, _)| n == e) {
            finish.push(acl.no_seq(IOS, *seq));
        }
    }
    finish.extend(p.removed.iter().map(|&i| acl.no_seq(IOS, old_rest[i].0)));
    finish.push("exit".into());
    finish.push(acl.resequence(IOS, 10, 10));
    finish.push("end".into());
    (add, finish)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::acl::Family;
    use crate::jobs::acl::ace::parse_entry;

    fn e(line: &str) -> Entry {
        parse_entry(line, Family::Standard).unwrap().entry
    }

    #[test]
    fn hosts_in_every_spelling() {
        for h in [
            "permit host 10.1.1.1",
            "permit 10.1.1.1",
            "permit 10.1.1.1 0.0.0.0",
            "deny 10.1.1.1 log",
        ] {
            assert!(is_host(&e(h)), "{h}");
        }
        for r in [
            "permit any",
            "permit 10.0.0.0 0.255.255.255",
            "deny 10.1.0.0 0.0.255.0",
            "remark x",
        ] {
            assert!(!is_host(&e(r)), "{r}");
        }
    }

    #[test]
    fn a_host_inside_an_earlier_range_is_found() {
        let earlier = [
            e("remark x"),
            e("permit 192.168.11.0 0.0.0.255"),
            e("deny 192.168.10.0 0.0.0.255"),
        ];
        assert_eq!(covered_by(&earlier, &e("permit 192.168.10.10")), Some(2));
        assert_eq!(covered_by(&earlier, &e("permit 192.168.12.10")), None);
        assert_eq!(covered_by(&[e("deny any")], &e("permit 10.1.1.1")), Some(0));
        // Non-contiguous wildcards.
        let odd = [e("permit 10.0.10.0 0.255.0.255")];
        assert_eq!(covered_by(&odd, &e("permit 10.7.10.9")), Some(0));
        assert_eq!(covered_by(&odd, &e("permit 10.7.11.9")), None);
        // A range after a host is not a refusal.
        assert_eq!(
            covered_by(&[e("permit 10.1.1.1")], &e("deny 10.0.0.0 0.255.255.255")),
            None
        );
    }

    fn acl() -> AclRef<'static> {
        AclRef {
            family: Family::Standard,
            name: "VTY",
        }
    }

    fn target(lines: &[&str]) -> Vec<(Entry, String)> {
        lines.iter().map(|l| (e(l), (*l).to_string())).collect()
    }

    #[test]
    fn sequence_numbers_come_from_the_listing_remarks_fill_the_gaps() {
        // Entered: remark, range, host; shown: host first.
        let shown = [
            e("permit 10.9.9.9"),
            e("remark ops"),
            e("deny 10.2.0.0 0.0.255.255"),
        ];
        let listed = [
            (30, e("permit 10.9.9.9")),
            (20, e("deny 10.2.0.0 0.0.255.255")),
        ];
        let order = in_seq_order(&shown, &listed, 10).unwrap();
        assert_eq!(
            order,
            [
                (10, e("remark ops")),
                (20, e("deny 10.2.0.0 0.0.255.255")),
                (30, e("permit 10.9.9.9"))
            ]
        );
        assert!(in_seq_order(&shown, &listed[..1], 10).is_err());
    }

    #[test]
    fn new_hosts_go_below_everything_old_ones_go_last() {
        // The old range covers the new host: above it, IOS would refuse it.
        let old = [
            (20, e("permit 10.0.0.0 0.255.255.255")),
            (40, e("permit 192.168.1.1")),
            (60, e("deny any")),
        ];
        let (add, finish) = commands(
            &acl(),
            &old,
            &target(&["deny 10.1.1.1", "remark rest", "deny any"]),
        );
        assert_eq!(
            add,
            [
                "ip access-list standard VTY",
                "1 deny 10.1.1.1",
                "2 remark rest"
            ]
        );
        assert_eq!(
            finish,
            [
                "no 40",
                "no 20",
                "exit",
                "ip access-list resequence VTY 10 10",
                "end"
            ]
        );
    }

    #[test]
    fn moved_ranges_are_numbered_between_the_kept_ones_whatever_hosts_sit_there() {
        let old = [
            (10, e("permit 10.1.0.0 0.0.255.255")),
            (20, e("permit 172.16.1.1")),
            (30, e("deny 10.2.0.0 0.0.255.255")),
            (40, e("permit any")),
        ];
        let (add, finish) = commands(
            &acl(),
            &old,
            &target(&[
                "permit 172.16.1.1",
                "deny 10.2.0.0 0.0.255.255",
                "permit 10.1.0.0 0.0.255.255",
                "permit any",
            ]),
        );
        assert_eq!(add, ["ip access-list standard VTY"]);
        assert_eq!(
            finish[..2],
            [
                "no 10".to_string(),
                "31 permit 10.1.0.0 0.0.255.255".to_string()
            ]
        );
    }

    #[test]
    fn compared_as_processed() {
        let written = [
            e("remark ops"),
            e("permit 10.9.9.9"),
            e("permit 10.1.1.1"),
            e("deny 10.2.0.0 0.0.255.255"),
            e("permit any"),
        ];
        let shown = [
            e("permit 10.1.1.1"),
            e("permit 10.9.9.9"),
            e("remark ops"),
            e("deny 10.2.0.0 0.0.255.255"),
            e("permit any"),
        ];
        assert_eq!(as_processed(&written), as_processed(&shown));
        let ranges_swapped = [
            e("permit 10.1.1.1"),
            e("permit 10.9.9.9"),
            e("remark ops"),
            e("permit any"),
            e("deny 10.2.0.0 0.0.255.255"),
        ];
        assert_ne!(as_processed(&written), as_processed(&ranges_swapped));
    }
}
