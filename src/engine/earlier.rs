//! What earlier attempts of a run left in its journal: when the run
//! started and its deadline, the devices they finished, and the ones they
//! were working on when they died, with what the first of them found on
//! each (so that a failure now puts *that* back).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::DeviceRecord;
use super::journal::Event;

/// (job, device)
pub(super) type Key = (String, String);

pub(super) struct Earlier {
    /// The journal holds the run's plan (an attempt that crashed while
    /// writing its very first record left none).
    pub has_start: bool,
    pub deadline: Option<DateTime<Utc>>,
    pub started: Option<DateTime<Utc>>,
    pub finished: HashMap<Key, DeviceRecord>,
    /// Started and not finished, with the first attempt's find.
    pub in_flight: HashMap<Key, Option<serde_json::Value>>,
}

impl Earlier {
    pub(super) fn replay(events: &[Event]) -> Earlier {
        let mut e = Earlier {
            has_start: false,
            deadline: None,
            started: None,
            finished: HashMap::new(),
            in_flight: HashMap::new(),
        };
        for event in events {
            match event {
                Event::RunStarted { deadline, at, .. } => {
                    e.has_start = true;
                    e.deadline = *deadline;
                    e.started = Some(*at);
                }
                Event::Started { job, device, .. } => {
                    e.in_flight
                        .entry((job.clone(), device.clone()))
                        .or_default();
                }
                // The first attempt's find: a later attempt found what the
                // crash left.
                Event::Found { job, device, found } => {
                    let slot = e
                        .in_flight
                        .entry((job.clone(), device.clone()))
                        .or_default();
                    if slot.is_none() {
                        *slot = Some(found.clone());
                    }
                }
                Event::Finished {
                    job,
                    device,
                    record,
                } => {
                    e.finished
                        .insert((job.clone(), device.clone()), record.clone());
                }
                Event::Step { .. } | Event::RunFinished { .. } => {}
            }
        }
        e
    }
}
