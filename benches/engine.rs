//! Engine throughput: an ACL push over a lab of DEVICES IOS devices with
//! LATENCY per command at CONCURRENCY devices at once. Prints wall time, the
//! ideal (devices ÷ concurrency × one device's time, measured alone), their
//! ratio, this process's CPU seconds and its peak RSS per in-flight device.
//!
//! Run: `cargo bench --bench engine -- [DEVICES] [CONCURRENCY] [LATENCY_MS]
//! [--timeline] [--phases]` (defaults 5000 1000 50). The lab is a separate
//! `nightshift lab` process. `--phases` adds where each device's time went
//! (alone, in the first wave, later), each wave's spread and the tail.
#![allow(clippy::disallowed_methods)] // a benchmark reads the wall clock
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use nightshift::clock::SystemClock;
use nightshift::config::Config;
use nightshift::device::Login;
use nightshift::engine::{Engine, Progress, RunPlan};
use nightshift::jobs::fleet;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

mod common;
#[path = "common/phases.rs"]
mod phases;

// The engine runs in this process: the same allocator as the binary.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use common::{cpu_secs, status_kib};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let phases = std::env::args()
        .any(|a| a == "--phases")
        .then(phases::record);
    let devices: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(5000);
    let concurrency: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let latency: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(50);
    let dir = std::env::temp_dir().join(format!("nightshift-engine-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("lab.toml");
    let mut lab = Command::new(env!("CARGO_BIN_EXE_nightshift"))
        .args([
            "lab",
            "--ios",
            &(devices + 3).to_string(),
            "--nxos",
            "0",
            "--dialer-lines",
            "0",
            "--latency",
            &format!("{latency}ms"),
        ])
        .arg("--write-config")
        .arg(&config_path)
        .env("NIGHTSHIFT_LAB_PASSWORD", "pw")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(lab.stdout.take().unwrap()).lines();
    for _ in 0..devices + 3 {
        lines.next().unwrap().unwrap();
    }
    std::thread::spawn(move || for _ in lines {});
    let mut config = Config::load(&config_path, chrono::Utc::now()).unwrap();
    config.daemon.state_dir = dir.join("state");
    for j in &mut config.jobs {
        j.concurrency = concurrency;
    }
    let targets: Vec<usize> = (0..config.devices.len()).collect();
    let login = Login {
        username: "admin".into(),
        password: Some(SecretString::from("pw")),
        enable_secret: Some(SecretString::from("pw")),
        key: None,
    };
    let logins = HashMap::from([("lab".to_string(), login)]);
    let links = Arc::new(fleet::links(&config, &targets, &logins).unwrap());
    let engine = Engine {
        config: Arc::new(config),
        links,
        clock: Arc::new(SystemClock),
        stop: CancellationToken::new(),
        progress: Arc::new(Progress::default()),
    };
    let plan = |id: &str, only: Vec<usize>| RunPlan {
        run_id: id.into(),
        window: None,
        jobs: vec!["lock-it-down".into()],
        deadline: None,
        dry_run: false,
        only: Some(only),
    };

    // One device's time, alone (median of three).
    let mut singles = Vec::new();
    for i in 0..3 {
        let t = Instant::now();
        let r = engine
            .run(&plan(&format!("single-{i}"), vec![i]))
            .await
            .unwrap();
        assert_eq!(r.jobs[0].devices[0].status, "changed");
        singles.push(t.elapsed().as_secs_f64());
    }
    singles.sort_by(f64::total_cmp);
    let one = singles[1];

    let me = std::process::id();
    let lab_pid = lab.id();
    // The peak is the run's own: reset the high-water mark first.
    std::fs::write(format!("/proc/{me}/clear_refs"), "5").unwrap();
    let rss0 = status_kib(me, "VmRSS:");
    let (cpu0, lab_cpu0) = (cpu_secs(me), cpu_secs(lab_pid));
    let t = Instant::now();
    // `--timeline`: devices done and cores busy in both processes every
    // half second, to see the waves and bursts of a run.
    if std::env::args().any(|a| a == "--timeline") {
        let (progress, lab_pid) = (engine.progress.clone(), lab.id());
        std::thread::spawn(move || {
            let t = Instant::now();
            let (mut c0, mut l0) = (cpu_secs(me), cpu_secs(lab_pid));
            loop {
                std::thread::sleep(std::time::Duration::from_millis(500));
                let (c, l) = (cpu_secs(me), cpu_secs(lab_pid));
                eprintln!(
                    "  {:5.2} s  {}  cores busy: nightshift {:.2}, lab {:.2}",
                    t.elapsed().as_secs_f64(),
                    progress.line(),
                    (c - c0) * 2.0,
                    (l - l0) * 2.0
                );
                (c0, l0) = (c, l);
            }
        });
    }
    let report = engine
        .run(&plan("bench", (3..devices + 3).collect()))
        .await
        .unwrap();
    let wall = t.elapsed().as_secs_f64();
    let phases = phases.map(|log| phases::report(&log, t, concurrency));
    let (cpu, lab_cpu) = (cpu_secs(me) - cpu0, cpu_secs(lab_pid) - lab_cpu0);
    let hwm = status_kib(me, "VmHWM:");
    let counts = report.counts();
    let _ = lab.kill();
    let _ = lab.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let ideal = devices.div_ceil(concurrency) as f64 * one;
    println!(
        "engine: ACL push over {devices} lab devices, {latency} ms per command, concurrency {concurrency}"
    );
    println!("  results                  {counts:?}");
    println!("  one device alone         {one:>8.3} s");
    println!("  wall                     {wall:>8.2} s");
    println!("  ideal                    {ideal:>8.2} s  (devices / concurrency x one device)");
    println!("  ratio                    {:>8.3}", wall / ideal);
    println!(
        "  CPU (nightshift)         {cpu:>8.2} s  ({:.2} ms per device)",
        cpu * 1000.0 / devices as f64
    );
    println!("  CPU (lab, other process) {lab_cpu:>8.2} s");
    println!(
        "  peak RSS                 {:>8.1} MiB ({:.1} KiB per in-flight device over {:.1} MiB before)",
        hwm as f64 / 1024.0,
        hwm.saturating_sub(rss0) as f64 / concurrency as f64,
        rss0 as f64 / 1024.0
    );
    if let Some(text) = phases {
        print!("{text}");
    }
}
