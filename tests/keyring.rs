//! The OS keyring the way users meet it: stored by one process, read by
//! another, in a shell without a session keyring of its own, in fresh
//! session keyrings (`keyctl session -`, what systemd's
//! `KeyringMode=private` gives a service), under `sudo` and as another
//! user (`sudo -u`); a keyring the container forbids (seccomp), said
//! before any login; and secrets kept as files in a credentials directory.
//! The suite runs as users run commands: no keyring set up around it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::PASSWORD;
use nightshift::lab::{Lab, LabSpec};

/// The unprivileged account `.ci/peers.sh` creates.
const OTHER_USER: &str = "nightshift-test";

fn text(o: &Output) -> String {
    common::text(o)
}

/// Runs `wrapper... nightshift -c config args...` with `stdin`. The binary
/// is a copy beside the config, so that another user can run it whatever
/// the permissions of the checkout it was built in.
fn via(wrapper: &[&str], config: &Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write as _;
    let bin = config.with_file_name("nightshift");
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(&bin);
            c
        }
        None => Command::new(&bin),
    };
    let mut child = cmd
        .arg("-c")
        .arg(config)
        .args(args)
        .env_remove("NIGHTSHIFT_LOG")
        .env_remove("CREDENTIALS_DIRECTORY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{wrapper:?}: {e} (.ci/peers.sh installs it)"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn logins(lab: &Lab) -> u64 {
    lab.stats().devices.iter().map(|d| d.logins).sum()
}

/// A lab, its config with a keyring service of the test's own, readable by
/// other users too (for `sudo -u`).
async fn lab() -> (Lab, tempfile::TempDir, PathBuf) {
    let (lab, dir, config) = common::lab_with_config(LabSpec {
        ios: 3,
        nxos: 1,
        ..Default::default()
    })
    .await;
    let (text, _service) = common::own_keyring(&config, &dir.path().join("no-daemon.sock"));
    std::fs::write(&config, text).unwrap();
    for p in [dir.path().to_path_buf(), config.clone()] {
        let mode = if p.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let kh = config.with_extension("known_hosts");
    std::fs::set_permissions(&kh, std::fs::Permissions::from_mode(0o644)).unwrap();
    let bin = config.with_file_name("nightshift");
    std::fs::copy(env!("CARGO_BIN_EXE_nightshift"), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    (lab, dir, config)
}

/// Stores with `set_via`, reads back and proves with `check_via` (another
/// process), deletes with `check_via`: one canary login each.
async fn store_in_one_process_read_in_another(set_via: &[&str], check_via: &[&str]) {
    let (lab, _dir, config) = lab().await;
    let set = [
        "credentials",
        "set",
        "--store",
        "keyring",
        "--password-stdin",
    ];
    let out = via(set_via, &config, &set, &format!("{PASSWORD}\n{PASSWORD}\n"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("stored in the kernel keyring (this user's persistent keyring"),
        "{}",
        text(&out)
    );
    assert_eq!(logins(&lab), 1, "one login: the canary");
    let check = ["credentials", "check", "--store", "keyring"];
    let out = via(check_via, &config, &check, "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("profile lab: OK"), "{}", text(&out));
    assert_eq!(logins(&lab), 2);
    let delete = ["credentials", "delete", "--store", "keyring"];
    let out = via(check_via, &config, &delete, "");
    assert!(text(&out).contains("deleted"), "{}", text(&out));
    let out = via(check_via, &config, &check, "");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("no credentials stored"),
        "{}",
        text(&out)
    );
    assert_eq!(lab.stats().auth_failures, 0);
    lab.shutdown().await;
}

/// What `@s` is for a command run the way the suite runs commands.
fn session_keyring() -> String {
    let out = Command::new("keyctl")
        .args(["rdescribe", "@s"])
        .output()
        .expect("keyctl (Debian: keyutils)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_session_keyring() {
    // A root shell from SSH without pam_keyinit, cron, a container: the
    // kernel falls back to the user-session keyring `_uid_ses.UID`. The
    // suite runs that way (`.ci/test` sets up no keyring); under `keyctl
    // session` this test cannot show what it is for, and says so.
    let s = session_keyring();
    assert!(
        s.contains("_uid_ses."),
        "this test needs a process without a session keyring of its own, as the suite runs in CI; @s is {s}"
    );
    store_in_one_process_read_in_another(&[], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_fresh_session_keyrings_as_systemd_gives_a_service() {
    // Each command in a session keyring of its own, as KeyringMode=private
    // gives each start of the service: found through the persistent keyring.
    let fresh = ["keyctl", "session", "-"];
    store_in_one_process_read_in_another(&fresh, &fresh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_under_sudo_read_without_it() {
    store_in_one_process_read_in_another(&["sudo"], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_user_under_sudo_u() {
    // The keyring is per uid: stored and read as that user, in two
    // processes, each with root's session (or none) around it.
    let user = ["sudo", "-u", OTHER_USER];
    store_in_one_process_read_in_another(&user, &user).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyring_the_container_forbids_is_said_before_any_login() {
    let (lab, dir, config) = lab().await;
    // Docker's default seccomp profile (and systemd-nspawn's): the keyring
    // system calls fail with EPERM.
    let jail = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/no_keyring.py");
    let set = [
        "credentials",
        "set",
        "--store",
        "keyring",
        "--password-stdin",
    ];
    let out = via(&[jail], &config, &set, &format!("{PASSWORD}\n{PASSWORD}\n"));
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("system calls are blocked"), "{t}");
    assert!(t.contains("seccomp"), "{t}");
    assert!(t.contains("CREDENTIALS_DIRECTORY"), "{t}");
    assert!(t.contains("no login was spent"), "{t}");
    assert_eq!(logins(&lab), 0, "the canary login was not spent");
    assert_eq!(lab.stats().auth_failures, 0);

    // The way out in a container: a credentials directory, written once...
    let secrets = dir.path().join("secrets");
    let files = [
        "credentials",
        "set",
        "--store",
        "files",
        "--creds-dir",
        secrets.to_str().unwrap(),
        "--password-stdin",
    ];
    let out = via(
        &[jail],
        &config,
        &files,
        &format!("{PASSWORD}\n{PASSWORD}\n"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let file = secrets.join("credentials.lab");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "only the owner reads it");
    assert_eq!(logins(&lab), 1);

    // ...then read by every command where CREDENTIALS_DIRECTORY points,
    // with the keyring still forbidden: a run uses it, asks nothing.
    let json = dir.path().join("run.json");
    let out = {
        let mut c = Command::new(jail);
        c.arg(env!("CARGO_BIN_EXE_nightshift"))
            .arg("-c")
            .arg(&config)
            .args(["run", "lock-it-down", "--json", json.to_str().unwrap()])
            .env("CREDENTIALS_DIRECTORY", &secrets)
            .stdin(Stdio::null());
        c.output().unwrap()
    };
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert!(
        common::statuses(&report).iter().all(|s| *s == "changed"),
        "{report}"
    );
    lab.shutdown().await;
}
