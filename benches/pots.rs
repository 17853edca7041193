//! POTS scheduling: 200 branches dialled through 8 modem lines on the lab's
//! hub. Prints the wall time against the ideal (the sum of the time each
//! call held its line, divided over the lines: what a scheduler that never
//! leaves a line idle achieves).
//!
//! Run: `cargo bench --bench pots` (release). Optional: BRANCHES LINES SCALE.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nightshift::config::{AlgorithmProfile, HostKeyPolicy, PotsLine, SshSettings};
use nightshift::device::{DeviceLink, KnownHosts, Login, Target};
use nightshift::jobs::pots::{Classified, run_pots};
use nightshift::lab::{Lab, LabSpec, branch_number};
use secrecy::SecretString;

// The engine and the lab run in this process: the binary's allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let branches: u32 = args.first().and_then(|a| a.parse().ok()).unwrap_or(200);
    let lines: u32 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(8);
    let scale: f64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(0.01);
    let lab = Lab::start(LabSpec {
        ios: 0,
        nxos: 0,
        dialer_lines: lines,
        branches,
        time_scale: scale,
        password: "pw".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = std::env::temp_dir().join(format!("nightshift-pots-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("known_hosts"), lab.known_hosts()).unwrap();
    let hub = lab.device("hub-1").unwrap();
    let target = Target {
        name: "hub-1".into(),
        host: hub.addr.ip().to_string(),
        port: hub.addr.port(),
        platform: hub.platform,
        ssh: SshSettings {
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(10),
            known_hosts: dir.join("known_hosts"),
            host_key_policy: HostKeyPolicy::Strict,
            algorithms: AlgorithmProfile::Modern,
        },
        transcript: None,
        jump: None,
    };
    let login = Login {
        username: "admin".into(),
        password: Some(SecretString::from("pw")),
        enable_secret: Some(SecretString::from("pw")),
        key: None,
    };
    let known = Arc::new(KnownHosts::load(&dir.join("known_hosts")).unwrap());
    let calls: Vec<PotsLine> = (1..=branches)
        .map(|i| PotsLine {
            branch: format!("branch-{i:03}"),
            dialer: "hub-1".into(),
            line: 33 + (i - 1) % lines,
            number: branch_number(i),
            expect: "Username:".into(),
            timeout: Duration::from_secs_f64(90.0 * scale),
            retries: 0,
            retry_pause: Duration::ZERO,
        })
        .collect();
    let links = BTreeMap::from([(
        "hub-1".to_string(),
        DeviceLink {
            target,
            login,
            known,
            gate: None,
            on_step: None,
            may_change: None,
        },
    )]);
    let guard = Duration::from_secs_f64(scale);
    let t = Instant::now();
    let results = run_pots(
        Arc::new(calls),
        links,
        lines as usize,
        guard,
        None,
        tokio_util::sync::CancellationToken::new(),
    )
    .await;
    let wall = t.elapsed().as_secs_f64();
    let held: f64 = results.iter().filter_map(|r| r.call_secs).sum();
    let ideal = held / f64::from(lines);
    let errors = results
        .iter()
        .filter(|r| r.result == Classified::Error)
        .count();
    let connected = results
        .iter()
        .filter(|r| r.result == Classified::Connect)
        .count();
    lab.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    println!("pots: {branches} branches over {lines} modem lines, lab time scale {scale}");
    println!(
        "  calls                 {connected} connect, {} other results, {errors} errors",
        branches as usize - connected - errors
    );
    println!("  wall                  {wall:>8.2} s");
    println!("  ideal (held / lines)  {ideal:>8.2} s");
    println!("  ratio                 {:>8.3}", wall / ideal);
    println!(
        "  at scale 1 that is    {:>8.1} min wall for {:.1} min of calls per line",
        wall / scale / 60.0,
        ideal / scale / 60.0
    );
}
