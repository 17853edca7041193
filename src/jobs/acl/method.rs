//! One interface for every platform's way of replacing an ACL: reading it,
//! applying a change under the device's own undo, verifying, confirming
//! and restoring. The push (`mod.rs`) is written once against it; IOS
//! (`ios.rs`) and NX-OS (`nxos.rs`) each implement it, and a new platform
//! is one more implementation, not new branches in the push. What differs
//! between families is data in `family.rs`.

use std::future::Future;

use super::ace::Entry;
use super::read::AclState;
use super::{AclJob, AclRef, ApplyFail, Safety};
use crate::device::{DeviceError, Session};

/// How a verified change was made final.
pub(crate) enum Confirmed {
    Done,
    /// Final, with something to tell the engineer.
    Warning(String),
    /// Not final: the device undoes the change by itself (`note` says how).
    Failed {
        line: String,
        error: DeviceError,
        note: String,
    },
}

pub(crate) trait AclMethod: Sync {
    /// The ACL and where it is bound (and what else the change needs to
    /// know, such as the switch's checkpoints), in as few round trips as
    /// the platform allows.
    fn read(
        &self,
        s: &mut Session,
        acl: &AclRef<'_>,
    ) -> impl Future<Output = Result<AclState, DeviceError>> + Send;

    /// Just the ACL's entries, to verify a change or a restore.
    fn read_entries(
        &self,
        s: &mut Session,
        acl: &AclRef<'_>,
    ) -> impl Future<Output = Result<AclState, DeviceError>> + Send;

    /// The command whose output verification reads, for its messages.
    fn shown_by(&self, acl: &AclRef<'_>) -> String;

    /// The order in which the device processes the entries, as indices
    /// (where the device keeps an order of its own, as IOS does for a
    /// standard ACL's hosts).
    fn order(&self, _acl: &AclRef<'_>, entries: &[Entry]) -> Vec<usize> {
        (0..entries.len()).collect()
    }

    /// The entries as the device processes them, to compare two ACLs.
    fn compared(&self, acl: &AclRef<'_>, entries: &[Entry]) -> Vec<Entry> {
        self.order(acl, entries)
            .into_iter()
            .filter_map(|i| entries.get(i).cloned())
            .collect()
    }

    /// Whether the device's ACL equals the intent beyond its entries (the
    /// sequence numbers a platform keeps, when the intent gives them).
    fn same_numbers(&self, _current: &AclState, _job: &AclJob) -> bool {
        true
    }

    /// Clears what an earlier attempt that died left pending on the device.
    fn discard_pending(
        &self,
        _s: &mut Session,
        _acl: &AclRef<'_>,
    ) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Makes the change, under the device's own undo when it has one.
    fn apply(
        &self,
        s: &mut Session,
        current: &AclState,
        job: &AclJob,
    ) -> impl Future<Output = Result<Safety, (Safety, ApplyFail)>> + Send;

    /// The undo a change applied by an earlier attempt is under.
    fn pending_safety(&self, job: &AclJob) -> Safety;

    /// Makes a verified change final.
    fn confirm(&self, s: &mut Session, safety: &Safety) -> impl Future<Output = Confirmed> + Send;

    /// Puts the previous ACL back, the same careful way, from whatever state
    /// the device is in now.
    fn restore(
        &self,
        s: &mut Session,
        before: &AclState,
        job: &AclJob,
        safety: &Safety,
    ) -> impl Future<Output = Result<(), DeviceError>> + Send;

    /// After a verified restore: drops the undo no longer needed; whether
    /// that went through.
    fn after_restore(&self, s: &mut Session, safety: &Safety) -> impl Future<Output = bool> + Send;

    /// What the device is left with when nightshift cannot reconnect to
    /// restore it, in words.
    fn unreachable(&self, safety: &Safety, error: &DeviceError, acl_name: &str) -> String;
}
