//! Diagnostic: RSS of N open device sessions, nothing else.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]
use nightshift::config::Config;
use nightshift::device::Login;
use nightshift::jobs::fleet;
use secrecy::SecretString;
use std::collections::HashMap;
use std::sync::Arc;

fn rss() -> u64 {
    let t = std::fs::read_to_string("/proc/self/status").unwrap();
    t.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[tokio::main]
async fn main() {
    let path = std::env::args().nth(1).unwrap();
    let n: usize = std::env::args().nth(2).unwrap().parse().unwrap();
    let config = Config::load(std::path::Path::new(&path), chrono::Utc::now()).unwrap();
    let login = Login {
        username: "admin".into(),
        password: Some(SecretString::from("pw")),
        enable_secret: Some(SecretString::from("pw")),
        key: None,
    };
    let targets: Vec<usize> = (0..n).collect();
    let links = fleet::links(
        &config,
        &targets,
        &HashMap::from([("lab".to_string(), login)]),
    )
    .unwrap();
    let before = rss();
    let mut set = tokio::task::JoinSet::new();
    for (_, l) in links {
        set.spawn(async move { l.open().await.unwrap() });
    }
    let mut sessions = Vec::new();
    while let Some(s) = set.join_next().await {
        sessions.push(s.unwrap());
    }
    let after = rss();
    println!(
        "{n} open sessions: {:.1} KiB each",
        (after - before) as f64 / n as f64
    );
    // Then as during an ACL push: reads, a paste in config mode, a save.
    let mut set = tokio::task::JoinSet::new();
    for mut s in sessions.drain(..) {
        set.spawn(async move {
            for c in [
                "show running-config | section ip access-list extended LOCK_IT_DOWN$",
                "show ip access-lists LOCK_IT_DOWN",
                "show ip interface",
            ] {
                s.command(c).await.unwrap();
            }
            s.command("configure terminal").await.unwrap();
            let lines: Vec<String> = (1..=12)
                .map(|i| format!("ip access-list extended X{i}"))
                .collect();
            s.send_batch(&lines).await.unwrap();
            s.command("end").await.unwrap();
            s.save().await.unwrap();
            s
        });
    }
    while let Some(s) = set.join_next().await {
        sessions.push(s.unwrap());
    }
    let busy = rss();
    println!(
        "after a push's worth of commands: {:.1} KiB each",
        (busy - before) as f64 / n as f64
    );
    let _ = Arc::new(sessions);
}
