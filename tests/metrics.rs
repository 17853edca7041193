//! What monitoring sees: the daemon's metrics file, checked by Prometheus's
//! own `promtool` (Debian's `prometheus` package) and compared with the
//! run's report, and `status --json`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::daemon::{history, setup, start, utc, window};
use nightshift::clock::OffsetClock;
use nightshift::lab::{Fault, LabSpec};

const PROMTOOL: &str = "/usr/bin/promtool";

/// `name{labels}` → value, for every sample of the file.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

fn promtool_check(path: &Path) -> String {
    assert!(
        Path::new(PROMTOOL).exists(),
        "{PROMTOOL} is missing: .ci/test installs Debian's prometheus package"
    );
    let out = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::from(std::fs::File::open(path).unwrap()))
        .output()
        .unwrap();
    let text = common::text(&out);
    assert!(out.status.success(), "promtool check metrics: {text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_file_passes_promtool_and_agrees_with_the_report() {
    let s = setup(
        LabSpec {
            ios: 3,
            nxos: 1,
            dialer_lines: 2,
            branches: 4,
            time_scale: 0.01,
            faults: vec!["refuse:ios-003".parse::<Fault>().unwrap()],
            ..Default::default()
        },
        &window("nightly", "0 2 * * *", "UTC", "1h").replace(
            "jobs = [\"lock-it-down\"]",
            "jobs = [\"lock-it-down\", \"pots\"]",
        ),
    )
    .await;
    let metrics = s.config.with_extension("metrics").join("nightshift.prom");
    let text = std::fs::read_to_string(&s.config).unwrap().replacen(
        "[daemon]\n",
        &format!(
            "[daemon]\nmetrics_file = {:?}\n",
            metrics.display().to_string()
        ),
        1,
    );
    std::fs::write(&s.config, text).unwrap();

    let clock = Arc::new(OffsetClock::at(utc("2026-06-01T01:59:58Z")));
    let (task, shutdown, _) = start(&s.config, clock);
    // Armed: the next opening is there before the run.
    let t0 = std::time::Instant::now();
    while !metrics.exists() {
        assert!(t0.elapsed() < Duration::from_secs(30), "no metrics file");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    promtool_check(&metrics);
    let armed = samples(&std::fs::read_to_string(&metrics).unwrap());
    assert_eq!(
        armed[r#"nightshift_window_next_open_timestamp_seconds{window="nightly"}"#],
        utc("2026-06-01T02:00:00Z").timestamp() as f64
    );
    assert_eq!(armed[r#"nightshift_credentials_valid{profile="lab"}"#], 1.0);

    let report = history(&s.state, "nightly-20260601T0200Z", Duration::from_secs(120)).await;
    // The run's end is written after its report.
    let t0 = std::time::Instant::now();
    let text = loop {
        let text = std::fs::read_to_string(&metrics).unwrap_or_default();
        if text.contains("nightshift_last_run_end_timestamp_seconds{") {
            break text;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no run in the metrics: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    promtool_check(&metrics);
    let m = samples(&text);

    // Devices per status, as the report counts them.
    let mut want: BTreeMap<(String, String), f64> = BTreeMap::new();
    for d in report["devices"].as_array().unwrap() {
        *want
            .entry((
                d["job"].as_str().unwrap().into(),
                d["status"].as_str().unwrap().into(),
            ))
            .or_default() += 1.0;
    }
    assert!(want.contains_key(&("lock-it-down".into(), "failed".into())));
    for ((job, status), n) in &want {
        let key = format!(
            r#"nightshift_last_run_devices{{window="nightly",job="{job}",status="{status}"}}"#
        );
        assert_eq!(m.get(&key), Some(n), "{key}\n{text}");
    }
    let total: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("nightshift_last_run_devices{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(total as usize, report["devices"].as_array().unwrap().len());
    // POTS lines per result.
    let mut lines: BTreeMap<String, f64> = BTreeMap::new();
    for l in report["lines"].as_array().unwrap() {
        *lines
            .entry(l["result"].as_str().unwrap().into())
            .or_default() += 1.0;
    }
    assert!(!lines.is_empty());
    for (result, n) in &lines {
        let key = format!(
            r#"nightshift_last_run_pots_lines{{window="nightly",job="pots",result="{result}"}}"#
        );
        assert_eq!(m.get(&key), Some(n), "{key}\n{text}");
    }
    let started: chrono::DateTime<chrono::Utc> =
        report["started"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        m[r#"nightshift_last_run_start_timestamp_seconds{window="nightly"}"#],
        started.timestamp_millis() as f64 / 1000.0
    );
    assert_eq!(m[r#"nightshift_run_in_progress{window="nightly"}"#], 0.0);
    // No relay configured: the report mail is kept in the outbox.
    assert!(
        m[r#"nightshift_outbox_mails{state="kept"}"#] >= 1.0,
        "{text}"
    );
    assert_eq!(m[r#"nightshift_outbox_mails{state="failed"}"#], 0.0);
    assert_eq!(
        m[r#"nightshift_window_missed_total{window="nightly"}"#],
        0.0
    );
    assert_eq!(
        m[r#"nightshift_window_next_open_timestamp_seconds{window="nightly"}"#],
        utc("2026-06-02T02:00:00Z").timestamp() as f64
    );
    // Readable by node_exporter's user, no temporary file left.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&metrics).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    let names: Vec<String> = std::fs::read_dir(metrics.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["nightshift.prom"]);

    // `status --json`: what `status` shows, for machines.
    let config = s.config.clone();
    let out = tokio::task::spawn_blocking(move || common::ns(&config, &["status", "--json"], ""))
        .await
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["format"], 1);
    assert_eq!(status["last"]["run_id"], "nightly-20260601T0200Z");
    assert_eq!(status["next"][0]["window"], "nightly");
    assert_eq!(status["next"][0]["opens"], "2026-06-02T02:00:00Z");
    assert_eq!(status["credentials"]["lab"]["state"], "ok");
    assert!(status["running"].is_null());

    shutdown.cancel();
    task.await.unwrap();
    s.lab.shutdown().await;
}
