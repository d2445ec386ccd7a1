//! Tests of the job-watch engine: every health transition and recovery, idempotent folding,
//! excused windows, stuck detection. Schedule edge cases are in `schedule_tests`.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use super::*;
use crate::alert::Severity;
use crate::schedule::{DstRule, Window};

mod schedule_tests;

pub(super) fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn minutes(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

fn policy(expr: &str) -> WatchPolicy {
    WatchPolicy {
        schedule: CronSchedule::parse(expr, Tz::UTC)
            .unwrap()
            .with_dst_rule(DstRule::Kubernetes),
        late_after: Duration::from_secs(5 * 60),
        failure_threshold: 1,
        dead_mans_switch: None,
        starting_deadline: None,
        suspended: false,
    }
}

fn run(name: &str, due: DateTime<Utc>, outcome: RunOutcome) -> RunObservation {
    RunObservation {
        name: name.to_string(),
        trigger: RunTrigger::Scheduled,
        scheduled_for: Some(due),
        started_at: due + TimeDelta::seconds(2),
        finished_at: (outcome != RunOutcome::Running).then(|| due + TimeDelta::seconds(30)),
        outcome,
        status_code: Some(if outcome == RunOutcome::Failed {
            500
        } else {
            200
        }),
        message: (outcome == RunOutcome::Failed).then(|| "HTTP 500".to_string()),
    }
}

fn manual(name: &str, at: DateTime<Utc>, outcome: RunOutcome) -> RunObservation {
    RunObservation {
        trigger: RunTrigger::Manual {
            token: name.to_string(),
        },
        scheduled_for: None,
        ..run(name, at, outcome)
    }
}

#[test]
fn new_job_is_unknown_until_a_run_is_due() {
    let p = policy("0 * * * *");
    let since = utc(2026, 5, 1, 10, 10);
    let report = evaluate(&p, &JobMemory::default(), since, &[], since + minutes(30));
    assert_eq!(report.health, JobHealth::Unknown);
    assert_eq!(report.reason, "AwaitingFirstRun");
    assert_eq!(report.next_run, Some(utc(2026, 5, 1, 11, 0)));
    assert!(
        report.message.contains("2026-05-01 11:00 UTC"),
        "{}",
        report.message
    );
    assert!(firing_alerts(&report, &JobSeverities::default(), &BTreeMap::new()).is_empty());
}

#[test]
fn late_after_grace_then_recovers_when_the_run_starts() {
    let p = policy("0 * * * *");
    let since = utc(2026, 5, 1, 10, 10);
    let mut memory = JobMemory::default();
    // 11:00 is due; 4 minutes later still within the 5-minute grace.
    let within = evaluate(&p, &memory, since, &[], utc(2026, 5, 1, 11, 4));
    assert_eq!(within.health, JobHealth::Unknown);
    assert_eq!(within.missed_starts, 1);
    let late = evaluate(&p, &memory, since, &[], utc(2026, 5, 1, 11, 6));
    assert_eq!(late.health, JobHealth::Late);
    assert_eq!(late.reason, "RunLate");
    assert_eq!(late.overdue_since, Some(utc(2026, 5, 1, 11, 0)));
    assert!(
        late.message.contains("2026-05-01 11:00 UTC"),
        "{}",
        late.message
    );
    let alerts = firing_alerts(&late, &JobSeverities::default(), &BTreeMap::new());
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].key, "job/late");
    assert_eq!(alerts[0].severity, Severity::P3);
    assert_eq!(alerts[0].starts_at, utc(2026, 5, 1, 11, 5));
    // A (late) run starts: Healthy again while it runs.
    memory.observe(&[run("r-1100", utc(2026, 5, 1, 11, 0), RunOutcome::Running)]);
    let running = evaluate(&p, &memory, since, &[], utc(2026, 5, 1, 11, 7));
    assert_eq!(running.health, JobHealth::Healthy);
    assert_eq!(running.missed_starts, 0);
    assert!(firing_alerts(&running, &JobSeverities::default(), &BTreeMap::new()).is_empty());
}

#[test]
fn a_long_running_run_makes_the_next_due_time_late_and_says_so() {
    let p = policy("0 * * * *");
    let mut memory = JobMemory::default();
    memory.observe(&[run("r-1100", utc(2026, 5, 1, 11, 0), RunOutcome::Running)]);
    let report = evaluate(
        &p,
        &memory,
        utc(2026, 5, 1, 10, 0),
        &[],
        utc(2026, 5, 1, 12, 10),
    );
    assert_eq!(report.health, JobHealth::Late);
    assert_eq!(report.overdue_since, Some(utc(2026, 5, 1, 12, 0)));
    assert!(
        report.message.contains("still running"),
        "{}",
        report.message
    );
}

#[test]
fn failing_at_threshold_and_recovery_on_success() {
    let mut p = policy("0 * * * *");
    p.failure_threshold = 2;
    let since = utc(2026, 5, 1, 10, 0);
    let mut memory = JobMemory::default();
    memory.observe(&[run("a", utc(2026, 5, 1, 11, 0), RunOutcome::Failed)]);
    assert_eq!(memory.consecutive_failures, 1);
    let one = evaluate(&p, &memory, since, &[], utc(2026, 5, 1, 11, 10));
    assert_eq!(one.health, JobHealth::Healthy);
    memory.observe(&[run("b", utc(2026, 5, 1, 12, 0), RunOutcome::Failed)]);
    let two = evaluate(&p, &memory, since, &[], utc(2026, 5, 1, 12, 10));
    assert_eq!(two.health, JobHealth::Failing);
    assert_eq!(two.reason, "ConsecutiveFailures");
    assert!(two.message.contains("HTTP 500"), "{}", two.message);
    let alerts = firing_alerts(&two, &JobSeverities::default(), &BTreeMap::new());
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].key, "job/failing");
    assert_eq!(alerts[0].severity, Severity::P2);
    // The alert starts at the first failure of the streak, and stays there.
    assert_eq!(
        alerts[0].starts_at,
        utc(2026, 5, 1, 11, 0) + TimeDelta::seconds(30)
    );
    memory.observe(&[run("c", utc(2026, 5, 1, 13, 0), RunOutcome::Succeeded)]);
    assert_eq!(memory.consecutive_failures, 0);
    assert_eq!(memory.failing_since, None);
    let healed = evaluate(&p, &memory, since, &[], utc(2026, 5, 1, 13, 10));
    assert_eq!(healed.health, JobHealth::Healthy);
    assert_eq!(
        memory.last_successful_time,
        Some(utc(2026, 5, 1, 13, 0) + TimeDelta::seconds(30))
    );
    assert_eq!(
        memory.last_failure_time,
        Some(utc(2026, 5, 1, 12, 0) + TimeDelta::seconds(30))
    );
}

#[test]
fn manual_runs_count_for_failures_and_successes_but_not_for_the_schedule() {
    let p = policy("0 * * * *");
    let since = utc(2026, 5, 1, 10, 0);
    let mut memory = JobMemory::default();
    memory.observe(&[manual("now-1", utc(2026, 5, 1, 10, 20), RunOutcome::Failed)]);
    assert_eq!(memory.consecutive_failures, 1);
    assert_eq!(memory.last_schedule_time, None);
    let report = evaluate(&p, &memory, since, &[], utc(2026, 5, 1, 10, 30));
    assert_eq!(report.health, JobHealth::Failing);
    memory.observe(&[manual(
        "now-2",
        utc(2026, 5, 1, 10, 40),
        RunOutcome::Succeeded,
    )]);
    let report = evaluate(&p, &memory, since, &[], utc(2026, 5, 1, 10, 50));
    assert_eq!(report.health, JobHealth::Healthy);
    // The manual run does not stand in for the 11:00 due time.
    let report = evaluate(&p, &memory, since, &[], utc(2026, 5, 1, 11, 10));
    assert_eq!(report.health, JobHealth::Late);
}

#[test]
fn dead_mans_switch_from_watching_since_and_from_last_success() {
    let mut p = policy("*/10 * * * *");
    p.dead_mans_switch = Some(Duration::from_secs(3600));
    let since = utc(2026, 5, 1, 10, 0);
    let mut memory = JobMemory::default();
    // Every run fails: Failing at once, Missed an hour after watching began.
    let mut runs = Vec::new();
    for k in 1..=6 {
        let due = since + minutes(10 * k);
        runs.push(run(&format!("r{k}"), due, RunOutcome::Failed));
        memory.observe(&runs);
    }
    let before = evaluate(&p, &memory, since, &[], utc(2026, 5, 1, 11, 0));
    assert_eq!(before.health, JobHealth::Failing);
    let after = evaluate(&p, &memory, since, &[], utc(2026, 5, 1, 11, 1));
    assert_eq!(after.health, JobHealth::Missed);
    assert_eq!(after.reason, "NoRecentSuccess");
    let alerts = firing_alerts(&after, &JobSeverities::default(), &BTreeMap::new());
    let keys: Vec<&str> = alerts.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(keys, ["job/missed", "job/failing"]);
    assert_eq!(alerts[0].severity, Severity::P1);
    assert_eq!(alerts[0].starts_at, utc(2026, 5, 1, 11, 0));
    // A success: both clear; Missed again one hour after it.
    runs.push(run("ok", utc(2026, 5, 1, 11, 10), RunOutcome::Succeeded));
    memory.observe(&runs);
    let success_at = utc(2026, 5, 1, 11, 10) + TimeDelta::seconds(30);
    let healed = evaluate(&p, &memory, since, &[], utc(2026, 5, 1, 11, 15));
    assert_eq!(healed.health, JobHealth::Healthy);
    // Runs keep starting (not late) but fail, so no success: Missed at success + 1h.
    for k in 1..=6 {
        let due = utc(2026, 5, 1, 11, 10) + minutes(10 * k);
        runs.push(run(&format!("f{k}"), due, RunOutcome::Failed));
    }
    memory.observe(&runs);
    p.failure_threshold = 100;
    let edge = evaluate(&p, &memory, since, &[], success_at + minutes(60));
    assert_eq!(edge.health, JobHealth::Healthy);
    let missed = evaluate(
        &p,
        &memory,
        since,
        &[],
        success_at + minutes(60) + TimeDelta::seconds(1),
    );
    assert_eq!(missed.health, JobHealth::Missed);
}

#[test]
fn excused_windows_excuse_due_times_and_dead_man_time() {
    let mut p = policy("0 * * * *");
    p.dead_mans_switch = Some(Duration::from_secs(2 * 3600));
    let since = utc(2026, 5, 1, 9, 30);
    let mut memory = JobMemory::default();
    memory.observe(&[run("r10", utc(2026, 5, 1, 10, 0), RunOutcome::Succeeded)]);
    // Maintenance 10:30–12:30 covers the 11:00 and 12:00 due times.
    let window = Window {
        start: utc(2026, 5, 1, 10, 30),
        end: utc(2026, 5, 1, 12, 30),
    };
    let inside = evaluate(&p, &memory, since, &[window], utc(2026, 5, 1, 12, 20));
    assert_eq!(inside.health, JobHealth::Healthy);
    assert_eq!(
        inside.missed_starts, 2,
        "missed starts count like Kubernetes"
    );
    // Without the window: 11:00 is overdue and the dead-man's 2 h since 10:00:30 are up too.
    let unexcused = evaluate(&p, &memory, since, &[], utc(2026, 5, 1, 12, 20));
    assert_eq!(unexcused.health, JobHealth::Missed);
    assert_eq!(unexcused.problems[1].health, JobHealth::Late);
    assert_eq!(unexcused.overdue_since, Some(utc(2026, 5, 1, 11, 0)));
    // After the window the 13:00 due time counts again.
    let after = evaluate(&p, &memory, since, &[window], utc(2026, 5, 1, 13, 6));
    assert_eq!(after.health, JobHealth::Late);
    assert_eq!(after.overdue_since, Some(utc(2026, 5, 1, 13, 0)));
    // Dead-man: success at 10:00:30 + 2h counted, 2h of it excused → 14:00:30 (not 12:00:30).
    memory.last_schedule_time = Some(utc(2026, 5, 1, 14, 0));
    let before = evaluate(&p, &memory, since, &[window], utc(2026, 5, 1, 14, 0));
    assert_ne!(before.health, JobHealth::Missed);
    let missed = evaluate(&p, &memory, since, &[window], utc(2026, 5, 1, 14, 1));
    assert_eq!(missed.health, JobHealth::Missed);
    assert_eq!(
        missed.problems[0].since,
        utc(2026, 5, 1, 14, 0) + TimeDelta::seconds(30)
    );
    // Overlapping windows are merged, not counted twice.
    let overlapping = [
        window,
        Window {
            start: utc(2026, 5, 1, 11, 0),
            end: utc(2026, 5, 1, 12, 0),
        },
    ];
    let merged = evaluate(&p, &memory, since, &overlapping, utc(2026, 5, 1, 14, 1));
    assert_eq!(merged.problems[0].since, missed.problems[0].since);
}

#[test]
fn suspended_judges_nothing_and_alerts_nothing() {
    let mut p = policy("0 * * * *");
    p.suspended = true;
    p.dead_mans_switch = Some(Duration::from_secs(600));
    let mut memory = JobMemory::default();
    memory.observe(&[run("a", utc(2026, 5, 1, 10, 0), RunOutcome::Failed)]);
    let report = evaluate(
        &p,
        &memory,
        utc(2026, 5, 1, 9, 0),
        &[],
        utc(2026, 5, 2, 0, 0),
    );
    assert_eq!(report.health, JobHealth::Suspended);
    assert_eq!(report.next_run, None);
    assert!(!report.stuck);
    assert!(firing_alerts(&report, &JobSeverities::default(), &BTreeMap::new()).is_empty());
    p.suspended = false;
    let resumed = evaluate(
        &p,
        &memory,
        utc(2026, 5, 1, 9, 0),
        &[],
        utc(2026, 5, 2, 0, 0),
    );
    assert_ne!(resumed.health, JobHealth::Suspended);
}

#[test]
fn stuck_after_more_than_100_missed_starts_unless_a_deadline_bounds_them() {
    let p = policy("* * * * *");
    let mut memory = JobMemory::default();
    let last = utc(2026, 5, 1, 10, 0);
    memory.observe(&[run("r", last, RunOutcome::Succeeded)]);
    let at_100 = evaluate(&p, &memory, last, &[], last + minutes(100));
    assert_eq!(at_100.missed_starts, 100);
    assert!(!at_100.stuck);
    assert_eq!(at_100.reason, "RunLate");
    let at_101 = evaluate(&p, &memory, last, &[], last + minutes(101));
    assert_eq!(at_101.missed_starts, 101);
    assert!(at_101.stuck);
    assert_eq!(at_101.health, JobHealth::Late);
    assert_eq!(at_101.reason, "TooManyMissedStarts");
    let alerts = firing_alerts(&at_101, &JobSeverities::default(), &BTreeMap::new());
    assert_eq!(alerts[0].key, "job/stuck");
    assert_eq!(alerts[0].severity, Severity::P1);
    // Far more missed starts stay capped.
    let days = evaluate(&p, &memory, last, &[], last + TimeDelta::days(3));
    assert_eq!(days.missed_starts, TOO_MANY_MISSED_STARTS + 1);
    // With a 10-minute starting deadline only the deadline span counts.
    let mut bounded = p.clone();
    bounded.starting_deadline = Some(Duration::from_secs(600));
    let report = evaluate(&bounded, &memory, last, &[], last + TimeDelta::days(3));
    assert_eq!(report.missed_starts, 10);
    assert!(!report.stuck);
    assert_eq!(report.health, JobHealth::Late);
}

#[test]
fn observe_is_idempotent_and_returns_new_runs_oldest_first() {
    let runs = vec![
        run("b", utc(2026, 5, 1, 11, 0), RunOutcome::Failed),
        run("a", utc(2026, 5, 1, 10, 0), RunOutcome::Succeeded),
        run("c", utc(2026, 5, 1, 12, 0), RunOutcome::Running),
    ];
    let mut memory = JobMemory::default();
    let fresh = memory.observe(&runs);
    let names: Vec<&str> = fresh.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(memory.consecutive_failures, 1);
    assert_eq!(memory.last_run.as_ref().unwrap().name, "c");
    assert_eq!(memory.last_schedule_time, Some(utc(2026, 5, 1, 12, 0)));
    let snapshot = memory.clone();
    assert!(memory.observe(&runs).is_empty());
    assert_eq!(memory, snapshot);
    // Older Jobs garbage-collected: the remaining list changes nothing either.
    assert!(memory.observe(&runs[2..]).is_empty());
    assert_eq!(memory, snapshot);
    // c finishes: counted once, last_run updated.
    let mut finished = runs.clone();
    finished[2] = run("c", utc(2026, 5, 1, 12, 0), RunOutcome::Failed);
    assert_eq!(memory.observe(&finished).len(), 1);
    assert_eq!(memory.consecutive_failures, 2);
    assert_eq!(
        memory.last_run.as_ref().unwrap().outcome,
        RunOutcome::Failed
    );
    assert!(memory.observe(&finished).is_empty());
    assert_eq!(memory.consecutive_failures, 2);
}

#[test]
fn runs_finishing_in_the_same_second_are_both_counted_and_restarts_never_double_count() {
    let due = utc(2026, 5, 1, 10, 0);
    let first = run("scheduled", due, RunOutcome::Failed);
    let second = RunObservation {
        started_at: due + TimeDelta::seconds(5),
        ..manual("manual", due, RunOutcome::Failed)
    };
    assert_eq!(first.finished_at, second.finished_at);
    let mut memory = JobMemory::default();
    memory.observe(std::slice::from_ref(&first));
    assert_eq!(memory.observe(&[first.clone(), second.clone()]).len(), 1);
    assert_eq!(memory.consecutive_failures, 2);
    // A store without the watermark names (restart): nothing at that instant counts again.
    let mut restored = JobMemory {
        seen_at_watermark: Vec::new(),
        ..memory.clone()
    };
    assert!(restored.observe(&[first, second]).is_empty());
    assert_eq!(restored.consecutive_failures, 2);
    // Memory round-trips through JSON (the run state file, the controller's status mapping).
    let json = serde_json::to_string(&memory).unwrap();
    assert_eq!(serde_json::from_str::<JobMemory>(&json).unwrap(), memory);
}

#[test]
fn alerts_carry_labels_source_and_condition() {
    let p = policy("0 * * * *");
    let report = evaluate(
        &p,
        &JobMemory::default(),
        utc(2026, 5, 1, 10, 10),
        &[],
        utc(2026, 5, 1, 11, 30),
    );
    let labels = BTreeMap::from([
        ("namespace".to_string(), "shop".to_string()),
        ("name".to_string(), "crawl".to_string()),
    ]);
    let severities = JobSeverities {
        late: Severity::P0,
        ..JobSeverities::default()
    };
    let alerts = firing_alerts(&report, &severities, &labels);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].severity, Severity::P0);
    assert_eq!(alerts[0].source, "CronJobSpec shop/crawl");
    assert_eq!(alerts[0].labels["condition"], "Late");
    assert_eq!(alerts[0].labels["name"], "crawl");
    assert!(
        alerts[0]
            .summary
            .starts_with("CronJobSpec shop/crawl: late")
    );
}
