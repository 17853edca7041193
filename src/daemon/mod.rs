//! The daemon: sleeps until change windows, runs them in their own zone
//! under the misfire policy, proves credentials ahead of each window,
//! mails every report (and alerts) through the outbox, and answers the
//! control socket. `run` is what `nightshift daemon` calls and what tests
//! call in-process.

pub mod alarms;
mod answers;
pub mod metrics;
mod planner;
pub mod policy;
mod runner;
pub mod status;

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use thiserror::Error;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{Config, ConfigError};
use crate::control::{self, Admission, ControlError};
use crate::credentials::{self, Store};
use crate::engine::history_path;
use crate::report::mail;
use crate::report::outbox::{Outbox, queue_and_send};
use alarms::{Alarm, Alarms};
use policy::{Decision, Wake};
pub use status::{CredentialState, Status};

#[derive(Debug, Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Control(#[from] ControlError),
}

/// How the daemon talks to its supervisor (systemd's notify socket).
pub trait Notifier: Send + Sync {
    fn ready(&self);
    fn reloading(&self);
    fn stopping(&self);
    fn status(&self, line: &str);
}

/// No supervisor (tests, a foreground run).
pub struct NoNotify;

impl Notifier for NoNotify {
    fn ready(&self) {}
    fn reloading(&self) {}
    fn stopping(&self) {}
    fn status(&self, _: &str) {}
}

/// systemd's `$NOTIFY_SOCKET` (a no-op when unset).
pub struct SystemdNotify;

impl Notifier for SystemdNotify {
    fn ready(&self) {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    }
    fn reloading(&self) {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Reloading]);
    }
    fn stopping(&self) {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    }
    fn status(&self, line: &str) {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Status(line)]);
    }
}

/// What the daemon shares with its control socket and its runs.
pub struct Shared {
    pub config: Mutex<Arc<Config>>,
    pub status: Mutex<Status>,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub notifier: Arc<dyn Notifier>,
    /// Told when the config changed outside the main loop.
    pub rearm: Notify,
    /// The last failure to write the metrics file (logged once, not at
    /// every refresh).
    pub metrics_error: Mutex<Option<String>>,
    /// READY=1 has gone to systemd: before it, the start-up work (canary
    /// logins, mail left over) writes metrics but says no `STATUS=`, which
    /// would show windows not yet armed ("no window scheduled").
    pub ready: std::sync::atomic::AtomicBool,
}

impl Shared {
    pub fn config(&self) -> Arc<Config> {
        self.config
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends the one-line status to the supervisor and rewrites the
    /// metrics file.
    pub fn publish(&self) {
        let config = self.config();
        if self.ready.load(std::sync::atomic::Ordering::Acquire) {
            let line = self.status().line(&config);
            self.notifier.status(&line);
        }
        self.write_metrics(&config);
    }

    /// The metrics file, when `[daemon] metrics_file` names one.
    fn write_metrics(&self, config: &Config) {
        let Some(path) = &config.daemon.metrics_file else {
            return;
        };
        let outbox = Outbox::new(&config.daemon.state_dir)
            .scan(false)
            .unwrap_or_default();
        let windows: Vec<String> = config.windows.iter().map(|w| w.name.clone()).collect();
        let text = metrics::render(
            &self.status(),
            &windows,
            &outbox.entries,
            outbox.damaged.len(),
        );
        let result = metrics::write(path, &text).err().map(|e| e.to_string());
        let mut last = self
            .metrics_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match (&result, last.as_ref()) {
            (Some(e), previous) if previous != Some(e) => tracing::error!(
                path = %path.display(),
                error = %e,
                "cannot write the metrics file; check [daemon] metrics_file and that the service may write there (the unit allows only /var/lib/nightshift)"
            ),
            (None, Some(_)) => tracing::info!(path = %path.display(), "metrics file written again"),
            _ => {}
        }
        *last = result;
    }

    /// Puts an alert in the outbox and sends it when a relay is configured.
    pub async fn alert(&self, subject: &str, text: &str) {
        let config = self.config();
        tracing::warn!(alert = subject, "{text}");
        let rendered = match mail::render_alert(subject, text, config.mail.as_ref()) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot render an alert");
                return;
            }
        };
        let outbox = Outbox::new(&config.daemon.state_dir);
        let password = credentials::mail_password(&config, &self.store)
            .ok()
            .flatten();
        match queue_and_send(
            &outbox,
            config.mail.as_ref(),
            password.as_ref(),
            "alert",
            subject,
            &rendered,
            self.clock.now(),
        )
        .await
        {
            Ok((entry, _)) => tracing::info!(id = %entry.id, "alert kept in the outbox"),
            Err(e) => tracing::error!(error = %e, "cannot keep an alert in the outbox"),
        }
        self.publish();
    }
}

/// Everything `run` needs besides the config file.
pub struct Options {
    pub clock: Arc<dyn Clock>,
    pub notifier: Arc<dyn Notifier>,
    /// Cancelled on SIGTERM: no new devices; in-flight ones reach a safe
    /// point; the report is still produced and sent.
    pub shutdown: CancellationToken,
    /// Notified on SIGHUP: re-read the config.
    pub reload: Arc<Notify>,
}

/// Loads the config and runs the daemon until `shutdown`.
pub async fn run(config_path: &Path, opts: Options) -> Result<(), DaemonError> {
    let config = Arc::new(Config::load(config_path, opts.clock.now())?);
    let store = Store::from_env(&config.daemon.keyring_service);
    let shared = Arc::new(Shared {
        metrics_error: Mutex::new(None),
        ready: std::sync::atomic::AtomicBool::new(false),
        config: Mutex::new(config.clone()),
        status: Mutex::new(Status::new(config_path, opts.clock.now())),
        store,
        clock: opts.clock.clone(),
        notifier: opts.notifier.clone(),
        rearm: Notify::new(),
    });

    // The control socket first: `credentials set` may be needed to finish
    // the checks below.
    let admission = Admission::new(config.daemon.control_group.as_deref())?;
    let listener = control::bind(&config.daemon.control_socket)?;
    let control_stop = CancellationToken::new();
    let control_task = tokio::spawn(control::serve(
        listener,
        admission,
        answers::handler(shared.clone()),
        control_stop.clone(),
    ));

    // Credentials: one canary login per profile the windows use.
    let profiles = all_window_profiles(&config);
    check_credentials(&shared, &profiles, "at start-up").await;

    // A run that stopped and whose window closed meanwhile is reported
    // from its journal; then mail left by an earlier run goes out.
    runner::conclude_interrupted(&shared).await;
    flush_outbox(&shared, true).await;

    let (mut alarms, mut fired) = Alarms::new(opts.clock.clone());
    let mut handled: HashSet<(String, DateTime<Utc>)> = HashSet::new();
    arm(&shared, &mut alarms, &handled).await;
    tracing::info!(config = %config_path.display(), "nightshift daemon ready");
    opts.notifier.ready();
    shared
        .ready
        .store(true, std::sync::atomic::Ordering::Release);
    shared.publish();

    loop {
        // Asleep on a plain timer until an alarm is a minute away (and at
        // least once a minute, to notice a clock jump); then the scheduler.
        let nap = alarms.nap();
        tokio::select! {
            _ = opts.shutdown.cancelled() => break,
            _ = async {
                match nap {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            } => {
                if let Err(e) = alarms.engage_if_due().await {
                    tracing::error!(error = %e, "cannot start the scheduler; retrying in a minute");
                }
            }
            _ = opts.reload.notified() => {
                shared.reload().await;
                arm(&shared, &mut alarms, &handled).await;
                shared.publish();
            }
            // A reload asked for over the control socket happened there;
            // the alarms follow the new config.
            _ = shared.rearm.notified() => {
                arm(&shared, &mut alarms, &handled).await;
                shared.publish();
            }
            Some((at, alarm)) = fired.recv() => {
                match alarm {
                    Alarm::MailRetry => flush_outbox(&shared, false).await,
                    Alarm::KeepSecrets => {
                        let config = shared.config();
                        for p in all_window_profiles(&config) {
                            // Reading is enough to keep the keyring alive; problems
                            // surface at the next credential check.
                            let _ = shared.store.get(&credentials::profile_key(&p));
                        }
                    }
                    Alarm::Wake(Wake::CheckCredentials { window, .. }) => {
                        let config = shared.config();
                        if let Some(w) = config.window(&window) {
                            let profiles = credentials::profiles_for_jobs(&config, &w.jobs);
                            check_credentials(&shared, &profiles, &format!("ahead of window {window}")).await;
                        }
                    }
                    Alarm::Wake(Wake::Plan { window, opening }) => {
                        let key = (format!("plan:{window}"), opening);
                        let config = shared.config();
                        // Woken too late (a suspend): the opening comes first.
                        let in_time = opening - shared.clock.now() >= chrono::Duration::minutes(10);
                        if !handled.contains(&key)
                            && let Some(w) = config.window(&window)
                        {
                            handled.insert(key);
                            if in_time {
                                planner::plan_window(&shared, w, opening, &opts.shutdown).await;
                            } else {
                                tracing::warn!(window, "too close to the opening for a plan; none is made");
                            }
                        }
                    }
                    Alarm::Wake(Wake::Open { window, opening }) => {
                        if !handled.contains(&(window.clone(), opening)) {
                            let _ = at;
                            open_window(&shared, &window, opening, &opts.shutdown, &mut handled).await;
                        }
                    }
                }
                arm(&shared, &mut alarms, &handled).await;
                shared.publish();
            }
        }
    }
    opts.notifier.stopping();
    tracing::info!("nightshift daemon stopping");
    alarms.shutdown().await;
    control_stop.cancel();
    let _ = control_task.await;
    let _ = std::fs::remove_file(&config.daemon.control_socket);
    Ok(())
}

/// The profiles used by any window's jobs.
fn all_window_profiles(config: &Config) -> Vec<String> {
    let jobs: Vec<String> = config.windows.iter().flat_map(|w| w.jobs.clone()).collect();
    credentials::profiles_for_jobs(config, &jobs)
}

/// Proves each profile with one canary login; alerts on any problem.
/// Returns whether all are good.
pub async fn check_credentials(shared: &Shared, profiles: &[String], when: &str) -> bool {
    let config = shared.config();
    let mut all_ok = true;
    for profile in profiles {
        let result =
            credentials::check_stored(&config, &shared.store, std::slice::from_ref(profile)).await;
        let now = shared.clock.now();
        let state = match &result {
            Ok(p) => {
                CredentialState::ok(now, p.first().map(|p| p.canary.clone()).unwrap_or_default())
            }
            Err(e) => CredentialState::problem(now, e),
        };
        shared.status().credentials.insert(profile.clone(), state);
        if let Err(e) = result {
            all_ok = false;
            let hint = e.hint().unwrap_or_default();
            shared
                .alert(
                    &format!("credentials of profile {profile} not usable ({when})"),
                    &format!(
                        "nightshift checked the stored credentials of profile {profile} {when}:\n\n  {}\n\nNo device of this profile will be touched until this is fixed.\nHint: {hint}\n",
                        crate::error_chain(&e)
                    ),
                )
                .await;
        }
    }
    shared.publish();
    all_ok
}

/// Arms every window's next wake-up (and the current opening, if one is
/// open and not yet handled), and the next mail retry.
async fn arm(shared: &Shared, alarms: &mut Alarms, handled: &HashSet<(String, DateTime<Utc>)>) {
    alarms.clear().await;
    let config = shared.config();
    let now = shared.clock.now();
    let wakes = policy::wakes(&config, now, config.daemon.credential_check_lead);
    let mut next: Vec<(String, DateTime<Utc>)> = Vec::new();
    for (at, wake) in wakes {
        if let Wake::Open { window, opening } = &wake {
            if handled.contains(&(window.clone(), *opening))
                || already_done(&config, window, *opening)
            {
                continue;
            }
            next.push((window.clone(), *opening));
        }
        alarms.set(at, Alarm::Wake(wake));
    }
    // A plan whose time passed while the daemon was down, for an opening
    // still ahead: made now, if there is time to act on it.
    for w in &config.windows {
        if let (Some(lead), Some(next)) = (w.plan_lead, w.schedule.next_after(now)) {
            let lead = chrono::Duration::from_std(lead).unwrap_or_default();
            let id = crate::planning::plan_id(&policy::run_id(&w.name, next));
            if next - lead <= now
                && next - now >= chrono::Duration::minutes(10)
                && !handled.contains(&(format!("plan:{}", w.name), next))
                && !history_path(&config.daemon.state_dir, &id).exists()
            {
                alarms.set(
                    now,
                    Alarm::Wake(Wake::Plan {
                        window: w.name.clone(),
                        opening: next,
                    }),
                );
            }
        }
    }
    alarms.set(now + chrono::Duration::hours(24), Alarm::KeepSecrets);
    let outbox = Outbox::new(&config.daemon.state_dir);
    if config.mail.is_some()
        && let Some(retry) = outbox
            .list()
            .ok()
            .into_iter()
            .flatten()
            .filter(|e| e.state == crate::report::outbox::State::Pending)
            .filter_map(|e| e.next_attempt)
            .min()
    {
        alarms.set(retry, Alarm::MailRetry);
    }
    shared.status().next = next;
}

/// A run whose report is in the history is finished: a restart inside
/// the window does not run it again — unless it was stopped (SIGTERM: a
/// restart, an upgrade) before it was done; then the restart resumes it.
fn already_done(config: &Config, window: &str, opening: DateTime<Utc>) -> bool {
    let path = history_path(&config.daemon.state_dir, &policy::run_id(window, opening));
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            serde_json::from_str::<serde_json::Value>(&text).map_or(true, |v| v["stopped"] != true)
        }
        Err(_) => false,
    }
}

/// Decides on an opening and runs, or records, it.
async fn open_window(
    shared: &Arc<Shared>,
    window: &str,
    opening: DateTime<Utc>,
    shutdown: &CancellationToken,
    handled: &mut HashSet<(String, DateTime<Utc>)>,
) {
    let config = shared.config();
    let Some(w) = config.window(window) else {
        return;
    };
    let now = shared.clock.now();
    // An interrupted run (its journal exists) resumes while the window is open.
    let resuming =
        crate::engine::journal_path(&config.daemon.state_dir, &policy::run_id(window, opening))
            .exists();
    let decision = policy::decide(w, opening, now, resuming);
    match decision {
        Decision::Early => {}
        Decision::Missed { reason } => {
            handled.insert((window.to_string(), opening));
            runner::record_missed(shared, w, opening, &reason).await;
        }
        Decision::Interrupted { reason } => {
            handled.insert((window.to_string(), opening));
            let path = crate::engine::journal_path(
                &config.daemon.state_dir,
                &policy::run_id(window, opening),
            );
            if !runner::conclude_journal(shared, &path).await {
                runner::record_missed(shared, w, opening, &reason).await;
            }
        }
        Decision::Run { deadline, late } => {
            handled.insert((window.to_string(), opening));
            if late > chrono::Duration::zero() {
                if resuming {
                    tracing::warn!(
                        window,
                        late_secs = late.num_seconds(),
                        "resuming the window's interrupted run from its journal"
                    );
                } else {
                    tracing::warn!(
                        window,
                        late_secs = late.num_seconds(),
                        "window starts late, inside latest_start"
                    );
                }
            }
            runner::run_window(shared, w, opening, deadline, shutdown).await;
        }
    }
}

/// What a reload did: the problems of a rejected config (empty when it
/// was accepted).
pub struct Reloaded {
    pub problems: Vec<String>,
}

impl Shared {
    /// Re-reads and validates the config (SIGHUP, `nightshift reload`): an
    /// invalid config is rejected with every problem logged (and an alert),
    /// and the old one keeps running. Whoever asked re-arms the alarms.
    pub async fn reload(&self) -> Reloaded {
        let path = self.status().config_path.clone();
        self.notifier.reloading();
        let result = match Config::load(&path, self.clock.now()) {
            Ok(c) => {
                tracing::info!(config = %path.display(), "config reloaded");
                *self
                    .config
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(c);
                self.status().last_reload = Some((self.clock.now(), "accepted".into()));
                Reloaded {
                    problems: Vec::new(),
                }
            }
            Err(e) => {
                let problems = match &e {
                    ConfigError::Invalid { problems, .. } => {
                        problems.iter().map(ToString::to_string).collect()
                    }
                    other => vec![other.to_string()],
                };
                let text = problems.join("\n");
                tracing::error!(config = %path.display(), "config reload REJECTED; the previous config stays in force:\n{text}");
                self.status().last_reload = Some((self.clock.now(), "rejected".into()));
                self.alert(
                    "config reload rejected",
                    &format!("nightshift was asked to reload {} and found problems; the previous config stays in force.\n\n{text}\n", path.display()),
                )
                .await;
                Reloaded { problems }
            }
        };
        self.notifier.ready();
        result
    }
}

async fn flush_outbox(shared: &Shared, force: bool) {
    let config = shared.config();
    let Some(settings) = &config.mail else {
        return;
    };
    let password = credentials::mail_password(&config, &shared.store)
        .ok()
        .flatten();
    let outbox = Outbox::new(&config.daemon.state_dir);
    if let Err(e) = outbox
        .deliver_due(settings, password.as_ref(), shared.clock.now(), force)
        .await
    {
        tracing::error!(error = %e, "outbox");
    }
    shared.publish();
}
