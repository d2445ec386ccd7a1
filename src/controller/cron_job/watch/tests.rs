use super::*;
use crate::api::cron_job_spec::RunRecord;
use crate::schedule::CronSchedule;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn policy(schedule: &str, late: u64, switch: Option<u64>) -> engine::WatchPolicy {
    engine::WatchPolicy {
        schedule: CronSchedule::parse(schedule, chrono_tz::UTC).unwrap(),
        late_after: Duration::from_secs(late),
        failure_threshold: 1,
        dead_mans_switch: switch.map(Duration::from_secs),
        starting_deadline: None,
        suspended: false,
    }
}

#[test]
fn memory_survives_a_round_trip_through_status() {
    let mut memory = JobMemory::default();
    let runs = [
        RunObservation {
            name: "a-1".into(),
            trigger: RunTrigger::Scheduled,
            scheduled_for: Some(at("2026-01-01T02:00:00Z")),
            started_at: at("2026-01-01T02:00:01Z"),
            finished_at: Some(at("2026-01-01T02:01:13Z")),
            outcome: RunOutcome::Failed,
            status_code: Some(503),
            message: Some("HTTP 503".into()),
        },
        RunObservation {
            name: "a-now".into(),
            trigger: RunTrigger::Manual { token: "t".into() },
            scheduled_for: None,
            started_at: at("2026-01-01T03:00:00Z"),
            finished_at: Some(at("2026-01-01T03:00:30Z")),
            outcome: RunOutcome::Failed,
            status_code: None,
            message: None,
        },
    ];
    memory.observe(&runs);
    let mut status = CronJobSpecStatus {
        last_run_now_token: Some("t".into()),
        ..CronJobSpecStatus::default()
    };
    write_memory(&mut status, &memory);
    assert_eq!(status.consecutive_failures, 2);
    assert_eq!(
        status.last_run.as_ref().map(|r| r.duration.clone()),
        Some(Some("30s".to_string()))
    );
    let back = memory_from_status(&status);
    assert_eq!(back.consecutive_failures, 2);
    assert_eq!(back.watermark(), memory.watermark());
    assert_eq!(back.last_schedule_time, memory.last_schedule_time);
    let last = back.last_run.unwrap();
    assert_eq!(last.trigger, RunTrigger::Manual { token: "t".into() });
    assert_eq!(last.finished_at, Some(at("2026-01-01T03:00:30Z")));
    // Observing the same runs again from the restored memory counts nothing twice.
    let mut restored = memory_from_status(&status);
    assert!(restored.observe(&runs).is_empty());
    assert_eq!(restored.consecutive_failures, 2);
}

#[test]
fn a_record_without_job_name_or_start_is_no_run() {
    let status = CronJobSpecStatus {
        last_run: Some(RunRecord {
            result: RunResult::Running,
            job_name: None,
            trigger: None,
            start_time: None,
            duration: None,
            status_code: None,
            message: None,
        }),
        ..CronJobSpecStatus::default()
    };
    assert_eq!(memory_from_status(&status).last_run, None);
}

#[test]
fn requeue_comes_at_the_next_grace_end_or_the_dead_mans_deadline() {
    let now = at("2026-01-01T02:00:30Z");
    let since = at("2026-01-01T01:00:00Z");
    let memory = JobMemory {
        last_schedule_time: Some(at("2026-01-01T02:00:00Z")),
        last_successful_time: Some(at("2026-01-01T02:00:20Z")),
        ..JobMemory::default()
    };
    let hourly = policy("0 * * * *", 60, None);
    let report = engine::evaluate(&hourly, &memory, since, &[], now);
    let after = requeue_after(&hourly, &memory, &report, since, now);
    // Next due 03:00 + 60 s grace, from 02:00:30.
    assert_eq!(after, Duration::from_secs(3630) + SLACK);

    let switched = policy("0 * * * *", 60, Some(3605));
    let report = engine::evaluate(&switched, &memory, since, &[], now);
    let after = requeue_after(&switched, &memory, &report, since, now);
    // 02:00:20 + 3605 s = 03:00:25 comes before 03:01:00.
    assert_eq!(after, Duration::from_secs(3595) + SLACK);

    // A due time already past but still in its grace is looked at when the grace ends.
    let memory = JobMemory {
        last_schedule_time: Some(at("2026-01-01T01:00:00Z")),
        ..JobMemory::default()
    };
    let report = engine::evaluate(&hourly, &memory, since, &[], now);
    let after = requeue_after(&hourly, &memory, &report, since, now);
    assert_eq!(after, Duration::from_secs(30) + SLACK);
}

#[test]
fn health_maps_to_the_condition() {
    let memory = JobMemory {
        consecutive_failures: 1,
        last_failure_time: Some(at("2026-01-01T02:00:20Z")),
        last_schedule_time: Some(at("2026-01-01T02:00:00Z")),
        ..JobMemory::default()
    };
    let p = policy("0 * * * *", 60, None);
    let since = at("2026-01-01T01:30:00Z");
    let report = engine::evaluate(&p, &memory, since, &[], at("2026-01-01T02:01:00Z"));
    let c = healthy_condition(&report, Some("secret slack/url: the Secret does not exist"));
    assert_eq!(c.status, ConditionStatus::False);
    assert_eq!(c.reason, "ConsecutiveFailures");
    assert!(c.message.contains("alerts cannot be sent"), "{}", c.message);
    let report = engine::evaluate(
        &p,
        &JobMemory::default(),
        since,
        &[],
        at("2026-01-01T01:40:00Z"),
    );
    assert_eq!(
        healthy_condition(&report, None).status,
        ConditionStatus::Unknown
    );
}

#[test]
fn secret_refs_are_found_at_any_depth() {
    let mut out = Vec::new();
    collect_secret_refs(
        &serde_json::json!({"channels": [
            {"slack": {"webhookUrlSecretRef": {"name": "s", "key": "url"}}},
            {"webhook": {"url": "http://x", "headers": [{"name": "A",
                "valueFrom": {"secretKeyRef": {"name": "h", "key": "k"}}}]}}
        ]}),
        &mut out,
    );
    assert_eq!(
        out,
        [
            ("s".to_string(), "url".to_string()),
            ("h".to_string(), "k".to_string())
        ]
    );
}
