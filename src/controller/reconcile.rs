//! The reconcile shared by every kind: validate → plan status → server-side apply status (only
//! when something changed) → one Event per condition transition.
//!
//! Objects arrive as [`DynamicObject`]s so that one object that no longer deserializes into its
//! Rust type (stored before a schema change, or written while validation was off) cannot break
//! the list of all the others: it gets `Ready=False/InvalidSpec` naming the field serde choked
//! on, and the rest are reconciled as usual.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{debug, info, warn};

use super::backup;
use super::conditions::{self, ConditionStatus, DesiredCondition, Transition};
use super::context::{Context, FIELD_MANAGER};
use super::cron_job;
use super::failover;
use super::maintenance;
use super::metrics::ReconcileResult;
use super::monitors;
use super::status::{self, StatusPlan};
use crate::api::{
    BackupPolicy, Condition, CronJobSpec, FailoverPlan, FieldError, HasConditions, HealthMonitor,
    MaintenanceWindow, Validate,
};
use crate::monitor::MonitorKey;

/// Maximum size of an Event note (the API server rejects notes over 1 kB).
const MAX_NOTE_BYTES: usize = 1024;

/// A watchkeeper kind the controller core reconciles.
pub trait ManagedKind:
    Resource<DynamicType = ()>
    + Validate
    + HasConditions
    + Clone
    + Serialize
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
    /// The kind's name, as in `kind:`.
    const KIND: &'static str;
}

macro_rules! managed_kind {
    ($($kind:ident),*) => {
        $(impl ManagedKind for $kind {
            const KIND: &'static str = stringify!($kind);
        })*
    };
}
managed_kind!(
    HealthMonitor,
    CronJobSpec,
    BackupPolicy,
    MaintenanceWindow,
    FailoverPlan
);

/// Why a reconcile failed; it is retried with exponential backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The status write was refused or did not reach the API server.
    #[error("{kind} {namespace}/{name}: writing status failed: {source}")]
    WriteStatus {
        kind: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    /// The object has no namespace (all watchkeeper kinds are namespaced).
    #[error("{kind} {name}: metadata.namespace is missing")]
    MissingNamespace { kind: &'static str, name: String },
    /// Reconciling a CronJobSpec's CronJob, Jobs or Secrets failed.
    #[error(transparent)]
    CronJob(#[from] cron_job::Error),
    /// Reconciling a BackupPolicy's CronJobs, Jobs or Secrets failed.
    #[error(transparent)]
    Backup(#[from] backup::Error),
    /// Opening, closing or applying a MaintenanceWindow failed.
    #[error(transparent)]
    Maintenance(#[from] maintenance::Error),
    /// Driving a FailoverPlan failed.
    #[error(transparent)]
    Failover(#[from] failover::Error),
}

impl Error {
    /// Short error class, the `error` label of `watchkeeper_reconcile_errors_total`.
    pub fn class(&self) -> &'static str {
        match self {
            Self::WriteStatus { source, .. } => match source.as_ref() {
                kube::Error::Api(status) if status.code == 409 => "conflict",
                kube::Error::Api(status) if status.code == 422 => "status_rejected",
                kube::Error::Api(_) => "api",
                _ => "transport",
            },
            Self::MissingNamespace { .. } => "missing_namespace",
            Self::CronJob(error) => error.class(),
            Self::Backup(error) => error.class(),
            Self::Maintenance(error) => error.class(),
            Self::Failover(error) => error.class(),
        }
    }
}

/// What the reconcile needs to know about the object, whether it deserialized or not.
struct Target {
    kind: &'static str,
    resource: ApiResource,
    name: String,
    namespace: String,
    generation: Option<i64>,
    deleting: bool,
    reference: ObjectReference,
}

impl Target {
    fn typed<K: ManagedKind>(object: &K) -> Result<Self, Error> {
        let name = object.name_any();
        let namespace = object.namespace().ok_or_else(|| Error::MissingNamespace {
            kind: K::KIND,
            name: name.clone(),
        })?;
        Ok(Self {
            kind: K::KIND,
            resource: ApiResource::erase::<K>(&()),
            generation: object.meta().generation,
            deleting: object.meta().deletion_timestamp.is_some(),
            reference: object.object_ref(&()),
            name,
            namespace,
        })
    }

    fn dynamic<K: ManagedKind>(object: &DynamicObject) -> Result<Self, Error> {
        let resource = ApiResource::erase::<K>(&());
        let name = object.name_any();
        let namespace = object.namespace().ok_or_else(|| Error::MissingNamespace {
            kind: K::KIND,
            name: name.clone(),
        })?;
        Ok(Self {
            kind: K::KIND,
            generation: object.metadata.generation,
            deleting: object.metadata.deletion_timestamp.is_some(),
            reference: object.object_ref(&resource),
            resource,
            name,
            namespace,
        })
    }

    fn key(&self) -> String {
        format!("{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

/// Entry point the kube-rs `Controller` calls: parses the object into `K` and reconciles it,
/// or reconciles it as malformed when it does not parse.
pub async fn reconcile_object<K: ManagedKind>(
    object: Arc<DynamicObject>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    match parse::<K>(&object) {
        Ok(typed) => reconcile(Arc::new(typed), ctx).await,
        Err(error) => reconcile_malformed::<K>(&object, error, ctx).await,
    }
}

/// Reconciles one object of kind `K`: validates its spec and records the verdict in status.
pub async fn reconcile<K: ManagedKind>(object: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let target = Target::typed(&*object)?;
    let mut errors = object.validate();
    let mut extra = match monitors::as_health_monitor(&*object) {
        Some(monitor) => {
            let valid = errors.is_empty() && !target.deleting;
            vec![ctx.monitors.reconcile(&ctx.client, monitor, valid).await]
        }
        None => Vec::new(),
    };
    let mut requeue_after = None;
    if let Some(spec) = cron_job::as_cron_job_spec(&*object) {
        let outcome = ctx
            .cron_jobs
            .reconcile(&ctx.client, spec, &errors, target.deleting)
            .await;
        match outcome {
            Ok(outcome) => {
                errors.extend(outcome.errors);
                extra.extend(outcome.conditions);
                requeue_after = outcome.requeue_after;
            }
            Err(error) => return finish(&target, Err(error.into()), started, &ctx),
        }
    }
    if let Some(policy) = backup::as_backup_policy(&*object) {
        match ctx
            .backups
            .reconcile(&ctx, policy, &errors, target.deleting)
            .await
        {
            Ok(outcome) => {
                errors.extend(outcome.errors);
                extra.extend(outcome.conditions);
                requeue_after = outcome.requeue_after;
            }
            Err(error) => return finish(&target, Err(error.into()), started, &ctx),
        }
    }
    if let Some(window) = maintenance::as_window(&*object) {
        match ctx.windows.reconcile(&ctx, window, errors.is_empty()).await {
            Ok(outcome) => {
                extra.extend(outcome.conditions);
                requeue_after = outcome.requeue;
            }
            Err(error) => return finish(&target, Err(error.into()), started, &ctx),
        }
    }
    if let Some(plan) = failover::as_failover_plan(&*object) {
        match ctx
            .failovers
            .reconcile(&ctx, plan, &errors, target.deleting)
            .await
        {
            Ok(outcome) => {
                errors.extend(outcome.errors);
                extra.extend(outcome.conditions);
                requeue_after = outcome.requeue_after;
            }
            Err(error) => return finish(&target, Err(error.into()), started, &ctx),
        }
    }
    let result = sync(
        &target,
        object.conditions(),
        object.observed_generation(),
        &errors,
        &extra,
        &ctx,
    )
    .await;
    let action = finish(&target, result, started, &ctx)?;
    if let Some(after) = requeue_after {
        return Ok(Action::requeue(after.min(ctx.settings.resync)));
    }
    // A monitor that cannot be probed (typically a Secret not created yet: Secrets are not
    // watched) is looked at again after the longest retry delay, not only at the resync.
    if extra
        .iter()
        .any(|c| c.reason == monitors::REASON_CANNOT_PROBE)
    {
        return Ok(Action::requeue(
            ctx.settings.backoff_max.min(ctx.settings.resync),
        ));
    }
    Ok(action)
}

/// Reconciles an object whose stored form does not deserialize into `K`: the parse error
/// becomes the `InvalidSpec` message.
async fn reconcile_malformed<K: ManagedKind>(
    object: &DynamicObject,
    error: FieldError,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let started = Instant::now();
    let target = Target::dynamic::<K>(object)?;
    warn!(
        kind = target.kind,
        namespace = %target.namespace,
        name = %target.name,
        error = %error,
        "object does not match its schema"
    );
    let (conditions, observed_generation) = stored_status(object);
    let mut extra = Vec::new();
    if K::KIND == HealthMonitor::KIND {
        ctx.monitors.stop(&monitor_key(&target));
        extra.push(monitors::not_run());
    }
    let result = sync(
        &target,
        &conditions,
        observed_generation,
        &[error],
        &extra,
        &ctx,
    )
    .await;
    finish(&target, result, started, &ctx)
}

/// Deserializes a stored object into `K`, naming the offending field on failure.
pub fn parse<K: DeserializeOwned>(object: &DynamicObject) -> Result<K, FieldError> {
    let value = serde_json::to_value(object)
        .map_err(|error| FieldError::new("", format!("cannot read the object: {error}")))?;
    serde_path_to_error::deserialize::<_, K>(value).map_err(|error| {
        let path = error.path().to_string();
        let path = if path == "." { String::new() } else { path };
        FieldError::new(path, error.into_inner().to_string())
    })
}

/// `status.conditions` and `status.observedGeneration` of an object read without its type;
/// anything unreadable counts as absent (and is then overwritten).
fn stored_status(object: &DynamicObject) -> (Vec<Condition>, Option<i64>) {
    let status = object.data.get("status");
    let conditions = status
        .and_then(|s| s.get("conditions"))
        .and_then(|c| serde_json::from_value::<Vec<Condition>>(c.clone()).ok())
        .unwrap_or_default();
    let observed = status
        .and_then(|s| s.get("observedGeneration"))
        .and_then(serde_json::Value::as_i64);
    (conditions, observed)
}

/// Plans the status, writes it if it changed, and publishes Events for transitions.
async fn sync(
    target: &Target,
    current: &[Condition],
    observed_generation: Option<i64>,
    errors: &[FieldError],
    extra: &[DesiredCondition],
    ctx: &Context,
) -> Result<ReconcileResult, Error> {
    let verdict = if errors.is_empty() {
        ReconcileResult::Accepted
    } else {
        ReconcileResult::InvalidSpec
    };
    if target.deleting {
        debug!(kind = target.kind, namespace = %target.namespace, name = %target.name, "being deleted; status left alone");
        return Ok(verdict);
    }
    let mut desired = vec![status::ready_condition(errors)];
    desired.extend(extra.iter().cloned());
    let plan = status::plan(
        current,
        observed_generation,
        target.generation,
        &desired,
        Timestamp::now(),
    );
    let pending = (target.kind == CronJobSpec::KIND
        && ctx.cron_jobs.pending(&target.namespace, &target.name))
        || (target.kind == BackupPolicy::KIND
            && ctx.backups.pending(&target.namespace, &target.name));
    if !plan.changed && !pending {
        debug!(kind = target.kind, namespace = %target.namespace, name = %target.name, "status up to date");
        return Ok(verdict);
    }
    write_status(target, &plan, ctx).await?;
    for transition in &plan.transitions {
        publish(target, transition, ctx).await;
    }
    Ok(verdict)
}

async fn write_status(target: &Target, plan: &StatusPlan, ctx: &Context) -> Result<(), Error> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &target.namespace, &target.resource);
    let written = if target.kind == HealthMonitor::KIND {
        // One writer per HealthMonitor status: the monitor snapshot goes along.
        ctx.monitors
            .write(
                &ctx.client,
                &monitor_key(target),
                &plan.conditions,
                plan.observed_generation,
            )
            .await
    } else if target.kind == CronJobSpec::KIND {
        // One writer per CronJobSpec status: the run and health fields go along.
        ctx.cron_jobs
            .write(
                &ctx.client,
                &target.namespace,
                &target.name,
                &plan.conditions,
                plan.observed_generation,
            )
            .await
    } else if target.kind == MaintenanceWindow::KIND {
        // One writer per MaintenanceWindow status: the window fields go along.
        ctx.windows
            .write_conditions(
                &ctx.client,
                &target.namespace,
                &target.name,
                &plan.conditions,
                plan.observed_generation,
            )
            .await
    } else if target.kind == BackupPolicy::KIND {
        // One writer per BackupPolicy status: the backup fields go along.
        ctx.backups
            .write(
                &ctx.client,
                &target.namespace,
                &target.name,
                &plan.conditions,
                plan.observed_generation,
            )
            .await
    } else if target.kind == FailoverPlan::KIND {
        // One writer per FailoverPlan status: the engine's record goes along.
        ctx.failovers
            .write(
                &ctx.client,
                &target.namespace,
                &target.name,
                &plan.conditions,
                plan.observed_generation,
            )
            .await
    } else {
        let body = plan.apply_body(&target.resource.api_version, target.kind);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        api.patch_status(&target.name, &params, &Patch::Apply(&body))
            .await
            .map(|_| ())
    };
    match written {
        Ok(_) => {
            info!(
                kind = target.kind,
                namespace = %target.namespace,
                name = %target.name,
                generation = ?target.generation,
                ready = ?conditions::find(&plan.conditions, conditions::READY).map(|c| c.status.as_str()),
                "status written"
            );
            Ok(())
        }
        // Deleted between the watch event and the write: nothing left to do.
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(Error::WriteStatus {
            kind: target.kind,
            namespace: target.namespace.clone(),
            name: target.name.clone(),
            source: Box::new(source),
        }),
    }
}

fn monitor_key(target: &Target) -> MonitorKey {
    MonitorKey {
        namespace: target.namespace.clone(),
        name: target.name.clone(),
    }
}

/// Publishes the Event of one condition transition. A failure is logged and counted, not
/// retried: the status (the source of truth) is already written.
async fn publish(target: &Target, transition: &Transition, ctx: &Context) {
    let event = transition_event(transition);
    if let Err(error) = ctx.recorder.publish(&event, &target.reference).await {
        ctx.metrics.event_failed(target.kind);
        warn!(kind = target.kind, namespace = %target.namespace, name = %target.name, %error, "publishing Event failed");
    }
}

/// The Event for a transition: Warning when a condition turns False, Normal otherwise.
pub fn transition_event(transition: &Transition) -> Event {
    let c = &transition.current;
    let type_ = if c.status == ConditionStatus::False.as_str() {
        EventType::Warning
    } else {
        EventType::Normal
    };
    let note = conditions::truncate(
        format!("{}={}: {}", c.type_, c.status, c.message),
        MAX_NOTE_BYTES,
    );
    Event {
        type_,
        reason: c.reason.clone(),
        note: Some(note),
        action: format!("Set{}", c.type_),
        secondary: None,
    }
}

fn finish(
    target: &Target,
    result: Result<ReconcileResult, Error>,
    started: Instant,
    ctx: &Context,
) -> Result<Action, Error> {
    let took = started.elapsed();
    match result {
        Ok(verdict) => {
            ctx.metrics.reconciled(target.kind, verdict, None, took);
            ctx.reset_backoff(&target.key());
            Ok(Action::requeue(ctx.settings.resync))
        }
        Err(error) => {
            ctx.metrics.reconciled(
                target.kind,
                ReconcileResult::Error,
                Some(error.class()),
                took,
            );
            Err(error)
        }
    }
}

/// Called by the `Controller` after a failed reconcile: retry with per-object exponential
/// backoff.
pub fn error_policy<K: ManagedKind>(
    object: Arc<DynamicObject>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    let key = format!(
        "{}/{}/{}",
        K::KIND,
        object.namespace().unwrap_or_default(),
        object.name_any()
    );
    let delay = ctx.next_backoff(&key);
    warn!(%error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dynamic(value: serde_json::Value) -> DynamicObject {
        serde_json::from_value(value).unwrap()
    }

    /// A stand-in kind, so these tests do not follow the real kinds' evolving fields.
    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Probe {
        #[allow(dead_code)]
        api_version: String,
        #[allow(dead_code)]
        kind: String,
        metadata: kube::api::ObjectMeta,
        spec: ProbeSpec,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct ProbeSpec {
        interval: String,
        #[serde(default)]
        steps: Vec<Step>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Step {
        #[allow(dead_code)]
        timeout: String,
    }

    fn probe(spec: serde_json::Value) -> DynamicObject {
        dynamic(serde_json::json!({
            "apiVersion": "watchkeeper.dev/v1alpha1",
            "kind": "Probe",
            "metadata": {"name": "a", "namespace": "ns", "generation": 2},
            "spec": spec
        }))
    }

    #[test]
    fn parse_reports_the_path_of_a_bad_field() {
        let error = parse::<Probe>(&probe(serde_json::json!({"interval": 30}))).unwrap_err();
        assert_eq!(error.path, "spec.interval");
        assert!(error.message.contains("invalid type"), "{}", error.message);

        let error = parse::<Probe>(&probe(serde_json::json!({
            "interval": "30s", "steps": [{"timeout": "1m"}, {"timeout": false}]
        })))
        .unwrap_err();
        assert_eq!(error.path, "spec.steps[1].timeout");
    }

    #[test]
    fn parse_reports_unknown_fields_at_their_own_path() {
        let error = parse::<Probe>(&probe(
            serde_json::json!({"interval": "30s", "routingKey": "x"}),
        ))
        .unwrap_err();
        assert_eq!(error.path, "spec.routingKey");
        assert!(error.message.contains("unknown field"), "{}", error.message);
    }

    #[test]
    fn parse_accepts_a_good_object() {
        let parsed = parse::<Probe>(&probe(
            serde_json::json!({"interval": "30s", "steps": [{"timeout": "1m"}]}),
        ))
        .unwrap();
        assert_eq!(parsed.metadata.generation, Some(2));
        assert_eq!(parsed.spec.interval, "30s");
        assert_eq!(parsed.spec.steps.len(), 1);
    }

    #[test]
    fn stored_status_is_read_leniently() {
        let object = dynamic(serde_json::json!({
            "apiVersion": "watchkeeper.dev/v1alpha1",
            "kind": "HealthMonitor",
            "metadata": {"name": "a", "namespace": "ns"},
            "status": {"observedGeneration": 3, "conditions": [{"type": "Ready", "status": "True",
                "reason": "Accepted", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        }));
        let (conditions, observed) = stored_status(&object);
        assert_eq!(observed, Some(3));
        assert_eq!(conditions[0].reason, "Accepted");

        let broken = dynamic(serde_json::json!({
            "apiVersion": "watchkeeper.dev/v1alpha1",
            "kind": "HealthMonitor",
            "metadata": {"name": "a", "namespace": "ns"},
            "status": {"conditions": "nonsense"}
        }));
        assert_eq!(stored_status(&broken), (Vec::new(), None));
    }

    #[test]
    fn invalid_transition_is_a_warning_event_naming_the_field() {
        let plan = status::plan(
            &[],
            None,
            Some(1),
            &[status::ready_condition(&[FieldError::new(
                "spec.retention.daily",
                "must be >= 0",
            )])],
            Timestamp::now(),
        );
        let event = transition_event(&plan.transitions[0]);
        assert_eq!(event.type_, EventType::Warning);
        assert_eq!(event.reason, "InvalidSpec");
        assert!(
            event
                .note
                .as_deref()
                .unwrap()
                .contains("spec.retention.daily: must be >= 0")
        );

        let fixed = status::plan(
            &plan.conditions,
            Some(1),
            Some(2),
            &[status::ready_condition(&[])],
            Timestamp::now(),
        );
        let event = transition_event(&fixed.transitions[0]);
        assert_eq!(event.type_, EventType::Normal);
        assert_eq!(event.reason, "Accepted");
    }

    #[test]
    fn error_classes_name_the_failure() {
        let error = Error::MissingNamespace {
            kind: "HealthMonitor",
            name: "a".into(),
        };
        assert_eq!(error.class(), "missing_namespace");
        assert!(error.to_string().contains("HealthMonitor a"));
    }
}
