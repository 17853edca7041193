//! Jobs run on devices: ACL push (and, later, POTS line tests), plus the
//! fleet runner that bounds concurrency and protects accounts from
//! lockout.

pub mod acl;
pub mod exec;
pub mod fleet;
pub mod pots;

use std::time::Instant;

use serde::Serialize;

/// How long one step of a device's job took.
#[derive(Debug, Clone, Serialize)]
pub struct StepTime {
    pub step: String,
    pub ms: u64,
}

/// Records step durations as a device's job goes on.
#[derive(Debug)]
pub struct Steps {
    last: Instant,
    pub done: Vec<StepTime>,
}

impl Default for Steps {
    fn default() -> Self {
        Steps {
            last: Instant::now(),
            done: Vec::new(),
        }
    }
}

impl Steps {
    pub fn done(&mut self, step: &str) {
        let now = Instant::now();
        self.done.push(StepTime {
            step: step.to_string(),
            ms: (now - self.last).as_millis() as u64,
        });
        self.last = now;
    }
}
