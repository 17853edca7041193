//! Live progress of a run, for the terminal, the logs and the daemon's
//! status.

use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
struct Inner {
    job: String,
    total: usize,
    done: usize,
    counts: BTreeMap<String, usize>,
}

#[derive(Debug, Default)]
pub struct Progress {
    inner: Mutex<Inner>,
}

impl Progress {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn start_job(&self, job: &str, devices: usize) {
        let mut p = self.lock();
        *p = Inner {
            job: job.into(),
            total: devices,
            ..Inner::default()
        };
    }

    pub fn done(&self, status: &str) {
        let mut p = self.lock();
        p.done += 1;
        *p.counts.entry(status.into()).or_insert(0) += 1;
    }

    /// E.g. `lock-it-down: 120/500 devices (110 changed, 2 failed)`.
    pub fn line(&self) -> String {
        let p = self.lock();
        if p.job.is_empty() {
            return "starting".into();
        }
        let counts: Vec<String> = p.counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
        format!(
            "{}: {}/{} devices ({})",
            p.job,
            p.done,
            p.total,
            counts.join(", ")
        )
    }
}
