//! One Kubernetes Event per state-machine transition: attempts started and finished, gates
//! passed or refused, every step's start, success, retry and failure.

use kube::runtime::events::{Event, EventType};

use crate::controller::conditions;
use crate::failover::{AttemptResult, Transition};

/// Events are capped at 1 kB by the API server.
const MAX_NOTE_BYTES: usize = 1024;

/// The Event of one transition: Warning for refusals and failures, Normal otherwise.
pub fn event(transition: &Transition) -> Event {
    let (type_, reason, action, note) = match transition {
        Transition::AttemptStarted {
            attempt_id,
            kind,
            trigger,
            reason,
        } => (
            EventType::Normal,
            "AttemptStarted".to_string(),
            "Start",
            format!("{kind:?} attempt {attempt_id} started ({trigger:?}): {reason}"),
        ),
        Transition::Refused(refusal) => (
            EventType::Warning,
            refusal.reason.as_str().to_string(),
            "Refuse",
            refusal.message.clone(),
        ),
        Transition::GatesPassed {
            attempt_id,
            approved,
        } => (
            EventType::Normal,
            "GatesPassed".to_string(),
            "Proceed",
            format!("attempt {attempt_id} passed its gates (approved: {approved})"),
        ),
        Transition::StepStarted {
            index,
            name,
            try_number,
        } => (
            EventType::Normal,
            "StepStarted".to_string(),
            "RunStep",
            format!("step {index} {name}: try {try_number} started"),
        ),
        Transition::StepSucceeded {
            index,
            name,
            message,
        } => (
            EventType::Normal,
            "StepSucceeded".to_string(),
            "RunStep",
            format!("step {index} {name} succeeded: {message}"),
        ),
        Transition::StepRetrying {
            index,
            name,
            message,
            retry_at,
        } => (
            EventType::Warning,
            "StepRetrying".to_string(),
            "RunStep",
            format!(
                "step {index} {name} failed, next try at {}: {message}",
                retry_at.to_rfc3339()
            ),
        ),
        Transition::StepFailed {
            index,
            name,
            message,
            continue_on_error,
        } => (
            EventType::Warning,
            "StepFailed".to_string(),
            "RunStep",
            format!("step {index} {name} failed (continueOnError: {continue_on_error}): {message}"),
        ),
        Transition::AttemptFinished(summary) => {
            let rto = summary
                .rto_seconds
                .map(|s| format!(", RTO {s:.1}s"))
                .unwrap_or_default();
            let (type_, reason) = match summary.result {
                AttemptResult::Succeeded => (EventType::Normal, "AttemptSucceeded"),
                AttemptResult::Failed => (EventType::Warning, "AttemptFailed"),
            };
            (
                type_,
                reason.to_string(),
                "Finish",
                format!(
                    "{:?} attempt {} {:?}{rto}{}",
                    summary.kind,
                    summary.id,
                    summary.result,
                    summary
                        .message
                        .as_ref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
            )
        }
    };
    Event {
        type_,
        reason,
        note: Some(conditions::truncate(note, MAX_NOTE_BYTES)),
        action: action.to_string(),
        secondary: None,
    }
}
