//! The package under a booted systemd, as an operator meets it: Debian 12
//! in `systemd-nspawn` (a minbase root with systemd, built once and cached
//! under target/ by `.ci/nspawn-root`), the package installed with
//! `apt-get install ./nightshift_*.deb` (built by `scripts/package`), the
//! lab and a real SMTP server (aiosmtpd) on the host's loopback, which the
//! container shares. The container has a user namespace of its own, so
//! that a reboot of it starts with an empty kernel keyring, as a machine's
//! does.
//!
//! One scenario, step by step: a broken config refuses to start; a good one
//! becomes active only after READY, with its STATUS; a member of the
//! control group hands over credentials without sudo, a stranger is
//! refused; a window opens on time, pushes, tests the lines and mails the
//! report; a broken reload keeps the old config and mails an alert; a
//! restart mid-window resumes without touching finished devices; a stop
//! mid-run ends within TimeoutStopSec with the report kept and mailed and
//! no device half-changed; after a reboot the credentials are gone and the
//! daemon says so; nothing the unit forbids is hit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // waits on real time and real processes

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use chrono::{Timelike, Utc};
use common::PASSWORD;
use common::smtp::SmtpPeer;
use nightshift::lab::{Lab, LabSpec};

const ROOT_CACHE: &str = "target/nspawn/bookworm";

fn manifest(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn text(o: &Output) -> String {
    common::text(o)
}

fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !check() {
        assert!(t0.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A booted container.
struct Container {
    root: PathBuf,
    nspawn: Child,
    leader: u32,
}

impl Container {
    fn boot(root: &Path) -> Container {
        // Without systemd as the host's PID 1, nspawn keeps the container
        // in a `payload` cgroup of the root, owned by the container's
        // root; one left by an earlier container of another user range
        // would refuse this one ("Failed to create /init.scope control
        // group: Permission denied"). Empty ones are removed.
        let _ = Command::new("sh")
            .args([
                "-c",
                "find /sys/fs/cgroup/*/payload -depth -type d -exec rmdir {} + 2>/dev/null",
            ])
            .status();
        let log = std::fs::File::create(root.with_extension("console.log")).unwrap();
        let nspawn = Command::new("systemd-nspawn")
            .arg("-D")
            .arg(root)
            .args([
                "-b",
                "--quiet",
                "--register=no",
                "--keep-unit",
                "--machine=nightshift-acceptance",
                // nspawn's own seccomp filter forbids the kernel keyring
                // and mlock (russh's "Security warning: ... mlock:
                // Operation not permitted"); a host's systemd does not.
                "--system-call-filter=add_key keyctl request_key @memlock",
                // A user namespace of its own (a reboot starts with an
                // empty kernel keyring), at a fixed range.
                "--private-users=1879048192:65536",
                "--private-users-ownership=auto",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("systemd-nspawn (Debian: systemd-container; .ci/peers.sh installs it)");
        let pid = nspawn.id();
        let mut leader = 0;
        wait_for("the container's systemd", Duration::from_secs(30), || {
            let out = Command::new("pgrep")
                .args(["-P", &pid.to_string(), "-x", "systemd"])
                .output()
                .unwrap();
            leader = String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .unwrap_or(0);
            leader != 0
        });
        let c = Container {
            root: root.to_path_buf(),
            nspawn,
            leader,
        };
        // Until its bus is up, systemctl cannot even ask.
        let mut state = String::new();
        wait_for("the container's boot", Duration::from_secs(60), || {
            state = text(&c.sh("systemctl is-system-running --wait"));
            ["running", "degraded"].contains(&state.trim())
        });
        c
    }

    /// A shell command in the container, as root; `stdin` fed to it.
    fn sh_in(&self, script: &str, stdin: &str) -> Output {
        use std::io::Write as _;
        let mut child = Command::new("nsenter")
            .args([
                "-t",
                &self.leader.to_string(),
                "-a",
                "--",
                "sh",
                "-c",
                script,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn sh(&self, script: &str) -> Output {
        self.sh_in(script, "")
    }

    /// Runs `script` and fails the test unless it exits 0.
    fn ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "{script}: {}\n--- journal:\n{}",
            text(&out),
            text(&self.sh("journalctl -u nightshift --no-pager -n 40"))
        );
        text(&out)
    }

    /// Writes a file in the container (as its root would).
    fn write(&self, path: &str, content: &str, owner: &str, mode: &str) {
        let out = self.sh_in(
            &format!("cat > {path} && chown {owner} {path} && chmod {mode} {path}"),
            content,
        );
        assert!(out.status.success(), "writing {path}: {}", text(&out));
    }

    fn journal(&self) -> String {
        text(&self.sh("journalctl -u nightshift --no-pager -o short-iso"))
    }

    /// A file of the container, read from the host.
    fn file(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    fn poweroff(mut self) {
        let _ = self.sh("systemctl poweroff");
        let t0 = Instant::now();
        while self.nspawn.try_wait().unwrap().is_none() {
            if t0.elapsed() > Duration::from_secs(60) {
                let _ = self.nspawn.kill();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.nspawn.try_wait().ok().flatten().is_none() {
            let _ = self.nspawn.kill();
            let _ = self.nspawn.wait();
        }
    }
}

/// The newest package scripts/package built.
fn package() -> PathBuf {
    let dir = manifest("target/debian");
    let mut debs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "deb"))
                .collect()
        })
        .unwrap_or_default();
    debs.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    debs.pop().unwrap_or_else(|| {
        panic!(
            "no package in {}: run scripts/package (.ci/test does)",
            dir.display()
        )
    })
}

/// The run history's reports whose run id starts with `prefix`.
fn reports(c: &Container, prefix: &str) -> Vec<serde_json::Value> {
    std::fs::read_dir(c.file("/var/lib/nightshift/history"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .filter_map(|t| serde_json::from_str(&t).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Devices the run's journal has as finished (not counting those a
/// stopped attempt did not begin).
fn finished_in_journal(c: &Container, prefix: &str) -> Vec<String> {
    let dir = c.file("/var/lib/nightshift/journal");
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        if !e.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        for line in std::fs::read_to_string(e.path())
            .unwrap_or_default()
            .lines()
        {
            // A device a stopped attempt did not begin is still to do.
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line)
                && v["event"] == "finished"
                && v["data"]["record"]["stopped"] != true
            {
                out.push(v["data"]["device"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    out
}

/// Each message's subject, unfolded (a long header goes on over lines
/// that start with white space).
fn subjects(peer: &SmtpPeer) -> Vec<String> {
    peer.messages()
        .iter()
        .filter_map(|m| {
            let mut lines = m.lines().skip_while(|l| !l.starts_with("Subject: "));
            let mut subject = lines.next()?.trim_start_matches("Subject: ").to_string();
            for more in lines.take_while(|l| l.starts_with([' ', '\t'])) {
                subject.push(' ');
                subject.push_str(more.trim());
            }
            Some(subject)
        })
        .collect()
}

const FAST: &[&str] = &[
    "ios-001", "ios-002", "ios-003", "ios-004", "nxos-001", "nxos-002",
];
const SLOW: &[&str] = &[
    "ios-005", "ios-006", "ios-007", "ios-008", "ios-009", "ios-010", "ios-011", "ios-012",
];

fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The operator's config: the lab's devices and POTS lines, mail to the
/// SMTP peer, two windows at the given UTC minutes.
fn good_config(lab_config: &str, mail_port: u16, first: (u32, u32), second: (u32, u32)) -> String {
    let mut t = lab_config.to_string();
    let daemon_end = t.find("\n\n[ssh]").unwrap();
    t.replace_range(
        t.find("[daemon]").unwrap()..daemon_end,
        "[daemon]\nstate_dir = \"/var/lib/nightshift\"\ntimezone = \"UTC\"\ncontrol_group = \"netops\"",
    );
    let kh_start = t.find("known_hosts = ").unwrap();
    let kh_end = kh_start + t[kh_start..].find('\n').unwrap();
    t.replace_range(
        kh_start..kh_end,
        "known_hosts = \"/var/lib/nightshift/known_hosts\"",
    );
    t = t.replace(
        "[credentials.lab]",
        &format!(
            "[mail]\nrelay = \"127.0.0.1\"\nport = {mail_port}\ntls = \"none\"\nfrom = \"nightshift@example.test\"\nto = [\"netops@example.test\"]\ntimeout = \"5s\"\n\n[credentials.lab]"
        ),
    );
    t = t.replace(
        "devices = [\"ios-*\", \"nxos-*\"]",
        &format!("devices = [{}]", list(FAST)),
    );
    t.truncate(t.find("[windows.nightly]").unwrap());
    t.push_str(&format!(
        "[jobs.slow-push]\nkind = \"acl\"\ndevices = [{}]\nconcurrency = 2\nbudget = \"1m\"\nacl_name = \"LOCK_IT_DOWN\"\nacl_lines = \"\"\"\n{}\n\"\"\"\n\n",
        list(SLOW),
        nightshift::lab::LOCK_IT_DOWN.join("\n")
    ));
    t.push_str(&format!(
        "[windows.first]\nschedule = \"{} {} * * *\"\ntimezone = \"UTC\"\nduration = \"10m\"\njobs = [\"lock-it-down\", \"pots\"]\n\n\
         [windows.second]\nschedule = \"{} {} * * *\"\ntimezone = \"UTC\"\nduration = \"10m\"\njobs = [\"slow-push\"]\n",
        first.1, first.0, second.1, second.0
    ));
    t
}

const BROKEN: &str = "version = 1\n[daemon]\nstate_dir = \"/var/lib/nightshift\"\nteir = 3\n\n[[devices]]\nname = \"r1\"\nhost = \"192.0.2.1\"\nplatform = \"cisco_iox\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_package_under_a_booted_systemd() {
    let cache = manifest(ROOT_CACHE);
    assert!(
        cache.join("usr/lib/systemd/systemd").exists(),
        "{} is missing: run .ci/nspawn-root (.ci/test does)",
        cache.display()
    );
    let deb = package();
    let mut spec = LabSpec {
        ios: 12,
        nxos: 2,
        dialer_lines: 2,
        branches: 4,
        // The IOS revert timer (10 min) is 30 s here: longer than a slow
        // device's change (1 s a command).
        time_scale: 0.05,
        ..Default::default()
    };
    spec.faults = SLOW
        .iter()
        .map(|d| format!("slow:{d}:1s").parse().unwrap())
        .collect();
    let (lab, dir, lab_config) = common::lab_with_config(spec).await;
    let lab = std::sync::Arc::new(lab);
    let smtp_dir = dir.path().join("smtp");
    std::fs::create_dir_all(&smtp_dir).unwrap();
    let peer = SmtpPeer::start(&smtp_dir, "plain", 0);
    let lab2 = lab.clone();
    let root = dir.path().join("root");
    tokio::task::spawn_blocking(move || scenario(&lab2, &lab_config, &peer, &deb, &cache, &root))
        .await
        .unwrap();
    drop(dir);
}

fn scenario(lab: &Lab, lab_config: &Path, peer: &SmtpPeer, deb: &Path, cache: &Path, root: &Path) {
    let copied = Command::new("cp")
        .arg("-a")
        .arg(cache)
        .arg(root)
        .status()
        .unwrap();
    assert!(copied.success());
    let deb_name = deb.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::copy(deb, root.join("root").join(&deb_name)).unwrap();
    let initial = lab.stats();
    let c = Container::boot(root);
    let mut journal = String::new();

    // Install: the user and folders exist; the service is neither enabled
    // nor started (no edited config, no credentials yet).
    c.ok(&format!(
        "cd /root && apt-get install -y -q --no-install-recommends ./{deb_name}"
    ));
    assert_eq!(
        text(&c.sh("systemctl is-enabled nightshift")).trim(),
        "disabled"
    );
    assert_eq!(
        text(&c.sh("systemctl is-active nightshift")).trim(),
        "inactive"
    );
    let perms = c.ok("stat -c '%a %U:%G' /etc/nightshift /etc/nightshift/nightshift.toml");
    assert_eq!(
        perms, "750 root:nightshift\n640 root:nightshift\n",
        "{perms}"
    );
    assert!(c.file("/usr/share/man/man5/nightshift.toml.5.gz").exists());
    assert!(
        c.file("/usr/share/bash-completion/completions/nightshift")
            .exists()
    );
    c.ok("install -d -o nightshift -g nightshift -m 0700 /var/lib/nightshift");
    c.write(
        "/var/lib/nightshift/known_hosts",
        &lab.known_hosts(),
        "nightshift:nightshift",
        "0600",
    );

    // 1. A broken config: the service does not start, and the journal has
    //    every problem with FILE:LINE:COLUMN.
    c.write(
        "/etc/nightshift/nightshift.toml",
        BROKEN,
        "root:nightshift",
        "0640",
    );
    let start = c.sh("systemctl start nightshift");
    assert!(!start.status.success(), "a broken config must not start");
    let j = c.journal();
    assert!(
        j.contains("/etc/nightshift/nightshift.toml:4:1: daemon.teir: unknown key"),
        "{j}"
    );
    assert!(
        j.contains("/etc/nightshift/nightshift.toml:9:12: devices[0].platform"),
        "{j}"
    );
    assert!(
        j.contains("/etc/nightshift/nightshift.toml: 3 problems found"),
        "{j}"
    );

    // 2. A good config: active only once READY came (systemd logs
    //    "Started" after the daemon said it is ready), with its STATUS.
    let now = Utc::now();
    let at = now + chrono::Duration::seconds(100);
    let first = (at.hour(), at.minute());
    let next = at + chrono::Duration::minutes(1);
    let second = (next.hour(), next.minute());
    let config = good_config(
        &std::fs::read_to_string(lab_config).unwrap(),
        peer.port,
        first,
        second,
    );
    c.write(
        "/etc/nightshift/nightshift.toml",
        &config,
        "root:nightshift",
        "0640",
    );
    // The config's control group, and two users: one in it, one not.
    c.ok("groupadd netops && useradd -m -G netops alice && useradd -m bob");
    c.ok("systemctl reset-failed nightshift");
    c.ok("systemctl enable --now nightshift");
    assert_eq!(
        text(&c.sh("systemctl is-active nightshift")).trim(),
        "active"
    );
    // Type=notify: systemd says "Started" only once READY came, after the
    // daemon's start-up work (here: the credentials check and its alert).
    assert_eq!(
        c.ok("systemctl show -p Type --value nightshift").trim(),
        "notify"
    );
    let j = c.journal();
    let checked = j
        .rfind("alert kept in the outbox")
        .expect("the start-up credentials alert");
    let started = j
        .rfind("Started nightshift.service")
        .expect("systemd's Started line");
    assert!(checked < started, "active before READY:\n{j}");
    let status = c.ok("systemctl status nightshift --no-pager");
    assert!(
        status.contains("Status: \"next window first at"),
        "{status}"
    );
    assert!(status.contains("CREDENTIALS NEEDED: lab"), "{status}");

    // 3. A member of control_group hands over the credentials without sudo
    //    (the config is not readable for them): one canary login, kept in
    //    the daemon's keyring. Someone else is refused and learns nothing.
    let logins = |lab: &Lab| -> u64 { lab.stats().devices.iter().map(|d| d.logins).sum() };
    let before = logins(lab);
    let set = c.sh_in(
        "runuser -u alice -- nightshift credentials set --password-stdin",
        &format!("{PASSWORD}\n{PASSWORD}\n"),
    );
    assert!(set.status.success(), "{}", text(&set));
    assert!(
        text(&set).contains("the daemon's login to canary ios-001 accepted"),
        "{}",
        text(&set)
    );
    assert!(
        text(&set).contains("stored in the daemon's keyring"),
        "{}",
        text(&set)
    );
    assert_eq!(logins(lab), before + 1, "one canary login");
    assert_eq!(lab.stats().auth_failures, 0);
    let bob = c.sh_in(
        "runuser -u bob -- nightshift credentials set --password-stdin",
        &format!("{PASSWORD}\n"),
    );
    assert!(!bob.status.success(), "{}", text(&bob));
    assert!(text(&bob).contains("not in group netops"), "{}", text(&bob));
    for secret in [
        "ios-001",
        "credentials.lab",
        "profiles",
        "/etc/nightshift/nightshift.toml",
    ] {
        assert!(
            !text(&bob).contains(secret),
            "bob learnt {secret}: {}",
            text(&bob)
        );
    }
    let alice = c.ok("runuser -u alice -- nightshift status");
    assert!(alice.contains("credentials: lab: ok"), "{alice}");

    // 4. The first window opens on time: the ACL push and the POTS test
    //    against the lab; the report mail arrives; one journal line per device.
    wait_for(
        "the first window's report",
        Duration::from_secs(240),
        || !reports(&c, "first-").is_empty(),
    );
    let report = &reports(&c, "first-")[0];
    let opened = chrono::DateTime::parse_from_rfc3339(report["started"].as_str().unwrap()).unwrap();
    assert_eq!((opened.hour(), opened.minute()), first, "{report}");
    assert!(opened.second() < 5, "opened late: {opened}");
    for d in report["devices"].as_array().unwrap() {
        let want = if d["job"] == "pots" {
            "done"
        } else {
            "changed"
        };
        assert_eq!(d["status"], want, "{}", d["name"]);
    }
    assert_eq!(
        report["lines"].as_array().unwrap().len(),
        4,
        "all four calls placed"
    );
    for d in FAST {
        let st = lab.stats();
        let dev = st.device(d).unwrap();
        assert_eq!(dev.unprotected_ms, 0, "{d}");
        assert!(dev.saved, "{d}");
    }
    wait_for("the report mail", Duration::from_secs(30), || {
        subjects(peer)
            .iter()
            .any(|s| s.starts_with("[nightshift] first:"))
    });
    let j = c.journal();
    for d in FAST {
        let lines = j
            .lines()
            .filter(|l| l.contains("device done") && l.contains(&format!("device={d} ")))
            .count();
        assert_eq!(lines, 1, "{d}: one line per device\n{j}");
    }

    // 5. A reload with a broken config: refused, the old config stays in
    //    force, the service stays active, and an alert is mailed.
    c.write(
        "/etc/nightshift/nightshift.toml",
        BROKEN,
        "root:nightshift",
        "0640",
    );
    let reload = c.sh("systemctl reload nightshift");
    assert!(!reload.status.success(), "a broken reload must fail");
    assert_eq!(
        text(&c.sh("systemctl is-active nightshift")).trim(),
        "active"
    );
    let status = c.ok("nightshift status");
    assert!(status.contains("last reload: rejected"), "{status}");
    assert!(
        status.contains("second"),
        "the old config's windows: {status}"
    );
    wait_for("the reload alert", Duration::from_secs(30), || {
        subjects(peer)
            .iter()
            .any(|s| s.contains("config reload rejected"))
    });
    c.write(
        "/etc/nightshift/nightshift.toml",
        &config,
        "root:nightshift",
        "0640",
    );
    c.ok("systemctl reload nightshift");

    // 6. A restart in the middle of the second window: the run resumes
    //    from its journal; finished devices are not touched again.
    wait_for(
        "two devices of the second window",
        Duration::from_secs(150),
        || finished_in_journal(&c, "second-").len() >= 2,
    );
    let done_before = finished_in_journal(&c, "second-");
    let stats_before = lab.stats();
    c.ok("systemctl restart nightshift");
    assert_eq!(
        text(&c.sh("systemctl is-active nightshift")).trim(),
        "active"
    );
    // 8 (first half). The credentials survived the restart: the resumed
    // run logs in with them.
    let status = c.ok("nightshift status");
    assert!(status.contains("credentials: lab: ok"), "{status}");
    wait_for(
        "a device finished after the restart",
        Duration::from_secs(120),
        || finished_in_journal(&c, "second-").len() > done_before.len(),
    );
    let st = lab.stats();
    for d in &done_before {
        let (b, a) = (stats_before.device(d).unwrap(), st.device(d).unwrap());
        assert_eq!(
            a.logins, b.logins,
            "{d} was touched again after the restart"
        );
        assert_eq!(a.config_lines, b.config_lines, "{d}");
    }
    assert!(c.journal().contains("resum"), "{}", c.journal());

    // 7. A stop in the middle of the run: gone within TimeoutStopSec, the
    //    report kept and mailed, every device accounted for, none half-changed.
    let t0 = Instant::now();
    c.ok("systemctl stop nightshift");
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(90), "stopped in {took:?}");
    assert_eq!(
        text(&c.sh("systemctl is-active nightshift")).trim(),
        "inactive"
    );
    let second_reports = reports(&c, "second-");
    assert_eq!(second_reports.len(), 1, "the report is kept");
    let devices = second_reports[0]["devices"].as_array().unwrap();
    assert_eq!(devices.len(), SLOW.len(), "every device accounted for");
    wait_for("the second window's mail", Duration::from_secs(30), || {
        subjects(peer)
            .iter()
            .any(|s| s.starts_with("[nightshift] second"))
    });
    let st = lab.stats();
    for d in SLOW {
        let dev = st.device(d).unwrap();
        assert_eq!(dev.unprotected_ms, 0, "{d}");
        // Every tenth lab device starts without the ACL.
        let acl = dev.acls.get("LOCK_IT_DOWN");
        let before_acl = initial.device(d).unwrap().acls.get("LOCK_IT_DOWN");
        let intent: Vec<String> = nightshift::lab::LOCK_IT_DOWN
            .iter()
            .filter(|l| !l.starts_with("remark"))
            .map(|l| l.replace("eq 53", "eq domain"))
            .collect();
        // Either untouched, or changed, verified and saved.
        assert!(
            acl == Some(&intent) || acl == before_acl,
            "{d} half-changed: {acl:?}"
        );
        if acl == Some(&intent) {
            assert!(dev.saved, "{d}: changed, not saved");
        }
    }
    journal.push_str(&c.journal());
    let security = c.ok("systemd-analyze security nightshift --no-pager");
    let exposure: f64 = security
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for nightshift.service: ")
                .nth(1)
        })
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0);
    assert!(exposure <= 2.0, "exposure {exposure}:\n{security}");

    // 8. After a reboot the service starts, finds no credentials (the
    //    kernel keyring is memory), and mails the alert that they are needed.
    let alerts = |peer: &SmtpPeer| {
        subjects(peer)
            .iter()
            .filter(|s| s.contains("credentials of profile lab not usable (at start-up)"))
            .count()
    };
    let alerts_before = alerts(peer);
    c.poweroff();
    let c = Container::boot(root);
    assert_eq!(
        text(&c.sh("systemctl is-active nightshift")).trim(),
        "active"
    );
    let status = c.ok("nightshift status");
    assert!(status.contains("credentials: lab: missing"), "{status}");
    let t0 = Instant::now();
    while alerts(peer) <= alerts_before {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no credentials alert after the reboot: {:?}\n{}",
            subjects(peer),
            c.journal()
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    // 9. Nothing the unit forbids was hit.
    journal.push_str(&c.journal());
    for forbidden in ["SIGSYS", "Operation not permitted", "Security warning"] {
        assert!(
            !journal.contains(forbidden),
            "{forbidden} in the journal:\n{journal}"
        );
    }
    c.poweroff();
}
