//! Alarms: each wake-up is a one-shot tokio-cron-scheduler job at its
//! instant, re-armed from the schedule after every firing, so the
//! scheduler's stale-offset DST drift (upstream #107) never applies. Its
//! catch-up firing after a clock jump is harmless: every firing goes
//! through the misfire policy.
//!
//! The scheduler checks its jobs every 500 ms while it runs, so it runs
//! only in the minute before an alarm. Until then the daemon sleeps on a
//! plain timer, waking once a minute to look at the wall clock (a suspend
//! or a clock step is noticed within a minute).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use thiserror::Error;
use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use super::policy::Wake;
use crate::clock::Clock;

/// The scheduler runs from this long before the first alarm.
const ENGAGE_AHEAD: chrono::Duration = chrono::Duration::seconds(60);
/// Added to every alarm: see [`Alarms::engage`].
const FLOOR_MARGIN: Duration = Duration::from_secs(2);
/// An alarm the running scheduler has not delivered this long after its
/// instant is delivered by the daemon itself.
const WATCHDOG: chrono::Duration = chrono::Duration::seconds(10);
/// The longest sleep without looking at the wall clock.
const MAX_NAP: Duration = Duration::from_secs(60);

#[derive(Debug, Error)]
#[error("scheduler: {0}")]
pub struct AlarmError(String);

impl From<JobSchedulerError> for AlarmError {
    fn from(e: JobSchedulerError) -> Self {
        AlarmError(e.to_string())
    }
}

/// What fires: a wake-up, or a mail retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alarm {
    Wake(Wake),
    MailRetry,
    /// Read the stored secrets: the kernel expires the user's persistent
    /// keyring after three days without use, and windows may be weekly.
    KeepSecrets,
}

type Fired = (DateTime<Utc>, Alarm);

pub struct Alarms {
    pending: Vec<Fired>,
    /// The running scheduler, while an alarm is near.
    engaged: Option<JobScheduler>,
    /// When starting the scheduler last failed (retried a minute later).
    failed: Option<std::time::Instant>,
    tx: mpsc::UnboundedSender<Fired>,
    clock: Arc<dyn Clock>,
}

impl Alarms {
    pub fn new(clock: Arc<dyn Clock>) -> (Alarms, mpsc::UnboundedReceiver<Fired>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Alarms {
                pending: Vec::new(),
                engaged: None,
                failed: None,
                tx,
                clock,
            },
            rx,
        )
    }

    /// Arms `alarm` for the instant `at` (by the injected clock).
    pub fn set(&mut self, at: DateTime<Utc>, alarm: Alarm) {
        self.pending.push((at, alarm));
    }

    /// Disarms everything (before re-arming from the schedule).
    pub async fn clear(&mut self) {
        self.pending.clear();
        if let Some(mut s) = self.engaged.take() {
            let _ = s.shutdown().await;
        }
    }

    /// How long the daemon may sleep before calling [`Alarms::engage_if_due`].
    /// While the scheduler runs, its firings arrive on the channel; the nap
    /// then ends only if an alarm is overdue by `WATCHDOG`.
    pub fn nap(&self) -> Option<Duration> {
        let first = self.pending.iter().map(|(t, _)| *t).min()?;
        if self.engaged.is_some() {
            let until = (first + WATCHDOG - self.clock.now())
                .to_std()
                .unwrap_or_default();
            return Some(until.max(Duration::from_secs(1)));
        }
        let until = (first - ENGAGE_AHEAD - self.clock.now())
            .to_std()
            .unwrap_or_default();
        let backoff = self
            .failed
            .map_or(Duration::ZERO, |t| MAX_NAP.saturating_sub(t.elapsed()));
        Some(until.max(backoff).min(MAX_NAP))
    }

    /// Starts the scheduler with every pending alarm when the first is near.
    pub async fn engage_if_due(&mut self) -> Result<(), AlarmError> {
        if self.engaged.is_some() {
            // Every wait has a bound: an alarm the scheduler did not deliver
            // in time is delivered here.
            let now = self.clock.now();
            let (overdue, rest): (Vec<Fired>, Vec<Fired>) = std::mem::take(&mut self.pending)
                .into_iter()
                .partition(|(t, _)| *t + WATCHDOG <= now);
            self.pending = rest;
            for (at, alarm) in overdue {
                tracing::warn!(?alarm, "the scheduler missed an alarm; delivering it");
                let _ = self.tx.send((at, alarm));
            }
            return Ok(());
        }
        let result = self.engage().await;
        self.failed = result.is_err().then(std::time::Instant::now);
        result
    }

    async fn engage(&mut self) -> Result<(), AlarmError> {
        let now = self.clock.now();
        if self.engaged.is_some() || !self.pending.iter().any(|(t, _)| *t - ENGAGE_AHEAD <= now) {
            return Ok(());
        }
        let scheduler = JobScheduler::new().await?;
        for (at, alarm) in &self.pending {
            // The scheduler truncates the wait to whole seconds and keeps its
            // tick in whole seconds, rounding down twice (up to 2 s early):
            // the margin makes a firing never early, at most ~2.5 s late.
            let wait = (*at - now).to_std().unwrap_or_default() + FLOOR_MARGIN;
            let instant = std::time::Instant::now() + wait;
            let (tx, at, alarm) = (self.tx.clone(), *at, alarm.clone());
            let job = Job::new_one_shot_at_instant(instant, move |_, _| {
                let _ = tx.send((at, alarm.clone()));
            })?;
            scheduler.add(job).await?;
        }
        scheduler.start().await?;
        self.engaged = Some(scheduler);
        Ok(())
    }

    pub async fn shutdown(mut self) {
        self.clear().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::OffsetClock;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn sleeps_on_a_timer_until_an_alarm_is_near_then_fires_on_time() {
        let clock = Arc::new(OffsetClock::at(utc("2026-11-26T01:00:00Z")));
        let (mut alarms, mut fired) = Alarms::new(clock.clone());
        assert_eq!(alarms.nap(), None, "nothing armed: nothing to wake for");
        alarms.set(utc("2026-11-27T01:00:00Z"), Alarm::KeepSecrets);
        // A day away: the scheduler stays down; a look at the clock each minute.
        assert_eq!(alarms.nap(), Some(MAX_NAP));
        alarms.engage_if_due().await.unwrap();
        assert!(alarms.engaged.is_none());
        // Two seconds away: engage now, fire at the instant.
        alarms.set(utc("2026-11-26T01:00:02Z"), Alarm::MailRetry);
        assert_eq!(alarms.nap(), Some(Duration::ZERO));
        alarms.engage_if_due().await.unwrap();
        assert!(alarms.engaged.is_some());
        // Engaged: the nap is only the watchdog's, past the alarm.
        assert!(alarms.nap().unwrap() > Duration::from_secs(10));
        let (at, alarm) = tokio::time::timeout(Duration::from_secs(5), fired.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((at, alarm), (utc("2026-11-26T01:00:02Z"), Alarm::MailRetry));
        assert!(clock.now() >= utc("2026-11-26T01:00:02Z"));
        alarms.clear().await;
        assert!(alarms.engaged.is_none() && alarms.nap().is_none());
    }

    #[tokio::test]
    async fn an_alarm_the_scheduler_misses_is_delivered_by_the_watchdog() {
        let clock = Arc::new(OffsetClock::at(utc("2026-11-26T01:00:00Z")));
        let (mut alarms, mut fired) = Alarms::new(clock.clone());
        alarms.set(utc("2026-11-26T01:00:30Z"), Alarm::KeepSecrets);
        alarms.engage_if_due().await.unwrap();
        // The clock steps past the alarm before the scheduler's instant comes.
        clock.jump(chrono::Duration::seconds(60));
        assert_eq!(alarms.nap(), Some(Duration::from_secs(1)));
        alarms.engage_if_due().await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(1), fired.recv())
            .await
            .unwrap();
        assert_eq!(got, Some((utc("2026-11-26T01:00:30Z"), Alarm::KeepSecrets)));
        alarms.clear().await;
    }
}
