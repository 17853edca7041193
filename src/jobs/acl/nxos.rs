//! NX-OS: one `configure session`, verified and committed atomically, with
//! a checkpoint to roll back to.

use super::read::{self, AclState};
use super::{AclJob, ApplyFail, Safety};
use crate::device::{DeviceError, Session};

pub async fn read(s: &mut Session, name: &str) -> Result<AclState, DeviceError> {
    let out = s.command("show running-config aclmgr").await?;
    Ok(read::nxos_aclmgr(&out, name))
}

fn session_name(acl: &str) -> String {
    format!("nightshift-{acl}")
}

pub fn checkpoint_name(acl: &str) -> String {
    format!("nightshift-before-{acl}")
}

/// Discards a configuration session an earlier, dead attempt left pending.
pub async fn discard_pending(s: &mut Session, acl: &str) {
    if s.command(&format!("configure session {}", session_name(acl)))
        .await
        .is_ok()
    {
        let _ = s.command("abort").await;
    }
}

/// Deletions of every current entry, then the target entries.
fn session_commands(name: &str, current: &AclState, target: &[(u32, String)]) -> Vec<String> {
    let mut cmds = vec![format!("ip access-list {name}")];
    cmds.extend(
        current
            .entries
            .iter()
            .filter_map(|p| p.seq)
            .map(|seq| format!("no {seq}")),
    );
    cmds.extend(target.iter().map(|(seq, text)| format!("{seq} {text}")));
    cmds
}

/// Runs `cmds` in a configuration session: all or nothing.
async fn in_session(s: &mut Session, acl: &str, cmds: &[String]) -> Result<(), ApplyFail> {
    let session = session_name(acl);
    let fail = |step, line: &str, error, touched| ApplyFail {
        step,
        line: Some(line.to_string()),
        error,
        touched,
    };
    let enter = format!("configure session {session}");
    s.command(&enter)
        .await
        .map_err(|e| fail("configure", &enter, e, false))?;
    for c in cmds.iter().map(String::as_str).chain(["verify", "commit"]) {
        match s.command(c).await {
            Ok(out) if c == "verify" && !out.contains("Verification Successful") => {
                let _ = s.command("abort").await;
                let error = DeviceError::CommandRejected {
                    device: s.name().into(),
                    command: c.into(),
                    indicator: "verify".into(),
                    message: out.trim().to_string(),
                };
                return Err(fail("verify", c, error, false));
            }
            Ok(out) if c == "commit" && !out.contains("Commit Successful") => {
                let error = DeviceError::CommandRejected {
                    device: s.name().into(),
                    command: c.into(),
                    indicator: "commit".into(),
                    message: out.trim().to_string(),
                };
                return Err(fail("commit", c, error, false));
            }
            Ok(_) => {}
            Err(e) => {
                // Nothing is applied before `commit`; discard the session.
                if matches!(e, DeviceError::CommandRejected { .. }) {
                    let _ = s.command("abort").await;
                }
                return Err(fail("apply", c, e, false));
            }
        }
    }
    Ok(())
}

pub async fn apply(
    s: &mut Session,
    before: &AclState,
    job: &AclJob,
) -> Result<Safety, (Safety, ApplyFail)> {
    let safety = if job.safety_net {
        let cp = checkpoint_name(&job.acl_name);
        let _ = s.command(&format!("no checkpoint {cp}")).await;
        match s.command(&format!("checkpoint {cp}")).await {
            Ok(_) => Safety::Checkpoint(cp),
            Err(e) => Safety::Unavailable(format!("checkpoint failed: {e}")),
        }
    } else {
        Safety::Unavailable("safety_net = false".into())
    };
    let cmds = session_commands(&job.acl_name, before, &job.numbered());
    in_session(s, &job.acl_name, &cmds)
        .await
        .map_err(|f| (safety.clone(), f))?;
    Ok(safety)
}

/// Discards a pending session, then puts the previous ACL back if the
/// device no longer has it.
pub async fn restore(
    s: &mut Session,
    before: &AclState,
    job: &AclJob,
    safety: &Safety,
) -> Result<(), DeviceError> {
    s.command(&format!(
        "configure session {}",
        session_name(&job.acl_name)
    ))
    .await?;
    s.command("abort").await?;
    let now = read(s, &job.acl_name).await?;
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
        let previous: Vec<(u32, String)> = before
            .entries
            .iter()
            .enumerate()
            .map(|(k, p)| (p.seq.unwrap_or(10 * (k as u32 + 1)), p.shown.clone()))
            .collect();
        session_commands(&job.acl_name, &now, &previous)
    } else {
        vec![format!("no ip access-list {}", job.acl_name)]
    };
    in_session(s, &job.acl_name, &cmds)
        .await
        .map_err(|f| f.error)
}
