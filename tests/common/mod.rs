//! Test helpers: start the lab in-process and drive it over real SSH.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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
