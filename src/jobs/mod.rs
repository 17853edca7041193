//! Jobs run on devices: ACL push (and, later, POTS line tests), plus the
//! fleet runner that bounds concurrency and protects accounts from
//! lockout.

pub mod acl;
pub mod exec;
pub mod fleet;
pub mod pots;

use std::time::Instant;

use serde::Serialize;

use crate::device::StepSink;

/// How long one step of a device's job took.
#[derive(Debug, Clone, Serialize)]
pub struct StepTime {
    pub step: String,
    pub ms: u64,
}

/// Records step durations as a device's job goes on, and tells the run
/// (its journal) of each step before the job moves on.
pub struct Steps {
    last: Instant,
    pub done: Vec<StepTime>,
    sink: Option<StepSink>,
}

impl Steps {
    pub fn new(sink: Option<StepSink>) -> Steps {
        Steps {
            last: Instant::now(),
            done: Vec::new(),
            sink,
        }
    }

    /// `step` is finished: timed, and journalled before the job goes on.
    pub async fn done(&mut self, step: &'static str) {
        self.time(step);
        self.journal(&[step]).await;
    }

    /// `step` is finished and the job reaches `point` (not a timed step,
    /// such as "applying": the first change is about to be sent) with
    /// nothing done in between: both journalled with one wait for the disk.
    pub async fn done_then(&mut self, step: &'static str, point: &'static str) {
        self.time(step);
        self.journal(&[step, point]).await;
    }

    /// As [`Steps::done_then`], journalling with them what the job found
    /// on the device (see [`crate::engine::Event::Found`]).
    pub async fn done_then_found(
        &mut self,
        step: &'static str,
        point: &'static str,
        found: serde_json::Value,
    ) {
        self.time(step);
        if let Some(sink) = &self.sink {
            sink(&[step, point], Some(found)).await;
        }
    }

    fn time(&mut self, step: &str) {
        let now = Instant::now();
        self.done.push(StepTime {
            step: step.to_string(),
            ms: (now - self.last).as_millis() as u64,
        });
        self.last = now;
    }

    async fn journal(&self, points: &[&'static str]) {
        if let Some(sink) = &self.sink {
            sink(points, None).await;
        }
    }
}
