//! The alert state of every monitor, and the memory and alert state of every CronJobSpec, in
//! one small JSON file, so a restarted `watchkeeper run` does not re-send alerts that are still
//! open and keeps its jobs' counts (the file plays the role of the resources' status).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::RunError;
use crate::alert::AlertState;
use crate::jobs::JobKey;
use crate::monitor::MonitorKey;
use crate::schedule::watch::JobMemory;

/// Name of the state file inside the state directory.
pub const FILE_NAME: &str = "alerts.json";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    /// Alert state per monitor, keyed `namespace/name`.
    monitors: BTreeMap<String, AlertState>,
    /// What each CronJobSpec remembers, keyed `namespace/name` (absent in files written before
    /// embedded jobs existed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    jobs: BTreeMap<String, SavedJob>,
}

/// What a CronJobSpec run in-process keeps across restarts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedJob {
    /// Schedule times, last success and failure, consecutive failures, last run.
    #[serde(default)]
    pub memory: JobMemory,
    /// Open alerts and what each channel was told.
    #[serde(default)]
    pub alerts: AlertState,
    /// When the job was first run here: the start of its dead-man's switch and lateness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watching_since: Option<DateTime<Utc>>,
}

/// The state file of a state directory. Clones share the last saved contents, so monitors and
/// jobs can save their parts independently without overwriting each other's.
#[derive(Clone, Debug)]
pub struct StateStore {
    path: PathBuf,
    contents: Arc<Mutex<StateFile>>,
}

impl StateStore {
    /// The store in `dir` (created on first save).
    pub fn new(dir: &Path) -> Self {
        Self {
            path: dir.join(FILE_NAME),
            contents: Arc::default(),
        }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the saved states; a missing file is an empty state, a corrupt one an error (so
    /// alerts are not silently re-sent).
    pub fn load(&self) -> Result<BTreeMap<String, AlertState>, RunError> {
        Ok(self.read()?.monitors)
    }

    /// Reads the saved jobs, keyed `namespace/name` (a missing file holds none).
    pub fn load_jobs(&self) -> Result<BTreeMap<String, SavedJob>, RunError> {
        Ok(self.read()?.jobs)
    }

    fn read(&self) -> Result<StateFile, RunError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(StateFile::default()),
            Err(e) => return Err(self.io(e)),
        };
        let file: StateFile = serde_json::from_str(&text).map_err(|e| RunError::State {
            path: self.path.display().to_string(),
            message: format!(
                "{e} (delete the file to start afresh; open alerts would be sent again)"
            ),
        })?;
        // What is on disk is the base the next partial save builds on.
        *self.lock() = file.clone();
        Ok(file)
    }

    /// Writes every monitor's state (to a temporary file renamed over the old one, so a crash
    /// never leaves half a file); the jobs' part is kept as last saved.
    pub fn save(&self, states: &BTreeMap<MonitorKey, AlertState>) -> Result<(), RunError> {
        let mut contents = self.lock();
        contents.version = 1;
        contents.monitors = states
            .iter()
            .map(|(k, s)| (k.to_string(), s.clone()))
            .collect();
        self.write(&contents)
    }

    /// Writes every job's state; the monitors' part is kept as last saved.
    pub fn save_jobs(&self, jobs: &BTreeMap<JobKey, SavedJob>) -> Result<(), RunError> {
        let mut contents = self.lock();
        contents.version = 1;
        contents.jobs = jobs
            .iter()
            .map(|(k, s)| (k.to_string(), s.clone()))
            .collect();
        self.write(&contents)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StateFile> {
        // A panic while holding the lock leaves valid data behind (fields are replaced whole).
        self.contents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes `file` while the caller holds the lock, so two writers never interleave.
    fn write(&self, file: &StateFile) -> Result<(), RunError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        }
        let text = serde_json::to_string_pretty(file).map_err(|e| RunError::State {
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
        // Jobs and monitors save their parts without overwriting each other's.
        let job = JobKey {
            namespace: "default".into(),
            name: "crawl".into(),
        };
        let saved = SavedJob {
            memory: JobMemory {
                consecutive_failures: 3,
                ..JobMemory::default()
            },
            ..SavedJob::default()
        };
        store
            .save_jobs(&BTreeMap::from([(job, saved.clone())]))
            .unwrap();
        store
            .save(&BTreeMap::from([(key.clone(), state.clone())]))
            .unwrap();
        let reopened = StateStore::new(&dir);
        assert_eq!(reopened.load().unwrap().get("default/api"), Some(&state));
        assert_eq!(
            reopened.load_jobs().unwrap().get("default/crawl"),
            Some(&saved)
        );
        // A fresh store seeded by load keeps the jobs when monitors save first.
        reopened.save(&BTreeMap::new()).unwrap();
        assert_eq!(StateStore::new(&dir).load_jobs().unwrap().len(), 1);
        std::fs::write(store.path(), "{not json").unwrap();
        let error = store.load().unwrap_err().to_string();
        assert!(error.contains("delete the file to start afresh"), "{error}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
