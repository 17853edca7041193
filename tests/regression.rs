//! Regression tests: each is named after the defect it shows, and fails
//! with the defect back in place.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::PASSWORD;
use nightshift::lab::LabSpec;

/// Two `nightshift run JOB` within one second got the same run id
/// (`JOB-YYYYMMDDTHHMMSSZ`): the second found the first one's journal,
/// took itself for a resume, touched no device and reported the first
/// run's results as its own. A fresh run now takes `-2`, `-3`, …
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_in_one_second_are_two_runs() {
    let (lab, _dir, config) = common::lab_with_config(LabSpec {
        ios: 2,
        nxos: 1,
        ..Default::default()
    })
    .await;
    let first = common::run_json(&config, &["run", "lock-it-down"], PASSWORD).await;
    // Whatever second the next run starts in, a finished run's journal
    // already holds its id (as when both start in the same second).
    let state = config.with_extension("state");
    let journal = nightshift::engine::journal_path(&state, first.json["run_id"].as_str().unwrap());
    let now = nightshift::clock::Clock::now(&nightshift::clock::SystemClock);
    for s in -2..30 {
        let at = now + chrono::Duration::seconds(s);
        let id = format!("lock-it-down-{}", at.format("%Y%m%dT%H%M%SZ"));
        let path = nightshift::engine::journal_path(&state, &id);
        if !path.exists() {
            std::fs::copy(&journal, path).unwrap();
        }
    }
    let second = common::run_json(&config, &["run", "lock-it-down"], PASSWORD).await;
    assert_eq!(first.code, Some(0), "{}", first.text());
    assert_eq!(second.code, Some(0), "{}", second.text());
    let (a, b) = (
        first.json["run_id"].as_str().unwrap(),
        second.json["run_id"].as_str().unwrap(),
    );
    assert_ne!(a, b, "each run its own id");
    assert_eq!(second.json["resumed"], false, "{}", second.text());
    assert!(
        common::statuses(&first.json)
            .iter()
            .all(|s| *s == "changed"),
        "{}",
        first.text()
    );
    assert!(
        common::statuses(&second.json)
            .iter()
            .all(|s| *s == "unchanged"),
        "the second run read every device again: {}",
        second.text()
    );
    let logins: u64 = lab.stats().devices.iter().map(|d| d.logins).sum();
    assert_eq!(
        logins,
        2 * (3 + 1),
        "each run: one canary login and one per device"
    );
    lab.shutdown().await;
}
