//! Paces SSH key exchanges by this process's own load.
//!
//! A key exchange is the CPU-heavy part of a session (x25519 or DH, the
//! host key's signature). A fleet run starts hundreds of them within a few
//! milliseconds: when its first wave opens, and again whenever a wave of
//! devices ends together. Run all at once, they keep every worker busy and
//! the sessions already in flight wait behind them for their next packet,
//! with their command timeouts running.
//!
//! The pacer lets a bounded number of key exchanges run at once and adapts
//! the bound to the runtime's scheduling lag (additive increase,
//! multiplicative decrease): a probe sleeps in short periods and measures
//! how late it wakes. While wake-ups are late, each period halves the bound
//! (never below [`FLOOR`]); while they are on time, each key exchange that
//! ends raises it by one, so over a network, where a key exchange is mostly
//! round trips and the CPU idles, the bound doubles every key exchange time
//! and never holds a fleet back. A key exchange that takes longer than
//! [`HOLD`] gives its place back: it is waiting on the network (a slow old
//! box), not using this process's CPU. Waiting for a place is bounded too:
//! pacing only ever delays a login, it never fails one.

use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Key exchanges allowed at once, however loaded the process.
pub const FLOOR: usize = 16;
/// A key exchange holds its place at most this long.
pub const HOLD: Duration = Duration::from_millis(250);
/// How often the probe measures the scheduling lag.
const PERIOD: Duration = Duration::from_millis(5);
/// A wake-up this late means the workers are saturated. Tokio's timer
/// rounds up to the next millisecond, so an idle process measures ~1 ms.
const LAGGING: Duration = Duration::from_millis(4);
/// A wake-up at most this late means the workers have room.
const CALM: Duration = Duration::from_millis(2);

/// Shared by every device of a fleet (cheap to clone).
#[derive(Clone, Default)]
pub struct Pacer {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    freed: Notify,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            state: Mutex::new(State {
                limit: FLOOR,
                running: 0,
                waiting: 0,
                calm: true,
                probe: None,
            }),
            freed: Notify::new(),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let probe = self
            .state
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .probe
            .take();
        if let Some(probe) = probe {
            probe.abort();
        }
    }
}

struct State {
    limit: usize,
    running: usize,
    waiting: usize,
    /// The last probe's verdict: wake-ups on time.
    calm: bool,
    /// Runs while key exchanges run or wait; the pacer owns it and aborts
    /// it when dropped.
    probe: Option<JoinHandle<()>>,
}

/// A place among the key exchanges running at once; given back on drop.
pub struct Place {
    pacer: Pacer,
}

impl Drop for Place {
    fn drop(&mut self) {
        let grew = {
            let mut st = self.pacer.state();
            st.running -= 1;
            // Growing past what is in use would only slow the next cut.
            let grow = st.calm && st.limit < st.running + st.waiting + FLOOR;
            if grow {
                st.limit += 1;
            }
            grow
        };
        // One waiter per place that opened (waking them all would cost a
        // thousand polls per key exchange).
        self.pacer.inner.freed.notify_one();
        if grew {
            self.pacer.inner.freed.notify_one();
        }
    }
}

impl Pacer {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Key exchanges allowed at once now.
    pub fn limit(&self) -> usize {
        self.state().limit
    }

    /// Waits for a place, at most `patience` (then goes without one: pacing
    /// delays a login, it never fails one).
    pub async fn admit(&self, patience: Duration) -> Option<Place> {
        let deadline = Instant::now() + patience;
        let mut counted = false;
        loop {
            let freed = self.inner.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut st = self.state();
                if st.running < st.limit {
                    st.running += 1;
                    if counted {
                        st.waiting -= 1;
                    }
                    self.ensure_probe(&mut st);
                    return Some(Place {
                        pacer: self.clone(),
                    });
                }
                if !counted {
                    st.waiting += 1;
                    counted = true;
                    self.ensure_probe(&mut st);
                }
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                self.state().waiting -= 1;
                return None;
            }
        }
    }

    /// Runs `kex` in a place: from [`Pacer::admit`] until `kex` ends or
    /// [`HOLD`] has passed.
    pub async fn run<F: Future>(place: Option<Place>, kex: F) -> F::Output {
        let mut kex = std::pin::pin!(kex);
        let Some(place) = place else {
            return kex.await;
        };
        tokio::select! {
            out = &mut kex => out,
            () = tokio::time::sleep(HOLD) => {
                drop(place);
                kex.await
            }
        }
    }

    /// One probe reading: how late a wake-up was.
    pub fn observe(&self, lateness: Duration) {
        let mut st = self.state();
        if lateness >= LAGGING {
            st.limit = (st.limit / 2).max(FLOOR);
        }
        st.calm = lateness <= CALM;
    }

    fn ensure_probe(&self, st: &mut State) {
        if st.probe.as_ref().is_some_and(|p| !p.is_finished()) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        st.probe = Some(tokio::spawn(probe(weak)));
    }
}

/// Measures the lag while key exchanges run or wait; ends when none do (the
/// next admission starts it again) or when the pacer is dropped.
async fn probe(pacer: Weak<Inner>) {
    loop {
        let due = Instant::now() + PERIOD;
        tokio::time::sleep_until(due).await;
        let lateness = Instant::now().saturating_duration_since(due);
        let Some(inner) = pacer.upgrade() else {
            return;
        };
        let pacer = Pacer { inner };
        pacer.observe(lateness);
        let mut st = pacer.state();
        if st.running == 0 && st.waiting == 0 {
            st.probe = None;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_floor_runs_at_once_and_the_next_waits_for_a_place() {
        let pacer = Pacer::default();
        let mut places = Vec::new();
        for _ in 0..FLOOR {
            places.push(pacer.admit(Duration::from_secs(10)).await.expect("a place"));
        }
        let waiter = {
            let pacer = pacer.clone();
            tokio::spawn(async move { pacer.admit(Duration::from_secs(10)).await.is_some() })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiter.is_finished(), "a seventeenth key exchange ran");
        places.pop();
        assert!(waiter.await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_for_a_place_is_bounded_and_then_goes_unpaced() {
        let pacer = Pacer::default();
        let mut places = Vec::new();
        for _ in 0..FLOOR {
            places.push(pacer.admit(Duration::from_secs(10)).await.expect("a place"));
        }
        let t = Instant::now();
        assert!(pacer.admit(Duration::from_secs(3)).await.is_none());
        assert_eq!(t.elapsed(), Duration::from_secs(3));
        assert_eq!(pacer.state().waiting, 0);
    }

    /// Over a network a key exchange is mostly waiting: the process stays
    /// calm and the pacer must not hold a fleet back.
    #[tokio::test(start_paused = true)]
    async fn network_bound_key_exchanges_are_not_held_back() {
        let pacer = Pacer::default();
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let t = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..1000 {
            let (pacer, running, most) = (pacer.clone(), running.clone(), most.clone());
            set.spawn(async move {
                let place = pacer.admit(Duration::from_secs(60)).await;
                assert!(place.is_some(), "a key exchange went unpaced");
                Pacer::run(place, async {
                    let n = running.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    most.fetch_max(n, std::sync::atomic::Ordering::SeqCst);
                    // A 200 ms round-trip-bound key exchange.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                })
                .await;
            });
        }
        while set.join_next().await.is_some() {}
        // At the floor alone this would take 1000 / 16 x 200 ms = 12.5 s.
        let took = t.elapsed();
        assert!(took < Duration::from_secs(2), "took {took:?}");
        let most = most.load(std::sync::atomic::Ordering::SeqCst);
        assert!(most >= 400, "at most {most} key exchanges at once");
    }

    #[tokio::test(start_paused = true)]
    async fn lag_halves_the_limit_down_to_the_floor_and_calm_stops_the_cuts() {
        let pacer = Pacer::default();
        pacer.state().limit = 200;
        pacer.observe(Duration::from_millis(2));
        assert_eq!(pacer.limit(), 200);
        pacer.observe(Duration::from_millis(9));
        assert_eq!(pacer.limit(), 100);
        pacer.observe(Duration::from_millis(30));
        assert_eq!(pacer.limit(), 50);
        for _ in 0..10 {
            pacer.observe(Duration::from_millis(30));
        }
        assert_eq!(pacer.limit(), FLOOR);
        let mut places = Vec::new();
        for _ in 0..FLOOR {
            places.push(pacer.admit(Duration::from_secs(1)).await);
        }
        // While lagging, ending key exchanges do not raise it again ...
        places.pop();
        assert_eq!(pacer.limit(), FLOOR);
        // ... once calm, each one raises it by one.
        pacer.observe(Duration::from_millis(1));
        places.pop();
        places.pop();
        assert_eq!(pacer.limit(), FLOOR + 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_exchange_that_outlasts_the_hold_gives_its_place_back() {
        let pacer = Pacer::default();
        let mut stuck = Vec::new();
        for _ in 0..FLOOR {
            let place = pacer.admit(Duration::from_secs(10)).await;
            // A device that never answers its key exchange.
            stuck.push(tokio::spawn(Pacer::run(
                place,
                std::future::pending::<()>(),
            )));
        }
        let t = Instant::now();
        assert!(pacer.admit(Duration::from_secs(10)).await.is_some());
        assert_eq!(t.elapsed(), HOLD);
        for s in stuck {
            s.abort();
        }
    }

    /// The probe reads real scheduling lag: a worker blocked for 30 ms makes
    /// its next wake-up that late, and the limit is cut.
    #[tokio::test(flavor = "current_thread")]
    async fn the_probe_cuts_the_limit_when_the_workers_are_saturated() {
        let pacer = Pacer::default();
        pacer.state().limit = 256;
        let place = pacer.admit(Duration::from_secs(1)).await;
        assert!(place.is_some());
        // Let the probe arm its first period, then hog the only worker.
        tokio::time::sleep(Duration::from_millis(1)).await;
        let hog = std::time::Instant::now();
        while hog.elapsed() < Duration::from_millis(30) {
            std::hint::spin_loop();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(pacer.limit() <= 128, "limit {}", pacer.limit());
        drop(place);
    }
}
