//! Tests of folding agent reports into status: newest wins, idempotent, failures and missing
//! reports recorded.

use chrono::TimeZone;

use super::*;
use crate::backup::report::{CheckResult, Inventory as ReportInventory};

pub(crate) fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 6, hour, 0, 0).unwrap()
}

pub(crate) fn backup(outcome: Outcome, id: &str, finished: DateTime<Utc>) -> AgentReport {
    AgentReport::Backup(BackupReport {
        outcome,
        id: Some(id.to_string()),
        started_at: finished - chrono::Duration::seconds(90),
        finished_at: finished,
        size_bytes: Some(1_048_576),
        sha256: Some("ab".repeat(32)),
        encrypted: true,
        message: format!("{id}: {outcome:?}"),
        pruned: vec!["old-1".into(), "old-2".into()],
        pruned_omitted: 3,
        kept: 7,
        prune_error: None,
        inventory: Some(ReportInventory {
            count: 7,
            total_bytes: 7 * 1_048_576,
            oldest: Some(finished - chrono::Duration::days(90)),
            newest: Some(finished),
        }),
    })
}

pub(crate) fn verify(
    outcome: Outcome,
    id: &str,
    completed: DateTime<Utc>,
    finished: DateTime<Utc>,
) -> AgentReport {
    AgentReport::Verify(VerifyReport {
        outcome,
        backup_id: Some(id.to_string()),
        backup_completed_at: Some(completed),
        started_at: finished - chrono::Duration::seconds(60),
        finished_at: finished,
        sha256_ok: Some(true),
        restore_seconds: Some(42.5),
        rto_met: Some(true),
        checks: vec![CheckResult {
            name: "users".into(),
            ok: outcome == Outcome::Succeeded,
            message: if outcome == Outcome::Succeeded {
                String::new()
            } else {
                "expected \"t\", got \"f\"".into()
            },
        }],
        message: format!("verify {id}: {outcome:?}"),
    })
}

pub(crate) fn run(role: Role, name: &str, reports: Vec<AgentReport>) -> JobRun {
    let finished_at = reports.iter().map(|r| match r {
        AgentReport::Backup(b) => b.finished_at,
        AgentReport::Verify(v) => v.finished_at,
        AgentReport::Restore(r) => r.finished_at,
    });
    JobRun {
        name: name.to_string(),
        role,
        outcome: JobOutcome::Succeeded,
        finished_at: finished_at.max(),
        reports,
    }
}

#[test]
fn a_successful_backup_fills_last_backup_inventory_and_prune() {
    let mut status = BackupPolicyStatus::default();
    fold(
        &mut status,
        &[run(
            Role::Backup,
            "j1",
            vec![backup(Outcome::Succeeded, "b1", at(3))],
        )],
    );
    let last = status.last_backup.as_ref().unwrap();
    assert_eq!(last.id, "b1");
    assert_eq!(last.completion_time, Some(time(at(3))));
    assert_eq!(
        last.start_time,
        Some(time(at(3) - chrono::Duration::seconds(90)))
    );
    assert_eq!(last.size_bytes, Some(1_048_576));
    assert_eq!(last.duration_seconds, Some(90.0));
    assert_eq!(last.sha256.as_deref(), Some("ab".repeat(32).as_str()));
    let inventory = status.inventory.as_ref().unwrap();
    assert_eq!((inventory.count, inventory.total_bytes), (7, 7 * 1_048_576));
    assert_eq!(inventory.newest, Some(time(at(3))));
    let prune = status.last_prune.as_ref().unwrap();
    assert_eq!((prune.kept, prune.deleted), (7, 5));
    assert_eq!(prune.deleted_ids, ["old-1", "old-2"]);
    assert!(status.last_failure.is_none());
}

#[test]
fn folding_is_idempotent_and_older_runs_never_replace_newer() {
    let runs = [
        run(
            Role::Backup,
            "j2",
            vec![backup(Outcome::Succeeded, "b2", at(5))],
        ),
        run(
            Role::Backup,
            "j1",
            vec![backup(Outcome::Succeeded, "b1", at(3))],
        ),
    ];
    let mut status = BackupPolicyStatus::default();
    fold(&mut status, &runs);
    assert_eq!(status.last_backup.as_ref().unwrap().id, "b2");
    let once = status.clone();
    fold(&mut status, &runs);
    assert_eq!(status, once);
    // The Jobs are gone (history limit): status stays.
    fold(&mut status, &[]);
    assert_eq!(status, once);
}

#[test]
fn a_failure_is_kept_only_while_newer_than_the_last_success() {
    let mut status = BackupPolicyStatus::default();
    fold(
        &mut status,
        &[
            run(
                Role::Backup,
                "j1",
                vec![backup(Outcome::Succeeded, "b1", at(3))],
            ),
            run(
                Role::Backup,
                "j2",
                vec![backup(Outcome::Failed, "b2", at(4))],
            ),
        ],
    );
    let failure = status.last_failure.as_ref().unwrap();
    assert_eq!(failure.time, Some(time(at(4))));
    assert_eq!(failure.message.as_deref(), Some("b2: Failed"));
    assert_eq!(status.last_backup.as_ref().unwrap().id, "b1");
    fold(
        &mut status,
        &[run(
            Role::Backup,
            "j3",
            vec![backup(Outcome::Succeeded, "b3", at(5))],
        )],
    );
    assert!(status.last_failure.is_none());
    assert_eq!(status.last_backup.as_ref().unwrap().id, "b3");
}

#[test]
fn a_failed_job_without_report_is_a_failure_naming_the_job() {
    let mut status = BackupPolicyStatus::default();
    let failed = JobRun {
        name: "pg-backup-29000000".into(),
        role: Role::Backup,
        outcome: JobOutcome::Failed(
            "BackoffLimitExceeded: Job has reached the specified backoff limit".into(),
        ),
        finished_at: Some(at(3)),
        reports: Vec::new(),
    };
    let running = JobRun {
        name: "pg-backup-29000060".into(),
        role: Role::Backup,
        outcome: JobOutcome::Running,
        finished_at: None,
        reports: Vec::new(),
    };
    fold(&mut status, &[failed.clone(), running]);
    let message = status
        .last_failure
        .as_ref()
        .unwrap()
        .message
        .clone()
        .unwrap();
    assert!(
        message.contains("pg-backup-29000000") && message.contains("BackoffLimitExceeded"),
        "{message}"
    );
    // A verification Job that died is a failed verification.
    let mut dead = failed;
    dead.role = Role::Verify;
    fold(&mut status, &[dead]);
    let verification = status.last_verification.as_ref().unwrap();
    assert_eq!(verification.result, VerificationResult::Failed);
}

#[test]
fn verification_results_and_the_newest_verified_backup() {
    let mut status = BackupPolicyStatus::default();
    fold(
        &mut status,
        &[run(
            Role::Verify,
            "v1",
            vec![verify(Outcome::Succeeded, "b1", at(3), at(5))],
        )],
    );
    let last = status.last_verification.as_ref().unwrap();
    assert_eq!(last.result, VerificationResult::Succeeded);
    assert_eq!(last.restore_duration_seconds, Some(42.5));
    assert_eq!(last.backup_id.as_deref(), Some("b1"));
    assert!(last.checks[0].passed);
    let verified = status.last_verified_backup.clone().unwrap();
    assert_eq!(verified.completion_time, Some(time(at(3))));

    // A later failed verification replaces lastVerification but not the verified backup.
    fold(
        &mut status,
        &[run(
            Role::Verify,
            "v2",
            vec![verify(Outcome::Failed, "b2", at(6), at(7))],
        )],
    );
    let last = status.last_verification.as_ref().unwrap();
    assert_eq!(last.result, VerificationResult::Failed);
    assert!(!last.checks[0].passed);
    assert_eq!(
        last.checks[0].message.as_deref(),
        Some("expected \"t\", got \"f\"")
    );
    assert_eq!(status.last_verified_backup, Some(verified));
}

#[test]
fn reports_of_the_wrong_role_are_ignored() {
    let mut status = BackupPolicyStatus::default();
    fold(
        &mut status,
        &[run(
            Role::Verify,
            "v1",
            vec![backup(Outcome::Succeeded, "b1", at(3))],
        )],
    );
    assert!(status.last_backup.is_none());
    // …and the run counts as one without a report.
    assert_eq!(
        status.last_verification.as_ref().unwrap().result,
        VerificationResult::Failed
    );
}

#[test]
fn times_are_whole_seconds() {
    let precise = at(3) + chrono::Duration::milliseconds(750);
    assert_eq!(time(precise), time(at(3)));
    assert_eq!(chrono_of(&time(precise)), at(3));
}
