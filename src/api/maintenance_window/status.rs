//! Observed state of a MaintenanceWindow.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::common::Condition;

/// How many upcoming windows status lists.
pub const NEXT_WINDOWS: usize = 5;

/// Condition types a MaintenanceWindow reports.
pub mod condition {
    /// The spec is valid and the calendar computed.
    pub const READY: &str = "Ready";
    /// True while a window is open.
    pub const OPEN: &str = "Open";
    /// False when a task of the current or last window failed.
    pub const TASKS_SUCCEEDED: &str = "TasksSucceeded";
    /// False (a warning) when the selector picks no watchkeeper resource although the window
    /// has effects on selected resources.
    pub const SELECTED: &str = "Selected";
    /// False when a ConfigMap or workload effect could not be applied or restored.
    pub const EFFECTS_APPLIED: &str = "EffectsApplied";
}

/// Observed state of a MaintenanceWindow.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceWindowStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Open`, `TasksSucceeded`, `Selected`, `EffectsApplied`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The schedule in one line, e.g. `FREQ=MONTHLY;BYDAY=1TU at 02:00 for 2h (UTC)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Whether a window is open now (effects applied).
    #[serde(default)]
    pub open: bool,
    /// The open window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_window: Option<WindowPeriod>,
    /// The next windows (up to 5), overlapping occurrences merged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5))]
    pub next_windows: Vec<WindowPeriod>,
    /// The last window that closed, and whether it closed early.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_window: Option<ClosedWindow>,
    /// Notices sent for the current and upcoming windows, so none is sent twice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices_sent: Vec<NoticeRecord>,
    /// Effects in force, each with what it replaced, so closing (also after an operator
    /// restart, a selector change or deletion) restores exactly what was there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applied_effects: Vec<AppliedEffect>,
    /// Results of the current (or last) window's tasks; a task with a result for a window is
    /// not run again for it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub task_results: Vec<TaskResult>,
}

/// A window's start and end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WindowPeriod {
    /// When it opens.
    pub start: Time,
    /// When it closes.
    pub end: Time,
}

/// A window that has closed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClosedWindow {
    /// When it opened.
    pub start: Time,
    /// When it actually closed.
    pub end: Time,
    /// Whether it closed before its scheduled end (`CloseEarlyAndRestore`, suspend, deletion).
    #[serde(default)]
    pub closed_early: bool,
}

/// When a notice is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum NoticeKind {
    /// Ahead of the window (`notices.advance`).
    Advance,
    /// When it opened.
    Open,
    /// When it closed.
    Close,
}

/// One notice that went out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NoticeRecord {
    /// Start of the window it announced.
    pub window_start: Time,
    /// Advance, Open or Close.
    pub kind: NoticeKind,
    /// For advance notices, which `notices.advance` entry (e.g. `7d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advance: Option<String>,
    /// When it was sent.
    pub time: Time,
}

/// Kinds of effect a window applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum EffectKind {
    /// A HealthMonitor's alerts suppressed.
    SuppressAlerts,
    /// A HealthMonitor's statistics paused.
    ExcludeFromStatistics,
    /// A CronJobSpec suspended.
    SuspendCronJob,
    /// A BackupPolicy paused.
    PauseBackups,
    /// A FailoverPlan's automatic trigger blocked.
    BlockFailover,
    /// A ConfigMap key set.
    ConfigMapSet,
    /// A workload scaled.
    Scale,
}

/// One applied effect and the state it replaced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppliedEffect {
    /// What was done.
    pub kind: EffectKind,
    /// Kind of the affected object, e.g. `ConfigMap`, `Deployment`, `CronJobSpec`.
    pub target_kind: String,
    /// Name of the affected object in this namespace.
    pub target_name: String,
    /// For `ConfigMapSet`, the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// For `ConfigMapSet`, the value before the window (unset when the key was absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_value: Option<String>,
    /// For `ConfigMapSet`, true when the key did not exist before: closing removes it.
    #[serde(default)]
    pub previously_absent: bool,
    /// For `ConfigMapSet`, the value the window wrote; closing restores the previous value
    /// only while the key still holds this one (a person's later change wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// For `Scale`, the replica count before the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_replicas: Option<i32>,
    /// For `Scale`, the replica count the window set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// For `SuspendCronJob` and `PauseBackups`, whether the object was already suspended
    /// (then closing leaves it suspended).
    #[serde(default)]
    pub previously_suspended: bool,
    /// When it was applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_time: Option<Time>,
}

/// Progress of one task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TaskPhase {
    /// Waiting for earlier tasks.
    Pending,
    /// Started.
    Running,
    /// Finished without error.
    Succeeded,
    /// Failed; see the message and `failurePolicy`.
    Failed,
    /// Not run because an earlier task failed or the window closed.
    Skipped,
}

/// The result of one task in one window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskResult {
    /// The task's name.
    pub name: String,
    /// Start of the window it ran in.
    pub window_start: Time,
    /// Where it is.
    pub phase: TaskPhase,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Time>,
    /// For SQL tasks, how many statements completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statements_completed: Option<u32>,
    /// For Job tasks, the Job's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// Error or summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
