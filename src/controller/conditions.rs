//! Standard `metav1.Condition` bookkeeping: merging the conditions a reconcile wants into the
//! ones already in status, with Kubernetes' rules for `lastTransitionTime`.
//!
//! Pure functions, no I/O: the reconciler decides what it wants, this module decides what
//! actually changed, and the reconciler writes status (and publishes Events) only for that.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{Timestamp, ToSpan};

use crate::api::Condition;

/// The condition every kind carries: whether the resource is accepted and acted upon.
pub const READY: &str = "Ready";

/// Reason of `Ready=False` when the spec breaks a rule (schema or semantic).
pub const REASON_INVALID_SPEC: &str = "InvalidSpec";

/// Reason of `Ready=True` while a kind's engine does not exist yet: the spec is valid and the
/// controller has recorded it.
pub const REASON_ACCEPTED: &str = "Accepted";

/// Upper bound of a condition message (the API server allows 32768 bytes).
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;

/// `status` of a condition, as the API spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl ConditionStatus {
    /// The string stored in `condition.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }
}

/// What a reconcile wants a condition to say; times and generations are filled in by [`merge`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredCondition {
    /// Condition type, e.g. [`READY`].
    pub type_: String,
    /// True, False or Unknown.
    pub status: ConditionStatus,
    /// CamelCase machine-readable reason, e.g. [`REASON_INVALID_SPEC`].
    pub reason: String,
    /// Human-readable explanation; never contains secret values.
    pub message: String,
}

impl DesiredCondition {
    /// A condition of type `type_`.
    pub fn new(
        type_: impl Into<String>,
        status: ConditionStatus,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_: type_.into(),
            status,
            reason: reason.into(),
            message: truncate(message.into(), MAX_MESSAGE_BYTES),
        }
    }
}

/// A condition whose `status` or `reason` changed (or which appeared for the first time): the
/// moments worth an Event.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    /// `(status, reason)` before, or `None` when the condition is new.
    pub previous: Option<(String, String)>,
    /// The condition as it is now written.
    pub current: Condition,
}

/// Result of merging desired conditions into existing ones.
#[derive(Clone, Debug, PartialEq)]
pub struct Merged {
    /// Every condition to write: the existing ones of other types untouched, in their order,
    /// then updated or new ones.
    pub conditions: Vec<Condition>,
    /// Conditions whose status or reason changed, in `desired` order.
    pub transitions: Vec<Transition>,
    /// Whether `conditions` differs from `existing` in any field.
    pub changed: bool,
}

/// Merges `desired` into `existing`.
///
/// - `lastTransitionTime` becomes `now` only when a condition's `status` changes (or it is new);
///   otherwise it is kept, as the Kubernetes API conventions require.
/// - `observedGeneration` of each desired condition becomes `generation`.
/// - A reason change (with or without a status change) counts as a transition for Events.
/// - Conditions of types not in `desired` are kept as they are.
pub fn merge(
    existing: &[Condition],
    desired: &[DesiredCondition],
    generation: Option<i64>,
    now: Timestamp,
) -> Merged {
    let now = Time(truncate_to_seconds(now));
    let mut conditions: Vec<Condition> = existing.to_vec();
    let mut transitions = Vec::new();
    for want in desired {
        let status = want.status.as_str();
        match conditions.iter_mut().find(|c| c.type_ == want.type_) {
            Some(current) => {
                let previous = (current.status.clone(), current.reason.clone());
                let status_changed = current.status != status;
                if status_changed {
                    current.last_transition_time = now.clone();
                }
                current.status = status.to_string();
                current.reason = want.reason.clone();
                current.message = want.message.clone();
                current.observed_generation = generation;
                if status_changed || previous.1 != want.reason {
                    transitions.push(Transition {
                        previous: Some(previous),
                        current: current.clone(),
                    });
                }
            }
            None => {
                let condition = Condition {
                    type_: want.type_.clone(),
                    status: status.to_string(),
                    reason: want.reason.clone(),
                    message: want.message.clone(),
                    observed_generation: generation,
                    last_transition_time: now.clone(),
                };
                transitions.push(Transition {
                    previous: None,
                    current: condition.clone(),
                });
                conditions.push(condition);
            }
        }
    }
    let changed = conditions.as_slice() != existing;
    Merged {
        conditions,
        transitions,
        changed,
    }
}

/// Finds a condition by type.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// `metav1.Time` is serialized with whole seconds; working in whole seconds keeps what we compute
/// equal to what we read back, so an unchanged status never looks changed.
fn truncate_to_seconds(t: Timestamp) -> Timestamp {
    let nanos = t.subsec_nanosecond();
    t.checked_sub(i64::from(nanos).nanoseconds()).unwrap_or(t)
}

/// Cuts `text` to at most `max` bytes on a character boundary, marking the cut.
pub fn truncate(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    const MARK: &str = " …";
    let mut end = max.saturating_sub(MARK.len());
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(MARK);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).unwrap()
    }

    fn ready(status: ConditionStatus, reason: &str, message: &str) -> DesiredCondition {
        DesiredCondition::new(READY, status, reason, message)
    }

    #[test]
    fn new_condition_is_a_transition_stamped_now() {
        let merged = merge(
            &[],
            &[ready(ConditionStatus::True, REASON_ACCEPTED, "ok")],
            Some(3),
            at(0),
        );
        assert!(merged.changed);
        assert_eq!(merged.conditions.len(), 1);
        let c = &merged.conditions[0];
        assert_eq!(
            (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
            ("Ready", "True", "Accepted")
        );
        assert_eq!(c.observed_generation, Some(3));
        assert_eq!(c.last_transition_time, Time(at(0)));
        assert_eq!(merged.transitions.len(), 1);
        assert_eq!(merged.transitions[0].previous, None);
        assert_eq!(&merged.transitions[0].current, c);
    }

    #[test]
    fn unchanged_condition_is_not_rewritten() {
        let first = merge(
            &[],
            &[ready(ConditionStatus::True, REASON_ACCEPTED, "ok")],
            Some(1),
            at(0),
        );
        let second = merge(
            &first.conditions,
            &[ready(ConditionStatus::True, REASON_ACCEPTED, "ok")],
            Some(1),
            at(60),
        );
        assert!(!second.changed);
        assert!(second.transitions.is_empty());
        assert_eq!(second.conditions, first.conditions);
    }

    #[test]
    fn same_status_new_generation_keeps_transition_time() {
        let first = merge(
            &[],
            &[ready(ConditionStatus::True, REASON_ACCEPTED, "ok")],
            Some(1),
            at(0),
        );
        let second = merge(
            &first.conditions,
            &[ready(ConditionStatus::True, REASON_ACCEPTED, "ok")],
            Some(2),
            at(60),
        );
        assert!(second.changed, "observedGeneration moved");
        assert!(second.transitions.is_empty());
        assert_eq!(second.conditions[0].last_transition_time, Time(at(0)));
        assert_eq!(second.conditions[0].observed_generation, Some(2));
    }

    #[test]
    fn message_change_alone_is_a_change_but_no_transition() {
        let first = merge(
            &[],
            &[ready(
                ConditionStatus::False,
                REASON_INVALID_SPEC,
                "spec.a: bad",
            )],
            Some(1),
            at(0),
        );
        let second = merge(
            &first.conditions,
            &[ready(
                ConditionStatus::False,
                REASON_INVALID_SPEC,
                "spec.b: bad",
            )],
            Some(2),
            at(60),
        );
        assert!(second.changed);
        assert!(second.transitions.is_empty());
        assert_eq!(second.conditions[0].message, "spec.b: bad");
        assert_eq!(second.conditions[0].last_transition_time, Time(at(0)));
    }

    #[test]
    fn status_flip_moves_transition_time_and_reports_previous() {
        let first = merge(
            &[],
            &[ready(
                ConditionStatus::False,
                REASON_INVALID_SPEC,
                "spec.a: bad",
            )],
            Some(1),
            at(0),
        );
        let second = merge(
            &first.conditions,
            &[ready(ConditionStatus::True, REASON_ACCEPTED, "ok")],
            Some(2),
            at(90),
        );
        assert!(second.changed);
        assert_eq!(second.conditions[0].last_transition_time, Time(at(90)));
        assert_eq!(second.transitions.len(), 1);
        assert_eq!(
            second.transitions[0].previous,
            Some(("False".to_string(), "InvalidSpec".to_string()))
        );
        assert_eq!(second.transitions[0].current.status, "True");
        assert_eq!(second.transitions[0].current.observed_generation, Some(2));
    }

    #[test]
    fn reason_change_is_a_transition_without_moving_the_time() {
        let first = merge(
            &[],
            &[ready(ConditionStatus::False, REASON_INVALID_SPEC, "x")],
            Some(1),
            at(0),
        );
        let second = merge(
            &first.conditions,
            &[ready(ConditionStatus::False, "ProbeFailing", "y")],
            Some(1),
            at(30),
        );
        assert_eq!(second.transitions.len(), 1);
        assert_eq!(second.conditions[0].last_transition_time, Time(at(0)));
    }

    #[test]
    fn other_condition_types_are_kept() {
        let other = Condition {
            type_: "RPOMet".into(),
            status: "True".into(),
            reason: "Fresh".into(),
            message: String::new(),
            observed_generation: Some(1),
            last_transition_time: Time(at(-100)),
        };
        let merged = merge(
            std::slice::from_ref(&other),
            &[ready(ConditionStatus::True, REASON_ACCEPTED, "ok")],
            Some(1),
            at(0),
        );
        assert_eq!(merged.conditions.len(), 2);
        assert_eq!(merged.conditions[0], other);
        assert_eq!(merged.conditions[1].type_, READY);
    }

    #[test]
    fn sub_second_clock_does_not_create_changes() {
        let t = Timestamp::from_second(1_700_000_000)
            .unwrap()
            .checked_add(250.milliseconds())
            .unwrap();
        let merged = merge(
            &[],
            &[ready(ConditionStatus::True, REASON_ACCEPTED, "ok")],
            None,
            t,
        );
        assert_eq!(merged.conditions[0].last_transition_time, Time(at(0)));
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let text = "é".repeat(20);
        let cut = truncate(text, 11);
        assert!(cut.len() <= 11, "{cut:?}");
        assert!(cut.ends_with('…'));
        assert_eq!(truncate("short".into(), 11), "short");
    }
}
