//! What status a reconcile writes, computed from validation results and the status already
//! stored. Pure: no I/O, so every rule here is unit-tested.

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::conditions::{
    self, ConditionStatus, DesiredCondition, READY, REASON_ACCEPTED, REASON_INVALID_SPEC,
    Transition,
};
use crate::api::{Condition, FieldError};

/// The status fields the controller core owns (through its server-side-apply field manager).
#[derive(Clone, Debug, PartialEq)]
pub struct StatusPlan {
    /// `status.observedGeneration` to write: the object's `metadata.generation`.
    pub observed_generation: Option<i64>,
    /// `status.conditions` to write.
    pub conditions: Vec<Condition>,
    /// Conditions that changed status or reason: one Event each.
    pub transitions: Vec<Transition>,
    /// False when the stored status already says all of this: then nothing is written, so a
    /// status write (which wakes the watch) cannot cause another write.
    pub changed: bool,
}

impl StatusPlan {
    /// The server-side-apply body: only `apiVersion`, `kind` and the owned status fields.
    pub fn apply_body(&self, api_version: &str, kind: &str) -> Value {
        let mut status = serde_json::Map::new();
        if let Some(generation) = self.observed_generation {
            status.insert("observedGeneration".into(), json!(generation));
        }
        status.insert("conditions".into(), json!(self.conditions));
        json!({
            "apiVersion": api_version,
            "kind": kind,
            "status": Value::Object(status),
        })
    }
}

/// `Ready` as validation sees it: `False/InvalidSpec` naming every bad field, or
/// `True/Accepted`.
pub fn ready_condition(errors: &[FieldError]) -> DesiredCondition {
    if errors.is_empty() {
        DesiredCondition::new(
            READY,
            ConditionStatus::True,
            REASON_ACCEPTED,
            "The spec is valid and has been accepted.",
        )
    } else {
        DesiredCondition::new(
            READY,
            ConditionStatus::False,
            REASON_INVALID_SPEC,
            invalid_spec_message(errors),
        )
    }
}

/// `spec.a: message; spec.b: message` — every error, each with its field path, in the order
/// validation found them (duplicates removed).
pub fn invalid_spec_message(errors: &[FieldError]) -> String {
    let mut parts: Vec<String> = Vec::with_capacity(errors.len());
    for error in errors {
        let part = if error.path.is_empty() {
            error.message.clone()
        } else {
            error.to_string()
        };
        if !parts.contains(&part) {
            parts.push(part);
        }
    }
    parts.join("; ")
}

/// Plans the status write for an object at `generation` whose stored status has
/// `current_conditions` and `current_observed_generation`.
pub fn plan(
    current_conditions: &[Condition],
    current_observed_generation: Option<i64>,
    generation: Option<i64>,
    desired: &[DesiredCondition],
    now: Timestamp,
) -> StatusPlan {
    let merged = conditions::merge(current_conditions, desired, generation, now);
    let changed = merged.changed || current_observed_generation != generation;
    StatusPlan {
        observed_generation: generation,
        conditions: merged.conditions,
        transitions: merged.transitions,
        changed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap()
    }

    #[test]
    fn valid_spec_is_ready_accepted() {
        let c = ready_condition(&[]);
        assert_eq!(c.status, ConditionStatus::True);
        assert_eq!(c.reason, "Accepted");
    }

    #[test]
    fn invalid_spec_names_every_field() {
        let errors = vec![
            FieldError::new("spec.retention.daily", "must be >= 0"),
            FieldError::new("spec.schedule", "bad cron"),
            FieldError::new("spec.retention.daily", "must be >= 0"),
        ];
        let c = ready_condition(&errors);
        assert_eq!(c.status, ConditionStatus::False);
        assert_eq!(c.reason, "InvalidSpec");
        assert_eq!(
            c.message,
            "spec.retention.daily: must be >= 0; spec.schedule: bad cron"
        );
    }

    #[test]
    fn error_without_path_is_just_its_message() {
        let message = invalid_spec_message(&[FieldError::new("", "missing field `spec`")]);
        assert_eq!(message, "missing field `spec`");
    }

    #[test]
    fn first_reconcile_writes_generation_and_condition() {
        let plan = plan(&[], None, Some(4), &[ready_condition(&[])], now());
        assert!(plan.changed);
        assert_eq!(plan.observed_generation, Some(4));
        assert_eq!(plan.conditions[0].observed_generation, Some(4));
        assert_eq!(plan.transitions.len(), 1);
    }

    #[test]
    fn second_reconcile_of_same_generation_writes_nothing() {
        let first = plan(&[], None, Some(4), &[ready_condition(&[])], now());
        let second = plan(
            &first.conditions,
            first.observed_generation,
            Some(4),
            &[ready_condition(&[])],
            now(),
        );
        assert!(!second.changed);
        assert!(second.transitions.is_empty());
    }

    #[test]
    fn missing_observed_generation_alone_forces_a_write() {
        let first = plan(&[], None, Some(4), &[ready_condition(&[])], now());
        let second = plan(
            &first.conditions,
            None,
            Some(4),
            &[ready_condition(&[])],
            now(),
        );
        assert!(second.changed);
    }

    #[test]
    fn fixing_the_spec_is_a_transition_with_the_new_generation() {
        let bad = [FieldError::new("spec.interval", "must be a duration")];
        let first = plan(&[], None, Some(1), &[ready_condition(&bad)], now());
        let fixed = plan(
            &first.conditions,
            Some(1),
            Some(2),
            &[ready_condition(&[])],
            now(),
        );
        assert!(fixed.changed);
        assert_eq!(fixed.transitions.len(), 1);
        assert_eq!(fixed.conditions[0].status, "True");
        assert_eq!(fixed.conditions[0].observed_generation, Some(2));
        assert_eq!(fixed.observed_generation, Some(2));
    }

    #[test]
    fn apply_body_holds_only_owned_fields() {
        let plan = plan(&[], None, Some(2), &[ready_condition(&[])], now());
        let body = plan.apply_body("watchkeeper.dev/v1alpha1", "HealthMonitor");
        let object = body.as_object().unwrap();
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["apiVersion", "kind", "status"]);
        assert_eq!(body["status"]["observedGeneration"], 2);
        assert_eq!(body["status"]["conditions"][0]["type"], "Ready");
        assert_eq!(body["status"]["conditions"][0]["observedGeneration"], 2);
        assert!(
            body["status"]["conditions"][0]["lastTransitionTime"]
                .as_str()
                .unwrap()
                .ends_with('Z')
        );
    }
}
