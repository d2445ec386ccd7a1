//! The result of one agent run: printed as the last line of stdout and written to the
//! container's termination message (`/dev/termination-log`, which Kubernetes caps at 4096
//! bytes), where the BackupPolicy controller reads it from the Job's Pod status.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Largest termination message Kubernetes keeps.
pub const TERMINATION_MESSAGE_LIMIT: usize = 4096;

/// Longest `message` kept in a report (longer ones are cut at a character boundary).
const MESSAGE_LIMIT: usize = 1024;

/// Whether the run did what it was asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Done.
    Succeeded,
    /// Not done; `message` says why.
    Failed,
}

/// One agent run's result, tagged by command (`{"kind":"Backup", …}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum AgentReport {
    /// `agent backup`.
    Backup(BackupReport),
    /// `agent verify`.
    Verify(VerifyReport),
    /// `agent restore`.
    Restore(RestoreReport),
}

/// What `agent backup` did, including the prune that follows a successful backup.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupReport {
    /// Succeeded only when the dump and its manifest are stored.
    pub outcome: Outcome,
    /// Backup id (set once a backup was started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// When the run ended.
    pub finished_at: DateTime<Utc>,
    /// Stored size in bytes (after compression and encryption).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// Hex SHA-256 of the stored object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Whether the stored object is encrypted.
    #[serde(default)]
    pub encrypted: bool,
    /// One human sentence: what was stored, or why it failed. Never holds secrets.
    pub message: String,
    /// Ids of backups removed by retention, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pruned: Vec<String>,
    /// Pruned ids left out of `pruned` to fit the termination message.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pruned_omitted: u32,
    /// Backups kept after pruning.
    #[serde(default)]
    pub kept: u32,
    /// Why pruning did not complete (the backup itself still counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune_error: Option<String>,
    /// Complete backups under the policy's prefix after pruning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<Inventory>,
}

/// Complete backups (with a manifest of ours) under the policy's prefix.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    /// Number of backups.
    pub count: u32,
    /// Sum of their stored sizes.
    pub total_bytes: u64,
    /// Completion time of the oldest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest: Option<DateTime<Utc>>,
    /// Completion time of the newest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<DateTime<Utc>>,
}

/// What `agent verify` found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    /// Succeeded when the checksum matched, the restore completed, every check passed and the
    /// restore was within the RTO.
    pub outcome: Outcome,
    /// The backup restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    /// When that backup completed (for the RPO: the age of the newest verified backup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_completed_at: Option<DateTime<Utc>>,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// When the run ended.
    pub finished_at: DateTime<Utc>,
    /// Whether the stored object's SHA-256 matched its manifest (unset if not reached).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256_ok: Option<bool>,
    /// Seconds `pg_restore` took (download, decryption and restore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_seconds: Option<f64>,
    /// Whether `restore_seconds` is within the RTO (unset without an RTO).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_met: Option<bool>,
    /// The SQL checks, in the policy's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckResult>,
    /// One human sentence.
    pub message: String,
}

/// One SQL check's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    /// The check's name.
    pub name: String,
    /// Passed.
    pub ok: bool,
    /// What was found, e.g. `expected "t", got "f"`.
    pub message: String,
}

/// What `agent restore` did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreReport {
    /// Succeeded when the backup was restored into the target.
    pub outcome: Outcome,
    /// The backup restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    /// The target database.
    pub target_database: String,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// When the run ended.
    pub finished_at: DateTime<Utc>,
    /// Seconds the restore took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_seconds: Option<f64>,
    /// One human sentence.
    pub message: String,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Cuts `text` to at most `limit` bytes at a character boundary, marking the cut.
fn truncate(text: &mut String, limit: usize) {
    if text.len() <= limit {
        return;
    }
    let mut end = limit.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str("...");
}

impl AgentReport {
    /// Whether the run succeeded.
    pub fn outcome(&self) -> Outcome {
        match self {
            AgentReport::Backup(r) => r.outcome,
            AgentReport::Verify(r) => r.outcome,
            AgentReport::Restore(r) => r.outcome,
        }
    }

    /// One-line JSON that fits the termination message: messages are cut to 1 KiB, then pruned
    /// ids and check messages are dropped (counted in `prunedOmitted`) until it fits.
    pub fn to_termination_json(&self) -> String {
        let mut report = self.clone();
        match &mut report {
            AgentReport::Backup(r) => {
                truncate(&mut r.message, MESSAGE_LIMIT);
                if let Some(e) = r.prune_error.as_mut() {
                    truncate(e, MESSAGE_LIMIT / 2);
                }
            }
            AgentReport::Verify(r) => {
                truncate(&mut r.message, MESSAGE_LIMIT);
                for c in &mut r.checks {
                    truncate(&mut c.message, 200);
                }
            }
            AgentReport::Restore(r) => truncate(&mut r.message, MESSAGE_LIMIT),
        }
        loop {
            let json = serde_json::to_string(&report).unwrap_or_default();
            if json.len() <= TERMINATION_MESSAGE_LIMIT {
                return json;
            }
            let shrunk = match &mut report {
                AgentReport::Backup(r) => r.pruned.pop().map(|_| r.pruned_omitted += 1),
                AgentReport::Verify(r) => r
                    .checks
                    .iter_mut()
                    .rev()
                    .find(|c| !c.message.is_empty())
                    .map(|c| c.message.clear()),
                AgentReport::Restore(_) => None,
            };
            if shrunk.is_none() {
                // Only the message is left to cut.
                match &mut report {
                    AgentReport::Backup(r) => truncate(&mut r.message, 256),
                    AgentReport::Verify(r) => {
                        truncate(&mut r.message, 256);
                        r.checks.truncate(10);
                    }
                    AgentReport::Restore(r) => truncate(&mut r.message, 256),
                }
                return serde_json::to_string(&report).unwrap_or_default();
            }
        }
    }

    /// Parses a termination message.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text.trim())
    }
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
