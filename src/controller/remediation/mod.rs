//! The Kubernetes side of HealthMonitor remediation: roll a Deployment back, scale a workload,
//! set a ConfigMap key (and put it back), request a FailoverPlan.
//!
//! The HealthMonitor reconciler decides *that* a trigger fires; this module decides whether the
//! action may run now ([`policy::decide`]: cooldown, attempt limit), runs it, and describes the
//! attempt twice: a [`RemediationRecord`] for `status.remediations` and an Event (published on
//! the monitor when a [`Recorder`] is given). An action that fails is an attempt too: it is
//! recorded as `Failed` with the reason, and counts towards `maxAttempts`.
//!
//! Nothing here reads a Secret, and values written are ConfigMap values only.

pub mod configmap;
pub mod failover;
pub mod policy;
pub mod rollback;
pub mod scale;
pub mod trigger;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder};
use tracing::{info, warn};

use super::conditions;
use crate::api::common::Time;
use crate::api::health_monitor::{Remediation, RemediationRecord, RemediationResult};
pub use policy::Decision;

/// Maximum size of an Event note (the API server rejects notes over 1 kB).
const MAX_NOTE_BYTES: usize = 1024;
/// Maximum size of a record's message in status.
const MAX_MESSAGE_BYTES: usize = 512;

/// Why a remediation action could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object the action works on does not exist.
    #[error("{kind} {namespace}/{name} not found")]
    NotFound {
        kind: &'static str,
        namespace: String,
        name: String,
    },
    /// The API server refused a request or could not be reached.
    #[error("{verb} {kind} {namespace}/{name}: {source}")]
    Api {
        verb: &'static str,
        kind: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    /// An object read from the API server lacks something the action needs.
    #[error("{kind} {namespace}/{name}: {what}")]
    Malformed {
        kind: &'static str,
        namespace: String,
        name: String,
        what: String,
    },
    /// `kubectl rollout undo` refuses paused Deployments too: resume it first.
    #[error("Deployment {namespace}/{name} is paused (spec.paused): resume it before rolling back")]
    Paused { namespace: String, name: String },
    /// No ReplicaSet of the Deployment has a revision below the current one.
    #[error("Deployment {namespace}/{name}: no revision before revision {current} to roll back to")]
    NoPreviousRevision {
        namespace: String,
        name: String,
        current: i64,
    },
    /// The previous revision's pod template is the one the Deployment already runs.
    #[error(
        "Deployment {namespace}/{name}: the pod template already matches revision {revision}; nothing to roll back"
    )]
    AlreadyAtRevision {
        namespace: String,
        name: String,
        revision: i64,
    },
    /// The ConfigMap is `immutable: true`; its data cannot change.
    #[error("ConfigMap {namespace}/{name} is immutable; key {key} cannot be set")]
    Immutable {
        namespace: String,
        name: String,
        key: String,
    },
    /// A revert was asked but no previous value was recorded for the key.
    #[error(
        "ConfigMap {namespace}/{name}: no previous value of key {key} recorded; nothing to revert"
    )]
    NothingToRevert {
        namespace: String,
        name: String,
        key: String,
    },
    /// The key no longer holds the value the remediation wrote: someone changed it since, and
    /// their change wins over the revert.
    #[error(
        "ConfigMap {namespace}/{name}: key {key} was changed since the remediation set it; not reverted"
    )]
    ChangedSince {
        namespace: String,
        name: String,
        key: String,
    },
    /// The remediation names no action (validation normally rejects it).
    #[error("remediation {name}: none of rollback, scale, setConfigMapKey or failover is set")]
    NoAction { name: String },
    /// Only `setConfigMapKey` with `revertOnRecovery: true` can be reverted.
    #[error(
        "remediation {name}: only setConfigMapKey with revertOnRecovery: true is reverted on recovery"
    )]
    NotRevertible { name: String },
    /// The cooldown or attempt policy could not be evaluated.
    #[error(transparent)]
    Policy(#[from] policy::Error),
}

impl Error {
    /// An API error for `verb` on an object, with 404 turned into [`Error::NotFound`].
    pub(crate) fn api(
        verb: &'static str,
        kind: &'static str,
        namespace: &str,
        name: &str,
        source: kube::Error,
    ) -> Self {
        match &source {
            kube::Error::Api(status) if status.code == 404 => Self::NotFound {
                kind,
                namespace: namespace.to_string(),
                name: name.to_string(),
            },
            _ => Self::Api {
                verb,
                kind,
                namespace: namespace.to_string(),
                name: name.to_string(),
                source: Box::new(source),
            },
        }
    }
}

/// What one action did, in words for status and Events, and the object it changed.
#[derive(Clone, Debug)]
pub struct Done {
    /// E.g. "rolled Deployment ops/web back from revision 2 to revision 1".
    pub message: String,
    /// The object changed (the Event's `related` object).
    pub target: ObjectReference,
}

/// One evaluation of a remediation whose trigger fires.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// Namespace of the monitor (and of every object its actions touch).
    pub namespace: &'a str,
    /// Name of the HealthMonitor, used in failover tokens and messages.
    pub monitor: &'a str,
    /// The HealthMonitor the Events are about; `None` publishes no Event.
    pub monitor_ref: Option<&'a ObjectReference>,
    /// The remediation from `spec.remediations`.
    pub remediation: &'a Remediation,
    /// `status.remediations` so far (attempts, for cooldown and the attempt limit).
    pub history: &'a [RemediationRecord],
    /// When the trigger started firing this time; attempts before it belong to earlier
    /// incidents and do not count towards `maxAttempts`.
    pub incident_since: Timestamp,
    /// The time of this evaluation.
    pub now: Timestamp,
}

/// The result of one evaluation: always a record and an Event, plus the error of a failed
/// action for the caller's logs and metrics.
pub struct Execution {
    /// What the policy decided (`None` for a revert, which the policy does not gate).
    pub decision: Option<Decision>,
    /// The entry for `status.remediations` (see [`policy::push_record`]).
    pub record: RemediationRecord,
    /// The Event describing the attempt (already published if a recorder and a monitor
    /// reference were given).
    pub event: Event,
    /// Why the action failed, when `record.result` is `Failed`.
    pub error: Option<Error>,
}

impl std::fmt::Debug for Execution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // kube's Event has no Debug; its reason and note say what matters.
        f.debug_struct("Execution")
            .field("decision", &self.decision)
            .field("record", &self.record)
            .field("event_reason", &self.event.reason)
            .field("event_note", &self.event.note)
            .field("error", &self.error)
            .finish()
    }
}

/// Runs remediation actions against one API server.
#[derive(Clone)]
pub struct Remediator {
    client: Client,
    recorder: Option<Recorder>,
}

impl Remediator {
    /// A remediator that publishes no Events (the caller publishes [`Execution::event`]).
    pub fn new(client: Client) -> Self {
        Self {
            client,
            recorder: None,
        }
    }

    /// Also publishes each attempt's Event on the monitor through `recorder`.
    pub fn with_recorder(mut self, recorder: Recorder) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// Runs the remediation if cooldown and attempt limit allow it; otherwise records why not
    /// (`Skipped`). A failing action is recorded as `Failed` and counts as an attempt.
    pub async fn execute(&self, request: &Request<'_>) -> Execution {
        let r = request.remediation;
        let decision = match policy::decide(r, request.history, request.incident_since, request.now)
        {
            Ok(decision) => decision,
            Err(error) => {
                let error = Error::from(error);
                let record = record(r, request.now, 1, RemediationResult::Failed, &error);
                return self.finish(request, None, record, None, Some(error)).await;
            }
        };
        let attempt = match decision {
            Decision::Run { attempt } => attempt,
            Decision::CoolingDown { until } => {
                let message = format!("cooling down until {until}");
                let record = record(
                    r,
                    request.now,
                    last_attempt(r, request.history),
                    RemediationResult::Skipped,
                    &message,
                );
                return self
                    .finish(request, Some(decision), record, None, None)
                    .await;
            }
            Decision::AttemptsExhausted { attempts } => {
                let message = format!(
                    "{attempts} of maxAttempts {} made in this incident; no more until the trigger clears",
                    r.max_attempts
                );
                let record = record(
                    r,
                    request.now,
                    attempts,
                    RemediationResult::Skipped,
                    &message,
                );
                return self
                    .finish(request, Some(decision), record, None, None)
                    .await;
            }
        };
        match self.act(request).await {
            Ok(done) => {
                let record = record(
                    r,
                    request.now,
                    attempt,
                    RemediationResult::Succeeded,
                    &done.message,
                );
                self.finish(request, Some(decision), record, Some(done.target), None)
                    .await
            }
            Err(error) => {
                let record = record(r, request.now, attempt, RemediationResult::Failed, &error);
                self.finish(request, Some(decision), record, None, Some(error))
                    .await
            }
        }
    }

    /// Undoes a `setConfigMapKey` remediation with `revertOnRecovery: true` once its trigger
    /// has cleared: the key gets its value from before the first attempt back (or is removed
    /// if it was absent). Not gated by cooldown or attempts.
    pub async fn revert(&self, request: &Request<'_>) -> Execution {
        let r = request.remediation;
        let attempt = last_attempt(r, request.history);
        let result = match &r.set_config_map_key {
            Some(action) if action.revert_on_recovery => {
                configmap::revert(&self.client, request.namespace, action).await
            }
            _ => Err(Error::NotRevertible {
                name: r.name.clone(),
            }),
        };
        match result {
            Ok(done) => {
                let record = record(
                    r,
                    request.now,
                    attempt,
                    RemediationResult::Reverted,
                    &done.message,
                );
                self.finish(request, None, record, Some(done.target), None)
                    .await
            }
            Err(error) => {
                let record = record(r, request.now, attempt, RemediationResult::Failed, &error);
                self.finish(request, None, record, None, Some(error)).await
            }
        }
    }

    /// Runs the action itself, without the policy.
    async fn act(&self, request: &Request<'_>) -> Result<Done, Error> {
        let r = request.remediation;
        let ns = request.namespace;
        if let Some(action) = &r.rollback {
            rollback::rollback(&self.client, ns, &action.deployment).await
        } else if let Some(action) = &r.scale {
            scale::scale(&self.client, ns, &action.workload, action.replicas).await
        } else if let Some(action) = &r.set_config_map_key {
            configmap::set(&self.client, ns, action).await
        } else if let Some(action) = &r.failover {
            let token = failover::token(request.monitor, &r.name, request.now);
            failover::request(&self.client, ns, &action.plan.name, &token).await
        } else {
            Err(Error::NoAction {
                name: r.name.clone(),
            })
        }
    }

    async fn finish(
        &self,
        request: &Request<'_>,
        decision: Option<Decision>,
        record: RemediationRecord,
        target: Option<ObjectReference>,
        error: Option<Error>,
    ) -> Execution {
        let event = event(&record, target);
        let r = &record;
        match r.result {
            RemediationResult::Failed => warn!(
                namespace = request.namespace, monitor = request.monitor, remediation = %r.name,
                action = %r.action, attempt = r.attempt, message = r.message.as_deref().unwrap_or(""),
                "remediation failed"
            ),
            _ => info!(
                namespace = request.namespace, monitor = request.monitor, remediation = %r.name,
                action = %r.action, attempt = r.attempt, result = ?r.result,
                message = r.message.as_deref().unwrap_or(""), "remediation"
            ),
        }
        if let (Some(recorder), Some(reference)) = (&self.recorder, request.monitor_ref)
            && let Err(error) = recorder.publish(&event, reference).await
        {
            warn!(namespace = request.namespace, monitor = request.monitor, %error, "publishing remediation Event failed");
        }
        Execution {
            decision,
            record,
            event,
            error,
        }
    }
}

/// The last attempt number of `remediation` in the records (1 if none), for records that are
/// not attempts themselves.
fn last_attempt(remediation: &Remediation, history: &[RemediationRecord]) -> u32 {
    history
        .iter()
        .rev()
        .find(|r| {
            r.name == remediation.name
                && matches!(
                    r.result,
                    RemediationResult::Succeeded | RemediationResult::Failed
                )
        })
        .map_or(1, |r| r.attempt.max(1))
}

fn record(
    remediation: &Remediation,
    now: Timestamp,
    attempt: u32,
    result: RemediationResult,
    message: &dyn std::fmt::Display,
) -> RemediationRecord {
    RemediationRecord {
        name: remediation.name.clone(),
        action: remediation.action_name().to_string(),
        time: Time(now),
        attempt,
        result,
        message: Some(conditions::truncate(message.to_string(), MAX_MESSAGE_BYTES)),
    }
}

/// The Event of one record: `Remediation<Result>` on the monitor, Warning when the action
/// failed, with the changed object as the related object.
pub fn event(record: &RemediationRecord, target: Option<ObjectReference>) -> Event {
    let (type_, outcome, action) = match record.result {
        RemediationResult::Succeeded => (EventType::Normal, "Succeeded", "Remediate"),
        RemediationResult::Failed => (EventType::Warning, "Failed", "Remediate"),
        RemediationResult::Skipped => (EventType::Normal, "Skipped", "Remediate"),
        RemediationResult::Reverted => (EventType::Normal, "Reverted", "Revert"),
    };
    let note = format!(
        "{} ({}) attempt {}: {}",
        record.name,
        record.action,
        record.attempt,
        record.message.as_deref().unwrap_or("")
    );
    Event {
        type_,
        reason: format!("Remediation{outcome}"),
        note: Some(conditions::truncate(note, MAX_NOTE_BYTES)),
        action: action.to_string(),
        secondary: target,
    }
}

/// A reference to a namespaced object, for the Event's related object.
pub(crate) fn reference(
    api_version: &str,
    kind: &str,
    namespace: &str,
    name: &str,
    uid: Option<String>,
) -> ObjectReference {
    ObjectReference {
        api_version: Some(api_version.to_string()),
        kind: Some(kind.to_string()),
        namespace: Some(namespace.to_string()),
        name: Some(name.to_string()),
        uid,
        ..ObjectReference::default()
    }
}
