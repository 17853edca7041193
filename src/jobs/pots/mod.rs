//! POTS line tests: dial every branch's out-of-band modem through the
//! dialers' modem lines, as many at once as there are lines.
//!
//! Scheduling: every line a job names for a dialer joins that dialer's
//! pool, and a call goes out on whichever of the dialer's lines is free
//! first (the result records the line used), so a free line never waits
//! for a slow call on another one. One SSH session per line; dialers work
//! in parallel; the job's `concurrency` caps calls in flight overall. A
//! BUSY or NO ANSWER is tried again `retries` times, after `retry_pause`,
//! while the line serves other calls meanwhile. A dialer that cannot be
//! reached fails its calls with that reason; the others go on.

mod call;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::config::PotsLine;
use crate::device::{DeviceLink, Session};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Classified {
    Connect,
    Busy,
    NoCarrier,
    NoDialtone,
    NoAnswer,
    NoPrompt,
    Error,
    /// The window closed, or the run was stopped, before the call could be
    /// placed.
    NotStarted,
    /// The run was stopped while the call was dialling: the dial was
    /// aborted and the line hung up.
    Aborted,
}

impl Classified {
    pub fn name(self) -> &'static str {
        match self {
            Classified::Connect => "connect",
            Classified::Busy => "busy",
            Classified::NoCarrier => "no-carrier",
            Classified::NoDialtone => "no-dialtone",
            Classified::NoAnswer => "no-answer",
            Classified::NoPrompt => "no-prompt",
            Classified::Error => "error",
            Classified::NotStarted => "not-started",
            Classified::Aborted => "aborted",
        }
    }
}

/// One branch's call.
#[derive(Debug, Clone, Serialize)]
pub struct CallResult {
    pub branch: String,
    pub number: String,
    pub dialer: String,
    pub result: Classified,
    /// From the CONNECT line, e.g. 33600.
    pub rate: Option<u32>,
    /// From the CONNECT line, e.g. `ARQ/V34/LAPM/V42BIS`.
    pub protocol: Option<String>,
    /// Dial to CONNECT.
    pub connect_secs: Option<f64>,
    /// How long the call held its line: dial to line idle again.
    pub call_secs: Option<f64>,
    pub prompt_seen: bool,
    pub hung_up: bool,
    pub attempts: u32,
    /// The modem line the call went out on.
    pub line: u32,
    pub error: Option<String>,
    /// A stuck line that was found and cleared.
    pub cleared: Option<String>,
    #[serde(skip)]
    dialled: Option<Instant>,
}

impl CallResult {
    fn new(call: &PotsLine, line: u32, attempts: u32) -> Self {
        CallResult {
            branch: call.branch.clone(),
            number: call.number.clone(),
            dialer: call.dialer.clone(),
            result: Classified::Error,
            rate: None,
            protocol: None,
            connect_secs: None,
            call_secs: None,
            prompt_seen: false,
            hung_up: false,
            attempts,
            line,
            error: None,
            cleared: None,
            dialled: None,
        }
    }

    fn failed(call: &PotsLine, attempts: u32, why: String) -> Self {
        CallResult {
            error: Some(why),
            ..CallResult::new(call, call.line, attempts)
        }
    }
}

struct Pending {
    index: usize,
    attempts: u32,
    not_before: Instant,
}

/// One dialer's calls still to place.
struct Dialer {
    queue: Mutex<VecDeque<Pending>>,
    /// Set when the dialer cannot be reached: its remaining calls fail with it.
    dead: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

enum Next {
    Call(Pending),
    Wait(Instant),
    Done,
}

impl Dialer {
    fn next(&self) -> Next {
        let mut q = lock(&self.queue);
        let now = Instant::now();
        if let Some(pos) = q.iter().position(|p| p.not_before <= now) {
            return q.remove(pos).map_or(Next::Done, Next::Call);
        }
        q.iter()
            .map(|p| p.not_before)
            .min()
            .map_or(Next::Done, Next::Wait)
    }
}

/// Runs the calls; returns one result per call, in the job's order.
/// `deadline`: no call starts that could not end before it. `stop`: no call
/// starts once it is cancelled, and a call still dialling is aborted (its
/// line hung up and checked, as after any call).
pub async fn run_pots(
    calls: Arc<Vec<PotsLine>>,
    links: BTreeMap<String, DeviceLink>,
    concurrency: usize,
    guard: Duration,
    deadline: Option<Instant>,
    stop: CancellationToken,
) -> Vec<CallResult> {
    let results: Arc<Mutex<BTreeMap<usize, CallResult>>> = Arc::default();
    let limit = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    let start = Instant::now();
    // Accounts rejected so far (by user name), and where.
    let mut rejected: BTreeMap<String, String> = BTreeMap::new();
    for (name, link) in links {
        let mine: Vec<usize> = (0..calls.len())
            .filter(|&i| calls[i].dialer == name)
            .collect();
        let lines: BTreeSet<u32> = mine.iter().map(|&i| calls[i].line).collect();
        let dialer = Arc::new(Dialer {
            queue: Mutex::new(
                mine.into_iter()
                    .map(|index| Pending {
                        index,
                        attempts: 0,
                        not_before: start,
                    })
                    .collect(),
            ),
            dead: Mutex::new(None),
        });
        // One login to the dialer first, alone: a wrong password must cost
        // one failed login, not one per modem line.
        let mut first = None;
        match rejected.get(&link.login.username) {
            Some(who) => {
                *lock(&dialer.dead) = Some(format!(
                    "not tried: the credentials of {} were rejected by {who}",
                    link.login.username
                ))
            }
            None => match link.open().await {
                Ok(s) => first = Some(s),
                Err(e) => {
                    if e.is_auth_rejected() {
                        rejected.insert(link.login.username.clone(), name.clone());
                    }
                    *lock(&dialer.dead) = Some(format!("dialer {name} unreachable: {e}"));
                }
            },
        }
        let link = Arc::new(link);
        for line in lines {
            let (calls, results, limit, dialer, link) = (
                calls.clone(),
                results.clone(),
                limit.clone(),
                dialer.clone(),
                link.clone(),
            );
            let session = first.take();
            let stop = stop.clone();
            set.spawn(async move {
                line_worker(
                    line, session, &calls, &results, &limit, &dialer, &link, guard, deadline, &stop,
                )
                .await
            });
        }
    }
    while set.join_next().await.is_some() {}
    let mut out = lock(&results);
    (0..calls.len())
        .map(|i| {
            out.remove(&i).unwrap_or_else(|| {
                CallResult::failed(
                    &calls[i],
                    0,
                    "the call was never placed (see the log)".into(),
                )
            })
        })
        .collect()
}

/// Keeps one modem line busy until its dialer has no calls left.
#[allow(clippy::too_many_arguments)]
async fn line_worker(
    line: u32,
    mut session: Option<Session>,
    calls: &[PotsLine],
    results: &Mutex<BTreeMap<usize, CallResult>>,
    limit: &Semaphore,
    dialer: &Dialer,
    link: &DeviceLink,
    guard: Duration,
    deadline: Option<Instant>,
    stop: &CancellationToken,
) {
    loop {
        let pending = match dialer.next() {
            Next::Call(p) => p,
            Next::Wait(until) => {
                // A retry's pause; a stop ends it (the call is then not placed).
                tokio::select! {
                    _ = tokio::time::sleep_until(until.into()) => {}
                    _ = stop.cancelled() => {}
                }
                if stop.is_cancelled() {
                    lock(&dialer.queue)
                        .iter_mut()
                        .for_each(|p| p.not_before = Instant::now());
                }
                continue;
            }
            Next::Done => break,
        };
        let call = &calls[pending.index];
        let attempts = pending.attempts + 1;
        if let Some(why) = lock(&dialer.dead).clone() {
            lock(results).insert(pending.index, CallResult::failed(call, attempts, why));
            continue;
        }
        let Ok(_permit) = limit.acquire().await else {
            break;
        };
        let refused = if stop.is_cancelled() {
            Some("not started: the run was stopped before the call was placed")
        } else if deadline.is_some_and(|d| Instant::now() + call.timeout > d) {
            Some("not started: the window closes before the call could end")
        } else {
            None
        };
        if let Some(why) = refused {
            let mut r = CallResult::failed(call, attempts.saturating_sub(1), why.into());
            r.result = Classified::NotStarted;
            lock(results).insert(pending.index, r);
            continue;
        }
        if session.is_none() {
            match link.open().await {
                Ok(s) => session = Some(s),
                Err(e) => {
                    let why = format!("dialer {} unreachable: {e}", link.target.name);
                    *lock(&dialer.dead) = Some(why.clone());
                    lock(results).insert(pending.index, CallResult::failed(call, attempts, why));
                    continue;
                }
            }
        }
        let Some(s) = session.as_mut() else { continue };
        let r = call::place_call(s, &link.target.host, line, call, guard, attempts, stop).await;
        let retry =
            matches!(r.result, Classified::Busy | Classified::NoAnswer) && attempts <= call.retries;
        if r.result == Classified::Error
            && r.error
                .as_deref()
                .is_some_and(|e| e.contains("closed") || e.contains("timed out"))
        {
            // The session is gone or wedged: the next call opens a new one.
            if let Some(s) = session.take() {
                s.close().await;
            }
        }
        if retry {
            lock(&dialer.queue).push_back(Pending {
                index: pending.index,
                attempts,
                not_before: Instant::now() + call.retry_pause,
            });
        } else {
            lock(results).insert(pending.index, r);
        }
    }
    if let Some(s) = session {
        s.close().await;
    }
}
