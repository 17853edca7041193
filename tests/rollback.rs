//! `nightshift rollback RUN_ID` against the lab: every device the run
//! changed gets back exactly the ACL the run found on it, never
//! unprotected; a device changed by hand since the run is skipped with its
//! drift (unless `--force`); a second rollback has nothing to do; a dry
//! run sends nothing; a run that changed no ACL says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::PASSWORD;
use nightshift::lab::LabSpec;

const ACL: &str = "LOCK_IT_DOWN";

/// Every device's ACL as the lab holds it: (sequence, text) per entry.
fn held(lab: &nightshift::lab::Lab) -> BTreeMap<String, Vec<(u32, String)>> {
    lab.devices()
        .iter()
        .map(|d| (d.name.clone(), lab.acl(&d.name, ACL).unwrap_or_default()))
        .collect()
}

fn count(report: &serde_json::Value, status: &str) -> usize {
    common::statuses(report)
        .iter()
        .filter(|s| **s == status)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_device_run_is_rolled_back_exactly_and_drifted_devices_are_left_alone() {
    let (lab, _dir, config) = common::lab_with_config(LabSpec {
        ios: 150,
        nxos: 50,
        ..Default::default()
    })
    .await;
    // Every device has the ACL before the run (the lab leaves every tenth
    // without one), bound to an interface.
    for d in lab.devices() {
        if lab.acl(&d.name, ACL).is_none() {
            lab.seed_acl(
                &d.name,
                ACL,
                &["remark old", "permit tcp any any eq 22", "deny ip any any"],
            )
            .unwrap();
            lab.bind_in(&d.name, ACL).unwrap();
        }
    }
    let before = held(&lab);
    let run = common::run_json(&config, &["run", "lock-it-down"], PASSWORD).await;
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert_eq!(count(&run.json, "changed"), 200, "{}", run.text());
    let run_id = run.json["run_id"].as_str().unwrap().to_string();
    let after_run = held(&lab);

    // Two devices changed by hand since the run.
    let drifted = ["ios-007", "nxos-003"];
    for d in drifted {
        lab.seed_acl(d, ACL, &["permit tcp any any eq 22", "permit ip any any"])
            .unwrap();
    }
    let by_hand = held(&lab);

    // A dry run sends nothing and says what it would put back.
    let lines = common::config_lines(&lab);
    let dry = common::run_json(&config, &["rollback", &run_id, "--dry-run"], PASSWORD).await;
    assert_eq!(count(&dry.json, "would-change"), 198, "{}", dry.text());
    assert_eq!(count(&dry.json, "skipped"), 2, "{}", dry.text());
    assert_eq!(
        common::config_lines(&lab),
        lines,
        "a dry run sends no config line"
    );
    assert_eq!(held(&lab), by_hand);

    let back = common::run_json(&config, &["rollback", &run_id], PASSWORD).await;
    assert_eq!(back.json["kind"], "rollback", "{}", back.text());
    assert_eq!(count(&back.json, "changed"), 198, "{}", back.text());
    let now = held(&lab);
    for (name, acl) in &now {
        if drifted.contains(&name.as_str()) {
            assert_eq!(acl, &by_hand[name], "{name}: drift left alone");
        } else {
            assert_eq!(acl, &before[name], "{name}: the ACL the run found, exactly");
            assert_ne!(acl, &after_run[name]);
        }
    }
    for d in back.json["devices"].as_array().unwrap() {
        let name = d["name"].as_str().unwrap();
        if drifted.contains(&name) {
            assert_eq!(d["status"], "skipped", "{d}");
            let error = d["error"].as_str().unwrap();
            assert!(
                error.contains(&format!("changed since run {run_id} left it"))
                    && error.contains("nothing was sent"),
                "{error}"
            );
            assert!(
                d["drift"]
                    .as_array()
                    .unwrap()
                    .contains(&serde_json::json!("+ permit ip any any")),
                "{d}"
            );
        }
    }
    let stats = lab.stats();
    for d in &stats.devices {
        assert_eq!(d.unprotected_ms, 0, "{}: never unprotected", d.name);
        assert!(d.saved, "{}: saved", d.name);
    }
    assert!(
        back.stdout
            .contains(&format!("## job rollback-of-{run_id} (rollback)"))
            && back.stdout.contains("    drift + permit ip any any"),
        "{}",
        back.stdout
    );

    // The drifted two, on purpose.
    let forced = common::run_json(
        &config,
        &[
            "rollback",
            &run_id,
            "--force",
            "--devices",
            "ios-007,nxos-003",
        ],
        PASSWORD,
    )
    .await;
    assert_eq!(
        common::statuses(&forced.json),
        ["changed", "changed"],
        "{}",
        forced.text()
    );
    assert_eq!(held(&lab), before, "every device as the run found it");

    // Nothing left to do: all unchanged, no config line.
    let lines = common::config_lines(&lab);
    let again = common::run_json(&config, &["rollback", &run_id], PASSWORD).await;
    assert_eq!(count(&again.json, "unchanged"), 200, "{}", again.text());
    assert_eq!(common::config_lines(&lab), lines);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_changed_no_acl_has_nothing_to_roll_back() {
    let (lab, _dir, config) = common::lab_with_config(LabSpec {
        ios: 1,
        nxos: 0,
        dialer_lines: 1,
        branches: 1,
        ..Default::default()
    })
    .await;
    let run = common::run_json(&config, &["run", "pots"], PASSWORD).await;
    let run_id = run.json["run_id"].as_str().unwrap().to_string();
    let out = common::ns(&config, &["rollback", &run_id], "");
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));
    assert!(
        common::text(&out).contains(&format!(
            "run {run_id} changed no ACL (1 job: pots): there is nothing to roll back"
        )),
        "{}",
        common::text(&out)
    );
    let unknown = common::ns(&config, &["rollback", "no-such-run"], "");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        common::text(&unknown).contains("no run no-such-run in the history"),
        "{}",
        common::text(&unknown)
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_job_scheduled_in_a_window_puts_the_run_back() {
    let (lab, _dir, config) = common::lab_with_config(LabSpec {
        ios: 10,
        nxos: 1,
        ..Default::default()
    })
    .await;
    let before = held(&lab);
    let run = common::run_json(&config, &["run", "lock-it-down"], PASSWORD).await;
    assert_eq!(run.code, Some(0), "{}", run.text());
    let run_id = run.json["run_id"].as_str().unwrap().to_string();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[jobs.undo]\nkind = \"rollback\"\nrun = \"{run_id}\"\n\n[windows.morning]\nschedule = \"{}\"\ntimezone = \"UTC\"\nduration = \"1h\"\njobs = [\"undo\"]\n",
        common::schedule_closed_now()
    ));
    std::fs::write(&config, text).unwrap();
    let check = common::ns(&config, &["check-config"], "");
    assert!(
        common::text(&check).contains(&format!("rollback of run {run_id}")),
        "{}",
        common::text(&check)
    );
    let back = common::run_json(&config, &["run", "--window", "morning", "--now"], PASSWORD).await;
    // Exit 1: one device is skipped (below).
    assert_eq!(back.code, Some(1), "{}", back.text());
    assert_eq!(back.json["kind"], "rollback");
    assert_eq!(back.json["rollback_of"][0], run_id.as_str());
    // Every tenth lab device had no ACL before: the run created it, and a
    // rollback does not delete ACLs; the others are put back.
    assert!(before["ios-010"].is_empty());
    for (name, acl) in held(&lab) {
        let before = &before[&name];
        if before.is_empty() {
            let d = back.json["devices"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["name"] == name.as_str())
                .unwrap();
            assert_eq!(d["status"], "skipped", "{d}");
            assert!(
                d["reason"]
                    .as_str()
                    .unwrap()
                    .contains("did not exist before"),
                "{d}"
            );
        } else {
            assert_eq!(&acl, before, "{name}");
        }
    }
    lab.shutdown().await;
}
