//! The run history: `<state_dir>/history/<run id>.json`, one report per
//! run, as `report list` shows it — a damaged file included, named as such.

use std::path::{Path, PathBuf};

use super::Report;

/// One file of the history.
#[derive(Debug)]
pub struct Run {
    pub id: String,
    pub file: PathBuf,
    /// The report's subject line, or why the file is not a report.
    pub summary: Result<String, String>,
}

/// Every file of the history, by run id.
pub fn scan(state_dir: &Path) -> Vec<Run> {
    let dir = state_dir.join("history");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut runs: Vec<Run> = rd
        .flatten()
        .filter_map(|f| {
            let name = f.file_name().to_string_lossy().into_owned();
            let id = name
                .strip_suffix(".json")
                .filter(|_| !name.starts_with('.'))?;
            let file = f.path();
            Some(Run {
                id: id.to_string(),
                summary: read(&file),
                file,
            })
        })
        .collect();
    runs.sort_by(|a, b| a.id.cmp(&b.id));
    runs
}

fn read(file: &Path) -> Result<String, String> {
    let bytes = std::fs::read(file).map_err(|e| e.to_string())?;
    let json: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("not JSON (cut short?): {e}"))?;
    if !json["run_id"].is_string() || !json["jobs"].is_array() || !json["devices"].is_array() {
        return Err("not a nightshift report (no run_id, jobs or devices)".into());
    }
    Ok(Report { json }.subject())
}
