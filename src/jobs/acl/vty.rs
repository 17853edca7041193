//! The ACL that guards the vty lines (`access-class`, `ipv6
//! access-class`): replacing it must not lock the management out. The
//! change itself never leaves the lines unfiltered (entries go in before
//! old ones leave), and `access-class` is checked when a session starts,
//! so the session making the change stays in. What could still go wrong
//! is the new ACL itself: one that no longer admits the place nightshift
//! logs in from would lock out every later run, and the engineers beside
//! it. So after a verified change to such an ACL, and before it is
//! confirmed and saved, nightshift logs in once more on a new session;
//! if that login is refused, the previous ACL is put back through the
//! session still open, as for any failed verification.

use super::ApplyFail;
use super::read::Binding;
use crate::device::{DeviceError, DeviceLink};

/// The step a refused login fails at.
pub const STEP: &str = "login-check";

/// Whether the ACL is bound on vty lines.
pub fn guards_vty(bindings: &[Binding]) -> bool {
    bindings.iter().any(|b| b.interface.starts_with("vty"))
}

/// A new login while the change's session stays open: `None` when it
/// succeeds.
pub async fn login_check(link: &DeviceLink, acl: &str) -> Option<ApplyFail> {
    match link.open().await {
        Ok(s) => {
            s.close().await;
            None
        }
        Err(e) => Some(ApplyFail {
            step: STEP,
            line: None,
            error: DeviceError::CommandRejected {
                device: link.target.name.clone(),
                command: "login".into(),
                indicator: "vty".into(),
                message: format!(
                    "{acl} guards the vty lines, and with the new entries a new login was refused ({e}): it would lock out nightshift and whoever logs in from where it does"
                ),
            },
            touched: true,
        }),
    }
}

/// What to do about it.
pub const HINT: &str = "make the ACL permit the management stations, nightshift's address (or its jump host's) among them, then run again";
