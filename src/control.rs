//! The daemon's control socket: a Unix socket in its runtime directory.
//! `nightshift status` reads the daemon's state through it, and
//! `nightshift credentials set` hands it validated credentials. Only root,
//! the daemon's own user and members of `control_group` are admitted,
//! checked with the peer's kernel credentials (SO_PEERCRED) on every
//! connection.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use zeroize::Zeroizing;

/// Where the unit's `RuntimeDirectory=nightshift` puts the socket.
pub const DEFAULT_SOCKET: &str = "/run/nightshift/control.sock";

/// Longest a client may take to send its request, and the longest a
/// client waits for the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// A request is a line of JSON; credentials are small.
const MAX_REQUEST: u64 = 64 * 1024;

#[derive(Debug, Error)]
pub enum ControlError {
    #[error("cannot listen on {path}: {source}")]
    Bind {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot reach the daemon at {path}: {source}")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the daemon at {path} did not answer within {}s", IO_TIMEOUT.as_secs())]
    Timeout { path: PathBuf },
    #[error("the daemon refused: {message}")]
    Refused {
        message: String,
        /// What kind of problem (`rejected`, `unreachable`, `needs-enable`,
        /// …) when the daemon says, with its hint.
        kind: Option<String>,
        hint: Option<String>,
    },
    #[error("unreadable answer from the daemon: {0}")]
    Protocol(String),
    #[error("control group \"{0}\" does not exist in /etc/group")]
    UnknownGroup(String),
}

/// What a client asks.
#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    Status,
    /// What the daemon runs: its config file, its credential profiles, and
    /// whether its keyring can keep a secret. Asked before anything is
    /// proved or stored.
    Info,
    /// Prove credentials for `profile` with one login to its canary (the
    /// daemon's config, known_hosts and network), then store them: what
    /// `credentials set` hands over. `secret` is the JSON form of
    /// `credentials::store`.
    Set {
        profile: String,
        secret: String,
    },
    /// Store validated credentials (the JSON form of `credentials::store`)
    /// under `key` in the daemon's own keyring.
    Store {
        key: String,
        secret: String,
    },
    /// Re-read and validate the config (`nightshift reload`, the unit's
    /// `ExecReload=`): answers whether it was accepted, and the problems.
    Reload,
    /// Forget credentials.
    Delete {
        key: String,
    },
    /// Prove the stored credentials of a profile with one canary login.
    Check {
        profile: String,
    },
}

impl Drop for Request {
    fn drop(&mut self) {
        if let Request::Store { secret, .. } | Request::Set { secret, .. } = self {
            use zeroize::Zeroize as _;
            secret.zeroize();
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub data: Value,
}

impl Response {
    pub fn ok(data: Value) -> Response {
        Response {
            ok: true,
            error: None,
            data,
        }
    }
    pub fn error(message: impl Into<String>) -> Response {
        Response {
            ok: false,
            error: Some(message.into()),
            data: Value::Null,
        }
    }
    /// A refusal with its kind and a hint, for the client to act on.
    pub fn problem(message: impl Into<String>, kind: &str, hint: Option<String>) -> Response {
        Response {
            ok: false,
            error: Some(message.into()),
            data: serde_json::json!({"kind": kind, "hint": hint}),
        }
    }
}

/// Answers requests; called once per admitted request.
pub type Handler = Arc<
    dyn Fn(Request) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>
        + Send
        + Sync,
>;

/// Who may talk to the daemon.
#[derive(Debug, Clone)]
pub struct Admission {
    own_uid: u32,
    group: Option<(String, u32, Vec<String>)>,
}

impl Admission {
    pub fn new(group: Option<&str>) -> Result<Admission, ControlError> {
        let own_uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
        let group = match group {
            None => None,
            Some(name) => {
                let (gid, members) =
                    lookup_group(name).ok_or_else(|| ControlError::UnknownGroup(name.into()))?;
                Some((name.to_string(), gid, members))
            }
        };
        Ok(Admission { own_uid, group })
    }

    /// `Err(reason)` when this peer is not admitted.
    pub fn check(&self, uid: u32, gid: u32) -> Result<(), String> {
        if uid == 0 || uid == self.own_uid {
            return Ok(());
        }
        if let Some((name, group_gid, members)) = &self.group {
            if gid == *group_gid {
                return Ok(());
            }
            if let Some(user) = user_name(uid)
                && members.contains(&user)
            {
                return Ok(());
            }
            return Err(format!(
                "uid {uid} is not root, not the daemon's user and not in group {name}"
            ));
        }
        Err(format!(
            "uid {uid} is not root or the daemon's user (set [daemon] control_group to admit a group)"
        ))
    }
}

fn lookup_group(name: &str) -> Option<(u32, Vec<String>)> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && f[0] == name).then(|| {
            let members = f[3]
                .split(',')
                .filter(|m| !m.is_empty())
                .map(String::from)
                .collect();
            f[2].parse().ok().map(|gid| (gid, members))
        })?
    })
}

fn user_name(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[2].parse() == Ok(uid)).then(|| f[0].to_string())
    })
}

/// Binds the socket (replacing a stale one). The socket is mode 0666 so
/// that members of `control_group` can reach it whatever the daemon's own
/// groups are; admission is decided on every connection from the peer's
/// kernel credentials, not from the file's mode.
pub fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    let err = |source| ControlError::Bind {
        path: path.into(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let listener = UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).map_err(err)?;
    Ok(listener)
}

/// Serves requests until `stop`; every connection task is awaited.
pub async fn serve(
    listener: UnixListener,
    admission: Admission,
    handler: Handler,
    stop: CancellationToken,
) {
    let tasks = TaskTracker::new();
    loop {
        let stream = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "control socket: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let admission = admission.clone();
        let handler = handler.clone();
        tasks.spawn(async move {
            if let Err(e) =
                tokio::time::timeout(IO_TIMEOUT, answer(stream, &admission, &handler)).await
            {
                tracing::debug!(error = %e, "control socket: client too slow");
            }
        });
    }
    tasks.close();
    tasks.wait().await;
}

async fn answer(stream: UnixStream, admission: &Admission, handler: &Handler) {
    let peer = stream.peer_cred();
    let (read, mut write) = stream.into_split();
    // The request is read first in every case, so a refused client gets
    // its answer instead of a broken pipe.
    let mut line = Zeroizing::new(String::new());
    let mut reader = BufReader::new(read).take(MAX_REQUEST);
    let read = reader.read_line(&mut line).await;
    let response = match peer {
        Err(e) => Response::error(format!("cannot read the peer's credentials: {e}")),
        Ok(cred) => match admission.check(cred.uid(), cred.gid()) {
            Err(why) => {
                tracing::warn!(uid = cred.uid(), pid = ?cred.pid(), "control socket: refused a peer: {why}");
                Response::error(format!("refused: {why}"))
            }
            Ok(()) => match read {
                Ok(_) => match serde_json::from_str::<Request>(&line) {
                    Ok(req) => handler(req).await,
                    Err(e) => Response::error(format!("bad request: {e}")),
                },
                Err(e) => Response::error(format!("cannot read the request: {e}")),
            },
        },
    };
    if let Ok(mut text) = serde_json::to_string(&response) {
        text.push('\n');
        let _ = write.write_all(text.as_bytes()).await;
        let _ = write.shutdown().await;
    }
}

/// Sends one request to the daemon and returns its data, or why it failed.
pub async fn call(path: &Path, request: &Request) -> Result<Value, ControlError> {
    let timeout = |_| ControlError::Timeout { path: path.into() };
    let stream = tokio::time::timeout(IO_TIMEOUT, UnixStream::connect(path))
        .await
        .map_err(timeout)?
        .map_err(|source| ControlError::Connect {
            path: path.into(),
            source,
        })?;
    let (read, mut write) = stream.into_split();
    let mut line = Zeroizing::new(
        serde_json::to_string(request).map_err(|e| ControlError::Protocol(e.to_string()))?,
    );
    line.push('\n');
    let io = |e: std::io::Error| ControlError::Protocol(e.to_string());
    tokio::time::timeout(IO_TIMEOUT, write.write_all(line.as_bytes()))
        .await
        .map_err(timeout)?
        .map_err(io)?;
    let mut answer = String::new();
    // A credential check logs in to a canary first.
    let wait = if matches!(request, Request::Check { .. } | Request::Set { .. }) {
        IO_TIMEOUT * 12
    } else {
        IO_TIMEOUT
    };
    tokio::time::timeout(wait, BufReader::new(read).read_line(&mut answer))
        .await
        .map_err(timeout)?
        .map_err(io)?;
    let response: Response =
        serde_json::from_str(&answer).map_err(|e| ControlError::Protocol(e.to_string()))?;
    if response.ok {
        Ok(response.data)
    } else {
        let text = |k: &str| {
            response
                .data
                .get(k)
                .and_then(Value::as_str)
                .map(String::from)
        };
        Err(ControlError::Refused {
            kind: text("kind"),
            hint: text("hint"),
            message: response.error.unwrap_or_else(|| "no reason given".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_root_and_self_and_the_group_only() {
        let a = Admission::new(Some("root")).unwrap();
        assert!(a.check(0, 0).is_ok());
        assert!(a.check(a.own_uid, 12345).is_ok());
        assert!(a.check(4242, 0).is_ok(), "primary group root");
        let err = a.check(4242, 4242).unwrap_err();
        assert!(err.contains("not in group root"), "{err}");
        let none = Admission::new(None).unwrap();
        assert!(none.check(4242, 0).unwrap_err().contains("control_group"));
        assert!(matches!(
            Admission::new(Some("no-such-group-xyz")),
            Err(ControlError::UnknownGroup(_))
        ));
    }
}
