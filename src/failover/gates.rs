//! The gates every start passes, as pure functions of the plan, the persisted record, what is
//! observed now, and the time. Each refusal carries a machine reason (CamelCase, used as the
//! condition and Event reason) and a message for people.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::probe::health::Health;

use super::plan::{PlanPolicy, RegionPolicy};
use super::record::{AttemptRecord, FailoverRecord};

/// Why something was not done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RefusalReason {
    /// The plan is suspended: no automatic trigger, no drill.
    Suspended,
    /// A maintenance window covering the plan is open: no automatic trigger.
    MaintenanceWindow,
    /// The previous attempt ended less than the cooldown ago: no automatic trigger.
    Cooldown,
    /// The primary is down but the secondary is not Healthy, so moving would not help.
    SecondaryNotHealthy,
    /// The plan requires a person's approval of this attempt.
    ApprovalRequired,
    /// The newest verified backup is older than the RPO; an approval accepts the data loss.
    StaleBackup,
    /// No verified backup is known at all; an approval accepts the risk.
    NoVerifiedBackup,
    /// An attempt is running; a trigger does not start a second one.
    AttemptInProgress,
    /// The secondary is already active; fail back first.
    AlreadyFailedOver,
    /// Failback was asked while the primary is active.
    NotFailedOver,
    /// Failback was asked but the plan has no failback steps.
    NoFailbackProcedure,
    /// A drill was due while the plan is not in Standby.
    NotInStandby,
}

impl RefusalReason {
    /// The reason as written in conditions and Events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Suspended => "Suspended",
            Self::MaintenanceWindow => "MaintenanceWindow",
            Self::Cooldown => "Cooldown",
            Self::SecondaryNotHealthy => "SecondaryNotHealthy",
            Self::ApprovalRequired => "ApprovalRequired",
            Self::StaleBackup => "StaleBackup",
            Self::NoVerifiedBackup => "NoVerifiedBackup",
            Self::AttemptInProgress => "AttemptInProgress",
            Self::AlreadyFailedOver => "AlreadyFailedOver",
            Self::NotFailedOver => "NotFailedOver",
            Self::NoFailbackProcedure => "NoFailbackProcedure",
            Self::NotInStandby => "NotInStandby",
        }
    }
}

impl std::fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal: machine reason plus a sentence naming what blocked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refusal {
    /// CamelCase reason.
    pub reason: RefusalReason,
    /// What blocked, naming the objects involved.
    pub message: String,
}

impl Refusal {
    fn new(reason: RefusalReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// The health of one HealthMonitor as last reported.
#[derive(Clone, Debug, PartialEq)]
pub struct MonitorObservation {
    /// The HealthMonitor's name.
    pub name: String,
    /// Its health now.
    pub health: Health,
    /// Since when it has had this health, when known (status `healthSince`).
    pub since: Option<DateTime<Utc>>,
}

/// The backup the backup gate judges.
#[derive(Clone, Debug, PartialEq)]
pub struct BackupObservation {
    /// The BackupPolicy's name.
    pub policy: String,
    /// When the newest verified backup was taken; `None` when there is none.
    pub newest_verified: Option<DateTime<Utc>>,
    /// The policy's recovery point objective.
    pub rpo: Duration,
}

/// A scheduled (or manually requested) drill occurrence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrillRequest {
    /// Identifies the occurrence (e.g. its scheduled time); each is run at most once.
    pub token: String,
    /// Run steps in dry-run mode.
    pub dry_run: bool,
}

/// Everything observed now that the gates depend on. The controller fills it from the cluster
/// (monitor statuses, open MaintenanceWindows, the BackupPolicy's status, annotations); the
/// embedded mode from its own runtime.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observations {
    /// Health of the monitors the plan names; a monitor missing here counts as Unknown.
    pub monitors: Vec<MonitorObservation>,
    /// Names of the open maintenance windows that block automatic failover of this plan.
    pub maintenance_windows: Vec<String>,
    /// The backup gate's input; `None` while the BackupPolicy's status is not known.
    pub backup: Option<BackupObservation>,
    /// The failover token set by a person (annotation), if any.
    pub failover_token: Option<String>,
    /// The failback token set by a person, if any.
    pub failback_token: Option<String>,
    /// The attempt id a person approved, if any.
    pub approval: Option<String>,
    /// A drill that is due, if any.
    pub drill: Option<DrillRequest>,
}

impl Observations {
    fn health(&self, monitor: &str) -> (Health, Option<DateTime<Utc>>) {
        self.monitors
            .iter()
            .find(|m| m.name == monitor)
            .map_or((Health::Unknown, None), |m| (m.health, m.since))
    }
}

/// Whether a health counts as "down" for the trigger.
pub fn is_down(health: Health) -> bool {
    matches!(health, Health::Critical | Health::Down)
}

/// The quorum actually applied: the configured one clamped to 1..=monitors, all when unset.
pub fn effective_quorum(region: &RegionPolicy, quorum: Option<u32>) -> usize {
    let all = region.monitors.len().max(1);
    quorum.map_or(all, |q| (q as usize).clamp(1, all))
}

/// Since when the primary has been down by quorum, or `None` when fewer than the quorum of
/// its monitors are Critical or Down. The time is the moment the quorum was reached (the
/// quorum-th earliest `since` of the down monitors), taken over from `previous` when the
/// record already knew it; `now` when the monitors do not say.
pub fn primary_down_since(
    plan: &PlanPolicy,
    obs: &Observations,
    previous: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let quorum = effective_quorum(&plan.primary, plan.trigger.quorum);
    let mut down: Vec<DateTime<Utc>> = plan
        .primary
        .monitors
        .iter()
        .filter_map(|name| {
            let (health, since) = obs.health(name);
            is_down(health).then(|| since.unwrap_or(now).min(now))
        })
        .collect();
    if down.len() < quorum {
        return None;
    }
    down.sort();
    Some(previous.unwrap_or(down[quorum - 1]))
}

/// The secondary must be Healthy: its main monitor and, with a quorum, as many monitors as
/// the quorum asks of the primary.
pub fn secondary_gate(plan: &PlanPolicy, obs: &Observations) -> Result<(), Refusal> {
    let needed = effective_quorum(&plan.secondary, plan.trigger.quorum);
    let main = plan.secondary.monitors.first();
    let healthy: Vec<&String> = plan
        .secondary
        .monitors
        .iter()
        .filter(|m| obs.health(m).0 == Health::Healthy)
        .collect();
    let main_healthy = main.is_some_and(|m| healthy.contains(&m));
    if main_healthy && healthy.len() >= needed {
        return Ok(());
    }
    let states: Vec<String> = plan
        .secondary
        .monitors
        .iter()
        .map(|m| format!("{m} {:?}", obs.health(m).0))
        .collect();
    Err(Refusal::new(
        RefusalReason::SecondaryNotHealthy,
        format!(
            "secondary region {} is not Healthy ({}); failing over would not restore service",
            plan.secondary.name,
            states.join(", ")
        ),
    ))
}

/// No automatic trigger while a maintenance window covering the plan is open.
pub fn maintenance_gate(obs: &Observations) -> Result<(), Refusal> {
    if obs.maintenance_windows.is_empty() {
        return Ok(());
    }
    Err(Refusal::new(
        RefusalReason::MaintenanceWindow,
        format!(
            "maintenance window {} is open; automatic failover is blocked until it closes (a manual trigger still works)",
            obs.maintenance_windows.join(", ")
        ),
    ))
}

/// No automatic trigger before `cooldown_until`.
pub fn cooldown_gate(record: &FailoverRecord, now: DateTime<Utc>) -> Result<(), Refusal> {
    match record.cooldown_until {
        Some(until) if now < until => Err(Refusal::new(
            RefusalReason::Cooldown,
            format!(
                "the last attempt ended recently; no automatic trigger before {} (a manual trigger still works)",
                until.to_rfc3339()
            ),
        )),
        _ => Ok(()),
    }
}

/// The newest verified backup must be within the RPO, unless the plan accepts stale backups.
/// Applies to every failover start (automatic or manual); an approval of the attempt accepts
/// the data loss.
pub fn backup_gate(
    plan: &PlanPolicy,
    obs: &Observations,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    if !plan.trigger.backup_gate || plan.trigger.allow_stale_backup {
        return Ok(());
    }
    let Some(backup) = &obs.backup else {
        return Err(Refusal::new(
            RefusalReason::NoVerifiedBackup,
            "the backup policy's status is not known yet, so the age of the newest verified backup cannot be checked; approve the attempt to accept the risk",
        ));
    };
    let Some(taken) = backup.newest_verified else {
        return Err(Refusal::new(
            RefusalReason::NoVerifiedBackup,
            format!(
                "BackupPolicy {} has no verified backup; approve the attempt to accept possible data loss",
                backup.policy
            ),
        ));
    };
    let age = (now - taken).to_std().unwrap_or(Duration::ZERO);
    if age <= backup.rpo {
        return Ok(());
    }
    Err(Refusal::new(
        RefusalReason::StaleBackup,
        format!(
            "the newest verified backup of BackupPolicy {} is {}s old, older than its RPO of {}s; approve the attempt to accept the data loss",
            backup.policy,
            age.as_secs(),
            backup.rpo.as_secs()
        ),
    ))
}

/// What the automatic trigger says now.
#[derive(Clone, Debug, PartialEq)]
pub enum AutomaticGate {
    /// The plan is manual, or the primary is not down by quorum: nothing to do.
    NotWanted,
    /// The primary is down but the dwell time has not passed; look again at `until`.
    Dwelling {
        /// When the dwell time is over.
        until: DateTime<Utc>,
    },
    /// The trigger would fire but a gate refuses; look again at `retry_at` when known.
    Refused {
        /// Why.
        refusal: Refusal,
        /// When the refusing gate may open by itself (cooldown end).
        retry_at: Option<DateTime<Utc>>,
    },
    /// Start an attempt.
    Fire {
        /// Why, for the attempt's `reason`.
        reason: String,
    },
}

/// The automatic trigger: primary down by quorum for the dwell time, secondary Healthy, not
/// suspended, no maintenance window open, not in cooldown. `down_since` is the value of
/// [`primary_down_since`].
pub fn automatic_gate(
    plan: &PlanPolicy,
    record: &FailoverRecord,
    obs: &Observations,
    down_since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> AutomaticGate {
    let Some(since) = down_since.filter(|_| plan.trigger.automatic) else {
        return AutomaticGate::NotWanted;
    };
    let dwell = chrono::Duration::from_std(plan.trigger.dwell).unwrap_or(chrono::Duration::MAX);
    let until = since
        .checked_add_signed(dwell)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    if now < until {
        return AutomaticGate::Dwelling { until };
    }
    if plan.trigger.suspended {
        return AutomaticGate::Refused {
            refusal: Refusal::new(
                RefusalReason::Suspended,
                "the plan is suspended; automatic failover is off (a manual trigger still works)",
            ),
            retry_at: None,
        };
    }
    if let Err(refusal) = maintenance_gate(obs) {
        return AutomaticGate::Refused {
            refusal,
            retry_at: None,
        };
    }
    if let Err(refusal) = cooldown_gate(record, now) {
        return AutomaticGate::Refused {
            refusal,
            retry_at: record.cooldown_until,
        };
    }
    if let Err(refusal) = secondary_gate(plan, obs) {
        return AutomaticGate::Refused {
            refusal,
            retry_at: None,
        };
    }
    let quorum = effective_quorum(&plan.primary, plan.trigger.quorum);
    AutomaticGate::Fire {
        reason: format!(
            "{quorum} of {} primary monitor(s) of region {} Critical or Down since {} (dwell {}s); secondary {} Healthy",
            plan.primary.monitors.len(),
            plan.primary.name,
            since.to_rfc3339(),
            plan.trigger.dwell.as_secs(),
            plan.secondary.name
        ),
    }
}

/// The gates between an accepted failover trigger and its first step: the approval gate and
/// the backup gate. `Ok` when the attempt may run (approved by `obs.approval` naming it, or
/// nothing to approve); otherwise the first refusal, which an approval lifts.
pub fn approval_gate(
    plan: &PlanPolicy,
    attempt: &AttemptRecord,
    obs: &Observations,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    if attempt.approved || obs.approval.as_deref() == Some(attempt.id.as_str()) {
        return Ok(());
    }
    if plan.trigger.require_approval {
        return Err(Refusal::new(
            RefusalReason::ApprovalRequired,
            format!(
                "attempt {} waits for approval: set watchkeeper.dev/approve to {}",
                attempt.id, attempt.id
            ),
        ));
    }
    backup_gate(plan, obs, now)
}
