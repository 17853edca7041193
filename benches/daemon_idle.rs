//! Idle cost of the daemon: the release binary sleeping until a window a
//! day ahead. Prints its CPU over the measured span as a share of one core
//! (target below 0.1%) and its RSS (target below 20 MB), then its RSS idle
//! after loading a 5,000-device config.
//!
//! Run: `cargo bench --bench daemon_idle -- [SECONDS]` (default 60).
#![allow(clippy::disallowed_methods)] // a benchmark reads the wall clock and sleeps
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{cpu_secs, status_kib};

/// Writes a config with `devices` devices and a window a day from now (its
/// devices are never contacted while idle).
fn write_config(dir: &std::path::Path, devices: usize) -> std::path::PathBuf {
    let config = dir.join(format!("idle-{devices}.toml"));
    let mut text = format!(
        "version = 1\n[daemon]\nstate_dir = {:?}\ntimezone = \"UTC\"\ncontrol_socket = {:?}\nkeyring_service = \"nightshift-idle-bench-{}\"\n\n\
         [credentials.lab]\nusername = \"admin\"\ncanary = \"r1\"\n\n",
        dir.join(format!("state-{devices}")).display().to_string(),
        dir.join(format!("control-{devices}.sock"))
            .display()
            .to_string(),
        std::process::id()
    );
    for i in 1..=devices {
        text.push_str(&format!(
            "[[devices]]\nname = \"r{i}\"\nhost = \"127.0.0.1\"\nport = 9\nplatform = \"cisco_ios\"\ntags = [\"site-{}\"]\n\n",
            i % 50
        ));
    }
    text.push_str(
        "[jobs.show]\nkind = \"exec\"\ndevices = [\"r*\"]\ncommands = [\"show clock\"]\n\n\
         [windows.nightly]\nschedule = \"0 2 * * *\"\nduration = \"1h\"\njobs = [\"show\"]\n",
    );
    std::fs::write(&config, text).unwrap();
    config
}

/// Starts the daemon as the unit does, lets it settle, and measures it for
/// `secs`: (CPU seconds, wall seconds, RSS KiB, peak RSS KiB, threads).
fn measure(config: &std::path::Path, secs: u64) -> (f64, f64, u64, u64, String) {
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_nightshift"))
        .arg("-c")
        .arg(config)
        .arg("daemon")
        .env("NIGHTSHIFT_LOG", "warn")
        // As systemd/nightshift.service sets it.
        .env("MIMALLOC_PURGE_DELAY", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = daemon.id();
    // Let it start (config, socket, the credential check that finds nothing stored).
    std::thread::sleep(Duration::from_secs(3));
    let cpu0 = cpu_secs(pid);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let cpu = cpu_secs(pid) - cpu0;
    let wall = t0.elapsed().as_secs_f64();
    let rss = status_kib(pid, "VmRSS:");
    let hwm = status_kib(pid, "VmHWM:");
    let threads = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:").map(|v| v.trim().to_string()))
        .unwrap_or_default();
    let _ = daemon.kill();
    let _ = daemon.wait();
    (cpu, wall, rss, hwm, threads)
}

fn main() {
    let secs: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(60);
    let dir = std::env::temp_dir().join(format!("nightshift-idle-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cpu, wall, rss, hwm, threads) = measure(&write_config(&dir, 1), secs);
    println!(
        "daemon idle over {wall:.0} s: CPU {cpu:.2} s = {:.3}% of one core (target < 0.1%)",
        100.0 * cpu / wall
    );
    println!(
        "daemon idle RSS {:.1} MB (peak {:.1} MB; target < 20 MB), {threads} threads",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    // The same after loading a large fleet: what it holds between windows.
    let (_, _, rss, hwm, _) = measure(&write_config(&dir, 5000), 5);
    println!(
        "daemon idle RSS with 5,000 devices {:.1} MB (peak {:.1} MB while loading)",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    let _ = std::fs::remove_dir_all(&dir);
}
