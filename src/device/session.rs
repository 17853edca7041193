//! The expect layer: an interactive PTY shell, read until the device's own
//! prompt comes back, with the pager, echo, ANSI noise and questions dealt
//! with, and a timeout on every wait.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use regex::Regex;
use russh::client::{Handle, Msg};
use russh::{Channel, ChannelMsg};
use secrecy::SecretString;
use tokio::time::Instant;

use super::ansi::{Inbox, plain};
use super::connect::{Client, Connection, connect};
use super::gate::GatePass;
use super::known_hosts::KnownHosts;
use super::platform::{PAGER, PlatformSpec, SAVE_QUESTIONS, spec};
use super::transcript::Transcript;
use super::{DeviceError, Login, Negotiated, Stage, Target};

mod modes;
mod pipeline;
#[cfg(test)]
mod props;

pub fn display_addr(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Any prompt, before we know the hostname: `name>` or `name#` (+ space).
/// ASCII classes only: Unicode `\w` makes every session's automaton large.
static GENERIC_PROMPT: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^([A-Za-z0-9][A-Za-z0-9_.\-/:@]*)(\([A-Za-z0-9_.\-]+\))?([>#]) ?$"));
/// Questions nightshift never answers unless told to.
static QUESTION: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(\[confirm\]|\[yes/no\]:?|\[y/n\]:?) *$"));
static PASSWORD: LazyLock<Regex> = LazyLock::new(|| regex(r"[Pp]assword: ?$"));
/// The questions saving asks, compiled once.
static SAVE_ANSWERS: LazyLock<Vec<(Regex, &'static str)>> =
    LazyLock::new(|| SAVE_QUESTIONS.iter().map(|(q, a)| (regex(q), *a)).collect());

/// The device's own prompt in any mode: the hostname (IOS shortens it in
/// configuration modes), an optional `(mode)`, then `>` or `#`, maybe a
/// space. Plain string checks, shared by nothing: cheap per session.
#[derive(Debug, Default)]
struct PromptShape {
    host: String,
    /// Hostname characters shown in configuration modes.
    config_chars: usize,
}

impl PromptShape {
    fn matches(&self, line: &str) -> bool {
        if self.host.is_empty() {
            return GENERIC_PROMPT.is_match(line);
        }
        let line = line.strip_suffix(' ').unwrap_or(line);
        let Some(body) = line.strip_suffix(['>', '#']) else {
            return false;
        };
        let (name, mode) = match body.find('(') {
            Some(i) if body.ends_with(')') => (&body[..i], Some(&body[i + 1..body.len() - 1])),
            Some(_) => return false,
            None => (body, None),
        };
        let mode_ok = mode.is_none_or(|m| {
            !m.is_empty()
                && m.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
        let short = match self.host.char_indices().nth(self.config_chars) {
            Some((end, _)) => &self.host[..end],
            None => self.host.as_str(),
        };
        mode_ok
            && (name == self.host
                || (mode.is_some() && name == short && short.len() < self.host.len()))
    }
}

pub struct Session {
    name: String,
    spec: &'static PlatformSpec,
    handle: Handle<Client>,
    channel: Channel<Msg>,
    inbox: Inbox,
    /// Received, decoded, ANSI-stripped, not yet consumed.
    buf: String,
    closed: bool,
    hostname: String,
    shape: PromptShape,
    /// The last prompt seen, e.g. `ios-001(config)#`.
    prompt: String,
    timeout: Duration,
    negotiated: Negotiated,
    learned_host_key: bool,
    enable_secret: Option<SecretString>,
    transcript: Option<Transcript>,
    /// The setup commands wait to go with the next thing sent.
    setup_pending: bool,
}

/// The text after the last newline, as the terminal would show it.
fn last_line(buf: &str) -> String {
    let tail = buf.rsplit('\n').next().unwrap_or(buf);
    plain(tail)
}

/// Compiles a constant pattern of this module or of `platform.rs` (every
/// one is compiled by `constant_patterns_compile_and_match`).
#[allow(clippy::expect_used)]
fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("internal prompt pattern compiles")
}

impl Session {
    /// Connects, logs in, finds the prompt, enters privileged mode where
    /// the device lands in user mode and an enable secret is known, and
    /// runs the platform's setup commands.
    pub async fn open(
        target: &Target,
        login: &Login,
        known: &Arc<KnownHosts>,
    ) -> Result<Session, DeviceError> {
        let mut s = Session::log_in(target, login, known, None).await?;
        s.set_up().await?;
        Ok(s)
    }

    /// [`Session::open`] up to the point where every credential has been
    /// used: logged in and, if needed, enabled. Setup commands not yet run.
    /// With a pass through a login gate, the credentials wait at it (see
    /// [`super::LoginGate`]),
    /// and the outcome of a proving login is given to it.
    pub async fn log_in(
        target: &Target,
        login: &Login,
        known: &Arc<KnownHosts>,
        gate: Option<GatePass>,
    ) -> Result<Session, DeviceError> {
        let mut conn = connect(target, login, known, gate).await?;
        let prover = conn.prover.take();
        let result = Session::start_shell(conn, target, login).await;
        if let Some(prover) = prover {
            match &result {
                // The password was accepted: the others may send it (a
                // missing enable secret fails each of them the same way,
                // without a failed login).
                Ok(_)
                | Err(DeviceError::EnableFailed {
                    needed: true,
                    refused: false,
                    ..
                }) => prover.accepted(),
                Err(e) if e.is_auth_rejected() => prover.rejected(),
                // Proves nothing: the next device waiting tries instead.
                Err(_) => drop(prover),
            }
        }
        result
    }

    /// After authentication: the shell, its prompt, and enable.
    async fn start_shell(
        conn: Connection,
        target: &Target,
        login: &Login,
    ) -> Result<Session, DeviceError> {
        let name = target.name.clone();
        let limit = target.ssh.connect_timeout;
        let channel = tokio::time::timeout(limit, async {
            let ch = conn.handle.channel_open_session().await?;
            ch.request_pty(true, "vt100", 511, 24, 0, 0, &[]).await?;
            ch.request_shell(true).await?;
            Ok::<_, russh::Error>(ch)
        })
        .await
        .map_err(|_| DeviceError::timeout(&name, Stage::Prompt, limit))?
        .map_err(|e| DeviceError::Ssh {
            device: name.clone(),
            stage: Stage::Prompt,
            reason: e.to_string(),
        })?;
        let transcript = match &target.transcript {
            Some(path) => {
                let secrets = [&login.password, &login.enable_secret]
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect();
                Transcript::create(path, secrets).ok()
            }
            None => None,
        };
        let mut s = Session {
            name,
            spec: spec(target.platform),
            handle: conn.handle,
            channel,
            inbox: Inbox::default(),
            buf: String::new(),
            closed: false,
            hostname: String::new(),
            shape: PromptShape::default(),
            prompt: String::new(),
            timeout: target.ssh.command_timeout,
            negotiated: conn.negotiated,
            learned_host_key: conn.learned_host_key,
            enable_secret: login.enable_secret.clone(),
            transcript,
            setup_pending: false,
        };
        let opened = Instant::now();
        s.find_prompt().await?;
        tracing::debug!(device = %s.name, ms = opened.elapsed().as_millis() as u64, "prompt found");
        // Every job needs privileged EXEC: a device at `>` is enabled with
        // the profile's secret, and without one it fails here, naming
        // enable, before any command reaches it.
        if s.spec.has_enable && !s.privileged() {
            let asked = Instant::now();
            s.enable().await?;
            tracing::debug!(device = %s.name, ms = asked.elapsed().as_millis() as u64, "enabled");
        }
        Ok(s)
    }

    /// The platform's setup commands (paging off, wide terminal), sent
    /// together now.
    pub async fn set_up(&mut self) -> Result<(), DeviceError> {
        self.setup_pending = true;
        self.flush_setup().await
    }

    /// The setup commands go with the next [`Session::reads`] or
    /// [`Session::each`], in the same round trip (or before anything else
    /// that is sent).
    pub fn defer_set_up(&mut self) {
        self.setup_pending = true;
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    pub fn negotiated(&self) -> &Negotiated {
        &self.negotiated
    }

    /// Whether this session taught known_hosts a new key (accept-new).
    pub fn learned_host_key(&self) -> bool {
        self.learned_host_key
    }

    /// The last prompt, e.g. `ios-001(config-ext-nacl)#`.
    pub fn prompt(&self) -> &str {
        &self.prompt
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Changes the limit for later commands (a slow save, say).
    pub fn set_command_timeout(&mut self, limit: Duration) {
        self.timeout = limit;
    }

    pub fn privileged(&self) -> bool {
        self.prompt.trim_end().ends_with('#')
    }

    pub fn in_config_mode(&self) -> bool {
        self.prompt.contains("(config")
    }

    async fn send_raw(&mut self, text: &str, secret: bool) -> Result<(), DeviceError> {
        if let Some(t) = &mut self.transcript {
            t.sent(text, secret);
        }
        self.channel
            .data_bytes(text.as_bytes().to_vec())
            .await
            .map_err(|_| DeviceError::Closed {
                device: self.name.clone(),
                stage: Stage::Command,
            })
    }

    /// Reads until `done` says how much of the buffer to take; answers the
    /// pager on the way.
    async fn read_until(
        &mut self,
        deadline: Instant,
        stage: Stage,
        command: Option<&str>,
        done: impl Fn(&Self) -> bool,
    ) -> Result<String, DeviceError> {
        loop {
            if self.buf.ends_with(PAGER) || self.buf.trim_end().ends_with("--More--") {
                let cut = self.buf.rfind("--More--").unwrap_or(self.buf.len());
                self.buf.truncate(cut.saturating_sub(1));
                self.send_raw(" ", false).await?;
                continue;
            }
            if done(self) {
                return Ok(std::mem::take(&mut self.buf));
            }
            if self.closed {
                return Err(DeviceError::Closed {
                    device: self.name.clone(),
                    stage,
                });
            }
            match tokio::time::timeout_at(deadline, self.channel.wait()).await {
                Err(_) => {
                    return Err(DeviceError::Timeout {
                        device: self.name.clone(),
                        stage,
                        after: self.timeout,
                        command: command.map(str::to_string),
                    });
                }
                Ok(Some(ChannelMsg::Data { data })) => {
                    let text = self.inbox.push(&data);
                    if let Some(t) = &mut self.transcript {
                        t.received(&text);
                    }
                    self.buf.push_str(&text);
                }
                // Servers may close without EOF: all three mean the end.
                Ok(Some(ChannelMsg::Eof | ChannelMsg::Close) | None) => self.closed = true,
                Ok(Some(_)) => {}
            }
        }
    }

    fn ends_in_prompt(&self) -> bool {
        self.shape.matches(&last_line(&self.buf))
    }

    /// Finds the prompt even behind a banner that contains `#`: a prompt is
    /// only believed when pressing Enter shows the same line again.
    async fn find_prompt(&mut self) -> Result<(), DeviceError> {
        let deadline = Instant::now() + self.timeout;
        let first = self
            .read_until(deadline, Stage::Prompt, None, |s| s.ends_in_prompt())
            .await?;
        let mut candidate = last_line(&first);
        for _ in 0..5 {
            self.send_raw("\r", false).await?;
            let deadline = Instant::now() + self.timeout;
            let again = self
                .read_until(deadline, Stage::Prompt, None, |s| s.ends_in_prompt())
                .await?;
            let line = last_line(&again);
            if line == candidate {
                break;
            }
            candidate = line;
        }
        let caps = GENERIC_PROMPT
            .captures(&candidate)
            .map(|c| c.get(1).map_or("", |m| m.as_str()).to_string())
            .unwrap_or_default();
        self.set_hostname(&caps);
        self.prompt = candidate;
        Ok(())
    }

    fn set_hostname(&mut self, host: &str) {
        self.hostname = host.to_string();
        self.shape = PromptShape {
            host: host.to_string(),
            config_chars: self.spec.config_prompt_host_chars,
        };
    }

    /// Sends text as typed (nothing added): for dialogues without a prompt,
    /// such as a modem behind reverse telnet.
    pub async fn send(&mut self, text: &str) -> Result<(), DeviceError> {
        self.flush_setup().await?;
        self.send_raw(text, false).await
    }

    /// Reads until one of `patterns` matches the text received so far.
    /// Returns which pattern matched and the text up to the end of the
    /// match; what follows stays for the next read.
    pub async fn expect(
        &mut self,
        patterns: &[Regex],
        limit: Duration,
        what: &str,
    ) -> Result<(usize, String), DeviceError> {
        let deadline = Instant::now() + limit;
        let earliest = |text: &str| {
            patterns
                .iter()
                .enumerate()
                .filter_map(|(i, p)| p.find(text).map(|m| (m.end(), i)))
                .min()
        };
        self.read_until(deadline, Stage::Command, Some(what), |s| {
            earliest(&plain(&s.buf)).is_some()
        })
        .await
        .map_err(|e| match e {
            DeviceError::Timeout {
                device,
                stage,
                command,
                ..
            } => DeviceError::Timeout {
                device,
                stage,
                after: limit,
                command,
            },
            other => other,
        })
        .map(|raw| {
            let text = plain(&raw);
            let (end, i) = earliest(&text).unwrap_or((text.len(), 0));
            self.buf = text[end..].to_string();
            (i, text[..end].to_string())
        })
    }

    /// Waits for the device's own prompt (after a reverse-telnet session).
    pub async fn expect_prompt(&mut self, limit: Duration) -> Result<String, DeviceError> {
        let deadline = Instant::now() + limit;
        let out = self
            .read_until(deadline, Stage::Command, None, |s| s.ends_in_prompt())
            .await?;
        self.prompt = last_line(&out);
        Ok(plain(&out))
    }

    /// Runs one command and returns its output (without echo and prompt).
    /// Output with a failure indicator is an error naming it.
    pub async fn command(&mut self, command: &str) -> Result<String, DeviceError> {
        self.exchange(command, &[]).await
    }

    /// Sends `command`, answering only the listed questions (patterns
    /// compiled by the caller, once).
    pub async fn exchange(
        &mut self,
        command: &str,
        answers: &[(Regex, &str)],
    ) -> Result<String, DeviceError> {
        self.flush_setup().await?;
        let sent = Instant::now();
        self.send_raw(&format!("{command}\r"), false).await?;
        let deadline = Instant::now() + self.timeout;
        let mut collected = String::new();
        loop {
            let chunk = self
                .read_until(deadline, Stage::Command, Some(command), |s| {
                    let last = last_line(&s.buf);
                    s.shape.matches(&last)
                        || QUESTION.is_match(&last)
                        || answers.iter().any(|(q, _)| q.is_match(&last))
                })
                .await?;
            collected.push_str(&chunk);
            let last = last_line(&collected);
            if self.shape.matches(&last) {
                self.prompt = last;
                break;
            }
            match answers.iter().find(|(q, _)| q.is_match(&last)) {
                Some((_, answer)) => {
                    collected.push('\n');
                    self.send_raw(&format!("{answer}\r"), false).await?;
                }
                None => {
                    // Refuse the question (Ctrl-C) and wait for the prompt.
                    self.send_raw("\x03", false).await?;
                    let until = Instant::now() + self.timeout;
                    let _ = self
                        .read_until(until, Stage::Command, Some(command), |s| s.ends_in_prompt())
                        .await;
                    return Err(DeviceError::UnexpectedQuestion {
                        device: self.name.clone(),
                        command: command.to_string(),
                        question: last.trim().to_string(),
                    });
                }
            }
        }
        tracing::trace!(device = %self.name, ms = sent.elapsed().as_millis() as u64, "answered");
        let text = plain(&collected);
        let mut lines: Vec<&str> = text.lines().collect();
        lines.pop(); // the prompt
        if lines
            .first()
            .is_some_and(|l| l.trim_end().ends_with(command.trim()))
        {
            lines.remove(0); // the echo
        }
        let output = lines.join("\n");
        if let Some((indicator, message)) = self.spec.failure_in(&output) {
            return Err(DeviceError::CommandRejected {
                device: self.name.clone(),
                command: command.to_string(),
                indicator: indicator.to_string(),
                message,
            });
        }
        Ok(output)
    }

    /// Logs out (leaving configuration mode first) and closes the connection.
    pub async fn close(mut self) {
        if self.in_config_mode() {
            let exit = self.spec.config_exit;
            let _ = self.command(exit).await;
        }
        if self.send_raw("exit\r", false).await.is_ok() {
            let deadline = Instant::now() + Duration::from_secs(2);
            let _ = self
                .read_until(deadline, Stage::Command, None, |s| s.closed)
                .await;
        }
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
        tracing::debug!(device = %self.name, "logged out");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_patterns_compile_and_match() {
        assert!(
            GENERIC_PROMPT.is_match("ios-001>")
                && GENERIC_PROMPT.is_match("nxos-001# ")
                && GENERIC_PROMPT.is_match("r1(config-if)#")
        );
        assert!(!GENERIC_PROMPT.is_match("# Authorised access only #"));
        assert!(
            QUESTION.is_match("Proceed with reload? [confirm]") && PASSWORD.is_match("Password: ")
        );
        assert_eq!(SAVE_ANSWERS.len(), SAVE_QUESTIONS.len());
        assert!(
            SAVE_ANSWERS[0]
                .0
                .is_match("Destination filename [startup-config]? ")
        );
    }

    #[test]
    fn prompt_shape_knows_the_host_and_its_short_form() {
        let shape = PromptShape {
            host: "ios-001-distribution-switch-a".into(),
            config_chars: 20,
        };
        assert!(shape.matches("ios-001-distribution-switch-a#"));
        assert!(shape.matches("ios-001-distribution(config-ext-nacl)#"));
        assert!(
            !shape.matches("ios-001-distribution#"),
            "the short form only appears in configuration modes"
        );
        assert!(!shape.matches("other-router#") && !shape.matches("ios-001-distribution-switch-a"));
        let nx = PromptShape {
            host: "nxos-001".into(),
            config_chars: usize::MAX,
        };
        assert!(nx.matches("nxos-001(config-s-acl)# ") && nx.matches("nxos-001# "));
    }
}
