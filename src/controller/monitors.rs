//! HealthMonitors probed for real: the reconcile adapts each valid HealthMonitor and starts,
//! updates or stops it in one shared [`MonitorRuntime`]; a flusher writes the runtime's
//! snapshots back to `status`.
//!
//! One writer per status: every HealthMonitor status write (the core's condition write and the
//! periodic flush) goes through [`Monitors::write`], which sends the whole status this field
//! manager owns (conditions, observedGeneration and the monitor snapshot), so neither write
//! drops the other's fields under server-side apply.
//!
//! Coalescing: the snapshot is written every [`FLUSH_EVERY`], or at once when a monitor's
//! health changes, and only for monitors whose status differs from what was last written.
//!
//! Deletion: the kube-rs `Controller` does not reconcile objects that are gone, so the flusher
//! checks every [`JANITOR_EVERY`] whether each running monitor's object is still in the
//! Controller's store, and stops it when not (no finalizer needed: stopping a monitor is
//! in-process state only, there is nothing outside to clean up).

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::conditions::{ConditionStatus, DesiredCondition};
use super::context::FIELD_MANAGER;
use crate::alert::{AlertState, OpenAlertEntry};
use crate::api::health_monitor::HealthMonitorStatus;
use crate::api::{Condition, HealthMonitor};
use crate::monitor::{
    Environment, MonitorConfig, MonitorError, MonitorEvent, MonitorKey, MonitorMetrics,
    MonitorRuntime, SecretResolver, adapter, monitor_config,
};

/// Longest time a changed snapshot waits before it is written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(10);

/// How often running monitors are checked against the Controller's store (deletions).
pub const JANITOR_EVERY: Duration = Duration::from_secs(1);

/// Condition type saying whether the monitor is being probed.
pub const PROBING: &str = "Probing";

/// Reason of `Probing=True`.
pub const REASON_MONITORING: &str = "Monitoring";

/// Reason of `Probing=False` when the spec is valid but cannot be run (a Secret missing, a
/// JSONPath the engine refuses, …).
pub const REASON_CANNOT_PROBE: &str = "CannotProbe";

/// Reason of `Probing=False` when the spec is invalid (see the `Ready` condition).
pub const REASON_NOT_RUN: &str = "SpecInvalid";

/// Resolution rounds: each round may reveal Secrets the previous one did not reach.
const RESOLVE_ROUNDS: usize = 16;

/// What the controller knows about one running (or refused) monitor.
struct Entry {
    /// The spec it runs, to tell a spec change from a status-only watch event.
    spec: Value,
    /// Whether it runs in the runtime.
    running: bool,
    /// The conditions the core last wrote (or found stored).
    conditions: Vec<Condition>,
    /// The observedGeneration the core last wrote (or found stored).
    observed_generation: Option<i64>,
    /// The status body last written, so unchanged snapshots are not written again.
    written: Option<Value>,
}

/// The HealthMonitors of one controller process.
pub struct Monitors {
    runtime: Result<MonitorRuntime, String>,
    metrics: MonitorMetrics,
    entries: Mutex<BTreeMap<MonitorKey, Entry>>,
    /// Serialises status writes, so a flush and a core write never interleave.
    writing: tokio::sync::Mutex<()>,
    flush_now: Notify,
    store: Mutex<Option<Store<DynamicObject>>>,
    resource: ApiResource,
}

impl Monitors {
    /// The monitors of a process; `metrics` are where probe and alert metrics go. Must be
    /// called within a Tokio runtime. A runtime that cannot be built is reported on every
    /// HealthMonitor as `Probing=False`.
    pub fn new(metrics: MonitorMetrics) -> Self {
        let runtime = MonitorRuntime::new().map_err(|e| e.to_string());
        if let Err(error) = &runtime {
            warn!(%error, "the monitor runtime could not start; HealthMonitors are not probed");
        }
        Self {
            runtime,
            metrics,
            entries: Mutex::new(BTreeMap::new()),
            writing: tokio::sync::Mutex::new(()),
            flush_now: Notify::new(),
            store: Mutex::new(None),
            resource: ApiResource::erase::<HealthMonitor>(&()),
        }
    }

    /// Hands over the HealthMonitor Controller's store, for the deletion check.
    pub fn set_store(&self, store: Store<DynamicObject>) {
        *self.store.lock().unwrap_or_else(PoisonError::into_inner) = Some(store);
    }

    /// Whether a monitor runs in the runtime (tests and diagnostics).
    pub fn is_running(&self, key: &MonitorKey) -> bool {
        self.runtime
            .as_ref()
            .is_ok_and(|runtime| runtime.status(key).is_some())
    }

    /// Brings the runtime in line with a HealthMonitor: runs it when its spec is valid (start,
    /// or restart when the spec changed), stops it otherwise. Returns the `Probing` condition.
    pub async fn reconcile(
        &self,
        client: &Client,
        object: &HealthMonitor,
        spec_valid: bool,
    ) -> DesiredCondition {
        let key = MonitorKey {
            namespace: object.namespace().unwrap_or_default(),
            name: object.name_any(),
        };
        if !spec_valid {
            self.stop(&key);
            return not_run();
        }
        let runtime = match &self.runtime {
            Ok(runtime) => runtime,
            Err(error) => return cannot_probe(&format!("the monitor runtime is down: {error}")),
        };
        let spec = serde_json::to_value(&object.spec).unwrap_or(Value::Null);
        let stored = object.status.as_ref();
        {
            let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(entry) = entries.get(&key)
                && entry.running
                && entry.spec == spec
                && runtime.status(&key).is_some()
            {
                return monitoring();
            }
        }
        let config = match adapt(client, &key, object).await {
            Ok(config) => config,
            Err(error) => {
                self.stop(&key);
                self.remember(&key, spec, false, stored);
                warn!(monitor = %key, %error, "HealthMonitor cannot be probed");
                return cannot_probe(&error.to_string());
            }
        };
        let first_sight = !self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .is_some_and(|e| e.running);
        // On first sight (a new object, or this process just started or became leader) take
        // up what the previous process reported; on a spec change the running monitor's own
        // open alerts carry over.
        let (alert_state, restored) = if first_sight {
            (restored_alerts(stored, &config), stored)
        } else {
            let state = runtime
                .alert_states()
                .remove(&key)
                .unwrap_or_else(|| restored_alerts(stored, &config));
            (state, None)
        };
        if let Err(error) = runtime.start_restored(key.clone(), config, alert_state, restored) {
            self.stop(&key);
            self.remember(&key, spec, false, stored);
            return cannot_probe(&error.to_string());
        }
        if let Some(status) = runtime.status(&key) {
            self.metrics.set_health(&key, status.health);
        }
        info!(monitor = %key, first_sight, "HealthMonitor probing");
        self.remember(&key, spec, true, stored);
        monitoring()
    }

    fn remember(
        &self,
        key: &MonitorKey,
        spec: Value,
        running: bool,
        stored: Option<&HealthMonitorStatus>,
    ) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.entry(key.clone()).or_insert_with(|| Entry {
            spec: Value::Null,
            running: false,
            conditions: stored.map(|s| s.conditions.clone()).unwrap_or_default(),
            observed_generation: stored.and_then(|s| s.observed_generation),
            written: None,
        });
        entry.spec = spec;
        entry.running = running;
    }

    /// Stops a monitor (invalid spec, deletion, malformed object); returns whether it ran.
    pub fn stop(&self, key: &MonitorKey) -> bool {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
        let stopped = self.runtime.as_ref().is_ok_and(|r| r.stop(key));
        if stopped {
            info!(monitor = %key, "HealthMonitor no longer probed");
        }
        stopped
    }

    /// Writes a HealthMonitor's status: `conditions` and `observedGeneration` (the core's),
    /// plus the monitor's snapshot when it runs. Also records them for later flushes.
    pub async fn write(
        &self,
        client: &Client,
        key: &MonitorKey,
        conditions: &[Condition],
        observed_generation: Option<i64>,
    ) -> Result<(), kube::Error> {
        let _writing = self.writing.lock().await;
        let body = {
            let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            let entry = entries.entry(key.clone()).or_insert_with(|| Entry {
                spec: Value::Null,
                running: false,
                conditions: Vec::new(),
                observed_generation: None,
                written: None,
            });
            entry.conditions = conditions.to_vec();
            entry.observed_generation = observed_generation;
            self.body(key, entry)
        };
        self.send(client, key, &body).await?;
        if let Some(entry) = self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(key)
        {
            entry.written = Some(body);
        }
        Ok(())
    }

    /// The server-side-apply body of one monitor's whole owned status.
    fn body(&self, key: &MonitorKey, entry: &Entry) -> Value {
        let snapshot = if entry.running {
            self.runtime.as_ref().ok().and_then(|r| r.status(key))
        } else {
            None
        };
        let mut status = snapshot.map(|s| s.to_api()).unwrap_or_default();
        status.conditions = entry.conditions.clone();
        status.observed_generation = entry.observed_generation;
        json!({
            "apiVersion": self.resource.api_version,
            "kind": self.resource.kind,
            "status": status,
        })
    }

    async fn send(
        &self,
        client: &Client,
        key: &MonitorKey,
        body: &Value,
    ) -> Result<(), kube::Error> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &key.namespace, &self.resource);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        api.patch_status(&key.name, &params, &Patch::Apply(body))
            .await
            .map(|_| ())
    }

    /// Writes every running monitor whose status changed since it was last written.
    async fn flush(&self, client: &Client) {
        let keys: Vec<MonitorKey> = self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, entry)| entry.running)
            .map(|(key, _)| key.clone())
            .collect();
        for key in keys {
            // Per monitor, so a long flush never holds up the core's condition writes; the
            // body is built under the write lock, so it carries the latest conditions.
            let _writing = self.writing.lock().await;
            let body = {
                let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
                let Some(entry) = entries.get(&key).filter(|e| e.running) else {
                    continue;
                };
                let body = self.body(&key, entry);
                if entry.written.as_ref() == Some(&body) {
                    continue;
                }
                body
            };
            match self.send(client, &key, &body).await {
                Ok(()) => {
                    debug!(monitor = %key, "status flushed");
                    if let Some(entry) = self
                        .entries
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get_mut(&key)
                    {
                        entry.written = Some(body);
                    }
                }
                // Deleted: the sweep stops it once the store has seen the deletion.
                Err(kube::Error::Api(status)) if status.code == 404 => {
                    debug!(monitor = %key, "object gone; not flushed");
                }
                Err(error) => {
                    warn!(monitor = %key, %error, "writing monitor status failed; retried next flush")
                }
            }
        }
    }

    /// Stops monitors whose objects left the Controller's store.
    fn sweep(&self) {
        let Some(store) = self
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        else {
            return;
        };
        let keys: Vec<MonitorKey> = self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        for key in keys {
            let reference =
                ObjectRef::new_with(&key.name, self.resource.clone()).within(&key.namespace);
            if store.get(&reference).is_none() {
                self.stop(&key);
            }
        }
    }

    /// Runs the flusher (and the metrics feed and deletion sweep) until `stop`, then stops
    /// every monitor: another replica (or the next term) takes them up from status.
    pub async fn run(self: Arc<Self>, client: Client, stop: CancellationToken) {
        let Ok(runtime) = &self.runtime else {
            stop.cancelled().await;
            return;
        };
        let mut events = runtime.subscribe();
        let mut flush = tokio::time::interval(FLUSH_EVERY);
        let mut sweep = tokio::time::interval(JANITOR_EVERY);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = flush.tick() => self.flush(&client).await,
                _ = sweep.tick() => self.sweep(),
                () = self.flush_now.notified() => self.flush(&client).await,
                event = events.recv() => match event {
                    Ok(event) => {
                        self.metrics.observe(&event);
                        if let MonitorEvent::HealthChanged { key, to, .. } = &event {
                            self.metrics.set_health(key, *to);
                            self.flush_now.notify_one();
                        }
                    }
                    Err(RecvError::Lagged(missed)) => debug!(missed, "monitor events skipped"),
                    Err(RecvError::Closed) => break,
                },
            }
        }
        let keys: BTreeSet<MonitorKey> = self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        for key in keys {
            self.stop(&key);
        }
    }
}

/// Downcasts a reconciled object to a HealthMonitor (the other kinds return `None`).
pub fn as_health_monitor<K: Any>(object: &K) -> Option<&HealthMonitor> {
    (object as &dyn Any).downcast_ref::<HealthMonitor>()
}

/// `Probing=False` of a HealthMonitor whose spec is invalid or malformed.
pub fn not_run() -> DesiredCondition {
    DesiredCondition::new(
        PROBING,
        ConditionStatus::False,
        REASON_NOT_RUN,
        "Not probed: the spec is invalid (see the Ready condition).",
    )
}

fn monitoring() -> DesiredCondition {
    DesiredCondition::new(
        PROBING,
        ConditionStatus::True,
        REASON_MONITORING,
        "The target is probed on schedule; see status.health and status.lastProbe.",
    )
}

fn cannot_probe(message: &str) -> DesiredCondition {
    DesiredCondition::new(
        PROBING,
        ConditionStatus::False,
        REASON_CANNOT_PROBE,
        format!("Not probed: {message}"),
    )
}

/// Open alerts from a previous process's status, so a restart does not notify them again.
fn restored_alerts(stored: Option<&HealthMonitorStatus>, config: &MonitorConfig) -> AlertState {
    let (Some(stored), Some(alerting)) = (stored, &config.alerting) else {
        return AlertState::default();
    };
    let entries: Vec<OpenAlertEntry> = stored
        .open_alerts
        .iter()
        .map(|a| OpenAlertEntry {
            key: a.key.clone(),
            severity: adapter::severity(a.severity),
            since: chrono_time(&a.since),
            last_notified: a.last_notified.as_ref().map(chrono_time),
            summary: a.summary.clone(),
            channels: Vec::new(),
        })
        .collect();
    AlertState::from_open_entries(&entries, alerting)
}

fn chrono_time(time: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> DateTime<Utc> {
    let at = time.0;
    DateTime::from_timestamp(at.as_second(), at.subsec_nanosecond().unsigned_abs())
        .unwrap_or_default()
}

/// Adapts a HealthMonitor for the cluster, reading the Secrets (and ConfigMaps) it references
/// from its namespace.
async fn adapt(
    client: &Client,
    key: &MonitorKey,
    object: &HealthMonitor,
) -> Result<MonitorConfig, MonitorError> {
    let mut fetched = Fetched::default();
    for _ in 0..RESOLVE_ROUNDS {
        let result = monitor_config(key, &object.spec, Environment::Cluster, &fetched);
        let wanted: Vec<Wanted> = fetched
            .missed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect();
        if wanted.is_empty() {
            return result;
        }
        for want in wanted {
            let value = fetch(client, &key.namespace, &want).await;
            fetched.values.insert(want, value);
        }
    }
    monitor_config(key, &object.spec, Environment::Cluster, &fetched)
}

/// A Secret or ConfigMap key the adapter asked for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Wanted {
    Secret(String, String),
    ConfigMap(String, String),
}

/// Values read so far (per reconcile: nothing is cached between reconciles, so a rotated
/// Secret is taken up on the next one). Never logged.
#[derive(Default)]
struct Fetched {
    values: BTreeMap<Wanted, Result<String, String>>,
    missed: Mutex<Vec<Wanted>>,
}

impl Fetched {
    fn lookup(&self, want: Wanted) -> Result<String, MonitorError> {
        let (name, key) = match &want {
            Wanted::Secret(n, k) | Wanted::ConfigMap(n, k) => (n.clone(), k.clone()),
        };
        match self.values.get(&want) {
            Some(Ok(value)) => Ok(value.clone()),
            Some(Err(message)) => Err(MonitorError::Secret {
                name,
                key,
                message: message.clone(),
            }),
            None => {
                self.missed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(want);
                Err(MonitorError::Secret {
                    name,
                    key,
                    message: "not read yet".to_string(),
                })
            }
        }
    }
}

impl SecretResolver for Fetched {
    fn get(&self, name: &str, key: &str) -> Result<String, MonitorError> {
        self.lookup(Wanted::Secret(name.to_string(), key.to_string()))
    }

    fn config_map(&self, name: &str, key: &str) -> Result<String, MonitorError> {
        self.lookup(Wanted::ConfigMap(name.to_string(), key.to_string()))
    }
}

async fn fetch(client: &Client, namespace: &str, want: &Wanted) -> Result<String, String> {
    match want {
        Wanted::Secret(name, key) => {
            let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
            let secret = api
                .get_opt(name)
                .await
                .map_err(|e| format!("cannot be read: {e}"))?
                .ok_or_else(|| "the Secret does not exist".to_string())?;
            if let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(key)) {
                return String::from_utf8(bytes.0.clone())
                    .map_err(|_| "the value is not UTF-8".to_string());
            }
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(key))
                .cloned()
                .ok_or_else(|| "the Secret has no such key".to_string())
        }
        Wanted::ConfigMap(name, key) => {
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
            let map = api
                .get_opt(name)
                .await
                .map_err(|e| format!("cannot be read: {e}"))?
                .ok_or_else(|| "the ConfigMap does not exist".to_string())?;
            map.data
                .as_ref()
                .and_then(|d| d.get(key))
                .cloned()
                .ok_or_else(|| "the ConfigMap has no such key".to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unread_keys_are_recorded_and_errors_never_carry_values() {
        let mut fetched = Fetched::default();
        let error = fetched.get("token", "key").unwrap_err();
        assert!(error.to_string().contains("token/key"), "{error}");
        assert_eq!(
            *fetched.missed.lock().unwrap(),
            [Wanted::Secret("token".into(), "key".into())]
        );
        fetched.values.insert(
            Wanted::Secret("token".into(), "key".into()),
            Ok("hunter2".into()),
        );
        fetched.values.insert(
            Wanted::ConfigMap("token".into(), "key".into()),
            Err("the ConfigMap does not exist".into()),
        );
        assert_eq!(fetched.get("token", "key").unwrap(), "hunter2");
        let error = fetched.config_map("token", "key").unwrap_err().to_string();
        assert!(
            error.contains("does not exist") && !error.contains("hunter2"),
            "{error}"
        );
    }

    #[test]
    fn kubernetes_times_convert_to_chrono() {
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert_eq!(chrono_time(&crate::monitor::status::time(at)), at);
    }
}
