//! ACL push: replace a named ACL with no moment in which an interface is
//! unfiltered, verify it, restore the previous ACL on failure, save.
//!
//! The change is planned entry by entry (`plan.rs`): entries both ACLs
//! share stay in place, and only what differs is sent. The push is written
//! once against `method::AclMethod`; each platform implements it
//! (`ios.rs`, `nxos.rs`):
//! - IOS: in place, make-before-break. New entries are inserted first, moved
//!   ones deleted and entered again one by one, old ones deleted last (IOS
//!   keeps no duplicate entry, so a kept entry cannot be entered twice).
//!   The ACL never disappears and never lacks a rule, so every interface
//!   (and any other reference, such as a vty access-class) stays filtered.
//!   With `archive` configured, the change runs under `configure terminal
//!   revert timer N`: if nightshift loses the device mid-change, the device
//!   reverts by itself; after verification nightshift sends `configure
//!   confirm`.
//! - NX-OS: `configure session` with the deletions and insertions, `verify`,
//!   `commit`: nothing applies until the commit, which is atomic. A
//!   `checkpoint` taken first is what a failed verification rolls back to.
//!
//! A refused line, a lost session or a verification mismatch restores the
//! previous ACL (captured before the change), checks the restore, and
//! reports the device `failed` with the step, the line and the device's
//! own message. The outcome follows the device: once a change is
//! committed and verified the device is `changed`, whatever happens in the
//! cleanup after it (a checkpoint that cannot be removed, a save that
//! fails), and those problems are warnings in the report.

pub mod ace;
pub mod addr;
mod diff;
pub mod drift;
pub mod family;
pub mod groups;
mod ios;
pub mod listing;
mod method;
mod nxos;
pub mod options;
mod plan;
pub mod read;
mod result;
pub mod standard;
mod vty;

use self::ace::{Entry, Line};
pub use self::drift::{Expected, OnDrift};
pub use self::family::{AclRef, Family};
use self::method::{AclMethod, Confirmed};
use self::read::{AclState, Found};
pub use self::result::{AclResult, Status};
use super::{StepTime, Steps};
use crate::device::{DeviceError, DeviceLink, Session};
use crate::platform::Platform;

/// What to push, from a `kind = "acl"` job.
#[derive(Debug, Clone)]
pub struct AclJob {
    pub acl_name: String,
    pub family: Family,
    pub intent: Vec<Line>,
    pub save: bool,
    pub safety_net: bool,
    pub revert_minutes: u32,
}

impl AclJob {
    /// Parses the job's lines (already validated with the config).
    pub fn new(
        acl_name: &str,
        family: Family,
        lines: &[String],
        save: bool,
        safety_net: bool,
        revert_minutes: u32,
    ) -> Result<AclJob, ace::ParseError> {
        let intent = lines
            .iter()
            .map(|l| ace::parse_entry(l, family))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AclJob {
            acl_name: acl_name.to_string(),
            family,
            intent,
            save,
            safety_net,
            revert_minutes,
        })
    }

    /// The ACL: family and name.
    pub fn acl(&self) -> AclRef<'_> {
        AclRef {
            family: self.family,
            name: &self.acl_name,
        }
    }

    fn entries(&self) -> Vec<Entry> {
        self.intent.iter().map(|l| l.entry.clone()).collect()
    }
}

/// The device's own undo while changing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Safety {
    RevertTimer { minutes: u32 },
    Checkpoint(String),
    Unavailable(String),
}

impl Safety {
    fn describe(&self) -> String {
        match self {
            Safety::RevertTimer { minutes } => format!("IOS revert timer ({minutes} min)"),
            Safety::Checkpoint(n) => format!("NX-OS checkpoint {n}"),
            Safety::Unavailable(why) => format!("none: {why}"),
        }
    }
}

/// Why applying stopped.
#[derive(Debug)]
pub(crate) struct ApplyFail {
    pub step: &'static str,
    pub line: Option<String>,
    pub error: DeviceError,
    /// Whether anything may have changed on the device.
    pub touched: bool,
}

impl ApplyFail {
    /// The session is still usable (the device refused a line).
    pub(crate) fn session_alive(&self) -> bool {
        matches!(
            self.error,
            DeviceError::CommandRejected { .. } | DeviceError::UnexpectedQuestion { .. }
        )
    }
}

fn mismatch(shown: &[Entry], want: &[Entry]) -> Option<String> {
    if shown == want {
        return None;
    }
    let at = shown
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(shown.len().min(want.len()));
    Some(match (shown.get(at), want.get(at)) {
        (Some(s), Some(w)) => format!("entry {} is `{s}`, expected `{w}`", at + 1),
        (Some(s), None) => format!("unexpected extra entry {}: `{s}`", at + 1),
        (None, Some(w)) => format!("entry {} is missing: `{w}`", at + 1),
        (None, None) => "entries differ".into(),
    })
}

/// Pushes the job's ACL to one device (see the module doc for the method).
///
/// `in_flight`: an earlier attempt of this run was working on the device
/// when it died, with what that attempt found on it (if it got as far as
/// journalling it). Its leftovers are cleared first (a pending NX-OS
/// session), and an ACL that already equals the intent is finished off —
/// revert timer confirmed, checkpoint dropped, config saved — instead of
/// being left unconfirmed (the device would revert it later) and unsaved.
/// A failure puts back the ACL the earlier attempt found, not the
/// half-changed one its crash left, and the report's `before` is that ACL.
///
/// `expected`: the ACL the device should hold now (what the window's plan
/// read, what a rolled-back run left). A device that holds something else
/// and is not already at the intent drifted: with `on_drift = skip` it is
/// `skipped` with the drift and nothing is sent.
pub async fn push_acl(
    link: &DeviceLink,
    job: &AclJob,
    dry_run: bool,
    in_flight: Option<Option<serde_json::Value>>,
    expected: Option<&Expected>,
) -> AclResult {
    match link.target.platform {
        Platform::CiscoIos => push(&ios::Ios, link, job, dry_run, in_flight, expected).await,
        Platform::CiscoNxos => push(&nxos::Nxos, link, job, dry_run, in_flight, expected).await,
    }
}

async fn push<M: AclMethod>(
    m: &M,
    link: &DeviceLink,
    job: &AclJob,
    dry_run: bool,
    in_flight: Option<Option<serde_json::Value>>,
    expected: Option<&Expected>,
) -> AclResult {
    let (in_flight, earlier) = (in_flight.is_some(), in_flight.flatten());
    let mut r = AclResult::new(&link.target.name, &job.acl_name);
    let mut steps = Steps::new(link.on_step.clone());
    let mut s = match link.open().await {
        Ok(s) => s,
        Err(e) => return r.failed("connect", None, &e, steps),
    };
    steps.done("connect").await;
    r.algorithms = Some(s.negotiated().clone());
    if in_flight && !dry_run {
        m.discard_pending(&mut s, &job.acl()).await;
    }
    let current = match m.read(&mut s, &job.acl()).await {
        Ok(b) => b,
        Err(e) => {
            s.close().await;
            return r.failed("read", None, &e, steps);
        }
    };
    // What the run found before it changed anything: this attempt's read,
    // or the earlier attempt's when one began changing the device.
    let before = earlier
        .and_then(|v| serde_json::from_value::<Found>(v).ok())
        .and_then(|f| f.state(&current))
        .unwrap_or_else(|| current.clone());
    let same = |a: &[Entry], b: &[Entry]| m.compared(&job.acl(), a) == m.compared(&job.acl(), b);
    let left_changed =
        before.exists != current.exists || !same(&before.entries_only(), &current.entries_only());
    let want = job.entries();
    let unchanged =
        current.exists && same(&current.entries_only(), &want) && m.same_numbers(&current, job);
    // Changed by someone since it was seen (not by an earlier attempt of
    // this run, which the journal accounts for).
    let drifted = match expected {
        Some(exp) if !unchanged && !in_flight => exp.drift(&current).map(|d| (exp, d)),
        _ => None,
    };
    if let Some((exp, lines)) = drifted {
        r.drift = lines;
        let what = format!(
            "{} changed since {} ({} line{} of drift)",
            job.acl_name,
            exp.source,
            r.drift.len(),
            if r.drift.len() == 1 { "" } else { "s" }
        );
        match exp.on_drift {
            OnDrift::Skip => {
                steps.done("read").await;
                r.found = Some(Found::of(&current, job.family));
                r.before = current.entries.iter().map(|p| p.shown.clone()).collect();
                r.bindings = current.bindings.clone();
                r.status = Status::Skipped;
                r.error = Some(format!("{what}; nothing was sent"));
                r.hint = Some(
                    "someone changed the ACL by hand (the drift is in the report): check why, then run again with on_drift = \"proceed\" (rollback: --force) to overwrite it".into(),
                );
                r.steps = steps.done;
                s.close().await;
                return r;
            }
            OnDrift::Proceed => r
                .warnings
                .push(format!("{what}; replaced anyway (on_drift = proceed)")),
        }
    }
    // Object-groups the entries refer to must exist first (one more read,
    // only for an intent that refers to any).
    let groups = groups::referenced(&job.intent);
    if !unchanged && !groups.is_empty() {
        let missing = match s.command("show object-group").await {
            Ok(out) => groups::missing(&groups, &out),
            Err(e) => {
                s.close().await;
                return r.failed("read", Some("show object-group".into()), &e, steps);
            }
        };
        if !missing.is_empty() {
            s.close().await;
            let e = DeviceError::CommandRejected {
                device: r.name.clone(),
                command: "show object-group".into(),
                indicator: "missing".into(),
                message: format!(
                    "object-group{} {} not on the device; nothing was sent",
                    if missing.len() == 1 { "" } else { "s" },
                    missing.join(", ")
                ),
            };
            let mut r = r.failed("check", None, &e, steps);
            r.hint = Some("create the object-group on the device first (nightshift does not manage object-groups), or change the entries".into());
            r.restored = Some("nothing was changed on the device".into());
            r.before = current.entries.iter().map(|p| p.shown.clone()).collect();
            return r;
        }
    }
    // A new change must not begin once the window has closed or the run
    // was stopped; completing or restoring an earlier attempt's change
    // (`in_flight`) still may.
    let refused = if !dry_run && !unchanged && !in_flight {
        link.may_change.as_ref().and_then(|may| may())
    } else {
        None
    };
    // Changing now, or completing the change an earlier attempt made.
    if !dry_run && (!unchanged || in_flight) && refused.is_none() {
        // Journalled before the first change: a crash from here on may
        // leave the device partly changed, and the report must say so;
        // with it, what to put back if a later attempt fails.
        let found = serde_json::to_value(Found::of(&before, job.family)).unwrap_or_default();
        steps.done_then_found("read", "applying", found).await;
    } else {
        steps.done("read").await;
    }
    r.before = before.entries.iter().map(|p| p.shown.clone()).collect();
    r.found = Some(Found::of(&before, job.family));
    r.bindings = current.bindings.clone();
    // In the order the device processes them, so that an order the
    // device keeps by itself shows as no change.
    let (old, old_text) = ordered(m, job, &before.entries_only(), &r.before);
    let intent_text: Vec<String> = job.intent.iter().map(|l| l.text.clone()).collect();
    let (new, new_text) = ordered(m, job, &want, &intent_text);
    r.diff = diff::diff_shown(&old, &old_text, &new, &new_text);
    if let Some(why) = refused {
        r.status = Status::NotStarted;
        r.error = Some(why);
        r.steps = steps.done;
        s.close().await;
        return r;
    }
    if unchanged {
        r.after = current.entries.iter().map(|p| p.shown.clone()).collect();
        if !in_flight || dry_run {
            r.status = Status::Unchanged;
            r.steps = steps.done;
            s.close().await;
            return r;
        }
        // Applied by the attempt that died: confirm and save it now.
        let safety = m.pending_safety(job);
        r.safety_net =
            Some("completed after a restart: pending revert confirmed / checkpoint dropped".into());
        return complete(m, s, link, &safety, job, r, steps).await;
    }
    if dry_run {
        r.status = Status::WouldChange;
        r.steps = steps.done;
        s.close().await;
        return r;
    }
    let (safety, failure) = match m.apply(&mut s, &current, job).await {
        Ok(safety) => {
            steps.done("apply").await;
            match m.read_entries(&mut s, &job.acl()).await {
                Ok(now) => match mismatch(
                    &m.compared(&job.acl(), &now.entries_only()),
                    &m.compared(&job.acl(), &want),
                ) {
                    None => {
                        steps.done("verify").await;
                        r.after = now.entries.iter().map(|p| p.shown.clone()).collect();
                        (safety, None)
                    }
                    Some(why) => (
                        safety,
                        Some(ApplyFail {
                            step: "verify",
                            line: None,
                            error: DeviceError::CommandRejected {
                                device: r.name.clone(),
                                command: m.shown_by(&job.acl()),
                                indicator: "mismatch".into(),
                                message: format!("verification failed: {why}"),
                            },
                            touched: true,
                        }),
                    ),
                },
                Err(error) => (
                    safety,
                    Some(ApplyFail {
                        step: "verify",
                        line: None,
                        error,
                        touched: true,
                    }),
                ),
            }
        }
        Err((safety, fail)) => (safety, Some(fail)),
    };
    // The ACL on the vty lines must still let a new login in.
    let failure = match failure {
        None if vty::guards_vty(&r.bindings) => {
            let refused = vty::login_check(link, &job.acl_name).await;
            if refused.is_none() {
                steps.done(vty::STEP).await;
            }
            refused
        }
        other => other,
    };
    r.safety_net = Some(safety.describe());
    if let (true, Safety::Unavailable(why)) = (job.safety_net, &safety) {
        r.warnings.push(format!(
            "the change ran without the device's own undo: {why}"
        ));
    }
    if let Some(fail) = failure {
        let alive = fail.session_alive();
        // Untouched by this attempt, and not left changed by an earlier one.
        r.restored = Some(if !fail.touched && !left_changed && alive {
            s.close().await;
            "nothing was changed on the device".to_string()
        } else {
            let session = if alive { Some(s) } else { None };
            restore(m, link, session, &before, job, &safety).await
        });
        let restore_note = r.restored.clone();
        let mut r = r.failed(fail.step, fail.line, &fail.error, steps);
        r.restored = restore_note;
        if fail.step == vty::STEP {
            r.hint = Some(vty::HINT.into());
        }
        return r;
    }
    complete(m, s, link, &safety, job, r, steps).await
}

/// Entries and their texts in the order the device processes them.
fn ordered<M: AclMethod>(
    m: &M,
    job: &AclJob,
    entries: &[Entry],
    texts: &[String],
) -> (Vec<Entry>, Vec<String>) {
    m.order(&job.acl(), entries)
        .into_iter()
        .filter_map(|i| Some((entries.get(i)?.clone(), texts.get(i)?.clone())))
        .unzip()
}

/// Confirms a verified change and saves it. A refused `configure confirm`
/// undoes the change (the revert timer runs out): a failure. Anything
/// after that leaves the change in place: a warning.
async fn complete<M: AclMethod>(
    m: &M,
    mut s: Session,
    link: &DeviceLink,
    safety: &Safety,
    job: &AclJob,
    mut r: AclResult,
    mut steps: Steps,
) -> AclResult {
    match m.confirm(&mut s, safety).await {
        Confirmed::Done => {}
        Confirmed::Warning(w) => r.warnings.push(w),
        Confirmed::Failed { line, error, note } => {
            s.close().await;
            let mut r = r.failed("confirm", Some(line), &error, steps);
            r.restored = Some(note);
            return r;
        }
    }
    steps.done("confirm").await;
    if job.save {
        let was = s.timeout();
        // NX-OS takes long to save (up to ~100 s on real gear).
        s.set_command_timeout(was.max(std::time::Duration::from_secs(120)));
        match s.save().await {
            Ok(_) => steps.done("save").await,
            Err(e) => r.warnings.push(format!(
                "the change is live and verified but NOT saved ({}): a reload brings back the previous ACL; save by hand (`{}`)",
                device_message(&e),
                crate::device::platform::spec(link.target.platform).save
            )),
        }
        s.set_command_timeout(was);
    }
    s.close().await;
    r.status = Status::Changed;
    r.steps = steps.done;
    r
}

/// The device's own words for an error, else the error.
fn device_message(e: &DeviceError) -> String {
    match e {
        DeviceError::CommandRejected { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// Puts the previous ACL back and checks it; returns what happened, in words.
async fn restore<M: AclMethod>(
    m: &M,
    link: &DeviceLink,
    session: Option<Session>,
    before: &AclState,
    job: &AclJob,
    safety: &Safety,
) -> String {
    let mut s = match session {
        Some(s) => s,
        None => match link.open().await {
            Ok(s) => s,
            Err(e) => return m.unreachable(safety, &e, &job.acl_name),
        },
    };
    let note = match m.restore(&mut s, before, job, safety).await {
        Err(e) => format!("restore FAILED: {e}; check {} by hand", job.acl_name),
        Ok(()) => match m.read_entries(&mut s, &job.acl()).await {
            Ok(now)
                if now.exists == before.exists
                    && m.compared(&job.acl(), &now.entries_only())
                        == m.compared(&job.acl(), &before.entries_only()) =>
            {
                if m.after_restore(&mut s, safety).await {
                    "previous ACL restored and verified".to_string()
                } else {
                    "previous ACL restored and verified; the revert timer is still pending"
                        .to_string()
                }
            }
            Ok(now) => format!(
                "restore FAILED: the device shows {} entries that differ from the previous ACL; check it by hand",
                now.entries.len()
            ),
            Err(e) => format!("restore not verified: {e}"),
        },
    };
    s.close().await;
    note
}
