//! An OpenSSH-format `known_hosts` file, read once and shared by every
//! session of a run.
//!
//! A host whose presented key matches a recorded one is known. A host with
//! any recorded key (of any algorithm) that does not match is *changed*,
//! which is always a failure: a device may be impersonated. A host with no
//! recorded key is unknown: refused under `strict`, learnt under
//! `accept-new` (appended to the file, flushed to disk, and reported).

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use russh::keys::PublicKey;
use russh::keys::ssh_key::HashAlg;
use thiserror::Error;
use tokio::sync::oneshot;

#[derive(Debug, Error)]
pub enum KnownHostsError {
    #[error("cannot read known_hosts file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot record a host key in {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What the file says about a presented key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Known,
    Unknown,
    /// Line (1-based) of a recorded key for this host that differs.
    Changed {
        line: usize,
    },
}

#[derive(Debug, Clone)]
struct Entry {
    line: usize,
    key: PublicKey,
}

#[derive(Debug, Clone)]
struct Hashed {
    salt: Vec<u8>,
    hash: Vec<u8>,
    entry: Entry,
}

#[derive(Debug, Default)]
struct Table {
    plain: HashMap<String, Vec<Entry>>,
    hashed: Vec<Hashed>,
    lines: usize,
}

/// A learnt key waiting for its write, and who waits for it.
struct Pending {
    name: String,
    key: PublicKey,
    line: String,
    done: oneshot::Sender<Result<(), (std::io::ErrorKind, String)>>,
}

pub struct KnownHosts {
    path: PathBuf,
    table: Mutex<Table>,
    pending: Mutex<Vec<Pending>>,
    /// The turn to write the pending lines: one write at a time.
    writer: tokio::sync::Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `host` for port 22, `[host]:port` otherwise, as OpenSSH writes it.
pub fn host_key_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// The base64 of a hashed entry's salt or hash (`|1|SALT|HASH`).
fn decode_b64(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// OpenSSH's hashed host name: HMAC-SHA1 of the name, keyed by the salt.
fn hmac_sha1(key: &[u8], msg: &[u8]) -> Vec<u8> {
    use hmac::{KeyInit as _, Mac as _};
    match hmac::Hmac::<sha1::Sha1>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(msg);
            mac.finalize().into_bytes().to_vec()
        }
        // HMAC takes a key of any length; nothing matches if it did not.
        Err(_) => Vec::new(),
    }
}

impl Table {
    fn add_line(&mut self, line_no: usize, line: &str) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('@') {
            return;
        }
        let mut f = line.split_whitespace();
        let (Some(hosts), Some(alg), Some(b64)) = (f.next(), f.next(), f.next()) else {
            return;
        };
        let Ok(key) = PublicKey::from_openssh(&format!("{alg} {b64}")) else {
            return;
        };
        let entry = Entry { line: line_no, key };
        for pattern in hosts.split(',') {
            if let Some(rest) = pattern.strip_prefix("|1|") {
                let mut parts = rest.split('|');
                if let (Some(Some(salt)), Some(Some(hash))) =
                    (parts.next().map(decode_b64), parts.next().map(decode_b64))
                {
                    self.hashed.push(Hashed {
                        salt,
                        hash,
                        entry: entry.clone(),
                    });
                }
            } else {
                self.plain
                    .entry(pattern.to_string())
                    .or_default()
                    .push(entry.clone());
            }
        }
    }

    fn entries_for(&self, name: &str) -> Vec<Entry> {
        let mut v: Vec<Entry> = self.plain.get(name).cloned().unwrap_or_default();
        v.extend(
            self.hashed
                .iter()
                .filter(|h| hmac_sha1(&h.salt, name.as_bytes()) == h.hash)
                .map(|h| h.entry.clone()),
        );
        v
    }
}

impl KnownHosts {
    /// Reads `path`; a missing file is an empty one.
    pub fn load(path: &Path) -> Result<KnownHosts, KnownHostsError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(KnownHostsError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let mut table = Table::default();
        for (i, line) in text.lines().enumerate() {
            table.add_line(i + 1, line);
            table.lines = i + 1;
        }
        Ok(KnownHosts {
            path: path.to_path_buf(),
            table: Mutex::new(table),
            pending: Mutex::new(Vec::new()),
            writer: tokio::sync::Mutex::new(()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        lock(&self.table)
    }

    pub fn check(&self, host: &str, port: u16, key: &PublicKey) -> Verdict {
        let entries = self.table().entries_for(&host_key_name(host, port));
        if entries.iter().any(|e| e.key.key_data() == key.key_data()) {
            Verdict::Known
        } else if let Some(e) = entries.first() {
            Verdict::Changed { line: e.line }
        } else {
            Verdict::Unknown
        }
    }

    /// Records a key (accept-new): appended and flushed to disk before the
    /// session goes on, so a crash cannot lose what was trusted. Keys that
    /// a fleet's sessions learn at the same moment share one write and one
    /// fsync (group commit), done off the async workers: a first run over a
    /// thousand new devices must not queue them behind a thousand fsyncs.
    pub async fn learn(
        self: &Arc<Self>,
        host: &str,
        port: u16,
        key: &PublicKey,
    ) -> Result<(), KnownHostsError> {
        let name = host_key_name(host, port);
        if self.is_recorded(&name, key) {
            return Ok(());
        }
        let (done, wait) = oneshot::channel();
        lock(&self.pending).push(Pending {
            line: format!("{name} {}\n", key.to_openssh().unwrap_or_default()),
            name,
            key: key.clone(),
            done,
        });
        {
            // Whoever holds the writer turn writes every line pending by
            // then, its own and others'; the rest find theirs written.
            let _turn = self.writer.lock().await;
            let batch = std::mem::take(&mut *lock(&self.pending));
            if !batch.is_empty() {
                let me = Arc::clone(self);
                // Awaited, and complete even if this session is dropped
                // meanwhile: the blocking task itself answers every waiter.
                let _ = tokio::task::spawn_blocking(move || me.write_batch(batch)).await;
            }
        }
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err((kind, message))) => Err(KnownHostsError::Write {
                path: self.path.clone(),
                source: std::io::Error::new(kind, message),
            }),
            Err(_) => Err(KnownHostsError::Write {
                path: self.path.clone(),
                source: std::io::Error::other("the write was abandoned"),
            }),
        }
    }

    fn is_recorded(&self, name: &str, key: &PublicKey) -> bool {
        self.table()
            .entries_for(name)
            .iter()
            .any(|e| e.key.key_data() == key.key_data())
    }

    /// Appends the batch's new lines, fsyncs, adds them to the table and
    /// answers each waiter.
    fn write_batch(&self, batch: Vec<Pending>) {
        let mut text = String::new();
        let mut fresh: Vec<&Pending> = Vec::new();
        // A line is the host's name and its key: the same line twice is the
        // same key learnt by two sessions at once.
        let mut seen = std::collections::HashSet::new();
        for p in &batch {
            if seen.insert(p.line.as_str()) && !self.is_recorded(&p.name, &p.key) {
                text.push_str(&p.line);
                fresh.push(p);
            }
        }
        let result = if text.is_empty() {
            Ok(())
        } else {
            append_durably(&self.path, text.as_bytes())
        };
        if result.is_ok() {
            let mut table = self.table();
            for p in fresh {
                table.lines += 1;
                let n = table.lines;
                table.add_line(n, &p.line);
            }
        }
        for p in batch {
            let _ = p.done.send(
                result
                    .as_ref()
                    .map(|_| ())
                    .map_err(|e| (e.kind(), e.to_string())),
            );
        }
    }
}

/// Appends `bytes` and syncs them; a file it creates is made durable in its
/// folder too.
fn append_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir)?;
    }
    let existed = path.exists();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_data()?;
    if !existed {
        std::fs::File::open(dir.unwrap_or(Path::new(".")))?.sync_all()?;
    }
    Ok(())
}

/// `SHA256:...` as OpenSSH prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::{Algorithm, PrivateKey};

    fn key() -> PublicKey {
        PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
            .unwrap()
            .public_key()
            .clone()
    }

    #[tokio::test]
    async fn known_unknown_changed_and_learnt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kh");
        let (a, b) = (key(), key());
        std::fs::write(
            &path,
            format!("# comment\n[127.0.0.1]:2201 {}\n", a.to_openssh().unwrap()),
        )
        .unwrap();
        let kh = Arc::new(KnownHosts::load(&path).unwrap());
        assert_eq!(kh.check("127.0.0.1", 2201, &a), Verdict::Known);
        assert_eq!(
            kh.check("127.0.0.1", 2201, &b),
            Verdict::Changed { line: 2 }
        );
        assert_eq!(kh.check("127.0.0.1", 2202, &b), Verdict::Unknown);
        kh.learn("127.0.0.1", 2202, &b).await.unwrap();
        assert_eq!(kh.check("127.0.0.1", 2202, &b), Verdict::Known);
        let again = KnownHosts::load(&path).unwrap();
        assert_eq!(
            again.check("127.0.0.1", 2202, &b),
            Verdict::Known,
            "learnt keys are on disk"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_sessions_learning_at_once_each_key_lands_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("kh");
        let kh = Arc::new(KnownHosts::load(&path).unwrap());
        let keys: Vec<PublicKey> = (0..50).map(|_| key()).collect();
        let mut tasks = tokio::task::JoinSet::new();
        // Every key learnt twice at the same moment, as two sessions to one
        // device would.
        for _ in 0..2 {
            for (i, k) in keys.iter().enumerate() {
                let (kh, k) = (kh.clone(), k.clone());
                tasks.spawn(async move { kh.learn("127.0.0.1", 3000 + i as u16, &k).await });
            }
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap().unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.lines().count(),
            keys.len(),
            "one line per key:\n{text}"
        );
        let again = KnownHosts::load(&path).unwrap();
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(again.check("127.0.0.1", 3000 + i as u16, k), Verdict::Known);
            assert_eq!(kh.check("127.0.0.1", 3000 + i as u16, k), Verdict::Known);
        }
    }

    #[tokio::test]
    async fn a_key_that_cannot_be_written_is_an_error_and_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let kh = Arc::new(KnownHosts::load(&dir.path().join("sub").join("kh")).unwrap());
        // Its folder turns out to be a file: nothing can be created in it.
        std::fs::write(dir.path().join("sub"), "").unwrap();
        let k = key();
        let e = kh.learn("127.0.0.1", 2202, &k).await.unwrap_err();
        assert!(matches!(e, KnownHostsError::Write { .. }), "{e}");
        assert_eq!(kh.check("127.0.0.1", 2202, &k), Verdict::Unknown);
    }

    /// A line `ssh-keygen -H` (OpenSSH 9.2) wrote for `[127.0.0.1]:2201`.
    const HASHED_BY_OPENSSH: &str = "|1|A/AixxB3Gd5Q1or52Nu9owVLMj8=|hAAQ76xmMKHYo41onR65m3ip7aI= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINa5sjJHAC3lqlDjgvAlILQddL0MWetEOAulZlNeajiH";

    #[test]
    fn hashed_hosts_match() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kh");
        std::fs::write(&path, format!("{HASHED_BY_OPENSSH}\n")).unwrap();
        let kh = KnownHosts::load(&path).unwrap();
        let recorded = PublicKey::from_openssh(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINa5sjJHAC3lqlDjgvAlILQddL0MWetEOAulZlNeajiH",
        )
        .unwrap();
        assert_eq!(kh.check("127.0.0.1", 2201, &recorded), Verdict::Known);
        // Another key for the same hashed host: changed, at its line.
        assert_eq!(
            kh.check("127.0.0.1", 2201, &key()),
            Verdict::Changed { line: 1 }
        );
        // Another host: the hash does not match.
        assert_eq!(kh.check("127.0.0.1", 2202, &recorded), Verdict::Unknown);
        assert_eq!(kh.check("127.0.0.2", 2201, &recorded), Verdict::Unknown);
    }
}
