//! The real binary as a daemon: READY and STATUS on a notify socket the
//! test provides, a window run against the lab and mailed to a real SMTP
//! server, SIGHUP with a broken config, SIGTERM mid-run, and the control
//! socket (credential hand-over, a refused peer).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Waits on child processes and files from blocking helpers.
#![allow(clippy::disallowed_methods)]

mod common;

use common::{ns, text};

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::PASSWORD;
use common::smtp::{SMTP_PASSWORD, SmtpPeer};
use nightshift::lab::{Lab, LabSpec};

fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !check() {
        assert!(t0.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The daemon process, what it sent to the notify socket, and its log.
struct Daemon {
    child: Child,
    notes: Arc<Mutex<Vec<String>>>,
    log: PathBuf,
}

impl Daemon {
    fn start(config: &Path, dir: &Path) -> Daemon {
        let sock = dir.join("notify.sock");
        let _ = std::fs::remove_file(&sock);
        let notify = UnixDatagram::bind(&sock).unwrap();
        let notes = Arc::new(Mutex::new(Vec::new()));
        {
            let notes = notes.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 4096];
                while let Ok(n) = notify.recv(&mut buf) {
                    notes
                        .lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&buf[..n]).into_owned());
                }
            });
        }
        let log = dir.join("daemon.log");
        let child = Command::new(env!("CARGO_BIN_EXE_nightshift"))
            .arg("-c")
            .arg(config)
            .arg("daemon")
            .env("NOTIFY_SOCKET", &sock)
            .env("NIGHTSHIFT_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let d = Daemon { child, notes, log };
        wait_for("READY=1", Duration::from_secs(30), || d.noted("READY=1"));
        d
    }

    fn noted(&self, what: &str) -> bool {
        self.notes
            .lock()
            .unwrap()
            .iter()
            .any(|n| n.lines().any(|l| l.starts_with(what)))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// SIGTERM, then the exit code (within `limit`).
    fn stop(mut self, limit: Duration) -> (Option<i32>, String) {
        self.signal("-TERM");
        let t0 = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.code(), self.log());
            }
            assert!(
                t0.elapsed() < limit,
                "the daemon did not exit within {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A lab config with a window `e2e` that opens every minute for 50 s, so
/// the daemon runs it at once (a late start inside latest_start, with at
/// least 25 s left) or within 40 s. Credentials go to a keyring service of the test's own.
async fn setup(
    spec: LabSpec,
    mail: &str,
    window: &str,
) -> (Lab, tempfile::TempDir, PathBuf, String) {
    let (lab, dir, config) = common::lab_with_config(spec).await;
    let (t, service) = common::own_keyring(&config, &dir.path().join("control.sock"));
    let mut t = t
        .replace("[credentials.lab]", &format!("{mail}[credentials.lab]"))
        // A device needs far less than a minute window's remainder.
        .replace("concurrency = 20\n", "concurrency = 20\nbudget = \"5s\"\n");
    t.truncate(t.find("[windows.nightly]").unwrap());
    t.push_str(window);
    std::fs::write(&config, t).unwrap();
    (lab, dir, config, service)
}

const EVERY_MINUTE: &str = "[windows.e2e]\nschedule = \"* * * * *\"\ntimezone = \"Europe/Berlin\"\nduration = \"50s\"\nlatest_start = \"20s\"\njobs = [\"lock-it-down\"]\n";

struct Forget(String);

impl Drop for Forget {
    fn drop(&mut self) {
        for key in ["credentials.lab", "mail"] {
            let _ = nightshift::credentials::Store::keyring(&self.0).delete(key);
        }
    }
}

/// The run history's reports of windows that ran (a window opening that
/// the daemon found past its latest_start at start-up is recorded as
/// missed; with a window every minute that happens).
fn history_files(state: &Path) -> Vec<PathBuf> {
    all_history_files(state)
        .into_iter()
        .filter(|p| {
            !std::fs::read_to_string(p)
                .unwrap_or_default()
                .contains("\"missed\"")
        })
        .collect()
}

fn all_history_files(state: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(state.join("history"))
        .map(|rd| {
            rd.flatten()
                .map(|f| f.path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_runs_a_window_mails_it_reloads_safely_and_stops() {
    let smtp_dir = tempfile::tempdir().unwrap();
    let peer = SmtpPeer::start(smtp_dir.path(), "auth", 0);
    let (lab, dir, config, service) = setup(
        LabSpec {
            ios: 20,
            nxos: 4,
            faults: vec!["reject:ios-007:2".parse().unwrap()],
            ..Default::default()
        },
        &peer.mail_section("netops@example.test"),
        EVERY_MINUTE,
    )
    .await;
    let _forget = Forget(service);
    let cfg = config.clone();
    let (set, set_mail) = tokio::task::spawn_blocking(move || {
        (
            ns(
                &cfg,
                &[
                    "credentials",
                    "set",
                    "--store",
                    "keyring",
                    "--password-stdin",
                ],
                &format!("{PASSWORD}\n{PASSWORD}\n"),
            ),
            ns(
                &cfg,
                &[
                    "credentials",
                    "set",
                    "--mail",
                    "--store",
                    "keyring",
                    "--password-stdin",
                ],
                &format!("{SMTP_PASSWORD}\n"),
            ),
        )
    })
    .await
    .unwrap();
    assert_eq!(set.status.code(), Some(0), "{}", text(&set));
    assert_eq!(set_mail.status.code(), Some(0), "{}", text(&set_mail));
    let good = dir.path().join("good.toml");
    std::fs::copy(&config, &good).unwrap();
    let state = config.with_extension("state");
    let dirp = dir.path().to_path_buf();
    let (log, code, notes, status_out) = tokio::task::spawn_blocking(move || {
        let d = Daemon::start(&config, &dirp);
        assert!(d.noted("STATUS="), "{:?}", d.notes.lock().unwrap());
        // The window runs, and its report is mailed.
        wait_for(
            "the window's report in the history",
            Duration::from_secs(80),
            || !history_files(&state).is_empty(),
        );
        wait_for("the report mail", Duration::from_secs(30), || {
            !peer.messages().is_empty()
        });
        let status_out = text(&ns(&good, &["status"], ""));
        // SIGHUP with a broken config: rejected, the old one keeps running.
        let broken = std::fs::read_to_string(&config)
            .unwrap()
            .replace("duration = \"50s\"", "duration = \"50 parsecs\"");
        std::fs::write(&config, broken).unwrap();
        d.signal("-HUP");
        wait_for(
            "the rejected reload in the log",
            Duration::from_secs(20),
            || d.log().contains("config reload REJECTED"),
        );
        wait_for("the reload alert mail", Duration::from_secs(20), || {
            peer.messages()
                .iter()
                .any(|m| m.contains("ALERT: config reload rejected"))
        });
        let after = text(&ns(&good, &["status"], ""));
        assert!(after.contains("last reload: rejected"), "{after}");
        let notes = d.notes.clone();
        let (code, log) = d.stop(Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(200));
        let notes = notes.lock().unwrap().clone();
        (log, code, notes, status_out)
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("STATUS=next window e2e at ")
                || n.starts_with("STATUS=running e2e")),
        "{notes:?}"
    );
    assert!(notes.iter().any(|n| n.contains("RELOADING=1")), "{notes:?}");
    assert!(notes.iter().any(|n| n.contains("STOPPING=1")), "{notes:?}");
    assert!(status_out.contains("credentials: lab: ok"), "{status_out}");
    assert!(status_out.contains("next:        e2e"), "{status_out}");
    assert!(
        log.contains("50 parsecs") || log.contains("duration"),
        "the problem is logged: {log}"
    );
    assert!(!log.contains(PASSWORD) && !log.contains(SMTP_PASSWORD));

    let peer_messages = SmtpPeer::messages_in(smtp_dir.path());
    let report = peer_messages
        .iter()
        .find(|m| m.contains("Subject: [nightshift] e2e:"))
        .expect("the report mail");
    assert!(
        report.contains("Subject: [nightshift] e2e: 23 changed, 1 failed"),
        "{report}"
    );
    let body = report
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    assert!(
        body.contains("=== ios-007") && body.contains("FAILED at"),
        "{body}"
    );
    assert!(body.contains("=== nxos-004"), "{body}");
    for st in lab.stats().devices {
        assert_eq!(st.unprotected_ms, 0, "{}", st.name);
    }
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_run_reaches_a_safe_point_and_still_keeps_the_report() {
    let (lab, dir, config, service) = setup(
        LabSpec {
            ios: 30,
            nxos: 0,
            latency: Duration::from_millis(100),
            time_scale: 0.1,
            ..Default::default()
        },
        "",
        EVERY_MINUTE,
    )
    .await;
    let _forget = Forget(service);
    let t = std::fs::read_to_string(&config)
        .unwrap()
        .replace("concurrency = 20\n", "concurrency = 3\n");
    std::fs::write(&config, t).unwrap();
    let cfg = config.clone();
    let set = tokio::task::spawn_blocking(move || {
        ns(
            &cfg,
            &[
                "credentials",
                "set",
                "--store",
                "keyring",
                "--password-stdin",
            ],
            &format!("{PASSWORD}\n{PASSWORD}\n"),
        )
    })
    .await
    .unwrap();
    assert_eq!(set.status.code(), Some(0), "{}", text(&set));
    let state = config.with_extension("state");
    let dirp = dir.path().to_path_buf();
    let journal_dir = state.join("journal");
    let (code, log, waited) = tokio::task::spawn_blocking(move || {
        let d = Daemon::start(&config, &dirp);
        wait_for("the window to start", Duration::from_secs(80), || {
            d.noted("STATUS=running e2e")
        });
        // Let a few devices finish, then stop mid-run.
        wait_for("some devices done", Duration::from_secs(30), || {
            std::fs::read_dir(&journal_dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|f| {
                    std::fs::read_to_string(f.path())
                        .unwrap_or_default()
                        .matches("\"status\":\"changed\"")
                        .count()
                })
                .sum::<usize>()
                >= 3
        });
        let t0 = Instant::now();
        let (code, log) = d.stop(Duration::from_secs(60));
        (code, log, t0.elapsed())
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{log}");
    assert!(waited < Duration::from_secs(30), "stopped in {waited:?}");
    let files = history_files(&state);
    assert_eq!(files.len(), 1, "the report was kept: {log}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    let statuses: Vec<&str> = common::statuses(&report);
    assert_eq!(statuses.len(), 30);
    assert!(statuses.contains(&"changed"), "{statuses:?}");
    assert!(statuses.contains(&"not-started"), "{statuses:?}");
    assert!(
        !statuses.contains(&"failed"),
        "no device cut mid-change: {statuses:?}"
    );
    // The report mail is in the outbox (no relay configured).
    let outbox: Vec<String> = common::file_names(&state.join("outbox"));
    assert!(
        outbox
            .iter()
            .any(|f| f.contains("-report-e2e-") && f.ends_with(".eml")),
        "{outbox:?}"
    );
    for st in lab.stats().devices {
        assert_eq!(st.unprotected_ms, 0, "{}", st.name);
        let acl = st.acls.get("LOCK_IT_DOWN");
        assert!(
            st.config_lines == 0 || st.saved,
            "{} changed but not finished: {acl:?}",
            st.name
        );
    }
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_socket_takes_credentials_and_refuses_strangers() {
    let (lab, dir, config, service) = setup(
        LabSpec { ios: 2, nxos: 0, ..Default::default() },
        "",
        "[windows.yearly]\nschedule = \"0 2 1 1 *\"\ntimezone = \"UTC\"\nduration = \"1h\"\njobs = [\"lock-it-down\"]\n",
    )
    .await;
    let _forget = Forget(service);
    let state = config.with_extension("state");
    let dirp = dir.path().to_path_buf();
    let sock = dir.path().join("control.sock");
    tokio::task::spawn_blocking(move || {
        let d = Daemon::start(&config, &dirp);
        // Nothing stored: the daemon says so, and an alert is kept.
        let st = text(&ns(&config, &["status"], ""));
        assert!(st.contains("credentials: lab: missing"), "{st}");
        assert!(st.contains("CREDENTIALS NEEDED: lab"), "{st}");
        let outbox: Vec<String> = common::file_names(&state.join("outbox"));
        assert!(outbox.iter().any(|f| f.contains("alert-credentials-of-profile-lab")), "{outbox:?}");

        // A copy of the config elsewhere is another config: the daemon is
        // not handed credentials proven against it, and says what it runs.
        let other = dirp.join("other.toml");
        std::fs::copy(&config, &other).unwrap();
        let out = ns(&other, &["credentials", "set", "--password-stdin"], &format!("{PASSWORD}\n{PASSWORD}\n"));
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let daemon_runs = std::fs::canonicalize(&config).unwrap().display().to_string();
        assert!(text(&out).contains(&format!("runs {daemon_runs}, not ")), "{}", text(&out));
        assert!(text(&out).contains("nothing was stored"), "{}", text(&out));
        let st = text(&ns(&config, &["status"], ""));
        assert!(st.contains("credentials: lab: missing"), "{st}");

        // `credentials set` hands them to the daemon, which proves them with one login and keeps them.
        let out = ns(&config, &["credentials", "set", "--password-stdin"], &format!("{PASSWORD}\n{PASSWORD}\n"));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(text(&out).contains("the daemon's login to canary ios-001 accepted"), "{}", text(&out));
        assert!(text(&out).contains("stored in the daemon's keyring"), "{}", text(&out));
        let out = ns(&config, &["credentials", "check"], "");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let st = text(&ns(&config, &["status"], ""));
        assert!(st.contains("credentials: lab: ok"), "{st}");

        // A peer that is not root, not the daemon's user and not in the group is refused.
        std::fs::set_permissions(&dirp, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let script = format!(
            "import socket; s = socket.socket(socket.AF_UNIX); s.connect({:?}); s.sendall(b'{{\"op\":\"status\"}}\\n'); print(s.recv(4096).decode())",
            sock.display().to_string()
        );
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", &script])
            .output()
            .unwrap();
        let answer = String::from_utf8_lossy(&out.stdout);
        assert!(answer.contains("\"ok\":false") && answer.contains("refused: uid 65534"), "{answer} {}", String::from_utf8_lossy(&out.stderr));
        assert!(!answer.contains("credentials"), "a refused peer learns nothing: {answer}");
        let (code, log) = d.stop(Duration::from_secs(20));
        assert_eq!(code, Some(0), "{log}");
        assert!(log.contains("refused a peer"), "{log}");
        assert!(!log.contains(PASSWORD));
    })
    .await
    .unwrap();
    // One login per proof: set, check (no other device touched).
    assert_eq!(lab.stats().devices.iter().map(|d| d.logins).sum::<u64>(), 2);
    lab.shutdown().await;
}
