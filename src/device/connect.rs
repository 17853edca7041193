//! TCP connect, SSH handshake with the device's algorithm profile, host-key
//! verification and login — each bounded by a timeout.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle, KeyboardInteractiveAuthResponse};
use russh::keys::{Algorithm, HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{MethodKind, Preferred, cipher, kex, mac};
use secrecy::ExposeSecret;

use super::gate::{GatePass, LoginGate, Prover};
use super::known_hosts::{KnownHosts, Verdict, fingerprint};
use super::{DeviceError, Login, Negotiated, Stage, Target};
use crate::config::{AlgorithmProfile, HostKeyPolicy};

/// The channel window and packet size a session offers: CLI output never
/// needs megabytes in flight, and small buffers keep thousands of sessions
/// cheap (russh locks its buffers in memory).
const WINDOW: u32 = 64 * 1024;

pub fn modern_algorithms() -> Preferred {
    Preferred::default()
}

/// russh's defaults plus what old IOS needs: SHA-1 key exchange, ssh-rsa
/// host keys, CBC ciphers and hmac-sha1. Modern ones stay preferred.
pub fn legacy_algorithms() -> Preferred {
    Preferred {
        kex: Cow::Owned(vec![
            kex::CURVE25519,
            kex::DH_G14_SHA256,
            kex::DH_G14_SHA1,
            kex::DH_GEX_SHA1,
            kex::DH_G1_SHA1,
            kex::EXTENSION_SUPPORT_AS_CLIENT,
        ]),
        key: Cow::Owned(vec![
            Algorithm::Ed25519,
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha256),
            },
            Algorithm::Rsa { hash: None },
        ]),
        cipher: Cow::Owned(vec![
            cipher::AES_256_CTR,
            cipher::AES_128_CTR,
            cipher::AES_256_CBC,
            cipher::AES_128_CBC,
            cipher::TRIPLE_DES_CBC,
        ]),
        mac: Cow::Owned(vec![mac::HMAC_SHA256, mac::HMAC_SHA1]),
        ..Preferred::default()
    }
}

/// The group sizes asked for in a Diffie-Hellman group exchange (old IOS
/// often offers only `diffie-hellman-group-exchange-sha1`): OpenSSH's
/// bounds, 2048 to 8192 bits, and the size OpenSSH prefers for a 128-bit
/// cipher, 3072 (NIST's 128-bit strength). russh's default prefers 8192
/// bits, and with its full-size exponent (kept as published) a handshake
/// then cost ~1 s of CPU; with 3072, ~55 ms for the whole session, within
/// 1.4× of OpenSSH's client on the same server (`cargo bench --bench
/// handshake`, BENCHMARKS.md).
pub fn legacy_gex() -> client::GexParams {
    client::GexParams::new(2048, 3072, 8192).unwrap_or_default()
}

/// What a session runs over: TCP, or a channel forwarded by a jump host.
trait Transport: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Transport for T {}

/// What the handshake learnt, read after `connect` returns.
#[derive(Debug, Default)]
struct Report {
    verdict: Option<Verdict>,
    fingerprint: String,
    learned: bool,
    record_error: Option<super::known_hosts::KnownHostsError>,
    negotiated: Negotiated,
}

pub struct Client {
    /// The device's name and when its TCP connection opened, for the
    /// key exchange's debug event.
    device: String,
    opened: std::time::Instant,
    host: String,
    port: u16,
    policy: HostKeyPolicy,
    known: Arc<KnownHosts>,
    report: Arc<Mutex<Report>>,
}

fn lock(r: &Mutex<Report>) -> std::sync::MutexGuard<'_, Report> {
    r.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Ok(false);
        };
        let verdict = self.known.check(&self.host, self.port, key);
        {
            let mut r = lock(&self.report);
            r.fingerprint = fingerprint(key);
            r.verdict = Some(verdict.clone());
        }
        Ok(match verdict {
            Verdict::Known => true,
            Verdict::Changed { .. } => false,
            Verdict::Unknown if self.policy == HostKeyPolicy::AcceptNew => {
                match self.known.learn(&self.host, self.port, key).await {
                    Ok(()) => {
                        lock(&self.report).learned = true;
                        true
                    }
                    Err(e) => {
                        lock(&self.report).record_error = Some(e);
                        false
                    }
                }
            }
            Verdict::Unknown => false,
        })
    }

    async fn kex_done(
        &mut self,
        _secret: Option<&[u8]>,
        names: &russh::Names,
        _s: &mut client::Session,
    ) -> Result<(), Self::Error> {
        tracing::debug!(
            device = %self.device,
            kex = names.kex.as_ref(),
            ms = self.opened.elapsed().as_millis() as u64,
            "key exchange done"
        );
        lock(&self.report).negotiated = Negotiated {
            kex: names.kex.as_ref().to_string(),
            host_key: names.key.to_string(),
            cipher: names.cipher.as_ref().to_string(),
            mac: names.client_mac.as_ref().to_string(),
        };
        Ok(())
    }
}

pub struct Connection {
    pub handle: Handle<Client>,
    pub negotiated: Negotiated,
    pub learned_host_key: bool,
    /// This connection proves its credential profile for the run: settled
    /// once the login (with enable) has ended.
    pub prover: Option<Prover>,
}

fn ssh_error(device: &str, stage: Stage, e: russh::Error) -> DeviceError {
    match e {
        russh::Error::NoCommonAlgo { kind, ours, theirs } => DeviceError::Handshake {
            device: device.into(),
            reason: format!(
                "no common {kind:?} algorithm (device offers {})",
                theirs.join(", ")
            ),
            legacy_hint: theirs
                .iter()
                .any(|t| t.contains("sha1") || t.contains("cbc") || t == "ssh-rsa")
                && !ours.iter().any(|o| o.contains("cbc")),
        },
        russh::Error::Disconnect | russh::Error::HUP => DeviceError::Closed {
            device: device.into(),
            stage,
        },
        other => DeviceError::Ssh {
            device: device.into(),
            stage,
            reason: other.to_string(),
        },
    }
}

/// Connects, verifies the host key and logs in with exactly one password
/// attempt (never a second method with the same password, which would count
/// twice against an account lockout). With a login gate, the credentials
/// wait at it after the key exchange: the connection is ready, nothing
/// secret has been sent.
pub async fn connect(
    target: &Target,
    login: &Login,
    known: &Arc<KnownHosts>,
    gate: Option<GatePass>,
) -> Result<Connection, DeviceError> {
    let device = target.name.as_str();
    let limit = target.ssh.connect_timeout;
    // A handshake that fails drops the pass: the next device proves.
    let mut conn = handshake(target, known).await?;
    if let Some(pass) = gate {
        let arrived = std::time::Instant::now();
        // What a waiter may wait for between two changes at the gate: an
        // earlier device's connect and key exchange, or the prover's
        // authentication, shell, prompt and enable, each bounded by one of
        // these timeouts.
        let patience = limit * 2 + target.ssh.command_timeout * 2;
        conn.prover = LoginGate::enter(pass, device, patience)
            .await
            .map_err(|reason| DeviceError::CredentialsWithheld {
                device: device.into(),
                reason,
            })?;
        if conn.handle.is_closed() {
            // The device's login grace time ran out while we waited.
            let (prover, learned) = (conn.prover.take(), conn.learned_host_key);
            conn = handshake(target, known).await?;
            conn.prover = prover;
            conn.learned_host_key |= learned;
        }
        tracing::debug!(
            device = %device,
            waited_ms = arrived.elapsed().as_millis() as u64,
            "through the login gate"
        );
    }
    let auth_start = std::time::Instant::now();
    let auth = tokio::time::timeout(limit, authenticate(&mut conn.handle, device, login))
        .await
        .map_err(|_| DeviceError::timeout(device, Stage::Auth, limit))
        .and_then(|r| r);
    if let Err(e) = auth {
        if e.is_auth_rejected()
            && let Some(prover) = conn.prover.take()
        {
            prover.rejected();
        }
        return Err(e);
    }
    tracing::debug!(
        device = %device,
        ms = auth_start.elapsed().as_millis() as u64,
        "authenticated"
    );
    Ok(conn)
}

/// TCP connect, SSH key exchange and host-key check, each bounded by the
/// device's connect timeout.
async fn handshake(target: &Target, known: &Arc<KnownHosts>) -> Result<Connection, DeviceError> {
    let device = target.name.as_str();
    let config = Arc::new(client::Config {
        preferred: match target.ssh.algorithms {
            AlgorithmProfile::Modern => modern_algorithms(),
            AlgorithmProfile::Legacy => legacy_algorithms(),
        },
        inactivity_timeout: Some(Duration::from_secs(3600)),
        nodelay: true,
        window_size: WINDOW,
        maximum_packet_size: 8192,
        gex: legacy_gex(),
        ..Default::default()
    });
    let report = Arc::new(Mutex::new(Report::default()));
    let handler = Client {
        device: device.to_string(),
        opened: std::time::Instant::now(),
        host: target.host.clone(),
        port: target.port,
        policy: target.ssh.host_key_policy,
        known: known.clone(),
        report: report.clone(),
    };
    let addr = crate::device::session::display_addr(&target.host, target.port);
    let limit = target.ssh.connect_timeout;
    let transport: Box<dyn Transport> = match &target.jump {
        Some(pool) => Box::new(pool.open_stream(&target.host, target.port).await.map_err(
            |reason| DeviceError::Jump {
                device: device.into(),
                jump: pool.name().into(),
                reason,
            },
        )?),
        None => {
            let tcp = tokio::time::timeout(
                limit,
                tokio::net::TcpStream::connect((target.host.as_str(), target.port)),
            )
            .await
            .map_err(|_| DeviceError::timeout(device, Stage::Connect, limit))?
            .map_err(|e| DeviceError::Unreachable {
                device: device.into(),
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
            let _ = tcp.set_nodelay(true);
            Box::new(tcp)
        }
    };
    let result =
        tokio::time::timeout(limit, client::connect_stream(config, transport, handler)).await;
    let handle = match result {
        Err(_) => {
            return Err(DeviceError::timeout(device, Stage::Handshake, limit));
        }
        Ok(Ok(h)) => h,
        Ok(Err(e)) => {
            let mut r = lock(&report);
            if let Some(source) = r.record_error.take() {
                return Err(DeviceError::HostKeyRecord {
                    device: device.into(),
                    source,
                });
            }
            return Err(match (&r.verdict, e) {
                (Some(Verdict::Changed { line }), russh::Error::UnknownKey) => {
                    DeviceError::HostKeyChanged {
                        device: device.into(),
                        fingerprint: r.fingerprint.clone(),
                        known_hosts: known.path().to_path_buf(),
                        line: *line,
                    }
                }
                (Some(Verdict::Unknown), russh::Error::UnknownKey) => DeviceError::HostKeyUnknown {
                    device: device.into(),
                    fingerprint: r.fingerprint.clone(),
                    known_hosts: known.path().to_path_buf(),
                },
                (_, e) => ssh_error(device, Stage::Handshake, e),
            });
        }
    };
    let r = lock(&report);
    Ok(Connection {
        handle,
        negotiated: r.negotiated.clone(),
        learned_host_key: r.learned,
        prover: None,
    })
}

async fn authenticate(
    h: &mut Handle<Client>,
    device: &str,
    login: &Login,
) -> Result<(), DeviceError> {
    let err = |e| ssh_error(device, Stage::Auth, e);
    let rejected = || DeviceError::AuthRejected {
        device: device.into(),
        username: login.username.clone(),
    };
    let offered = match h.authenticate_none(&login.username).await.map_err(err)? {
        russh::client::AuthResult::Success => return Ok(()),
        russh::client::AuthResult::Failure {
            remaining_methods, ..
        } => remaining_methods,
    };
    let offers = |m: MethodKind| offered.contains(&m);
    if let (Some(key), true) = (&login.key, offers(MethodKind::PublicKey)) {
        let hash = if key.rsa_sha1 {
            None
        } else {
            Some(HashAlg::Sha256)
        };
        let signer = PrivateKeyWithHashAlg::new(key.key.clone(), hash);
        if h.authenticate_publickey(&login.username, signer)
            .await
            .map_err(err)?
            .success()
        {
            return Ok(());
        }
        if login.password.is_none() {
            return Err(rejected());
        }
    }
    let Some(password) = &login.password else {
        return Err(DeviceError::AuthUnsupported {
            device: device.into(),
            offered: names(&offered),
        });
    };
    if offers(MethodKind::Password) {
        let ok = h
            .authenticate_password(&login.username, password.expose_secret())
            .await
            .map_err(err)?;
        return if ok.success() {
            Ok(())
        } else {
            Err(rejected())
        };
    }
    if offers(MethodKind::KeyboardInteractive) {
        let mut reply = h
            .authenticate_keyboard_interactive_start(&login.username, None)
            .await
            .map_err(err)?;
        // Bounded: a server that keeps asking is refused, not followed forever.
        for _ in 0..4 {
            match reply {
                KeyboardInteractiveAuthResponse::Success => return Ok(()),
                KeyboardInteractiveAuthResponse::Failure { .. } => return Err(rejected()),
                KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                    let answers = prompts
                        .iter()
                        .map(|p| {
                            if p.prompt.to_ascii_lowercase().contains("user")
                                && !p.prompt.to_ascii_lowercase().contains("pass")
                            {
                                login.username.clone()
                            } else {
                                password.expose_secret().to_string()
                            }
                        })
                        .collect();
                    reply = h
                        .authenticate_keyboard_interactive_respond(answers)
                        .await
                        .map_err(err)?;
                }
            }
        }
        return Err(rejected());
    }
    Err(DeviceError::AuthUnsupported {
        device: device.into(),
        offered: names(&offered),
    })
}

fn names(m: &russh::MethodSet) -> String {
    m.iter().map(<&str>::from).collect::<Vec<_>>().join(", ")
}
