//! One device's work in a job: an ACL push or show commands.

use super::rollback;
use super::*;

/// What one device does in a per-device job.
pub(super) enum Work {
    /// The job's ACL, the ACL of each device whose lines are its own (a
    /// template), and whether this is a dry run.
    Acl(AclJob, HashMap<String, AclJob>, bool),
    /// Each device's ACL before the run rolled back.
    Rollback(Arc<rollback::RollbackSet>, bool),
    Exec(Vec<String>),
}

impl Work {
    /// Why `device` is left alone without being connected to, if it is.
    pub(super) fn refusal(&self, device: &str) -> Option<String> {
        match self {
            Work::Rollback(set, _) if !set.devices.contains_key(device) => Some(
                set.refused
                    .get(device)
                    .cloned()
                    .unwrap_or_else(|| format!("run {} did not change it", set.of)),
            ),
            _ => None,
        }
    }

    /// `in_flight`: an earlier attempt began this device and died, with
    /// what it found on the device if it journalled that. `expected`: the
    /// ACL the window's plan read on it.
    pub(super) async fn run(
        &self,
        link: &DeviceLink,
        in_flight: Option<Option<serde_json::Value>>,
        expected: Option<&crate::jobs::acl::Expected>,
    ) -> (DeviceRecord, bool) {
        let name = link.target.name.clone();
        let pushed = match self {
            Work::Acl(job, own, dry_run) => {
                let job = own.get(&name).unwrap_or(job);
                Some(push_acl(link, job, *dry_run, in_flight, expected).await)
            }
            Work::Rollback(set, dry_run) => match set.devices.get(&name) {
                Some(d) => Some(push_acl(link, &d.job, *dry_run, in_flight, Some(&d.left)).await),
                None => {
                    let why = self.refusal(&name).unwrap_or_default();
                    return (DeviceRecord::plain(&name, "skipped", why), false);
                }
            },
            Work::Exec(_) => None,
        };
        match (self, pushed) {
            (_, Some(r)) => {
                let reason = match r.status {
                    Status::NotStarted => r.error.clone(),
                    Status::Failed | Status::Skipped => {
                        let mut why = format!(
                            "{}{}",
                            r.step
                                .as_deref()
                                .map(|s| format!("at {s}: "))
                                .unwrap_or_default(),
                            r.error.clone().unwrap_or_default()
                        );
                        if let Some(line) = &r.line {
                            why.push_str(&format!(" (line `{line}`)"));
                        }
                        if let Some(restored) = &r.restored {
                            why.push_str(&format!("; {restored}"));
                        }
                        Some(why)
                    }
                    _ => None,
                };
                let rejected = r.auth_rejected;
                let status = r.status.name().to_string();
                (
                    DeviceRecord {
                        device: name,
                        status,
                        reason,
                        detail: serde_json::value::to_raw_value(&r).ok(),
                        stopped: false,
                    },
                    rejected,
                )
            }
            (Work::Exec(commands), None) => {
                let r = run_commands_on(link, commands).await;
                let status = if r.error.is_none() { "ok" } else { "failed" };
                let rejected = r.auth_rejected;
                (
                    DeviceRecord {
                        device: name,
                        status: status.into(),
                        reason: r.error.clone(),
                        detail: serde_json::value::to_raw_value(&r).ok(),
                        stopped: false,
                    },
                    rejected,
                )
            }
            (_, None) => (
                DeviceRecord::plain(&name, "failed", "nothing to do".into()),
                false,
            ),
        }
    }
}

/// Whether a device's change may still begin: not once the run was stopped
/// (SIGTERM, Ctrl-C) or its window has closed. A device that connected
/// before then stops at this safe point, as it was found.
pub(super) fn change_guard(
    stop: CancellationToken,
    deadline: Option<DateTime<Utc>>,
    clock: Arc<dyn Clock>,
) -> crate::device::ChangeGuard {
    Arc::new(move || {
        Some(match run_end(&stop, deadline, clock.now())? {
            RunEnd::Stopped => {
                format!("{STOPPED} before this device's change began; nothing was changed")
            }
            RunEnd::Closed(at) => format!(
                "window closed at {} before this device's change began; nothing was changed",
                at.format("%H:%M:%S UTC")
            ),
        })
    })
}
