//! Live progress of a run, for the terminal, the logs and the daemon's
//! status.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

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

    /// The job running, its devices finished and its devices in all.
    pub fn snapshot(&self) -> (String, usize, usize) {
        let p = self.lock();
        (p.job.clone(), p.done, p.total)
    }

    /// E.g. `lock-it-down: 120/500 devices (110 changed, 2 failed)`; before
    /// the first device ends, `lock-it-down: 0/500 devices`.
    pub fn line(&self) -> String {
        let p = self.lock();
        if p.job.is_empty() {
            return "starting".into();
        }
        let head = format!("{}: {}/{} devices", p.job, p.done, p.total);
        if p.counts.is_empty() {
            return head;
        }
        let counts: Vec<String> = p.counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
        format!("{head} ({})", counts.join(", "))
    }
}

/// Until `stop`: the progress line redrawn on the terminal every 250 ms
/// (not when standard error is not one), and in the log every 10 s.
pub async fn show_progress(p: Arc<Progress>, stop: CancellationToken) {
    let tty = std::io::stderr().is_terminal();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut n = 0u32;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        n += 1;
        if tty {
            eprint!("\r\x1b[2K{}", p.line());
        }
        if n.is_multiple_of(40) {
            tracing::info!(progress = %p.line(), "run in progress");
        }
    }
    if tty {
        eprint!("\r\x1b[2K");
    }
}

#[cfg(test)]
mod tests {
    use super::Progress;

    #[test]
    fn the_line_counts_devices_per_status_and_starts_over_for_each_job() {
        let p = Progress::default();
        assert_eq!(p.line(), "starting");
        p.start_job("lock-it-down", 5);
        assert_eq!(p.line(), "lock-it-down: 0/5 devices");
        p.done("changed");
        p.done("failed");
        p.done("changed");
        assert_eq!(p.line(), "lock-it-down: 3/5 devices (2 changed, 1 failed)");
        p.start_job("pots", 2);
        assert_eq!(p.line(), "pots: 0/2 devices");
    }
}
