//! Alarms on tokio-cron-scheduler: each wake-up is armed as a one-shot job
//! at its instant, and re-armed from the schedule after every firing, so
//! the scheduler's stale-offset DST drift (upstream #107) never applies.
//! Its catch-up firing after a clock jump is harmless: every firing goes
//! through the misfire policy.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use thiserror::Error;
use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use uuid::Uuid;

use super::policy::Wake;
use crate::clock::Clock;

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

pub struct Alarms {
    scheduler: JobScheduler,
    armed: Vec<Uuid>,
    tx: mpsc::UnboundedSender<(DateTime<Utc>, Alarm)>,
    clock: Arc<dyn Clock>,
}

impl Alarms {
    pub async fn start(
        clock: Arc<dyn Clock>,
    ) -> Result<(Alarms, mpsc::UnboundedReceiver<(DateTime<Utc>, Alarm)>), AlarmError> {
        let scheduler = JobScheduler::new().await?;
        scheduler.start().await?;
        let (tx, rx) = mpsc::unbounded_channel();
        Ok((
            Alarms {
                scheduler,
                armed: Vec::new(),
                tx,
                clock,
            },
            rx,
        ))
    }

    /// Arms `alarm` for the instant `at` (by the injected clock).
    pub async fn set(&mut self, at: DateTime<Utc>, alarm: Alarm) -> Result<(), AlarmError> {
        let wait = (at - self.clock.now()).to_std().unwrap_or_default();
        let instant = std::time::Instant::now() + wait;
        let tx = self.tx.clone();
        let job = Job::new_one_shot_at_instant(instant, move |_, _| {
            let _ = tx.send((at, alarm.clone()));
        })?;
        self.armed.push(self.scheduler.add(job).await?);
        Ok(())
    }

    /// Disarms everything (before re-arming from the schedule).
    pub async fn clear(&mut self) {
        for id in self.armed.drain(..) {
            // A job that already fired is gone; that is fine.
            let _ = self.scheduler.remove(&id).await;
        }
    }

    pub async fn shutdown(mut self) {
        self.clear().await;
        let _ = self.scheduler.shutdown().await;
    }
}
