//! The run engine: a window's jobs in order over their devices, with
//! concurrency and per-group caps, tiers, failure and lockout brakes, the
//! window's deadline, a crash-safe journal and live progress.
//!
//! Rules, in the order they are applied to each device:
//! - devices start in inventory order; a lower tier finishes before the next
//!   tier starts; at most `concurrency` at once, and at most `caps[sel]` of
//!   those a selector picks;
//! - a device that failed any job of this run is `skipped` by later jobs;
//! - no device starts after the window closes, or when less of the window is
//!   left than the job's `budget`: `not-started (window closed)`; devices in
//!   flight finish their current step (an ACL change runs to verification
//!   or restore, each bounded by timeouts);
//! - each credential profile is proven by one login, alone, before any
//!   other device of that profile sends it (the others connect meanwhile
//!   and wait at the profile's login gate); after `max_auth_failures`
//!   rejected logins no new device starts (lockout brake);
//! - more failures in a tier than the job's `max_failures` hold the later
//!   tiers (`held`, with the reason);
//! - every transition is journalled before the device moves on; a run
//!   started again with the same run id does not touch finished devices and
//!   re-checks the ones that were in flight (read back and compared before
//!   anything is applied).

mod earlier;
mod interrupted;
pub mod journal;
mod pots;
mod progress;
mod record;
pub mod rollback;
mod work;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use thiserror::Error;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use earlier::Earlier;
pub use interrupted::{RunStart, kind_name, report_from_events, run_started};
pub use journal::{Event, Journal, JournalError, journal_path};
pub use progress::{Progress, show_progress};
pub use record::{DeviceRecord, JobReport, RunPlan, RunReport, history_path};
use work::Work;

use crate::clock::Clock;
use crate::config::{Config, Job, JobKind};
use crate::device::{DeviceLink, GateTicket, LoginGate, Proof};
use crate::jobs::acl::{AclJob, Status, push_acl};
use crate::jobs::exec::run_commands_on;
use crate::jobs::pots::run_pots;

#[derive(Debug, Error)]
pub enum EngineError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("job {job}: {reason}")]
    Job { job: String, reason: String },
}

/// Everything a run needs besides its plan.
pub struct Engine {
    pub config: Arc<Config>,
    pub links: Arc<BTreeMap<usize, DeviceLink>>,
    pub clock: Arc<dyn Clock>,
    /// Cancelled on SIGTERM: no new device starts.
    pub stop: CancellationToken,
    pub progress: Arc<Progress>,
}

/// State shared by the jobs of one run.
struct RunState {
    journal: Journal,
    finished: HashMap<(String, String), DeviceRecord>,
    /// Started by an earlier attempt that died before they finished.
    /// With what the first attempt that began changing them found on them
    /// (see [`Event::Found`]), if it got that far.
    in_flight: HashMap<earlier::Key, Option<serde_json::Value>>,
    /// Device index → why it is out of this run.
    failed: Mutex<HashMap<usize, String>>,
    rejections: AtomicU32,
    /// Credential profile → its login gate for this run.
    gates: Mutex<HashMap<String, Arc<LoginGate>>>,
    deadline: Option<DateTime<Utc>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Engine {
    pub async fn run(&self, plan: &RunPlan) -> Result<RunReport, EngineError> {
        let plan = &self.resolved(plan);
        let path = journal_path(&self.config.daemon.state_dir, &plan.run_id);
        let loaded = journal::load(&path)?;
        let journal_damage = loaded.notes(&path);
        for note in &journal_damage {
            tracing::warn!(run_id = %plan.run_id, "{note}");
        }
        let earlier = Earlier::replay(&loaded.events);
        let resumed = !loaded.events.is_empty() || !journal_damage.is_empty();
        let has_start = earlier.has_start;
        let deadline = if has_start {
            earlier.deadline
        } else {
            plan.deadline
        };
        let started = earlier.started.unwrap_or_else(|| self.clock.now());
        let (mut finished, mut in_flight) = (earlier.finished, earlier.in_flight);
        let (journal, writer) = Journal::open(&path)?;
        if !has_start {
            let planned = plan
                .jobs
                .iter()
                .filter_map(|j| self.job(plan, j))
                .map(|j| {
                    (
                        j.name.clone(),
                        self.targets(j, plan)
                            .iter()
                            .map(|&i| self.config.devices[i].name.clone())
                            .collect(),
                    )
                })
                .collect();
            journal
                .record(&Event::RunStarted {
                    run_id: plan.run_id.clone(),
                    window: plan.window.clone(),
                    deadline,
                    at: started,
                    planned,
                })
                .await;
        }
        let mut failed = HashMap::new();
        for ((job, device), r) in &finished {
            if r.failed()
                && let Some(i) = self.config.devices.iter().position(|d| &d.name == device)
            {
                failed.insert(i, format!("failed in job {job}"));
            }
        }
        // What a stopped attempt did not begin is still to do; it was not
        // in flight either (nothing was changed).
        let stopped: Vec<(String, String)> = finished
            .iter()
            .filter(|(_, r)| r.stopped)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &stopped {
            finished.remove(k);
            in_flight.remove(k);
        }
        in_flight.retain(|k, _| !finished.contains_key(k));
        let state = Arc::new(RunState {
            journal: journal.clone(),
            finished,
            in_flight,
            failed: Mutex::new(failed),
            rejections: AtomicU32::new(0),
            gates: Mutex::new(HashMap::new()),
            deadline,
        });
        let mut jobs = Vec::new();
        for name in &plan.jobs {
            let Some(job) = self.job(plan, name) else {
                return Err(EngineError::Job {
                    job: name.clone(),
                    reason: "not in the config".into(),
                });
            };
            self.progress.start_job(name, self.targets(job, plan).len());
            let report = match &job.kind {
                JobKind::Pots { lines, guard_time } => {
                    self.pots_job(job, plan, &state, lines, *guard_time).await
                }
                _ => self.device_job(job, plan, &state).await?,
            };
            jobs.push(report);
        }
        journal
            .record(&Event::RunFinished {
                at: self.clock.now(),
            })
            .await;
        drop(state);
        drop(journal);
        let _ = writer.await;
        Ok(RunReport {
            run_id: plan.run_id.clone(),
            window: plan.window.clone(),
            started,
            finished: self.clock.now(),
            deadline,
            resumed,
            interrupted: None,
            journal_damage,
            stopped: self.stop.is_cancelled(),
            jobs,
        })
    }

    /// The plan with its rollback jobs resolved from the history.
    fn resolved(&self, plan: &RunPlan) -> RunPlan {
        rollback::resolve_plan(&self.config, plan)
    }

    /// A job of the run: the config's, or one the plan adds.
    fn job<'a>(&'a self, plan: &'a RunPlan, name: &str) -> Option<&'a Job> {
        plan.extra_jobs
            .iter()
            .find(|j| j.name == name)
            .or_else(|| self.config.job(name))
    }

    fn targets(&self, job: &Job, plan: &RunPlan) -> Vec<usize> {
        let rollback = plan.rollbacks.get(&job.name);
        job.targets
            .iter()
            .copied()
            .filter(|i| plan.only.as_ref().is_none_or(|o| o.contains(i)))
            .filter(|&i| {
                rollback.is_none_or(|r| {
                    let name = &self.config.devices[i].name;
                    r.devices.contains_key(name) || r.refused.contains_key(name)
                })
            })
            .collect()
    }

    /// Why a device may not start now, if it may not.
    fn refusal(&self, job: &Job, state: &RunState) -> Option<(&'static str, String)> {
        let now = self.clock.now();
        match run_end(&self.stop, state.deadline, now) {
            Some(RunEnd::Stopped) => {
                return Some((
                    "not-started",
                    format!("{STOPPED} before this device started"),
                ));
            }
            Some(RunEnd::Closed(at)) => {
                return Some((
                    "not-started",
                    format!("window closed at {}", at.format("%H:%M UTC")),
                ));
            }
            None => {}
        }
        if let Some(deadline) = state.deadline {
            let budget = chrono::Duration::from_std(job.budget).unwrap_or(chrono::Duration::zero());
            if now + budget > deadline {
                return Some((
                    "not-started",
                    format!(
                        "window closed: it closes at {}, too soon for this job's budget of {}",
                        deadline.format("%H:%M:%S UTC"),
                        humantime::format_duration(job.budget)
                    ),
                ));
            }
        }
        let max = self.config.daemon.max_auth_failures;
        let n = state.rejections.load(Ordering::SeqCst);
        if n >= max {
            return Some((
                "not-started",
                format!(
                    "lockout brake: {n} login(s) rejected in this run (max_auth_failures = {max}); no new device is started"
                ),
            ));
        }
        None
    }

    async fn finish(&self, state: &RunState, job: &str, record: DeviceRecord) -> DeviceRecord {
        finish(state, &self.progress, job, record).await
    }

    async fn device_job(
        &self,
        job: &Job,
        plan: &RunPlan,
        state: &Arc<RunState>,
    ) -> Result<JobReport, EngineError> {
        let work = Arc::new(match &job.kind {
            JobKind::Acl {
                acl_name,
                family,
                acl_lines,
                per_device,
                save,
                safety_net,
                revert_minutes,
                ..
            } => {
                let build = |lines: &[String]| {
                    AclJob::new(
                        acl_name,
                        *family,
                        lines,
                        *save,
                        *safety_net,
                        *revert_minutes,
                    )
                    .map_err(|e| EngineError::Job {
                        job: job.name.clone(),
                        reason: e.message,
                    })
                };
                // A template: each device its own rendered lines.
                let mut own = HashMap::new();
                for (&i, lines) in per_device {
                    if let Some(d) = self.config.devices.get(i) {
                        own.insert(d.name.clone(), build(lines)?);
                    }
                }
                let base = if per_device.is_empty() {
                    build(acl_lines)?
                } else {
                    AclJob::new(acl_name, *family, &[], *save, *safety_net, *revert_minutes)
                        .map_err(|e| EngineError::Job {
                            job: job.name.clone(),
                            reason: e.message,
                        })?
                };
                Work::Acl(base, own, plan.dry_run)
            }
            JobKind::Rollback { .. } => {
                let set = plan.rollbacks.get(&job.name).cloned().unwrap_or_default();
                if let Some(why) = &set.nothing {
                    tracing::warn!(job = %job.name, "{why}");
                    return Ok(JobReport {
                        name: job.name.clone(),
                        kind: "rollback".into(),
                        devices: Vec::new(),
                        calls: Vec::new(),
                        held: Some(why.clone()),
                    });
                }
                Work::Rollback(set, plan.dry_run)
            }
            JobKind::Exec { commands } => Work::Exec(commands.clone()),
            JobKind::Pots { .. } => {
                return Err(EngineError::Job {
                    job: job.name.clone(),
                    reason: "not a per-device job".into(),
                });
            }
        });
        let mut tiers: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for i in self.targets(job, plan) {
            tiers
                .entry(self.config.devices[i].tier)
                .or_default()
                .push(i);
        }
        let mut records: BTreeMap<usize, DeviceRecord> = BTreeMap::new();
        let mut held: Option<String> = None;
        for (tier, devices) in tiers {
            if let Some(why) = &held {
                for i in devices {
                    let name = &self.config.devices[i].name;
                    let r = self
                        .finish(
                            state,
                            &job.name,
                            DeviceRecord::plain(name, "held", why.clone()),
                        )
                        .await;
                    records.insert(i, r);
                }
                continue;
            }
            let tier_records = self.run_tier(job, plan, state, &work, &devices).await;
            let failures = tier_records.values().filter(|r| r.failed()).count();
            records.extend(tier_records);
            if let Some(max) = job.max_failures
                && max.exceeded(failures, devices.len())
            {
                held = Some(format!(
                    "tier {tier}: {failures} of {} devices failed, more than max_failures allows; later tiers held",
                    devices.len()
                ));
            }
        }
        let kind = kind_name(&job.kind);
        Ok(JobReport {
            name: job.name.clone(),
            kind: kind.into(),
            devices: records.into_values().collect(),
            calls: Vec::new(),
            held,
        })
    }

    async fn run_tier(
        &self,
        job: &Job,
        plan: &RunPlan,
        state: &Arc<RunState>,
        work: &Arc<Work>,
        devices: &[usize],
    ) -> BTreeMap<usize, DeviceRecord> {
        let mut records = BTreeMap::new();
        let limit = Arc::new(Semaphore::new(job.concurrency.max(1)));
        let caps: Vec<(crate::config::Selector, Arc<Semaphore>)> = job
            .caps
            .iter()
            .map(|(s, n)| (s.clone(), Arc::new(Semaphore::new(*n))))
            .collect();
        let mut set = tokio::task::JoinSet::new();
        for &i in devices {
            let d = &self.config.devices[i];
            if let Some(r) = self.settled(state, &job.name, i).await {
                records.insert(i, r);
                continue;
            }
            // Reap finished devices as we go: a finished task's memory (the
            // size of its whole future) is held until it is joined.
            while let Some(done) = set.try_join_next() {
                if let Ok((j, record)) = done {
                    records.insert(j, record);
                }
            }
            let Ok(permit) = limit.clone().acquire_owned().await else {
                break;
            };
            let mut cap_permits = Vec::new();
            for (sel, sem) in &caps {
                if sel.matches(&d.name, &d.tags)
                    && let Ok(p) = sem.clone().acquire_owned().await
                {
                    cap_permits.push(p);
                }
            }
            if let Some((status, why)) = self
                .refusal(job, state)
                .or_else(|| work.refusal(&d.name).map(|why| ("skipped", why)))
            {
                records.insert(
                    i,
                    self.finish(state, &job.name, DeviceRecord::plain(&d.name, status, why))
                        .await,
                );
                continue;
            }
            let expected = plan
                .expected
                .get(&(job.name.clone(), d.name.clone()))
                .cloned();
            let gate = lock(&state.gates)
                .entry(d.credentials.clone())
                .or_insert_with(|| LoginGate::new(&d.credentials))
                .clone();
            if let Some(why) = gate.rejection() {
                records.insert(
                    i,
                    self.finish(
                        state,
                        &job.name,
                        DeviceRecord::plain(&d.name, "not-started", why),
                    )
                    .await,
                );
                continue;
            }
            let mut link = self.links.get(&i).cloned();
            if let Some(l) = link.as_mut() {
                l.on_step = Some(step_sink(&state.journal, &job.name, &d.name));
                l.may_change = Some(work::change_guard(
                    self.stop.clone(),
                    state.deadline,
                    self.clock.clone(),
                ));
                l.gate = Some(GateTicket::new(gate.pass(i as u64)));
            }
            let in_flight = state
                .in_flight
                .get(&(job.name.clone(), d.name.clone()))
                .cloned();
            let (work, state2, name) = (work.clone(), state.clone(), d.name.clone());
            let (job_name, clock, progress) =
                (job.name.clone(), self.clock.clone(), self.progress.clone());
            let max_rejections = self.config.daemon.max_auth_failures;
            // The task journals its own start and end: the scheduling loop
            // never waits for the disk, so starts and ends of many devices
            // share one fsync.
            let task = async move {
                let _held = (permit, cap_permits);
                state2
                    .journal
                    .record(&Event::Started {
                        job: job_name.clone(),
                        device: name.clone(),
                        at: clock.now(),
                    })
                    .await;
                tracing::debug!(job = %job_name, device = %name, "device started");
                let (record, rejected) = match link {
                    Some(link) => work.run(&link, in_flight, expected.as_ref()).await,
                    None => (
                        DeviceRecord::plain(
                            &name,
                            "failed",
                            "no login for its credential profile".into(),
                        ),
                        false,
                    ),
                };
                // Turned away at the login gate: no credentials were sent.
                let record = match gate.take_withheld(&name) {
                    Some(why) => DeviceRecord::plain(&name, "not-started", why),
                    None => record,
                };
                if rejected {
                    let n = state2.rejections.fetch_add(1, Ordering::SeqCst) + 1;
                    // Once a device proved the credentials, one that refuses
                    // them has an account of its own (a local user, another
                    // AAA server): its failure alone, until the lockout
                    // brake's count is reached. Refused before any proof,
                    // they are wrong: nobody sends them again.
                    if n >= max_rejections || gate.proof() != Proof::Proven {
                        gate.reject(&name);
                    }
                }
                (i, conclude(&state2, &progress, &job_name, i, record).await)
            };
            set.spawn(task);
        }
        while let Some(done) = set.join_next().await {
            if let Ok((i, record)) = done {
                records.insert(i, record);
            }
        }
        for &i in devices {
            if let std::collections::btree_map::Entry::Vacant(e) = records.entry(i) {
                let name = &self.config.devices[i].name;
                e.insert(
                    self.finish(
                        state,
                        &job.name,
                        DeviceRecord::plain(
                            name,
                            "failed",
                            "its task ended abnormally (see the log)".into(),
                        ),
                    )
                    .await,
                );
            }
        }
        records
    }

    /// A device this job must not run: finished before a restart (not
    /// touched again), or failed in an earlier job of the run (skipped).
    async fn settled(&self, state: &RunState, job: &str, i: usize) -> Option<DeviceRecord> {
        let name = &self.config.devices[i].name;
        if let Some(r) = state.finished.get(&(job.to_string(), name.clone())) {
            self.progress.done(&r.status);
            return Some(r.clone());
        }
        let failed = lock(&state.failed).get(&i).cloned();
        match failed {
            Some(why) => Some(
                self.finish(state, job, DeviceRecord::plain(name, "skipped", why))
                    .await,
            ),
            None => None,
        }
    }
}

/// Journals a device's end (durably), counts it in the progress and logs it.
/// How every reason for a device the run did not begin because it was
/// stopped starts.
const STOPPED: &str = "the run was stopped";

async fn finish(
    state: &RunState,
    progress: &Progress,
    job: &str,
    mut record: DeviceRecord,
) -> DeviceRecord {
    record.stopped = record.status == "not-started"
        && record
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with(STOPPED));
    state
        .journal
        .record(&Event::Finished {
            job: job.into(),
            device: record.device.clone(),
            record: record.clone(),
        })
        .await;
    progress.done(&record.status);
    if record.failed() {
        tracing::warn!(job, device = %record.device, status = %record.status, reason = record.reason.as_deref().unwrap_or_default(), "device done");
    } else {
        tracing::info!(job, device = %record.device, status = %record.status, reason = record.reason.as_deref().unwrap_or_default(), "device done");
    }
    record
}

/// A device's job has ended: a failure takes it out of the rest of the run,
/// then its end is journalled.
async fn conclude(
    state: &RunState,
    progress: &Progress,
    job: &str,
    i: usize,
    record: DeviceRecord,
) -> DeviceRecord {
    if record.failed() {
        lock(&state.failed).insert(i, format!("failed in job {job}"));
    }
    finish(state, progress, job, record).await
}

/// Why nothing new may begin in a run any more.
enum RunEnd {
    /// SIGTERM, Ctrl-C.
    Stopped,
    /// Its window closed at this time.
    Closed(DateTime<Utc>),
}

/// Whether the run has ended for anything new: a device's start (see
/// [`Engine::refusal`]) or its change (see [`work::change_guard`]).
fn run_end(
    stop: &CancellationToken,
    deadline: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<RunEnd> {
    if stop.is_cancelled() {
        return Some(RunEnd::Stopped);
    }
    deadline.filter(|d| now >= *d).map(RunEnd::Closed)
}

/// Journals each step a device's job reaches, durably, before it goes on.
fn step_sink(journal: &Journal, job: &str, device: &str) -> crate::device::StepSink {
    let (journal, job, device) = (journal.clone(), job.to_string(), device.to_string());
    Arc::new(
        move |steps: &[&'static str], found: Option<serde_json::Value>| {
            let mut events: Vec<Event> = steps
                .iter()
                .map(|step| Event::Step {
                    job: job.clone(),
                    device: device.clone(),
                    step: step.to_string(),
                })
                .collect();
            if let Some(found) = found {
                // Before the last point ("applying"): a crash that tears the
                // batch keeps the found state if it keeps anything after it.
                let at = events.len().saturating_sub(1);
                events.insert(
                    at,
                    Event::Found {
                        job: job.clone(),
                        device: device.clone(),
                        found,
                    },
                );
            }
            let journal = journal.clone();
            Box::pin(async move {
                journal.record_all(&events).await;
            })
        },
    )
}
