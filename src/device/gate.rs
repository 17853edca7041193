//! The login gate: one per credential profile per run. Devices connect and
//! finish their key exchange in parallel, but send the profile's
//! credentials one device at a time until one device has accepted them
//! (the profile is proven); after that, all at once. A rejection closes the
//! gate: no device waiting at it, or arriving later, sends those
//! credentials. So a mistyped password costs one failed login, not one per
//! device in the first wave, and the wave's TCP and key exchanges overlap
//! the proving login instead of following it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

/// What a run knows of a credential profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// No device has accepted or refused the credentials yet, and none is
    /// trying them.
    Unproven,
    /// This device is trying them; the others wait.
    Trying(String),
    /// A device accepted them (log-in and enable).
    Proven,
    /// This device refused them.
    Rejected(String),
}

pub struct LoginGate {
    profile: String,
    state: watch::Sender<Proof>,
    /// Devices that were turned away without sending credentials → why.
    withheld: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for LoginGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginGate")
            .field("profile", &self.profile)
            .field("proof", &*self.state.borrow())
            .finish()
    }
}

/// Held by the one device trying an unproven profile. Settle it with the
/// outcome of the login; dropped unsettled (the login proved nothing: the
/// device hung, dropped the connection, timed out), the next waiting device
/// tries instead.
#[derive(Debug)]
pub struct Prover {
    gate: Arc<LoginGate>,
    device: String,
    settled: bool,
}

impl Prover {
    pub fn accepted(mut self) {
        self.settled = true;
        self.gate.state.send_replace(Proof::Proven);
    }

    pub fn rejected(mut self) {
        self.settled = true;
        self.gate.reject(&self.device);
    }
}

impl Drop for Prover {
    fn drop(&mut self) {
        if !self.settled {
            let device = &self.device;
            self.gate.state.send_if_modified(|p| {
                let mine = matches!(p, Proof::Trying(d) if d == device);
                if mine {
                    *p = Proof::Unproven;
                }
                mine
            });
        }
    }
}

/// A device's pass through the gate for one job: taken by its first
/// login; a reconnect within the job finds it gone and does not wait.
#[derive(Debug)]
pub struct GateTicket(Mutex<Option<Arc<LoginGate>>>);

impl GateTicket {
    pub fn new(gate: Arc<LoginGate>) -> Arc<GateTicket> {
        Arc::new(GateTicket(Mutex::new(Some(gate))))
    }

    pub fn take(&self) -> Option<Arc<LoginGate>> {
        lock(&self.0).take()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl LoginGate {
    pub fn new(profile: &str) -> Arc<LoginGate> {
        Arc::new(LoginGate {
            profile: profile.into(),
            state: watch::Sender::new(Proof::Unproven),
            withheld: Mutex::new(HashMap::new()),
        })
    }

    pub fn proof(&self) -> Proof {
        self.state.borrow().clone()
    }

    /// A device refused the credentials (the first to, or one after they
    /// were proven): nobody sends them again in this run.
    pub fn reject(&self, device: &str) {
        self.state.send_if_modified(|p| {
            if matches!(p, Proof::Rejected(_)) {
                return false;
            }
            *p = Proof::Rejected(device.into());
            true
        });
    }

    /// Why this device was turned away without sending credentials, if it
    /// was (told once: a later job of the run asks afresh).
    pub fn take_withheld(&self, device: &str) -> Option<String> {
        lock(&self.withheld).remove(device)
    }

    fn withhold(&self, device: &str, why: String) -> String {
        lock(&self.withheld).insert(device.into(), why.clone());
        why
    }

    /// Waits until this device may send the credentials: `Ok(None)` once
    /// they are proven, `Ok(Some(prover))` when it is this device's turn to
    /// prove them, `Err(why)` when it must not send them (rejected, or not
    /// proven within `patience` of the current attempt; each new attempt
    /// starts the wait again).
    pub async fn enter(
        self: &Arc<Self>,
        device: &str,
        patience: Duration,
    ) -> Result<Option<Prover>, String> {
        let mut seen = self.state.subscribe();
        loop {
            let mine = self.state.send_if_modified(|p| {
                let free = *p == Proof::Unproven;
                if free {
                    *p = Proof::Trying(device.into());
                }
                free
            });
            if mine {
                return Ok(Some(Prover {
                    gate: self.clone(),
                    device: device.into(),
                    settled: false,
                }));
            }
            let now = seen.borrow_and_update().clone();
            match now {
                Proof::Proven => return Ok(None),
                Proof::Unproven => continue,
                Proof::Rejected(by) => {
                    return Err(self.withhold(
                        device,
                        format!(
                            "the credentials of profile {} were rejected by {by}; no login was tried",
                            self.profile
                        ),
                    ));
                }
                Proof::Trying(by) => match tokio::time::timeout(patience, seen.changed()).await {
                    Ok(Ok(())) => continue,
                    // The sender lives in `self`: not reached.
                    Ok(Err(_)) => {
                        return Err(self.withhold(device, "the run ended".into()));
                    }
                    Err(_) => {
                        return Err(self.withhold(
                            device,
                            format!(
                                "the credentials of profile {} were not proven within {}: the login to {by} that tries them first has not ended; no login was tried",
                                self.profile,
                                humantime::format_duration(patience)
                            ),
                        ));
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATIENCE: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn one_device_proves_then_all_pass() {
        let gate = LoginGate::new("ops");
        let Ok(Some(prover)) = gate.enter("a", PATIENCE).await else {
            panic!("the first device proves");
        };
        let g = gate.clone();
        let waiter = tokio::spawn(async move { g.enter("b", PATIENCE).await.map(|p| p.is_none()) });
        tokio::task::yield_now().await;
        assert_eq!(gate.proof(), Proof::Trying("a".into()));
        prover.accepted();
        assert_eq!(waiter.await.unwrap(), Ok(true));
        assert!(matches!(gate.enter("c", PATIENCE).await, Ok(None)));
    }

    #[tokio::test]
    async fn a_rejection_turns_every_waiter_away() {
        let gate = LoginGate::new("ops");
        let Ok(Some(prover)) = gate.enter("a", PATIENCE).await else {
            panic!("the first device proves");
        };
        let g = gate.clone();
        let waiter = tokio::spawn(async move { g.enter("b", PATIENCE).await.is_err() });
        tokio::task::yield_now().await;
        prover.rejected();
        assert!(waiter.await.unwrap());
        assert!(gate.take_withheld("b").unwrap().contains("rejected by a"));
        assert!(gate.enter("c", PATIENCE).await.is_err());
        assert_eq!(gate.take_withheld("a"), None);
    }

    #[tokio::test]
    async fn an_attempt_that_proves_nothing_hands_over_to_one_waiter() {
        let gate = LoginGate::new("ops");
        let Ok(Some(prover)) = gate.enter("a", PATIENCE).await else {
            panic!("the first device proves");
        };
        let (g1, g2) = (gate.clone(), gate.clone());
        let mut b = tokio::spawn(async move { g1.enter("b", PATIENCE).await });
        let mut c = tokio::spawn(async move { g2.enter("c", PATIENCE).await });
        tokio::task::yield_now().await;
        drop(prover);
        // Exactly one of the waiters takes over; the other still waits.
        let (who, result, other) = tokio::select! {
            r = &mut b => ("b", r.unwrap(), c),
            r = &mut c => ("c", r.unwrap(), b),
        };
        let Ok(Some(prover)) = result else {
            panic!("a waiter takes over");
        };
        assert_eq!(gate.proof(), Proof::Trying(who.into()));
        tokio::task::yield_now().await;
        assert!(!other.is_finished());
        prover.accepted();
        assert!(matches!(other.await.unwrap(), Ok(None)));
    }

    #[tokio::test]
    async fn a_waiter_gives_up_after_its_patience() {
        let gate = LoginGate::new("ops");
        let _prover = gate.enter("a", PATIENCE).await.unwrap();
        let err = gate
            .enter("b", Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(err.contains("not proven within 50ms"), "{err}");
        assert_eq!(gate.take_withheld("b"), Some(err));
    }
}
