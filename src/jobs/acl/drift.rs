//! Drift protection: a push that expects the device's ACL to be what it
//! was seen as earlier (by the window's plan, or as a run left it, for a
//! rollback) and finds it changed since then (someone changed it by hand)
//! does not overwrite that change silently.

use serde::{Deserialize, Serialize};

use super::ace::Entry;
use super::diff;
use super::read::{AclState, Found};

/// What to do with a device whose ACL changed since it was last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnDrift {
    /// Reported `skipped` with the drift; nothing is sent.
    #[default]
    Skip,
    /// Replaced anyway; the report keeps the drift as a warning.
    Proceed,
}

/// The ACL a device is expected to hold when its push begins.
#[derive(Debug, Clone)]
pub struct Expected {
    pub found: Found,
    /// Where the expectation comes from, for messages: "the plan
    /// nightly-20261205T2200Z-plan (read 2026-12-05 04:00 UTC)".
    pub source: String,
    pub on_drift: OnDrift,
}

impl Expected {
    /// The drift between the expectation and `now`, as `- was` / `+ is`
    /// lines; `None` when the device holds what was expected.
    pub fn drift(&self, now: &AclState) -> Option<Vec<String>> {
        let (exists, entries, shown) = parsed(&self.found);
        let now_entries = now.entries_only();
        if exists == now.exists && entries == now_entries {
            return None;
        }
        let now_shown: Vec<String> = now.entries.iter().map(|p| p.shown.clone()).collect();
        let mut lines = diff::diff_shown(&entries, &shown, &now_entries, &now_shown);
        if exists != now.exists {
            lines.insert(
                0,
                if now.exists {
                    "+ (the ACL was created since)".to_string()
                } else {
                    "- (the ACL was removed since)".to_string()
                },
            );
        }
        Some(lines)
    }
}

/// Exists, entries and their text; an entry that no longer parses (a
/// record of another version) compares as its text.
fn parsed(found: &Found) -> (bool, Vec<Entry>, Vec<String>) {
    let shown: Vec<String> = found.entries.iter().map(|(_, s)| s.clone()).collect();
    let entries = shown
        .iter()
        .map(|s| {
            super::ace::parse_entry(s, found.family)
                .map(|l| l.entry)
                .unwrap_or_else(|_| Entry::Rule(s.clone()))
        })
        .collect();
    (found.exists, entries, shown)
}
