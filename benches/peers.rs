//! nightshift next to the tools a Python user would reach for, on the same
//! lab, the same ACL, each at full concurrency: Nornir + netmiko (threaded
//! runner) and scrapli's asyncio drivers over asyncssh. Each contender
//! runs as a process of its own under GNU time against a fresh lab; the
//! bench prints wall time, CPU time (user + system) and peak RSS of each,
//! the ratios to nightshift, and checks afterwards, in the lab's own
//! record, that every device holds the intended ACL.
//!
//! Two scenarios (issue #26): 200 devices (100 IOS, 100 NX-OS) at 20 ms
//! round-trip time with the demo ACL, and the same at 150 ms with a
//! 500-entry ACL.
//!
//! Run: `cargo bench --bench peers -- [small|big] [--devices N]` (both
//! scenarios and 200 devices by default). The Python peers live in a venv
//! under `target/peers/bench-venv`, made by `benches/peers/setup` (pinned
//! versions, from PyPI) when it is missing.
#![allow(clippy::disallowed_methods)] // a benchmark reads the wall clock
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nightshift::config::Config;
use nightshift::lab::LabStats;
use serde_json::json;

const PASSWORD: &str = "pw";
const ACL: &str = "LOCK_IT_DOWN";

struct Scenario {
    name: &'static str,
    latency_ms: u64,
    acl: Vec<String>,
}

/// One contender's figures.
struct Figures {
    wall: f64,
    cpu: f64,
    peak_mib: f64,
    done: usize,
    failed: usize,
    /// Devices whose ACL, in the lab's record, is what nightshift left.
    holding: usize,
    unprotected_devices: usize,
}

fn big_acl() -> Vec<String> {
    let mut acl: Vec<String> = (0..499)
        .map(|i| {
            format!(
                "permit tcp 10.{}.{}.0 0.0.0.255 any eq {}",
                i / 250,
                i % 250,
                [22, 443, 8443][i % 3]
            )
        })
        .collect();
    acl.push("deny ip any any log".into());
    acl
}

fn venv() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = root.join("target/peers/bench-venv");
    if !venv.join("bin/python").exists() {
        eprintln!("setting up the Python peers in {}", venv.display());
        let ok = Command::new("bash")
            .arg(root.join("benches/peers/setup"))
            .arg(&venv)
            .status()
            .unwrap()
            .success();
        assert!(ok, "benches/peers/setup failed");
    }
    venv
}

/// A fresh lab: its process, its config and the fleet as JSON for the
/// Python peers.
struct RunningLab {
    child: std::process::Child,
    dir: PathBuf,
    config: PathBuf,
    stats: PathBuf,
}

fn start_lab(devices: usize, latency_ms: u64, tag: &str) -> RunningLab {
    let dir = std::env::temp_dir().join(format!(
        "nightshift-peers-bench-{}-{tag}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("lab.toml");
    let stats = dir.join("stats.json");
    let (ios, nxos) = (devices - devices / 2, devices / 2);
    let mut child = Command::new(env!("CARGO_BIN_EXE_nightshift"))
        .args([
            "lab",
            "--ios",
            &ios.to_string(),
            "--nxos",
            &nxos.to_string(),
        ])
        .args([
            "--dialer-lines",
            "0",
            "--latency",
            &format!("{latency_ms}ms"),
        ])
        .arg("--write-config")
        .arg(&config)
        .arg("--stats")
        .arg(&stats)
        .env("NIGHTSHIFT_LAB_PASSWORD", PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for _ in 0..devices {
        lines.next().unwrap().unwrap();
    }
    std::thread::spawn(move || for _ in lines {});
    while !config.exists() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    RunningLab {
        child,
        dir,
        config,
        stats,
    }
}

impl RunningLab {
    /// Stops the lab (SIGTERM: it writes its stats) and reads its record.
    fn stop(mut self) -> LabStats {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        self.child.wait().unwrap();
        let stats = serde_json::from_str(&std::fs::read_to_string(&self.stats).unwrap()).unwrap();
        let _ = std::fs::remove_dir_all(&self.dir);
        stats
    }
}

/// Rewrites the lab's config for the scenario: full concurrency, the ACL,
/// and every device in one tier. The lab's config puts the NX-OS devices
/// in tier 2 (distribution after access: a staged rollout, which runs the
/// fleet in two waves); the peers have no staging and run all devices at
/// once, so nightshift does too here.
fn set_job(config: &Path, devices: usize, acl: &[String]) {
    let text = std::fs::read_to_string(config).unwrap();
    let text = text
        .replace("concurrency = 20\n", &format!("concurrency = {devices}\n"))
        .replace("\ntier = 2\n", "\ntier = 1\n");
    let start = text.find("acl_lines = \"\"\"\n").unwrap() + "acl_lines = \"\"\"\n".len();
    let end = start + text[start..].find("\n\"\"\"").unwrap();
    let text = format!("{}{}{}", &text[..start], acl.join("\n"), &text[end..]);
    std::fs::write(config, text).unwrap();
}

fn job_json(lab: &RunningLab, devices: usize, acl: &[String]) -> PathBuf {
    let config = Config::load(&lab.config, chrono::Utc::now()).unwrap();
    let fleet: Vec<_> = config
        .devices
        .iter()
        .map(|d| {
            json!({
                "name": d.name,
                "host": d.host,
                "port": d.port,
                "platform": d.platform.to_string(),
            })
        })
        .collect();
    let path = lab.dir.join("job.json");
    let job = json!({
        "devices": fleet,
        "acl_name": ACL,
        "acl_lines": acl,
        "password": PASSWORD,
        "workers": devices,
    });
    std::fs::write(&path, job.to_string()).unwrap();
    path
}

/// Runs `cmd` under GNU time; (wall s, CPU s, peak KiB, stdout).
fn timed(cmd: &mut Command, stdin: &str, dir: &Path) -> (f64, f64, f64, String) {
    let times = dir.join("time.txt");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        eprintln!("{stderr}");
    }
    let t = std::fs::read_to_string(&times).unwrap();
    let f: Vec<f64> = t
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    (
        f[0],
        f[1] + f[2],
        f[3],
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn gnu_time(dir: &Path) -> Command {
    let mut c = Command::new("/usr/bin/time");
    c.arg("-o")
        .arg(dir.join("time.txt"))
        .args(["-f", "%e %U %S %M"]);
    c
}

/// The ACL each device holds, in the lab's rendering.
fn held(stats: &LabStats) -> BTreeMap<String, Option<Vec<String>>> {
    stats
        .devices
        .iter()
        .map(|d| (d.name.clone(), d.acls.get(ACL).cloned()))
        .collect()
}

fn run_nightshift(s: &Scenario, devices: usize) -> (Figures, LabStats) {
    let lab = start_lab(devices, s.latency_ms, "nightshift");
    set_job(&lab.config, devices, &s.acl);
    let report = lab.dir.join("report.json");
    let mut cmd = gnu_time(&lab.dir);
    cmd.arg(env!("CARGO_BIN_EXE_nightshift"))
        .arg("-c")
        .arg(&lab.config)
        .args(["run", "--password-stdin", "lock-it-down", "--json"])
        .arg(&report);
    let (wall, cpu, kib, _) = timed(&mut cmd, &format!("{PASSWORD}\n{PASSWORD}\n"), &lab.dir);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let statuses: Vec<&str> = json["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    let done = statuses.iter().filter(|s| **s == "changed").count();
    let stats = lab.stop();
    let fig = Figures {
        wall,
        cpu,
        peak_mib: kib / 1024.0,
        done,
        failed: statuses.len() - done,
        holding: stats.devices.len(),
        unprotected_devices: stats
            .devices
            .iter()
            .filter(|d| d.unprotected_ms > 0)
            .count(),
    };
    (fig, stats)
}

fn run_peer(
    s: &Scenario,
    devices: usize,
    script: &str,
    venv: &Path,
    reference: &BTreeMap<String, Option<Vec<String>>>,
) -> Figures {
    let lab = start_lab(devices, s.latency_ms, script);
    let job = job_json(&lab, devices, &s.acl);
    let mut cmd = gnu_time(&lab.dir);
    cmd.arg(venv.join("bin/python"))
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("benches/peers")
                .join(script),
        )
        .arg(&job);
    let (wall, cpu, kib, out) = timed(&mut cmd, "", &lab.dir);
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_default();
    let stats = lab.stop();
    let now = held(&stats);
    Figures {
        wall,
        cpu,
        peak_mib: kib / 1024.0,
        done: summary["done"].as_u64().unwrap_or(0) as usize,
        failed: summary["failed"].as_u64().unwrap_or(devices as u64) as usize,
        holding: now
            .iter()
            .filter(|(name, acl)| reference.get(*name) == Some(acl))
            .count(),
        unprotected_devices: stats
            .devices
            .iter()
            .filter(|d| d.unprotected_ms > 0)
            .count(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let devices = args
        .iter()
        .position(|a| a == "--devices")
        .and_then(|i| args.get(i + 1))
        .map_or(200, |n| n.parse().unwrap());
    let only: Option<&str> = args
        .iter()
        .find(|a| *a == "small" || *a == "big")
        .map(String::as_str);
    let demo: Vec<String> = nightshift::lab::LOCK_IT_DOWN
        .iter()
        .map(|s| s.to_string())
        .collect();
    let scenarios = [
        Scenario {
            name: "small",
            latency_ms: 20,
            acl: demo,
        },
        Scenario {
            name: "big",
            latency_ms: 150,
            acl: big_acl(),
        },
    ];
    let venv = venv();
    for s in scenarios
        .iter()
        .filter(|s| only.is_none_or(|o| o == s.name))
    {
        println!(
            "== {}: {devices} devices ({} IOS, {} NX-OS), {} ms round trip, {}-entry ACL, concurrency {devices}",
            s.name,
            devices - devices / 2,
            devices / 2,
            s.latency_ms,
            s.acl.len()
        );
        let (ns, stats) = run_nightshift(s, devices);
        let reference = held(&stats);
        let peers = [
            ("Nornir + netmiko", "peer_nornir.py"),
            ("scrapli asyncio", "peer_scrapli.py"),
        ];
        println!(
            "{:<18} {:>8} {:>8} {:>9} {:>6} {:>6} {:>8} {:>12} {:>10} {:>10}",
            "contender",
            "wall s",
            "CPU s",
            "peak MiB",
            "done",
            "failed",
            "holding",
            "unprotected",
            "wall ×",
            "CPU ×"
        );
        let row = |name: &str, f: &Figures| {
            println!(
                "{:<18} {:>8.2} {:>8.2} {:>9.1} {:>6} {:>6} {:>8} {:>12} {:>10.1} {:>10.1}",
                name,
                f.wall,
                f.cpu,
                f.peak_mib,
                f.done,
                f.failed,
                f.holding,
                f.unprotected_devices,
                f.wall / ns.wall,
                f.cpu / ns.cpu
            );
        };
        row("nightshift", &ns);
        for (name, script) in peers {
            let f = run_peer(s, devices, script, &venv, &reference);
            row(name, &f);
        }
        println!(
            "(wall ×, CPU ×: the contender's figure over nightshift's; holding: devices whose ACL, in the lab's record, is what nightshift left; unprotected: devices whose ACL was bound while absent or empty for a moment)"
        );
    }
}
