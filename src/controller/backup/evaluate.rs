//! From a folded status to the `RPOMet`, `Verified` and `RetentionApplied` conditions, the
//! alerts firing now, and the moment the verdict changes by itself (the newest backup ageing
//! past the RPO), when the reconciler must look again. Pure.
//!
//! `RPOMet` measures the age of the newest backup that counts:
//! - without `verification`: the newest successful backup;
//! - with `verification`, while the last verification succeeded (or none has run yet): the
//!   newest successful backup too. Its pipeline (same dump, same storage, checksum written
//!   while streaming) was just proven restorable, and a weekly verification with a daily
//!   backup and a 24h RPO (the guides' policy) must not miss the RPO six days a week;
//! - with `verification`, after a failed verification: only the newest *verified* backup
//!   (the last one a verification restored), since newer ones are not proven restorable.
//!
//! The message says which basis was used.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};

use super::fold::chrono_of;
use crate::alert::{Alert, Severity};
use crate::api::backup_policy::validate::human;
use crate::api::backup_policy::{
    BackupPolicySpec, BackupPolicyStatus, VerificationResult, condition,
};
use crate::controller::conditions::{ConditionStatus, DesiredCondition};

/// Alert key suffixes (the full key is `backuppolicy/<namespace>/<name>/<suffix>`).
pub const ALERT_BACKUP_FAILED: &str = "backup-failed";
/// The RPO is missed.
pub const ALERT_RPO_MISSED: &str = "rpo-missed";
/// The newest verification failed.
pub const ALERT_VERIFICATION_FAILED: &str = "verification-failed";

/// What the status means now.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// `RPOMet`, `Verified`, `RetentionApplied`.
    pub conditions: Vec<DesiredCondition>,
    /// Alerts firing now (absent ones are resolved by the alert engine).
    pub firing: Vec<Alert>,
    /// When `RPOMet` changes by itself if nothing else happens.
    pub next_change: Option<DateTime<Utc>>,
}

/// Identifies the policy in alerts.
#[derive(Clone, Debug)]
pub struct PolicyRef<'a> {
    /// Namespace.
    pub namespace: &'a str,
    /// Name.
    pub name: &'a str,
    /// `metadata.creationTimestamp`: a new policy has one RPO of grace for its first backup.
    pub created: Option<DateTime<Utc>>,
}

/// Evaluates `status` of a policy with `spec` at `now`.
pub fn evaluate(
    policy: &PolicyRef<'_>,
    spec: &BackupPolicySpec,
    status: &BackupPolicyStatus,
    now: DateTime<Utc>,
) -> Evaluation {
    let mut firing = Vec::new();
    let alert = |suffix: &str, severity, summary: String, details: String, since| Alert {
        key: format!("backuppolicy/{}/{}/{suffix}", policy.namespace, policy.name),
        severity,
        summary,
        details,
        labels: BTreeMap::from([
            ("namespace".to_string(), policy.namespace.to_string()),
            ("backuppolicy".to_string(), policy.name.to_string()),
            ("alertname".to_string(), alert_name(suffix).to_string()),
        ]),
        annotations: BTreeMap::new(),
        source: format!("BackupPolicy {}/{}", policy.namespace, policy.name),
        generator_url: None,
        starts_at: since,
    };

    if let Some(failure) = &status.last_failure {
        let since = failure.time.as_ref().map(chrono_of).unwrap_or(now);
        let message = failure.message.clone().unwrap_or_default();
        firing.push(alert(
            ALERT_BACKUP_FAILED,
            Severity::P2,
            format!("Backup of {}/{} failed", policy.namespace, policy.name),
            message,
            since,
        ));
    }

    let (rpo, next_change) = rpo_met(policy, spec, status, now);
    if rpo.status == ConditionStatus::False {
        let since = next_change_before(policy, spec, status).unwrap_or(now);
        firing.push(alert(
            ALERT_RPO_MISSED,
            Severity::P1,
            format!("RPO missed for {}/{}", policy.namespace, policy.name),
            rpo.message.clone(),
            since,
        ));
    }

    let verified = verified(spec, status);
    if verified.status == ConditionStatus::False {
        let since = status
            .last_verification
            .as_ref()
            .and_then(|v| v.time.as_ref())
            .map(chrono_of)
            .unwrap_or(now);
        firing.push(alert(
            ALERT_VERIFICATION_FAILED,
            Severity::P1,
            format!(
                "Restore verification failed for {}/{}",
                policy.namespace, policy.name
            ),
            verified.message.clone(),
            since,
        ));
    }

    Evaluation {
        conditions: vec![rpo, verified, retention_applied(status)],
        firing,
        next_change,
    }
}

fn alert_name(suffix: &str) -> &'static str {
    match suffix {
        ALERT_BACKUP_FAILED => "BackupFailed",
        ALERT_RPO_MISSED => "BackupRPOMissed",
        _ => "BackupVerificationFailed",
    }
}

/// The backup `RPOMet` measures, with a phrase naming it.
fn basis(spec: &BackupPolicySpec, status: &BackupPolicyStatus) -> Option<(DateTime<Utc>, String)> {
    let last = status.last_backup.as_ref().and_then(|b| {
        let at = chrono_of(b.completion_time.as_ref()?);
        Some((at, b.id.clone()))
    });
    if spec.verification.is_none() {
        return last.map(|(at, id)| {
            (
                at,
                format!("the newest successful backup {id} (verification is off)"),
            )
        });
    }
    let failed = status
        .last_verification
        .as_ref()
        .is_some_and(|v| v.result == VerificationResult::Failed);
    if failed {
        let verified = status.last_verified_backup.as_ref()?;
        let at = chrono_of(verified.completion_time.as_ref()?);
        let id = verified.id.clone().unwrap_or_default();
        return Some((
            at,
            format!(
                "the newest verified backup {id} (the last verification failed, so newer backups do not count)"
            ),
        ));
    }
    let verified_phrase = if status.last_verification.is_some() {
        "the last verification succeeded"
    } else {
        "no verification has run yet"
    };
    last.map(|(at, id)| {
        (
            at,
            format!("the newest successful backup {id} ({verified_phrase})"),
        )
    })
}

/// The RPO of a policy, if set and not zero.
pub fn rpo_duration(spec: &BackupPolicySpec) -> Option<StdDuration> {
    spec.objectives
        .as_ref()
        .and_then(|o| o.rpo.as_ref())
        .and_then(|d| d.parse().ok())
        .filter(|d| !d.is_zero())
}

/// When the RPO ran out (for an RPO alert's start): basis (or creation) plus the RPO.
fn next_change_before(
    policy: &PolicyRef<'_>,
    spec: &BackupPolicySpec,
    status: &BackupPolicyStatus,
) -> Option<DateTime<Utc>> {
    let rpo = chrono::Duration::from_std(rpo_duration(spec)?).ok()?;
    let start = basis(spec, status).map(|(at, _)| at).or(policy.created)?;
    Some(start + rpo)
}

fn rpo_met(
    policy: &PolicyRef<'_>,
    spec: &BackupPolicySpec,
    status: &BackupPolicyStatus,
    now: DateTime<Utc>,
) -> (DesiredCondition, Option<DateTime<Utc>>) {
    let condition = |status, reason: &str, message: String| {
        DesiredCondition::new(condition::RPO_MET, status, reason, message)
    };
    let Some(rpo) = rpo_duration(spec) else {
        return (
            condition(
                ConditionStatus::Unknown,
                "NoObjective",
                "spec.objectives.rpo is not set.".to_string(),
            ),
            None,
        );
    };
    let rpo_chrono = chrono::Duration::from_std(rpo).unwrap_or(chrono::Duration::MAX);
    let Some((at, phrase)) = basis(spec, status) else {
        let grace_end = policy.created.map(|c| c + rpo_chrono);
        if let Some(end) = grace_end
            && now < end
        {
            return (
                condition(
                    ConditionStatus::Unknown,
                    "NoBackupYet",
                    format!(
                        "No backup counts yet; the RPO {} is missed at {} unless one completes.",
                        human(rpo),
                        end.to_rfc3339()
                    ),
                ),
                Some(end),
            );
        }
        let reason = if spec.verification.is_some() && status.last_backup.is_some() {
            "NoVerifiedBackup"
        } else {
            "NoBackup"
        };
        let message = if reason == "NoVerifiedBackup" {
            format!(
                "The last verification failed and no backup has ever been verified; the RPO {} is missed.",
                human(rpo)
            )
        } else {
            format!(
                "No successful backup within the RPO {} of the policy's creation.",
                human(rpo)
            )
        };
        return (condition(ConditionStatus::False, reason, message), None);
    };
    let age = (now - at).to_std().unwrap_or_default();
    let deadline = at + rpo_chrono;
    if now < deadline {
        (
            condition(
                ConditionStatus::True,
                "WithinRPO",
                format!(
                    "{phrase} completed at {} ({} ago), within the RPO {}.",
                    at.to_rfc3339(),
                    human(StdDuration::from_secs(age.as_secs())),
                    human(rpo)
                ),
            ),
            Some(deadline),
        )
    } else {
        (
            condition(
                ConditionStatus::False,
                "RPOMissed",
                format!(
                    "{phrase} completed at {} ({} ago), older than the RPO {}.",
                    at.to_rfc3339(),
                    human(StdDuration::from_secs(age.as_secs())),
                    human(rpo)
                ),
            ),
            None,
        )
    }
}

fn verified(spec: &BackupPolicySpec, status: &BackupPolicyStatus) -> DesiredCondition {
    let condition = |status, reason: &str, message: String| {
        DesiredCondition::new(condition::VERIFIED, status, reason, message)
    };
    if spec.verification.is_none() {
        return condition(
            ConditionStatus::Unknown,
            "NotConfigured",
            "spec.verification is not set: backups are not test-restored.".to_string(),
        );
    }
    let Some(last) = &status.last_verification else {
        return condition(
            ConditionStatus::Unknown,
            "NotYetVerified",
            "No verification has finished yet.".to_string(),
        );
    };
    let at = last
        .time
        .as_ref()
        .map(|t| chrono_of(t).to_rfc3339())
        .unwrap_or_default();
    let backup = last.backup_id.as_deref().unwrap_or("(unknown)");
    let restore = last
        .restore_duration_seconds
        .map(|s| format!(" in {s:.1}s"))
        .unwrap_or_default();
    let note = last.message.as_deref().unwrap_or_default();
    match last.result {
        VerificationResult::Succeeded => condition(
            ConditionStatus::True,
            "Verified",
            format!(
                "Backup {backup} restored{restore} at {at}; {} check(s) passed. {note}",
                last.checks.len()
            ),
        ),
        VerificationResult::Failed => {
            let failed: Vec<&str> = last
                .checks
                .iter()
                .filter(|c| !c.passed)
                .map(|c| c.name.as_str())
                .collect();
            let checks = if failed.is_empty() {
                String::new()
            } else {
                format!(" Failed checks: {}.", failed.join(", "))
            };
            condition(
                ConditionStatus::False,
                "VerificationFailed",
                format!("Verification of backup {backup} at {at} failed: {note}{checks}"),
            )
        }
    }
}

fn retention_applied(status: &BackupPolicyStatus) -> DesiredCondition {
    let condition = |status, reason: &str, message: String| {
        DesiredCondition::new(condition::RETENTION_APPLIED, status, reason, message)
    };
    let Some(prune) = &status.last_prune else {
        return condition(
            ConditionStatus::Unknown,
            "NotYetPruned",
            "Retention runs after the first successful backup.".to_string(),
        );
    };
    let at = prune
        .time
        .as_ref()
        .map(|t| chrono_of(t).to_rfc3339())
        .unwrap_or_default();
    match &prune.message {
        Some(error) => condition(
            ConditionStatus::False,
            "PruneFailed",
            format!(
                "Pruning at {at} did not complete (kept {}, deleted {}): {error}",
                prune.kept, prune.deleted
            ),
        ),
        None => condition(
            ConditionStatus::True,
            "Pruned",
            format!(
                "Retention applied at {at}: kept {}, deleted {}.",
                prune.kept, prune.deleted
            ),
        ),
    }
}

#[cfg(test)]
mod tests;
