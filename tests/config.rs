//! `check-config` and `next` through the real binary.
//!
//! Each file in tests/configs/broken/ states the problems it must produce as
//! `# expect: LINE:COL TEXT` comments; the run must print exactly those
//! (each at that position, containing that text) and exit 2.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn nightshift(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nightshift"))
        .args(args)
        .env_remove("NIGHTSHIFT_CONFIG")
        .output()
        .expect("run nightshift")
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

struct Expect {
    line: usize,
    column: usize,
    text: String,
    hint: Option<String>,
}

/// `# expect: LINE:COL TEXT`, optionally followed by `# hint: TEXT`.
fn expectations(src: &str) -> Vec<Expect> {
    let mut out: Vec<Expect> = Vec::new();
    for l in src.lines() {
        if let Some(rest) = l.strip_prefix("# expect: ") {
            let (pos, text) = rest.split_once(' ').expect("expect: LINE:COL TEXT");
            let (line, column) = pos.split_once(':').expect("LINE:COL");
            out.push(Expect {
                line: line.parse().expect("line"),
                column: column.parse().expect("column"),
                text: text.to_string(),
                hint: None,
            });
        } else if let Some(hint) = l.strip_prefix("# hint: ") {
            out.last_mut().expect("# hint: follows an # expect:").hint = Some(hint.to_string());
        }
    }
    out
}

/// Splits stderr into one block per problem (its line plus its hint).
fn problem_blocks(stderr: &str, name: &str) -> Vec<String> {
    let mut blocks: Vec<String> = Vec::new();
    for line in stderr.lines() {
        let starts_problem = line
            .strip_prefix(name)
            .and_then(|r| r.strip_prefix(':'))
            .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()));
        if starts_problem {
            blocks.push(line.to_string());
        } else if let Some(last) = blocks.last_mut().filter(|_| line.starts_with("    ")) {
            last.push('\n');
            last.push_str(line);
        }
    }
    blocks
}

#[test]
fn every_broken_config_reports_each_problem_with_its_position() {
    let dir = repo("tests/configs/broken");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("broken configs")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 12,
        "a dozen broken configs, found {}",
        files.len()
    );
    for file in files {
        let src = std::fs::read_to_string(&file).expect("read");
        let expected = expectations(&src);
        assert!(
            !expected.is_empty(),
            "{} has no `# expect:` lines",
            file.display()
        );
        let name = file.to_str().expect("utf-8 path");
        let out = nightshift(&["-c", name, "check-config"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: exit code\n{stderr}");
        let blocks = problem_blocks(&stderr, name);
        for e in &expected {
            let prefix = format!("{name}:{}:{}: ", e.line, e.column);
            let found = blocks.iter().any(|b| {
                let (first, hint) = b.split_once('\n').unwrap_or((b, ""));
                first.starts_with(&prefix)
                    && first.contains(&e.text)
                    && e.hint.as_ref().is_none_or(|h| hint.contains(h.as_str()))
            });
            assert!(
                found,
                "{name}: expected `{}:{}: …{}…` (hint {:?}) in\n{stderr}",
                e.line, e.column, e.text, e.hint
            );
        }
        assert_eq!(
            blocks.len(),
            expected.len(),
            "{name}: every problem reported, and nothing else\n{stderr}"
        );
        let n = expected.len();
        let summary = format!(
            "{name}: {n} problem{} found; nothing was loaded",
            if n == 1 { "" } else { "s" }
        );
        assert!(stderr.contains(&summary), "{name}: summary line\n{stderr}");
    }
}

#[test]
fn every_shipped_config_is_valid() {
    let mut checked = 0;
    for entry in std::fs::read_dir(repo("config")).expect("config/") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let out = nightshift(&["-c", path.to_str().expect("utf-8"), "check-config"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}\n{}{}",
            path.display(),
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains(": OK"));
        assert!(
            stdout.contains("next: "),
            "summary names the next opening:\n{stdout}"
        );
        checked += 1;
    }
    assert!(checked >= 1);
}

#[test]
fn example_summary_counts_devices_by_platform_and_tier() {
    let out = nightshift(&[
        "-c",
        repo("config/nightshift.toml").to_str().expect("utf-8"),
        "check-config",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("devices: 4"), "{stdout}");
    assert!(
        stdout.contains("cisco_ios       3  (tier 1: 3)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("cisco_nxos      1  (tier 2: 1)"),
        "{stdout}"
    );
    assert!(stdout.contains("lock-it-down"), "{stdout}");
    assert!(stdout.lines().count() <= 25, "fits one screen:\n{stdout}");
}

#[test]
fn config_path_comes_from_the_environment() {
    let out = Command::new(env!("CARGO_BIN_EXE_nightshift"))
        .arg("check-config")
        .env("NIGHTSHIFT_CONFIG", repo("config/nightshift.toml"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn missing_file_names_the_path_and_how_to_fix_it() {
    let out = nightshift(&["-c", "/nonexistent/ns.toml", "check-config"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("cannot read config file /nonexistent/ns.toml: No such file"),
        "{stderr}"
    );
    assert!(stderr.contains("-c FILE or NIGHTSHIFT_CONFIG"), "{stderr}");
}

fn window_config(dir: &Path, schedule: &str, zone: &str) -> PathBuf {
    let path = dir.join("ns.toml");
    std::fs::write(
        &path,
        format!(
            r#"version = 1
[credentials.ops]
canary = "r1"
[[devices]]
name = "r1"
host = "192.0.2.1"
platform = "cisco_ios"
[jobs.show]
kind = "exec"
devices = ["r1"]
commands = ["show version"]
[windows.w]
schedule = "{schedule}"
timezone = "{zone}"
duration = "1h"
jobs = ["show"]
"#
        ),
    )
    .expect("write config");
    path
}

fn next_at(schedule: &str, zone: &str, at: &str, count: &str) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = window_config(dir.path(), schedule, zone);
    let out = nightshift(&[
        "-c",
        path.to_str().expect("utf-8"),
        "next",
        "--at",
        at,
        "-n",
        count,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn next_across_new_york_spring_change() {
    // 2026-03-08 02:00 EST -> 03:00 EDT: 02:30 does not exist that night.
    let lines = next_at(
        "30 2 * * *",
        "America/New_York",
        "2026-03-07T00:00:00-05:00",
        "3",
    );
    assert_eq!(
        lines,
        [
            "Sat 2026-03-07 02:30 EST (-05:00)  2026-03-07 07:30 UTC  until Sat 03:30 EST",
            "Sun 2026-03-08 03:00 EDT (-04:00)  2026-03-08 07:00 UTC  until Sun 04:00 EDT",
            "Mon 2026-03-09 02:30 EDT (-04:00)  2026-03-09 06:30 UTC  until Mon 03:30 EDT",
        ]
    );
}

#[test]
fn next_across_new_york_autumn_change() {
    // 2026-11-01 02:00 EDT -> 01:00 EST: 01:30 happens twice, opens once.
    let lines = next_at(
        "30 1 * * *",
        "America/New_York",
        "2026-10-31T12:00:00Z",
        "2",
    );
    assert_eq!(
        lines,
        [
            "Sun 2026-11-01 01:30 EDT (-04:00)  2026-11-01 05:30 UTC  until Sun 01:30 EST",
            "Mon 2026-11-02 01:30 EST (-05:00)  2026-11-02 06:30 UTC  until Mon 02:30 EST",
        ]
    );
}

#[test]
fn next_across_berlin_changes() {
    let spring = next_at("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", "2");
    assert_eq!(
        spring,
        [
            "Sun 2026-03-29 03:00 CEST (+02:00)  2026-03-29 01:00 UTC  until Sun 04:00 CEST",
            "Mon 2026-03-30 02:30 CEST (+02:00)  2026-03-30 00:30 UTC  until Mon 03:30 CEST",
        ]
    );
    let autumn = next_at("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", "2");
    assert_eq!(
        autumn,
        [
            "Sun 2026-10-25 02:30 CEST (+02:00)  2026-10-25 00:30 UTC  until Sun 02:30 CET",
            "Mon 2026-10-26 02:30 CET (+01:00)  2026-10-26 01:30 UTC  until Mon 03:30 CET",
        ]
    );
}

#[test]
fn every_command_has_help() {
    for cmd in [
        "check-config",
        "next",
        "exec",
        "credentials",
        "daemon",
        "status",
        "report",
        "lab",
        "demo",
    ] {
        let out = nightshift(&[cmd, "--help"]);
        assert_eq!(out.status.code(), Some(0), "{cmd} --help");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: nightshift"));
    }
}
