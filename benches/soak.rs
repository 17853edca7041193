//! Fault soak (issue #23): a window (ACL push, then POTS line tests) over a
//! lab of DEVICES devices, a tenth of them with faults of every kind, the
//! runner killed with SIGKILL at KILLS random points and resumed each time
//! with the same run id. Afterwards every device's and every call's result
//! in the report is checked against the lab's own record:
//!
//! - `changed` exactly when the lab's ACL equals the intent and
//!   configuration lines reached the device (in any attempt);
//! - `unchanged` exactly when no configuration line reached it;
//! - `failed` only when the previous ACL is in place, or the report says it
//!   is not (`restored` tells what was left);
//! - no device is sent ACL entry lines again once it held the intent
//!   (unless the device itself reverted in between): "double applies";
//! - `unprotected_ms` 0 everywhere; every call classified as the lab's
//!   modem answered it; no modem line left held or stuck.
//!
//! Run: `cargo bench --bench soak -- [DEVICES] [KILLS] [--seed N]`
//! (defaults 1000 20, a seed from the clock; printed, so a run can be
//! repeated). Exits 1 when any check fails, listing each mismatch.
#![allow(clippy::disallowed_methods)] // a benchmark reads the wall clock
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nightshift::lab::{Fault, Lab, LabSpec, LabStats, call_result, entry_as_shown};
use nightshift::platform::Platform;

const PASSWORD: &str = "soak-Pass-1";
const RUN_ID: &str = "soak";
const ACL: &str = "LOCK_IT_DOWN";
const BRANCHES: u32 = 48;
const LINES: u32 = 8;
/// Modem delays and revert timers run at 1/20: a call takes up to 3 s, an
/// IOS revert timer (10 min) 30 s, longer than a resume takes to come back.
const TIME_SCALE: f64 = 0.05;

/// A small, seeded generator: the same seed gives the same faults and kills.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Args {
    devices: usize,
    kills: usize,
    seed: u64,
}

fn args() -> Args {
    let mut a = Args {
        devices: 1000,
        kills: 20,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1,
    };
    let mut positional = 0;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--bench" => {}
            "--seed" => a.seed = it.next().and_then(|s| s.parse().ok()).unwrap_or(a.seed) | 1,
            s => {
                if let Ok(n) = s.parse::<usize>() {
                    match positional {
                        0 => a.devices = n.max(20),
                        _ => a.kills = n,
                    }
                    positional += 1;
                }
            }
        }
    }
    a
}

/// One in ten devices gets a fault; the kinds take turns. The canary
/// (`ios-001`) stays clean, as an engineer picks a canary that works.
fn faults(ios: usize, nxos: usize, rng: &mut Rng) -> (Vec<Fault>, BTreeMap<&'static str, usize>) {
    let mut names: Vec<String> = (2..=ios)
        .map(|i| format!("ios-{i:03}"))
        .chain((1..=nxos).map(|i| format!("nxos-{i:03}")))
        .collect();
    // Fisher-Yates, then the first tenth.
    for i in (1..names.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        names.swap(i, j);
    }
    let kinds = ["drop", "hang", "reject", "slow", "refuse", "auth", "legacy"];
    let mut by_kind = BTreeMap::new();
    let mut list = Vec::new();
    for (i, dev) in names.iter().take((ios + nxos) / 10).enumerate() {
        let kind = kinds[i % kinds.len()];
        let spec = match kind {
            // An IOS change here is about ten configuration lines, an NX-OS
            // one about eight: the drop or rejection lands mid-change.
            "drop" | "reject" => format!("{kind}:{dev}:{}", 2 + rng.below(6)),
            "slow" => format!("slow:{dev}:{}ms", 100 + rng.below(400)),
            _ => format!("{kind}:{dev}"),
        };
        list.push(spec.parse().unwrap());
        *by_kind.entry(kind).or_insert(0) += 1;
    }
    list.push(
        format!("stuck:hub-1:{}", 33 + rng.below(u64::from(LINES)))
            .parse()
            .unwrap(),
    );
    by_kind.insert("stuck (modem line)", 1);
    (list, by_kind)
}

/// The ACL as the lab holds it (remarks included) once the intent is in place.
fn intent(platform: Platform) -> Vec<String> {
    nightshift::lab::LOCK_IT_DOWN
        .iter()
        .map(|l| entry_as_shown(l, platform).unwrap())
        .collect()
}

/// The lab's own record of a device's ACL: entries as it holds them,
/// remarks included, without sequence numbers.
fn held(lab: &Lab, device: &str) -> Option<Vec<String>> {
    lab.acl(device, ACL)
        .map(|a| a.into_iter().map(|(_, e)| e).collect())
}

/// What the lab holds for one device at one moment.
#[derive(Clone)]
struct Seen {
    acl: Option<Vec<String>>,
    at_intent: bool,
    acl_lines: u64,
    reverts: u64,
}

fn seen(lab: &Lab, stats: &LabStats) -> HashMap<String, Seen> {
    stats
        .devices
        .iter()
        .filter(|d| d.name != "hub-1")
        .map(|d| {
            let platform = lab.device(&d.name).unwrap().platform;
            let acl = held(lab, &d.name);
            (
                d.name.clone(),
                Seen {
                    at_intent: acl.as_ref() == Some(&intent(platform)),
                    acl,
                    acl_lines: d.acl_lines,
                    reverts: d.reverts,
                },
            )
        })
        .collect()
}

/// Counts the `finished` records a growing journal holds.
struct JournalWatch {
    path: PathBuf,
    offset: u64,
    partial: String,
    finished: usize,
}

impl JournalWatch {
    fn poll(&mut self) -> usize {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return self.finished;
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            // A resumed attempt cut a torn tail: count again from the start.
            self.offset = 0;
            self.partial.clear();
            self.finished = 0;
        }
        f.seek(SeekFrom::Start(self.offset)).unwrap();
        let mut buf = String::new();
        if f.read_to_string(&mut buf).is_err() {
            return self.finished;
        }
        self.offset += buf.len() as u64;
        self.partial.push_str(&buf);
        while let Some(nl) = self.partial.find('\n') {
            if self.partial[..nl].starts_with("{\"event\":\"finished\"") {
                self.finished += 1;
            }
            self.partial.drain(..=nl);
        }
        self.finished
    }
}

fn spawn(config: &Path, json: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_nightshift"))
        .arg("-c")
        .arg(config)
        .args([
            "run",
            "--password-stdin",
            "--window",
            "nightly",
            "--now",
            "--run-id",
            RUN_ID,
            "--json",
        ])
        .arg(json)
        .stdin(Stdio::piped())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{PASSWORD}\n{PASSWORD}\n").as_bytes())
        .unwrap();
    child
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let a = args();
    let mut rng = Rng(a.seed);
    let nxos = a.devices / 10;
    let ios = a.devices - nxos;
    let (fault_list, by_kind) = faults(ios, nxos, &mut rng);
    let lab = Lab::start(LabSpec {
        ios,
        nxos,
        dialer_lines: LINES,
        branches: BRANCHES,
        latency: Duration::from_millis(20),
        time_scale: TIME_SCALE,
        password: PASSWORD.into(),
        faults: fault_list,
        ..Default::default()
    })
    .await
    .expect("lab starts");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("soak.toml");
    lab.write_config(&config).unwrap();
    // A window that is not open now (`run --window --now` then opens it
    // for its whole duration), hung devices given up after 10 s, and 50
    // devices at once (the POTS job keeps one call per line).
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("schedule = \"0 2 * * *\"", &closed_now())
        .replace("command_timeout = \"30s\"", "command_timeout = \"10s\"")
        .replace("concurrency = 20\n", "concurrency = 50\n")
        // The engineer knows which devices have an account of their own
        // (the `auth` faults): the lockout brake allows that many refusals.
        .replace(
            "timezone = \"UTC\"\n\n[ssh]",
            &format!(
                "timezone = \"UTC\"\nmax_auth_failures = {}\n\n[ssh]",
                (by_kind.get("auth").copied().unwrap_or(0) * 2 + 1).min(100)
            ),
        );
    std::fs::write(&config, text).unwrap();
    let journal = dir.path().join("soak.state/journal/soak.jsonl");
    let json = dir.path().join("report.json");
    let log = dir.path().join("runner.log");

    println!(
        "soak: {} devices ({ios} IOS, {nxos} NX-OS), {BRANCHES} branches on {LINES} modem lines, seed {}",
        a.devices, a.seed
    );
    let faults: Vec<String> = by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!("faults: {}", faults.join(", "));

    let total = a.devices + BRANCHES as usize;
    let mut points: Vec<usize> = (0..a.kills)
        // Up to nine tenths in: the last stretch (the slowest calls) can end
        // before a kill lands.
        .map(|_| 1 + rng.below((total * 9 / 10) as u64) as usize)
        .collect();
    points.sort_unstable();

    let initial = lab.stats();
    let mut before = seen(&lab, &initial);
    let initial_acls = before.clone();
    let mut double_applies: Vec<String> = Vec::new();
    let mut watch = JournalWatch {
        path: journal.clone(),
        offset: 0,
        partial: String::new(),
        finished: 0,
    };
    let started = Instant::now();
    let mut kills = Vec::new();
    let mut attempts = 0;
    let mut next_point = points.into_iter();
    loop {
        attempts += 1;
        let _ = std::fs::remove_file(&json);
        let point = next_point.next();
        let jitter = Duration::from_millis(rng.below(300));
        let mut child = spawn(&config, &json, &log);
        let t0 = Instant::now();
        let (status, killed_at) = tokio::task::spawn_blocking({
            let mut watch = std::mem::replace(
                &mut watch,
                JournalWatch {
                    path: PathBuf::new(),
                    offset: 0,
                    partial: String::new(),
                    finished: 0,
                },
            );
            move || {
                let mut reached: Option<Instant> = None;
                // A runner that neither finishes nor progresses in this long
                // is hung: the soak stops with what it knows.
                let give_up = Instant::now() + Duration::from_secs(600);
                loop {
                    if let Some(st) = child.try_wait().unwrap() {
                        return (st, None, watch);
                    }
                    if Instant::now() >= give_up {
                        let _ = child.kill();
                        let _ = child.wait();
                        panic!("attempt still running after 10 min: the runner hangs (see the runner log)");
                    }
                    let n = watch.poll();
                    if let Some(p) = point {
                        if n >= p && reached.is_none() {
                            reached = Some(Instant::now());
                        }
                        if reached.is_some_and(|r| r.elapsed() >= jitter) {
                            let _ = child.kill(); // SIGKILL
                            let st = child.wait().unwrap();
                            let n = watch.poll();
                            return (st, Some(n), watch);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        })
        .await
        .map(|(st, k, w)| {
            watch = w;
            (st, k)
        })
        .unwrap();
        let secs = t0.elapsed().as_secs_f64();
        // What the dead runner sent last is still on the link: let the
        // devices take it before looking at them.
        let quiet = Instant::now();
        while lab.shells_running() > 0 && quiet.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let now = seen(&lab, &lab.stats());
        for (name, was) in &before {
            let is = &now[name];
            if was.at_intent && is.acl_lines > was.acl_lines && is.reverts == was.reverts {
                double_applies.push(format!(
                    "{name}: {} ACL lines after it held the intent (attempt {attempts}); now {:?}",
                    is.acl_lines - was.acl_lines,
                    is.acl
                ));
            }
        }
        before = now;
        match killed_at {
            Some(n) => {
                println!(
                    "attempt {attempts:>2}: killed after {secs:5.2} s, {n:>4} of {total} finished"
                );
                kills.push(n);
            }
            None => {
                println!(
                    "attempt {attempts:>2}: ran to its end in {secs:5.2} s (exit {:?})",
                    status.code()
                );
                break;
            }
        }
    }
    let wall = started.elapsed().as_secs_f64();

    // The report against the lab's record.
    let report: serde_json::Value = match std::fs::read_to_string(&json) {
        Ok(t) => serde_json::from_str(&t).unwrap(),
        Err(e) => {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(30).collect();
            panic!(
                "no JSON report ({e}); runner log ends:\n{}",
                tail.join("\n")
            );
        }
    };
    let end = lab.stats();
    let mut mismatches: Vec<String> = Vec::new();
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    let mut failed_kept = 0;
    let mut failed_said = 0;
    let devices = report["devices"].as_array().cloned().unwrap_or_default();
    let mut reported: HashMap<String, &serde_json::Value> = HashMap::new();
    for d in &devices {
        reported.insert(d["name"].as_str().unwrap_or("?").to_string(), d);
    }
    for dev in end.devices.iter().filter(|d| d.name != "hub-1") {
        let name = &dev.name;
        let platform = lab.device(name).unwrap().platform;
        let acl = held(&lab, name);
        let at_intent = acl.as_ref() == Some(&intent(platform));
        let previous = acl == initial_acls[name].acl;
        let sent = dev.config_lines > 0;
        let Some(r) = reported.get(name) else {
            mismatches.push(format!("{name}: not in the report"));
            continue;
        };
        let status = r["status"].as_str().unwrap_or("?");
        *statuses.entry(status.to_string()).or_insert(0) += 1;
        if dev.unprotected_ms > 0 {
            mismatches.push(format!("{name}: unprotected for {} ms", dev.unprotected_ms));
        }
        let ok = match status {
            "changed" => at_intent && sent,
            "unchanged" => !sent && at_intent,
            // A brake stopped the run before this device: untouched.
            "not-started" => !sent && previous,
            "failed" => {
                // The previous ACL is in place, or the report says it is not
                // (and what to do about it).
                let restored = r["restored"].as_str().unwrap_or("");
                let says_not = ["NOT restored", "restore FAILED", "not verified"]
                    .iter()
                    .any(|w| restored.contains(w));
                if previous {
                    failed_kept += 1;
                    true
                } else if says_not {
                    failed_said += 1;
                    true
                } else {
                    false
                }
            }
            _ => false,
        };
        if !ok {
            mismatches.push(format!(
                "{name}: report says {status} ({}), lab holds {} after {} configuration lines; restored: {}",
                r["reason"].as_str().unwrap_or(""),
                if at_intent {
                    "the intent"
                } else if previous {
                    "the previous ACL"
                } else {
                    "another ACL"
                },
                dev.config_lines,
                r["restored"]
            ));
        }
    }
    let calls = report["lines"].as_array().cloned().unwrap_or_default();
    let mut results: BTreeMap<String, usize> = BTreeMap::new();
    for i in 1..=BRANCHES {
        let branch = format!("branch-{i:03}");
        let want = call_result(&nightshift::lab::branch_number(i), BRANCHES);
        match calls.iter().find(|c| c["branch"] == branch.as_str()) {
            Some(c) => {
                let got = c["result"].as_str().unwrap_or("?");
                *results.entry(got.to_string()).or_insert(0) += 1;
                if got != want {
                    mismatches.push(format!(
                        "{branch}: report says {got}, the lab's modem answered {want}"
                    ));
                }
            }
            None => mismatches.push(format!("{branch}: not in the report")),
        }
    }
    let held = lab.held_lines();
    if !held.is_empty() {
        mismatches.push(format!("modem lines still held or stuck: {held:?}"));
    }
    let unprotected: u64 = end.devices.iter().map(|d| d.unprotected_ms).sum();

    println!();
    println!(
        "devices {}  calls {}  attempts {attempts}  kills {}  wall {wall:.1} s",
        a.devices,
        BRANCHES,
        kills.len()
    );
    let st: Vec<String> = statuses.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "report: {} (failed with the previous ACL in place {failed_kept}, failed and saying what is left {failed_said})",
        st.join(", ")
    );
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for d in devices.iter().filter(|d| d["status"] == "not-started") {
        *reasons
            .entry(d["reason"].as_str().unwrap_or("").to_string())
            .or_insert(0) += 1;
    }
    for (why, n) in &reasons {
        println!("  not-started {n}: {why}");
    }
    let rs: Vec<String> = results.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!("calls: {}", rs.join(", "));
    println!("mismatches: {}", mismatches.len());
    println!("unprotected ms: {unprotected}");
    println!("double applies: {}", double_applies.len());
    for m in mismatches.iter().chain(&double_applies).take(40) {
        println!("  {m}");
    }
    lab.shutdown().await;
    if !mismatches.is_empty() || !double_applies.is_empty() || unprotected > 0 {
        println!("runner log kept in {}", log.display());
        let _ = dir.keep();
        std::process::exit(1);
    }
}

/// A daily schedule that opens twelve hours from now.
fn closed_now() -> String {
    use chrono::Timelike;
    let hour = (chrono::Utc::now().hour() + 12) % 24;
    format!("schedule = \"0 {hour} * * *\"")
}
