//! Folds finished agent runs into a BackupPolicy's status. Pure and idempotent: folding the
//! same runs again (every reconcile re-reads the Jobs the CronJobs still keep) changes nothing,
//! and a run older than what status already records never replaces it, so status survives the
//! Jobs' garbage collection and controller restarts.

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::builder::Role;
use crate::api::backup_policy::{
    BackupFailure, BackupPolicyStatus, BackupSummary, Inventory, PruneSummary, SqlCheckResult,
    VerificationResult, VerificationSummary, VerifiedBackup,
};
use crate::backup::report::{self, AgentReport, BackupReport, Outcome, VerifyReport};

/// Most deleted ids listed in `status.lastPrune.deletedIds`.
pub const MAX_DELETED_IDS: usize = 20;

/// How a Job ended, as its status says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    /// Still running (or not started): not folded yet.
    Running,
    /// The Job completed.
    Succeeded,
    /// The Job failed; the message is its `Failed` condition's reason and message.
    Failed(String),
}

/// One Job of the policy, with the reports its pods left.
#[derive(Clone, Debug, PartialEq)]
pub struct JobRun {
    /// The Job's name.
    pub name: String,
    /// What it ran.
    pub role: Role,
    /// How it ended.
    pub outcome: JobOutcome,
    /// When it ended (the Job's completion or failure time).
    pub finished_at: Option<DateTime<Utc>>,
    /// Reports from its pods' termination messages, oldest pod first.
    pub reports: Vec<AgentReport>,
}

/// Folds every finished run into `status`.
pub fn fold(status: &mut BackupPolicyStatus, runs: &[JobRun]) {
    for run in runs {
        if run.outcome == JobOutcome::Running {
            continue;
        }
        let mut folded = false;
        for report in &run.reports {
            match (run.role, report) {
                (Role::Backup, AgentReport::Backup(r)) => {
                    fold_backup(status, r);
                    folded = true;
                }
                (Role::Verify, AgentReport::Verify(r)) => {
                    fold_verify(status, r);
                    folded = true;
                }
                _ => {}
            }
        }
        if !folded {
            fold_without_report(status, run);
        }
    }
    // `lastFailure` is kept only while it is newer than the newest success.
    if let (Some(failure), Some(last)) = (&status.last_failure, &status.last_backup)
        && !newer(failure.time.as_ref(), last.completion_time.as_ref())
    {
        status.last_failure = None;
    }
}

/// A finished Job whose pods left no readable report: the pod never ran the agent (image pull,
/// missing Secret), was killed (deadline, OOM) or wrote something else.
fn fold_without_report(status: &mut BackupPolicyStatus, run: &JobRun) {
    let Some(at) = run.finished_at else { return };
    let why = match &run.outcome {
        JobOutcome::Failed(message) => format!("Job {} failed: {message}", run.name),
        _ => format!(
            "Job {} completed but its pod left no agent report (termination message)",
            run.name
        ),
    };
    let message = format!("{why}; no agent report");
    match run.role {
        Role::Backup => {
            let record = BackupFailure {
                time: Some(time(at)),
                message: Some(message),
            };
            let current = status.last_failure.as_ref().and_then(|f| f.time.as_ref());
            if newer(record.time.as_ref(), current) {
                status.last_failure = Some(record);
            }
        }
        Role::Verify => {
            let current = status
                .last_verification
                .as_ref()
                .and_then(|v| v.time.as_ref());
            if newer(Some(&time(at)), current) {
                status.last_verification = Some(VerificationSummary {
                    time: Some(time(at)),
                    result: VerificationResult::Failed,
                    backup_id: None,
                    restore_duration_seconds: None,
                    checks: Vec::new(),
                    message: Some(message),
                });
            }
        }
    }
}

fn fold_backup(status: &mut BackupPolicyStatus, r: &BackupReport) {
    let finished = time(r.finished_at);
    match r.outcome {
        Outcome::Succeeded => {
            let current = status
                .last_backup
                .as_ref()
                .and_then(|b| b.completion_time.as_ref());
            if !newer(Some(&finished), current) {
                return;
            }
            let duration = (r.finished_at - r.started_at).num_milliseconds() as f64 / 1000.0;
            status.last_backup = Some(BackupSummary {
                id: r.id.clone().unwrap_or_default(),
                start_time: Some(time(r.started_at)),
                completion_time: Some(finished.clone()),
                size_bytes: r.size_bytes,
                duration_seconds: Some(duration.max(0.0)),
                sha256: r.sha256.clone(),
            });
            if let Some(inventory) = &r.inventory {
                status.inventory = Some(api_inventory(inventory));
            }
            let deleted = u32::try_from(r.pruned.len())
                .unwrap_or(u32::MAX)
                .saturating_add(r.pruned_omitted);
            status.last_prune = Some(PruneSummary {
                time: Some(finished),
                kept: r.kept,
                deleted,
                deleted_ids: r.pruned.iter().take(MAX_DELETED_IDS).cloned().collect(),
                message: r.prune_error.clone(),
            });
        }
        Outcome::Failed => {
            let current = status.last_failure.as_ref().and_then(|f| f.time.as_ref());
            if newer(Some(&finished), current) {
                status.last_failure = Some(BackupFailure {
                    time: Some(finished),
                    message: Some(r.message.clone()),
                });
            }
        }
    }
}

fn fold_verify(status: &mut BackupPolicyStatus, r: &VerifyReport) {
    let finished = time(r.finished_at);
    let current = status
        .last_verification
        .as_ref()
        .and_then(|v| v.time.as_ref());
    if newer(Some(&finished), current) {
        status.last_verification = Some(VerificationSummary {
            time: Some(finished.clone()),
            result: match r.outcome {
                Outcome::Succeeded => VerificationResult::Succeeded,
                Outcome::Failed => VerificationResult::Failed,
            },
            backup_id: r.backup_id.clone(),
            restore_duration_seconds: r.restore_seconds,
            checks: r
                .checks
                .iter()
                .map(|c| SqlCheckResult {
                    name: c.name.clone(),
                    passed: c.ok,
                    message: (!c.message.is_empty()).then(|| c.message.clone()),
                })
                .collect(),
            message: Some(r.message.clone()),
        });
    }
    if r.outcome == Outcome::Succeeded
        && let Some(completed) = r.backup_completed_at
    {
        let current = status
            .last_verified_backup
            .as_ref()
            .and_then(|v| v.completion_time.as_ref());
        if newer(Some(&time(completed)), current) {
            status.last_verified_backup = Some(VerifiedBackup {
                id: r.backup_id.clone(),
                completion_time: Some(time(completed)),
                verified_at: Some(finished),
            });
        }
    }
}

fn api_inventory(inventory: &report::Inventory) -> Inventory {
    Inventory {
        count: inventory.count,
        total_bytes: inventory.total_bytes,
        oldest: inventory.oldest.map(time),
        newest: inventory.newest.map(time),
    }
}

/// Whether `candidate` is strictly later than `current` (anything beats nothing).
fn newer(candidate: Option<&Time>, current: Option<&Time>) -> bool {
    match (candidate, current) {
        (Some(a), Some(b)) => a.0 > b.0,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// A chrono time as a Kubernetes `Time`, cut to whole seconds: that is how `metav1.Time`
/// serializes, so what is computed equals what is read back and an unchanged status is not
/// written again.
pub fn time(at: DateTime<Utc>) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(at.timestamp()).unwrap_or_default())
}

/// A Kubernetes `Time` as chrono.
pub fn chrono_of(time: &Time) -> DateTime<Utc> {
    DateTime::from_timestamp(time.0.as_second(), 0).unwrap_or_default()
}

/// A Kubernetes `Time` as Unix seconds.
pub fn seconds_of(time: &Time) -> f64 {
    time.0.as_second() as f64
}

#[cfg(test)]
pub(crate) mod tests;
