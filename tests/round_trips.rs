//! Round trips per device, counted by the lab: each time a device had
//! answered everything it was sent and then received more, the client
//! waited one round trip. Over a 150 ms WAN link each costs 150 ms, so the
//! reads of a step go together and configuration lines are pipelined.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::PASSWORD;
use nightshift::lab::LabSpec;

const OLD: &[&str] = &[
    "remark legacy rules",
    "permit tcp 10.0.0.0 0.0.0.255 any eq 22",
    "permit icmp any any echo",
    "deny ip any any",
];

fn rtt(lab: &nightshift::lab::Lab, device: &str) -> u64 {
    lab.stats().device(device).unwrap().round_trips
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_lines_are_one_round_trip_in_the_lab() {
    let lab = common::start_lab(LabSpec {
        ios: 1,
        nxos: 0,
        ..Default::default()
    })
    .await;
    let mut sh = common::Shell::open(&lab, "ios-001").await;
    sh.expect(r">\s*$").await;
    assert_eq!(
        rtt(&lab, "ios-001"),
        0,
        "the first prompt costs no round trip"
    );
    sh.send("terminal length 0\rshow version\rshow version\r")
        .await;
    sh.expect(r"Cisco IOS Software[\s\S]*Cisco IOS Software[\s\S]*>\s*$")
        .await;
    assert_eq!(rtt(&lab, "ios-001"), 1, "three lines sent together");
    sh.cmd("show version").await;
    sh.cmd("show version").await;
    assert_eq!(rtt(&lab, "ios-001"), 3, "one at a time: one each");
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_takes_few_round_trips_and_an_unchanged_device_fewer() {
    let (lab, _dir, config) = common::lab_with_config(LabSpec {
        // ios-001 is the canary: its proving login is not the push's.
        ios: 2,
        nxos: 1,
        latency: Duration::from_millis(5),
        ..Default::default()
    })
    .await;
    for d in ["ios-001", "ios-002", "nxos-001"] {
        lab.seed_acl(d, "LOCK_IT_DOWN", OLD).unwrap();
        lab.bind_in(d, "LOCK_IT_DOWN").unwrap();
    }
    let before = [rtt(&lab, "ios-002"), rtt(&lab, "nxos-001")];
    let run = common::run_json(&config, &["run", "lock-it-down"], PASSWORD).await;
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert!(
        common::statuses(&run.json).iter().all(|s| *s == "changed"),
        "{}",
        run.text()
    );
    let pushed = [
        rtt(&lab, "ios-002") - before[0],
        rtt(&lab, "nxos-001") - before[1],
    ];
    eprintln!(
        "round trips of a push: IOS {}, NX-OS {}",
        pushed[0], pushed[1]
    );
    assert!(pushed[0] <= 12, "IOS push: {} round trips", pushed[0]);
    assert!(pushed[1] <= 10, "NX-OS push: {} round trips", pushed[1]);

    let before = [rtt(&lab, "ios-002"), rtt(&lab, "nxos-001")];
    let again = common::run_json(&config, &["run", "lock-it-down"], PASSWORD).await;
    assert!(
        common::statuses(&again.json)
            .iter()
            .all(|s| *s == "unchanged"),
        "{}",
        again.text()
    );
    let unchanged = [
        rtt(&lab, "ios-002") - before[0],
        rtt(&lab, "nxos-001") - before[1],
    ];
    eprintln!(
        "round trips when unchanged: IOS {}, NX-OS {}",
        unchanged[0], unchanged[1]
    );
    assert!(unchanged[0] <= 5, "IOS unchanged: {}", unchanged[0]);
    assert!(unchanged[1] <= 5, "NX-OS unchanged: {}", unchanged[1]);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standard_acl_pays_one_round_trip_for_its_sequence_numbers() {
    let (lab, _dir, config) = common::lab_with_config(LabSpec {
        ios: 2,
        nxos: 0,
        latency: Duration::from_millis(5),
        ..Default::default()
    })
    .await;
    for d in ["ios-001", "ios-002"] {
        lab.seed_acl_of(
            d,
            nightshift::lab::AclKind::Standard,
            "VTY",
            &["deny 10.2.0.0 0.0.255.255", "permit 10.1.1.1", "deny any"],
        )
        .unwrap();
    }
    let job = common::acl_job(
        "vty",
        "\"ios-*\"",
        "VTY",
        "family = \"standard\"\n",
        "permit 10.9.9.9\ndeny 10.2.0.0 0.0.255.255\npermit 10.1.1.1\ndeny any log",
    );
    common::window_jobs(&config, &job, &["vty"]);
    let before = rtt(&lab, "ios-002");
    let run = common::run_json(&config, &["run", "vty"], PASSWORD).await;
    assert_eq!(
        common::statuses(&run.json),
        ["changed"; 2],
        "{}",
        run.text()
    );
    let pushed = rtt(&lab, "ios-002") - before;
    eprintln!("round trips of a standard push: {pushed}");
    assert!(pushed <= 12, "standard IOS push: {pushed} round trips");
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canary_proof_is_a_log_in_and_enable_and_nothing_more() {
    let (lab, _dir, config) = common::lab_with_config(LabSpec {
        // ios-001, the canary, lands at `>`: enable and its secret.
        ios: 2,
        nxos: 0,
        ..Default::default()
    })
    .await;
    let run = common::run_json(
        &config,
        &["run", "lock-it-down", "--devices", "ios-002"],
        PASSWORD,
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.text());
    let canary = lab.stats().device("ios-001").unwrap().clone();
    assert_eq!(canary.logins, 1, "one login proves the credentials");
    // No terminal setup: the proof's session ends once it is enabled.
    assert!(
        canary.round_trips <= 4,
        "the canary proof: {} round trips",
        canary.round_trips
    );
    lab.shutdown().await;
}
