//! Read-only commands on one device (`exec` jobs and `nightshift exec`).

use serde::Serialize;

use super::fleet::Outcome;
use crate::device::{DeviceError, DeviceLink, Negotiated, session_addr};

#[derive(Debug, Serialize)]
pub struct CommandResult {
    pub command: String,
    pub output: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DeviceResult {
    pub name: String,
    pub address: String,
    pub status: &'static str,
    pub error: Option<String>,
    pub hint: Option<String>,
    pub algorithms: Option<Negotiated>,
    pub host_key_learned: bool,
    pub outputs: Vec<CommandResult>,
    #[serde(skip)]
    pub auth_rejected: bool,
}

impl Outcome for DeviceResult {
    fn auth_rejected(&self) -> bool {
        self.auth_rejected
    }
}

impl DeviceResult {
    pub fn new(name: &str, address: String) -> Self {
        DeviceResult {
            name: name.into(),
            address,
            status: "failed",
            error: None,
            hint: None,
            algorithms: None,
            host_key_learned: false,
            outputs: Vec::new(),
            auth_rejected: false,
        }
    }
}

/// Runs `commands` on one device; a refused command is recorded and the
/// next one still runs.
pub async fn run_commands_on(link: &DeviceLink, commands: &[String]) -> DeviceResult {
    let t = &link.target;
    let mut r = DeviceResult::new(&t.name, session_addr(&t.host, t.port));
    let mut session = match link.open().await {
        Ok(s) => s,
        Err(e) => {
            r.auth_rejected = e.is_auth_rejected();
            r.hint = e.hint();
            r.error = Some(e.to_string());
            return r;
        }
    };
    let mut first_error: Option<DeviceError> = None;
    for c in commands {
        match session.command(c).await {
            Ok(output) => r.outputs.push(CommandResult {
                command: c.clone(),
                output: Some(output),
                error: None,
            }),
            Err(e) => {
                r.outputs.push(CommandResult {
                    command: c.clone(),
                    output: None,
                    error: Some(e.to_string()),
                });
                let fatal = !matches!(e, DeviceError::CommandRejected { .. });
                first_error.get_or_insert(e);
                if fatal {
                    break;
                }
            }
        }
    }
    r.algorithms = Some(session.negotiated().clone());
    r.host_key_learned = session.learned_host_key();
    session.close().await;
    r.status = if first_error.is_none() {
        "ok"
    } else {
        "failed"
    };
    r.hint = first_error.as_ref().and_then(DeviceError::hint);
    r.error = first_error.map(|e| e.to_string());
    r
}
