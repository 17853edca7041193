//! Object-group references: nightshift does not manage object-groups; a
//! push whose entries refer to a group the device lacks is refused before
//! anything is sent (and a dry run or plan says so ahead), while a device
//! that has the group gets the ACL, IOS `object-group` and NX-OS
//! `addrgroup` alike (one templated job, each platform its own form).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::PASSWORD;
use nightshift::lab::LabSpec;

fn job(name: &str, devices: &str, group_word: &str) -> String {
    format!(
        "[jobs.{name}]\nkind = \"acl\"\ndevices = [{devices}]\nacl_name = \"LOCK_IT_DOWN\"\nacl_lines = \"\"\"\nremark branches only\npermit tcp {group_word} BRANCHES any eq 22\ndeny ip any any log\n\"\"\"\n\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_object_group_is_refused_before_any_change() {
    let (lab, _dir, config) = common::lab_with_config(LabSpec {
        ios: 2,
        nxos: 2,
        ..Default::default()
    })
    .await;
    for d in ["ios-001", "nxos-001"] {
        lab.seed_object_group(d, "BRANCHES").unwrap();
    }
    let text = std::fs::read_to_string(&config).unwrap();
    let at = text.find("[jobs.").unwrap();
    let rest = &text[text.find("[windows.").unwrap()..];
    let text = format!(
        "{}{}{}{}",
        &text[..at],
        // One job for both platforms: each writes its own form.
        job(
            "lock-it-down",
            "\"ios-*\", \"nxos-*\"",
            "{% if platform == \"cisco_nxos\" %}addrgroup{% else %}object-group{% endif %}"
        ),
        "",
        rest
    );
    std::fs::write(&config, text).unwrap();
    let before = common::config_lines(&lab);
    let held_before: Vec<_> = ["ios-002", "nxos-002"]
        .iter()
        .map(|d| lab.acl(d, "LOCK_IT_DOWN"))
        .collect();

    let dry = common::run_json(
        &config,
        &["run", "--window", "nightly", "--now", "--dry-run"],
        PASSWORD,
    )
    .await;
    let status = |r: &serde_json::Value, name: &str| -> serde_json::Value {
        r["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .unwrap()
            .clone()
    };
    for d in ["ios-001", "nxos-001"] {
        assert_eq!(
            status(&dry.json, d)["status"],
            "would-change",
            "{}",
            dry.text()
        );
    }
    for d in ["ios-002", "nxos-002"] {
        let r = status(&dry.json, d);
        assert_eq!(r["status"], "failed", "{r}");
        assert_eq!(r["step"], "check", "{r}");
        assert!(
            r["error"]
                .as_str()
                .unwrap()
                .contains("object-group BRANCHES not on the device; nothing was sent"),
            "{r}"
        );
    }
    assert_eq!(
        common::config_lines(&lab),
        before,
        "a dry run sends nothing"
    );

    let run = common::run_json(&config, &["run", "--window", "nightly", "--now"], PASSWORD).await;
    assert_eq!(run.code, Some(1), "{}", run.text());
    for d in ["ios-001", "nxos-001"] {
        assert_eq!(status(&run.json, d)["status"], "changed", "{}", run.text());
        let held = lab.acl(d, "LOCK_IT_DOWN").unwrap();
        assert!(
            held.iter().any(|(_, e)| e.contains("BRANCHES")),
            "{d}: {held:?}"
        );
    }
    let after = common::config_lines(&lab);
    for (k, d) in ["ios-002", "nxos-002"].iter().enumerate() {
        let r = status(&run.json, d);
        assert_eq!(r["status"], "failed", "{r}");
        assert_eq!(r["restored"], "nothing was changed on the device", "{r}");
        let i = lab.devices().iter().position(|x| x.name == *d).unwrap();
        assert_eq!(after[i], before[i], "{d}: not one configuration line");
        assert_eq!(lab.acl(d, "LOCK_IT_DOWN"), held_before[k], "{d}: untouched");
    }
    lab.shutdown().await;
}
