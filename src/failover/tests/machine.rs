//! The state machine through whole attempts, driven by a scripted executor.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use proptest::prelude::*;

use crate::failover::gates::{DrillRequest, Observations, RefusalReason};
use crate::failover::machine::{
    Action, IdempotencyKey, StepFailure, StepOutcome, Transition, apply, decide,
};
use crate::failover::plan::PlanPolicy;
use crate::failover::record::{
    AttemptKind, AttemptResult, FailoverRecord, Phase, StepPhase, TriggerSource,
};

use super::{at, calm, outage, plan};

/// What happened while driving.
#[derive(Default)]
struct Trace {
    phases: Vec<Phase>,
    runs: Vec<IdempotencyKey>,
    transitions: Vec<Transition>,
}

/// Drives decide/apply until the machine is idle, waits or awaits approval; `script` answers
/// each try by (step name, try number), success when absent. Time moves one second per
/// decision, and jumps to `WaitUntil` times.
fn drive(
    p: &PlanPolicy,
    mut record: FailoverRecord,
    obs: &Observations,
    mut now: DateTime<Utc>,
    script: &BTreeMap<(String, u32), StepFailure>,
    trace: &mut Trace,
) -> (FailoverRecord, Action, DateTime<Utc>) {
    for _ in 0..1000 {
        let decision = decide(p, &record, obs, now);
        trace.transitions.extend(decision.transitions.clone());
        if trace.phases.last() != Some(&decision.record.phase) {
            trace.phases.push(decision.record.phase);
        }
        record = decision.record;
        match decision.action {
            Action::Continue => {}
            Action::RunStep(run) => {
                trace.runs.push(run.key.clone());
                now += chrono::Duration::seconds(1);
                let result = match script.get(&(run.name.clone(), run.key.try_number)) {
                    Some(failure) => Err(failure.clone()),
                    None => Ok(format!("{} done", run.name)),
                };
                let outcome = StepOutcome {
                    index: run.index,
                    try_number: run.key.try_number,
                    result,
                };
                let (next, transitions) = apply(p, &record, outcome, now).expect("outcome fits");
                trace.transitions.extend(transitions);
                record = next;
            }
            Action::WaitUntil { until } => now = until,
            other => return (record, other, now),
        }
    }
    panic!("the machine did not settle");
}

fn no_failures() -> BTreeMap<(String, u32), StepFailure> {
    BTreeMap::new()
}

#[test]
fn an_outage_fails_over_after_the_dwell_time_and_measures_the_rto() {
    let p = plan();
    let obs = outage(at(0));
    let mut trace = Trace::default();
    // Before the dwell time: idle, waking at its end; the down time is recorded.
    let d = decide(&p, &FailoverRecord::default(), &obs, at(60));
    assert_eq!(
        d.action,
        Action::Idle {
            wake_at: Some(at(300))
        }
    );
    assert_eq!(d.record.primary_down_since, Some(at(0)));
    let (record, action, _) = drive(&p, d.record, &obs, at(300), &no_failures(), &mut trace);
    assert_eq!(action, Action::Idle { wake_at: None });
    assert_eq!(
        trace.phases,
        [Phase::Triggered, Phase::InProgress, Phase::FailedOver]
    );
    assert_eq!(record.active_region.as_deref(), Some("west"));
    let attempt = record.current_attempt.as_ref().expect("attempt kept");
    assert_eq!(attempt.trigger, TriggerSource::Automatic);
    assert!(
        attempt
            .steps
            .iter()
            .all(|s| s.phase == StepPhase::Succeeded && s.attempts == 1)
    );
    // Three steps, one second each: verified 3 s after the trigger.
    assert_eq!(record.last_rto_seconds, Some(3.0));
    assert_eq!(record.history.len(), 1);
    assert_eq!(record.history[0].result, AttemptResult::Succeeded);
    assert_eq!(
        record.cooldown_until,
        Some(at(303) + chrono::Duration::hours(1))
    );
    let keys: Vec<String> = trace.runs.iter().map(ToString::to_string).collect();
    assert_eq!(
        keys,
        [
            "prod/regional/failover-1-20261123t120500z/0/1",
            "prod/regional/failover-1-20261123t120500z/1/1",
            "prod/regional/failover-1-20261123t120500z/2/1",
        ]
    );
    // Settled: deciding again changes nothing and runs nothing.
    let again = decide(&p, &record, &obs, at(400));
    assert_eq!(again.record, record);
    assert_eq!(again.action, Action::Idle { wake_at: None });
}

#[test]
fn a_manual_token_starts_one_attempt_even_in_a_window_and_in_cooldown() {
    let mut p = plan();
    p.trigger.automatic = false;
    let mut obs = calm();
    obs.maintenance_windows = vec!["patching".into()];
    obs.failover_token = Some("t1".into());
    let record = FailoverRecord {
        cooldown_until: Some(at(10_000)),
        ..FailoverRecord::default()
    };
    let mut trace = Trace::default();
    let (record, _, now) = drive(&p, record, &obs, at(0), &no_failures(), &mut trace);
    assert_eq!(record.phase, Phase::FailedOver);
    assert_eq!(record.last_trigger_token.as_deref(), Some("t1"));
    assert_eq!(trace.runs.len(), 3);
    // The same token again starts nothing and is not refused again (no Event spam).
    let again = decide(&p, &record, &obs, now);
    assert_eq!(again.record, record);
    assert!(again.transitions.is_empty());
    // A new token while failed over is refused.
    obs.failover_token = Some("t2".into());
    let refused = decide(&p, &record, &obs, now);
    assert_eq!(
        refused.record.refusal.as_ref().map(|r| r.reason),
        Some(RefusalReason::AlreadyFailedOver)
    );
    assert_eq!(refused.record.last_trigger_token.as_deref(), Some("t2"));
}

#[test]
fn a_token_during_an_attempt_is_refused_and_not_kept_for_later() {
    let p = plan();
    let mut obs = calm();
    obs.failover_token = Some("t1".into());
    let d = decide(&p, &FailoverRecord::default(), &obs, at(0));
    assert_eq!(d.action, Action::Continue);
    obs.failover_token = Some("t2".into());
    let d = decide(&p, &d.record, &obs, at(1));
    assert_eq!(
        d.record.refusal.as_ref().map(|r| r.reason),
        Some(RefusalReason::AttemptInProgress)
    );
    assert_eq!(d.record.last_trigger_token.as_deref(), Some("t2"));
}

#[test]
fn approval_holds_the_attempt_until_a_person_names_it() {
    let mut p = plan();
    p.trigger.require_approval = true;
    let mut obs = outage(at(0));
    let mut trace = Trace::default();
    let (record, action, now) = drive(
        &p,
        FailoverRecord::default(),
        &obs,
        at(300),
        &no_failures(),
        &mut trace,
    );
    let id = record.current_attempt.as_ref().expect("attempt").id.clone();
    assert_eq!(record.phase, Phase::AwaitingApproval);
    match &action {
        Action::AwaitApproval {
            attempt_id,
            refusal,
        } => {
            assert_eq!(attempt_id, &id);
            assert_eq!(refusal.reason, RefusalReason::ApprovalRequired);
        }
        other => panic!("{other:?}"),
    }
    assert!(trace.runs.is_empty(), "no step runs before approval");
    obs.approval = Some(id);
    let (record, _, _) = drive(&p, record, &obs, now, &no_failures(), &mut trace);
    assert_eq!(record.phase, Phase::FailedOver);
    assert!(record.current_attempt.as_ref().is_some_and(|a| a.approved));
    assert_eq!(record.refusal, None);
}

#[test]
fn a_stale_backup_waits_for_approval_also_on_a_manual_trigger() {
    let mut p = plan();
    p.trigger.backup_gate = true;
    let mut obs = calm();
    obs.failover_token = Some("t1".into());
    obs.backup = Some(crate::failover::gates::BackupObservation {
        policy: "db".into(),
        newest_verified: Some(at(-90_000)),
        rpo: std::time::Duration::from_secs(86_400),
    });
    let mut trace = Trace::default();
    let (record, action, _) = drive(
        &p,
        FailoverRecord::default(),
        &obs,
        at(0),
        &no_failures(),
        &mut trace,
    );
    assert_eq!(record.phase, Phase::AwaitingApproval);
    assert!(
        matches!(action, Action::AwaitApproval { ref refusal, .. } if refusal.reason == RefusalReason::StaleBackup)
    );
    assert!(
        trace
            .transitions
            .iter()
            .any(|t| matches!(t, Transition::Refused(r) if r.reason == RefusalReason::StaleBackup))
    );
}

#[test]
fn refusals_of_the_automatic_trigger_are_recorded_once_and_clear_when_the_primary_recovers() {
    let p = plan();
    let mut obs = outage(at(0));
    obs.maintenance_windows = vec!["patching".into()];
    let d = decide(&p, &FailoverRecord::default(), &obs, at(400));
    assert_eq!(d.transitions.len(), 1);
    assert_eq!(
        d.record.refusal.as_ref().map(|r| r.reason),
        Some(RefusalReason::MaintenanceWindow)
    );
    assert_eq!(d.record.phase, Phase::Standby);
    let again = decide(&p, &d.record, &obs, at(500));
    assert!(again.transitions.is_empty());
    let recovered = decide(&p, &again.record, &calm(), at(600));
    assert_eq!(recovered.record.refusal, None);
    assert_eq!(recovered.record.primary_down_since, None);
}

#[test]
fn transient_failures_retry_with_doubling_backoff_then_fail_the_attempt() {
    let mut p = plan();
    p.steps[1].retries = 2;
    let mut script = BTreeMap::new();
    for try_number in 1..=3 {
        script.insert(
            ("dns".to_string(), try_number),
            StepFailure::transient("503"),
        );
    }
    let mut obs = calm();
    obs.failover_token = Some("t".into());
    let mut trace = Trace::default();
    let (record, _, _) = drive(
        &p,
        FailoverRecord::default(),
        &obs,
        at(0),
        &script,
        &mut trace,
    );
    let tries: Vec<(usize, u32)> = trace
        .runs
        .iter()
        .map(|k| (k.step_index, k.try_number))
        .collect();
    assert_eq!(tries, [(0, 1), (1, 1), (1, 2), (1, 3)]);
    let waits: Vec<DateTime<Utc>> = trace
        .transitions
        .iter()
        .filter_map(|t| match t {
            Transition::StepRetrying { retry_at, .. } => Some(*retry_at),
            _ => None,
        })
        .collect();
    // Try 1 ends at 2 s → retry at 12 s; try 2 ends at 13 s → retry at 33 s (20 s).
    assert_eq!(waits, [at(12), at(33)]);
    assert_eq!(record.phase, Phase::Failed);
    let steps = &record.current_attempt.as_ref().expect("attempt").steps;
    assert_eq!(steps[1].phase, StepPhase::Failed);
    assert_eq!(steps[1].attempts, 3);
    assert_eq!(steps[2].phase, StepPhase::Skipped);
    assert_eq!(record.history[0].result, AttemptResult::Failed);
    assert!(
        record.history[0]
            .message
            .as_deref()
            .is_some_and(|m| m.contains("dns") && m.contains("503"))
    );
}

#[test]
fn a_permanent_failure_is_not_retried() {
    let mut p = plan();
    p.steps[1].retries = 5;
    let script = BTreeMap::from([(
        ("dns".to_string(), 1),
        StepFailure::permanent("record not found"),
    )]);
    let mut obs = calm();
    obs.failover_token = Some("t".into());
    let mut trace = Trace::default();
    let (record, _, _) = drive(
        &p,
        FailoverRecord::default(),
        &obs,
        at(0),
        &script,
        &mut trace,
    );
    assert_eq!(trace.runs.len(), 2);
    assert_eq!(record.phase, Phase::Failed);
}

#[test]
fn continue_on_error_carries_on_and_the_attempt_succeeds() {
    let mut p = plan();
    p.steps[0].continue_on_error = true;
    let script = BTreeMap::from([(
        ("fence".to_string(), 1),
        StepFailure::permanent("webhook 404"),
    )]);
    let mut obs = calm();
    obs.failover_token = Some("t".into());
    let mut trace = Trace::default();
    let (record, _, _) = drive(
        &p,
        FailoverRecord::default(),
        &obs,
        at(0),
        &script,
        &mut trace,
    );
    assert_eq!(record.phase, Phase::FailedOver);
    let steps = &record.current_attempt.as_ref().expect("attempt").steps;
    assert_eq!(steps[0].phase, StepPhase::Failed);
    assert_eq!(steps[2].phase, StepPhase::Succeeded);
}

#[test]
fn a_try_cut_short_by_a_crash_is_run_again_under_the_same_key() {
    let p = plan();
    let mut obs = calm();
    obs.failover_token = Some("t".into());
    let mut record = FailoverRecord::default();
    let first = loop {
        let d = decide(&p, &record, &obs, at(0));
        record = d.record;
        if let Action::RunStep(run) = d.action {
            break run;
        }
    };
    // The record persisted before the try says it is in flight; deciding again (after a
    // crash) runs the same try with the same key and changes nothing.
    let resumed = decide(&p, &record, &obs, at(50));
    assert_eq!(resumed.action, Action::RunStep(first.clone()));
    assert_eq!(resumed.record, record);
    assert!(resumed.transitions.is_empty());
    // An outcome for another try is refused.
    let stale = StepOutcome {
        index: first.index,
        try_number: 2,
        result: Ok(String::new()),
    };
    assert!(apply(&p, &record, stale, at(51)).is_err());
}

#[test]
fn failback_is_manual_and_returns_to_standby() {
    let p = plan();
    let mut obs = calm();
    obs.failback_token = Some("back-1".into());
    // In Standby there is nothing to fail back.
    let d = decide(&p, &FailoverRecord::default(), &obs, at(0));
    assert_eq!(
        d.record.refusal.as_ref().map(|r| r.reason),
        Some(RefusalReason::NotFailedOver)
    );
    let failed_over = FailoverRecord {
        phase: Phase::FailedOver,
        active_region: Some("west".into()),
        ..FailoverRecord::default()
    };
    obs.failback_token = Some("back-2".into());
    let mut trace = Trace::default();
    let (record, _, _) = drive(
        &p,
        failed_over.clone(),
        &obs,
        at(0),
        &no_failures(),
        &mut trace,
    );
    assert_eq!(trace.phases, [Phase::FailingBack, Phase::Standby]);
    assert_eq!(record.active_region.as_deref(), Some("ohio"));
    assert_eq!(record.history[0].kind, AttemptKind::Failback);
    assert_eq!(trace.runs.len(), 1);
    // Without failback steps the token is refused.
    let mut none = plan();
    none.failback_steps.clear();
    let d = decide(&none, &failed_over, &obs, at(0));
    assert_eq!(
        d.record.refusal.as_ref().map(|r| r.reason),
        Some(RefusalReason::NoFailbackProcedure)
    );
    // An outage while failed over never triggers anything by itself.
    let d = decide(&p, &failed_over, &outage(at(-10_000)), at(0));
    assert_eq!(d.record.phase, Phase::FailedOver);
    assert_eq!(d.action, Action::Idle { wake_at: None });
}

#[test]
fn a_dry_run_drill_keeps_standby_and_records_its_time() {
    let p = plan();
    let mut obs = calm();
    obs.drill = Some(DrillRequest {
        token: "2026-12-01T03:00".into(),
        dry_run: true,
    });
    let mut record = FailoverRecord::default();
    let mut dry = Vec::new();
    for _ in 0..20 {
        let d = decide(&p, &record, &obs, at(0));
        record = d.record;
        match d.action {
            Action::Continue => {}
            Action::RunStep(run) => {
                dry.push(run.dry_run);
                let outcome = StepOutcome {
                    index: run.index,
                    try_number: run.key.try_number,
                    result: Ok("checked".into()),
                };
                record = apply(&p, &record, outcome, at(2)).expect("fits").0;
            }
            _ => break,
        }
    }
    assert_eq!(dry, [true, true, true]);
    assert_eq!(record.phase, Phase::Standby);
    let drill = record.last_drill.as_ref().expect("drill summary");
    assert_eq!(drill.rto_seconds, Some(2.0));
    assert!(drill.dry_run);
    assert_eq!(
        record.cooldown_until, None,
        "drills do not start a cooldown"
    );
}

#[test]
fn the_record_survives_a_json_round_trip() {
    let p = plan();
    let mut obs = calm();
    obs.failover_token = Some("t".into());
    let mut trace = Trace::default();
    let (record, _, _) = drive(
        &p,
        FailoverRecord::default(),
        &obs,
        at(0),
        &no_failures(),
        &mut trace,
    );
    let json = serde_json::to_string(&record).expect("serializes");
    assert!(json.contains("\"phase\":\"FailedOver\""), "{json}");
    let back: FailoverRecord = serde_json::from_str(&json).expect("parses");
    assert_eq!(back, record);
}

/// One try's scripted result.
#[derive(Clone, Debug)]
enum Script {
    Ok,
    Transient,
    Permanent,
}

fn script_strategy() -> impl Strategy<Value = Vec<Vec<Script>>> {
    let one = prop_oneof![
        Just(Script::Ok),
        Just(Script::Transient),
        Just(Script::Permanent)
    ];
    proptest::collection::vec(proptest::collection::vec(one, 4), 3)
}

proptest! {
    /// Whatever the tries answer and wherever the process stops (a decision is thrown away
    /// before its try ran, or a try's outcome is lost), a finished step never runs again, a
    /// try is only ever repeated under its own key, and the attempt ends with the same record
    /// as an uninterrupted run of the same answers.
    #[test]
    fn crashes_anywhere_never_repeat_a_finished_step(
        answers in script_strategy(),
        retries in proptest::collection::vec(0u32..3, 3),
        crashes in proptest::collection::vec(any::<bool>(), 40),
    ) {
        let mut p = plan();
        for (step, r) in p.steps.iter_mut().zip(&retries) {
            step.retries = *r;
            step.backoff = std::time::Duration::ZERO;
        }
        let mut obs = calm();
        obs.failover_token = Some("t".into());
        let run = |crashes: &[bool]| {
            let mut record = FailoverRecord::default();
            let mut executed: Vec<IdempotencyKey> = Vec::new();
            let mut crash = crashes.iter().copied().cycle();
            let mut lost_last = false;
            for _ in 0..400 {
                let d = decide(&p, &record, &obs, at(0));
                record = d.record;
                match d.action {
                    Action::Continue => {}
                    Action::RunStep(run) => {
                        // A crash after the try's side effect but before its outcome was saved.
                        // Never twice in a row, so every try eventually reports.
                        let lost = crash.next().unwrap_or(false) && !lost_last;
                        lost_last = lost;
                        if !executed.contains(&run.key) {
                            executed.push(run.key.clone());
                        }
                        if lost {
                            continue;
                        }
                        let answer = &answers[run.index][(run.key.try_number as usize - 1).min(3)];
                        let result = match answer {
                            Script::Ok => Ok("ok".to_string()),
                            Script::Transient => Err(StepFailure::transient("503")),
                            Script::Permanent => Err(StepFailure::permanent("404")),
                        };
                        let outcome = StepOutcome { index: run.index, try_number: run.key.try_number, result };
                        record = apply(&p, &record, outcome, at(0)).expect("fits").0;
                    }
                    _ => break,
                }
            }
            (record, executed)
        };
        let (clean, clean_keys) = run(&[false]);
        let (crashed, crashed_keys) = run(&crashes);
        prop_assert_eq!(&crashed, &clean);
        prop_assert_eq!(crashed_keys, clean_keys);
        prop_assert!(matches!(clean.phase, Phase::FailedOver | Phase::Failed));
    }
}
