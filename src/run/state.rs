//! The alert state of every monitor in one small JSON file, so a restarted `watchkeeper run`
//! does not re-send alerts that are still open (the file plays the role of `status.openAlerts`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::RunError;
use crate::alert::AlertState;
use crate::monitor::MonitorKey;

/// Name of the state file inside the state directory.
pub const FILE_NAME: &str = "alerts.json";

#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    /// Alert state per monitor, keyed `namespace/name`.
    monitors: BTreeMap<String, AlertState>,
}

/// The state file of a state directory.
#[derive(Clone, Debug)]
pub struct StateStore {
    path: PathBuf,
}

impl StateStore {
    /// The store in `dir` (created on first save).
    pub fn new(dir: &Path) -> Self {
        Self {
            path: dir.join(FILE_NAME),
        }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the saved states; a missing file is an empty state, a corrupt one an error (so
    /// alerts are not silently re-sent).
    pub fn load(&self) -> Result<BTreeMap<String, AlertState>, RunError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(self.io(e)),
        };
        let file: StateFile = serde_json::from_str(&text).map_err(|e| RunError::State {
            path: self.path.display().to_string(),
            message: format!(
                "{e} (delete the file to start afresh; open alerts would be sent again)"
            ),
        })?;
        Ok(file.monitors)
    }

    /// Writes every monitor's state (to a temporary file renamed over the old one, so a crash
    /// never leaves half a file).
    pub fn save(&self, states: &BTreeMap<MonitorKey, AlertState>) -> Result<(), RunError> {
        let file = StateFile {
            version: 1,
            monitors: states
                .iter()
                .map(|(k, s)| (k.to_string(), s.clone()))
                .collect(),
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        }
        let text = serde_json::to_string_pretty(&file).map_err(|e| RunError::State {
            path: self.path.display().to_string(),
            message: e.to_string(),
        })?;
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(|e| self.io(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.io(e))
    }

    fn io(&self, e: std::io::Error) -> RunError {
        RunError::State {
            path: self.path.display().to_string(),
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_a_corrupt_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("wk-state-{}", std::process::id()));
        let store = StateStore::new(&dir);
        assert!(
            store.load().unwrap().is_empty(),
            "a missing file is an empty state"
        );
        let key = MonitorKey {
            namespace: "default".into(),
            name: "api".into(),
        };
        let mut state = AlertState::default();
        state.channels.insert("hook".into(), Default::default());
        store
            .save(&BTreeMap::from([(key.clone(), state.clone())]))
            .unwrap();
        assert_eq!(store.load().unwrap().get("default/api"), Some(&state));
        std::fs::write(store.path(), "{not json").unwrap();
        let error = store.load().unwrap_err().to_string();
        assert!(error.contains("delete the file to start afresh"), "{error}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
