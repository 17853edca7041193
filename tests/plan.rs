//! The change plan and drift protection, in the daemon with an injected
//! clock: `plan_lead` before the opening the daemon reads every device
//! (nothing in configuration mode), keeps the plan in the history and
//! mails it, with the diff per device, an unreachable device and a refused
//! host key; at the opening, a device changed by hand since the plan is
//! skipped with its drift and gets no configuration line (`on_drift =
//! "skip"`), or is replaced anyway (`"proceed"`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::daemon::{history, setup, start, utc, wait_for_mail};
use nightshift::clock::OffsetClock;
use nightshift::lab::LabSpec;

const ACL: &str = "LOCK_IT_DOWN";

fn device<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_at_plan_lead_then_drifted_devices_are_skipped_or_replaced_as_told() {
    let s = setup(
        LabSpec {
            ios: 4,
            nxos: 2,
            faults: common::device::faults(&["refuse:ios-004"]),
            ..Default::default()
        },
        "[windows.nightly]\nschedule = \"0 22 * * *\"\ntimezone = \"UTC\"\nduration = \"2h\"\nplan_lead = \"1h\"\njobs = [\"lock-it-down\", \"nxos-too\"]\n",
    )
    .await;
    // Two jobs: the IOS devices skip drift (the default), the NX-OS ones
    // proceed.
    let text = std::fs::read_to_string(&s.config).unwrap();
    let at = text.find("[jobs.lock-it-down]").unwrap();
    let job = text[at..].split("\n\n").next().unwrap().to_string();
    let ios_job = job.replace(
        &job[job.find("devices = [").unwrap()..]
            [..job[job.find("devices = [").unwrap()..].find('\n').unwrap()],
        "devices = [\"ios-*\"]",
    );
    let nxos_job = ios_job
        .replace("[jobs.lock-it-down]", "[jobs.nxos-too]")
        .replace(
            "devices = [\"ios-*\"]",
            "devices = [\"nxos-*\"]\non_drift = \"proceed\"",
        );
    let text = text.replace(&job, &format!("{ios_job}\n\n{nxos_job}"));
    // ios-003's host key is not the one known_hosts has for it.
    let kh_path = s.config.with_extension("known_hosts");
    let kh = std::fs::read_to_string(&kh_path).unwrap();
    let port = |n: &str| s.lab.device(n).unwrap().addr.port();
    let key_of = |p: u16| {
        kh.lines()
            .find(|l| l.starts_with(&format!("[127.0.0.1]:{p} ")))
            .unwrap()
            .split_once(' ')
            .unwrap()
            .1
            .to_string()
    };
    let wrong = format!(
        "[127.0.0.1]:{} {}",
        port("ios-003"),
        key_of(port("ios-001"))
    );
    let kh: String = kh
        .lines()
        .map(|l| {
            if l.starts_with(&format!("[127.0.0.1]:{} ", port("ios-003"))) {
                wrong.clone()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&kh_path, kh + "\n").unwrap();
    std::fs::write(&s.config, text).unwrap();

    // Two seconds before the plan is due (21:00 UTC for the 22:00 opening).
    let clock = Arc::new(OffsetClock::at(utc("2026-12-05T20:59:58Z")));
    let lines_at_start = common::config_lines(&s.lab);
    let (task, shutdown, _) = start(&s.config, clock.clone());
    let plan = history(
        &s.state,
        "nightly-20261205T2200Z-plan",
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(plan["kind"], "plan", "{plan}");
    assert_eq!(plan["planned_start"], "2026-12-05T22:00:00Z");
    for d in ["ios-001", "ios-002", "nxos-001", "nxos-002"] {
        let dev = device(&plan, d);
        assert_eq!(dev["status"], "would-change", "{d}: {dev}");
        assert!(
            dev["diff"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!("+ permit udp host 10.0.0.53 any eq 53")),
            "{d}: {dev}"
        );
    }
    let unreachable = device(&plan, "ios-004");
    assert_eq!(unreachable["status"], "failed");
    assert_eq!(unreachable["step"], "connect", "{unreachable}");
    let key = device(&plan, "ios-003");
    assert_eq!(key["status"], "failed");
    assert!(
        key["error"].as_str().unwrap().contains("HOST KEY CHANGED"),
        "{key}"
    );
    let facts = plan["plan"].to_string();
    assert!(facts.contains("lab: proven by one login to"), "{facts}");
    assert!(facts.contains("lockout brake"), "{facts}");
    assert!(facts.contains("no earlier run of this window"), "{facts}");
    assert_eq!(
        common::config_lines(&s.lab),
        lines_at_start,
        "the plan sent no configuration line"
    );
    wait_for_mail(
        &s.state,
        "report-nightly-20261205T2200Z-plan",
        Duration::from_secs(10),
    )
    .await;
    let mail = std::fs::read_dir(s.state.join("outbox"))
        .unwrap()
        .flatten()
        .find(|f| {
            f.file_name().to_string_lossy().contains("-plan")
                && f.file_name().to_string_lossy().ends_with(".eml")
        })
        .unwrap();
    let mail = std::fs::read_to_string(mail.path()).unwrap();
    assert!(
        mail.contains("Subject: [nightshift] plan for nightly"),
        "{mail}"
    );

    // Someone changes two devices by hand between plan and window.
    for d in ["ios-002", "nxos-001"] {
        s.lab
            .seed_acl(d, ACL, &["permit tcp any any eq 22", "permit ip any any"])
            .unwrap();
    }
    let lines_before: Vec<(String, u64)> = s
        .lab
        .stats()
        .devices
        .iter()
        .map(|d| (d.name.clone(), d.config_lines))
        .collect();
    // The daemon restarts (an upgrade, say) two seconds before the opening:
    // the plan kept in the history is what the devices are compared with.
    shutdown.cancel();
    task.await.unwrap();
    clock.set(utc("2026-12-05T21:59:58Z"));
    let (task, shutdown, _) = start(&s.config, clock.clone());
    let run = history(&s.state, "nightly-20261205T2200Z", Duration::from_secs(60)).await;
    let skipped = device(&run, "ios-002");
    assert_eq!(skipped["status"], "skipped", "{skipped}");
    assert!(
        skipped["error"]
            .as_str()
            .unwrap()
            .contains("LOCK_IT_DOWN changed since the plan nightly-20261205T2200Z-plan read it"),
        "{skipped}"
    );
    assert!(
        skipped["drift"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("+ permit ip any any")),
        "{skipped}"
    );
    let after = s.lab.stats();
    let sent = |n: &str| {
        after.device(n).unwrap().config_lines - lines_before.iter().find(|(d, _)| d == n).unwrap().1
    };
    assert_eq!(
        sent("ios-002"),
        0,
        "a skipped device gets no configuration line"
    );
    assert_eq!(
        s.lab.acl("ios-002", ACL).unwrap().len(),
        2,
        "the change made by hand is still there"
    );
    let proceeded = device(&run, "nxos-001");
    assert_eq!(proceeded["status"], "changed", "{proceeded}");
    assert!(
        proceeded["warnings"][0]
            .as_str()
            .unwrap()
            .contains("replaced anyway (on_drift = proceed)"),
        "{proceeded}"
    );
    for d in ["ios-001", "nxos-002"] {
        assert_eq!(device(&run, d)["status"], "changed", "{d}");
    }
    for d in &after.devices {
        assert_eq!(d.unprotected_ms, 0, "{}", d.name);
    }
    shutdown.cancel();
    task.await.unwrap();
    s.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nightshift_plan_reads_every_device_changes_nothing_and_keeps_the_plan() {
    let (lab, _dir, config) = common::lab_with_config(LabSpec {
        ios: 3,
        nxos: 1,
        ..Default::default()
    })
    .await;
    let lines = common::config_lines(&lab);
    let out = common::run_json(&config, &["plan", "nightly"], common::PASSWORD).await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert_eq!(out.json["kind"], "plan");
    assert!(
        common::statuses(&out.json)
            .iter()
            .all(|s| *s == "would-change"),
        "{}",
        out.text()
    );
    assert!(
        out.stdout.contains("+ permit udp host 10.0.0.53 any eq 53"),
        "{}",
        out.stdout
    );
    assert_eq!(
        common::config_lines(&lab),
        lines,
        "a plan sends no configuration line"
    );
    let id = out.json["run_id"].as_str().unwrap();
    assert!(id.starts_with("nightly-") && id.ends_with("-plan"), "{id}");
    let list = common::ns(&config, &["report", "list"], "");
    let list = common::text(&list);
    assert!(
        list.contains(&format!(
            "{id}  [nightshift] plan for nightly: 4 would change"
        )),
        "{list}"
    );
    // A second plan reads every device again (a plan has nothing to resume).
    let logins =
        |lab: &nightshift::lab::Lab| -> u64 { lab.stats().devices.iter().map(|d| d.logins).sum() };
    let before = logins(&lab);
    let again = common::run_json(&config, &["plan", "nightly"], common::PASSWORD).await;
    assert_eq!(again.json["run_id"], id);
    // One canary login proves the credentials, then each device once.
    assert_eq!(logins(&lab) - before, 5, "{}", again.text());
    let unknown = common::ns(&config, &["plan", "weekly"], "");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        common::text(&unknown).contains("no window \"weekly\""),
        "{}",
        common::text(&unknown)
    );
    lab.shutdown().await;
}
