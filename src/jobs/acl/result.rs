//! What a push did on one device: the status and everything the report
//! shows about it.

use serde::Serialize;

use super::StepTime;
use super::read::{Binding, Found};
use crate::device::{DeviceError, Negotiated};
use crate::jobs::Steps;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Changed,
    Unchanged,
    /// `--dry-run`: this diff would be applied.
    WouldChange,
    Failed,
    Skipped,
    /// Read, but its change did not begin: the window closed or the run
    /// was stopped first. Nothing was changed.
    NotStarted,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Changed => "changed",
            Status::Unchanged => "unchanged",
            Status::WouldChange => "would-change",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::NotStarted => "not-started",
        }
    }
}

/// One device's result.
#[derive(Debug, Clone, Serialize)]
pub struct AclResult {
    pub name: String,
    /// The ACL the job replaces.
    pub acl: String,
    pub status: Status,
    /// The step that failed.
    pub step: Option<String>,
    /// The line the device refused, if one was.
    pub line: Option<String>,
    pub error: Option<String>,
    pub hint: Option<String>,
    /// After a failure: what became of the previous ACL.
    pub restored: Option<String>,
    pub before: Vec<String>,
    pub after: Vec<String>,
    pub diff: Vec<String>,
    /// The ACL found before the change, with its sequence numbers and
    /// whether it existed: what a plan compares the window against, and
    /// what a rollback puts back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<Found>,
    /// How the device's ACL differs from what was expected (the plan's
    /// read, or what the run being rolled back left): `- was`, `+ is`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<String>,
    pub bindings: Vec<Binding>,
    pub safety_net: Option<String>,
    /// Problems that did not undo the change (cleanup after a verified
    /// commit, a save that failed, no checkpoint): the device is as the
    /// status says, and these need a look.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub steps: Vec<StepTime>,
    pub algorithms: Option<Negotiated>,
    #[serde(skip)]
    pub auth_rejected: bool,
}

impl AclResult {
    pub fn new(name: &str, acl: &str) -> AclResult {
        AclResult {
            name: name.into(),
            acl: acl.into(),
            status: Status::Failed,
            step: None,
            line: None,
            error: None,
            hint: None,
            restored: None,
            before: Vec::new(),
            after: Vec::new(),
            diff: Vec::new(),
            found: None,
            drift: Vec::new(),
            bindings: Vec::new(),
            safety_net: None,
            warnings: Vec::new(),
            steps: Vec::new(),
            algorithms: None,
            auth_rejected: false,
        }
    }

    pub(super) fn failed(
        mut self,
        step: &str,
        line: Option<String>,
        e: &DeviceError,
        steps: Steps,
    ) -> AclResult {
        self.status = Status::Failed;
        self.step = Some(step.into());
        self.line = line;
        self.auth_rejected = e.is_auth_rejected();
        self.error = Some(match e {
            DeviceError::CommandRejected { message, .. } => message.clone(),
            other => other.to_string(),
        });
        self.hint = e.hint();
        self.steps = steps.done;
        self
    }
}
