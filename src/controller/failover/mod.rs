//! FailoverPlan reconciler: runs the failover engine (`src/failover/`) for valid plans on the
//! leader (the whole controller only runs while it holds the Lease).
//!
//! Each reconcile reads the plan fresh from the API server (never the watch cache, which may
//! lag behind this process's own last save), rebuilds the engine's record from its status,
//! resolves the steps' Secrets (a missing one makes the plan `InvalidSpec` and nothing runs),
//! gathers observations, and drives the engine. The driver saves the record before and after
//! every try; each save is a server-side apply of the whole status this module owns (record
//! fields plus the last conditions), so there is one status writer. Transitions become Events
//! and metrics; the refusal becomes `TriggerAllowed`; the next wake time becomes the requeue.
//!
//! See `docs/failover.md`, section "Controller".

pub mod cluster;
mod convert;
mod events;
pub mod metrics;
mod notify;
mod observe;

use std::any::Any;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;
use kube::{Client, Resource, ResourceExt};
use serde_json::{Map, Value, json};
use tracing::{info, warn};

use crate::api::common::SecretKeyRef;
use crate::api::failover_plan::condition;
use crate::api::{Condition, FailoverPlan, FieldError};
use crate::failover::{
    Action, FailoverError, FailoverRecord, PlanPolicy, RecordStore, ResolvedPlan, StepExecutor,
    Transition, drive,
};

use super::conditions::{ConditionStatus, DesiredCondition};
use super::context::{Context, FIELD_MANAGER};
pub use metrics::FailoverMetrics;

/// `TriggerAllowed` reason while no gate blocks.
pub const REASON_ALLOWED: &str = "Allowed";

/// How often an automatic plan looks at its monitors (HealthMonitors are not watched by the
/// FailoverPlan controller).
pub const AUTOMATIC_POLL: Duration = Duration::from_secs(5);

/// Why a FailoverPlan reconcile failed; retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the plan, a monitor, a Secret or a BackupPolicy failed.
    #[error("FailoverPlan {namespace}/{name}: reading {what} failed: {source}")]
    Read {
        namespace: String,
        name: String,
        what: String,
        #[source]
        source: Box<kube::Error>,
    },
    /// The stored status does not convert into the engine's record.
    #[error("FailoverPlan {namespace}/{name}: status does not read as a failover record: {source}")]
    Status {
        namespace: String,
        name: String,
        #[source]
        source: serde_json::Error,
    },
    /// The engine (record store, state machine) failed.
    #[error("FailoverPlan {namespace}/{name}: {source}")]
    Engine {
        namespace: String,
        name: String,
        #[source]
        source: FailoverError,
    },
}

impl Error {
    /// Short class for `watchkeeper_reconcile_errors_total`.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Read { .. } => "failover_read",
            Self::Status { .. } => "failover_status",
            Self::Engine { .. } => "failover_engine",
        }
    }
}

/// What the reconcile adds to the generic one.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Problems only the cluster reveals (a Secret a step needs is missing).
    pub errors: Vec<FieldError>,
    /// `TriggerAllowed`.
    pub conditions: Vec<DesiredCondition>,
    /// When the engine wants to look again.
    pub requeue_after: Option<Duration>,
}

/// The status of one plan as this process last wrote (or read) it.
#[derive(Clone, Debug, Default)]
struct Entry {
    fields: Option<Map<String, Value>>,
    conditions: Vec<Condition>,
    observed_generation: Option<i64>,
}

/// The FailoverPlans this process drives.
pub struct Failovers {
    entries: Mutex<BTreeMap<String, Entry>>,
    resource: ApiResource,
    /// `watchkeeper_failover_*`.
    pub metrics: FailoverMetrics,
}

fn key_of(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// The FailoverPlan behind a generic object, if it is one.
pub fn as_failover_plan<K: Any>(object: &K) -> Option<&FailoverPlan> {
    (object as &dyn Any).downcast_ref::<FailoverPlan>()
}

impl Failovers {
    /// An empty set reporting to `metrics`.
    pub fn new(metrics: FailoverMetrics) -> Self {
        Self {
            entries: Mutex::new(BTreeMap::new()),
            resource: ApiResource::erase::<FailoverPlan>(&()),
            metrics,
        }
    }

    fn entry(&self, key: &str) -> Entry {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    fn update(&self, key: &str, change: impl FnOnce(&mut Entry)) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        change(entries.entry(key.to_string()).or_default());
    }

    /// Drives one plan. `errors` are the validation errors so far: an invalid or deleted plan
    /// runs nothing.
    pub async fn reconcile(
        &self,
        ctx: &Context,
        object: &FailoverPlan,
        errors: &[FieldError],
        deleting: bool,
    ) -> Result<Outcome, Error> {
        let namespace = object.namespace().unwrap_or_default();
        let name = object.name_any();
        let key = key_of(&namespace, &name);
        if deleting || !errors.is_empty() {
            if deleting {
                self.entries
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&key);
            }
            self.metrics.remove(&namespace, &name);
            return Ok(Outcome::default());
        }
        let read = |what: &str, source: kube::Error| Error::Read {
            namespace: namespace.clone(),
            name: name.clone(),
            what: what.to_string(),
            source: Box::new(source),
        };
        let api: Api<FailoverPlan> = Api::namespaced(ctx.client.clone(), &namespace);
        let Some(plan) = api.get_opt(&name).await.map_err(|e| read("the plan", e))? else {
            return Ok(Outcome::default());
        };
        let stored = plan.status.clone().unwrap_or_default();
        let record = convert::record_of(&stored).map_err(|source| Error::Status {
            namespace: namespace.clone(),
            name: name.clone(),
            source,
        })?;
        let fields = convert::status_fields(&record).map_err(|source| Error::Status {
            namespace: namespace.clone(),
            name: name.clone(),
            source,
        })?;
        self.update(&key, |e| {
            e.fields = Some(fields);
            e.conditions = stored.conditions.clone();
            e.observed_generation = stored.observed_generation;
        });
        self.metrics.set_phase(&namespace, &name, record.phase);

        let policy = match PlanPolicy::from_spec(key.clone(), &plan.spec) {
            Ok(policy) => policy,
            Err(error) => {
                return Ok(Outcome {
                    errors: vec![field_error(error)],
                    ..Outcome::default()
                });
            }
        };
        let resolved = match resolve(&ctx.client, &namespace, &plan).await {
            Ok(Ok(resolved)) => resolved,
            Ok(Err(errors)) => {
                return Ok(Outcome {
                    errors,
                    ..Outcome::default()
                });
            }
            Err(e) => return Err(read("a Secret", e)),
        };
        let now = Utc::now();
        let observations = observe::gather(&ctx.client, &ctx.maintenance, &plan, &policy, now)
            .await
            .map_err(|e| read("the plan's monitors or BackupPolicy", e))?;
        let engine = |source| Error::Engine {
            namespace: namespace.clone(),
            name: name.clone(),
            source,
        };
        let http = crate::failover::http::client().map_err(engine)?;
        let executor = StepExecutor::new(
            resolved,
            http,
            cluster::ClusterSteps::new(ctx.client.clone(), &plan),
        );
        let store = PlanStore {
            failovers: self,
            client: ctx.client.clone(),
            namespace: namespace.clone(),
            name: name.clone(),
            record,
        };
        let settled = drive(
            &policy,
            &executor,
            &store,
            || observations.clone(),
            Utc::now,
        )
        .await
        .map_err(engine)?;

        let reference = plan.object_ref(&());
        for transition in &settled.transitions {
            self.measure(&namespace, &name, &settled.record, transition);
            let event = events::event(transition);
            info!(namespace = %namespace, name = %name, reason = %event.reason, note = ?event.note, "failover transition");
            if let Err(error) = ctx.recorder.publish(&event, &reference).await {
                ctx.metrics.event_failed("FailoverPlan");
                warn!(namespace = %namespace, name = %name, %error, "publishing Event failed");
            }
        }
        self.metrics
            .set_phase(&namespace, &name, settled.record.phase);
        let trigger_allowed = match &settled.record.refusal {
            Some(refusal) => DesiredCondition::new(
                condition::TRIGGER_ALLOWED,
                ConditionStatus::False,
                refusal.reason.as_str(),
                refusal.message.clone(),
            ),
            None => DesiredCondition::new(
                condition::TRIGGER_ALLOWED,
                ConditionStatus::True,
                REASON_ALLOWED,
                "no gate blocks a trigger now",
            ),
        };
        let wake = match settled.action {
            Action::Idle { wake_at } => wake_at,
            Action::WaitUntil { until } => Some(until),
            _ => None,
        };
        let mut requeue_after = wake.map(|at| until(at, Utc::now()));
        if policy.trigger.automatic && !policy.trigger.suspended {
            requeue_after = Some(requeue_after.map_or(AUTOMATIC_POLL, |d| d.min(AUTOMATIC_POLL)));
        }
        Ok(Outcome {
            errors: Vec::new(),
            conditions: vec![trigger_allowed],
            requeue_after,
        })
    }

    fn measure(&self, namespace: &str, name: &str, record: &FailoverRecord, t: &Transition) {
        let step_seconds = |index: usize| {
            let step = record.current_attempt.as_ref()?.steps.get(index)?;
            Some(seconds(step.start_time?, step.end_time?))
        };
        match t {
            Transition::StepSucceeded {
                index, name: step, ..
            }
            | Transition::StepFailed {
                index, name: step, ..
            } => {
                if let Some(s) = step_seconds(*index) {
                    self.metrics.step(namespace, name, step, s);
                }
            }
            Transition::AttemptFinished(summary) => self.metrics.attempt(
                namespace,
                name,
                &format!("{:?}", summary.kind),
                &format!("{:?}", summary.result),
                seconds(summary.start_time, summary.end_time),
            ),
            _ => {}
        }
    }

    /// Writes a FailoverPlan's whole owned status: the core's `conditions` and
    /// `observedGeneration` plus the record fields last saved or read.
    pub async fn write(
        &self,
        client: &Client,
        namespace: &str,
        name: &str,
        conditions: &[Condition],
        observed_generation: Option<i64>,
    ) -> Result<(), kube::Error> {
        let key = key_of(namespace, name);
        let fields = match self.entry(&key).fields {
            Some(fields) => fields,
            // Not driven here (invalid spec, malformed object): send the stored record back,
            // or server-side apply would drop it.
            None => self.stored_fields(client, namespace, name).await?,
        };
        self.apply(
            client,
            namespace,
            name,
            fields.clone(),
            conditions,
            observed_generation,
        )
        .await?;
        self.update(&key, |e| {
            e.fields = Some(fields);
            e.conditions = conditions.to_vec();
            e.observed_generation = observed_generation;
        });
        Ok(())
    }

    async fn stored_fields(
        &self,
        client: &Client,
        namespace: &str,
        name: &str,
    ) -> Result<Map<String, Value>, kube::Error> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &self.resource);
        Ok(match api.get_opt(name).await? {
            Some(object) => match object.data.get("status") {
                Some(Value::Object(stored)) => stored
                    .iter()
                    .filter(|(k, _)| *k != "conditions" && *k != "observedGeneration")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                _ => Map::new(),
            },
            None => Map::new(),
        })
    }

    async fn apply(
        &self,
        client: &Client,
        namespace: &str,
        name: &str,
        mut status: Map<String, Value>,
        conditions: &[Condition],
        observed_generation: Option<i64>,
    ) -> Result<(), kube::Error> {
        if let Some(generation) = observed_generation {
            status.insert("observedGeneration".into(), json!(generation));
        }
        if !conditions.is_empty() {
            status.insert("conditions".into(), json!(conditions));
        }
        let body = json!({
            "apiVersion": self.resource.api_version,
            "kind": self.resource.kind,
            "status": Value::Object(status),
        });
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &self.resource);
        api.patch_status(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map(|_| ())
    }
}

/// The driver's store: the record read at the start of the reconcile, saved as status.
struct PlanStore<'a> {
    failovers: &'a Failovers,
    client: Client,
    namespace: String,
    name: String,
    record: FailoverRecord,
}

impl RecordStore for PlanStore<'_> {
    async fn load(&self) -> Result<Option<FailoverRecord>, FailoverError> {
        Ok(Some(self.record.clone()))
    }

    async fn save(&self, record: &FailoverRecord) -> Result<(), FailoverError> {
        let key = key_of(&self.namespace, &self.name);
        let fields = convert::status_fields(record)
            .map_err(|e| FailoverError::Store(format!("record does not convert: {e}")))?;
        let entry = self.failovers.entry(&key);
        self.failovers
            .apply(
                &self.client,
                &self.namespace,
                &self.name,
                fields.clone(),
                &entry.conditions,
                entry.observed_generation,
            )
            .await
            .map_err(|e| {
                FailoverError::Store(format!(
                    "writing FailoverPlan {}/{} status: {e}",
                    self.namespace, self.name
                ))
            })?;
        self.failovers.update(&key, |e| e.fields = Some(fields));
        Ok(())
    }
}

/// Resolves the steps' Secrets: the Secrets named are read once, then every missing one is
/// reported with its field path.
async fn resolve(
    client: &Client,
    namespace: &str,
    plan: &FailoverPlan,
) -> Result<Result<ResolvedPlan, Vec<FieldError>>, kube::Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut secrets = BTreeMap::new();
    for name in secret_names(plan) {
        if let Some(secret) = api.get_opt(&name).await? {
            secrets.insert(name, secret);
        }
    }
    let lookup = |r: &SecretKeyRef| {
        let secret = secrets.get(&r.name)?;
        if let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(&r.key)) {
            return String::from_utf8(bytes.0.clone()).ok();
        }
        secret
            .string_data
            .as_ref()
            .and_then(|d| d.get(&r.key))
            .cloned()
    };
    Ok(ResolvedPlan::resolve(&plan.spec, &lookup)
        .map_err(|errors| errors.into_iter().map(field_error).collect()))
}

/// The names of the Secrets the steps reference.
fn secret_names(plan: &FailoverPlan) -> BTreeSet<String> {
    let wanted = RefCell::new(BTreeSet::new());
    let collect = |r: &SecretKeyRef| {
        wanted.borrow_mut().insert(r.name.clone());
        Some(String::new())
    };
    // Only collects the names; the result is discarded.
    let _ = ResolvedPlan::resolve(&plan.spec, &collect);
    wanted.into_inner()
}

fn field_error(error: FailoverError) -> FieldError {
    match error {
        FailoverError::Spec { path, message } => FieldError::new(path, message),
        FailoverError::MissingSecret { path, secret, key } => FieldError::new(
            path,
            format!("Secret {secret} has no key {key} (or does not exist)"),
        ),
        other => FieldError::new("spec", other.to_string()),
    }
}

fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds() as f64 / 1000.0
}

fn until(at: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (at - now)
        .to_std()
        .unwrap_or(Duration::ZERO)
        .max(Duration::from_millis(200))
}
