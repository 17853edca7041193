//! Replacing an ACL the way IOS and NX-OS really behave. The lab follows
//! IOS's documented rule: an entry that matches an existing one under
//! another sequence number is accepted and changes nothing. Replacements
//! that keep none, one, all but one or all of the old entries, that
//! reorder kept entries and that keep remarks each reach the intent with no
//! unprotected moment, on both platforms; a big ACL with a few changes
//! sends a few lines; NX-OS checkpoints stay within the platform's limits,
//! and cleanup after a verified commit never turns a change into a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::PASSWORD;
use nightshift::lab::{Lab, LabSpec};

/// (scenario, old ACL, new ACL).
const SCENARIOS: &[(&str, &[&str], &[&str])] = &[
    (
        "the-report-s-example",
        &[
            "permit ip host 10.0.0.1 any",
            "permit tcp any any eq 22",
            "deny ip any any log",
        ],
        &[
            "permit ip host 10.0.0.2 any",
            "permit tcp any any eq 22",
            "deny ip any any log",
        ],
    ),
    (
        "keep-none",
        &[
            "permit tcp any any eq 22",
            "permit udp any any eq 53",
            "deny ip any any",
        ],
        &[
            "permit tcp 10.1.0.0 0.0.255.255 any eq 443",
            "deny ip any any log",
        ],
    ),
    (
        "keep-one",
        &[
            "permit tcp any any eq 22",
            "permit udp any any eq 53",
            "deny ip any any",
        ],
        &[
            "permit tcp any any eq 443",
            "permit udp any any eq 53",
            "deny ip any any log",
        ],
    ),
    (
        "keep-all-but-one",
        &[
            "permit tcp any any eq 22",
            "permit udp any any eq 53",
            "permit icmp any any echo",
            "deny ip any any log",
        ],
        &[
            "permit tcp any any eq 443",
            "permit tcp any any eq 22",
            "permit udp any any eq 53",
            "deny ip any any log",
        ],
    ),
    (
        "keep-all-and-add",
        &["permit tcp any any eq 22", "deny ip any any log"],
        &[
            "permit tcp any any eq 22",
            "permit tcp any any eq 443",
            "deny ip any any log",
        ],
    ),
    (
        "reorder-kept",
        &[
            "permit tcp any any eq 22",
            "permit udp any any eq 53",
            "permit icmp any any echo",
            "deny ip any any log",
        ],
        &[
            "permit icmp any any echo",
            "permit tcp any any eq 22",
            "permit udp any any eq 53",
            "deny ip any any log",
        ],
    ),
    (
        "swap-two",
        &["permit tcp any any eq 22", "permit udp any any eq 53"],
        &["permit udp any any eq 53", "permit tcp any any eq 22"],
    ),
    (
        "keep-remarks",
        &[
            "remark management",
            "permit tcp 10.0.0.0 0.0.0.255 any eq 22",
            "remark catch-all",
            "deny ip any any log",
        ],
        &[
            "remark management",
            "permit tcp 10.0.0.0 0.0.0.255 any eq 22",
            "permit tcp 10.0.0.0 0.0.0.255 any eq 443",
            "remark catch-all",
            "deny ip any any log",
        ],
    ),
    (
        "move-a-remark",
        &[
            "remark old place",
            "permit tcp any any eq 22",
            "deny ip any any log",
        ],
        &[
            "permit tcp any any eq 22",
            "remark old place",
            "deny ip any any log",
        ],
    ),
];

/// A config with one job per scenario (on `ios-NNN` and `nxos-NNN`) and
/// a window `all` with every job.
fn write_jobs(config: &Path, jobs: &[(String, Vec<String>, String, Vec<String>)]) {
    let text = std::fs::read_to_string(config).unwrap();
    let mut text = text[..text.find("[jobs.").unwrap()].to_string();
    for (name, devices, acl, lines) in jobs {
        text.push_str(&format!(
            "[jobs.{name}]\nkind = \"acl\"\ndevices = [{}]\nacl_name = \"{acl}\"\nacl_lines = \"\"\"\n{}\n\"\"\"\n\n",
            devices
                .iter()
                .map(|d| format!("\"{d}\""))
                .collect::<Vec<_>>()
                .join(", "),
            lines.join("\n")
        ));
    }
    text.push_str(&format!(
        "[windows.all]\nschedule = \"{}\"\ntimezone = \"UTC\"\nduration = \"4h\"\njobs = [{}]\n",
        common::schedule_closed_now(),
        jobs.iter()
            .map(|j| format!("\"{}\"", j.0))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    std::fs::write(config, text).unwrap();
}

fn own(lines: &[&str]) -> Vec<String> {
    lines.iter().map(|s| s.to_string()).collect()
}

/// What the device holds, as the lab renders it, without numbers.
fn held(lab: &Lab, device: &str, acl: &str) -> Vec<String> {
    lab.acl(device, acl)
        .unwrap()
        .into_iter()
        .map(|(_, e)| e)
        .collect()
}

/// The intent as this platform prints it (IOS `host`, NX-OS prefixes).
fn as_device_prints(device: &str, lines: &[&str]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            if device.starts_with("nxos") {
                l.replace("host 10.0.0.1 ", "10.0.0.1/32 ")
                    .replace("host 10.0.0.2 ", "10.0.0.2/32 ")
                    .replace("10.0.0.0 0.0.0.255", "10.0.0.0/24")
                    .replace("10.1.0.0 0.0.255.255", "10.1.0.0/16")
                    .replace("eq 53", "eq domain")
            } else {
                l.replace("eq 53", "eq domain")
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_replacement_reaches_the_intent_never_unprotected() {
    let n = SCENARIOS.len();
    let (lab, _dir, config) = common::lab_with_config(LabSpec {
        ios: n,
        nxos: n,
        ..Default::default()
    })
    .await;
    let mut jobs = Vec::new();
    for (k, (name, old, new)) in SCENARIOS.iter().enumerate() {
        let (ios, nxos) = (format!("ios-{:03}", k + 1), format!("nxos-{:03}", k + 1));
        for d in [&ios, &nxos] {
            lab.seed_acl(d, "EDGE", old).unwrap();
            lab.bind_in(d, "EDGE").unwrap();
        }
        jobs.push((
            name.to_string(),
            vec![ios, nxos],
            "EDGE".to_string(),
            own(new),
        ));
    }
    write_jobs(&config, &jobs);
    let before = lab.stats();
    let run = common::run_json(&config, &["run", "--window", "all", "--now"], PASSWORD).await;
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert!(
        common::statuses(&run.json).iter().all(|s| *s == "changed"),
        "{}",
        run.text()
    );
    let after = lab.stats();
    for (k, (name, _, new)) in SCENARIOS.iter().enumerate() {
        for d in [format!("ios-{:03}", k + 1), format!("nxos-{:03}", k + 1)] {
            assert_eq!(
                held(&lab, &d, "EDGE"),
                as_device_prints(&d, new),
                "{name}: {d} holds the intent, in order, remarks included"
            );
            let s = after.device(&d).unwrap();
            assert_eq!(s.unprotected_ms, 0, "{name}: {d} never unprotected");
            assert!(s.saved, "{name}: {d} saved");
            let sent = s.config_lines - before.device(&d).unwrap().config_lines;
            assert!(sent <= 16, "{name}: {d} sent {sent} lines");
        }
    }
    // Run again: nothing to do, nothing sent.
    let lines: Vec<u64> = lab.stats().devices.iter().map(|d| d.config_lines).collect();
    let again = common::run_json(&config, &["run", "--window", "all", "--now"], PASSWORD).await;
    assert!(
        common::statuses(&again.json)
            .iter()
            .all(|s| *s == "unchanged"),
        "{}",
        again.text()
    );
    let lines_again: Vec<u64> = lab.stats().devices.iter().map(|d| d.config_lines).collect();
    assert_eq!(lines, lines_again);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_entry_acl_with_10_changes_sends_a_few_lines() {
    let (lab, _dir, config) = common::lab_with_config(LabSpec {
        ios: 1,
        nxos: 1,
        ..Default::default()
    })
    .await;
    let old: Vec<String> = (0..500)
        .map(|i| format!("permit tcp host 10.{}.{}.1 any eq 22", i / 250, i % 250))
        .chain(["deny ip any any log".to_string()])
        .collect();
    // Ten changed: every fiftieth host moves to port 443.
    let new: Vec<String> = old
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if i % 50 == 7 {
                l.replace("eq 22", "eq 443")
            } else {
                l.clone()
            }
        })
        .collect();
    let old_refs: Vec<&str> = old.iter().map(String::as_str).collect();
    for d in ["ios-001", "nxos-001"] {
        lab.seed_acl(d, "BIG", &old_refs).unwrap();
        lab.bind_in(d, "BIG").unwrap();
    }
    write_jobs(
        &config,
        &[(
            "big".into(),
            vec!["ios-001".into(), "nxos-001".into()],
            "BIG".into(),
            new.clone(),
        )],
    );
    let before = lab.stats();
    let run = common::run_json(&config, &["run", "big"], PASSWORD).await;
    assert_eq!(run.code, Some(0), "{}", run.text());
    let after = lab.stats();
    for d in ["ios-001", "nxos-001"] {
        let sent = after.device(d).unwrap().config_lines - before.device(d).unwrap().config_lines;
        // 10 inserted + 10 deleted + a few to enter and leave.
        assert!(
            sent <= 30,
            "{d} sent {sent} configuration lines for 10 changes"
        );
        assert_eq!(held(&lab, d, "BIG").len(), 501, "{d}");
        assert_eq!(after.device(d).unwrap().unprotected_ms, 0, "{d}");
    }
    let new_refs: Vec<&str> = new.iter().map(String::as_str).collect();
    assert_eq!(
        held(&lab, "ios-001", "BIG"),
        as_device_prints("ios-001", &new_refs)
    );
    lab.shutdown().await;
}

/// The device's JSON block in a report.
fn device<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nx_os_cleanup_after_a_verified_commit_is_a_warning_not_a_failure() {
    let (lab, dir, config) = common::lab_with_config(LabSpec {
        ios: 0,
        nxos: 2,
        faults: vec!["checkpoint-busy:nxos-001".parse().unwrap()],
        ..Default::default()
    })
    .await;
    let run = common::run_json(&config, &["run", "lock-it-down"], PASSWORD).await;
    let d = device(&run.json, "nxos-001");
    assert_eq!(d["status"], "changed", "{}", run.text());
    assert_eq!(run.code, Some(0), "{}", run.text());
    let warning = d["warnings"][0].as_str().unwrap();
    assert!(
        warning.contains("could not be removed")
            && warning.contains("Another checkpoint/rollback operation is in progress")
            && warning.contains("no checkpoint nightshift-LOCK_IT_DOWN"),
        "{warning}"
    );
    let st = lab.stats();
    assert!(st.device("nxos-001").unwrap().saved, "saved as configured");
    assert_eq!(st.device("nxos-001").unwrap().unprotected_ms, 0);
    assert!(device(&run.json, "nxos-002")["warnings"].is_null());
    // The report says it, in every form.
    assert!(
        run.stdout
            .contains("WARNING:  the change is committed and verified"),
        "{}",
        run.stdout
    );
    let history = config
        .with_extension("state")
        .join("history")
        .join(format!("{}.json", run.json["run_id"].as_str().unwrap()));
    let html = common::render_html(&config, &history);
    assert!(
        html.contains("<b>Warning:</b> the change is committed and verified"),
        "{html}"
    );
    assert!(html.contains("Needs attention (1)"), "{html}");
    drop(dir);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nx_os_checkpoints_stay_within_the_platform_s_limits() {
    let long = "BRANCH_OFFICE_INBOUND_FILTER_FOR_VLAN_10";
    assert_eq!(long.len(), 40);
    let (lab, _dir, config) = common::lab_with_config(LabSpec {
        ios: 0,
        nxos: 3,
        faults: vec!["checkpoints:nxos-003:10".parse().unwrap()],
        ..Default::default()
    })
    .await;
    // nxos-002 holds a checkpoint of ours, left by a run that died.
    let mut s = common::Shell::open(&lab, "nxos-002").await;
    s.expect("nxos-002# $").await;
    let cp = s.cmd("checkpoint nightshift-LOCK_IT_DOWN").await;
    assert!(cp.contains("Done"), "{cp}");
    drop(s);
    let lines = ["permit tcp any any eq 22", "deny ip any any log"];
    write_jobs(
        &config,
        &[
            (
                "long".into(),
                vec!["nxos-001".into()],
                long.into(),
                own(&lines),
            ),
            (
                "plain".into(),
                vec!["nxos-002".into(), "nxos-003".into()],
                "LOCK_IT_DOWN".into(),
                own(&lines),
            ),
        ],
    );
    let run = common::run_json(&config, &["run", "--window", "all", "--now"], PASSWORD).await;
    assert!(
        common::statuses(&run.json).iter().all(|s| *s == "changed"),
        "{}",
        run.text()
    );
    // A 40-character ACL name: its checkpoint's name fits in 32.
    let net = device(&run.json, "nxos-001")["safety_net"]
        .as_str()
        .unwrap();
    let name = net.strip_prefix("NX-OS checkpoint ").unwrap();
    assert!(
        name.len() <= 32 && name.starts_with("nightshift-BRANCH_OFFICE"),
        "{net}"
    );
    // The leftover was removed and taken again; afterwards none is left.
    assert_eq!(
        device(&run.json, "nxos-002")["safety_net"],
        "NX-OS checkpoint nightshift-LOCK_IT_DOWN"
    );
    for d in ["nxos-001", "nxos-002"] {
        assert!(
            lab.checkpoints(d).is_empty(),
            "{d}: {:?}",
            lab.checkpoints(d)
        );
    }
    // A switch at its ten: no checkpoint, said plainly; the session still
    // commits all or nothing.
    let full = device(&run.json, "nxos-003");
    assert!(
        full["safety_net"]
            .as_str()
            .unwrap()
            .contains("Maximum number of checkpoints (10)"),
        "{full}"
    );
    assert!(
        full["warnings"][0]
            .as_str()
            .unwrap()
            .contains("without the device's own undo"),
        "{full}"
    );
    assert_eq!(
        lab.checkpoints("nxos-003").len(),
        10,
        "the operator's ten are untouched"
    );
    for d in ["nxos-001", "nxos-002", "nxos-003"] {
        assert_eq!(lab.stats().device(d).unwrap().unprotected_ms, 0);
    }
    lab.shutdown().await;
}
