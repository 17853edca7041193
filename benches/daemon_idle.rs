//! Idle cost of the daemon: the release binary sleeping until a window a
//! day ahead. Prints its CPU over the measured span as a share of one core
//! (target below 0.1%) and its RSS (target below 20 MB).
//!
//! Run: `cargo bench --bench daemon_idle -- [SECONDS]` (default 60).
#![allow(clippy::disallowed_methods)] // a benchmark reads the wall clock and sleeps
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{cpu_secs, status_kib};

fn main() {
    let secs: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(60);
    let dir = std::env::temp_dir().join(format!("nightshift-idle-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("idle.toml");
    // A window a day from now; its devices are never contacted while idle.
    std::fs::write(
        &config,
        format!(
            "version = 1\n[daemon]\nstate_dir = {:?}\ntimezone = \"UTC\"\ncontrol_socket = {:?}\nkeyring_service = \"nightshift-idle-bench-{}\"\n\n\
             [credentials.lab]\nusername = \"admin\"\ncanary = \"r1\"\n\n\
             [[devices]]\nname = \"r1\"\nhost = \"127.0.0.1\"\nport = 9\nplatform = \"cisco_ios\"\n\n\
             [jobs.show]\nkind = \"exec\"\ndevices = [\"r1\"]\ncommands = [\"show clock\"]\n\n\
             [windows.nightly]\nschedule = \"0 2 * * *\"\nduration = \"1h\"\njobs = [\"show\"]\n",
            dir.join("state").display().to_string(),
            dir.join("control.sock").display().to_string(),
            std::process::id()
        ),
    )
    .unwrap();
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_nightshift"))
        .arg("-c")
        .arg(&config)
        .arg("daemon")
        .env("NIGHTSHIFT_LOG", "warn")
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
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "daemon idle over {wall:.0} s: CPU {cpu:.2} s = {:.3}% of one core (target < 0.1%)",
        100.0 * cpu / wall
    );
    println!(
        "daemon idle RSS {:.1} MB (peak {:.1} MB; target < 20 MB), {threads} threads",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
}
