//! Runs one interactive shell: the terminal's line discipline, echo, the
//! link's latency (input delivered that long after it arrived, so that
//! pipelined lines pay it once), round trips counted, the ` --More-- ` pager, questions, faults and the
//! modem's timed events. One task per shell, owned by the lab's tracker.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use russh::ChannelId;
use russh::server::Handle;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::acl::Dialect;
use super::cli::{Cli, ConfigMode, Mode, Question, Reply, Then, Words};
use super::config::{ApplyError, apply};
use super::{ios, nxos};

/// Writes to the client, in chunks, the way devices send output in many
/// packets.
pub struct Out {
    pub handle: Handle,
    pub channel: ChannelId,
}

impl Out {
    pub async fn send(&self, s: &str) -> bool {
        for chunk in s.as_bytes().chunks(700) {
            if self
                .handle
                .data(self.channel, chunk.to_vec())
                .await
                .is_err()
            {
                return false;
            }
        }
        true
    }

    pub async fn close(&self) {
        let _ = self.handle.eof(self.channel).await;
        let _ = self.handle.close(self.channel).await;
    }
}

/// How a shell ended: cleanly (`exit`) or not (client gone, dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Clean,
    /// The client went away.
    Abrupt,
    /// Fault injection: the device cuts the connection.
    Dropped,
}

impl Cli {
    fn apply_error(&self, w: &Words<'_>, e: ApplyError) -> Reply {
        match e {
            ApplyError::Invalid(i) => self.invalid(w, i),
            ApplyError::Incomplete => self.incomplete(),
            ApplyError::Ambiguous(i) => self.ambiguous(w, i),
            ApplyError::Message(m) => Reply::text(m),
        }
    }

    /// One line typed at a prompt (not an answer to a question).
    pub fn handle_line(&mut self, line: &str) -> Reply {
        match self.mode.clone() {
            Mode::Config(mode) => self.config_line(line, mode),
            _ => match self.dialect() {
                Dialect::Ios => ios::exec(self, line),
                Dialect::Nxos => nxos::exec(self, line),
            },
        }
    }

    fn config_line(&mut self, line: &str, mode: ConfigMode) -> Reply {
        let n = {
            let mut st = self.dev.lock();
            st.observed.config_lines += 1;
            let word = line.split_whitespace().next().unwrap_or("");
            if matches!(mode, ConfigMode::Acl(..))
                && !word.is_empty()
                && !["exit", "end"].contains(&word.to_ascii_lowercase().as_str())
            {
                st.observed.acl_lines += 1;
            }
            st.observed.config_lines
        };
        let mut reply = self.config_line_inner(line, mode, n);
        if self.dev.faults.drop == Some(n) {
            reply.then = Then::Drop;
        }
        reply
    }

    fn config_line_inner(&mut self, line: &str, mode: ConfigMode, n: u64) -> Reply {
        let w = Words::new(line);
        if self.dev.faults.reject == Some(n) {
            return self.invalid(&w, 0);
        }
        let Some(first) = w.get(0) else {
            return Reply::empty();
        };
        let first = first.to_ascii_lowercase();
        if first == "end" || first == "\x1a" {
            self.mode = Mode::Enable;
            self.config_session = None;
            return Reply::empty();
        }
        if first == "exit" {
            self.mode = match mode {
                ConfigMode::Global => {
                    self.config_session = None;
                    Mode::Enable
                }
                _ => Mode::Config(ConfigMode::Global),
            };
            return Reply::empty();
        }
        if first == "do" {
            let saved = std::mem::replace(&mut self.mode, Mode::Enable);
            let r = self.handle_line(w.rest(1));
            if self.mode == Mode::Enable {
                self.mode = saved;
            }
            return r;
        }
        let dialect = self.dialect();
        if let Some(session) = self.config_session.clone() {
            return self.session_line(&session, &w, mode, dialect);
        }
        let result = self.dev.lock().mutate(|rc| apply(rc, &mode, &w, dialect));
        match result {
            Ok((new_mode, out)) => {
                if let Some(m) = new_mode {
                    self.mode = Mode::Config(m);
                }
                Reply::text(out)
            }
            Err(e) => self.apply_error(&w, e),
        }
    }

    /// NX-OS `configure session`: check on a scratch copy, queue, apply all
    /// at `commit`.
    fn session_line(
        &mut self,
        session: &str,
        w: &Words<'_>,
        mode: ConfigMode,
        dialect: Dialect,
    ) -> Reply {
        let first = w.get(0).unwrap_or("").to_ascii_lowercase();
        let mut st = self.dev.lock();
        let queued = st.config_sessions.get(session).cloned().unwrap_or_default();
        let mut scratch = st.running.clone();
        for (m, l) in &queued {
            let _ = apply(&mut scratch, m, &Words::new(l), dialect);
        }
        match first.as_str() {
            "verify" => return Reply::text("Verification Successful\r\n"),
            "commit" => {
                st.replace(scratch);
                st.config_sessions.remove(session);
                drop(st);
                self.config_session = None;
                self.mode = Mode::Enable;
                return Reply::text("Commit Successful\r\n");
            }
            "abort" => {
                st.config_sessions.remove(session);
                drop(st);
                self.config_session = None;
                self.mode = Mode::Enable;
                return Reply::empty();
            }
            _ => {}
        }
        match apply(&mut scratch, &mode, w, dialect) {
            Ok((new_mode, out)) => {
                st.config_sessions
                    .entry(session.to_string())
                    .or_default()
                    .push((mode, w.line.to_string()));
                drop(st);
                if let Some(m) = new_mode {
                    self.mode = Mode::Config(m);
                }
                Reply::text(out)
            }
            Err(e) => {
                drop(st);
                self.apply_error(w, e)
            }
        }
    }

    pub fn answer(&mut self, q: Question, line: &str) -> Reply {
        // Ctrl-C abandons any question (no enable attempt, no copy).
        if line.contains('\x03') {
            return Reply::empty();
        }
        let yes = matches!(line.trim().to_ascii_lowercase().as_str(), "" | "y" | "yes");
        match q {
            Question::EnableSecret(tries) => {
                if line == self.lab.password && !self.dev.faults.enable {
                    self.mode = Mode::Enable;
                    return Reply::empty();
                }
                self.dev.lock().observed.enable_failures += 1;
                if tries < 2 {
                    Reply::ask("", Question::EnableSecret(tries + 1), "Password: ")
                } else {
                    Reply::text("% Bad secrets\r\n\r\n")
                }
            }
            Question::CopyDestination => {
                let dest = line.trim();
                if dest.is_empty() || dest == "startup-config" {
                    let mut st = self.dev.lock();
                    st.startup = st.running.clone();
                    Reply::text("Building configuration...\r\n[OK]\r\n")
                } else {
                    Reply::text(format!(
                        "%Error opening flash:{dest} (Permission denied)\r\n"
                    ))
                }
            }
            Question::ConfirmReload(minutes) => {
                if yes {
                    let at = Instant::now()
                        + Duration::from_secs(minutes * 60).mul_f64(self.lab.time_scale);
                    self.dev.lock().reload_at = Some(at);
                    self.lab.arm_reload(self.dev.clone(), at);
                }
                Reply::empty()
            }
            Question::ConfirmClearLine(n) => {
                if !yes {
                    return Reply::empty();
                }
                let mut st = self.dev.lock();
                if let Some(l) = st.lines.get_mut(&n) {
                    l.held_by = None;
                    l.stuck = false;
                    l.carrier = false;
                    l.epoch += 1;
                }
                drop(st);
                if self.telnet.as_ref().is_some_and(|t| t.line == n) {
                    self.telnet = None;
                }
                Reply::text(" [OK]\r\n")
            }
            Question::ConfirmDisconnect => {
                if yes {
                    self.release_line();
                }
                Reply::empty()
            }
        }
    }

    /// Ends the reverse-telnet connection; the modem hangs up (DTR drops).
    pub fn release_line(&mut self) {
        if let Some(t) = self.telnet.take() {
            let mut st = self.dev.lock();
            if let Some(l) = st.lines.get_mut(&t.line)
                && l.epoch == t.epoch
            {
                l.held_by = None;
                l.carrier = false;
            }
        }
    }

    /// Has someone cleared our line since we connected?
    fn telnet_cut(&self) -> bool {
        match &self.telnet {
            Some(t) => self
                .dev
                .lock()
                .lines
                .get(&t.line)
                .is_none_or(|l| l.epoch != t.epoch),
            None => false,
        }
    }

    fn sync_carrier(&self) {
        if let Some(t) = &self.telnet {
            let carrier = t.modem.carrier();
            if let Some(l) = self.dev.lock().lines.get_mut(&t.line)
                && l.epoch == t.epoch
            {
                l.carrier = carrier;
            }
        }
    }

    /// The link's latency for the input after `seq` commands.
    fn latency(&self, seq: u64) -> Duration {
        // Deterministic jitter of ±20% around the lab's latency.
        let x = (self
            .id
            .wrapping_mul(6364136223846793005)
            .wrapping_add(seq.wrapping_mul(1442695040888963407))
            >> 33)
            % 41;
        self.lab.latency.mul_f64(0.8 + x as f64 / 100.0)
    }

    pub fn banner(&self) -> String {
        match self.dialect() {
            Dialect::Ios => format!(
                "\r\n# Authorised access only. Lab device {}: changes are logged. #\r\n\r\n",
                self.hostname()
            ),
            // NX-OS sends terminal control sequences of its own.
            Dialect::Nxos => "\x1b[?7h\r\nCisco NX-OS Software\r\nCopyright (c) 2002-2021, Cisco Systems, Inc. All rights reserved.\r\n\
                              Nexus 9000v software and related documentation are provided for lab use.\r\n"
                .to_string(),
        }
    }
}

/// State of the terminal between bytes.
#[derive(Default)]
struct Term {
    buf: String,
    last_cr: bool,
    caret: bool,
    pending: Option<Question>,
    pager: Option<VecDeque<String>>,
    commands: u64,
    /// Typed characters not yet echoed: a device echoes each character as
    /// it reads it (clients such as scrapli wait for the echo before they
    /// press Enter); what one packet brought goes out in one write.
    echo: String,
}

enum Step {
    Continue,
    End(Ending),
}

pub async fn run_shell(
    mut cli: Cli,
    mut input: mpsc::UnboundedReceiver<(Instant, Vec<u8>)>,
    out: Out,
    cancel: CancellationToken,
) -> Ending {
    if cli.dev.faults.hang {
        // Logged in, but the device never shows a prompt.
        while let Some(_bytes) =
            tokio::select! { b = input.recv() => b, _ = cancel.cancelled() => None }
        {}
        return Ending::Abrupt;
    }
    if !out.send(&format!("{}{}", cli.banner(), cli.prompt())).await {
        return Ending::Abrupt;
    }
    let mut term = Term::default();
    // The device has answered everything it was sent: the next input is a
    // new round trip.
    let mut idle = true;
    let ending = loop {
        let deadline = cli
            .telnet
            .as_ref()
            .filter(|t| t.attached)
            .and_then(|t| t.modem.deadline());
        let bytes = tokio::select! {
            _ = cancel.cancelled() => break Ending::Abrupt,
            b = input.recv() => match b { Some(b) => b, None => break Ending::Abrupt },
            _ = sleep_until_opt(deadline) => {
                let text = cli.telnet.as_mut().map(|t| t.modem.on_deadline(Instant::now())).unwrap_or_default();
                cli.sync_carrier();
                if !out.send(&text).await { break Ending::Abrupt }
                continue;
            }
        };
        let (arrived, bytes) = bytes;
        if idle {
            cli.dev.lock().observed.round_trips += 1;
        }
        // The link: what was sent arrives one latency later, in order.
        let due = arrived + cli.latency(term.commands);
        tokio::select! {
            _ = cancel.cancelled() => break Ending::Abrupt,
            _ = tokio::time::sleep_until(due.into()) => {}
        }
        match feed(&mut cli, &mut term, &bytes, &out).await {
            Step::Continue => {}
            Step::End(e) => break e,
        }
        idle = input.is_empty() && term.buf.is_empty();
    };
    match ending {
        Ending::Clean => cli.release_line(),
        Ending::Abrupt | Ending::Dropped => {
            // The session is gone with the line still held: it stays busy
            // until someone runs `clear line`.
            if let Some(t) = &cli.telnet
                && let Some(l) = cli.dev.lock().lines.get_mut(&t.line)
                && l.epoch == t.epoch
            {
                l.stuck = true;
            }
        }
    }
    ending
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

async fn feed(cli: &mut Cli, term: &mut Term, bytes: &[u8], out: &Out) -> Step {
    for &b in bytes {
        if term.last_cr && b == b'\n' {
            term.last_cr = false;
            continue;
        }
        term.last_cr = b == b'\r';
        if let Some(pager) = term.pager.as_mut() {
            let take = match b {
                b' ' => cli.term_length.saturating_sub(1).max(1),
                b'\r' | b'\n' => 1,
                _ => 0,
            };
            let mut text = String::from("\r          \r");
            for _ in 0..take {
                match pager.pop_front() {
                    Some(l) => text.push_str(&l),
                    None => break,
                }
            }
            if take == 0 || pager.is_empty() {
                term.pager = None;
                text.push_str(&cli.prompt());
            } else {
                text.push_str(" --More-- ");
            }
            if !out.send(&text).await {
                return Step::End(Ending::Abrupt);
            }
            continue;
        }
        if cli.telnet.as_ref().is_some_and(|t| t.attached) {
            if let Step::End(e) = feed_telnet(cli, term, b, out).await {
                return Step::End(e);
            }
            continue;
        }
        let line = match b {
            b'\r' | b'\n' => std::mem::take(&mut term.buf),
            0x1a if matches!(cli.mode, Mode::Config(_)) => {
                term.buf.clear();
                "end".to_string()
            }
            0x08 | 0x7f => {
                if term.buf.pop().is_some() && term.echo.pop().is_none() {
                    term.echo.push_str("\x08 \x08");
                }
                continue;
            }
            0x03 if term.pending.is_some() => {
                term.buf.push('\x03');
                continue;
            }
            0x20..=0x7e => {
                term.buf.push(b as char);
                if !matches!(term.pending, Some(Question::EnableSecret(_))) {
                    term.echo.push(b as char);
                }
                continue;
            }
            _ => continue,
        };
        if let Step::End(e) = run_line(cli, term, &line, out).await {
            return Step::End(e);
        }
    }
    if !term.echo.is_empty() && !out.send(&std::mem::take(&mut term.echo)).await {
        return Step::End(Ending::Abrupt);
    }
    Step::Continue
}

async fn feed_telnet(cli: &mut Cli, term: &mut Term, b: u8, out: &Out) -> Step {
    if term.caret && (b == b'x' || b == b'X') {
        term.caret = false;
        if let Some(t) = cli.telnet.as_mut() {
            t.attached = false;
        }
        let text = format!("\r\n{}", cli.prompt());
        return if out.send(&text).await {
            Step::Continue
        } else {
            Step::End(Ending::Abrupt)
        };
    }
    term.caret = b == 0x1e;
    if term.caret {
        return Step::Continue;
    }
    match b {
        b'\r' | b'\n' => {}
        0x20..=0x7e => {
            term.buf.push(b as char);
            return Step::Continue;
        }
        _ => return Step::Continue,
    }
    let line = std::mem::take(&mut term.buf);
    if cli.telnet_cut() {
        cli.telnet = None;
        let text = format!(
            "\r\n[Connection to {} closed by foreign host]\r\n{}",
            cli.lab.host,
            cli.prompt()
        );
        return if out.send(&text).await {
            Step::Continue
        } else {
            Step::End(Ending::Abrupt)
        };
    }
    let Some(t) = cli.telnet.as_mut() else {
        return Step::Continue;
    };
    let echo = if t.modem.echo() {
        format!("{line}\r")
    } else {
        String::new()
    };
    let reply = t.modem.input_line(&line, Instant::now());
    cli.sync_carrier();
    if out.send(&format!("{echo}{reply}")).await {
        Step::Continue
    } else {
        Step::End(Ending::Abrupt)
    }
}

async fn run_line(cli: &mut Cli, term: &mut Term, line: &str, out: &Out) -> Step {
    let secret = matches!(term.pending, Some(Question::EnableSecret(_)));
    // The rest of the echo goes out with the answer: one write per command,
    // as a device that answers quickly does (long output is still split in
    // packets).
    let echo = if secret {
        term.echo.clear();
        "\r\n".to_string()
    } else {
        std::mem::take(&mut term.echo) + "\r\n"
    };
    term.commands += 1;
    // A device that is slow to answer (fault `slow`): every command.
    if let Some(slow) = cli.dev.faults.slow {
        tokio::time::sleep(slow).await;
    }
    let exec_mode = !matches!(cli.mode, Mode::Config(_));
    let reply = match term.pending.take() {
        Some(q) => cli.answer(q, line),
        None => cli.handle_line(line),
    };
    let mut text = echo + &reply.out;
    let lines: Vec<String> = text.split_inclusive("\r\n").map(str::to_string).collect();
    let page = cli.term_length.saturating_sub(1);
    if exec_mode && cli.term_length > 0 && lines.len() > page && page > 0 {
        let mut rest: VecDeque<String> = lines.into();
        text = rest.drain(..page).collect();
        text.push_str(" --More-- ");
        term.pager = Some(rest);
        return if out.send(&text).await {
            Step::Continue
        } else {
            Step::End(Ending::Abrupt)
        };
    }
    match reply.then {
        Then::Prompt => text.push_str(&cli.prompt()),
        Then::Ask(q, prompt) => {
            text.push_str(&prompt);
            term.pending = Some(q);
        }
        Then::Attach => {}
        Then::Close => {
            let _ = out.send(&text).await;
            out.close().await;
            return Step::End(Ending::Clean);
        }
        Then::Drop => {
            let _ = out.send(&text).await;
            return Step::End(Ending::Dropped);
        }
    }
    if out.send(&text).await {
        Step::Continue
    } else {
        Step::End(Ending::Abrupt)
    }
}
