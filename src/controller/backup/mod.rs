//! BackupPolicies in the cluster: each valid BackupPolicy is reconciled into a ServiceAccount
//! and owned `batch/v1` CronJobs running `watchkeeper agent backup|verify` ([`builder`],
//! applied by server-side apply in [`cluster`]); a backup-now annotation becomes exactly one
//! Job per token; the agents' reports (their pods' termination messages) are folded into
//! status ([`fold`]) and judged into the `RPOMet`, `Verified` and `RetentionApplied`
//! conditions and alerts ([`evaluate`]); [`metrics`] exports the newest values.
//!
//! The generic reconcile (`controller::reconcile`) calls [`Backups::reconcile`] after
//! validation; it returns extra validation errors (a missing Secret: nothing is created),
//! extra conditions, and when to look again (the moment `RPOMet` would flip). One writer per
//! status: every BackupPolicy status write goes through [`Backups::write`], which sends the
//! core's conditions together with the fields computed here.
//!
//! Deletion needs no finalizer: the CronJobs and ServiceAccount carry controller owner
//! references, so the garbage collector deletes them (and the Jobs the CronJobs own).

pub mod agent_config;
pub mod alerts;
pub mod builder;
pub mod cluster;
pub mod evaluate;
pub mod fold;
pub mod maintenance;
pub mod metrics;

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};
use tracing::{info, warn};

use super::conditions::{self, ConditionStatus, DesiredCondition};
use super::context::{Context, FIELD_MANAGER};
use crate::api::backup_policy::{BACKUP_NOW_ANNOTATION, BackupPolicyStatus, OwnedCronJobs};
use crate::api::common::LocalObjectRef;
use crate::api::{BackupPolicy, Condition, FieldError};
use crate::monitor::adapter;

pub use metrics::BackupMetrics;

/// The operator's own image at this version, when nothing else is configured.
pub const DEFAULT_AGENT_IMAGE: &str = concat!(
    "ghcr.io/watchkeeper/watchkeeper:",
    env!("CARGO_PKG_VERSION")
);

/// Secrets are not watched: a policy waiting for one is looked at again this often.
pub const SECRET_RECHECK: Duration = Duration::from_secs(10);

/// MaintenanceWindows are not watched here: a policy looks at the calendar again at least
/// this often (and exactly at every window boundary it already knows of).
pub const MAINTENANCE_RECHECK: Duration = Duration::from_secs(30);

/// Why a BackupPolicy could not be reconciled (retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("BackupPolicy: {what} failed: {source}")]
    Api {
        /// What was attempted, naming the object.
        what: String,
        #[source]
        source: Box<kube::Error>,
    },
    /// The backup-now Job could not be built (the applied CronJob came back without a uid).
    #[error("{0}")]
    BackupNow(String),
}

impl Error {
    /// Short error class for metrics.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Api { .. } => "backup_api",
            Self::BackupNow(_) => "backup_now",
        }
    }
}

/// What a reconcile of one BackupPolicy adds to the core's verdict.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Validation errors only the cluster can reveal (a referenced Secret is missing).
    pub errors: Vec<FieldError>,
    /// `RPOMet`, `Verified`, `RetentionApplied`.
    pub conditions: Vec<DesiredCondition>,
    /// Look again after this long (`RPOMet` flips, a Secret may appear).
    pub requeue_after: Option<Duration>,
}

/// In-process state of one BackupPolicy.
#[derive(Default)]
struct Entry {
    /// Status fields this module owns (everything but conditions and observedGeneration).
    fields: Option<Value>,
    /// Whether `fields` differ from what the object's status holds.
    pending: bool,
    /// The backup-now token handled last by this process: a reconcile that still sees the
    /// status from before it was recorded (a stale cache) does not try again.
    token: Option<String>,
}

/// The BackupPolicies of one controller process.
pub struct Backups {
    image: String,
    entries: Mutex<BTreeMap<String, Entry>>,
    runs: cluster::RunCache,
    alerts: alerts::PolicyAlerts,
    resource: ApiResource,
    /// `watchkeeper_backup_*` and `watchkeeper_restore_*` metrics.
    pub metrics: BackupMetrics,
}

fn key_of(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

impl Backups {
    /// BackupPolicies whose agents run in `image` unless a policy names one.
    pub fn new(image: impl Into<String>, metrics: BackupMetrics) -> Self {
        Self {
            image: image.into(),
            entries: Mutex::new(BTreeMap::new()),
            runs: cluster::RunCache::default(),
            alerts: alerts::PolicyAlerts::default(),
            resource: ApiResource::erase::<BackupPolicy>(&()),
            metrics,
        }
    }

    /// Brings the cluster in line with one BackupPolicy: checks its Secrets, applies what it
    /// owns, runs a new backup-now token, folds finished runs into status and judges it.
    pub async fn reconcile(
        &self,
        ctx: &Context,
        object: &BackupPolicy,
        errors: &[FieldError],
        deleting: bool,
    ) -> Result<Outcome, Error> {
        let namespace = object.namespace().unwrap_or_default();
        let name = object.name_any();
        let key = key_of(&namespace, &name);
        let client = &ctx.client;
        let stored = object.status.clone().unwrap_or_default();
        if deleting {
            return Ok(Outcome::default());
        }
        // Nothing is created or changed while the spec is invalid; what the status says
        // about past runs stays.
        let keep = |errors: Vec<FieldError>, requeue_after| {
            self.set_fields(&key, owned_fields(&stored), &stored);
            Ok(Outcome {
                errors,
                requeue_after,
                ..Outcome::default()
            })
        };
        if !errors.is_empty() {
            return keep(Vec::new(), None);
        }
        let now = Utc::now();
        let rpo =
            evaluate::rpo_duration(&object.spec).and_then(|d| chrono::Duration::from_std(d).ok());
        let calendar =
            maintenance::observe(&ctx.maintenance, &namespace, object.labels(), rpo, now);
        let mut owned = match builder::build(object, &self.image) {
            Ok(owned) => owned,
            Err(error) => return keep(vec![error.field_error()], None),
        };
        let mut missing = cluster::missing_secrets(client, &namespace, &owned.secrets).await?;
        let alerting = match &object.spec.alerting {
            Some(spec) if !spec.channels.is_empty() => {
                match cluster::with_secrets(client, &namespace, |r| {
                    adapter::alerting_config(spec, r)
                })
                .await?
                {
                    Ok(config) => Some(config),
                    Err(error) => {
                        missing.push(FieldError::new("spec.alerting", error.to_string()));
                        None
                    }
                }
            }
            _ => None,
        };
        if !missing.is_empty() {
            return keep(missing, Some(SECRET_RECHECK));
        }

        let suspend = maintenance::desired_suspend(object.spec.suspend, &calendar);
        for cron_job in std::iter::once(&mut owned.backup).chain(owned.verify.as_mut()) {
            cron_job.spec.suspend = Some(suspend);
        }
        let backup_cron_job = cluster::apply_owned(client, &namespace, &name, &owned).await?;
        let paused = maintenance::paused_condition(object.spec.suspend, &calendar);
        self.announce_pause(ctx, object, &stored, &calendar, &paused)
            .await;
        let mut status = stored.clone();
        status.cron_jobs = Some(OwnedCronJobs {
            backup: Some(LocalObjectRef {
                name: backup_cron_job.name_any(),
            }),
            verification: owned
                .verify
                .as_ref()
                .map(|c| LocalObjectRef { name: c.name_any() }),
        });
        let handled = self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .and_then(|e| e.token.clone());
        if let Some(token) = object.annotations().get(BACKUP_NOW_ANNOTATION)
            && !token.is_empty()
            && stored.last_backup_now_token.as_deref() != Some(token.as_str())
        {
            // A token this process handled already, not yet visible in the cached object, is
            // only recorded again.
            if handled.as_deref() != Some(token.as_str()) {
                let job = builder::backup_now_job(&name, &backup_cron_job, token)
                    .map_err(|e| Error::BackupNow(e.to_string()))?;
                let created = cluster::create_job(client, &namespace, &job).await?;
                info!(backup_policy = %key, job = %job.name_any(), created, "backup-now Job for a new token");
                self.entries
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry(key.clone())
                    .or_default()
                    .token = Some(token.clone());
            }
            status.last_backup_now_token = Some(token.clone());
        }

        let runs = cluster::runs(client, &namespace, &name, &self.runs).await?;
        fold::fold(&mut status, &runs);
        status.next_backup_time = if suspend {
            None
        } else {
            next_backup(&object.spec, now)
        };
        let policy = evaluate::PolicyRef {
            namespace: &namespace,
            name: &name,
            created: object
                .metadata
                .creation_timestamp
                .as_ref()
                .map(fold::chrono_of),
        };
        let mut judged = evaluate::evaluate(&policy, &object.spec, &status, now);
        if calendar.rpo_grace_until.is_some() {
            // The backups a pause skipped do not page until one RPO after it closed.
            judged
                .firing
                .retain(|a| !a.key.ends_with(evaluate::ALERT_RPO_MISSED));
        }
        // Repeats of open alerts are decided when the policy is reconciled: look again then.
        let repeat = alerting
            .as_ref()
            .and_then(|a| a.repeat_interval)
            .filter(|_| !judged.firing.is_empty());
        status.open_alerts = self
            .alerts
            .round(
                &key,
                alerting,
                &stored,
                &judged.firing,
                now,
                calendar.suppress.is_some(),
            )
            .await;
        self.metrics.observe(&namespace, &name, &status);
        let requeue_after = judged
            .next_change
            .and_then(|at| (at - now).to_std().ok())
            .map(|d| d + Duration::from_secs(1))
            .into_iter()
            .chain(repeat)
            .chain(
                calendar
                    .next_change
                    .and_then(|at| (at - now).to_std().ok())
                    .map(|d| d + Duration::from_millis(200)),
            )
            .chain(Some(MAINTENANCE_RECHECK))
            .min();
        self.set_fields(&key, owned_fields(&status), &stored);
        let mut conditions = judged.conditions;
        conditions.push(paused);
        Ok(Outcome {
            errors: Vec::new(),
            conditions,
            requeue_after,
        })
    }

    /// One Event when a MaintenanceWindow pauses the policy and one when it resumes, judged
    /// against the stored `Paused` condition (so a restart sends nothing twice).
    async fn announce_pause(
        &self,
        ctx: &Context,
        object: &BackupPolicy,
        stored: &BackupPolicyStatus,
        calendar: &maintenance::Maintenance,
        paused: &DesiredCondition,
    ) {
        let was = conditions::find(&stored.conditions, maintenance::PAUSED).is_some_and(|c| {
            c.reason == maintenance::REASON_MAINTENANCE_WINDOW && c.status == "True"
        });
        let is = paused.status == ConditionStatus::True
            && paused.reason == maintenance::REASON_MAINTENANCE_WINDOW;
        let (reason, action) = match (was, is) {
            (false, true) => ("BackupsPaused", "Pause"),
            (true, false) => ("BackupsResumed", "Resume"),
            _ => return,
        };
        let note = match &calendar.pause {
            Some(_) => paused.message.clone(),
            None => "no MaintenanceWindow pauses scheduled backups any more; CronJobs resumed"
                .to_string(),
        };
        let event = Event {
            type_: EventType::Normal,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        let namespace = object.namespace().unwrap_or_default();
        let name = object.name_any();
        info!(backup_policy = %key_of(&namespace, &name), reason, "maintenance pause changed");
        if let Err(error) = ctx.recorder.publish(&event, &object.object_ref(&())).await {
            ctx.metrics.event_failed("BackupPolicy");
            warn!(backup_policy = %key_of(&namespace, &name), %error, "publishing Event failed");
        }
    }

    fn set_fields(&self, key: &str, fields: Value, stored: &BackupPolicyStatus) {
        let pending = fields != owned_fields(stored);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.entry(key.to_string()).or_default();
        entry.fields = Some(fields);
        entry.pending = pending;
    }

    /// Whether this module's status fields of `namespace/name` need writing although the
    /// core's conditions did not change.
    pub fn pending(&self, namespace: &str, name: &str) -> bool {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key_of(namespace, name))
            .is_some_and(|e| e.pending)
    }

    /// Writes a BackupPolicy's whole owned status: the core's `conditions` and
    /// `observedGeneration` plus this module's fields.
    pub async fn write(
        &self,
        client: &Client,
        namespace: &str,
        name: &str,
        conditions: &[Condition],
        observed_generation: Option<i64>,
    ) -> Result<(), kube::Error> {
        let key = key_of(namespace, name);
        let fields = self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .and_then(|e| e.fields.clone());
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &self.resource);
        let mut status = match fields {
            Some(Value::Object(map)) => map,
            // Not reconciled here (a malformed object that does not parse): the fields this
            // manager wrote before are sent back as stored, or server-side apply would drop
            // them.
            _ => match api.get_opt(name).await? {
                Some(object) => match object.data.get("status") {
                    Some(Value::Object(stored)) => stored
                        .iter()
                        .filter(|(k, _)| *k != "conditions" && *k != "observedGeneration")
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    _ => serde_json::Map::new(),
                },
                None => serde_json::Map::new(),
            },
        };
        if let Some(generation) = observed_generation {
            status.insert("observedGeneration".into(), json!(generation));
        }
        status.insert("conditions".into(), json!(conditions));
        let body = json!({
            "apiVersion": self.resource.api_version,
            "kind": self.resource.kind,
            "status": Value::Object(status),
        });
        api.patch_status(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await?;
        if let Some(entry) = self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(&key)
        {
            entry.pending = false;
        }
        Ok(())
    }

    /// Forgets BackupPolicies that are no longer present (deleted): alert engines and metric
    /// series.
    pub fn sweep(&self, present: &BTreeSet<String>) {
        let gone: Vec<String> = {
            let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            entries
                .keys()
                .filter(|k| !present.contains(*k))
                .cloned()
                .collect()
        };
        for key in gone {
            self.entries
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&key);
            if let Some((namespace, name)) = key.split_once('/') {
                self.metrics.remove(namespace, name);
            }
            self.runs.forget(&key);
            self.alerts.forget(&key);
        }
    }
}

/// When the backup CronJob fires next (in the policy's time zone); none while suspended.
fn next_backup(
    spec: &crate::api::backup_policy::BackupPolicySpec,
    now: chrono::DateTime<Utc>,
) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time> {
    if spec.suspend {
        return None;
    }
    let zone = crate::schedule::parse_time_zone(&spec.time_zone).ok()?;
    let schedule = crate::schedule::CronSchedule::parse(&spec.schedule, zone).ok()?;
    schedule.next_after(now).map(fold::time)
}

/// The status fields this module owns (no conditions, no observedGeneration).
fn owned_fields(status: &BackupPolicyStatus) -> Value {
    let mut status = status.clone();
    status.conditions = Vec::new();
    status.observed_generation = None;
    serde_json::to_value(status).unwrap_or_else(|_| json!({}))
}

/// Downcasts a reconciled object to a BackupPolicy (the other kinds return `None`).
pub fn as_backup_policy<K: Any>(object: &K) -> Option<&BackupPolicy> {
    (object as &dyn Any).downcast_ref::<BackupPolicy>()
}

/// Adds the BackupPolicy Controller's secondary watches: its owned CronJobs and
/// ServiceAccounts (a hand edit is set back at once) and the Jobs labelled with a policy's
/// name (a run finishing updates status at once).
pub fn watch_children(
    controller: Controller<DynamicObject>,
    client: &Client,
    namespace: Option<&str>,
) -> Controller<DynamicObject> {
    let (cron_jobs, accounts, jobs): (Api<CronJob>, Api<ServiceAccount>, Api<Job>) = match namespace
    {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
        ),
    };
    let ours = watcher::Config::default().labels(builder::POLICY_LABEL);
    let resource = ApiResource::erase::<BackupPolicy>(&());
    // A MaintenanceWindow created or changed (its status too, written after the calendar is
    // updated) looks at every BackupPolicy of its namespace again, so a new window is obeyed
    // at once rather than at the next periodic check.
    let window_resource = ApiResource::erase::<crate::api::MaintenanceWindow>(&());
    let windows: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &window_resource),
        None => Api::all_with(client.clone(), &window_resource),
    };
    let policies = controller.store();
    let policy_resource = resource.clone();
    let controller = controller.watches_with(
        windows,
        window_resource,
        watcher::Config::default(),
        move |window: DynamicObject| {
            let namespace = window.namespace().unwrap_or_default();
            policies
                .state()
                .iter()
                .filter(|p| p.namespace().as_deref() == Some(namespace.as_str()))
                .map(|p| {
                    ObjectRef::new_with(&p.name_any(), policy_resource.clone()).within(&namespace)
                })
                .collect::<Vec<_>>()
        },
    );
    controller
        .owns(cron_jobs, ours.clone())
        .owns(accounts, ours.clone())
        .watches(jobs, ours, move |job: Job| {
            let policy = job.labels().get(builder::POLICY_LABEL)?.clone();
            let namespace = job.namespace()?;
            Some(ObjectRef::new_with(&policy, resource.clone()).within(&namespace))
        })
}

/// How often in-process state is checked against the Controller's store (deletions).
pub const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Forgets deleted BackupPolicies (alert engines, metric series) until `stop`.
pub async fn sweep(
    backups: std::sync::Arc<Backups>,
    store: kube::runtime::reflector::Store<DynamicObject>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        if store.is_empty() {
            // Not listed yet (or nothing left): in-process state is rebuilt from status anyway.
            continue;
        }
        let present: BTreeSet<String> = store
            .state()
            .iter()
            .map(|o| key_of(&o.namespace().unwrap_or_default(), &o.name_any()))
            .collect();
        backups.sweep(&present);
    }
}
