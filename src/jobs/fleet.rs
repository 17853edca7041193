//! Running one piece of work per device, many at once, without ever trying
//! a rejected password on the whole fleet (`nightshift exec`).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::config::Config;
use crate::device::jump::Jumps;
use crate::device::{
    DeviceLink, GateTicket, KnownHosts, KnownHostsError, Login, LoginGate, Target,
};

/// The links to every target device, with known_hosts files loaded once.
pub fn links(
    config: &Config,
    targets: &[usize],
    logins: &HashMap<String, Login>,
) -> Result<BTreeMap<usize, DeviceLink>, KnownHostsError> {
    let mut known: HashMap<PathBuf, Arc<KnownHosts>> = HashMap::new();
    let jumps = Jumps::new(config, logins, &mut known)?;
    let mut out = BTreeMap::new();
    for &i in targets {
        let d = &config.devices[i];
        let kh = match known.get(&d.ssh.known_hosts) {
            Some(k) => k.clone(),
            None => {
                let k = Arc::new(KnownHosts::load(&d.ssh.known_hosts)?);
                known.insert(d.ssh.known_hosts.clone(), k.clone());
                k
            }
        };
        if let Some(login) = logins.get(&d.credentials) {
            out.insert(
                i,
                DeviceLink {
                    target: Target {
                        jump: d.jump.as_deref().and_then(|j| jumps.get(j)),
                        ..Target::from_device(d)
                    },
                    login: login.clone(),
                    known: kh,
                    gate: None,
                    on_step: None,
                    may_change: None,
                },
            );
        }
    }
    Ok(out)
}

/// What a device's work reports back to the runner.
pub trait Outcome: Send + 'static {
    /// The device refused the login (wrong password, locked account).
    fn auth_rejected(&self) -> bool;
}

/// Runs `work` for each target, at most `concurrency` at once, results in
/// inventory order. Each credential profile has a login gate (see
/// [`LoginGate`]): devices connect at once, but send the credentials one at
/// a time until one device has accepted them. `work` gets the device's
/// ticket through the gate and must put it in the link it opens. A device
/// turned away at the gate, or not started because its profile was
/// rejected, gets `not_tried(i, why)`; so does one whose task ends
/// abnormally: every target has a result.
pub async fn run_fleet<R, W, Fut>(
    config: &Config,
    targets: &[usize],
    concurrency: usize,
    work: W,
    not_tried: impl Fn(usize, String) -> R,
) -> BTreeMap<usize, R>
where
    R: Outcome,
    W: Fn(usize, Arc<GateTicket>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
{
    let mut gates: HashMap<&str, Arc<LoginGate>> = HashMap::new();
    let mut results = BTreeMap::new();
    let limit = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for &i in targets {
        let d = &config.devices[i];
        let gate = gates
            .entry(d.credentials.as_str())
            .or_insert_with(|| LoginGate::new(&d.credentials))
            .clone();
        // Never closed, so acquiring cannot fail.
        let Ok(permit) = limit.clone().acquire_owned().await else {
            break;
        };
        if let Some(why) = gate.rejection() {
            results.insert(i, not_tried(i, why));
            continue;
        }
        let (work, name) = (work.clone(), d.name.clone());
        // Enrolled here, in inventory order, not when the task first runs:
        // the first device in order proves the profile.
        let ticket = GateTicket::new(gate.pass(i as u64));
        set.spawn(async move {
            let _permit = permit;
            let r = work(i, ticket).await;
            if r.auth_rejected() {
                gate.reject(&name);
            }
            (i, gate.take_withheld(&name), r)
        });
    }
    while let Some(done) = set.join_next().await {
        match done {
            Ok((i, Some(why), _)) => {
                results.insert(i, not_tried(i, why));
            }
            Ok((i, None, r)) => {
                results.insert(i, r);
            }
            Err(e) => tracing::error!(error = %e, "a device task ended abnormally"),
        }
    }
    for &i in targets {
        results
            .entry(i)
            .or_insert_with(|| not_tried(i, "its task ended abnormally (see the log)".into()));
    }
    results
}
