//! HealthMonitors probed for real: the reconcile adapts each valid HealthMonitor and starts,
//! updates or stops it in one shared [`MonitorRuntime`]; a flusher writes the runtime's
//! snapshots back to `status`, and runs the monitors' remediations when their triggers fire.
//!
//! One writer per status: every HealthMonitor status write (the core's condition write, the
//! periodic flush, the write after a remediation) goes through one per-monitor lock and sends
//! the whole status this field manager owns (conditions, observedGeneration, the monitor
//! snapshot and the remediation records), so no write drops another's fields under
//! server-side apply, and two writes of one monitor never interleave.
//!
//! Coalescing: the snapshot is written every [`FLUSH_EVERY`], or at once when a monitor's
//! health changes, and only for monitors whose status differs from what was last written; a
//! flush writes up to [`FLUSH_CONCURRENCY`] monitors at a time.
//!
//! Remediation (leader only: the flusher runs only while this process leads): after each probe
//! of a monitor with `spec.remediations`, [`Tracker::plan`] says which actions are due; they
//! run in a task of their own (one at a time per monitor) through [`Remediator`], each attempt
//! is recorded in `status.remediations` (written at once) and as an Event. Cooldown and
//! attempt counts come from those records, so they survive restarts and leader changes.
//!
//! Deletion: the kube-rs `Controller` does not reconcile objects that are gone, so the flusher
//! checks every [`JANITOR_EVERY`] whether each running monitor's object is still in the
//! Controller's store, and stops it when not (no finalizer needed: stopping a monitor is
//! in-process state only, there is nothing outside to clean up). A stopped monitor's metric
//! series are removed.

mod secrets;

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::conditions::{ConditionStatus, DesiredCondition};
use super::context::FIELD_MANAGER;
use super::remediation::trigger::{Step, Tracker};
use super::remediation::{Remediator, Request, policy};
use crate::alert::{AlertState, OpenAlertEntry};
use crate::api::health_monitor::{HealthMonitorStatus, Remediation, RemediationRecord};
use crate::api::{Condition, HealthMonitor};
use crate::monitor::status::chrono_time;
use crate::monitor::{
    MonitorConfig, MonitorEvent, MonitorKey, MonitorMetrics, MonitorRuntime, adapter,
};

/// Longest time a changed snapshot waits before it is written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(10);

/// Most status writes one flush has in flight at once.
pub const FLUSH_CONCURRENCY: usize = 24;

/// How often running monitors are checked against the Controller's store (deletions).
pub const JANITOR_EVERY: Duration = Duration::from_secs(1);

/// How long a stopping flusher waits for remediation actions in flight (their records are
/// written when they end).
const REMEDIATION_DRAIN: Duration = Duration::from_secs(30);

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
    /// `spec.remediations` of the spec it runs.
    remediations: Vec<Remediation>,
    /// The HealthMonitor, as the object of remediation Events.
    reference: Option<ObjectReference>,
    /// `status.remediations`: found stored on first sight, then kept here.
    records: Vec<RemediationRecord>,
    /// Open incidents of its remediations.
    tracker: Tracker,
    /// Whether a remediation task of this monitor is running.
    remediating: bool,
}

impl Entry {
    fn new(stored: Option<&HealthMonitorStatus>) -> Self {
        Self {
            spec: Value::Null,
            running: false,
            conditions: stored.map(|s| s.conditions.clone()).unwrap_or_default(),
            observed_generation: stored.and_then(|s| s.observed_generation),
            written: None,
            remediations: Vec::new(),
            reference: None,
            records: stored.map(|s| s.remediations.clone()).unwrap_or_default(),
            tracker: Tracker::default(),
            remediating: false,
        }
    }
}

/// The per-monitor write locks.
type WriteLocks = Mutex<BTreeMap<MonitorKey, Arc<tokio::sync::Mutex<()>>>>;

/// The HealthMonitors of one controller process.
pub struct Monitors {
    runtime: Result<MonitorRuntime, String>,
    metrics: MonitorMetrics,
    entries: Mutex<BTreeMap<MonitorKey, Entry>>,
    /// One lock per monitor: a flush, a core write and a post-remediation write of the same
    /// status never interleave (different monitors are written concurrently).
    writing: WriteLocks,
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
            writing: Mutex::new(BTreeMap::new()),
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

    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<MonitorKey, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
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
        let spec = serde_json::to_value(&object.spec).unwrap_or(Value::Null);
        let stored = object.status.as_ref();
        if !spec_valid {
            self.stop(&key);
            // Kept (not probed): the remediation records still go into status.
            self.remember(&key, object, spec, false);
            return not_run();
        }
        let runtime = match &self.runtime {
            Ok(runtime) => runtime,
            Err(error) => return cannot_probe(&format!("the monitor runtime is down: {error}")),
        };
        {
            let entries = self.entries();
            if let Some(entry) = entries.get(&key)
                && entry.running
                && entry.spec == spec
                && runtime.status(&key).is_some()
            {
                return monitoring();
            }
        }
        let config = match secrets::adapt(client, &key, object).await {
            Ok(config) => config,
            Err(error) => {
                self.stop(&key);
                self.remember(&key, object, spec, false);
                warn!(monitor = %key, %error, "HealthMonitor cannot be probed");
                return cannot_probe(&error.to_string());
            }
        };
        let first_sight = !self.entries().get(&key).is_some_and(|e| e.running);
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
            self.remember(&key, object, spec, false);
            return cannot_probe(&error.to_string());
        }
        if let Some(status) = runtime.status(&key) {
            self.metrics.set_health(&key, status.health);
        }
        info!(monitor = %key, first_sight, "HealthMonitor probing");
        self.remember(&key, object, spec, true);
        monitoring()
    }

    /// Records what runs for `key`; a new entry takes up the stored conditions, generation and
    /// remediation records.
    fn remember(&self, key: &MonitorKey, object: &HealthMonitor, spec: Value, running: bool) {
        let mut entries = self.entries();
        let entry = entries
            .entry(key.clone())
            .or_insert_with(|| Entry::new(object.status.as_ref()));
        entry.spec = spec;
        entry.running = running;
        entry.remediations = object.spec.remediations.clone();
        entry.reference = Some(object.object_ref(&()));
    }

    /// Stops a monitor (invalid spec, deletion, malformed object) and removes its metric
    /// series; returns whether it ran.
    pub fn stop(&self, key: &MonitorKey) -> bool {
        let known = self.entries().remove(key).is_some();
        let stopped = self.runtime.as_ref().is_ok_and(|r| r.stop(key));
        if known || stopped {
            // After the entry is gone no event of this monitor is observed any more (see
            // `observe`), so no series is created again.
            self.metrics.remove(key);
        }
        if stopped {
            info!(monitor = %key, "HealthMonitor no longer probed");
        }
        stopped
    }

    fn write_lock(&self, key: &MonitorKey) -> Arc<tokio::sync::Mutex<()>> {
        self.writing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_default()
            .clone()
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
        let lock = self.write_lock(key);
        let _writing = lock.lock().await;
        let body = {
            let mut entries = self.entries();
            let entry = entries
                .entry(key.clone())
                .or_insert_with(|| Entry::new(None));
            entry.conditions = conditions.to_vec();
            entry.observed_generation = observed_generation;
            self.body(key, entry)
        };
        self.send(client, key, &body).await?;
        if let Some(entry) = self.entries().get_mut(key) {
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
        status.remediations = entry.records.clone();
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

    /// Writes every running monitor whose status changed since it was last written, up to
    /// [`FLUSH_CONCURRENCY`] at a time.
    async fn flush(&self, client: &Client) {
        let keys: Vec<MonitorKey> = self
            .entries()
            .iter()
            .filter(|(_, entry)| entry.running)
            .map(|(key, _)| key.clone())
            .collect();
        futures::stream::iter(keys)
            .for_each_concurrent(FLUSH_CONCURRENCY, |key| async move {
                self.flush_one(client, &key).await;
            })
            .await;
    }

    /// Writes one running monitor's status if it changed since it was last written.
    async fn flush_one(&self, client: &Client, key: &MonitorKey) {
        // The body is built under the monitor's write lock, so it carries the latest
        // conditions; other monitors are not held up.
        let lock = self.write_lock(key);
        let _writing = lock.lock().await;
        let body = {
            let entries = self.entries();
            let Some(entry) = entries.get(key).filter(|e| e.running) else {
                return;
            };
            let body = self.body(key, entry);
            if entry.written.as_ref() == Some(&body) {
                return;
            }
            body
        };
        match self.send(client, key, &body).await {
            Ok(()) => {
                debug!(monitor = %key, "status flushed");
                if let Some(entry) = self.entries().get_mut(key) {
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
        let gone = |key: &MonitorKey| {
            let reference =
                ObjectRef::new_with(&key.name, self.resource.clone()).within(&key.namespace);
            store.get(&reference).is_none()
        };
        let keys: Vec<MonitorKey> = self.entries().keys().filter(|k| gone(k)).cloned().collect();
        for key in keys {
            self.stop(&key);
        }
        self.writing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|key, _| !gone(key));
    }

    /// Feeds the metrics from one event of a monitor this process still runs (events of a
    /// stopped monitor still queued are dropped, so its removed series stay removed).
    fn observe(&self, event: &MonitorEvent) {
        let key = match event {
            MonitorEvent::Probed { key, .. }
            | MonitorEvent::HealthChanged { key, .. }
            | MonitorEvent::Notified { key, .. }
            | MonitorEvent::NotifyFailed { key, .. }
            | MonitorEvent::AlertState { key, .. } => key,
        };
        let entries = self.entries();
        if entries.get(key).is_some_and(|e| e.running) {
            self.metrics.observe(event);
        }
    }

    /// The remediation steps due for a monitor after a probe; marks it busy when there are
    /// any (the caller runs them).
    fn due_steps(&self, key: &MonitorKey) -> Vec<Step> {
        let Ok(runtime) = &self.runtime else {
            return Vec::new();
        };
        let mut entries = self.entries();
        let Some(entry) = entries.get_mut(key) else {
            return Vec::new();
        };
        if !entry.running || entry.remediating || entry.remediations.is_empty() {
            return Vec::new();
        }
        let Some(status) = runtime.status(key) else {
            return Vec::new();
        };
        let steps = entry.tracker.plan(
            &entry.remediations,
            &status,
            &entry.records,
            Timestamp::now(),
        );
        entry.remediating = !steps.is_empty();
        steps
    }

    /// Runs a monitor's due remediation steps one after the other, records each attempt and
    /// writes the status at once (so a restart right after an action knows it happened).
    async fn remediate(
        self: Arc<Self>,
        remediator: Remediator,
        client: Client,
        key: MonitorKey,
        steps: Vec<Step>,
    ) {
        for step in steps {
            let name = match &step {
                Step::Execute { name, .. } | Step::Revert { name } => name.clone(),
            };
            let found = {
                let entries = self.entries();
                entries.get(&key).and_then(|e| {
                    let remediation = e.remediations.iter().find(|r| r.name == name)?.clone();
                    Some((remediation, e.reference.clone(), e.records.clone()))
                })
            };
            let Some((remediation, reference, history)) = found else {
                continue;
            };
            let now = Timestamp::now();
            let incident_since = match &step {
                Step::Execute { incident_since, .. } => *incident_since,
                Step::Revert { .. } => now,
            };
            let request = Request {
                namespace: &key.namespace,
                monitor: &key.name,
                monitor_ref: reference.as_ref(),
                remediation: &remediation,
                history: &history,
                incident_since,
                now,
            };
            let execution = match &step {
                Step::Execute { .. } => remediator.execute(&request).await,
                Step::Revert { .. } => remediator.revert(&request).await,
            };
            if let Some(entry) = self.entries().get_mut(&key) {
                entry.tracker.done(&step, execution.record.result);
                policy::push_record(&mut entry.records, execution.record);
            }
        }
        if let Some(entry) = self.entries().get_mut(&key) {
            entry.remediating = false;
        }
        self.flush_one(&client, &key).await;
    }

    /// Runs the flusher (and the metrics feed, remediation and deletion sweep) until `stop`,
    /// then waits for remediation actions in flight and stops every monitor: another replica
    /// (or the next term) takes them up from status.
    pub async fn run(self: Arc<Self>, client: Client, recorder: Recorder, stop: CancellationToken) {
        let Ok(runtime) = &self.runtime else {
            stop.cancelled().await;
            return;
        };
        let remediator = Remediator::new(client.clone()).with_recorder(recorder);
        let mut remediations = JoinSet::new();
        let mut events = runtime.subscribe();
        // Flushes run in their own task, so a long flush never holds up the event feed
        // (metrics, remediation) and the broadcast channel does not overflow meanwhile.
        let flusher = tokio::spawn({
            let (this, client, stop) = (self.clone(), client.clone(), stop.clone());
            async move {
                let mut flush = tokio::time::interval(FLUSH_EVERY);
                loop {
                    tokio::select! {
                        () = stop.cancelled() => break,
                        _ = flush.tick() => this.flush(&client).await,
                        () = this.flush_now.notified() => this.flush(&client).await,
                    }
                }
            }
        });
        let mut sweep = tokio::time::interval(JANITOR_EVERY);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = sweep.tick() => self.sweep(),
                Some(_) = remediations.join_next(), if !remediations.is_empty() => {}
                event = events.recv() => match event {
                    Ok(event) => {
                        self.observe(&event);
                        match &event {
                            MonitorEvent::HealthChanged { .. } => self.flush_now.notify_one(),
                            MonitorEvent::Probed { key, .. } => {
                                let steps = self.due_steps(key);
                                if !steps.is_empty() {
                                    remediations.spawn(self.clone().remediate(
                                        remediator.clone(),
                                        client.clone(),
                                        key.clone(),
                                        steps,
                                    ));
                                }
                            }
                            _ => {}
                        }
                    }
                    Err(RecvError::Lagged(missed)) => debug!(missed, "monitor events skipped"),
                    Err(RecvError::Closed) => break,
                },
            }
        }
        let drained = tokio::time::timeout(REMEDIATION_DRAIN, async {
            while remediations.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!("remediation actions still running at shutdown were abandoned");
            remediations.abort_all();
        }
        if let Err(error) = flusher.await {
            warn!(%error, "the status flusher failed");
        }
        let keys: BTreeSet<MonitorKey> = self.entries().keys().cloned().collect();
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

#[cfg(test)]
mod tests;
