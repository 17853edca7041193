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
    #[error("the run journal {path} is damaged at line {line}: {reason}")]
    Damaged {
        path: PathBuf,
        line: usize,
        reason: String,
    },
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

/// Reads the events of an earlier attempt of this run. A torn last line (a
/// crash mid-write) is ignored; damage elsewhere is an error.
pub fn load(path: &Path) -> Result<Vec<Event>, JournalError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(JournalError::Open {
                path: path.into(),
                source,
            });
        }
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut events = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str(line) {
            Ok(e) => events.push(e),
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => {}
            Err(e) => {
                return Err(JournalError::Damaged {
                    path: path.into(),
                    line: i + 1,
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok(events)
}

impl Journal {
    /// Opens (creating) the journal for appending; returns it with the
    /// writer task, which the caller owns and awaits after dropping every
    /// clone of the journal.
    pub fn open(path: &Path) -> Result<(Journal, tokio::task::JoinHandle<()>), JournalError> {
        let open = || -> std::io::Result<std::fs::File> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
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
