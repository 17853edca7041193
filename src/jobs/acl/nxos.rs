//! NX-OS: one `configure session`, verified and committed atomically, with
//! a checkpoint to roll back to — within the platform's limits: names of
//! at most 32 characters, ten checkpoints per switch, one checkpoint or
//! rollback at a time.

use super::ace::Entry;
use super::method::{AclMethod, Confirmed};
use super::plan::{self, Slots};
use super::read::{self, AclState};
use super::{AclJob, AclRef, ApplyFail, Safety};
use crate::device::{DeviceError, Session};
use crate::platform::Platform;

const NXOS: Platform = Platform::CiscoNxos;

/// NX-OS's longest checkpoint name.
const CHECKPOINT_NAME_MAX: usize = 32;
/// The highest sequence number.
const MAX_SEQ: u64 = 4_294_967_295;

/// The ACL, its bindings and the switch's checkpoints, in one round trip.
async fn read(s: &mut Session, acl: &AclRef<'_>) -> Result<AclState, DeviceError> {
    let mut out = s
        .each(&["show running-config aclmgr", "show checkpoint summary"])
        .await?
        .into_iter();
    let shown = out.next().unwrap_or_else(|| Ok(String::new()))?;
    let mut state = read::nxos_aclmgr(&shown, acl);
    state.checkpoints = out.next().map(|listed| {
        listed
            .map(|text| checkpoints_listed(&text))
            .map_err(|e| e.to_string())
    });
    Ok(state)
}

/// Just the ACL, for checking a change or a restore.
async fn read_entries(s: &mut Session, acl: &AclRef<'_>) -> Result<AclState, DeviceError> {
    let out = s.command("show running-config aclmgr").await?;
    Ok(read::nxos_aclmgr(&out, acl))
}

fn session_name(acl: &AclRef<'_>) -> String {
    format!("nightshift-{}", short(&acl.key(), 20))
}

/// At most `max` characters of `acl` that NX-OS accepts in a name, and a
/// hash of the whole name when it had to be shortened (or changed), so
/// that two long names never share a checkpoint.
fn short(acl: &str, max: usize) -> String {
    let clean: String = acl
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean == acl && clean.len() <= max {
        return clean;
    }
    use sha1::Digest as _;
    let digest = sha1::Sha1::digest(acl.as_bytes());
    let hash: String = digest.iter().take(3).map(|b| format!("{b:02x}")).collect();
    let head: String = clean.chars().take(max - hash.len() - 1).collect();
    format!("{head}-{hash}")
}

/// nightshift's checkpoint for `acl`: `nightshift-` and the ACL name
/// (shortened, with a hash, when it would pass 32 characters).
fn checkpoint_name(acl: &AclRef<'_>) -> String {
    let prefix = "nightshift-";
    format!(
        "{prefix}{}",
        short(&acl.key(), CHECKPOINT_NAME_MAX - prefix.len())
    )
}

/// Discards a configuration session an earlier, dead attempt left pending.
async fn discard_pending(s: &mut Session, acl: &AclRef<'_>) {
    if s.command(&format!("configure session {}", session_name(acl)))
        .await
        .is_ok()
    {
        let _ = s.command("abort").await;
    }
}

/// The session's lines that turn `current` into `target`: deletions first
/// (nothing applies before the commit), then insertions between the
/// entries that stay. A target with its own sequence numbers replaces
/// every entry with exactly those numbers.
fn session_commands(
    acl: &AclRef<'_>,
    current: &AclState,
    target: &[(Option<u32>, Entry, String)],
) -> Vec<String> {
    let enter = acl.header(NXOS);
    let numbered = target.iter().all(|(s, _, _)| s.is_some()) && !target.is_empty();
    if !current.exists || numbered {
        let mut cmds = vec![enter];
        if current.exists {
            cmds.extend(
                current
                    .entries
                    .iter()
                    .filter_map(|p| p.seq)
                    .map(|seq| format!("no {seq}")),
            );
        }
        cmds.extend(
            target.iter().enumerate().map(|(k, (seq, _, text))| {
                format!("{} {text}", seq.unwrap_or(10 * (k as u32 + 1)))
            }),
        );
        return cmds;
    }
    let old = current.entries_only();
    let new: Vec<Entry> = target.iter().map(|(_, e, _)| e.clone()).collect();
    let p = plan::plan(&old, &new);
    let shown: Vec<u64> = current
        .entries
        .iter()
        .enumerate()
        .map(|(k, e)| e.seq.map_or(10 * (k as u64 + 1), u64::from))
        .collect();
    let mut cmds = Vec::new();
    let (old_seq, numbers) = match Slots::between(&p, &shown, MAX_SEQ) {
        Some(numbers) => (shown, numbers),
        None => {
            // No room between two kept entries: spread them out first.
            let (step, numbers) = Slots::after_resequence(&p);
            cmds.push(acl.resequence(NXOS, step, step));
            let spread = (0..old.len()).map(|k| step * (k as u64 + 1)).collect();
            (spread, numbers)
        }
    };
    cmds.push(enter);
    cmds.extend(
        p.removed
            .iter()
            .chain(p.moved.iter().map(|(i, _)| i))
            .map(|&i| format!("no {}", old_seq[i])),
    );
    cmds.extend(
        numbers
            .iter()
            .map(|(j, seq)| format!("{seq} {}", target[*j].2)),
    );
    cmds
}

/// Runs `cmds` in a configuration session (entered by the caller): all
/// or nothing. The lines and `verify` go in one round trip, `commit` in
/// the next, only once every line was accepted and verified.
async fn in_session(s: &mut Session, cmds: &[String]) -> Result<(), ApplyFail> {
    let fail = |step, line: &str, error, touched| ApplyFail {
        step,
        line: Some(line.to_string()),
        error,
        touched,
    };
    let mut lines = cmds.to_vec();
    lines.push("verify".into());
    match s.send_batch(&lines).await {
        Ok(outputs) => {
            let out = outputs.last().map(String::as_str).unwrap_or_default();
            if !out.contains("Verification Successful") {
                let _ = s.command("abort").await;
                let error = DeviceError::CommandRejected {
                    device: s.name().into(),
                    command: "verify".into(),
                    indicator: "verify".into(),
                    message: out.trim().to_string(),
                };
                return Err(fail("verify", "verify", error, false));
            }
        }
        Err(e) => {
            // Nothing is applied before `commit`; discard the session.
            let line = match &e {
                DeviceError::CommandRejected { command, .. } => command.clone(),
                _ => lines.first().cloned().unwrap_or_default(),
            };
            if matches!(e, DeviceError::CommandRejected { .. }) {
                let _ = s.command("abort").await;
            }
            return Err(fail("apply", &line, e, false));
        }
    }
    match s.command("commit").await {
        Ok(out) if !out.contains("Commit Successful") => {
            let error = DeviceError::CommandRejected {
                device: s.name().into(),
                command: "commit".into(),
                indicator: "commit".into(),
                message: out.trim().to_string(),
            };
            Err(fail("commit", "commit", error, false))
        }
        Ok(_) => Ok(()),
        Err(e) => Err(fail("apply", "commit", e, false)),
    }
}

/// Enters the configuration session alone (a restore, or a change without
/// a checkpoint).
async fn enter_session(s: &mut Session, acl: &AclRef<'_>) -> Result<(), ApplyFail> {
    let enter = format!("configure session {}", session_name(acl));
    s.command(&enter)
        .await
        .map(|_| ())
        .map_err(|error| ApplyFail {
            step: "configure",
            line: Some(enter),
            error,
            touched: false,
        })
}

/// The names `show checkpoint summary` lists (`N) NAME:` lines).
fn checkpoints_listed(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| {
            let l = l.trim();
            let (n, rest) = l.split_once(") ")?;
            n.parse::<u32>().ok()?;
            rest.strip_suffix(':').map(str::to_string)
        })
        .collect()
}

/// Takes nightshift's checkpoint and enters the configuration session, in
/// one round trip. One of ours left by an interrupted run is removed
/// first; a switch at its limit of ten gets no checkpoint, and the change
/// goes on without it: the session still commits all or nothing, and a
/// restore re-applies the previous entries in a session.
async fn checkpoint_and_enter(
    s: &mut Session,
    acl: &AclRef<'_>,
    listed: &Option<Result<Vec<String>, String>>,
) -> Result<Safety, (Safety, ApplyFail)> {
    let cp = checkpoint_name(acl);
    let listed = match listed {
        Some(Ok(names)) => names.clone(),
        Some(Err(e)) => {
            let safety = Safety::Unavailable(format!("cannot list checkpoints: {e}"));
            return match enter_session(s, acl).await {
                Ok(()) => Ok(safety),
                Err(f) => Err((safety, f)),
            };
        }
        None => Vec::new(),
    };
    let leftover = listed.contains(&cp);
    let drop_old = format!("no checkpoint {cp}");
    let take = format!("checkpoint {cp}");
    let enter = format!("configure session {}", session_name(acl));
    let mut cmds: Vec<&str> = Vec::new();
    if leftover {
        cmds.push(&drop_old);
    }
    cmds.push(&take);
    cmds.push(&enter);
    let fail = |error| ApplyFail {
        step: "configure",
        line: Some(enter.clone()),
        error,
        touched: false,
    };
    let mut outcomes = match s.each(&cmds).await {
        Ok(o) => o.into_iter(),
        Err(e) => {
            return Err((
                Safety::Unavailable(format!("checkpoint failed: {e}")),
                fail(e),
            ));
        }
    };
    let dropped = if leftover { outcomes.next() } else { None };
    let taken = outcomes.next();
    let entered = outcomes.next();
    let safety = match (dropped, taken) {
        (Some(Err(e)), _) => Safety::Unavailable(format!(
            "the checkpoint {cp} left by an earlier run could not be removed ({e}); a restore re-applies the previous entries in a configuration session"
        )),
        (_, Some(Ok(_))) => Safety::Checkpoint(cp.clone()),
        (_, Some(Err(DeviceError::CommandRejected { message, .. }))) => {
            let full = message.contains("Maximum number of checkpoints");
            Safety::Unavailable(if full {
                format!(
                    "the switch holds the most checkpoints it can ({message}); a restore re-applies the previous entries in a configuration session"
                )
            } else {
                format!(
                    "checkpoint {cp} refused ({message}); a restore re-applies the previous entries in a configuration session"
                )
            })
        }
        (_, Some(Err(e))) => Safety::Unavailable(format!("checkpoint failed: {e}")),
        (_, None) => Safety::Unavailable("checkpoint failed: no answer".into()),
    };
    match entered {
        Some(Ok(_)) => Ok(safety),
        Some(Err(e)) => Err((safety, fail(e))),
        None => Err((
            safety,
            fail(DeviceError::Closed {
                device: s.name().into(),
                stage: crate::device::Stage::Command,
            }),
        )),
    }
}

async fn apply(
    s: &mut Session,
    before: &AclState,
    job: &AclJob,
) -> Result<Safety, (Safety, ApplyFail)> {
    let safety = if job.safety_net {
        checkpoint_and_enter(s, &job.acl(), &before.checkpoints).await?
    } else {
        let safety = Safety::Unavailable("safety_net = false".into());
        enter_session(s, &job.acl())
            .await
            .map_err(|f| (safety.clone(), f))?;
        safety
    };
    let target: Vec<(Option<u32>, Entry, String)> = job
        .intent
        .iter()
        .map(|l| (l.seq, l.entry.clone(), l.text.clone()))
        .collect();
    let cmds = session_commands(&job.acl(), before, &target);
    in_session(s, &cmds)
        .await
        .map_err(|f| (safety.clone(), f))?;
    Ok(safety)
}

/// Whether the intent gives its own sequence numbers, which NX-OS keeps:
/// then the numbers are part of what must match.
fn numbered(job: &AclJob) -> bool {
    !job.intent.is_empty() && job.intent.iter().all(|l| l.seq.is_some())
}

/// After a verified commit: drops nightshift's checkpoint. Cleanup: a
/// refusal leaves the change in place and is a warning.
async fn drop_checkpoint(s: &mut Session, cp: &str) -> Result<(), DeviceError> {
    s.command(&format!("no checkpoint {cp}")).await.map(|_| ())
}

/// Discards a pending session, then puts the previous ACL back if the
/// device no longer has it.
async fn restore(
    s: &mut Session,
    before: &AclState,
    job: &AclJob,
    safety: &Safety,
) -> Result<(), DeviceError> {
    s.command(&format!("configure session {}", session_name(&job.acl())))
        .await?;
    s.command("abort").await?;
    let now = read_entries(s, &job.acl()).await?;
    if now.exists == before.exists && now.entries_only() == before.entries_only() {
        return Ok(());
    }
    if let Safety::Checkpoint(cp) = safety {
        s.command(&format!("rollback running-config checkpoint {cp}"))
            .await?;
        let _ = s.command(&format!("no checkpoint {cp}")).await;
        return Ok(());
    }
    let cmds = if before.exists {
        let previous: Vec<(Option<u32>, Entry, String)> = before
            .entries
            .iter()
            .map(|p| (p.seq, p.entry.clone(), p.shown.clone()))
            .collect();
        session_commands(&job.acl(), &now, &previous)
    } else {
        vec![job.acl().delete(NXOS)]
    };
    enter_session(s, &job.acl()).await.map_err(|f| f.error)?;
    in_session(s, &cmds).await.map_err(|f| f.error)
}

/// NX-OS's way: a configuration session, committed atomically, with a
/// checkpoint.
pub(crate) struct Nxos;

impl AclMethod for Nxos {
    async fn read(&self, s: &mut Session, acl: &AclRef<'_>) -> Result<AclState, DeviceError> {
        read(s, acl).await
    }

    async fn read_entries(
        &self,
        s: &mut Session,
        acl: &AclRef<'_>,
    ) -> Result<AclState, DeviceError> {
        read_entries(s, acl).await
    }

    fn shown_by(&self, _acl: &AclRef<'_>) -> String {
        "show running-config aclmgr".into()
    }

    /// NX-OS keeps the sequence numbers an intent gives.
    fn same_numbers(&self, current: &AclState, job: &AclJob) -> bool {
        !numbered(job)
            || current
                .entries
                .iter()
                .map(|p| p.seq)
                .eq(job.intent.iter().map(|l| l.seq))
    }

    async fn discard_pending(&self, s: &mut Session, acl: &AclRef<'_>) {
        discard_pending(s, acl).await;
    }

    async fn apply(
        &self,
        s: &mut Session,
        current: &AclState,
        job: &AclJob,
    ) -> Result<Safety, (Safety, ApplyFail)> {
        apply(s, current, job).await
    }

    fn pending_safety(&self, job: &AclJob) -> Safety {
        Safety::Checkpoint(checkpoint_name(&job.acl()))
    }

    /// Committed already: drops nightshift's checkpoint; a refusal leaves
    /// the change in place and is a warning.
    async fn confirm(&self, s: &mut Session, safety: &Safety) -> Confirmed {
        let Safety::Checkpoint(cp) = safety else {
            return Confirmed::Done;
        };
        let Err(e) = drop_checkpoint(s, cp).await else {
            return Confirmed::Done;
        };
        let message = match e {
            DeviceError::CommandRejected { message, .. } => message,
            other => other.to_string(),
        };
        if message.contains("does not exist") {
            return Confirmed::Done;
        }
        Confirmed::Warning(format!(
            "the change is committed and verified, but the checkpoint {cp} could not be removed ({message}); remove it by hand with `no checkpoint {cp}` (it counts towards the switch's ten)"
        ))
    }

    async fn restore(
        &self,
        s: &mut Session,
        before: &AclState,
        job: &AclJob,
        safety: &Safety,
    ) -> Result<(), DeviceError> {
        restore(s, before, job, safety).await
    }

    async fn after_restore(&self, _s: &mut Session, _safety: &Safety) -> bool {
        true
    }

    fn unreachable(&self, _safety: &Safety, error: &DeviceError, _acl_name: &str) -> String {
        format!(
            "nothing was committed; could not reconnect to clean up the pending configuration session ({error})"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::acl::ace::parse_line;
    use crate::jobs::acl::read::Present;

    fn ext(name: &str) -> AclRef<'_> {
        AclRef {
            family: crate::jobs::acl::Family::Extended,
            name,
        }
    }

    fn state(lines: &[&str]) -> AclState {
        AclState {
            exists: true,
            entries: lines
                .iter()
                .map(|l| {
                    let p = parse_line(l).unwrap();
                    Present {
                        seq: p.seq,
                        entry: p.entry,
                        shown: p.text,
                    }
                })
                .collect(),
            bindings: Vec::new(),
            checkpoints: None,
        }
    }

    fn target(lines: &[&str]) -> Vec<(Option<u32>, Entry, String)> {
        lines
            .iter()
            .map(|l| {
                let p = parse_line(l).unwrap();
                (p.seq, p.entry, p.text)
            })
            .collect()
    }

    #[test]
    fn checkpoint_names_fit_in_32_characters() {
        assert_eq!(
            checkpoint_name(&ext("LOCK_IT_DOWN")),
            "nightshift-LOCK_IT_DOWN"
        );
        let long = "BRANCH_OFFICE_INBOUND_FILTER_FOR_VLAN_100";
        let a = checkpoint_name(&ext(long));
        assert!(a.len() <= 32, "{a}");
        assert!(a.starts_with("nightshift-BRANCH_OFFICE"), "{a}");
        let b = checkpoint_name(&ext("BRANCH_OFFICE_INBOUND_FILTER_FOR_VLAN_200"));
        assert_ne!(a, b, "two long names never share a checkpoint");
        assert!(checkpoint_name(&ext("a.b")).len() <= 32);
        assert_ne!(checkpoint_name(&ext("a.b")), checkpoint_name(&ext("a_b")));
    }

    #[test]
    fn only_what_differs_is_sent() {
        let cur = state(&[
            "10 remark x",
            "20 permit tcp any any eq 22",
            "30 permit ip host 10.0.0.1 any",
            "40 deny ip any any log",
        ]);
        let cmds = session_commands(
            &ext("A"),
            &cur,
            &target(&[
                "remark x",
                "permit tcp any any eq 22",
                "permit ip host 10.0.0.2 any",
                "deny ip any any log",
            ]),
        );
        assert_eq!(
            cmds,
            [
                "ip access-list A",
                "no 30",
                "30 permit ip host 10.0.0.2 any"
            ]
        );
    }

    #[test]
    fn a_narrow_gap_is_spread_out_first() {
        let cur = state(&["10 permit tcp any any eq 22", "11 deny ip any any"]);
        let cmds = session_commands(
            &ext("A"),
            &cur,
            &target(&[
                "permit tcp any any eq 22",
                "permit udp any any eq 53",
                "deny ip any any",
            ]),
        );
        assert_eq!(
            cmds,
            [
                "resequence ip access-list A 20 20",
                "ip access-list A",
                "30 permit udp any any eq 53"
            ]
        );
    }

    #[test]
    fn checkpoint_summary_is_read() {
        let out = "\n        1) bgp-Wed_May_31:\n        Created by admin\n        User Checkpoint Summary\n\n        2) nightshift-A:\n        Created by admin\n";
        assert_eq!(checkpoints_listed(out), ["bgp-Wed_May_31", "nightshift-A"]);
    }
}
