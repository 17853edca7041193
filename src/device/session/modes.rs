//! Privileged and configuration modes of a [`Session`]: enable with the
//! secret (never twice when it is refused), configure (enter, send each
//! line, leave, also when a line is refused), save.

use secrecy::ExposeSecret;
use tokio::time::Instant;

use super::{PASSWORD, SAVE_ANSWERS, Session, last_line};
use crate::device::ansi::plain;
use crate::device::{DeviceError, Stage};

impl Session {
    /// Saves the running config, answering the questions saving asks.
    pub async fn save(&mut self) -> Result<String, DeviceError> {
        let save = self.spec.save;
        self.exchange(save, &SAVE_ANSWERS).await
    }

    /// Enters privileged mode with the enable secret.
    pub async fn enable(&mut self) -> Result<(), DeviceError> {
        if self.privileged() {
            return Ok(());
        }
        let Some(secret) = self.enable_secret.clone() else {
            return Err(DeviceError::EnableFailed {
                device: self.name.clone(),
                message: "the device lands in user EXEC (`>`) and no enable secret is stored for this profile".into(),
                refused: false,
                needed: true,
            });
        };
        self.send_raw("enable\r", false).await?;
        for attempt in 0..3 {
            let deadline = Instant::now() + self.timeout;
            let out = self
                .read_until(deadline, Stage::Enable, Some("enable"), |s| {
                    let last = last_line(&s.buf);
                    s.shape.matches(&last) || PASSWORD.is_match(&last)
                })
                .await?;
            let last = last_line(&out);
            if self.shape.matches(&last) {
                self.prompt = last;
                return if self.privileged() {
                    Ok(())
                } else {
                    Err(DeviceError::EnableFailed {
                        device: self.name.clone(),
                        message: plain(&out)
                            .lines()
                            .rev()
                            .nth(1)
                            .unwrap_or("refused")
                            .trim()
                            .to_string(),
                        // Back at the user prompt after our secret (as
                        // "% Access denied"): the secret was refused. Before
                        // it ("% No password set"): the device's doing.
                        refused: attempt > 0,
                        needed: false,
                    })
                };
            }
            if attempt == 0 {
                self.send_raw(&format!("{}\r", secret.expose_secret()), true)
                    .await?;
            } else {
                // Wrong secret: give up without trying it again.
                self.send_raw("\x03\r", false).await?;
                let deadline = Instant::now() + self.timeout;
                let _ = self
                    .read_until(deadline, Stage::Enable, None, |s| s.ends_in_prompt())
                    .await;
                return Err(DeviceError::EnableFailed {
                    device: self.name.clone(),
                    message: "the enable secret was refused".into(),
                    refused: true,
                    needed: false,
                });
            }
        }
        Err(DeviceError::EnableFailed {
            device: self.name.clone(),
            message: "no privileged prompt".into(),
            refused: false,
            needed: false,
        })
    }

    /// Enters configuration mode, sends each line and leaves again. A line
    /// the device refuses stops the rest; configuration mode is left before
    /// the error is returned.
    pub async fn configure(&mut self, lines: &[String]) -> Result<(), DeviceError> {
        self.enable().await?;
        let enter = self.spec.config_enter;
        self.command(enter).await?;
        for line in lines {
            if let Err(e) = self.command(line).await {
                if matches!(e, DeviceError::CommandRejected { .. }) {
                    let exit = self.spec.config_exit;
                    let _ = self.command(exit).await;
                }
                return Err(e);
            }
        }
        let exit = self.spec.config_exit;
        self.command(exit).await?;
        Ok(())
    }
}
