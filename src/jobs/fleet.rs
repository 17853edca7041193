//! Running one piece of work per device, many at once, without ever trying
//! a rejected password on the whole fleet.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::config::Config;
use crate::device::{DeviceLink, KnownHosts, KnownHostsError, Login, Target};

/// The links to every target device, with known_hosts files loaded once.
pub fn links(
    config: &Config,
    targets: &[usize],
    logins: &HashMap<String, Login>,
) -> Result<BTreeMap<usize, DeviceLink>, KnownHostsError> {
    let mut known: HashMap<PathBuf, Arc<KnownHosts>> = HashMap::new();
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
                    target: Target::from_device(d),
                    login: login.clone(),
                    known: kh,
                    gate: None,
                    on_step: None,
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
/// inventory order. Per credential profile one device goes first and alone
/// (the profile's canary when it is a target): if it rejects the login, the
/// other devices of that profile are not tried and get `not_tried(i, why)`.
/// A device whose task ends abnormally gets `not_tried` too: every target
/// has a result.
pub async fn run_fleet<R, W, Fut>(
    config: &Config,
    targets: &[usize],
    concurrency: usize,
    work: W,
    not_tried: impl Fn(usize, String) -> R,
) -> BTreeMap<usize, R>
where
    R: Outcome,
    W: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
{
    let mut by_profile: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for &i in targets {
        by_profile
            .entry(config.devices[i].credentials.as_str())
            .or_default()
            .push(i);
    }
    let mut results = BTreeMap::new();
    let mut rest = Vec::new();
    for (profile, devices) in by_profile {
        let canary = config
            .credentials
            .iter()
            .find(|c| c.name == profile)
            .map(|c| c.canary.as_str());
        let first = devices
            .iter()
            .copied()
            .find(|&i| Some(config.devices[i].name.as_str()) == canary)
            .unwrap_or(devices[0]);
        let r = work(first).await;
        let rejected = r.auth_rejected();
        results.insert(first, r);
        for i in devices.into_iter().filter(|&i| i != first) {
            if rejected {
                let why = format!(
                    "the credentials of profile {profile} were rejected by {}",
                    config.devices[first].name
                );
                results.insert(i, not_tried(i, why));
            } else {
                rest.push(i);
            }
        }
    }
    let limit = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for i in rest {
        let (work, limit) = (work.clone(), limit.clone());
        set.spawn(async move {
            // The semaphore is never closed, so acquiring cannot fail.
            let _permit = limit.acquire_owned().await;
            (i, work(i).await)
        });
    }
    while let Some(done) = set.join_next().await {
        match done {
            Ok((i, r)) => {
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
