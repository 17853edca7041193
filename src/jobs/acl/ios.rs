//! IOS: replace in place, entry by entry, under the revert timer.
//!
//! IOS keeps no duplicate entry, so the change is planned entry by entry
//! (`plan.rs`): the entries both ACLs share stay where they are; the
//! others are inserted first, then the moved ones are deleted and entered
//! again one by one, then the old ones are deleted. The ACL is never
//! absent or without a rule. Sequence numbers are made known first with
//! `ip access-list resequence` (IOS shows no numbers for remarks), and
//! tidied to 10, 20, … at the end, as a reload would.

use super::ace::Entry;
use super::method::{AclMethod, Confirmed};
use super::plan::{self, Slots};
use super::read::{self, AclState};
use super::{AclJob, AclRef, ApplyFail, Family, Safety, listing, standard};
use crate::device::{DeviceError, Session};
use crate::platform::Platform;

const IOS: Platform = Platform::CiscoIos;

/// The running-config lines that bind ACLs, for every family: interfaces
/// (`ip access-group`, `ipv6 traffic-filter`) and lines (`access-class`,
/// `ipv6 access-class`), with the headers they sit under.
const BINDINGS: &str =
    "show running-config | include ^interface|^line|access-group|traffic-filter|access-class";

/// The ACL's entries, remarks included, in order.
async fn read_entries(s: &mut Session, acl: &AclRef<'_>) -> Result<AclState, DeviceError> {
    let section = s.command(&acl.ios_show()).await?;
    let (exists, entries) = read::ios_running(&section, acl);
    Ok(AclState {
        exists,
        entries,
        ..AclState::default()
    })
}

/// The ACL and where it is bound, in one round trip.
async fn read(s: &mut Session, acl: &AclRef<'_>) -> Result<AclState, DeviceError> {
    let show = acl.ios_show();
    let out = s.reads(&[&show, BINDINGS]).await?;
    let (exists, entries) = read::ios_running(&out[0], acl);
    Ok(AclState {
        exists,
        entries,
        bindings: read::config_bindings(&out[1], acl),
        checkpoints: None,
    })
}

/// The commands that turn `current` into `target` (entries and the text to
/// send for each), in two lists: the second is sent only once every line
/// of the first was accepted.
fn commands(
    acl: &AclRef<'_>,
    current: &AclState,
    target: &[(Entry, String)],
) -> (Vec<String>, Vec<String>) {
    let enter = acl.header(IOS);
    if !current.exists {
        let mut add = vec![enter];
        add.extend(
            target
                .iter()
                .enumerate()
                .map(|(k, (_, text))| acl.numbered(IOS, 10 * (k as u64 + 1), text)),
        );
        return (add, vec!["end".into()]);
    }
    let old = current.entries_only();
    let new: Vec<Entry> = target.iter().map(|(e, _)| e.clone()).collect();
    let p = plan::plan(&old, &new);
    let (step, numbers) = Slots::after_resequence(&p);
    let number = |j: usize| numbers.iter().find(|(k, _)| *k == j).map_or(0, |(_, n)| *n);
    let old_seq = |i: usize| step * (i as u64 + 1);
    let mut add = vec![acl.resequence(IOS, step, step), enter];
    add.extend(
        p.added
            .iter()
            .map(|&j| acl.numbered(IOS, number(j), &target[j].1)),
    );
    let mut finish = Vec::new();
    for &(i, j) in &p.moved {
        finish.push(acl.no_seq(IOS, old_seq(i)));
        finish.push(acl.numbered(IOS, number(j), &target[j].1));
    }
    finish.extend(p.removed.iter().map(|&i| acl.no_seq(IOS, old_seq(i))));
    finish.push("exit".into());
    finish.push(acl.resequence(IOS, 10, 10));
    finish.push("end".into());
    (add, finish)
}

/// The commands for the change. A standard ACL that exists lists its hosts
/// first, not in sequence order (`standard.rs`), so its sequence numbers
/// are read back after resequencing, before anything else is sent.
async fn plan_commands(
    s: &mut Session,
    acl: &AclRef<'_>,
    current: &AclState,
    target: &[(Entry, String)],
) -> Result<(Vec<String>, Vec<String>), ApplyFail> {
    if acl.family != Family::Standard || !current.exists {
        return Ok(commands(acl, current, target));
    }
    let step = standard::step(target.len());
    let reseq = acl.resequence(IOS, step, step);
    let show = format!("do show ip access-lists {}", acl.name);
    let read_back = async {
        // Together, one round trip (the listing is read-only).
        let out = s
            .send_batch(&[reseq.clone(), show.clone()])
            .await?
            .pop()
            .unwrap_or_default();
        let listed: Vec<(u32, Entry)> = listing::listings(&out, IOS)
            .ok()
            .and_then(|all| all.into_iter().find(|l| l.name == acl.name))
            .map(|l| {
                l.entries
                    .into_iter()
                    .filter_map(|line| Some((line.seq?, line.entry)))
                    .collect()
            })
            .unwrap_or_default();
        standard::in_seq_order(&current.entries_only(), &listed, step).map_err(|message| {
            DeviceError::CommandRejected {
                device: s.name().to_string(),
                command: show.clone(),
                indicator: "mismatch".into(),
                message: format!(
                    "cannot tell the sequence number of every entry of {}: {message}",
                    acl.name
                ),
            }
        })
    };
    match read_back.await {
        Ok(old) => Ok(standard::commands(acl, &old, target)),
        Err(error) => {
            let sent = match &error {
                DeviceError::CommandRejected { command, .. } => command.clone(),
                _ => reseq,
            };
            if matches!(error, DeviceError::CommandRejected { .. }) {
                let _ = s.command("end").await;
            }
            // Only the sequence numbers changed, which no packet sees
            // and no save keeps.
            Err(ApplyFail {
                step: "apply",
                line: Some(sent),
                error,
                touched: false,
            })
        }
    }
}

/// Pastes the first list, then — only if every line was accepted — the
/// second.
async fn send_all(
    s: &mut Session,
    (first, then): &(Vec<String>, Vec<String>),
) -> Result<(), ApplyFail> {
    for batch in [first, then] {
        if let Err(error) = s.send_batch(batch).await {
            let line = match &error {
                DeviceError::CommandRejected { command, .. } => Some(command.clone()),
                _ => None,
            };
            if matches!(error, DeviceError::CommandRejected { .. }) {
                let _ = s.command("end").await;
            }
            return Err(ApplyFail {
                step: "apply",
                line,
                error,
                touched: true,
            });
        }
    }
    Ok(())
}

async fn apply(
    s: &mut Session,
    before: &AclState,
    job: &AclJob,
) -> Result<Safety, (Safety, ApplyFail)> {
    let mut safety = if job.safety_net {
        Safety::RevertTimer {
            minutes: job.revert_minutes,
        }
    } else {
        Safety::Unavailable("safety_net = false".into())
    };
    if let Safety::RevertTimer { minutes } = safety {
        // Try the revert timer; a device without `archive` refuses it.
        let enter = format!("configure terminal revert timer {minutes}");
        match s.command(&enter).await {
            Ok(_) => {}
            Err(DeviceError::CommandRejected { message, .. })
                if message.to_ascii_lowercase().contains("archive")
                    || message.contains("Rollback") =>
            {
                safety = Safety::Unavailable(
                    "archive is not configured on the device, so no revert timer".into(),
                );
            }
            Err(error) => {
                return Err((
                    safety,
                    ApplyFail {
                        step: "configure",
                        line: Some(enter),
                        error,
                        touched: false,
                    },
                ));
            }
        }
    }
    if !matches!(safety, Safety::RevertTimer { .. })
        && let Err(error) = s.command("configure terminal").await
    {
        return Err((
            safety,
            ApplyFail {
                step: "configure",
                line: Some("configure terminal".into()),
                error,
                touched: false,
            },
        ));
    }
    let target: Vec<(Entry, String)> = job
        .intent
        .iter()
        .map(|l| (l.entry.clone(), l.text.clone()))
        .collect();
    let cmds = match plan_commands(s, &job.acl(), before, &target).await {
        Ok(cmds) => cmds,
        Err(f) => {
            // Nothing to revert: stop the timer.
            if f.session_alive() && matches!(safety, Safety::RevertTimer { .. }) {
                let _ = s.command("configure confirm").await;
            }
            return Err((safety, f));
        }
    };
    send_all(s, &cmds).await.map_err(|f| (safety.clone(), f))?;
    Ok(safety)
}

/// Puts the previous ACL back from whatever state the device is in now,
/// the same way: entry by entry, never empty.
async fn restore(
    s: &mut Session,
    before: &AclState,
    job: &AclJob,
    _safety: &Safety,
) -> Result<(), DeviceError> {
    let now = read_entries(s, &job.acl()).await?;
    // A pending revert timer stays armed; a plain `configure terminal` does
    // not disturb it.
    s.command("configure terminal").await?;
    let cmds = if before.exists {
        let previous: Vec<(Entry, String)> = before
            .entries
            .iter()
            .map(|p| (p.entry.clone(), p.shown.clone()))
            .collect();
        plan_commands(s, &job.acl(), &now, &previous)
            .await
            .map_err(|f| f.error)?
    } else {
        (vec![job.acl().delete(IOS)], vec!["end".into()])
    };
    send_all(s, &cmds).await.map_err(|f| f.error)
}

/// IOS's way: in place under the revert timer.
pub(crate) struct Ios;

impl AclMethod for Ios {
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

    fn shown_by(&self, acl: &AclRef<'_>) -> String {
        acl.ios_show()
    }

    /// IOS keeps a standard ACL's hosts first, whatever order they were
    /// written in.
    fn order(&self, acl: &AclRef<'_>, entries: &[Entry]) -> Vec<usize> {
        if acl.family == Family::Standard {
            standard::processed_order(entries)
        } else {
            (0..entries.len()).collect()
        }
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
        Safety::RevertTimer {
            minutes: job.revert_minutes,
        }
    }

    /// `configure confirm`; refused, the revert timer undoes the change.
    async fn confirm(&self, s: &mut Session, safety: &Safety) -> Confirmed {
        let Safety::RevertTimer { minutes } = safety else {
            return Confirmed::Done;
        };
        match s.command("configure confirm").await {
            Ok(_) => Confirmed::Done,
            Err(error) => Confirmed::Failed {
                line: "configure confirm".into(),
                error,
                note: format!(
                    "not confirmed: the device goes back to the previous config by itself within {minutes} min (revert timer); check it then"
                ),
            },
        }
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

    /// Restored and checked: the pending revert is no longer needed.
    async fn after_restore(&self, s: &mut Session, safety: &Safety) -> bool {
        match safety {
            Safety::RevertTimer { .. } => s.command("configure confirm").await.is_ok(),
            _ => true,
        }
    }

    fn unreachable(&self, safety: &Safety, error: &DeviceError, acl_name: &str) -> String {
        match safety {
            Safety::RevertTimer { minutes } => format!(
                "NOT restored by nightshift ({error}); the device reverts by itself within {minutes} min (revert timer)"
            ),
            _ => format!("NOT restored ({error}); {acl_name} may be half-built: check it by hand"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::acl::ace::parse_line;
    use crate::jobs::acl::read::Present;

    fn state(lines: &[&str]) -> AclState {
        let entries = lines
            .iter()
            .map(|l| {
                let p = parse_line(l).unwrap();
                Present {
                    seq: p.seq,
                    entry: p.entry,
                    shown: p.text,
                }
            })
            .collect();
        AclState {
            exists: true,
            entries,
            bindings: Vec::new(),
            checkpoints: None,
        }
    }

    fn ext(name: &str) -> AclRef<'_> {
        AclRef {
            family: crate::jobs::acl::Family::Extended,
            name,
        }
    }

    fn target(lines: &[&str]) -> Vec<(Entry, String)> {
        lines
            .iter()
            .map(|l| {
                let p = parse_line(l).unwrap();
                (p.entry, p.text)
            })
            .collect()
    }

    #[test]
    fn kept_entries_stay_new_ones_go_in_first_old_ones_go_last() {
        let cur = state(&[
            "remark x",
            "permit ip host 10.0.0.1 any",
            "permit tcp any any eq 22",
            "deny ip any any log",
        ]);
        let (add, finish) = commands(
            &ext("A"),
            &cur,
            &target(&[
                "remark x",
                "permit ip host 10.0.0.2 any",
                "permit tcp any any eq 22",
                "deny ip any any log",
            ]),
        );
        assert_eq!(
            add,
            [
                "ip access-list resequence A 20 20",
                "ip access-list extended A",
                "30 permit ip host 10.0.0.2 any"
            ]
        );
        assert_eq!(
            finish,
            ["no 40", "exit", "ip access-list resequence A 10 10", "end"]
        );
    }

    #[test]
    fn a_moved_entry_is_deleted_then_entered_again() {
        let cur = state(&["permit tcp any any eq 22", "permit ip any any"]);
        let (add, finish) = commands(
            &ext("A"),
            &cur,
            &target(&["permit ip any any", "permit tcp any any eq 22"]),
        );
        assert_eq!(
            add,
            [
                "ip access-list resequence A 20 20",
                "ip access-list extended A"
            ]
        );
        assert_eq!(
            finish[..2],
            [
                "no 20".to_string(),
                "50 permit tcp any any eq 22".to_string()
            ]
        );
    }

    #[test]
    fn a_new_acl_is_simply_created() {
        let (add, finish) = commands(
            &ext("A"),
            &AclState::default(),
            &target(&["permit ip any any"]),
        );
        assert_eq!(add, ["ip access-list extended A", "10 permit ip any any"]);
        assert_eq!(finish, ["end"]);
    }
}
