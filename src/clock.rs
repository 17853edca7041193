//! Time as a parameter: everything that needs "now" takes a [`Clock`], so
//! tests can put the daemon at any instant (a DST change, a window edge)
//! without sleeping.

use chrono::{DateTime, Utc};

/// A source of the current instant.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The machine's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place that reads the wall clock
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that always says the same instant (tests, `next --at`).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// The wall clock moved by an offset that can change while it runs: a
/// daemon under test can be put just before a DST change, or made to jump
/// as after a suspend or an NTP step, while real time still passes.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset: std::sync::Mutex<chrono::Duration>,
}

impl OffsetClock {
    /// A clock that says `at` now.
    pub fn at(at: DateTime<Utc>) -> OffsetClock {
        let c = OffsetClock::default();
        c.set(at);
        c
    }

    /// From now on, the clock says `at` (and runs on from there).
    pub fn set(&self, at: DateTime<Utc>) {
        *self.lock() = at - SystemClock.now();
    }

    /// Moves the clock by `by` (a jump forward or back).
    pub fn jump(&self, by: chrono::Duration) {
        *self.lock() += by;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, chrono::Duration> {
        self.offset
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        SystemClock.now() + *self.lock()
    }
}
