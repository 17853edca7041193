//! Jump hosts (bastions), as OpenSSH's `ProxyJump`: a device behind one is
//! reached over a forwarded channel (`direct-tcpip`) of an SSH connection to
//! the bastion, and its own SSH session runs inside that channel, end to
//! end, with the device's host key checked as always.
//!
//! Each bastion has a small pool of connections for the run: one is opened
//! first, alone (a wrong bastion credential costs one failed login on the
//! bastion, not one per device); more are opened as the run's concurrency
//! needs them, [`CHANNELS_PER_CONNECTION`] forwarded channels each. A
//! bastion that cannot be reached, whose host key is unknown or changed,
//! or that refuses the login fails every device behind it for the rest of
//! the run, each naming the bastion, and no device behind it is tried.
//! A bastion can itself sit behind another (`jump` on the jump host).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use russh::client::{Handle, Msg};
use russh::{ChannelStream, Error as SshError};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::connect::{Client, connect};
use super::{KnownHosts, KnownHostsError, Login, Target, UserKey};
use crate::config::{Config, JumpAuth, JumpHost};
use crate::platform::Platform;

/// Forwarded channels one bastion connection carries at once before the
/// pool opens another.
pub const CHANNELS_PER_CONNECTION: usize = 25;
/// Connections to one bastion at most, whatever the concurrency.
pub const MAX_CONNECTIONS: usize = 40;

struct Conn {
    handle: Handle<Client>,
    open: AtomicUsize,
}

#[derive(Default)]
struct PoolState {
    conns: Vec<Arc<Conn>>,
    /// Why the bastion cannot be used in this run: every device behind it
    /// fails with this, and nothing more is tried.
    failed: Option<String>,
}

/// One bastion's connections for a run.
pub struct JumpPool {
    name: String,
    target: Target,
    login: Result<Login, String>,
    known: Arc<KnownHosts>,
    state: tokio::sync::Mutex<PoolState>,
    logins: AtomicUsize,
}

impl std::fmt::Debug for JumpPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JumpPool")
            .field("name", &self.name)
            .finish()
    }
}

impl JumpPool {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Logins made to this bastion so far in the run.
    pub fn logins(&self) -> usize {
        self.logins.load(Ordering::Relaxed)
    }

    /// A stream to `host:port` through the bastion. `Err` says why, for
    /// the device's report. Boxed: opening a bastion connection connects,
    /// and a connect may come through here.
    pub fn open_stream<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = Result<JumpStream, String>> + Send + 'a>> {
        Box::pin(self.open_stream_inner(host, port))
    }

    async fn open_stream_inner(&self, host: &str, port: u16) -> Result<JumpStream, String> {
        let conn = {
            let mut st = self.state.lock().await;
            if let Some(why) = &st.failed {
                return Err(why.clone());
            }
            st.conns.retain(|c| !c.handle.is_closed());
            let least = st
                .conns
                .iter()
                .min_by_key(|c| c.open.load(Ordering::Relaxed))
                .cloned();
            let conn = match least {
                Some(c)
                    if c.open.load(Ordering::Relaxed) < CHANNELS_PER_CONNECTION
                        || st.conns.len() >= MAX_CONNECTIONS =>
                {
                    c
                }
                _ => match self.connect().await {
                    Ok(c) => {
                        st.conns.push(c.clone());
                        c
                    }
                    // The bastion already let us in: a connection more
                    // that fails (say, MaxStartups) only means sharing.
                    Err(e) => match least {
                        Some(c) => {
                            tracing::debug!(jump = %self.name, error = %e, "another bastion connection failed; sharing one");
                            c
                        }
                        None => {
                            st.failed = Some(e.clone());
                            return Err(e);
                        }
                    },
                },
            };
            conn.open.fetch_add(1, Ordering::Relaxed);
            conn
        };
        let guard = OpenGuard(conn.clone());
        let limit = self.target.ssh.connect_timeout;
        let channel = tokio::time::timeout(
            limit,
            conn.handle
                .channel_open_direct_tcpip(host, u32::from(port), "127.0.0.1", 0),
        )
        .await
        .map_err(|_| {
            format!(
                "the jump host {} did not open a channel to {host}:{port} within {}",
                self.name,
                humantime::format_duration(limit)
            )
        })?
        .map_err(|e| forward_error(&self.name, host, port, &e))?;
        Ok(JumpStream {
            inner: channel.into_stream(),
            _guard: guard,
        })
    }

    /// One login to the bastion, alone (a credential profile whose canary
    /// is this jump host is proved so); the connection is closed again.
    pub async fn check(&self) -> Result<super::Negotiated, super::DeviceError> {
        let login = self
            .login
            .clone()
            .map_err(|reason| super::DeviceError::Jump {
                device: self.name.clone(),
                jump: self.name.clone(),
                reason,
            })?;
        self.logins.fetch_add(1, Ordering::Relaxed);
        let conn = connect(&self.target, &login, &self.known, None).await?;
        Ok(conn.negotiated)
    }

    /// One more connection to the bastion: TCP (or a channel of the hop
    /// before), key exchange and host-key check, login.
    async fn connect(&self) -> Result<Arc<Conn>, String> {
        let login = self.login.clone()?;
        self.logins.fetch_add(1, Ordering::Relaxed);
        let conn = connect(&self.target, &login, &self.known, None)
            .await
            .map_err(|e| format!("jump host {e}"))?;
        tracing::debug!(jump = %self.name, "connected to the jump host");
        Ok(Arc::new(Conn {
            handle: conn.handle,
            open: AtomicUsize::new(0),
        }))
    }
}

fn forward_error(jump: &str, host: &str, port: u16, e: &SshError) -> String {
    match e {
        SshError::ChannelOpenFailure(reason) => format!(
            "the jump host {jump} refused to forward to {host}:{port} ({reason:?}): the device is down or unreachable from the bastion, or the bastion forbids forwarding (AllowTcpForwarding, PermitOpen)"
        ),
        other => format!("the jump host {jump} could not forward to {host}:{port}: {other}"),
    }
}

/// Counts a forwarded channel as open until its stream is dropped.
struct OpenGuard(Arc<Conn>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A forwarded channel as a byte stream, for the device's SSH session.
pub struct JumpStream {
    inner: ChannelStream<Msg>,
    _guard: OpenGuard,
}

impl AsyncRead for JumpStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for JumpStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The jump hosts of a run, each with its pool, chained as configured.
#[derive(Debug, Default)]
pub struct Jumps {
    pools: HashMap<String, Arc<JumpPool>>,
}

impl Jumps {
    /// Pools for every jump host of `config`. `logins`: the credential
    /// profiles' logins this run has (a bastion that logs in with a
    /// profile not among them fails its devices, saying so).
    pub fn new(
        config: &Config,
        logins: &HashMap<String, Login>,
        known: &mut HashMap<std::path::PathBuf, Arc<KnownHosts>>,
    ) -> Result<Jumps, KnownHostsError> {
        let mut jumps = Jumps::default();
        for j in &config.jump_hosts {
            jumps.build(config, j, logins, known)?;
        }
        Ok(jumps)
    }

    fn build(
        &mut self,
        config: &Config,
        j: &JumpHost,
        logins: &HashMap<String, Login>,
        known: &mut HashMap<std::path::PathBuf, Arc<KnownHosts>>,
    ) -> Result<Arc<JumpPool>, KnownHostsError> {
        if let Some(p) = self.pools.get(&j.name) {
            return Ok(p.clone());
        }
        // The config refuses loops, so this ends.
        let via = match j.via.as_deref().and_then(|v| config.jump_host(v)) {
            Some(v) => Some(self.build(config, v, logins, known)?),
            None => None,
        };
        let kh = match known.get(&j.ssh.known_hosts) {
            Some(k) => k.clone(),
            None => {
                let k = Arc::new(KnownHosts::load(&j.ssh.known_hosts)?);
                known.insert(j.ssh.known_hosts.clone(), k.clone());
                k
            }
        };
        let login = match &j.auth {
            JumpAuth::Key { username, file } => russh::keys::load_secret_key(file, None)
                .map(|key| Login {
                    username: username.clone(),
                    password: None,
                    enable_secret: None,
                    key: Some(UserKey {
                        key: Arc::new(key),
                        rsa_sha1: false,
                    }),
                })
                .map_err(|e| {
                    format!(
                        "jump host {}: cannot read its key file {}: {e}",
                        j.name,
                        file.display()
                    )
                }),
            JumpAuth::Profile(p) => logins.get(p).cloned().ok_or_else(|| {
                format!(
                    "jump host {}: the credentials of profile {p} are not available to this run; store them with `nightshift credentials set --profile {p}`",
                    j.name
                )
            }),
        };
        let pool = Arc::new(JumpPool {
            name: j.name.clone(),
            target: Target {
                name: j.name.clone(),
                host: j.host.clone(),
                port: j.port,
                platform: Platform::CiscoIos,
                ssh: j.ssh.clone(),
                transcript: None,
                jump: via,
            },
            login,
            known: kh,
            state: tokio::sync::Mutex::new(PoolState::default()),
            logins: AtomicUsize::new(0),
        });
        self.pools.insert(j.name.clone(), pool.clone());
        Ok(pool)
    }

    pub fn get(&self, name: &str) -> Option<Arc<JumpPool>> {
        self.pools.get(name).cloned()
    }
}
