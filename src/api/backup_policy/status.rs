//! Observed state of a BackupPolicy.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::common::{Condition, LocalObjectRef, OpenAlert};

/// Condition types a BackupPolicy reports (besides `Ready`).
pub mod condition {
    /// True while the newest verified backup is younger than `objectives.rpo`.
    pub const RPO_MET: &str = "RPOMet";
    /// True when the last verification restored the newest backup and every check passed
    /// within the RTO.
    pub const VERIFIED: &str = "Verified";
    /// True when the last prune applied the retention rules without error.
    pub const RETENTION_APPLIED: &str = "RetentionApplied";
    /// The spec is valid and the CronJobs exist.
    pub const READY: &str = "Ready";
}

/// Observed state of a BackupPolicy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupPolicyStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `RPOMet`, `Verified`, `RetentionApplied`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The newest successful backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup: Option<BackupSummary>,
    /// The newest failed backup run, if it is newer than `lastBackup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<BackupFailure>,
    /// When the next scheduled backup starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_backup_time: Option<Time>,
    /// What the destination holds for this policy (complete backups only: a dump without its
    /// manifest does not count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<Inventory>,
    /// Result of the newest verification run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_verification: Option<VerificationSummary>,
    /// The newest backup a verification restored successfully. It stays when a later
    /// verification fails, so `RPOMet` can fall back to the newest backup proven restorable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_verified_backup: Option<VerifiedBackup>,
    /// What the newest prune kept and removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_prune: Option<PruneSummary>,
    /// The `watchkeeper.dev/backup-now` token handled last; a backup-now request with this
    /// token is not run again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup_now_token: Option<String>,
    /// The CronJobs the policy owns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_jobs: Option<OwnedCronJobs>,
    /// Alerts currently open (backup failed, RPO missed, verification failed), so a restarted
    /// or newly elected controller does not notify them again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open_alerts: Vec<OpenAlert>,
}

/// A backup proven restorable by a verification.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedBackup {
    /// Backup id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// When that backup became complete: the point a restore of it recovers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// When the verification that restored it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<Time>,
}

/// One complete backup, as its manifest describes it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupSummary {
    /// Backup id (also the object name stem), e.g. `20260106T030000Z`.
    pub id: String,
    /// When `pg_dump` started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the manifest was written, i.e. the backup became complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// Stored size in bytes (after compression and encryption).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// Wall-clock duration of the run in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// Hex SHA-256 of the stored object, checked before every restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// A failed backup run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupFailure {
    /// When the run failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
    /// What went wrong (never contains credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Summary of the backups the policy holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    /// Number of complete backups.
    pub count: u32,
    /// Their total stored size in bytes.
    pub total_bytes: u64,
    /// Completion time of the oldest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest: Option<Time>,
    /// Completion time of the newest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<Time>,
}

/// Outcome of a verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum VerificationResult {
    /// Restored, every check passed, within the RTO.
    Succeeded,
    /// The restore or a check failed, the checksum did not match, or the RTO was exceeded.
    Failed,
}

/// The newest verification run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerificationSummary {
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
    /// Succeeded or Failed.
    pub result: VerificationResult,
    /// Id of the backup that was restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    /// How long the restore took, compared with `objectives.rto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_duration_seconds: Option<f64>,
    /// Per-check outcome.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<SqlCheckResult>,
    /// Why it failed, or a short success note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Outcome of one SQL check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SqlCheckResult {
    /// The check's name.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// What was found when it did not pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What a prune did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PruneSummary {
    /// When it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
    /// Backups kept.
    pub kept: u32,
    /// Backups deleted.
    pub deleted: u32,
    /// Ids of the deleted backups (at most 20 listed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted_ids: Vec<String>,
    /// Errors while deleting, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The CronJobs a BackupPolicy owns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OwnedCronJobs {
    /// The CronJob that takes backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<LocalObjectRef>,
    /// The CronJob that verifies them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<LocalObjectRef>,
}
