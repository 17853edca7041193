//! Standard ACLs pushed to the lab's IOS, generated: any valid old ACL
//! (hosts between ranges, remarks, numbered in the order entered) replaced
//! by any valid new one over real SSH. IOS lists the hosts first in hash
//! order and refuses a host after a range that covers it; whatever the two
//! ACLs, the push is accepted line for line, the device ends up with the
//! new ACL as IOS processes it (the hosts as a set, the rest in order), the
//! interface is never unprotected, and a second push sends nothing.

use std::net::Ipv4Addr;
use std::sync::Arc;

use nightshift::device::{DeviceLink, KnownHosts};
use nightshift::jobs::acl::{AclJob, Family, Status, push_acl};
use nightshift::lab::{AclKind, Lab, LabSpec};
use proptest::prelude::*;

use crate::common::device::{Fixture, login};

const ACL: &str = "MGMT";

/// One entry, its source picked from a small pool so that hosts and ranges
/// overlap often.
fn entry() -> impl Strategy<Value = String> {
    let action = prop_oneof![Just("permit"), Just("deny")];
    let source = prop_oneof![
        4 => (0u8..4, 1u8..7).prop_map(|(n, h)| format!("10.0.{n}.{h}")),
        2 => (0u8..4).prop_map(|n| format!("10.0.{n}.0 0.0.0.255")),
        1 => Just("10.0.0.0 0.0.3.255".to_string()),
        1 => Just("any".to_string()),
    ];
    prop_oneof![
        8 => (action, source, any::<bool>())
            .prop_map(|(a, s, log)| format!("{a} {s}{}", if log { " log" } else { "" })),
        1 => (0u8..3).prop_map(|n| format!("remark note {n}")),
    ]
}

/// (address, wildcard) of a standard entry, `None` for a remark.
fn source(line: &str) -> Option<(u32, u32)> {
    let w: Vec<&str> = line.split_whitespace().collect();
    if w[0] == "remark" {
        return None;
    }
    if w[1] == "any" {
        return Some((0, u32::MAX));
    }
    let a = u32::from(w[1].parse::<Ipv4Addr>().ok()?);
    let wild = w
        .get(2)
        .and_then(|t| t.parse::<Ipv4Addr>().ok())
        .map_or(0, u32::from);
    Some((a, wild))
}

/// What IOS would take: no rule twice (by source and action), no remark
/// twice, no host after a range that covers it; at least one rule.
fn valid(lines: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in lines {
        // One entry per source (and one per remark text).
        let key = |x: &str| match source(x) {
            Some(s) => format!("{s:?}"),
            None => x.to_string(),
        };
        if out.iter().any(|o| key(o) == key(&l)) {
            continue;
        }
        if let Some((ip, 0)) = source(&l) {
            let covered = out
                .iter()
                .filter_map(|o| source(o))
                .any(|(base, w)| w != 0 && ip & !w == base & !w);
            if covered {
                continue;
            }
        }
        out.push(l);
    }
    if !out.iter().any(|l| source(l).is_some()) {
        out.push("deny any".into());
    }
    out
}

fn acl() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(entry(), 1..10).prop_map(valid)
}

/// As IOS processes it: hosts sorted, then the rest in order.
fn processed(lines: &[String]) -> Vec<String> {
    let is_host = |l: &String| matches!(source(l), Some((_, 0)));
    let mut hosts: Vec<String> = lines.iter().filter(|l| is_host(l)).cloned().collect();
    hosts.sort();
    hosts.extend(lines.iter().filter(|l| !is_host(l)).cloned());
    hosts
}

fn held(lab: &Lab) -> Vec<String> {
    lab.acl_of("ios-001", AclKind::Standard, ACL)
        .unwrap_or_default()
        .into_iter()
        .map(|(_, t)| t)
        .collect()
}

#[test]
fn any_standard_acl_replaces_any_other_on_ios() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let f = rt.block_on(Fixture::new(LabSpec {
        ios: 1,
        nxos: 0,
        ..Default::default()
    }));
    let link = DeviceLink {
        target: f.target("ios-001"),
        login: login(),
        known: Arc::new(KnownHosts::load(&f.dir.path().join("known_hosts")).unwrap()),
        gate: None,
        on_step: None,
        may_change: None,
    };
    proptest!(crate::config(48), |(old in acl(), new in acl())| {
        let old_refs: Vec<&str> = old.iter().map(String::as_str).collect();
        f.lab.seed_acl_of("ios-001", AclKind::Standard, ACL, &old_refs).unwrap();
        f.lab.bind("ios-001", AclKind::Standard, ACL, Some(1)).unwrap();
        let job = AclJob::new(ACL, Family::Standard, &new, true, true, 10).unwrap();
        let r = rt.block_on(push_acl(&link, &job, false, None, None));
        let unchanged = processed(&old) == processed(&new);
        let want = if unchanged { Status::Unchanged } else { Status::Changed };
        prop_assert_eq!(r.status, want, "{:?}", r);
        prop_assert_eq!(processed(&held(&f.lab)), processed(&new));
        let again = rt.block_on(push_acl(&link, &job, false, None, None));
        prop_assert_eq!(again.status, Status::Unchanged, "{:?}", again);
    });
    let stats = f.lab.stats();
    assert_eq!(stats.devices[0].unprotected_ms, 0, "never unprotected");
    rt.block_on(f.lab.shutdown());
}
