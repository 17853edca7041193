//! Per-device values: one ACL job written as a template over three sites,
//! each site's subnet from its tag's `vars`, a value from the job, one
//! device overriding it. Every device gets, shows in `--dry-run` and
//! holds its own rendered ACL; an undefined variable is caught by
//! `check-config` with the device and the template's FILE:LINE:COLUMN.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::PASSWORD;
use nightshift::jobs::acl::ace::parse_line;
use std::path::PathBuf;

use nightshift::lab::{Lab, LabSpec};

const TEMPLATE: &str = "remark {{ device }} at {{ site }}
permit tcp {{ net }} any eq 22
permit udp host {{ dns }} any eq 53
deny ip any any log";

/// Device → site.
fn site(device: &str) -> &'static str {
    match device {
        "ios-001" | "ios-002" | "nxos-001" => "a",
        "ios-003" | "ios-004" | "nxos-002" => "b",
        _ => "c",
    }
}

fn net(site: &str) -> &'static str {
    match site {
        "a" => "10.1.0.0 0.0.0.255",
        "b" => "10.2.0.0 0.0.0.255",
        _ => "10.3.0.0 0.0.0.255",
    }
}

/// The lab's config with each device tagged with its site, the sites'
/// vars, and the job's lines as the template.
fn templated(text: &str, sites: &[&str]) -> String {
    let mut out = String::new();
    for (i, block) in text.split("[[devices]]").enumerate() {
        if i > 0 {
            out.push_str("[[devices]]");
        }
        let name = block
            .lines()
            .find_map(|l| l.strip_prefix("name = \""))
            .map(|n| n.trim_end_matches('"').to_string());
        match name {
            Some(n) if i > 0 => {
                let mut b = block.replace(
                    "tags = [\"lab\", ",
                    &format!("tags = [\"site-{}\", \"lab\", ", site(&n)),
                );
                if n == "nxos-003" {
                    b = b.replacen('\n', "\nvars = { dns = \"10.9.9.9\" }\n", 1);
                }
                out.push_str(&b);
            }
            _ => out.push_str(block),
        }
    }
    let mut out = common::with_acl_lines(&out, TEMPLATE);
    out = out.replace(
        "acl_name = \"LOCK_IT_DOWN\"\n",
        "acl_name = \"LOCK_IT_DOWN\"\nvars = { dns = \"10.0.0.53\" }\n",
    );
    let at = out.find("[windows.").unwrap();
    let tags: String = sites
        .iter()
        .map(|s| {
            format!(
                "[tags.site-{s}]\nvars = {{ net = \"{}\", site = \"{}\" }}\n\n",
                net(s),
                s.to_uppercase()
            )
        })
        .collect();
    format!("{}{tags}{}", &out[..at], &out[at..])
}

/// Nine lab devices over three sites, and their config with the vars of
/// the `sites` given (its text, as written).
async fn three_sites(sites: &[&str]) -> (Lab, tempfile::TempDir, PathBuf, String) {
    let (lab, dir, config) = common::lab_with_config(LabSpec {
        ios: 6,
        nxos: 3,
        ..Default::default()
    })
    .await;
    let text = templated(&std::fs::read_to_string(&config).unwrap(), sites);
    std::fs::write(&config, &text).unwrap();
    (lab, dir, config, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sites_each_get_their_own_acl_from_one_template() {
    let (lab, _dir, config, _) = three_sites(&["a", "b", "c"]).await;
    let check = common::ns(&config, &["check-config"], "");
    assert_eq!(check.status.code(), Some(0), "{}", common::text(&check));

    let want = |d: &str| -> Vec<String> {
        let dns = if d == "nxos-003" {
            "10.9.9.9"
        } else {
            "10.0.0.53"
        };
        vec![
            format!("remark {d} at {}", site(d).to_uppercase()),
            format!("permit tcp {} any eq 22", net(site(d))),
            format!("permit udp host {dns} any eq 53"),
            "deny ip any any log".to_string(),
        ]
    };
    let dry = common::run_json(&config, &["run", "lock-it-down", "--dry-run"], PASSWORD).await;
    for d in dry.json["devices"].as_array().unwrap() {
        let name = d["name"].as_str().unwrap();
        assert_eq!(d["status"], "would-change", "{d}");
        let line = format!("+ permit tcp {} any eq 22", net(site(name)));
        assert!(
            d["diff"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!(line)),
            "{name}: {d}"
        );
    }
    assert!(
        dry.stdout.contains("+ permit udp host 10.9.9.9 any eq 53"),
        "{}",
        dry.stdout
    );

    let run = common::run_json(&config, &["run", "lock-it-down"], PASSWORD).await;
    assert_eq!(run.code, Some(0), "{}", run.text());
    for d in lab.devices() {
        let held: Vec<_> = lab
            .acl(&d.name, "LOCK_IT_DOWN")
            .unwrap()
            .into_iter()
            .map(|(_, e)| parse_line(&e).unwrap().entry)
            .collect();
        let want: Vec<_> = want(&d.name)
            .iter()
            .map(|l| parse_line(l).unwrap().entry)
            .collect();
        assert_eq!(held, want, "{}: its own ACL", d.name);
    }
    let again = common::run_json(&config, &["run", "lock-it-down"], PASSWORD).await;
    assert!(
        common::statuses(&again.json)
            .iter()
            .all(|s| *s == "unchanged"),
        "{}",
        again.text()
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undefined_variable_is_caught_by_check_config_with_device_and_position() {
    // Site c has no vars.
    let (lab, _dir, config, text) = three_sites(&["a", "b"]).await;
    let (line, col) = text
        .lines()
        .enumerate()
        .find_map(|(i, l)| {
            l.starts_with("remark {{ device }}")
                .then(|| (i + 1, l.find("site").unwrap() + 1))
        })
        .unwrap();
    let out = common::ns(&config, &["check-config"], "");
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!(
            "{}:{line}:{col}: jobs.lock-it-down.acl_lines: device ios-005: `site` is not defined",
            config.display()
        )),
        "{text}"
    );
    assert!(
        text.contains("hint: set it in `vars` on the device"),
        "{text}"
    );
    // One problem for the position, not one per device.
    assert_eq!(text.matches("is not defined").count(), 1, "{text}");
    lab.shutdown().await;
}
