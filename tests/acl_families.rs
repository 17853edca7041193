//! Every ACL family on both platforms, against the lab: IOS named
//! standard (guarding the vty lines), IOS numbered, extended, and IPv6
//! (`ipv6 traffic-filter` on an interface and `ipv6 access-class` on the
//! vty lines; IOS's `sequence N` syntax, NX-OS's prefixes). One window
//! replaces all of them on 200 devices: each reaches its intent, no
//! interface or vty line is ever unprotected, an unmanaged numbered ACL
//! whose number starts the same (101 beside 10) is untouched, and a second
//! run is all `unchanged` with no configuration line. Then `reject`,
//! `drop` and `hang` faults on each family: the previous ACL of that
//! family is put back and verified.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::PASSWORD;
use nightshift::lab::{AclKind, Lab, LabSpec};

const VTY_BEFORE: &[&str] = &[
    "remark management stations",
    "permit 127.0.0.0 0.0.0.255",
    "deny any log",
];
const VTY_AFTER: &str = "remark management stations and jump host
permit 127.0.0.0 0.0.0.255
permit host 10.9.9.9
deny any log";
const TEN_BEFORE: &[&str] = &["permit 192.0.2.0 0.0.0.255", "deny any"];
const TEN_AFTER: &str = "permit 198.51.100.0 0.0.0.255
permit 192.0.2.0 0.0.0.255
deny any log";
const V6_BEFORE: &[&str] = &[
    "permit tcp 2001:db8::/32 any eq 22",
    "deny ipv6 any any log",
];
const V6_AFTER: &str = "remark edge v6
permit tcp 2001:db8::/32 any eq 22
permit icmp any any
permit udp host 2001:db8::53 eq 53 any
deny ipv6 any any log";

/// The lab's config with the family jobs added to the window.
fn with_jobs(config: &std::path::Path) {
    let job = |name, devices, acl, family: &str, lines| {
        common::acl_job(
            name,
            devices,
            acl,
            &format!("concurrency = 20\n{family}"),
            lines,
        )
    };
    let jobs = [
        job(
            "vty-mgmt",
            "\"ios-*\"",
            "VTY_MGMT",
            "family = \"standard\"\n",
            VTY_AFTER,
        ),
        job("legacy-10", "\"ios-*\"", "10", "", TEN_AFTER),
        job(
            "edge6",
            "\"ios-*\", \"nxos-*\"",
            "EDGE6",
            "family = \"ipv6\"\n",
            V6_AFTER,
        ),
    ]
    .concat();
    common::window_jobs(
        config,
        &jobs,
        &["lock-it-down", "vty-mgmt", "legacy-10", "edge6"],
    );
}

/// Every device's before: the standard ACL on the vty lines, numbered 10
/// on an interface (and 101, not managed), IPv6 on an interface and the
/// vty lines.
fn seed(lab: &Lab) {
    for d in lab.devices() {
        let n = &d.name;
        if n.starts_with("ios-") {
            lab.seed_acl_of(n, AclKind::Standard, "VTY_MGMT", VTY_BEFORE)
                .unwrap();
            lab.bind(n, AclKind::Standard, "VTY_MGMT", None).unwrap();
            lab.seed_acl_of(n, AclKind::Standard, "10", TEN_BEFORE)
                .unwrap();
            lab.bind(n, AclKind::Standard, "10", Some(2)).unwrap();
            lab.seed_acl_of(n, AclKind::Extended, "101", &["permit ip any any"])
                .unwrap();
        }
        let v6: Vec<String> = V6_BEFORE
            .iter()
            .enumerate()
            .map(|(k, l)| {
                if n.starts_with("ios-") {
                    format!("sequence {} {l}", 10 * (k + 1))
                } else {
                    l.to_string()
                }
            })
            .collect();
        let v6: Vec<&str> = v6.iter().map(String::as_str).collect();
        lab.seed_acl_of(n, AclKind::Ipv6, "EDGE6", &v6).unwrap();
        lab.bind(n, AclKind::Ipv6, "EDGE6", Some(1)).unwrap();
        lab.bind(n, AclKind::Ipv6, "EDGE6", None).unwrap();
    }
}

fn texts(held: Option<Vec<(u32, String)>>) -> Vec<String> {
    held.unwrap_or_default()
        .into_iter()
        .map(|(_, t)| t)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_window_replaces_every_family_on_200_devices() {
    let (lab, _dir, config) = common::lab_with_config(LabSpec {
        ios: 150,
        nxos: 50,
        ..Default::default()
    })
    .await;
    seed(&lab);
    with_jobs(&config);

    let run = common::run_json(&config, &["run", "--window", "nightly", "--now"], PASSWORD).await;
    assert_eq!(run.code, Some(0), "{}", run.text());
    let statuses = common::statuses(&run.json);
    // 200 extended, 150 standard, 150 numbered, 200 IPv6.
    assert_eq!(statuses.len(), 700, "{}", run.text());
    assert!(statuses.iter().all(|s| *s == "changed"), "{}", run.text());

    for d in lab.devices() {
        let n = &d.name;
        let v6 = texts(lab.acl_of(n, AclKind::Ipv6, "EDGE6"));
        if n.starts_with("ios-") {
            assert_eq!(
                texts(lab.acl_of(n, AclKind::Standard, "VTY_MGMT")),
                // In sequence order: the new host went in below every
                // entry (IOS lists and checks a standard ACL's hosts first
                // anyway).
                [
                    "permit 10.9.9.9",
                    "remark management stations and jump host",
                    "permit 127.0.0.0 0.0.0.255",
                    "deny any log"
                ],
                "{n}"
            );
            assert_eq!(
                texts(lab.acl_of(n, AclKind::Standard, "10")),
                [
                    "permit 198.51.100.0 0.0.0.255",
                    "permit 192.0.2.0 0.0.0.255",
                    "deny any log"
                ],
                "{n}"
            );
            assert_eq!(
                texts(lab.acl_of(n, AclKind::Extended, "101")),
                ["permit ip any any"],
                "{n}: 101 is not 10"
            );
            // IOS shows IPv6 addresses in capitals.
            assert_eq!(
                v6,
                [
                    "remark edge v6",
                    "permit tcp 2001:DB8::/32 any eq 22",
                    "permit icmp any any",
                    "permit udp host 2001:DB8::53 eq domain any",
                    "deny ipv6 any any log"
                ],
                "{n}"
            );
        } else {
            assert_eq!(
                v6,
                [
                    "remark edge v6",
                    "permit tcp 2001:db8::/32 any eq 22",
                    "permit icmp any any",
                    "permit udp 2001:db8::53/128 eq domain any",
                    "deny ipv6 any any log"
                ],
                "{n}"
            );
        }
    }
    // Bindings were read: the report names them.
    let ios_vty = run.json["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["job"] == "vty-mgmt" && d["name"] == "ios-001")
        .unwrap();
    assert_eq!(ios_vty["bindings"][0]["interface"], "vty 0 4", "{ios_vty}");
    let stats = lab.stats();
    for d in &stats.devices {
        assert_eq!(d.unprotected_ms, 0, "{}: never unprotected", d.name);
        assert!(d.saved, "{}: saved", d.name);
        assert_eq!(
            d.vty_refused, 0,
            "{}: the new vty ACLs admit nightshift",
            d.name
        );
    }

    let lines = common::config_lines(&lab);
    let again = common::run_json(&config, &["run", "--window", "nightly", "--now"], PASSWORD).await;
    assert_eq!(again.code, Some(0), "{}", again.text());
    assert!(
        common::statuses(&again.json)
            .iter()
            .all(|s| *s == "unchanged"),
        "{}",
        again.text()
    );
    assert_eq!(
        common::config_lines(&lab),
        lines,
        "nothing sent the second time"
    );
    lab.shutdown().await;
}

/// A lab of three IOS and three NX-OS devices: the first of each refuses
/// its 4th configuration line, the second drops after 4, the third never
/// gives a prompt.
async fn faulty() -> (Lab, tempfile::TempDir, std::path::PathBuf) {
    let faults = [
        "reject:ios-001:4",
        "drop:ios-002:4",
        "hang:ios-003",
        "reject:nxos-001:4",
        "drop:nxos-002:4",
        "hang:nxos-003",
    ];
    let (lab, dir, config) = common::lab_with_config(LabSpec {
        ios: 3,
        nxos: 3,
        faults: faults.iter().map(|f| f.parse().unwrap()).collect(),
        ..Default::default()
    })
    .await;
    seed(&lab);
    with_jobs(&config);
    (lab, dir, config)
}

/// One family's job on a fresh faulty lab (faults count a device's lines
/// over its life, so each family gets its own).
async fn fault_run(job: &str, kind: AclKind, acl: &str) {
    let (lab, _dir, config) = faulty().await;
    let before: Vec<_> = lab
        .devices()
        .iter()
        .map(|d| lab.acl_of(&d.name, kind, acl))
        .collect();
    let run = common::run_json(&config, &["run", job], PASSWORD).await;
    assert_eq!(run.code, Some(1), "{job}: {}", run.text());
    for d in run.json["devices"].as_array().unwrap() {
        let name = d["name"].as_str().unwrap();
        assert_eq!(d["status"], "failed", "{job}: {d}");
        let restored = d["restored"].as_str().unwrap_or_default();
        if name.ends_with("-003") {
            // Never got a prompt: nothing was sent.
            assert_eq!(d["step"], "connect", "{job}: {d}");
        } else if name == "nxos-001" {
            // Refused inside the configuration session: nothing committed.
            assert_eq!(restored, "nothing was changed on the device", "{job}: {d}");
        } else {
            assert_eq!(restored, "previous ACL restored and verified", "{job}: {d}");
        }
    }
    // The device ends with its previous ACL of that family.
    for (k, d) in lab.devices().iter().enumerate() {
        assert_eq!(
            lab.acl_of(&d.name, kind, acl),
            before[k],
            "{job}: {}",
            d.name
        );
    }
    for d in &lab.stats().devices {
        assert_eq!(d.unprotected_ms, 0, "{job}: {}", d.name);
    }
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_put_back_the_previous_acl_of_each_family() {
    // Side by side: the `hang` devices each wait out the prompt timeout.
    tokio::join!(
        fault_run("vty-mgmt", AclKind::Standard, "VTY_MGMT"),
        fault_run("legacy-10", AclKind::Standard, "10"),
        fault_run("edge6", AclKind::Ipv6, "EDGE6"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vty_acl_that_would_lock_nightshift_out_is_put_back() {
    let (lab, _dir, config) = common::lab_with_config(LabSpec {
        ios: 2,
        nxos: 1,
        ..Default::default()
    })
    .await;
    let nx_before = ["permit tcp 127.0.0.0/8 any eq 22", "deny ip any any log"];
    for d in lab.devices() {
        if d.name.starts_with("ios-") {
            lab.seed_acl_of(&d.name, AclKind::Standard, "VTY_MGMT", VTY_BEFORE)
                .unwrap();
            lab.bind(&d.name, AclKind::Standard, "VTY_MGMT", None)
                .unwrap();
        } else {
            lab.seed_acl_of(&d.name, AclKind::Extended, "VTY_NX", &nx_before)
                .unwrap();
            lab.bind(&d.name, AclKind::Extended, "VTY_NX", None)
                .unwrap();
        }
    }
    // New ACLs that forget the place nightshift logs in from.
    let text = std::fs::read_to_string(&config).unwrap();
    let at = text.find("[windows.").unwrap();
    let jobs = "[jobs.vty-mgmt]\nkind = \"acl\"\ndevices = [\"ios-*\"]\nacl_name = \"VTY_MGMT\"\nfamily = \"standard\"\nacl_lines = \"\"\"\npermit 10.0.0.0 0.0.0.255\ndeny any log\n\"\"\"\n\n\
                [jobs.vty-nx]\nkind = \"acl\"\ndevices = [\"nxos-*\"]\nacl_name = \"VTY_NX\"\nacl_lines = \"\"\"\npermit tcp 10.0.0.0/24 any eq 22\ndeny ip any any log\n\"\"\"\n\n";
    std::fs::write(&config, format!("{}{jobs}{}", &text[..at], &text[at..])).unwrap();
    let before: Vec<_> = ["ios-001", "ios-002"]
        .iter()
        .map(|d| lab.acl_of(d, AclKind::Standard, "VTY_MGMT"))
        .collect();
    let nx = lab.acl_of("nxos-001", AclKind::Extended, "VTY_NX");

    for job in ["vty-mgmt", "vty-nx"] {
        let run = common::run_json(&config, &["run", job], PASSWORD).await;
        assert_eq!(run.code, Some(1), "{job}: {}", run.text());
        for d in run.json["devices"].as_array().unwrap() {
            assert_eq!(d["status"], "failed", "{d}");
            assert_eq!(d["step"], "login-check", "{d}");
            assert_eq!(d["restored"], "previous ACL restored and verified", "{d}");
            assert!(
                d["error"]
                    .as_str()
                    .unwrap()
                    .contains("guards the vty lines"),
                "{d}"
            );
            assert!(
                d["hint"].as_str().unwrap().contains("management stations"),
                "{d}"
            );
        }
    }
    for (k, d) in ["ios-001", "ios-002"].iter().enumerate() {
        assert_eq!(
            lab.acl_of(d, AclKind::Standard, "VTY_MGMT"),
            before[k],
            "{d}"
        );
    }
    assert_eq!(lab.acl_of("nxos-001", AclKind::Extended, "VTY_NX"), nx);
    let stats = lab.stats();
    for d in &stats.devices {
        assert!(
            d.vty_refused >= 1,
            "{}: the check login was refused",
            d.name
        );
        assert_eq!(d.unprotected_ms, 0, "{}", d.name);
    }
    // And the devices still take a login: a dry run reads them all.
    let dry = common::run_json(&config, &["run", "vty-mgmt", "--dry-run"], PASSWORD).await;
    assert!(
        common::statuses(&dry.json)
            .iter()
            .all(|s| *s == "would-change"),
        "{}",
        dry.text()
    );
    lab.shutdown().await;
}
