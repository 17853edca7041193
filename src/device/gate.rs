//! The login gate: one per credential profile per run. Devices connect and
//! finish their key exchange in parallel, but send the profile's
//! credentials one device at a time until one device has accepted them
//! (the profile is proven); after that, all at once. A rejection closes the
//! gate: no device waiting at it, or arriving later, sends those
//! credentials. So a mistyped password costs one failed login, not one per
//! device in the first wave, and the wave's TCP and key exchanges overlap
//! the proving login instead of following it.
//!
//! Which device proves is not a race: of the devices enrolled at the gate
//! (started, and not yet past it or failed before it), the first in
//! inventory order does. When it fails before proving anything (down, hung,
//! timed out), the next one does.

use std::collections::{BTreeSet, HashMap};
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

#[derive(Debug)]
struct State {
    proof: Proof,
    /// Inventory positions of the devices that may still prove.
    enrolled: BTreeSet<u64>,
}

pub struct LoginGate {
    profile: String,
    state: watch::Sender<State>,
    /// Devices that were turned away without sending credentials → why.
    withheld: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for LoginGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginGate")
            .field("profile", &self.profile)
            .field("proof", &self.proof())
            .finish()
    }
}

/// A device's place at the gate, from its start until it is past the gate
/// (or has failed before reaching it: dropping the pass gives up the place).
#[derive(Debug)]
pub struct GatePass {
    gate: Arc<LoginGate>,
    order: u64,
}

impl Drop for GatePass {
    fn drop(&mut self) {
        let order = self.order;
        // Waiters care only about who is first.
        self.gate.state.send_if_modified(|s| {
            let was_first = s.enrolled.first() == Some(&order);
            s.enrolled.remove(&order);
            was_first
        });
    }
}

/// Held by the one device trying an unproven profile. Settle it with the
/// outcome of the login; dropped unsettled (the login proved nothing: the
/// device hung, dropped the connection, timed out), the next device tries
/// instead.
#[derive(Debug)]
pub struct Prover {
    gate: Arc<LoginGate>,
    device: String,
    settled: bool,
}

impl Prover {
    pub fn accepted(mut self) {
        self.settled = true;
        self.gate.state.send_modify(|s| s.proof = Proof::Proven);
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
            self.gate.state.send_if_modified(|s| {
                let mine = matches!(&s.proof, Proof::Trying(d) if d == device);
                if mine {
                    s.proof = Proof::Unproven;
                }
                mine
            });
        }
    }
}

/// A device's pass for one job: taken by its first login; a reconnect
/// within the job finds it gone and does not wait. Dropped unused, it gives
/// up the device's place.
#[derive(Debug)]
pub struct GateTicket(Mutex<Option<GatePass>>);

impl GateTicket {
    pub fn new(pass: GatePass) -> Arc<GateTicket> {
        Arc::new(GateTicket(Mutex::new(Some(pass))))
    }

    pub fn take(&self) -> Option<GatePass> {
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
            state: watch::Sender::new(State {
                proof: Proof::Unproven,
                enrolled: BTreeSet::new(),
            }),
            withheld: Mutex::new(HashMap::new()),
        })
    }

    /// Enrols a device that is starting, at its inventory position.
    pub fn pass(self: &Arc<Self>, order: u64) -> GatePass {
        // Waiters are woken only when the first place changes hands.
        self.state.send_if_modified(|s| {
            s.enrolled.insert(order);
            s.enrolled.first() == Some(&order)
        });
        GatePass {
            gate: self.clone(),
            order,
        }
    }

    pub fn proof(&self) -> Proof {
        self.state.borrow().proof.clone()
    }

    /// Why no device of this profile may send its credentials any more, if
    /// one refused them.
    pub fn rejection(&self) -> Option<String> {
        match &self.state.borrow().proof {
            Proof::Rejected(by) => Some(format!(
                "the credentials of profile {} were rejected by {by}",
                self.profile
            )),
            _ => None,
        }
    }

    /// A device refused the credentials (the first to, or one after they
    /// were proven): nobody sends them again in this run.
    pub fn reject(&self, device: &str) {
        self.state.send_if_modified(|s| {
            if matches!(s.proof, Proof::Rejected(_)) {
                return false;
            }
            s.proof = Proof::Rejected(device.into());
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
    /// proven within `patience` of the last change at the gate).
    pub async fn enter(
        pass: GatePass,
        device: &str,
        patience: Duration,
    ) -> Result<Option<Prover>, String> {
        let gate = pass.gate.clone();
        let mut seen = gate.state.subscribe();
        loop {
            let order = pass.order;
            let mine = gate.state.send_if_modified(|s| {
                let turn = s.proof == Proof::Unproven && s.enrolled.first() == Some(&order);
                if turn {
                    s.proof = Proof::Trying(device.into());
                }
                turn
            });
            if mine {
                drop(pass);
                return Ok(Some(Prover {
                    gate,
                    device: device.into(),
                    settled: false,
                }));
            }
            let (proof, first) = {
                let s = seen.borrow_and_update();
                (s.proof.clone(), s.enrolled.first().copied())
            };
            let waiting_for = match proof {
                Proof::Proven => return Ok(None),
                Proof::Rejected(_) => {
                    let why = gate.rejection().unwrap_or_default();
                    return Err(gate.withhold(device, format!("{why}; no login was tried")));
                }
                Proof::Trying(by) => format!("the login to {by} that tries them first"),
                Proof::Unproven if first == Some(order) => continue,
                Proof::Unproven => "an earlier device's connection".to_string(),
            };
            match tokio::time::timeout(patience, seen.changed()).await {
                Ok(Ok(())) => {}
                // The sender lives in the gate, which `pass` holds.
                Ok(Err(_)) => return Err(gate.withhold(device, "the run ended".into())),
                Err(_) => {
                    return Err(gate.withhold(
                        device,
                        format!(
                            "the credentials of profile {} were not proven within {}: {waiting_for} has not ended; no login was tried",
                            gate.profile,
                            humantime::format_duration(patience)
                        ),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATIENCE: Duration = Duration::from_secs(5);

    async fn prover(gate: &Arc<LoginGate>, order: u64, device: &str) -> Prover {
        match LoginGate::enter(gate.pass(order), device, PATIENCE).await {
            Ok(Some(p)) => p,
            other => panic!("{device} proves: {other:?}"),
        }
    }

    #[tokio::test]
    async fn one_device_proves_then_all_pass() {
        let gate = LoginGate::new("ops");
        let p = prover(&gate, 1, "a").await;
        let pass = gate.pass(2);
        let waiter = tokio::spawn(async move {
            LoginGate::enter(pass, "b", PATIENCE)
                .await
                .map(|p| p.is_none())
        });
        tokio::task::yield_now().await;
        assert_eq!(gate.proof(), Proof::Trying("a".into()));
        p.accepted();
        assert_eq!(waiter.await.unwrap(), Ok(true));
        assert!(matches!(
            LoginGate::enter(gate.pass(3), "c", PATIENCE).await,
            Ok(None)
        ));
    }

    #[tokio::test]
    async fn the_first_device_in_inventory_order_proves_not_the_first_to_arrive() {
        let gate = LoginGate::new("ops");
        let first = gate.pass(1);
        let second = gate.pass(2);
        let late = tokio::spawn(async move { LoginGate::enter(second, "b", PATIENCE).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!late.is_finished(), "b waits for a, still connecting");
        let p = match LoginGate::enter(first, "a", PATIENCE).await {
            Ok(Some(p)) => p,
            other => panic!("a proves: {other:?}"),
        };
        p.accepted();
        assert!(matches!(late.await.unwrap(), Ok(None)));
    }

    #[tokio::test]
    async fn a_device_that_fails_before_the_gate_gives_up_its_turn() {
        let gate = LoginGate::new("ops");
        let down = gate.pass(1);
        let pass = gate.pass(2);
        let next = tokio::spawn(async move { LoginGate::enter(pass, "b", PATIENCE).await });
        tokio::task::yield_now().await;
        drop(down); // its connection was refused
        let Ok(Some(p)) = next.await.unwrap() else {
            panic!("b proves instead");
        };
        assert_eq!(gate.proof(), Proof::Trying("b".into()));
        drop(p);
        assert_eq!(gate.proof(), Proof::Unproven);
    }

    #[tokio::test]
    async fn a_rejection_turns_every_waiter_away() {
        let gate = LoginGate::new("ops");
        let p = prover(&gate, 1, "a").await;
        let pass = gate.pass(2);
        let waiter =
            tokio::spawn(async move { LoginGate::enter(pass, "b", PATIENCE).await.is_err() });
        tokio::task::yield_now().await;
        p.rejected();
        assert!(waiter.await.unwrap());
        assert!(gate.take_withheld("b").unwrap().contains("rejected by a"));
        assert!(LoginGate::enter(gate.pass(3), "c", PATIENCE).await.is_err());
        assert_eq!(gate.take_withheld("a"), None);
    }

    #[tokio::test]
    async fn an_attempt_that_proves_nothing_hands_over_to_the_next_in_order() {
        let gate = LoginGate::new("ops");
        let p = prover(&gate, 1, "a").await;
        let (pass_c, pass_b) = (gate.pass(3), gate.pass(2));
        let c = tokio::spawn(async move { LoginGate::enter(pass_c, "c", PATIENCE).await });
        let b = tokio::spawn(async move { LoginGate::enter(pass_b, "b", PATIENCE).await });
        tokio::task::yield_now().await;
        drop(p);
        let Ok(Some(p)) = b.await.unwrap() else {
            panic!("b, next in order, takes over");
        };
        assert_eq!(gate.proof(), Proof::Trying("b".into()));
        tokio::task::yield_now().await;
        assert!(!c.is_finished());
        p.accepted();
        assert!(matches!(c.await.unwrap(), Ok(None)));
    }

    #[tokio::test]
    async fn a_waiter_gives_up_after_its_patience() {
        let gate = LoginGate::new("ops");
        let _p = prover(&gate, 1, "a").await;
        let err = LoginGate::enter(gate.pass(2), "b", Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(err.contains("not proven within 50ms"), "{err}");
        assert!(err.contains("the login to a"), "{err}");
        assert_eq!(gate.take_withheld("b"), Some(err));
    }
}
