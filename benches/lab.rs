//! Lab capacity: one `nightshift lab` process serving 10,000 idle devices.
//! Prints its RSS per idle device and its CPU time per SSH session
//! (login, `show version`, `exit`), read from /proc for the lab process
//! alone while this process drives it.
//!
//! Run: `cargo bench --bench lab` (release build). Optional arguments:
//! DEVICES (default 10000) SESSIONS (default 1000).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Polling a child process from a plain (non-async) test thread.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::ChannelMsg;
use russh::client::{self, Handler};

const PASSWORD: &str = "bench-pw";

struct AcceptLabKey;

impl Handler for AcceptLabKey {
    type Error = russh::Error;
    // The bench only measures the lab; host keys are checked by the tests.
    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

fn start_lab(devices: usize) -> (Child, Vec<u16>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nightshift"))
        .args([
            "lab",
            "--ios",
            &devices.to_string(),
            "--nxos",
            "0",
            "--dialer-lines",
            "0",
            "--latency",
            "0ms",
        ])
        .env("NIGHTSHIFT_LAB_PASSWORD", PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut ports = Vec::with_capacity(devices);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while ports.len() < devices {
        let line = lines.next().unwrap().unwrap();
        ports.push(line.rsplit(':').next().unwrap().parse().unwrap());
    }
    // Keep reading in the background so the pipe never fills.
    std::thread::spawn(move || for _ in lines {});
    (child, ports)
}

async fn session(config: Arc<client::Config>, port: u16) {
    let mut h = client::connect(config, ("127.0.0.1", port), AcceptLabKey)
        .await
        .unwrap();
    assert!(
        h.authenticate_password("admin", PASSWORD)
            .await
            .unwrap()
            .success()
    );
    let mut ch = h.channel_open_session().await.unwrap();
    ch.request_pty(true, "vt100", 200, 24, 0, 0, &[])
        .await
        .unwrap();
    ch.request_shell(true).await.unwrap();
    ch.data_bytes(&b"terminal length 0\rshow version\rexit\r"[..])
        .await
        .unwrap();
    let mut seen = String::new();
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(30), ch.wait()).await {
        match msg {
            ChannelMsg::Data { data } => seen.push_str(&String::from_utf8_lossy(&data)),
            ChannelMsg::Close | ChannelMsg::Eof => break,
            _ => {}
        }
    }
    assert!(seen.contains("Cisco IOS Software"));
}

mod common;
use common::{cpu_secs, status_kib};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let devices: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let sessions: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1_000);

    let (mut one, _) = start_lab(1);
    std::thread::sleep(Duration::from_millis(300));
    let base_rss = status_kib(one.id(), "VmRSS:");
    one.kill().unwrap();
    one.wait().unwrap();

    let t = Instant::now();
    let (mut lab, ports) = start_lab(devices);
    let started = t.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let pid = lab.id();
    let rss = status_kib(pid, "VmRSS:");
    let cpu_idle0 = cpu_secs(pid);
    std::thread::sleep(Duration::from_secs(5));
    let idle_cpu = (cpu_secs(pid) - cpu_idle0) / 5.0;

    let config = Arc::new(client::Config::default());
    let cpu0 = cpu_secs(pid);
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let concurrency = 50;
    for i in 0..sessions {
        if set.len() >= concurrency {
            set.join_next().await.unwrap().unwrap();
        }
        set.spawn(session(config.clone(), ports[i * 7919 % ports.len()]));
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    let wall = t.elapsed();
    let cpu = cpu_secs(pid) - cpu0;
    let hwm = status_kib(pid, "VmHWM:");
    lab.kill().unwrap();
    lab.wait().unwrap();

    println!(
        "lab: {devices} idle devices in one process (started in {:.2} s)",
        started.as_secs_f64()
    );
    println!(
        "  RSS total                {:>10.1} MiB",
        rss as f64 / 1024.0
    );
    println!(
        "  RSS per idle device      {:>10.2} KiB  (marginal over a 1-device lab: {:.2} KiB)",
        rss as f64 / devices as f64,
        (rss - base_rss) as f64 / (devices - 1).max(1) as f64
    );
    println!(
        "  CPU while idle           {:>10.3} % of a core",
        idle_cpu * 100.0
    );
    println!("lab: {sessions} SSH sessions (login, show version, exit), {concurrency} at a time");
    println!(
        "  wall                     {:>10.2} s  ({:.0} sessions/s)",
        wall.as_secs_f64(),
        sessions as f64 / wall.as_secs_f64()
    );
    println!(
        "  lab CPU per session      {:>10.3} ms",
        cpu * 1000.0 / sessions as f64
    );
    println!(
        "  lab peak RSS             {:>10.1} MiB",
        hwm as f64 / 1024.0
    );
}
