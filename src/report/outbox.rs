//! The outbox: every mail is written here, durably, before it is sent, so
//! no report is lost to a relay that is down or a daemon that restarts.
//! `<state_dir>/outbox/<id>.eml` is the message; `<id>.json` its state.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::mail::{self, MailError, Rendered};
use super::{Report, ReportError};
use crate::config::Config;
use crate::config::MailSettings;
use crate::credentials::{self, CredentialsError, Store};
use crate::durable::write_durably;

/// First retry after this long, doubling up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(30);
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Waiting to be sent (first try, or a retry after a transient error).
    Pending,
    Sent,
    /// The relay refused it for good (5xx); kept for `report resend`.
    Failed,
    /// No `[mail]` configured: kept here only.
    Kept,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    /// "report" or "alert".
    pub kind: String,
    pub subject: String,
    pub from: String,
    pub to: Vec<String>,
    pub created: DateTime<Utc>,
    pub state: State,
    pub attempts: u32,
    pub next_attempt: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub sent: Option<DateTime<Utc>>,
    /// The message file's length and SHA-256 (hex) when it was stored:
    /// a message cut short or changed on disk is never sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// A file of the outbox that cannot be used: its state file unreadable, its
/// message missing, cut short or changed, or a message without a state file
/// (a crash between the two writes). Listed by `report list`, never sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damaged {
    pub id: String,
    pub file: PathBuf,
    pub reason: String,
}

/// What the outbox holds.
#[derive(Debug, Default)]
pub struct Listing {
    /// Every readable entry, oldest first.
    pub entries: Vec<Entry>,
    pub damaged: Vec<Damaged>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
}

/// What one delivery attempt did.
#[derive(Debug)]
pub enum Delivery {
    Sent(String),
    Retry(String, MailError),
    Failed(String, MailError),
    /// Its files cannot be used (see [`Damaged`]); marked failed, not sent.
    Damaged(Damaged),
}

impl Outbox {
    pub fn new(state_dir: &Path) -> Outbox {
        Outbox {
            dir: state_dir.join("outbox"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn write_err(&self, path: &Path, source: std::io::Error) -> ReportError {
        ReportError::Write {
            path: path.into(),
            source,
        }
    }

    /// Stores a rendered mail (durably) and returns its entry.
    pub fn put(
        &self,
        kind: &str,
        name: &str,
        mail: &Rendered,
        relay: bool,
        now: DateTime<Utc>,
    ) -> Result<Entry, ReportError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| self.write_err(&self.dir, e))?;
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let mut id = format!("{}-{kind}-{safe}", now.format("%Y%m%dT%H%M%SZ"));
        let mut n = 1;
        while self.eml(&id).exists() {
            n += 1;
            id = format!("{}-{kind}-{safe}-{n}", now.format("%Y%m%dT%H%M%SZ"));
        }
        let entry = Entry {
            id: id.clone(),
            kind: kind.into(),
            subject: mail.subject.clone(),
            from: mail.from.clone(),
            to: mail.to.clone(),
            created: now,
            state: if relay { State::Pending } else { State::Kept },
            attempts: 0,
            next_attempt: relay.then_some(now),
            last_error: None,
            sent: None,
            size: Some(mail.bytes.len() as u64),
            sha256: Some(sha256_hex(&mail.bytes)),
        };
        let eml = self.eml(&id);
        write_durably(&eml, &mail.bytes).map_err(|e| self.write_err(&eml, e))?;
        self.save(&entry)?;
        Ok(entry)
    }

    fn eml(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.eml"))
    }

    fn meta(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    pub fn save(&self, e: &Entry) -> Result<(), ReportError> {
        let path = self.meta(&e.id);
        let text = serde_json::to_string_pretty(e)
            .map_err(|x| self.write_err(&path, std::io::Error::other(x)))?;
        write_durably(&path, text.as_bytes()).map_err(|x| self.write_err(&path, x))
    }

    /// Every readable entry, oldest first (damaged files are left out: see
    /// [`Outbox::scan`]).
    pub fn list(&self) -> Result<Vec<Entry>, ReportError> {
        Ok(self.scan(false)?.entries)
    }

    /// Every entry, and every file that cannot be used. With `verify`, each
    /// entry's message is read and checked against its length and SHA-256.
    pub fn scan(&self, verify: bool) -> Result<Listing, ReportError> {
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Listing::default()),
            Err(e) => {
                return Err(ReportError::Read {
                    path: self.dir.clone(),
                    reason: e.to_string(),
                });
            }
        };
        let mut listing = Listing::default();
        let mut messages = Vec::new();
        for f in rd.flatten() {
            let p = f.path();
            let name = f.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue; // a temporary file of an atomic write
            }
            if let Some(id) = name.strip_suffix(".eml") {
                messages.push(id.to_string());
                continue;
            }
            let Some(id) = name.strip_suffix(".json") else {
                continue;
            };
            let read = std::fs::read(&p)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_slice::<Entry>(&t).map_err(|e| e.to_string()));
            match read {
                Ok(e) => {
                    let damage = if verify { self.check(&e).err() } else { None };
                    match damage {
                        Some(d) => listing.damaged.push(d),
                        None => listing.entries.push(e),
                    }
                }
                Err(reason) => {
                    tracing::warn!(path = %p.display(), %reason, "outbox: unreadable entry");
                    listing.damaged.push(Damaged {
                        id: id.to_string(),
                        file: p.clone(),
                        reason: format!("state file unreadable: {reason}"),
                    });
                }
            }
        }
        for id in messages {
            if !self.meta(&id).exists() {
                listing.damaged.push(Damaged {
                    file: self.eml(&id),
                    reason: "message without its state file (stored when a crash cut the write short); read it with `report show`, nothing sends it".into(),
                    id,
                });
            }
        }
        listing
            .entries
            .sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        listing.damaged.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(listing)
    }

    /// The entry's message as stored, or why it cannot be sent.
    fn check(&self, e: &Entry) -> Result<Vec<u8>, Damaged> {
        let file = self.eml(&e.id);
        let damaged = |reason: String| Damaged {
            id: e.id.clone(),
            file: file.clone(),
            reason,
        };
        let bytes =
            std::fs::read(&file).map_err(|x| damaged(format!("message unreadable: {x}")))?;
        if let Some(size) = e.size.filter(|s| *s != bytes.len() as u64) {
            return Err(damaged(format!(
                "message cut short or changed: {} bytes, {size} when stored",
                bytes.len()
            )));
        }
        if let Some(sum) = e.sha256.as_ref().filter(|s| **s != sha256_hex(&bytes)) {
            return Err(damaged(format!(
                "message changed since it was stored (SHA-256 {}, was {sum})",
                sha256_hex(&bytes)
            )));
        }
        Ok(bytes)
    }

    pub fn get(&self, id: &str) -> Result<(Entry, Vec<u8>), ReportError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| ReportError::Read {
                path: p.into(),
                reason: e.to_string(),
            })
        };
        let meta = read(&self.meta(id))?;
        let entry = serde_json::from_slice(&meta).map_err(|e| ReportError::Read {
            path: self.meta(id),
            reason: e.to_string(),
        })?;
        Ok((entry, read(&self.eml(id))?))
    }

    /// Sends every pending entry that is due (every pending one with
    /// `force`: a human asked, or the daemon just started); records each outcome before
    /// returning. Returns what happened, and when the next retry is due.
    pub async fn deliver_due(
        &self,
        settings: &MailSettings,
        password: Option<&SecretString>,
        now: DateTime<Utc>,
        force: bool,
    ) -> Result<(Vec<Delivery>, Option<DateTime<Utc>>), ReportError> {
        let mut done = Vec::new();
        for mut e in self.list()? {
            if e.state != State::Pending || (!force && e.next_attempt.is_some_and(|t| t > now)) {
                continue;
            }
            // A damaged message costs no other mail: it is marked, named,
            // and the next one goes.
            let bytes = match self.check(&e) {
                Ok(b) => b,
                Err(d) => {
                    tracing::error!(id = %e.id, file = %d.file.display(), reason = %d.reason, "outbox: not sent");
                    e.state = State::Failed;
                    e.next_attempt = None;
                    e.last_error = Some(format!("not sent: {}", d.reason));
                    let _ = self.save(&e);
                    done.push(Delivery::Damaged(d));
                    continue;
                }
            };
            e.attempts += 1;
            match mail::send(settings, password, &e.from, &e.to, &bytes).await {
                Ok(()) => {
                    tracing::info!(id = %e.id, subject = %e.subject, "mail sent");
                    e.state = State::Sent;
                    e.sent = Some(now);
                    e.next_attempt = None;
                    e.last_error = None;
                    self.save(&e)?;
                    done.push(Delivery::Sent(e.id));
                }
                Err(err) if err.is_transient() => {
                    let wait = backoff(e.attempts);
                    e.next_attempt =
                        Some(now + chrono::Duration::from_std(wait).unwrap_or_default());
                    e.last_error = Some(err.to_string());
                    tracing::warn!(id = %e.id, error = %err, retry_in = %humantime::format_duration(wait), "mail not sent; kept in the outbox");
                    self.save(&e)?;
                    done.push(Delivery::Retry(e.id, err));
                }
                Err(err) => {
                    e.state = State::Failed;
                    e.next_attempt = None;
                    e.last_error = Some(err.to_string());
                    tracing::error!(id = %e.id, error = %err, "mail refused by the relay; kept in the outbox (nightshift report resend)");
                    self.save(&e)?;
                    done.push(Delivery::Failed(e.id, err));
                }
            }
        }
        let next = self
            .list()?
            .iter()
            .filter(|e| e.state == State::Pending)
            .filter_map(|e| e.next_attempt)
            .min();
        Ok((done, next))
    }

    /// Marks an entry for sending again now.
    pub fn requeue(&self, id: &str, now: DateTime<Utc>) -> Result<Entry, ReportError> {
        let (mut e, _) = self.get(id)?;
        e.state = State::Pending;
        e.next_attempt = Some(now);
        self.save(&e)?;
        Ok(e)
    }
}

/// Puts a rendered mail into the outbox and, with a relay configured,
/// tries to send what is due at once. Returns the stored entry's id.
pub async fn queue_and_send(
    outbox: &Outbox,
    settings: Option<&MailSettings>,
    password: Option<&SecretString>,
    kind: &str,
    name: &str,
    mail: &Rendered,
    now: DateTime<Utc>,
) -> Result<(Entry, Vec<Delivery>), ReportError> {
    let entry = outbox.put(kind, name, mail, settings.is_some(), now)?;
    let done = match settings {
        Some(s) => outbox.deliver_due(s, password, now, false).await?.0,
        None => Vec::new(),
    };
    let entry = outbox.get(&entry.id).map(|(e, _)| e).unwrap_or(entry);
    Ok((entry, done))
}

/// What keeping and sending one report mail did.
pub struct Mailed {
    pub entry: Entry,
    pub deliveries: Vec<Delivery>,
    /// The relay's password could not be read (the mail stays pending).
    pub password_problem: Option<CredentialsError>,
}

/// Renders the report as a mail, keeps it in the outbox and, with a relay
/// configured, sends it.
pub async fn mail_report(
    config: &Config,
    store: &Store,
    report: &Report,
    now: DateTime<Utc>,
) -> Result<Mailed, ReportError> {
    let rendered = mail::render_report(
        report,
        config.mail.as_ref(),
        &report.history_path(&config.daemon.state_dir),
    )?;
    let (password, password_problem) = match credentials::mail_password(config, store) {
        Ok(p) => (p, None),
        Err(e) => (None, Some(e)),
    };
    let outbox = Outbox::new(&config.daemon.state_dir);
    let name = report.json["run_id"].as_str().unwrap_or("run");
    let (entry, deliveries) = queue_and_send(
        &outbox,
        config.mail.as_ref(),
        password.as_ref(),
        "report",
        name,
        &rendered,
        now,
    )
    .await?;
    Ok(Mailed {
        entry,
        deliveries,
        password_problem,
    })
}

/// 30 s, 1 min, 2 min ... at most an hour.
pub fn backoff(attempts: u32) -> Duration {
    let factor = 1u32
        .checked_shl(attempts.saturating_sub(1))
        .unwrap_or(u32::MAX);
    FIRST_BACKOFF.saturating_mul(factor).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(1), Duration::from_secs(30));
        assert_eq!(backoff(2), Duration::from_secs(60));
        assert_eq!(backoff(5), Duration::from_secs(480));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}
