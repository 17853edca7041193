//! Test helpers: start the lab in-process and drive it over real SSH.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub mod daemon;
pub mod device;
pub mod log;
pub mod smtp;

use nightshift::lab::{Lab, LabSpec};
use russh::client::{self, Handle, Msg};
use russh::keys::PublicKey;
use russh::{Channel, ChannelMsg, Preferred};

pub const PASSWORD: &str = "lab-Pass-1";
/// Any lab prompt, at the end of what was received.
pub const PROMPT: &str = r"(ios-\d+|nxos-\d+|hub-1)(\([a-z-]+\))?[>#] ?$";

pub async fn start_lab(spec: LabSpec) -> Lab {
    Lab::start(LabSpec {
        password: PASSWORD.into(),
        ..spec
    })
    .await
    .expect("lab starts")
}

/// A client that accepts exactly one host key: the one the lab says the
/// device has.
pub struct Client {
    expected: PublicKey,
}

impl client::Handler for Client {
    type Error = russh::Error;
    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(
            matches!(key, russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } if key.key_data() == self.expected.key_data()),
        )
    }
}

pub fn config(preferred: Option<Preferred>) -> Arc<client::Config> {
    Arc::new(client::Config {
        preferred: preferred.unwrap_or_default(),
        ..Default::default()
    })
}

pub async fn connect(
    addr: SocketAddr,
    key: &PublicKey,
    preferred: Option<Preferred>,
) -> Result<Handle<Client>, russh::Error> {
    client::connect(
        config(preferred),
        addr,
        Client {
            expected: key.clone(),
        },
    )
    .await
}

/// An interactive PTY shell with an expect buffer.
pub struct Shell {
    pub handle: Handle<Client>,
    channel: Channel<Msg>,
    /// Everything received and not yet consumed by `expect`.
    pub buf: String,
    pub closed: bool,
}

impl Shell {
    pub async fn open(lab: &Lab, device: &str) -> Shell {
        Self::open_with(lab, device, "admin", PASSWORD)
            .await
            .expect("login")
    }

    pub async fn open_with(
        lab: &Lab,
        device: &str,
        user: &str,
        password: &str,
    ) -> Result<Shell, String> {
        let d = lab.device(device).expect("device");
        let mut handle = connect(d.addr, &d.host_key, None)
            .await
            .map_err(|e| e.to_string())?;
        let ok = handle
            .authenticate_password(user, password)
            .await
            .map_err(|e| e.to_string())?;
        if !ok.success() {
            return Err("authentication failed".into());
        }
        Self::on(handle).await
    }

    pub async fn on(handle: Handle<Client>) -> Result<Shell, String> {
        let channel = handle
            .channel_open_session()
            .await
            .map_err(|e| e.to_string())?;
        channel
            .request_pty(true, "vt100", 200, 24, 0, 0, &[])
            .await
            .map_err(|e| e.to_string())?;
        channel
            .request_shell(true)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Shell {
            handle,
            channel,
            buf: String::new(),
            closed: false,
        })
    }

    pub async fn send(&mut self, text: &str) {
        self.channel
            .data_bytes(text.as_bytes().to_vec())
            .await
            .expect("send");
    }

    /// Reads until `pattern` matches; returns the text up to the end of the
    /// match and keeps the rest.
    pub async fn try_expect(&mut self, pattern: &str, timeout: Duration) -> Result<String, String> {
        let re = regex::Regex::new(pattern).expect("regex");
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(m) = re.find(&self.buf) {
                let end = m.end();
                let out = self.buf[..end].to_string();
                self.buf.drain(..end);
                return Ok(out);
            }
            if self.closed {
                return Err(format!("closed before /{pattern}/; got {:?}", self.buf));
            }
            match tokio::time::timeout_at(deadline, self.channel.wait()).await {
                Err(_) => {
                    return Err(format!(
                        "timeout waiting for /{pattern}/; got {:?}",
                        self.buf
                    ));
                }
                Ok(Some(ChannelMsg::Data { data })) => {
                    self.buf.push_str(&String::from_utf8_lossy(&data))
                }
                Ok(Some(ChannelMsg::Eof | ChannelMsg::Close) | None) => self.closed = true,
                Ok(Some(_)) => {}
            }
        }
    }

    pub async fn expect(&mut self, pattern: &str) -> String {
        self.try_expect(pattern, Duration::from_secs(10))
            .await
            .unwrap()
    }

    /// Sends a line and returns its output up to the next prompt ending in
    /// `>`, `#` or `# ` (the echo and the prompt included).
    pub async fn cmd(&mut self, line: &str) -> String {
        self.send(&format!("{line}\r")).await;
        self.expect(PROMPT).await
    }

    /// Waits until the server closes the channel.
    pub async fn wait_closed(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.closed {
            match tokio::time::timeout_at(deadline, self.channel.wait()).await {
                Err(_) => return false,
                Ok(Some(ChannelMsg::Data { data })) => {
                    self.buf.push_str(&String::from_utf8_lossy(&data))
                }
                Ok(Some(ChannelMsg::Eof | ChannelMsg::Close) | None) => self.closed = true,
                Ok(Some(_)) => {}
            }
        }
        true
    }
}

/// An IOS shell in privileged mode with paging off.
pub async fn ios_enable(lab: &Lab, device: &str) -> Shell {
    let mut s = Shell::open(lab, device).await;
    s.expect(&format!("{device}>$")).await;
    s.cmd("terminal length 0").await;
    s.send("enable\r").await;
    s.expect("Password: $").await;
    s.send(&format!("{PASSWORD}\r")).await;
    s.expect(&format!("{device}#$")).await;
    s
}

/// A lab and a nightshift config written for it (host keys beside it).
/// Timers run at scale 0.01 (the 10-minute IOS revert timer is 6 s, longer
/// than any change in the tests) unless the spec sets a scale.
pub async fn lab_with_config(spec: LabSpec) -> (Lab, tempfile::TempDir, std::path::PathBuf) {
    let spec = if spec.time_scale == 1.0 {
        LabSpec {
            time_scale: 0.01,
            ..spec
        }
    } else {
        spec
    };
    let lab = start_lab(spec).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lab.toml");
    lab.write_config(&path).unwrap();
    // The lab's window opens at 02:00 UTC for 4 h: a test that runs it
    // `--now` between 02:00 and 06:00 would get the current opening and its
    // deadline. Tests must not depend on the time of day.
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replace(
        "schedule = \"0 2 * * *\"",
        &format!("schedule = \"{}\"", schedule_closed_now()),
    );
    std::fs::write(&path, text).unwrap();
    (lab, dir, path)
}

/// An ACL job's TOML: `devices` as written inside the brackets, `extra`
/// any further lines (`family = ...`).
pub fn acl_job(name: &str, devices: &str, acl: &str, extra: &str, lines: &str) -> String {
    format!(
        "[jobs.{name}]\nkind = \"acl\"\ndevices = [{devices}]\nacl_name = \"{acl}\"\n{extra}acl_lines = \"\"\"\n{lines}\n\"\"\"\n\n"
    )
}

/// Adds `jobs` (TOML) to the lab's config and makes them the nightly
/// window's jobs, in place of the lab's own.
pub fn window_jobs(config: &std::path::Path, jobs: &str, names: &[&str]) {
    let text = std::fs::read_to_string(config).unwrap();
    let at = text.find("[windows.").unwrap();
    let list: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    let text = format!("{}{jobs}{}", &text[..at], &text[at..]).replace(
        "jobs = [\"lock-it-down\"]",
        &format!("jobs = [{}]", list.join(", ")),
    );
    std::fs::write(config, text).unwrap();
}

/// A daily schedule whose window (up to 12 h long) is not open now: it
/// opens twelve hours from now. `run --window W --now` then starts a
/// fresh opening with the window's whole duration, whatever the time of day.
pub fn schedule_closed_now() -> String {
    use chrono::Timelike;
    let now = nightshift::clock::Clock::now(&nightshift::clock::SystemClock);
    format!("0 {} * * *", (now.hour() + 12) % 24)
}

/// Runs the binary with `-c config`, `args` as given and `stdin` on its
/// standard input; returns what it printed and its status.
pub fn ns(config: &std::path::Path, args: &[&str], stdin: &str) -> std::process::Output {
    spawn_with_stdin(config, args, stdin)
        .wait_with_output()
        .unwrap()
}

/// Starts the binary with `-c config` and `args`, writes `stdin` to its
/// standard input and closes it; output is piped.
fn spawn_with_stdin(config: &std::path::Path, args: &[&str], stdin: &str) -> std::process::Child {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_nightshift"))
        .arg("-c")
        .arg(config)
        .args(args)
        .env_remove("NIGHTSHIFT_LOG")
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
    child
}

/// Gives the config at `config` a keyring service of the test's own (so
/// tests never share secrets) and its control socket at `socket`; returns
/// the config's new text, not yet written, and the service.
pub fn own_keyring(config: &std::path::Path, socket: &std::path::Path) -> (String, String) {
    let service = format!(
        "nightshift-test-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    );
    let text = std::fs::read_to_string(config).unwrap().replace(
        "[daemon]\n",
        &format!(
            "[daemon]\nkeyring_service = \"{service}\"\ncontrol_socket = \"{}\"\n",
            socket.display()
        ),
    );
    (text, service)
}

/// Configuration lines each lab device has taken so far, in fleet order.
pub fn config_lines(lab: &Lab) -> Vec<u64> {
    lab.stats().devices.iter().map(|d| d.config_lines).collect()
}

/// Each device's status in a JSON report, in report order.
pub fn statuses(report: &serde_json::Value) -> Vec<&str> {
    report["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect()
}

/// The names of the files in `dir` (none when it does not exist).
pub fn file_names(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|f| f.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Standard output and standard error of a finished command, together.
/// A config's text with its first job's `acl_lines` body replaced by
/// `lines`.
pub fn with_acl_lines(config: &str, lines: &str) -> String {
    const OPEN: &str = "acl_lines = \"\"\"\n";
    let start = config.find(OPEN).expect("the config has acl_lines") + OPEN.len();
    let end = start + config[start..].find("\n\"\"\"").expect("acl_lines ends");
    format!("{}{lines}{}", &config[..start], &config[end..])
}

/// `nightshift report render FILE --format html`, which must succeed.
pub fn render_html(config: &std::path::Path, history: &std::path::Path) -> String {
    let out = ns(
        config,
        &[
            "report",
            "render",
            history.to_str().unwrap(),
            "--format",
            "html",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Starts `nightshift -c CONFIG COMMAND --password-stdin ARGS...` (the
/// option goes right after the command, before any `--`) with `password`
/// as both the password and the enable secret on standard input.
pub fn spawn_nightshift(
    config: &std::path::Path,
    args: &[&str],
    password: &str,
) -> std::process::Child {
    let mut all = vec![args[0], "--password-stdin"];
    all.extend_from_slice(&args[1..]);
    spawn_with_stdin(config, &all, &format!("{password}\n{password}\n"))
}

/// What a nightshift run printed and wrote.
pub struct RunOutput {
    pub code: Option<i32>,
    pub json: serde_json::Value,
    pub stdout: String,
    pub stderr: String,
}

impl RunOutput {
    /// Standard output and standard error together, for messages.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs nightshift (see [`spawn_nightshift`]) with `--json FILE` added.
pub async fn run_json(config: &std::path::Path, args: &[&str], password: &str) -> RunOutput {
    let json = config.with_extension(format!("{}.json", rand::random::<u32>()));
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend(["--json".to_string(), json.display().to_string()]);
    let (config, password) = (config.to_path_buf(), password.to_string());
    let out = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        spawn_nightshift(&config, &refs, &password)
            .wait_with_output()
            .unwrap()
    })
    .await
    .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    let json = std::fs::read_to_string(&json)
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap_or_else(|_| panic!("no JSON report: {stdout}{stderr}"));
    RunOutput {
        code: out.status.code(),
        json,
        stdout,
        stderr,
    }
}

/// Runs the shell `command` on a real terminal (a pty from util-linux
/// `script`) and types `lines` into it, each after `pause` (a person types
/// once the program waits: its echo is off by then); keeps the terminal open
/// `linger` longer, then closes its input. Returns what the terminal showed
/// (on standard output) and the command's status. Blocking.
pub fn on_a_terminal(
    command: &str,
    lines: &[&str],
    pause: Duration,
    linger: Duration,
) -> std::process::Output {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", command, "/dev/null"])
        .env_remove("NIGHTSHIFT_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux `script` (Debian: apt-get install bsdutils)");
    let mut stdin = child.stdin.take().unwrap();
    for line in lines {
        #[allow(clippy::disallowed_methods)] // types at human speed
        std::thread::sleep(pause);
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
    }
    #[allow(clippy::disallowed_methods)]
    std::thread::sleep(linger);
    drop(stdin);
    child.wait_with_output().unwrap()
}
