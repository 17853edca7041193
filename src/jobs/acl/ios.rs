//! IOS: replace in place, make-before-break, under the revert timer.

use super::read::{self, AclState, Present};
use super::{AclJob, ApplyFail, Safety};
use crate::device::{DeviceError, Session};

/// The ACL's entries, remarks included, in order (for verification).
pub async fn read_entries(s: &mut Session, name: &str) -> Result<AclState, DeviceError> {
    // `section` with `$` so that LOCK does not also match LOCK_OLD.
    let section = s
        .command(&format!(
            "show running-config | section ip access-list extended {name}$"
        ))
        .await?;
    let (exists, entries) = read::ios_running_section(&section, name);
    Ok(AclState {
        exists,
        entries,
        bindings: Vec::new(),
    })
}

pub async fn read(s: &mut Session, name: &str) -> Result<AclState, DeviceError> {
    let AclState {
        exists,
        mut entries,
        ..
    } = read_entries(s, name).await?;
    if exists {
        // The running config has remarks but no sequence numbers; `show ip
        // access-lists` has the numbers of the rules.
        let shown = s.command(&format!("show ip access-lists {name}")).await?;
        let mut numbered = read::ios_show_acl(&shown, name).into_iter();
        for e in entries.iter_mut().filter(|e| e.entry.is_rule()) {
            if let Some(r) = numbered.next()
                && r.entry == e.entry
            {
                e.seq = r.seq;
            }
        }
    }
    let interfaces = s.command("show ip interface").await?;
    Ok(AclState {
        exists,
        entries,
        bindings: read::ios_bindings(&interfaces, name),
    })
}

/// Commands that turn `current` into `target` without ever leaving the ACL
/// empty: renumber the old entries above the new and insert the new (first
/// list); then delete the old (second list), which is sent only once every
/// line of the first was accepted.
fn replace_commands(
    name: &str,
    current: &AclState,
    target: &[(u32, String)],
) -> (Vec<String>, Vec<String>) {
    let old = if current.exists {
        current.entries.len() as u64
    } else {
        0
    };
    let max_seq = target.iter().map(|(s, _)| u64::from(*s)).max().unwrap_or(0);
    let base = (max_seq + 1000).max(100_000).div_ceil(10) * 10;
    let mut cmds = Vec::new();
    if old > 0 {
        cmds.push(format!("ip access-list resequence {name} {base} 10"));
    }
    cmds.push(format!("ip access-list extended {name}"));
    cmds.extend(target.iter().map(|(seq, text)| format!("{seq} {text}")));
    let mut delete: Vec<String> = (0..old).map(|k| format!("no {}", base + 10 * k)).collect();
    delete.push("end".into());
    (cmds, delete)
}

/// Pastes the additions, then — only if every one was accepted — the
/// deletions.
async fn send_all(
    s: &mut Session,
    (add, delete): &(Vec<String>, Vec<String>),
) -> Result<(), ApplyFail> {
    for batch in [add, delete] {
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

pub async fn apply(
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
    let cmds = replace_commands(&job.acl_name, before, &job.numbered());
    send_all(s, &cmds).await.map_err(|f| (safety.clone(), f))?;
    Ok(safety)
}

/// The previous entries with a sequence number on each: the rules keep
/// theirs; a remark (IOS does not show its number) goes 10 below the next
/// rule, or else just after the entry before it. Without room for that,
/// everything is renumbered 10, 20, 30 (content and order kept).
fn previous_numbered(before: &AclState) -> Vec<(u32, String)> {
    let mut out: Vec<(u32, String)> = Vec::new();
    let mut ok = true;
    for (k, p) in before.entries.iter().enumerate() {
        let prev = out.last().map_or(0, |(s, _)| *s);
        let next = before.entries[k + 1..]
            .iter()
            .find_map(|e| e.seq)
            .unwrap_or(u32::MAX);
        let seq = p.seq.unwrap_or_else(|| {
            [
                next.checked_sub(10).filter(|_| next != u32::MAX),
                Some(prev + 10),
                Some(prev + 1),
            ]
            .into_iter()
            .flatten()
            .find(|c| *c > prev && *c < next)
            .unwrap_or(prev + 1)
        });
        ok &= seq > prev && seq < next;
        out.push((seq, p.shown.clone()));
    }
    if !ok {
        out = before
            .entries
            .iter()
            .enumerate()
            .map(|(k, p): (usize, &Present)| (10 * (k as u32 + 1), p.shown.clone()))
            .collect();
    }
    out
}

/// Puts the previous ACL back from whatever state the device is in now.
pub async fn restore(
    s: &mut Session,
    before: &AclState,
    job: &AclJob,
    _safety: &Safety,
) -> Result<(), DeviceError> {
    let now = read(s, &job.acl_name).await?;
    // A pending revert timer stays armed; a plain `configure terminal` does
    // not disturb it.
    s.command("configure terminal").await?;
    let cmds = if before.exists {
        replace_commands(&job.acl_name, &now, &previous_numbered(before))
    } else {
        (
            vec![format!("no ip access-list extended {}", job.acl_name)],
            vec!["end".into()],
        )
    };
    send_all(s, &cmds).await.map_err(|f| f.error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::acl::ace::parse_line;

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
        }
    }

    #[test]
    fn new_entries_go_in_before_old_ones_are_removed() {
        let cur = state(&[
            "remark x",
            "20 permit tcp any any eq 22",
            "30 deny ip any any",
        ]);
        let (add, delete) = replace_commands("A", &cur, &[(10, "permit ip any any".into())]);
        assert_eq!(
            add,
            [
                "ip access-list resequence A 100000 10",
                "ip access-list extended A",
                "10 permit ip any any"
            ]
        );
        assert_eq!(delete, ["no 100000", "no 100010", "no 100020", "end"]);
        let (add, delete) = replace_commands(
            "A",
            &AclState::default(),
            &[(10, "permit ip any any".into())],
        );
        assert_eq!(add, ["ip access-list extended A", "10 permit ip any any"]);
        assert_eq!(delete, ["end"]);
    }

    #[test]
    fn remarks_slot_in_after_their_rule() {
        let prev = state(&[
            "remark top",
            "20 permit tcp any any eq 22",
            "remark mid",
            "30 deny ip any any",
        ]);
        assert_eq!(
            previous_numbered(&prev)
                .iter()
                .map(|(s, _)| *s)
                .collect::<Vec<_>>(),
            [10, 20, 21, 30]
        );
        let tight = state(&["20 permit tcp any any", "remark r", "21 deny ip any any"]);
        assert_eq!(
            previous_numbered(&tight)
                .iter()
                .map(|(s, _)| *s)
                .collect::<Vec<_>>(),
            [10, 20, 30]
        );
    }
}
