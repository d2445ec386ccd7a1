//! The state machine: [`decide`] says what to do next from the plan, the persisted record,
//! the observations and the time; [`apply`] records the outcome of one step try. Both are
//! pure; the [`super::driver`] persists every record they return before acting on it.

use chrono::{DateTime, Utc};

pub use super::decision::{
    Action, Decision, IdempotencyKey, StepFailure, StepOutcome, StepRun, Transition,
};
use super::error::FailoverError;
use super::gates::{self, AutomaticGate, Observations, Refusal, RefusalReason};
use super::plan::{PlanPolicy, StepKind, StepPolicy};
use super::record::{
    AttemptKind, AttemptRecord, AttemptResult, AttemptSummary, FailoverRecord, HISTORY_LIMIT,
    Phase, StepPhase, StepRecord, TriggerSource,
};

/// The id of the `n`-th attempt (1-based) of a kind started at `now`, e.g.
/// `failover-3-20261123t170000z`: unique per plan, readable, usable as an annotation value.
pub fn attempt_id(kind: AttemptKind, n: u64, now: DateTime<Utc>) -> String {
    let kind = match kind {
        AttemptKind::Failover => "failover",
        AttemptKind::Failback => "failback",
        AttemptKind::Drill => "drill",
    };
    format!("{kind}-{n}-{}", now.format("%Y%m%dt%H%M%Sz"))
}

/// The procedure an attempt kind runs.
pub fn procedure(plan: &PlanPolicy, kind: AttemptKind) -> &[StepPolicy] {
    match kind {
        AttemptKind::Failover | AttemptKind::Drill => &plan.steps,
        AttemptKind::Failback => &plan.failback_steps,
    }
}

/// Decides the next move. Pure: the same inputs give the same decision.
pub fn decide(
    plan: &PlanPolicy,
    record: &FailoverRecord,
    obs: &Observations,
    now: DateTime<Utc>,
) -> Decision {
    let mut next = record.clone();
    let mut transitions = Vec::new();
    next.primary_down_since = gates::primary_down_since(plan, obs, record.primary_down_since, now);
    let action = match next.active_attempt().map(|a| a.kind) {
        Some(kind) => {
            refuse_tokens_while_busy(&mut next, obs, &mut transitions);
            let gated = kind == AttemptKind::Failover
                && matches!(next.phase, Phase::Triggered | Phase::AwaitingApproval);
            if gated {
                approval(plan, &mut next, obs, now, &mut transitions)
            } else {
                progress(plan, &mut next, now, &mut transitions)
            }
        }
        None => idle(plan, &mut next, obs, now, &mut transitions),
    };
    Decision {
        record: next,
        action,
        transitions,
    }
}

/// Tokens that arrive while an attempt runs are handled (recorded) and refused, so they do
/// not start an attempt later by surprise.
fn refuse_tokens_while_busy(
    record: &mut FailoverRecord,
    obs: &Observations,
    transitions: &mut Vec<Transition>,
) {
    let busy = |what: &str, id: &str| Refusal {
        reason: RefusalReason::AttemptInProgress,
        message: format!("{what} ignored: attempt {id} is in progress"),
    };
    let id = record
        .active_attempt()
        .map(|a| a.id.clone())
        .unwrap_or_default();
    if let Some(token) = new_token(&obs.failover_token, &record.last_trigger_token) {
        record.last_trigger_token = Some(token);
        refuse(record, busy("failover trigger", &id), transitions);
    }
    if let Some(token) = new_token(&obs.failback_token, &record.last_failback_token) {
        record.last_failback_token = Some(token);
        refuse(record, busy("failback trigger", &id), transitions);
    }
    if let Some(drill) = &obs.drill
        && record.last_drill_token.as_deref() != Some(drill.token.as_str())
    {
        record.last_drill_token = Some(drill.token.clone());
        refuse(record, busy("drill", &id), transitions);
    }
}

fn new_token(seen: &Option<String>, handled: &Option<String>) -> Option<String> {
    seen.as_ref()
        .filter(|t| !t.is_empty() && Some(*t) != handled.as_ref())
        .cloned()
}

fn refuse(record: &mut FailoverRecord, refusal: Refusal, transitions: &mut Vec<Transition>) {
    if record.refusal.as_ref() != Some(&refusal) {
        transitions.push(Transition::Refused(refusal.clone()));
        record.refusal = Some(refusal);
    }
}

/// No attempt runs: handle tokens, drills and the automatic trigger, in that order.
fn idle(
    plan: &PlanPolicy,
    record: &mut FailoverRecord,
    obs: &Observations,
    now: DateTime<Utc>,
    transitions: &mut Vec<Transition>,
) -> Action {
    if let Some(token) = new_token(&obs.failback_token, &record.last_failback_token) {
        record.last_failback_token = Some(token.clone());
        let refusal = match record.phase {
            Phase::FailedOver | Phase::Failed if !plan.failback_steps.is_empty() => None,
            Phase::FailedOver | Phase::Failed => Some(Refusal {
                reason: RefusalReason::NoFailbackProcedure,
                message: "failback asked but the plan has no failback steps".to_string(),
            }),
            _ => Some(Refusal {
                reason: RefusalReason::NotFailedOver,
                message: format!(
                    "failback asked but region {} is active; nothing to fail back",
                    plan.primary.name
                ),
            }),
        };
        match refusal {
            Some(refusal) => refuse(record, refusal, transitions),
            None => {
                let reason = format!("failback requested with token {token}");
                start(
                    plan,
                    record,
                    AttemptKind::Failback,
                    TriggerSource::Manual,
                    Some(token),
                    reason,
                    false,
                    now,
                    transitions,
                );
                return Action::Continue;
            }
        }
    }
    if let Some(token) = new_token(&obs.failover_token, &record.last_trigger_token) {
        record.last_trigger_token = Some(token.clone());
        match record.phase {
            Phase::Standby | Phase::Failed => {
                let reason = format!("manual trigger with token {token}");
                start(
                    plan,
                    record,
                    AttemptKind::Failover,
                    TriggerSource::Manual,
                    Some(token),
                    reason,
                    false,
                    now,
                    transitions,
                );
                return Action::Continue;
            }
            _ => refuse(
                record,
                Refusal {
                    reason: RefusalReason::AlreadyFailedOver,
                    message: format!(
                        "failover trigger {token} ignored: region {} is already active; fail back first",
                        plan.secondary.name
                    ),
                },
                transitions,
            ),
        }
    }
    if let Some(drill) = &obs.drill
        && record.last_drill_token.as_deref() != Some(drill.token.as_str())
    {
        record.last_drill_token = Some(drill.token.clone());
        let refusal = if plan.trigger.suspended {
            Some((
                RefusalReason::Suspended,
                "the plan is suspended".to_string(),
            ))
        } else if record.phase != Phase::Standby {
            Some((
                RefusalReason::NotInStandby,
                format!("the plan is {:?}", record.phase),
            ))
        } else {
            None
        };
        match refusal {
            Some((reason, why)) => refuse(
                record,
                Refusal {
                    reason,
                    message: format!("drill {} skipped: {why}", drill.token),
                },
                transitions,
            ),
            None => {
                let reason = format!(
                    "drill {} ({})",
                    drill.token,
                    if drill.dry_run { "dry run" } else { "full" }
                );
                start(
                    plan,
                    record,
                    AttemptKind::Drill,
                    TriggerSource::Schedule,
                    Some(drill.token.clone()),
                    reason,
                    drill.dry_run,
                    now,
                    transitions,
                );
                return Action::Continue;
            }
        }
    }
    if record.phase != Phase::Standby {
        return Action::Idle { wake_at: None };
    }
    let gate = gates::automatic_gate(plan, record, obs, record.primary_down_since, now);
    if matches!(
        gate,
        AutomaticGate::NotWanted | AutomaticGate::Dwelling { .. }
    ) && is_automatic_refusal(record)
    {
        record.refusal = None;
    }
    match gate {
        AutomaticGate::NotWanted => Action::Idle { wake_at: None },
        AutomaticGate::Dwelling { until } => Action::Idle {
            wake_at: Some(until),
        },
        AutomaticGate::Refused { refusal, retry_at } => {
            refuse(record, refusal, transitions);
            Action::Idle { wake_at: retry_at }
        }
        AutomaticGate::Fire { reason } => {
            start(
                plan,
                record,
                AttemptKind::Failover,
                TriggerSource::Automatic,
                None,
                reason,
                false,
                now,
                transitions,
            );
            Action::Continue
        }
    }
}

/// Refusals of the automatic trigger clear themselves once the primary is no longer down.
fn is_automatic_refusal(record: &FailoverRecord) -> bool {
    record.refusal.as_ref().is_some_and(|r| {
        matches!(
            r.reason,
            RefusalReason::Suspended
                | RefusalReason::MaintenanceWindow
                | RefusalReason::Cooldown
                | RefusalReason::SecondaryNotHealthy
        )
    })
}

#[allow(clippy::too_many_arguments)]
fn start(
    plan: &PlanPolicy,
    record: &mut FailoverRecord,
    kind: AttemptKind,
    trigger: TriggerSource,
    token: Option<String>,
    reason: String,
    dry_run: bool,
    now: DateTime<Utc>,
    transitions: &mut Vec<Transition>,
) {
    record.attempts_started = record.attempts_started.saturating_add(1);
    let id = attempt_id(kind, record.attempts_started, now);
    let steps = procedure(plan, kind)
        .iter()
        .map(|s| StepRecord {
            name: s.name.clone(),
            ..StepRecord::default()
        })
        .collect();
    record.phase = match kind {
        AttemptKind::Failover => Phase::Triggered,
        AttemptKind::Failback => Phase::FailingBack,
        AttemptKind::Drill => record.phase,
    };
    record.refusal = None;
    transitions.push(Transition::AttemptStarted {
        attempt_id: id.clone(),
        kind,
        trigger,
        reason: reason.clone(),
    });
    record.current_attempt = Some(AttemptRecord {
        id,
        kind,
        trigger,
        token,
        reason: Some(reason),
        dry_run,
        approved: false,
        start_time: now,
        end_time: None,
        result: None,
        steps,
    });
}

/// Triggered or AwaitingApproval: pass the approval and backup gates, or wait.
fn approval(
    plan: &PlanPolicy,
    record: &mut FailoverRecord,
    obs: &Observations,
    now: DateTime<Utc>,
    transitions: &mut Vec<Transition>,
) -> Action {
    let Some(attempt) = record.current_attempt.as_mut() else {
        return Action::Idle { wake_at: None };
    };
    match gates::approval_gate(plan, attempt, obs, now) {
        Ok(()) => {
            let approved = obs.approval.as_deref() == Some(attempt.id.as_str());
            attempt.approved = attempt.approved || approved;
            transitions.push(Transition::GatesPassed {
                attempt_id: attempt.id.clone(),
                approved: attempt.approved,
            });
            record.phase = Phase::InProgress;
            if record.refusal.as_ref().is_some_and(|r| {
                matches!(
                    r.reason,
                    RefusalReason::ApprovalRequired
                        | RefusalReason::StaleBackup
                        | RefusalReason::NoVerifiedBackup
                )
            }) {
                record.refusal = None;
            }
            Action::Continue
        }
        Err(refusal) => {
            let attempt_id = attempt.id.clone();
            record.phase = Phase::AwaitingApproval;
            refuse(record, refusal.clone(), transitions);
            Action::AwaitApproval {
                attempt_id,
                refusal,
            }
        }
    }
}

/// Steps: run the first unfinished one (resuming a try cut short), wait for a retry, or
/// finish the attempt.
fn progress(
    plan: &PlanPolicy,
    record: &mut FailoverRecord,
    now: DateTime<Utc>,
    transitions: &mut Vec<Transition>,
) -> Action {
    let Some(attempt) = record.current_attempt.as_mut() else {
        return Action::Idle { wake_at: None };
    };
    let policies = procedure(plan, attempt.kind);
    let Some(index) = attempt.steps.iter().position(|s| !s.is_finished()) else {
        finish(plan, record, now, transitions);
        return Action::Continue;
    };
    let step = &mut attempt.steps[index];
    let Some(policy) = policies.iter().find(|p| p.name == step.name) else {
        // The spec changed under a running attempt and dropped this step: it cannot run.
        step.phase = StepPhase::Failed;
        step.end_time = Some(now);
        step.message = Some("the step was removed from the plan during the attempt".to_string());
        transitions.push(Transition::StepFailed {
            index,
            name: step.name.clone(),
            message: step.message.clone().unwrap_or_default(),
            continue_on_error: false,
        });
        skip_rest(attempt, index);
        return Action::Continue;
    };
    match (step.phase, step.retry_at) {
        (StepPhase::Running, Some(until)) if now < until => return Action::WaitUntil { until },
        (StepPhase::Running, Some(_)) => {
            step.attempts = step.attempts.saturating_add(1);
            step.retry_at = None;
            transitions.push(Transition::StepStarted {
                index,
                name: step.name.clone(),
                try_number: step.attempts,
            });
        }
        // A try recorded as started but without an outcome: the process stopped during it.
        // Run the same try again under the same key.
        (StepPhase::Running, None) => {}
        _ => {
            step.phase = StepPhase::Running;
            step.attempts = 1;
            step.start_time = Some(now);
            step.retry_at = None;
            transitions.push(Transition::StepStarted {
                index,
                name: step.name.clone(),
                try_number: 1,
            });
        }
    }
    Action::RunStep(StepRun {
        attempt_kind: attempt.kind,
        index,
        name: step.name.clone(),
        kind: policy.kind,
        timeout: policy.timeout,
        dry_run: attempt.dry_run,
        key: IdempotencyKey {
            plan_id: plan.plan_id.clone(),
            attempt_id: attempt.id.clone(),
            step_index: index,
            try_number: step.attempts.max(1),
        },
    })
}

fn skip_rest(attempt: &mut AttemptRecord, failed: usize) {
    for step in attempt.steps.iter_mut().skip(failed + 1) {
        if step.phase == StepPhase::Pending {
            step.phase = StepPhase::Skipped;
        }
    }
}

/// Every step is finished: close the attempt and move the phase.
fn finish(
    plan: &PlanPolicy,
    record: &mut FailoverRecord,
    now: DateTime<Utc>,
    transitions: &mut Vec<Transition>,
) {
    let Some(attempt) = record.current_attempt.as_mut() else {
        return;
    };
    let policies = procedure(plan, attempt.kind);
    let fatal = attempt.steps.iter().find(|s| {
        s.phase == StepPhase::Failed
            && !policies
                .iter()
                .find(|p| p.name == s.name)
                .is_some_and(|p| p.continue_on_error)
    });
    let result = if fatal.is_some() {
        AttemptResult::Failed
    } else {
        AttemptResult::Succeeded
    };
    let message = match fatal {
        Some(step) => format!(
            "step {} failed: {}",
            step.name,
            step.message.as_deref().unwrap_or("no message")
        ),
        None => format!("{} step(s) finished", attempt.steps.len()),
    };
    attempt.result = Some(result);
    attempt.end_time = Some(now);
    let verified = attempt
        .steps
        .iter()
        .zip(policies)
        .filter(|(s, p)| p.kind == StepKind::Verify && s.phase == StepPhase::Succeeded)
        .filter_map(|(s, _)| s.end_time)
        .max()
        .unwrap_or(now);
    let rto_seconds = (result == AttemptResult::Succeeded && attempt.kind != AttemptKind::Failback)
        .then(|| (verified - attempt.start_time).num_milliseconds() as f64 / 1000.0);
    let summary = AttemptSummary {
        id: attempt.id.clone(),
        kind: attempt.kind,
        trigger: attempt.trigger,
        result,
        dry_run: attempt.dry_run,
        start_time: attempt.start_time,
        end_time: now,
        rto_seconds,
        message: Some(message),
    };
    match (attempt.kind, result) {
        (AttemptKind::Failover, AttemptResult::Succeeded) => {
            record.phase = Phase::FailedOver;
            record.active_region = Some(plan.secondary.name.clone());
            record.last_rto_seconds = rto_seconds;
        }
        (AttemptKind::Failback, AttemptResult::Succeeded) => {
            record.phase = Phase::Standby;
            record.active_region = Some(plan.primary.name.clone());
        }
        (AttemptKind::Failover | AttemptKind::Failback, AttemptResult::Failed) => {
            record.phase = Phase::Failed;
        }
        (AttemptKind::Drill, _) => record.last_drill = Some(summary.clone()),
    }
    if attempt.kind != AttemptKind::Drill {
        let cooldown =
            chrono::Duration::from_std(plan.trigger.cooldown).unwrap_or(chrono::Duration::MAX);
        record.cooldown_until = Some(
            now.checked_add_signed(cooldown)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        );
    }
    record.history.insert(0, summary.clone());
    record.history.truncate(HISTORY_LIMIT);
    transitions.push(Transition::AttemptFinished(summary));
}

/// Records the outcome of one try. Refuses an outcome that does not belong to the try in
/// flight (a stale or duplicated report), leaving the record as it was.
pub fn apply(
    plan: &PlanPolicy,
    record: &FailoverRecord,
    outcome: StepOutcome,
    now: DateTime<Utc>,
) -> Result<(FailoverRecord, Vec<Transition>), FailoverError> {
    let mut next = record.clone();
    let mut transitions = Vec::new();
    let active = next.active_attempt().is_some();
    let attempt =
        next.current_attempt
            .as_mut()
            .filter(|_| active)
            .ok_or(FailoverError::StaleOutcome {
                index: outcome.index,
                try_number: outcome.try_number,
                message: "no attempt is running".to_string(),
            })?;
    let policy = procedure(plan, attempt.kind)
        .iter()
        .find(|p| {
            attempt
                .steps
                .get(outcome.index)
                .is_some_and(|s| s.name == p.name)
        })
        .cloned();
    let step = attempt
        .steps
        .get_mut(outcome.index)
        .filter(|s| {
            s.phase == StepPhase::Running
                && s.retry_at.is_none()
                && s.attempts == outcome.try_number
        })
        .ok_or_else(|| FailoverError::StaleOutcome {
            index: outcome.index,
            try_number: outcome.try_number,
            message: "that try is not in flight".to_string(),
        })?;
    let policy = policy.ok_or_else(|| FailoverError::StaleOutcome {
        index: outcome.index,
        try_number: outcome.try_number,
        message: format!("step {} is no longer in the plan", step.name),
    })?;
    match outcome.result {
        Ok(message) => {
            step.phase = StepPhase::Succeeded;
            step.end_time = Some(now);
            step.message = Some(message.clone());
            transitions.push(Transition::StepSucceeded {
                index: outcome.index,
                name: step.name.clone(),
                message,
            });
        }
        Err(failure) if failure.retryable && outcome.try_number < policy.max_tries() => {
            let wait = chrono::Duration::from_std(policy.backoff_after(outcome.try_number))
                .unwrap_or(chrono::Duration::MAX);
            let retry_at = now
                .checked_add_signed(wait)
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            step.retry_at = Some(retry_at);
            step.message = Some(failure.message.clone());
            transitions.push(Transition::StepRetrying {
                index: outcome.index,
                name: step.name.clone(),
                message: failure.message,
                retry_at,
            });
        }
        Err(failure) => {
            step.phase = StepPhase::Failed;
            step.end_time = Some(now);
            step.message = Some(failure.message.clone());
            transitions.push(Transition::StepFailed {
                index: outcome.index,
                name: step.name.clone(),
                message: failure.message,
                continue_on_error: policy.continue_on_error,
            });
            if !policy.continue_on_error {
                skip_rest(attempt, outcome.index);
            }
        }
    }
    Ok((next, transitions))
}
