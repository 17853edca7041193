//! The run journal: every device's transitions, appended as JSON lines to
//! `<state_dir>/journal/<run id>.jsonl` and flushed to disk before the
//! device moves on. Events from many devices share one `fsync` (group
//! commit, waiting up to 1 ms for company), so durability does not
//! serialise the fleet.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

use super::DeviceRecord;

#[derive(Debug, Error)]
pub enum JournalError {
    #[error("cannot open the run journal {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A journal line that could not be read: skipped, and said in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub line: usize,
    /// The last line, cut short: a crash in the middle of its write (the
    /// device it belongs to never went past that point).
    pub torn: bool,
    pub reason: String,
}

impl Damage {
    pub fn describe(&self, path: &Path) -> String {
        if self.torn {
            format!(
                "{}:{}: the last record was cut short by a crash while it was written ({}); it was never confirmed, so its device did not act on it; skipped",
                path.display(),
                self.line,
                self.reason
            )
        } else {
            format!(
                "{}:{}: unreadable record skipped ({}); a device whose result it held is done again or marked interrupted",
                path.display(),
                self.line,
                self.reason
            )
        }
    }
}

/// What a journal holds: every readable event, in order, and the lines
/// that could not be read.
#[derive(Debug, Default)]
pub struct Loaded {
    pub events: Vec<Event>,
    pub damage: Vec<Damage>,
}

impl Loaded {
    /// The damage as sentences for the report and the log.
    pub fn notes(&self, path: &Path) -> Vec<String> {
        self.damage.iter().map(|d| d.describe(path)).collect()
    }
}

/// One journal line: `{"event": "finished", "data": {...}}`. Adjacent
/// tagging (not internal) lets a device's raw JSON result be read back.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", content = "data", rename_all = "kebab-case")]
pub enum Event {
    RunStarted {
        run_id: String,
        window: Option<String>,
        deadline: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
        planned: Vec<(String, Vec<String>)>,
    },
    Started {
        job: String,
        device: String,
        at: DateTime<Utc>,
    },
    Step {
        job: String,
        device: String,
        step: String,
    },
    /// What the device's job found on it before its first change (an ACL
    /// push: the ACL as it was). An attempt that resumes the device after
    /// a crash puts *this* back on failure, not the half-changed state the
    /// crash left.
    Found {
        job: String,
        device: String,
        found: serde_json::Value,
    },
    Finished {
        job: String,
        device: String,
        record: DeviceRecord,
    },
    RunFinished {
        at: DateTime<Utc>,
    },
}

type Request = (Vec<u8>, oneshot::Sender<bool>);

/// How long a batch waits for more events before its fsync.
const LINGER: std::time::Duration = std::time::Duration::from_millis(1);

/// Appends events durably. Cloneable; the writer task ends when the last
/// clone is dropped.
#[derive(Clone)]
pub struct Journal {
    tx: mpsc::Sender<Request>,
    path: PathBuf,
}

pub fn journal_path(state_dir: &Path, run_id: &str) -> PathBuf {
    state_dir.join("journal").join(format!("{run_id}.jsonl"))
}

/// Reads the events of an earlier attempt of this run. Nothing in the file
/// stops the reading: a line that is not an event (a torn last write, bytes
/// a bad disk or a person left) is skipped and listed, and every line after
/// it is still read, since each line stands alone.
pub fn load(path: &Path) -> Result<Loaded, JournalError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::default()),
        Err(source) => {
            return Err(JournalError::Open {
                path: path.into(),
                source,
            });
        }
    };
    Ok(parse(&bytes))
}

/// The events and damage of a journal's bytes.
pub fn parse(bytes: &[u8]) -> Loaded {
    let mut loaded = Loaded::default();
    let mut lines = bytes.split(|b| *b == b'\n').peekable();
    let mut n = 0;
    while let Some(line) = lines.next() {
        n += 1;
        let last = lines.peek().is_none();
        if last && line.is_empty() {
            break; // the file ends with its newline
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let event = std::str::from_utf8(line)
            .map_err(|e| e.to_string())
            .and_then(|l| serde_json::from_str::<Event>(l).map_err(|e| e.to_string()));
        match event {
            Ok(e) if !last => loaded.events.push(e),
            // A whole event with no newline: the write stopped before it.
            Ok(_) => loaded.damage.push(Damage {
                line: n,
                torn: true,
                reason: "no end of line".into(),
            }),
            Err(reason) => loaded.damage.push(Damage {
                line: n,
                torn: last,
                reason,
            }),
        }
    }
    loaded
}

/// Cuts a torn last line (no newline) off the journal, so that what is
/// appended next starts a line of its own.
fn cut_torn_tail(file: &std::fs::File, path: &Path) -> std::io::Result<()> {
    let bytes = std::fs::read(path)?;
    if bytes.last().is_some_and(|b| *b != b'\n') {
        let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        file.set_len(keep as u64)?;
        file.sync_data()?;
    }
    Ok(())
}

impl Journal {
    /// Opens (creating) the journal for appending, without a torn last line
    /// (read and reported by [`load`] first); returns it with the
    /// writer task, which the caller owns and awaits after dropping every
    /// clone of the journal.
    pub fn open(path: &Path) -> Result<(Journal, tokio::task::JoinHandle<()>), JournalError> {
        let open = || -> std::io::Result<std::fs::File> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            cut_torn_tail(&file, path)?;
            Ok(file)
        };
        let file = open().map_err(|source| JournalError::Open {
            path: path.into(),
            source,
        })?;
        let (tx, rx) = mpsc::channel::<Request>(4096);
        let writer = tokio::spawn(write_batches(file, rx, path.to_path_buf()));
        Ok((
            Journal {
                tx,
                path: path.to_path_buf(),
            },
            writer,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `event` and returns once it is on disk (false if it could
    /// not be written: the run goes on, and the log says why).
    pub async fn record(&self, event: &Event) -> bool {
        self.record_all(std::slice::from_ref(event)).await
    }

    /// Appends `events`, in order, with one wait for the disk: for points a
    /// device reaches back to back, with nothing done on it in between.
    pub async fn record_all(&self, events: &[Event]) -> bool {
        let mut lines = Vec::new();
        for event in events {
            if serde_json::to_writer(&mut lines, event).is_err() {
                return false;
            }
            lines.push(b'\n');
        }
        let (done, wait) = oneshot::channel();
        if self.tx.send((lines, done)).await.is_err() {
            return false;
        }
        wait.await.unwrap_or(false)
    }
}

async fn write_batches(file: std::fs::File, mut rx: mpsc::Receiver<Request>, path: PathBuf) {
    let file = std::sync::Arc::new(std::sync::Mutex::new(file));
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        // Group commit: what arrives within LINGER of the first event shares
        // its fsync (as PostgreSQL's commit_delay), so a thousand devices in
        // flight cost hundreds of fsyncs a second, not thousands.
        let until = tokio::time::Instant::now() + LINGER;
        while batch.len() < 2048 {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some(r)) => batch.push(r),
                    Ok(None) | Err(_) => break,
                },
            }
        }
        let bytes: Vec<u8> = batch.iter().flat_map(|(b, _)| b.iter().copied()).collect();
        let f = file.clone();
        // The blocking task answers the waiters itself, the moment their
        // events are on disk: under load, a trip back through this task
        // would queue behind every device that is ready to run.
        let ok = tokio::task::spawn_blocking(move || {
            let ok = {
                let mut f = f.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                f.write_all(&bytes).and_then(|()| f.sync_data()).is_ok()
            };
            for (_, done) in batch {
                let _ = done.send(ok);
            }
            ok
        })
        .await
        .unwrap_or(false);
        if !ok {
            tracing::error!(journal = %path.display(), "cannot write the run journal");
        }
    }
}
