//! Devices behind jump hosts: OpenSSH's sshd, started here on loopback, is
//! the bastion (forwarding allowed, key and password logins, its log read
//! to count logins); lab devices sit behind it. A push through one bastion
//! reaches every device with a handful of bastion logins; a wrong bastion
//! password costs one failed login and touches no device; a changed
//! bastion key refuses every device behind it; a stopped bastion fails only
//! its devices, named as bastion failures; two hops work.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use common::PASSWORD;
#[path = "common/sshd.rs"]
mod sshd;
use nightshift::clock::SystemClock;
use nightshift::config::Config;
use nightshift::device::Login;
use nightshift::engine::{Engine, Progress, RunPlan, RunReport};
use nightshift::jobs::fleet;
use nightshift::lab::{Lab, LabSpec};
use secrecy::SecretString;
use sshd::{Sshd, start_sshd};
use tokio_util::sync::CancellationToken;

/// The test user's password on the bastion (the account is made by
/// `.ci/test`; the password is set here, for sshd's password login).
const BASTION_USER: &str = "nightshift-test";
const BASTION_PASSWORD: &str = "bastion-Pass-1";

const BASTION: &str = "AllowTcpForwarding yes\nLogLevel DEBUG1\nMaxStartups 200:30:400\nPasswordAuthentication yes\nPermitRootLogin prohibit-password";

fn bastion() -> Sshd {
    start_sshd(&["-t", "ed25519"], &["-t", "ed25519"], BASTION)
}

fn set_bastion_password() {
    let exists = std::process::Command::new("id")
        .arg(BASTION_USER)
        .output()
        .unwrap()
        .status
        .success();
    assert!(
        exists,
        "user {BASTION_USER} is missing: `bash .ci/test` creates it"
    );
    let mut child = std::process::Command::new("chpasswd")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{BASTION_USER}:{BASTION_PASSWORD}\n").as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// The bastion's host key in a known_hosts file of its own.
fn bastion_known_hosts(b: &Sshd) -> String {
    let (target, _) = b.target(nightshift::config::AlgorithmProfile::Modern);
    target.ssh.known_hosts.display().to_string()
}

/// A `[jump_hosts.NAME]` table logging in with the sshd's user key.
fn key_jump(name: &str, b: &Sshd, extra: &str) -> String {
    format!(
        "\n[jump_hosts.{name}]\nhost = \"127.0.0.1\"\nport = {}\nusername = \"root\"\nkey_file = {:?}\nknown_hosts = {:?}\n{extra}",
        b.port,
        b.dir.path().join("user_key").display().to_string(),
        bastion_known_hosts(b),
    )
}

/// Lines in the sshd's log containing `what`.
fn logged(b: &Sshd, what: &str) -> usize {
    b.log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(what))
        .count()
}

fn lab_login() -> Login {
    Login {
        username: "admin".into(),
        password: Some(SecretString::from(PASSWORD)),
        enable_secret: Some(SecretString::from(PASSWORD)),
        key: None,
    }
}

/// Pushes the lab's ACL job to every device, in this process.
async fn push(config: &Path, logins: HashMap<String, Login>, concurrency: usize) -> RunReport {
    let now = nightshift::clock::Clock::now(&SystemClock);
    let mut config = Config::load(config, now).unwrap();
    for j in &mut config.jobs {
        j.concurrency = concurrency;
    }
    let targets: Vec<usize> = (0..config.devices.len()).collect();
    let links = Arc::new(fleet::links(&config, &targets, &logins).unwrap());
    let engine = Engine {
        config: Arc::new(config),
        links,
        clock: Arc::new(SystemClock),
        stop: CancellationToken::new(),
        progress: Arc::new(Progress::default()),
    };
    engine
        .run(&RunPlan {
            run_id: format!("jump-{}", rand::random::<u32>()),
            window: None,
            jobs: vec!["lock-it-down".into()],
            deadline: None,
            dry_run: false,
            only: None,
            ..RunPlan::default()
        })
        .await
        .unwrap()
}

/// (device, status, detail as text) of every device.
fn outcomes(r: &RunReport) -> Vec<(String, String, String)> {
    r.jobs
        .iter()
        .flat_map(|j| &j.devices)
        .map(|d| {
            (
                d.device.clone(),
                d.status.clone(),
                d.detail
                    .as_ref()
                    .map(|x| x.get().to_string())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

fn add(config: &Path, ssh_jump: Option<&str>, tables: &str) {
    let mut text = std::fs::read_to_string(config).unwrap();
    if let Some(j) = ssh_jump {
        text = text.replacen("[ssh]\n", &format!("[ssh]\njump = \"{j}\"\n"), 1);
    }
    text.push_str(tables);
    std::fs::write(config, text).unwrap();
}

fn lab_logins(lab: &Lab) -> u64 {
    lab.stats().devices.iter().map(|d| d.logins).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_devices_through_one_bastion_with_a_handful_of_logins() {
    let b = bastion();
    let (lab, _dir, config) = common::lab_with_config(LabSpec {
        ios: 150,
        nxos: 50,
        ..Default::default()
    })
    .await;
    let direct = config.with_extension("direct.toml");
    std::fs::copy(&config, &direct).unwrap();
    add(&config, Some("b1"), &key_jump("b1", &b, ""));
    let logins = HashMap::from([("lab".to_string(), lab_login())]);

    let t = Instant::now();
    let run = push(&config, logins.clone(), 50).await;
    let through = t.elapsed();
    let all = outcomes(&run);
    assert_eq!(all.len(), 200);
    let bad: Vec<_> = all.iter().filter(|o| o.1 != "changed").collect();
    assert!(bad.is_empty(), "{bad:?}");
    let bastion_logins = logged(&b, "Accepted publickey for root");
    eprintln!(
        "200 devices through one bastion at concurrency 50: {:.2} s, {bastion_logins} bastion logins, {} forwarded channels",
        through.as_secs_f64(),
        logged(&b, "server_request_direct_tcpip")
    );
    assert!(
        (1..=4).contains(&bastion_logins),
        "{bastion_logins} bastion logins"
    );
    for st in lab.stats().devices {
        assert_eq!(st.unprotected_ms, 0, "{}", st.name);
        assert_eq!(
            st.acls["LOCK_IT_DOWN"].last().unwrap(),
            "deny ip any any log"
        );
    }

    // What the bastion costs: the same devices, now all unchanged, read
    // through it and directly.
    let t = Instant::now();
    let again = push(&config, logins.clone(), 50).await;
    let via = t.elapsed();
    assert!(outcomes(&again).iter().all(|o| o.1 == "unchanged"));
    let t = Instant::now();
    let again = push(&direct, logins, 50).await;
    let straight = t.elapsed();
    assert!(outcomes(&again).iter().all(|o| o.1 == "unchanged"));
    eprintln!(
        "200 unchanged devices at concurrency 50: {:.2} s through the bastion, {:.2} s directly; bastion logins in all {}",
        via.as_secs_f64(),
        straight.as_secs_f64(),
        logged(&b, "Accepted publickey for root")
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_bastion_password_costs_one_failed_login_and_touches_no_device() {
    set_bastion_password();
    let b = bastion();
    let (lab, _dir, config) = common::lab_with_config(LabSpec {
        ios: 20,
        nxos: 0,
        ..Default::default()
    })
    .await;
    // The bastion logs in with a credential profile of its own, proved
    // on the bastion itself (its canary).
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[[devices]]\n", "[[devices]]\ncredentials = \"lab\"\n")
        .replacen(
            "[[devices]]",
            &format!("[credentials.bastion]\nusername = \"{BASTION_USER}\"\ncanary = \"b1\"\n\n[[devices]]"),
            1,
        );
    std::fs::write(&config, text).unwrap();
    add(
        &config,
        Some("b1"),
        &format!(
            "\n[jump_hosts.b1]\nhost = \"127.0.0.1\"\nport = {}\ncredentials = \"bastion\"\nknown_hosts = {:?}\n",
            b.port,
            bastion_known_hosts(&b)
        ),
    );
    // `credentials set` proves the bastion's profile with one login to the
    // bastion (its canary), touching no device: first a wrong password.
    let secrets = config.with_extension("secrets");
    let set = |password: &str| {
        common::ns(
            &config,
            &[
                "credentials",
                "set",
                "--profile",
                "bastion",
                "--store",
                "files",
                "--creds-dir",
                secrets.to_str().unwrap(),
                "--password-stdin",
            ],
            &format!("{password}\n"),
        )
    };
    let out = set("not-the-password");
    assert_eq!(out.status.code(), Some(1), "{}", common::text(&out));
    assert_eq!(logged(&b, "Failed password for"), 1);
    let out = set(BASTION_PASSWORD);
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));
    assert!(secrets.join("credentials.bastion").exists());
    assert_eq!(logged(&b, "Accepted password for nightshift-test"), 1);
    assert_eq!(lab_logins(&lab), 0, "no device touched");

    let bastion_login = |password: &str| Login {
        username: BASTION_USER.into(),
        password: Some(SecretString::from(password.to_string())),
        enable_secret: None,
        key: None,
    };
    let logins = HashMap::from([
        ("lab".to_string(), lab_login()),
        ("bastion".to_string(), bastion_login("not-the-password")),
    ]);
    let run = push(&config, logins, 10).await;
    let all = outcomes(&run);
    assert!(all.iter().all(|o| o.1 == "failed"), "{all:?}");
    for (d, _, detail) in &all {
        assert!(
            detail.contains("through jump host b1") && detail.contains("login rejected"),
            "{d}: {detail}"
        );
    }
    assert_eq!(
        logged(&b, "Failed password for"),
        2,
        "one failed bastion login more"
    );
    assert_eq!(lab_logins(&lab), 0, "no device touched");

    // The right password: every device, through the bastion.
    let logins = HashMap::from([
        ("lab".to_string(), lab_login()),
        ("bastion".to_string(), bastion_login(BASTION_PASSWORD)),
    ]);
    let run = push(&config, logins, 10).await;
    assert!(outcomes(&run).iter().all(|o| o.1 == "changed"));
    assert!(logged(&b, "Accepted password for nightshift-test") >= 2);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_bastion_key_refuses_every_device_behind_it() {
    let b = bastion();
    let (lab, _dir, config) = common::lab_with_config(LabSpec {
        ios: 5,
        nxos: 0,
        ..Default::default()
    })
    .await;
    add(&config, Some("b1"), &key_jump("b1", &b, ""));
    // Another key recorded for the bastion's address.
    let other = b.dir.path().join("other_key");
    let ok = std::process::Command::new("ssh-keygen")
        .args(["-q", "-N", "", "-t", "ed25519", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(ok.success());
    let pubkey = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let mut f = pubkey.split_whitespace();
    std::fs::write(
        bastion_known_hosts(&b),
        format!(
            "[127.0.0.1]:{} {} {}\n",
            b.port,
            f.next().unwrap(),
            f.next().unwrap()
        ),
    )
    .unwrap();
    let run = push(
        &config,
        HashMap::from([("lab".to_string(), lab_login())]),
        5,
    )
    .await;
    let all = outcomes(&run);
    assert_eq!(all.len(), 5);
    for (d, status, detail) in &all {
        assert_eq!(status, "failed", "{d}");
        assert!(
            detail.contains("through jump host b1") && detail.contains("HOST KEY CHANGED"),
            "{d}: {detail}"
        );
    }
    assert_eq!(lab_logins(&lab), 0);
    assert_eq!(
        logged(&b, "Accepted"),
        0,
        "no login to an impersonated bastion"
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_bastion_fails_only_its_devices_named_as_bastion_failures() {
    let b = bastion();
    let (lab, _dir, config) = common::lab_with_config(LabSpec {
        ios: 4,
        nxos: 3,
        ..Default::default()
    })
    .await;
    // NX-OS devices (tag "distribution") go through b1; IOS directly.
    add(
        &config,
        None,
        &key_jump("b1", &b, "tags = [\"distribution\"]\n"),
    );
    let mut b = b;
    b.stop();
    let run = push(
        &config,
        HashMap::from([("lab".to_string(), lab_login())]),
        7,
    )
    .await;
    for (d, status, detail) in outcomes(&run) {
        if d.starts_with("nxos") {
            assert_eq!(status, "failed", "{d}");
            assert!(
                detail.contains("through jump host b1") && detail.contains("cannot connect"),
                "{d}: {detail}"
            );
            assert!(detail.contains("fix the jump host b1"), "{d}: {detail}");
        } else {
            assert_eq!(status, "changed", "{d}: {detail}");
        }
    }
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hops() {
    let outer = bastion();
    let inner = bastion();
    let (lab, _dir, config) = common::lab_with_config(LabSpec {
        ios: 3,
        nxos: 1,
        ..Default::default()
    })
    .await;
    add(
        &config,
        Some("inner"),
        &(key_jump("outer", &outer, "") + &key_jump("inner", &inner, "jump = \"outer\"\n")),
    );
    let run = push(
        &config,
        HashMap::from([("lab".to_string(), lab_login())]),
        4,
    )
    .await;
    let all = outcomes(&run);
    assert!(all.iter().all(|o| o.1 == "changed"), "{all:?}");
    assert!(logged(&outer, "Accepted publickey") >= 1);
    assert!(logged(&inner, "Accepted publickey") >= 1);
    // The outer bastion forwarded to the inner one only, never to a device.
    let outer_log = outer.log.lock().unwrap().join("\n");
    let lab_ports: Vec<String> = lab.stats().devices.iter().map(|d| d.name.clone()).collect();
    assert_eq!(lab_ports.len(), 4);
    assert_eq!(
        logged(&outer, "server_request_direct_tcpip"),
        logged(&outer, &format!("target 127.0.0.1 port {}", inner.port)),
        "{outer_log}"
    );
    assert!(
        outer_log.contains(&format!("target 127.0.0.1 port {}", inner.port)),
        "{outer_log}"
    );
    lab.shutdown().await;
}

#[test]
fn check_config_reports_unknown_jump_hosts_and_loops() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        r#"version = 1
[daemon]
timezone = "UTC"
state_dir = "/tmp/x"
[ssh]
jump = "bastoin"
[credentials.lab]
canary = "r1"
[[devices]]
name = "r1"
host = "192.0.2.1"
platform = "cisco_ios"
jump = "nowhere"
[jump_hosts.a]
host = "192.0.2.10"
username = "u"
key_file = "/k"
jump = "b"
[jump_hosts.b]
host = "192.0.2.11"
username = "u"
key_file = "/k"
jump = "a"
[jump_hosts.bastion]
host = "192.0.2.12"
username = "u"
key_file = "/k"
[jump_hosts.c]
host = "192.0.2.13"
credentials = "nope"
"#,
    )
    .unwrap();
    let out = common::ns(&config, &["check-config"], "");
    let text = common::text(&out);
    assert!(!out.status.success());
    for want in [
        "unknown jump host \"bastoin\"",
        "did you mean \"bastion\"",
        "unknown jump host \"nowhere\"",
        "jump hosts form a loop: a -> b -> a",
        "jump hosts form a loop: b -> a -> b",
        "unknown credential profile \"nope\"",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    // Each with its line and column.
    assert!(text.contains("c.toml:6:"), "{text}");
}
