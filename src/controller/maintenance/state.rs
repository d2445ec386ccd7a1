//! Per-process state of the MaintenanceWindow controller and its one status writer.
//!
//! One writer per status: every MaintenanceWindow status write — the lifecycle's own (window
//! opened, effect recorded, task started, …) and the controller core's condition write — goes
//! through [`MaintenanceWindows::persist`] with the whole status this field manager owns, so
//! neither drops the other's fields under server-side apply. The latest written status is
//! kept in memory (the watch cache may lag behind it); on first sight of a window in a term it
//! is read fresh from the API server.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::error::Error;
use super::index::MaintenanceIndex;
use super::metrics::MaintenanceMetrics;
use super::progress::SqlRun;
use super::sql::SqlOutcome;
use crate::alert::AlertState;
use crate::api::maintenance_window::{MaintenanceWindowStatus, condition};
use crate::api::{Condition, MaintenanceWindow};
use crate::controller::context::FIELD_MANAGER;

/// How often windows are checked against the Controller's store (deletions without a
/// finalizer: the index entry and metrics are dropped).
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The MaintenanceWindows of one controller process.
pub struct MaintenanceWindows {
    /// The calendar the other kinds read.
    pub index: Arc<MaintenanceIndex>,
    /// Gauges.
    pub metrics: MaintenanceMetrics,
    statuses: Mutex<BTreeMap<String, MaintenanceWindowStatus>>,
    /// Per-window notice delivery state (which channels accepted which notice).
    pub(super) notice_state: Mutex<BTreeMap<String, AlertState>>,
    writing: tokio::sync::Mutex<()>,
    sql_runs: Mutex<BTreeMap<String, tokio::task::JoinHandle<SqlOutcome>>>,
    store: Mutex<Option<Store<DynamicObject>>>,
    resource: ApiResource,
}

impl MaintenanceWindows {
    /// The windows of a process, filling `index`.
    pub fn new(index: Arc<MaintenanceIndex>, metrics: MaintenanceMetrics) -> Self {
        Self {
            index,
            metrics,
            statuses: Mutex::new(BTreeMap::new()),
            notice_state: Mutex::new(BTreeMap::new()),
            writing: tokio::sync::Mutex::new(()),
            sql_runs: Mutex::new(BTreeMap::new()),
            store: Mutex::new(None),
            resource: ApiResource::erase::<MaintenanceWindow>(&()),
        }
    }

    /// Hands over the MaintenanceWindow Controller's store, for the deletion sweep.
    pub fn set_store(&self, store: Store<DynamicObject>) {
        *self.store.lock().unwrap_or_else(PoisonError::into_inner) = Some(store);
    }

    /// The latest status of `namespace/name`: from memory, else read from the API server.
    pub async fn load(
        &self,
        client: &Client,
        namespace: &str,
        name: &str,
    ) -> Result<MaintenanceWindowStatus, Error> {
        let key = format!("{namespace}/{name}");
        if let Some(status) = self
            .statuses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return Ok(status.clone());
        }
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &self.resource);
        let object = api
            .get_opt(name)
            .await
            .map_err(|e| Error::api("get", "MaintenanceWindow", namespace, name, e))?;
        Ok(object
            .and_then(|o| o.data.get("status").cloned())
            .and_then(|s| serde_json::from_value(s).ok())
            .unwrap_or_default())
    }

    /// Writes the whole owned status of `namespace/name` and remembers it. A window that is
    /// gone (404) is not an error.
    pub async fn persist(
        &self,
        client: &Client,
        namespace: &str,
        name: &str,
        status: &MaintenanceWindowStatus,
    ) -> Result<(), Error> {
        let _writing = self.writing.lock().await;
        self.send(client, namespace, name, status)
            .await
            .map_err(|e| Error::api("patch status of", "MaintenanceWindow", namespace, name, e))
    }

    async fn send(
        &self,
        client: &Client,
        namespace: &str,
        name: &str,
        status: &MaintenanceWindowStatus,
    ) -> Result<(), kube::Error> {
        let body = json!({
            "apiVersion": self.resource.api_version,
            "kind": self.resource.kind,
            "status": status,
        });
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &self.resource);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        match api.patch_status(name, &params, &Patch::Apply(&body)).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e),
        }
        self.statuses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(format!("{namespace}/{name}"), status.clone());
        Ok(())
    }

    /// The controller core's status write: its conditions and observedGeneration with this
    /// module's fields (and its own `Open` condition, which the core does not manage).
    pub async fn write_conditions(
        &self,
        client: &Client,
        namespace: &str,
        name: &str,
        conditions: &[Condition],
        observed_generation: Option<i64>,
    ) -> Result<(), kube::Error> {
        let mut status = match self.load(client, namespace, name).await {
            Ok(status) => status,
            Err(Error::Api { source, .. }) => return Err(*source),
            Err(_) => MaintenanceWindowStatus::default(),
        };
        let own: Vec<Condition> = status
            .conditions
            .iter()
            .filter(|c| c.type_ == condition::OPEN)
            .cloned()
            .collect();
        let mut merged: Vec<Condition> = conditions
            .iter()
            .filter(|c| c.type_ != condition::OPEN)
            .cloned()
            .collect();
        merged.extend(own);
        status.conditions = merged;
        status.observed_generation = observed_generation;
        let _writing = self.writing.lock().await;
        self.send(client, namespace, name, &status).await
    }

    /// Remembers a background SQL run.
    pub(super) fn sql_runs_insert(&self, key: String, handle: tokio::task::JoinHandle<SqlOutcome>) {
        self.sql_runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, handle);
    }

    /// The state of a background SQL run; a finished one is taken out of memory.
    pub(super) fn sql_run_take_finished(&self, key: &str) -> SqlRun {
        let mut runs = self.sql_runs.lock().unwrap_or_else(PoisonError::into_inner);
        match runs.get(key) {
            None => SqlRun::Unknown,
            Some(handle) if !handle.is_finished() => SqlRun::Running,
            Some(_) => {
                let Some(handle) = runs.remove(key) else {
                    return SqlRun::Unknown;
                };
                // Finished: `now_or_never` on a finished JoinHandle yields at once.
                match futures::FutureExt::now_or_never(handle) {
                    Some(Ok(outcome)) => SqlRun::Finished(outcome),
                    Some(Err(error)) => SqlRun::Finished(SqlOutcome {
                        succeeded: false,
                        completed: 0,
                        message: format!("the SQL task stopped unexpectedly: {error}"),
                    }),
                    None => SqlRun::Unknown,
                }
            }
        }
    }

    /// Forgets a window's remembered status (deleted, or another term begins).
    pub fn forget(&self, namespace: &str, name: &str) {
        let key = format!("{namespace}/{name}");
        self.statuses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key);
        self.notice_state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key);
    }

    /// Drops index entries, metrics and memory of windows no longer in the store.
    fn sweep(&self) {
        let Some(store) = self
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        else {
            return;
        };
        for key in self.index.keys() {
            let Some((namespace, name)) = key.split_once('/') else {
                continue;
            };
            let reference = ObjectRef::new_with(name, self.resource.clone()).within(namespace);
            if store.get(&reference).is_none() {
                self.index.remove(namespace, name);
                self.metrics.remove(namespace, name);
                self.forget(namespace, name);
            }
        }
    }

    /// Runs the deletion sweep until `stop`. Called once per leadership term: what was
    /// remembered from an earlier term may be stale (another replica acted meanwhile), so it
    /// is forgotten first; at the end of the term running SQL tasks are stopped.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        self.statuses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = sweep.tick() => self.sweep(),
            }
        }
        // This process no longer acts: SQL tasks it runs are stopped (their connections close);
        // whoever reconciles next marks them interrupted and does not run them again.
        let runs =
            std::mem::take(&mut *self.sql_runs.lock().unwrap_or_else(PoisonError::into_inner));
        for (key, handle) in runs {
            handle.abort();
            tracing::info!(task = %key, "SQL task stopped with the controller");
        }
    }
}
