//! `[daemon]`: where state lives, the default zone, the control socket,
//! the lockout brake and the credential checks.

use std::path::PathBuf;

use super::super::DaemonSettings;
use super::super::doc::{Doc, Table};
use super::{DEFAULT_STATE_DIR, zone};

const DAEMON_KEYS: &[&str] = &[
    "state_dir",
    "timezone",
    "control_group",
    "control_socket",
    "max_auth_failures",
    "credential_check_lead",
    "keyring_service",
    "metrics_file",
];

pub(super) fn read_daemon(top: &mut Table<'_, '_>, doc: &mut Doc<'_>) -> DaemonSettings {
    let mut daemon = DaemonSettings {
        state_dir: PathBuf::from(DEFAULT_STATE_DIR),
        timezone: None,
        control_group: None,
        control_socket: PathBuf::from(crate::control::DEFAULT_SOCKET),
        max_auth_failures: 1,
        credential_check_lead: std::time::Duration::from_secs(3600),
        keyring_service: crate::credentials::SERVICE.to_string(),
        metrics_file: None,
    };
    if let Some(mut t) = top.table(doc, "daemon", DAEMON_KEYS) {
        if let Some(p) = t.string(doc, "state_dir") {
            if p.value.is_empty() {
                doc.problem(p.span, "daemon.state_dir", "must not be empty", None);
            } else {
                daemon.state_dir = PathBuf::from(p.value);
            }
        }
        daemon.timezone = zone(&mut t, doc, "timezone");
        daemon.control_group = t.string(doc, "control_group").map(|g| g.value);
        if let Some(n) = t.integer_in(doc, "max_auth_failures", 1..=100) {
            daemon.max_auth_failures = n.value as u32;
        }
        if let Some(p) = t.string(doc, "control_socket") {
            if p.value.starts_with('/') {
                daemon.control_socket = PathBuf::from(p.value);
            } else {
                doc.problem(
                    p.span,
                    "daemon.control_socket",
                    "must be an absolute path",
                    Some(format!("e.g. \"{}\"", crate::control::DEFAULT_SOCKET)),
                );
            }
        }
        if let Some(d) = t.duration(doc, "credential_check_lead") {
            daemon.credential_check_lead = d.value;
        }
        if let Some(s) = t.string(doc, "keyring_service") {
            if s.value.is_empty() {
                doc.problem(s.span, "daemon.keyring_service", "must not be empty", None);
            } else {
                daemon.keyring_service = s.value;
            }
        }
        if let Some(p) = t.string(doc, "metrics_file") {
            if p.value.starts_with('/') && p.value.ends_with(".prom") {
                daemon.metrics_file = Some(PathBuf::from(p.value));
            } else {
                doc.problem(
                    p.span,
                    "daemon.metrics_file",
                    "must be an absolute path ending in .prom (node_exporter's textfile collector reads only those)",
                    Some("e.g. \"/var/lib/prometheus/node-exporter/nightshift.prom\"".into()),
                );
            }
        }
        t.finish(doc);
    }
    daemon
}
