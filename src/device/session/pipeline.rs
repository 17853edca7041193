//! Lines sent together, the way an engineer pastes them: one round trip
//! for many commands, each output split out by the echo that starts it and
//! the prompt that ends it, and each refusal attributed to its own line.
//! Over a 150 ms WAN link every round trip saved is 150 ms per device.

use tokio::time::Instant;

use super::Session;
use crate::device::ansi::plain;
use crate::device::{DeviceError, Stage};

/// Lines per write: a paste that a device's input buffer takes whole.
const CHUNK: usize = 50;

impl Session {
    /// Sends `lines` without waiting for each prompt, in chunks of 50, and
    /// returns each line's output. A line the device refuses is an error
    /// naming it; later lines of the same chunk were still sent (devices
    /// keep reading typed-ahead input), so callers put lines that must not
    /// follow a failure in a later call. A later chunk is sent only when
    /// every line of the ones before was accepted.
    pub async fn send_batch(&mut self, lines: &[String]) -> Result<Vec<String>, DeviceError> {
        self.flush_setup().await?;
        let mut outputs = Vec::with_capacity(lines.len());
        for chunk in lines.chunks(CHUNK) {
            let out = self.send_chunk(chunk, 0).await?;
            if let Some(e) = self.first_refusal(chunk, &out) {
                return Err(e);
            }
            outputs.extend(out);
        }
        Ok(outputs)
    }

    /// Read-only commands sent together (one round trip, with the setup
    /// commands if they are still to go): each command's output, or the
    /// first refusal as an error naming its command.
    pub async fn reads(&mut self, commands: &[&str]) -> Result<Vec<String>, DeviceError> {
        self.each(commands).await?.into_iter().collect()
    }

    /// Commands sent together whose outcomes the caller judges one by one
    /// (read-only commands, or exec commands none of which depends on the
    /// one before). An error for the whole call means the session failed.
    pub async fn each(
        &mut self,
        commands: &[&str],
    ) -> Result<Vec<Result<String, DeviceError>>, DeviceError> {
        let setup: &[&str] = if self.setup_pending {
            self.spec.setup
        } else {
            &[]
        };
        self.setup_pending = false;
        let lines: Vec<String> = setup
            .iter()
            .chain(commands)
            .map(|c| c.to_string())
            .collect();
        let mut outputs = Vec::with_capacity(lines.len());
        for (k, chunk) in lines.chunks(CHUNK).enumerate() {
            // A timeout names the first command asked for, not a setup line.
            let named = setup.len().saturating_sub(k * CHUNK);
            outputs.extend(self.send_chunk(chunk, named).await?);
        }
        let mut results = Vec::with_capacity(commands.len());
        for (k, (line, out)) in lines.iter().zip(outputs).enumerate() {
            let refused = self.refusal(line, &out);
            if k < setup.len() {
                // An old box without `terminal width` still works.
                if refused.is_some() {
                    tracing::debug!(device = %self.name, command = %line, "setup command refused");
                }
                continue;
            }
            results.push(match refused {
                Some(e) => Err(e),
                None => Ok(out),
            });
        }
        Ok(results)
    }

    /// Sends the setup commands if they have not gone yet (before anything
    /// that is not a [`Session::reads`]).
    pub(super) async fn flush_setup(&mut self) -> Result<(), DeviceError> {
        if self.setup_pending {
            self.each(&[]).await?;
        }
        Ok(())
    }

    fn refusal(&self, line: &str, out: &str) -> Option<DeviceError> {
        self.spec
            .failure_in(out)
            .map(|(indicator, message)| DeviceError::CommandRejected {
                device: self.name.clone(),
                command: line.to_string(),
                indicator: indicator.to_string(),
                message,
            })
    }

    fn first_refusal(&self, lines: &[String], outputs: &[String]) -> Option<DeviceError> {
        lines
            .iter()
            .zip(outputs)
            .find_map(|(line, out)| self.refusal(line, out))
    }

    /// How many of `lines` the device has echoed so far, in order.
    fn echoed(&self, text: &str, lines: &[String]) -> usize {
        let mut k = 0;
        for l in text.lines() {
            if k < lines.len() && self.is_echo(l, &lines[k], k == 0) {
                k += 1;
            }
        }
        k
    }

    /// The command's echo after a prompt: the device read it once it had
    /// answered the line before. Only the first line may come without one
    /// (its prompt was read already). A terminal that echoed typed-ahead
    /// lines at once, before their prompts, is never mistaken for having
    /// answered them: the wait times out, naming the line, rather than give
    /// one command's output as another's.
    fn is_echo(&self, line: &str, command: &str, first: bool) -> bool {
        let command = command.trim();
        match line.trim_end().strip_suffix(command) {
            Some(prefix) => (first && prefix.is_empty()) || self.shape.matches(prefix),
            None => false,
        }
    }

    /// One write of `lines`; each line's output, unjudged. A timeout names
    /// `lines[named]` (the last line if there is none).
    async fn send_chunk(
        &mut self,
        lines: &[String],
        named: usize,
    ) -> Result<Vec<String>, DeviceError> {
        if lines.is_empty() {
            return Ok(Vec::new());
        }
        let payload: String = lines.iter().map(|l| format!("{l}\r")).collect();
        self.send_raw(&payload, false).await?;
        // Every line has the command timeout: the wait starts again each
        // time the device echoes the next line (it finished the one before).
        let mut seen: usize = 0;
        let raw = loop {
            let waiting = lines[seen.saturating_sub(1).max(named).min(lines.len() - 1)].clone();
            let deadline = Instant::now() + self.timeout;
            let got = self
                .read_until(deadline, Stage::Command, Some(&waiting), |s| {
                    let echoed = s.echoed(&plain(&s.buf), lines);
                    (echoed == lines.len() && s.ends_in_prompt()) || echoed > seen
                })
                .await?;
            let echoed = self.echoed(&plain(&got), lines);
            self.buf = got;
            if echoed == lines.len() && self.ends_in_prompt() {
                break std::mem::take(&mut self.buf);
            }
            seen = echoed;
        };
        let text = plain(&raw);
        let mut outputs = vec![String::new(); lines.len()];
        let mut k = 0;
        let mut current = None;
        let all: Vec<&str> = text.lines().collect();
        for (n, l) in all.iter().enumerate() {
            if n + 1 == all.len() {
                self.prompt = (*l).to_string();
                break;
            }
            if k < lines.len() && self.is_echo(l, &lines[k], k == 0) {
                current = Some(k);
                k += 1;
            } else if let Some(c) = current {
                outputs[c].push_str(l);
                outputs[c].push('\n');
            }
        }
        Ok(outputs)
    }
}
