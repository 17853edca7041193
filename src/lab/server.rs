//! The SSH side of the lab: one listener per device on loopback, russh
//! sessions, authentication (password, keyboard-interactive, public key)
//! with fault injection and fleet-wide lockout, and a shell per channel.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use russh::keys::PublicKey;
use russh::server::{Auth, Msg, Response, Session};
use russh::{
    Channel, ChannelId, Disconnect, MethodKind, MethodSet, Preferred, SshId, cipher, kex, mac,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::cli::Mode;
use super::term::{Ending, Out, run_shell};
use super::{LabDevice, LabShared};
use crate::platform::Platform;

/// The algorithms an old IOS box offers (fault `legacy`).
pub fn legacy_preferred() -> Preferred {
    Preferred {
        kex: Cow::Owned(vec![kex::DH_G14_SHA1, kex::DH_G1_SHA1]),
        key: Cow::Owned(vec![russh::keys::Algorithm::Rsa { hash: None }]),
        cipher: Cow::Owned(vec![
            cipher::AES_128_CBC,
            cipher::AES_256_CBC,
            cipher::TRIPLE_DES_CBC,
        ]),
        mac: Cow::Owned(vec![mac::HMAC_SHA1]),
        ..Preferred::default()
    }
}

/// What current IOS-XE and NX-OS offer: no post-quantum hybrids (which
/// also keeps the lab's cost per login like a real device's).
pub fn device_preferred() -> Preferred {
    Preferred {
        kex: Cow::Owned(vec![
            kex::CURVE25519,
            kex::ECDH_SHA2_NISTP256,
            kex::DH_G14_SHA256,
            kex::DH_G14_SHA1,
            kex::EXTENSION_SUPPORT_AS_SERVER,
        ]),
        ..Preferred::default()
    }
}

pub fn server_config(dev: &LabDevice, key: russh::keys::PrivateKey) -> russh::server::Config {
    let id = match (dev.platform, dev.faults.legacy) {
        (Platform::CiscoIos, true) => "SSH-1.99-Cisco-1.25",
        (Platform::CiscoIos, false) => "SSH-2.0-Cisco-1.25",
        (Platform::CiscoNxos, _) => "SSH-2.0-OpenSSH_8.3",
    };
    let mut methods = MethodSet::empty();
    if !dev.faults.kbd_only {
        methods.push(MethodKind::Password);
    }
    methods.push(MethodKind::KeyboardInteractive);
    methods.push(MethodKind::PublicKey);
    russh::server::Config {
        server_id: SshId::Standard(Cow::Borrowed(id)),
        methods,
        auth_rejection_time: Duration::from_millis(20),
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![key],
        preferred: if dev.faults.legacy {
            legacy_preferred()
        } else {
            device_preferred()
        },
        inactivity_timeout: Some(Duration::from_secs(900)),
        nodelay: true,
        ..Default::default()
    }
}

/// Accepts connections for one device until the lab shuts down.
pub async fn serve(
    dev: Arc<LabDevice>,
    listener: TcpListener,
    config: Arc<russh::server::Config>,
    lab: Arc<LabShared>,
) {
    loop {
        let accepted = tokio::select! {
            _ = lab.cancel.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((sock, peer)) => {
                // The vty lines' access-class: a refused login is closed
                // before the SSH banner.
                let local = sock.local_addr().map_or(peer.ip(), |a| a.ip());
                {
                    let mut st = dev.lock();
                    if !st.running.vty_admits(peer.ip(), local) {
                        st.observed.vty_refused += 1;
                        drop(st);
                        drop(sock);
                        continue;
                    }
                }
                let _ = sock.set_nodelay(true);
                lab.tracker
                    .spawn(connection(dev.clone(), sock, config.clone(), lab.clone()));
            }
            Err(e) => {
                // Out of descriptors or similar: back off instead of spinning.
                tracing::warn!(device = %dev.name, error = %e, "lab accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

async fn connection(
    dev: Arc<LabDevice>,
    sock: TcpStream,
    config: Arc<russh::server::Config>,
    lab: Arc<LabShared>,
) {
    let handler = DeviceHandler {
        dev,
        lab: lab.clone(),
        input: None,
        counted: false,
    };
    let Ok(session) = russh::server::run_stream(config, sock, handler).await else {
        return;
    };
    let handle = session.handle();
    tokio::select! {
        _ = lab.cancel.cancelled() => {
            let _ = handle.disconnect(Disconnect::ByApplication, "lab shutting down".into(), String::new()).await;
        }
        _ = session => {}
    }
}

struct DeviceHandler {
    dev: Arc<LabDevice>,
    lab: Arc<LabShared>,
    /// Input as it arrived, with when: the shell delivers it after the
    /// link's latency.
    input: Option<mpsc::UnboundedSender<(Instant, Vec<u8>)>>,
    /// Counted as a logged-in session (for concurrency and logout times).
    counted: bool,
}

impl DeviceHandler {
    /// Checks a password the way a TACACS-backed device would.
    fn check_password(&mut self, user: &str, password: &str) -> Auth {
        let locked = self
            .lab
            .lockout_after
            .is_some_and(|n| self.lab.auth_failures.load(Ordering::SeqCst) >= n);
        let ok =
            !locked && !self.dev.faults.auth && user == "admin" && password == self.lab.password;
        if ok {
            Auth::Accept
        } else {
            self.lab.auth_failures.fetch_add(1, Ordering::SeqCst);
            self.dev.lock().observed.auth_failures += 1;
            Auth::Reject {
                proceed_with_methods: None,
                partial_success: false,
            }
        }
    }
}

impl Drop for DeviceHandler {
    fn drop(&mut self) {
        if self.counted {
            self.lab.sessions.fetch_sub(1, Ordering::SeqCst);
            self.dev.lock().observed.last_logout = Some(Instant::now());
        }
    }
}

impl russh::server::Handler for DeviceHandler {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        if self.dev.faults.slow_auth {
            // An AAA server that never answers: wait until the lab stops.
            self.lab.cancel.cancelled().await;
            return Ok(Auth::reject());
        }
        if self.dev.faults.kbd_only {
            return Ok(Auth::UnsupportedMethod);
        }
        Ok(self.check_password(user, password))
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        response: Option<Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        let Some(mut response) = response else {
            return Ok(Auth::Partial {
                name: Cow::Borrowed(""),
                instructions: Cow::Borrowed(""),
                prompts: Cow::Owned(vec![(Cow::Borrowed("Password: "), false)]),
            });
        };
        let answer = response
            .next()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        Ok(self.check_password(user, &answer))
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let key: &PublicKey = key.public_key;
        let known = self
            .lab
            .authorized_keys
            .iter()
            .any(|k| k.key_data() == key.key_data());
        Ok(if user == "admin" && known && !self.dev.faults.auth {
            Auth::Accept
        } else {
            Auth::Reject {
                proceed_with_methods: None,
                partial_success: false,
            }
        })
    }

    async fn auth_succeeded(&mut self, _session: &mut Session) -> Result<(), Self::Error> {
        let now = Instant::now();
        {
            let mut st = self.dev.lock();
            st.observed.logins += 1;
            st.observed.first_login.get_or_insert(now);
        }
        let n = self.lab.sessions.fetch_add(1, Ordering::SeqCst) + 1;
        self.lab.max_sessions.fetch_max(n, Ordering::SeqCst);
        self.counted = true;
        Ok(())
    }

    async fn channel_open_session(
        &mut self,
        _channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.input.is_some() {
            // One shell per connection, as on IOS.
            session.channel_failure(channel)?;
            return Ok(());
        }
        let (tx, rx) = mpsc::unbounded_channel();
        self.input = Some(tx);
        let cli = self.lab.new_cli(&self.dev);
        let out = Out {
            handle: session.handle(),
            channel,
        };
        let cancel = self.lab.cancel.clone();
        let shutdown = self.lab.cancel.clone();
        let lab = self.lab.clone();
        lab.shells.fetch_add(1, Ordering::SeqCst);
        self.lab.tracker.spawn(async move {
            let handle = out.handle.clone();
            let ending = run_shell(cli, rx, out, cancel).await;
            lab.shells.fetch_sub(1, Ordering::SeqCst);
            if ending == Ending::Clean {
                // `exit`: the channel was closed after the last output.
                // OpenSSH drops output it has not written yet when a
                // disconnect arrives in the same read, so the connection
                // goes a moment later, as a device tears down its vty.
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
            if matches!(ending, Ending::Clean | Ending::Dropped) {
                let _ = handle
                    .disconnect(Disconnect::ByApplication, String::new(), String::new())
                    .await;
            }
        });
        session.channel_success(channel)?;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // IOS runs one exec command per connection and then closes it.
        let command = String::from_utf8_lossy(data).into_owned();
        let mut cli = self.lab.new_cli(&self.dev);
        if self.dev.platform == Platform::CiscoNxos {
            cli.mode = Mode::Enable;
        }
        let out = Out {
            handle: session.handle(),
            channel,
        };
        let latency = self.lab.latency;
        session.channel_success(channel)?;
        self.lab.tracker.spawn(async move {
            tokio::time::sleep(latency).await;
            let reply = cli.handle_line(command.trim());
            let _ = out.send(&reply.out).await;
            let _ = out.handle.exit_status_request(channel, 0).await;
            out.close().await;
            let _ = out
                .handle
                .disconnect(Disconnect::ByApplication, String::new(), String::new())
                .await;
        });
        Ok(())
    }

    async fn data(
        &mut self,
        _channel: ChannelId,
        data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(tx) = &self.input {
            let _ = tx.send((Instant::now(), data.to_vec()));
        }
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        _channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.input = None;
        Ok(())
    }

    async fn channel_close(
        &mut self,
        _channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.input = None;
        Ok(())
    }
}
