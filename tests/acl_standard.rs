//! IOS's own order for standard ACLs, against the lab: IOS lists and
//! checks a standard ACL's host entries first, in hash order, and refuses
//! a host after a range that covers it. A change whose hosts sit between
//! ranges, with hosts added, removed and kept and a range moved, reaches
//! the intent as IOS processes it, named and numbered, never unprotected;
//! the second run sends nothing; and `nightshift rollback` puts back the
//! ACLs the run found, of every family it changed (standard, numbered,
//! IPv6 on IOS and NX-OS).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::Ipv4Addr;

use common::PASSWORD;
use nightshift::lab::{AclKind, Lab, LabSpec};

/// Entered in this order; the hosts sit between the ranges.
const BEFORE: &[&str] = &[
    "remark ops",
    "deny 10.2.0.0 0.0.255.255",
    "permit 172.16.1.1",
    "permit 10.1.1.1",
    "permit 192.168.1.0 0.0.0.255",
    "permit 10.7.7.7",
    "deny any log",
];
/// 172.16.1.1 leaves, 10.8.8.8 comes, 192.168.1.0/24 moves up.
const AFTER: &str = "remark ops
permit 10.1.1.1
permit 192.168.1.0 0.0.0.255
deny 10.2.0.0 0.0.255.255
permit 10.8.8.8
permit 10.7.7.7
deny any log";
const V6_BEFORE: &[&str] = &["permit tcp 2001:db8::/32 any eq 22", "deny ipv6 any any"];
const V6_AFTER: &str = "permit tcp 2001:db8::/32 any eq 22
permit icmp any any
deny ipv6 any any log";

fn is_host(line: &str) -> bool {
    let w: Vec<&str> = line.split_whitespace().collect();
    w.len() >= 2 && w[1].parse::<Ipv4Addr>().is_ok() && w.get(2).is_none_or(|t| *t == "log")
}

/// As IOS processes a standard ACL: hosts (a set; sorted here), then the
/// rest in sequence order.
fn processed<S: AsRef<str>>(lines: &[S]) -> Vec<String> {
    let mut hosts: Vec<String> = lines
        .iter()
        .map(|l| l.as_ref().to_string())
        .filter(|l| is_host(l))
        .collect();
    hosts.sort();
    hosts.extend(
        lines
            .iter()
            .map(|l| l.as_ref().to_string())
            .filter(|l| !is_host(l)),
    );
    hosts
}

fn texts(held: Option<Vec<(u32, String)>>) -> Vec<String> {
    held.unwrap_or_default()
        .into_iter()
        .map(|(_, t)| t)
        .collect()
}

fn with_jobs(config: &std::path::Path) {
    let jobs = [
        common::acl_job("vty", "\"ios-*\"", "VTY", "family = \"standard\"\n", AFTER),
        common::acl_job("legacy-15", "\"ios-*\"", "15", "", AFTER),
        common::acl_job(
            "edge6",
            "\"ios-*\", \"nxos-*\"",
            "EDGE6",
            "family = \"ipv6\"\n",
            V6_AFTER,
        ),
    ]
    .concat();
    common::window_jobs(config, &jobs, &["vty", "legacy-15", "edge6"]);
}

fn seed(lab: &Lab) {
    for d in lab.devices() {
        let n = &d.name;
        if n.starts_with("ios-") {
            for name in ["VTY", "15"] {
                lab.seed_acl_of(n, AclKind::Standard, name, BEFORE).unwrap();
            }
            lab.bind(n, AclKind::Standard, "VTY", Some(1)).unwrap();
            lab.bind(n, AclKind::Standard, "15", Some(2)).unwrap();
            let v6: Vec<String> = V6_BEFORE
                .iter()
                .enumerate()
                .map(|(k, l)| format!("sequence {} {l}", 10 * (k + 1)))
                .collect();
            let v6: Vec<&str> = v6.iter().map(String::as_str).collect();
            lab.seed_acl_of(n, AclKind::Ipv6, "EDGE6", &v6).unwrap();
        } else {
            lab.seed_acl_of(n, AclKind::Ipv6, "EDGE6", V6_BEFORE)
                .unwrap();
        }
        lab.bind(n, AclKind::Ipv6, "EDGE6", Some(1)).unwrap();
    }
}

/// A device and its VTY, 15 and EDGE6 ACLs.
type Held = (String, Vec<String>, Vec<String>, Vec<String>);

/// Every managed ACL of every device, as the lab holds it.
fn held(lab: &Lab) -> Vec<Held> {
    lab.devices()
        .iter()
        .map(|d| {
            (
                d.name.clone(),
                texts(lab.acl_of(&d.name, AclKind::Standard, "VTY")),
                texts(lab.acl_of(&d.name, AclKind::Standard, "15")),
                texts(lab.acl_of(&d.name, AclKind::Ipv6, "EDGE6")),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_listed_first_are_changed_by_their_sequence_numbers_and_rolled_back() {
    let (lab, _dir, config) = common::lab_with_config(LabSpec {
        ios: 6,
        nxos: 3,
        ..Default::default()
    })
    .await;
    seed(&lab);
    with_jobs(&config);
    let before = held(&lab);

    // The lab lists hosts first, and not in the order they were entered,
    // like IOS: a change that took the listing for the sequence order
    // would delete the wrong entries.
    let shown = common::ios_enable(&lab, "ios-001")
        .await
        .cmd("show ip access-lists VTY")
        .await;
    let listed: Vec<(u32, String)> = shown
        .lines()
        .filter_map(|l| {
            let (seq, rest) = l.trim().split_once(' ')?;
            let rest = rest.split(" (").next()?.trim();
            Some((seq.parse().ok()?, rest.to_string()))
        })
        .collect();
    assert_eq!(listed.len(), 6, "{shown}");
    assert!(listed[..3].iter().all(|(_, e)| is_host(e)), "{shown}");
    assert!(!listed[3..].iter().any(|(_, e)| is_host(e)), "{shown}");
    assert!(
        !listed.windows(2).all(|w| w[0].0 < w[1].0),
        "not in sequence order: {shown}"
    );

    let run = common::run_json(&config, &["run", "--window", "nightly", "--now"], PASSWORD).await;
    assert_eq!(run.code, Some(0), "{}", run.text());
    let statuses = common::statuses(&run.json);
    assert_eq!(statuses.len(), 6 * 3 + 3, "{}", run.text());
    assert!(statuses.iter().all(|s| *s == "changed"), "{}", run.text());
    let run_id = run.json["run_id"].as_str().unwrap().to_string();
    // The report's diff follows the device's own order: the hosts IOS
    // lists first are no change.
    let vty = run.json["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["job"] == "vty")
        .unwrap();
    assert_eq!(
        vty["diff"],
        serde_json::json!([
            "- permit 172.16.1.1",
            "+ permit 10.8.8.8",
            "- deny 10.2.0.0 0.0.255.255",
            "+ deny 10.2.0.0 0.0.255.255"
        ]),
        "{vty}"
    );
    let want: Vec<&str> = AFTER.lines().collect();
    for (name, vty, fifteen, _) in held(&lab) {
        if name.starts_with("ios-") {
            assert_eq!(processed(&vty), processed(&want), "{name}: VTY");
            assert_eq!(processed(&fifteen), processed(&want), "{name}: 15");
        }
    }
    for d in lab.stats().devices {
        assert_eq!(d.unprotected_ms, 0, "{}: never unprotected", d.name);
        assert!(d.saved, "{}", d.name);
    }

    // Shown hosts-first, compared as processed: nothing to do.
    let lines = common::config_lines(&lab);
    let again = common::run_json(&config, &["run", "--window", "nightly", "--now"], PASSWORD).await;
    assert!(
        common::statuses(&again.json)
            .iter()
            .all(|s| *s == "unchanged"),
        "{}",
        again.text()
    );
    assert_eq!(common::config_lines(&lab), lines, "nothing sent");

    // Every family back as the run found it.
    let back = common::run_json(&config, &["rollback", &run_id], PASSWORD).await;
    assert_eq!(back.code, Some(0), "{}", back.text());
    let statuses = common::statuses(&back.json);
    assert_eq!(statuses.len(), 21, "{}", back.text());
    assert!(statuses.iter().all(|s| *s == "changed"), "{}", back.text());
    for ((name, vty, fifteen, v6), (_, vty0, fifteen0, v60)) in held(&lab).into_iter().zip(&before)
    {
        assert_eq!(processed(&vty), processed(vty0), "{name}: VTY");
        assert_eq!(processed(&fifteen), processed(fifteen0), "{name}: 15");
        assert_eq!(&v6, v60, "{name}: EDGE6");
    }
    assert_eq!(back.json["kind"], "rollback", "{}", back.text());
    assert_eq!(back.json["rollback_of"], serde_json::json!([run_id]));
    let parts: Vec<&str> = back.json["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    let base = format!("rollback-of-{run_id}");
    assert_eq!(
        parts,
        [
            format!("{base}:edge6"),
            format!("{base}:legacy-15"),
            format!("{base}:vty")
        ],
        "one part per job, the run's last first"
    );
    for d in lab.stats().devices {
        assert_eq!(d.unprotected_ms, 0, "{}: never unprotected", d.name);
    }

    // The same through a rollback job scheduled in a window.
    let run = common::run_json(&config, &["run", "--window", "nightly", "--now"], PASSWORD).await;
    assert!(
        common::statuses(&run.json).iter().all(|s| *s == "changed"),
        "{}",
        run.text()
    );
    let run_id = run.json["run_id"].as_str().unwrap().to_string();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[jobs.undo]\nkind = \"rollback\"\nrun = \"{run_id}\"\n\n[windows.morning]\nschedule = \"{}\"\ntimezone = \"UTC\"\nduration = \"1h\"\njobs = [\"undo\"]\n",
        common::schedule_closed_now()
    ));
    std::fs::write(&config, text).unwrap();
    let back = common::run_json(&config, &["run", "--window", "morning", "--now"], PASSWORD).await;
    assert_eq!(back.code, Some(0), "{}", back.text());
    assert_eq!(back.json["kind"], "rollback", "{}", back.text());
    assert_eq!(back.json["rollback_of"], serde_json::json!([run_id]));
    let statuses = common::statuses(&back.json);
    assert_eq!(statuses.len(), 21, "{}", back.text());
    assert!(statuses.iter().all(|s| *s == "changed"), "{}", back.text());
    assert!(
        back.stdout.contains("## job undo:vty (rollback)"),
        "{}",
        back.stdout
    );
    for ((name, vty, fifteen, v6), (_, vty0, fifteen0, v60)) in held(&lab).into_iter().zip(&before)
    {
        assert_eq!(processed(&vty), processed(vty0), "{name}: VTY");
        assert_eq!(processed(&fifteen), processed(fifteen0), "{name}: 15");
        assert_eq!(&v6, v60, "{name}: EDGE6");
    }
    lab.shutdown().await;
}
