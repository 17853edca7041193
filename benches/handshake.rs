//! The CPU cost of a whole session (TCP, key exchange, login, a shell, one
//! command, logout) against OpenSSH's sshd configured like old IOS —
//! `diffie-hellman-group-exchange-sha1` only, `ssh-rsa`, `aes256-ctr`,
//! `hmac-sha1` — for nightshift's legacy profile and for OpenSSH's own
//! client, side by side on the same server.
//!
//! `cargo bench --bench handshake [-- --sessions N]` (release). Prints the
//! CPU per session of each, their ratio (target: nightshift within 3× of
//! OpenSSH) and the group sizes each client asked for.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods)]

#[path = "common/mod.rs"]
mod common;
#[path = "../tests/common/sshd.rs"]
mod sshd;

use std::process::{Command, Stdio};

use nightshift::config::AlgorithmProfile;
use nightshift::device::Session;

const LIKE_OLD_IOS: &str = "HostKeyAlgorithms ssh-rsa\nKexAlgorithms diffie-hellman-group-exchange-sha1\nCiphers aes256-ctr\nMACs hmac-sha1\nPubkeyAcceptedAlgorithms +ssh-rsa";

/// CPU seconds of this process's waited-for children (cutime + cstime).
fn children_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    (f[13].parse::<u64>().unwrap() + f[14].parse::<u64>().unwrap()) as f64 / 100.0
}

fn ssh_args(sshd: &sshd::Sshd) -> Vec<String> {
    let key = sshd.dir.path().join("user_key");
    [
        "-o",
        "KexAlgorithms=diffie-hellman-group-exchange-sha1",
        "-o",
        "HostKeyAlgorithms=ssh-rsa",
        "-o",
        "Ciphers=aes256-ctr",
        "-o",
        "MACs=hmac-sha1",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "LogLevel=ERROR",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        "-i".into(),
        key.display().to_string(),
        "-p".into(),
        sshd.port.to_string(),
        "root@127.0.0.1".into(),
    ])
    .collect()
}

fn main() {
    let mut sessions = 10usize;
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--sessions") {
        sessions = args[i + 1].parse().unwrap();
    }
    let sshd = sshd::start_sshd(
        &["-t", "rsa", "-b", "2048"],
        &["-t", "ed25519"],
        LIKE_OLD_IOS,
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let me = std::process::id();

    // nightshift's legacy profile, in this process.
    let (target, known) = sshd.target(AlgorithmProfile::Legacy);
    let login = sshd.login(false);
    let before = common::cpu_secs(me);
    let t0 = std::time::Instant::now();
    runtime.block_on(async {
        for _ in 0..sessions {
            let mut s = Session::open(&target, &login, &known).await.unwrap();
            assert_eq!(s.negotiated().kex, "diffie-hellman-group-exchange-sha1");
            assert_eq!(
                s.command("show version").await.unwrap(),
                "OpenSSH interop device"
            );
            s.close().await;
        }
    });
    let ns_cpu = (common::cpu_secs(me) - before) / sessions as f64;
    let ns_wall = t0.elapsed().as_secs_f64() / sessions as f64;

    // OpenSSH's client, the same session.
    let base = ssh_args(&sshd);
    let before = children_cpu_secs();
    let t0 = std::time::Instant::now();
    for _ in 0..sessions {
        let out = Command::new("ssh")
            .args(&base)
            .stdin(Stdio::null())
            .output()
            .expect("ssh (openssh-client)");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("sshd-cli#"),
            "{out:?}"
        );
    }
    let ssh_cpu = (children_cpu_secs() - before) / sessions as f64;
    let ssh_wall = t0.elapsed().as_secs_f64() / sessions as f64;

    // What OpenSSH asks the server for.
    let verbose = Command::new("ssh")
        .args(&base)
        .arg("-v")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let asked = String::from_utf8_lossy(&verbose.stderr)
        .lines()
        .find(|l| l.contains("SSH2_MSG_KEX_DH_GEX_REQUEST"))
        .unwrap_or("?")
        .to_string();
    let ours = nightshift::device::legacy_gex();
    println!(
        "sshd offering only diffie-hellman-group-exchange-sha1 (ssh-rsa 2048, aes256-ctr, hmac-sha1), {sessions} sessions each, release"
    );
    println!(
        "  nightshift (legacy profile): {:>7.1} ms CPU per session, {:>7.1} ms wall; asks {}<{}<{}",
        ns_cpu * 1000.0,
        ns_wall * 1000.0,
        ours.min_group_size(),
        ours.preferred_group_size(),
        ours.max_group_size()
    );
    println!(
        "  OpenSSH client:              {:>7.1} ms CPU per session, {:>7.1} ms wall; {}",
        ssh_cpu * 1000.0,
        ssh_wall * 1000.0,
        asked.trim_start_matches("debug1: ")
    );
    println!(
        "  ratio (nightshift / OpenSSH, CPU): {:.2} (target: 3 or less)",
        ns_cpu / ssh_cpu.max(0.001)
    );
}
