//! The persisted state of a plan: everything a restarted (or newly elected) process needs to
//! carry on exactly where the last one stopped. The controller keeps it in the FailoverPlan's
//! status (field names follow `FailoverPlanStatus`, so the conversion is one field at a time);
//! the embedded run mode keeps it in its local store.
//!
//! Invariant the state machine keeps: a step's try is recorded as started (phase `Running`,
//! `attempts = k`, no `retryAt`) *before* it is executed, and its outcome is recorded before
//! the next step starts. A record read after a crash therefore says exactly which try may have
//! been cut short, and the executor receives the same idempotency key again.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::gates::Refusal;

/// Most finished attempts kept in `history`, newest first.
pub const HISTORY_LIMIT: usize = 20;

/// Where the plan is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Phase {
    /// Primary active, nothing running.
    #[default]
    Standby,
    /// A trigger was accepted; the approval and backup gates come next.
    Triggered,
    /// Waiting for a person to approve the attempt (or accept a stale backup).
    AwaitingApproval,
    /// Failover steps are running.
    InProgress,
    /// Every failover step finished; the secondary is active.
    FailedOver,
    /// A step failed without continue-on-error; people take over.
    Failed,
    /// Failback steps are running.
    FailingBack,
}

/// What an attempt does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AttemptKind {
    /// Failover to the secondary.
    Failover,
    /// Failback to the primary.
    Failback,
    /// A rehearsal of the failover steps (dry run or against a test environment).
    Drill,
}

/// What started an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TriggerSource {
    /// The primary's monitors were down for the dwell time.
    Automatic,
    /// A token set by a person.
    Manual,
    /// The drill schedule.
    Schedule,
}

/// Progress of one step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StepPhase {
    /// Not started.
    #[default]
    Pending,
    /// A try is in flight, or the step waits for its next try (`retryAt`).
    Running,
    /// Finished successfully.
    Succeeded,
    /// Failed after its tries.
    Failed,
    /// Not run because an earlier step failed.
    Skipped,
}

/// How an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AttemptResult {
    /// Every step succeeded, or failed with continue-on-error.
    Succeeded,
    /// A step failed.
    Failed,
}

/// State of one step in an attempt.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    /// The step's name.
    pub name: String,
    /// Where it is.
    pub phase: StepPhase,
    /// Tries started so far (the try in flight included).
    #[serde(default)]
    pub attempts: u32,
    /// When the first try started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<DateTime<Utc>>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<DateTime<Utc>>,
    /// When the next try may start, after a failed one; unset while a try is in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<DateTime<Utc>>,
    /// Result or error of the last try, never containing secret values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl StepRecord {
    /// Whether the step no longer needs running.
    pub fn is_finished(&self) -> bool {
        matches!(
            self.phase,
            StepPhase::Succeeded | StepPhase::Failed | StepPhase::Skipped
        )
    }
}

/// The attempt in progress, or the last one until the next starts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptRecord {
    /// Unique id (see [`super::machine::attempt_id`]); part of every idempotency key and the
    /// value an approval names.
    pub id: String,
    /// Failover, Failback or Drill.
    pub kind: AttemptKind,
    /// What started it.
    pub trigger: TriggerSource,
    /// The token, for manual and scheduled starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Why it started, e.g. `primary monitors app-ohio Down for 5m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Steps run in dry-run mode: check everything, change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Whether the approval gate was passed.
    #[serde(default)]
    pub approved: bool,
    /// When the trigger was accepted; the RTO counts from here.
    pub start_time: DateTime<Utc>,
    /// When the last step finished (or failed the attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<DateTime<Utc>>,
    /// Set when the attempt is over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<AttemptResult>,
    /// Every step of the procedure, in order.
    #[serde(default)]
    pub steps: Vec<StepRecord>,
}

impl AttemptRecord {
    /// Whether the attempt still runs (or waits for approval).
    pub fn is_active(&self) -> bool {
        self.result.is_none()
    }
}

/// A finished attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptSummary {
    /// The attempt's id.
    pub id: String,
    /// Failover, Failback or Drill.
    pub kind: AttemptKind,
    /// What started it.
    pub trigger: TriggerSource,
    /// How it ended.
    pub result: AttemptResult,
    /// Whether it was a dry run.
    #[serde(default)]
    pub dry_run: bool,
    /// When it started.
    pub start_time: DateTime<Utc>,
    /// When it ended.
    pub end_time: DateTime<Utc>,
    /// Seconds from start to verified secondary (the last successful verify step, or the end
    /// when the procedure has none). Only for successful failovers and drills.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_seconds: Option<f64>,
    /// Failed step and error, or a summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The whole persisted state of one plan.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailoverRecord {
    /// Where the state machine is.
    #[serde(default)]
    pub phase: Phase,
    /// Name of the region serving now; the primary's when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_region: Option<String>,
    /// Since when the primary has been down by quorum; the dwell time counts from here, also
    /// across restarts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_down_since: Option<DateTime<Utc>>,
    /// The running (or last) attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_attempt: Option<AttemptRecord>,
    /// Attempts started so far; numbers the next attempt id.
    #[serde(default)]
    pub attempts_started: u64,
    /// Measured RTO of the last successful failover (drills excluded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rto_seconds: Option<f64>,
    /// The last finished drill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_drill: Option<AttemptSummary>,
    /// Finished attempts, newest first, at most [`HISTORY_LIMIT`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<AttemptSummary>,
    /// The manual failover token handled last (started an attempt or was refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_trigger_token: Option<String>,
    /// The failback token handled last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failback_token: Option<String>,
    /// The drill occurrence handled last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_drill_token: Option<String>,
    /// No automatic trigger before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_until: Option<DateTime<Utc>>,
    /// Why the last trigger (or approval) was refused; cleared once it is allowed. The
    /// controller shows it as `TriggerAllowed=False`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<Refusal>,
}

impl FailoverRecord {
    /// The attempt that still runs, if any: no result yet and not in the history. The history
    /// check keeps a record read back from a status without the attempt's `result` (the API's
    /// `Attempt` has none) from running a finished attempt's end again.
    pub fn active_attempt(&self) -> Option<&AttemptRecord> {
        self.current_attempt
            .as_ref()
            .filter(|a| a.is_active() && !self.history.iter().any(|h| h.id == a.id))
    }
}
