//! Observed state of a FailoverPlan: the persisted state machine.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::common::Condition;

/// Most entries kept in `status.history`; older ones are dropped first.
pub const HISTORY_LIMIT: usize = 20;

/// Condition types a FailoverPlan reports.
pub mod condition {
    /// The spec is valid and every reference resolves.
    pub const READY: &str = "Ready";
    /// False with the reason when a trigger was refused (cooldown, maintenance window, stale
    /// backup, secondary not healthy).
    pub const TRIGGER_ALLOWED: &str = "TriggerAllowed";
    /// False when the last drill failed or exceeded the RTO objective.
    pub const DRILL_PASSED: &str = "DrillPassed";
}

/// Where the plan is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum FailoverPhase {
    /// Primary active, nothing running.
    #[default]
    Standby,
    /// A trigger was accepted; gates are being checked.
    Triggered,
    /// Waiting for `watchkeeper.dev/approve: <attempt id>`.
    AwaitingApproval,
    /// Steps are running.
    InProgress,
    /// Every step finished; the secondary is active.
    FailedOver,
    /// A step failed without `continueOnError`; people take over.
    Failed,
    /// The failback procedure is running.
    FailingBack,
}

/// What an attempt does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AttemptKind {
    /// Failover to the secondary.
    Failover,
    /// Failback to the primary.
    Failback,
    /// A scheduled or manual drill.
    Drill,
}

/// What started an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TriggerSource {
    /// The primary's monitors were down for the dwell time.
    Automatic,
    /// An annotation.
    Manual,
    /// The drill schedule.
    Schedule,
}

/// Progress of one step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum StepPhase {
    /// Not started.
    #[default]
    Pending,
    /// Running (or waiting for a retry).
    Running,
    /// Finished successfully.
    Succeeded,
    /// Failed after its retries.
    Failed,
    /// Not run (an earlier step failed, or a dry run).
    Skipped,
}

/// The attempt in progress (or the last one, until the next starts).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// Unique id; step executors use it with the step index as idempotency key, and
    /// approvals name it.
    pub id: String,
    /// Failover, Failback or Drill.
    pub kind: AttemptKind,
    /// What started it.
    pub trigger: TriggerSource,
    /// The annotation token, for manual starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Why it started, e.g. `primary monitor app-ohio Down for 5m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Whether it runs as a dry run.
    #[serde(default)]
    pub dry_run: bool,
    /// Whether the approval gate was passed.
    #[serde(default)]
    pub approved: bool,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// Every step, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepStatus>,
}

/// State of one step in an attempt.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepStatus {
    /// The step's name.
    pub name: String,
    /// Where it is.
    pub phase: StepPhase,
    /// Tries so far.
    #[serde(default)]
    pub attempts: u32,
    /// When the first try started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Time>,
    /// When the next try may start after a failed one; unset while a try is in flight. Without
    /// it a step waiting for a retry would look in flight after a restart and repeat its last
    /// try under the same idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<Time>,
    /// Result or error, never containing secret values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// How an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AttemptResult {
    /// Every step succeeded (or continued on error).
    Succeeded,
    /// A step failed.
    Failed,
    /// Refused by a gate or cancelled before any step ran.
    Aborted,
}

/// A finished attempt or drill.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Time>,
    /// Seconds from start to verified secondary (the measured RTO).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_seconds: Option<f64>,
    /// Failed step and error, or a summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Observed state of a FailoverPlan.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailoverPlanStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `TriggerAllowed`, `DrillPassed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Where the state machine is.
    #[serde(default)]
    pub phase: FailoverPhase,
    /// Name of the region serving now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_region: Option<String>,
    /// Since when the primary's monitors (by quorum) have been down; the dwell time counts
    /// from here, also across operator restarts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_down_since: Option<Time>,
    /// The running (or last) attempt with every step's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_attempt: Option<Attempt>,
    /// Attempts started so far; numbers the next attempt id so ids stay unique across
    /// restarts.
    #[serde(default)]
    pub attempts_started: u64,
    /// Measured RTO of the last failover (not drill), in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rto_seconds: Option<f64>,
    /// The last drill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_drill: Option<AttemptSummary>,
    /// Finished attempts and drills, newest first, at most 20.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub history: Vec<AttemptSummary>,
    /// The `watchkeeper.dev/failover` token handled last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_trigger_token: Option<String>,
    /// The `watchkeeper.dev/failback` token handled last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failback_token: Option<String>,
    /// The drill occurrence handled last; each occurrence runs at most once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_drill_token: Option<String>,
    /// No automatic trigger before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_until: Option<Time>,
}
