//! MaintenanceWindow: planned downtime on a calendar that the rest of watchkeeper respects.
//!
//! The spec lives here, the status in [`status`], the semantic rules in `validate`.

use k8s_openapi::api::batch::v1::JobTemplateSpec;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::backup_policy::default_time_zone;
use super::common::{
    AlertingSpec, ConfigMapValue, DNS_LABEL_PATTERN, Duration, LOCAL_DATE_TIME_PATTERN,
    LabelSelector, PostgresConnection, Severity, WorkloadRef,
};

pub mod status;
pub mod validate;

#[cfg(test)]
mod schema_tests;

pub use status::*;

/// Planned downtime: a calendar of windows (RFC 5545 RRULE, cron plus duration, or one-off) in a
/// time zone, and what happens while a window is open — alerts suppressed, statistics paused,
/// jobs and backups held, failover blocked, a maintenance flag set and restored, workloads
/// scaled — plus tasks run at opening and notices sent ahead.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "watchkeeper.dev",
    version = "v1alpha1",
    kind = "MaintenanceWindow",
    namespaced,
    status = "MaintenanceWindowStatus",
    shortname = "mw",
    category = "watchkeeper",
    doc = "MaintenanceWindow declares planned downtime on a calendar (RFC 5545 RRULE, cron plus duration, or a one-off emergency window) and what the rest of watchkeeper does while it is open: suppress alerts, exclude the time from statistics, suspend jobs, pause backups, block automatic failover, set a maintenance flag in a ConfigMap and restore it exactly, scale workloads, run maintenance tasks, and send notices ahead of time.",
    printcolumn = r#"{"name":"Schedule","type":"string","jsonPath":".status.schedule"}"#,
    printcolumn = r#"{"name":"Open","type":"boolean","jsonPath":".status.open"}"#,
    printcolumn = r#"{"name":"Next Start","type":"date","jsonPath":".status.nextWindows[0].start"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.tasks) || self.tasks.all(s, self.tasks.exists_one(t, t.name == s.name))",
    "message": "task names must be unique (task results are kept by name)",
    "fieldPath": ".tasks"
}]))]
pub struct MaintenanceWindowSpec {
    /// What the maintenance is for, as people read it in notices and calendar feeds, e.g.
    /// `Monthly database maintenance (VACUUM, REINDEX); read-only for 30-60 minutes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,
    /// IANA time zone the schedule's wall-clock times are in, e.g. `UTC` or `Europe/Berlin`.
    /// Windows stay at the same local time across daylight saving changes.
    #[serde(default = "default_time_zone")]
    #[schemars(length(min = 1, max = 64))]
    pub time_zone: String,
    /// When windows open and close. Exactly one form is set.
    pub schedule: WindowScheduleSpec,
    /// Which watchkeeper resources in this namespace the effects apply to (HealthMonitors,
    /// CronJobSpecs, BackupPolicies, FailoverPlans), by their labels. Unset selects all of
    /// them; an empty selector (`{}`) does too. ConfigMaps and workloads named in `effects` are
    /// affected whatever their labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// What changes while a window is open. Every effect is undone when it closes.
    #[serde(default)]
    pub effects: Effects,
    /// Work run in order when a window opens (once per window, also across operator restarts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub tasks: Vec<MaintenanceTask>,
    /// What happens when a task fails; `AlertAndKeepOpen` when unset.
    #[serde(default)]
    pub failure_policy: FailurePolicy,
    /// Announcements before, at opening and at closing of each window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notices: Option<Notices>,
    /// Cancels upcoming windows without deleting the resource; an open window closes and its
    /// effects are restored.
    #[serde(default)]
    pub suspend: bool,
}

/// The three ways to write a maintenance calendar. Exactly one is set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "[has(self.rrule), has(self.cron), has(self.oneOff)].filter(x, x).size() == 1",
    "message": "exactly one of rrule, cron or oneOff must be set"
}]))]
pub struct WindowScheduleSpec {
    /// Recurring windows from an RFC 5545 recurrence rule, e.g. the first Tuesday of every
    /// month at 02:00 for two hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rrule: Option<RecurringWindow>,
    /// Recurring windows starting at each firing of a cron expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<CronWindow>,
    /// A single window with fixed start and end: emergency maintenance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_off: Option<OneOffWindow>,
}

/// Windows at the occurrences of an RFC 5545 recurrence rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecurringWindow {
    /// The RRULE value without DTSTART, e.g. `FREQ=MONTHLY;BYDAY=1TU` (first Tuesday monthly)
    /// or `FREQ=MONTHLY;INTERVAL=3;BYDAY=1SU` (first Sunday quarterly).
    #[schemars(
        length(min = 1, max = 512),
        regex(pattern = r"^(RRULE:)?FREQ=[A-Z0-9=;,:+-]+$")
    )]
    pub rule: String,
    /// First occurrence (RFC 5545 DTSTART) as a local date-time in `timeZone`, e.g.
    /// `2026-01-06T02:00:00`. Its time of day is the windows' start time; the rule counts from
    /// it. Required: a rule alone does not say when it starts.
    #[schemars(regex(pattern = LOCAL_DATE_TIME_PATTERN))]
    pub start: String,
    /// How long each window stays open, e.g. `2h`. Shorter than the time between occurrences.
    pub duration: Duration,
    /// Occurrences that are skipped (RFC 5545 EXDATE), as local date-times like `start`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 100),
        inner(regex(pattern = LOCAL_DATE_TIME_PATTERN))
    )]
    pub exdates: Vec<String>,
}

/// Windows starting at each firing of a cron expression.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CronWindow {
    /// 5-field cron expression in `timeZone`, e.g. `0 2 * * 6` (Saturdays 02:00).
    #[schemars(length(min = 1, max = 128))]
    pub expression: String,
    /// How long each window stays open. Shorter than the time between firings.
    pub duration: Duration,
}

/// One window with a fixed start and end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "self.end > self.start",
    "message": "end must be after start",
    "fieldPath": ".end"
}]))]
pub struct OneOffWindow {
    /// When the window opens, RFC 3339 with offset, e.g. `2026-03-14T22:00:00Z`.
    #[schemars(length(max = 64), extend("format" = "date-time"))]
    pub start: String,
    /// When it closes, RFC 3339 with offset; after `start`.
    #[schemars(length(max = 64), extend("format" = "date-time"))]
    pub end: String,
}

/// What changes while a window is open. Each effect is optional and undone at closing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Effects {
    /// Selected HealthMonitors report `Suppressed` and send nothing; at closing they are
    /// re-evaluated and one summary is sent, plus any alert still firing.
    #[serde(default)]
    pub suppress_alerts: bool,
    /// Window time is left out of selected HealthMonitors' uptime and error-rate statistics,
    /// so planned downtime does not burn the SLO.
    #[serde(default)]
    pub exclude_from_statistics: bool,
    /// Selected CronJobSpecs are suspended and resumed at closing, without a burst of missed
    /// runs and without late or dead-man's-switch alerts for runs the window skipped.
    #[serde(default)]
    pub suspend_cron_jobs: bool,
    /// Selected BackupPolicies take no scheduled backups or verifications while open.
    #[serde(default)]
    pub pause_backups: bool,
    /// Take a backup with each selected BackupPolicy just before the window opens (before
    /// migrations or upgrades), independent of `pauseBackups`.
    #[serde(default)]
    pub backup_before_open: bool,
    /// Selected FailoverPlans do not trigger automatically while open (planned downtime looks
    /// like an outage); manual failover still works.
    #[serde(default)]
    pub block_failover: bool,
    /// ConfigMap keys set while open, e.g. a maintenance or read-only mode flag. The previous
    /// value, or the key's absence, is recorded in status and restored exactly at closing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub config_map_set: Vec<ConfigMapValue>,
    /// Workloads scaled while open; previous replica counts are recorded and restored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub scale: Vec<ScaleEffect>,
}

/// Scale one workload while the window is open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaleEffect {
    /// The Deployment or StatefulSet.
    pub workload_ref: WorkloadRef,
    /// Replicas while open, e.g. 0 for workers that must not write during maintenance.
    #[schemars(range(min = 0))]
    pub replicas: i32,
}

/// One piece of work run when a window opens. Exactly one of `sql` and `jobTemplate` is set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.sql) != has(self.jobTemplate)",
    "message": "exactly one of sql or jobTemplate must be set"
}]))]
pub struct MaintenanceTask {
    /// Name shown in status, unique in the window, e.g. `vacuum-analyze`.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = DNS_LABEL_PATTERN)
    )]
    pub name: String,
    /// SQL statements against a database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<SqlTask>,
    /// A Job run from this template (same shape as a CronJob's `jobTemplate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::k8s_schema::job_template")]
    pub job_template: Option<JobTemplateSpec>,
    /// Upper bound for the whole task; it fails when exceeded. Unset means until the window
    /// closes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

/// SQL statements run one by one, each in its own transaction (autocommit), so statements
/// that cannot run inside a transaction block (`VACUUM`, `REINDEX DATABASE`) work.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SqlTask {
    /// The database; credentials only by Secret reference.
    pub connection: PostgresConnection,
    /// Statements in order, e.g. `VACUUM ANALYZE`. The first failure stops the task.
    #[schemars(length(min = 1, max = 50), inner(length(min = 1, max = 65536)))]
    pub statements: Vec<String>,
    /// PostgreSQL `statement_timeout` for each statement, e.g. `30m`. Unset means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement_timeout: Option<Duration>,
}

/// What a failed task means for the window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum FailurePolicy {
    /// Alert, skip the remaining tasks and keep the window open until its scheduled end, so
    /// people can finish by hand.
    #[default]
    AlertAndKeepOpen,
    /// Alert, close the window at once and restore every effect.
    CloseEarlyAndRestore,
}

/// Announcements of each window through alert channels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Notices {
    /// How long before each window a notice goes out, e.g. `[7d]` monthly or `[14d, 1d]`
    /// quarterly. Each is sent once per window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub advance: Vec<Duration>,
    /// Send a notice when the window opens.
    #[serde(default = "default_true")]
    pub at_open: bool,
    /// Send a notice when the window closes, with the task results.
    #[serde(default = "default_true")]
    pub at_close: bool,
    /// Severity the notices are routed with; `P3` (informational) when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// Where notices go; also receives task failures.
    pub alerting: AlertingSpec,
}

fn default_true() -> bool {
    true
}

super::impl_has_conditions!(MaintenanceWindow);
