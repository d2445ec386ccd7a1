//! FailoverPlan: a recovery procedure (regional failover, provider switch, database restore)
//! run as a crash-safe state machine with gates, drills and a manual failback.
//!
//! The top of the spec lives here, the steps in [`steps`], the status in [`status`], the
//! semantic rules in `validate`.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::backup_policy::default_time_zone;
use super::common::{
    AlertingSpec, DNS_LABEL_PATTERN, Duration, LOCAL_DATE_TIME_PATTERN, LocalObjectRef,
};

pub mod status;
pub mod steps;
mod validate;

#[cfg(test)]
mod schema_tests;

pub use status::*;
pub use steps::*;

/// Annotation that triggers a failover by hand: `watchkeeper.dev/failover: <token>`. Each new
/// token starts at most one attempt (the last handled token is `status.lastTriggerToken`), so
/// re-applying a manifest never fails over twice.
pub const FAILOVER_ANNOTATION: &str = "watchkeeper.dev/failover";
/// Annotation a person sets to let a gated attempt proceed: `watchkeeper.dev/approve:
/// <attempt id>`. It approves only that attempt (and a stale backup, when the gate asked).
pub const APPROVE_ANNOTATION: &str = "watchkeeper.dev/approve";
/// Annotation that starts the failback procedure: `watchkeeper.dev/failback: <token>`.
/// Failback is never automatic.
pub const FAILBACK_ANNOTATION: &str = "watchkeeper.dev/failback";

/// A recovery procedure run as a crash-safe state machine: ordered steps with timeouts and
/// retries, gated triggers, scheduled drills, and a manual failback.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "watchkeeper.dev",
    version = "v1alpha1",
    kind = "FailoverPlan",
    namespaced,
    status = "FailoverPlanStatus",
    shortname = "fp",
    category = "watchkeeper",
    doc = "FailoverPlan turns a disaster-recovery runbook into a crash-safe state machine: when the primary region's HealthMonitor is down for long enough (or on a manual trigger), and the gates allow it (approval, cooldown, maintenance windows, a recent verified backup), it runs ordered steps — fence, restore, SQL, Kubernetes scale and patch, DNS switch, HTTP calls, verify, notify — resuming after an operator restart without repeating a finished step. Failback is a separate manual procedure; drills measure the recovery time.",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Active Region","type":"string","jsonPath":".status.activeRegion"}"#,
    printcolumn = r#"{"name":"Last Drill RTO","type":"number","jsonPath":".status.lastDrill.rtoSeconds","description":"Seconds from start to verified secondary in the last drill"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "self.secondary.name != self.primary.name",
        "message": "secondary region must differ from primary",
        "fieldPath": ".secondary.name"
    },
    {
        "rule": "!has(self.trigger) || !has(self.trigger.mode) || self.trigger.mode != 'Automatic' || self.secondary.healthMonitorRef.name != self.primary.healthMonitorRef.name",
        "message": "an automatic trigger needs the primary down while the secondary is healthy, so each region needs its own HealthMonitor",
        "fieldPath": ".secondary.healthMonitorRef"
    },
    {
        "rule": "self.steps.all(s, self.steps.exists_one(t, t.name == s.name))",
        "message": "step names must be unique (status and idempotency keys use them)",
        "fieldPath": ".steps"
    }
]))]
pub struct FailoverPlanSpec {
    /// The region serving traffic normally, and the monitors that judge it.
    pub primary: Region,
    /// The region (or mode: a previous release, a no-cache mode) taking over, and the monitors
    /// that judge it. Its name must differ from `primary`'s; with an automatic trigger its
    /// HealthMonitor must too.
    pub secondary: Region,
    /// When the plan starts on its own, and the gates every start passes.
    #[serde(default)]
    pub trigger: Trigger,
    /// The procedure, run in order. Each step is run at most once per attempt, also across
    /// operator restarts.
    #[schemars(length(min = 1, max = 50))]
    pub steps: Vec<Step>,
    /// The way back to the primary, started only by hand (`watchkeeper.dev/failback`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failback: Option<Failback>,
    /// Scheduled rehearsals that measure the recovery time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drills: Option<Drills>,
    /// Recovery objectives; attempts and drills slower than `rto` alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objectives: Option<FailoverObjectives>,
    /// Channels for `notify` steps, refusals, failures and slow drills.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerting: Option<AlertingSpec>,
    /// Stops automatic triggers and drills; a manual trigger still works, and an attempt in
    /// progress continues.
    #[serde(default)]
    pub suspend: bool,
}

/// One region (or provider) and the HealthMonitors that judge whether it serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Region {
    /// Region name as people say it, e.g. `us-east-2` (Ohio) or `us-west-1`; shown in status.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = DNS_LABEL_PATTERN)
    )]
    pub name: String,
    /// The HealthMonitor whose health is this region's health.
    pub health_monitor_ref: LocalObjectRef,
    /// More HealthMonitors for a quorum (e.g. probes of the same endpoint from elsewhere), so
    /// one flaky probe path does not move production. See `trigger.quorum`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub extra_monitors: Vec<LocalObjectRef>,
}

/// How a failover starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TriggerMode {
    /// Starts when the primary has been Critical or Down for `after` (by quorum) while the
    /// secondary is Healthy, and on a manual trigger.
    Automatic,
    /// Starts only on the `watchkeeper.dev/failover` annotation.
    #[default]
    Manual,
}

/// Trigger and gates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Trigger {
    /// Automatic or Manual; `Manual` when unset.
    #[serde(default)]
    pub mode: TriggerMode,
    /// Dwell time: how long the primary must be Critical or Down before an automatic start.
    #[serde(default = "default_after")]
    pub after: Duration,
    /// How many of the primary's monitors (`healthMonitorRef` plus `extraMonitors`) must agree
    /// it is down. All of them when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 9))]
    pub quorum: Option<u32>,
    /// Least time between the end of one attempt and the automatic start of the next.
    #[serde(default = "default_cooldown")]
    pub cooldown: Duration,
    /// Wait for `watchkeeper.dev/approve: <attempt id>` before any step runs (phase
    /// AwaitingApproval).
    #[serde(default)]
    pub require_approval: bool,
    /// Proceed even when the newest verified backup of `backupPolicyRef` is older than its
    /// RPO. When false such an attempt waits for an approval that accepts the data loss.
    #[serde(default)]
    pub allow_stale_backup: bool,
    /// The BackupPolicy whose newest verified backup must be within its RPO before starting.
    /// Unset skips the backup gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_policy_ref: Option<LocalObjectRef>,
}

fn default_after() -> Duration {
    Duration::new("5m")
}

fn default_cooldown() -> Duration {
    Duration::new("1h")
}

impl Default for Trigger {
    fn default() -> Self {
        Self {
            mode: TriggerMode::default(),
            after: default_after(),
            quorum: None,
            cooldown: default_cooldown(),
            require_approval: false,
            allow_stale_backup: false,
            backup_policy_ref: None,
        }
    }
}

/// The manual way back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "self.steps.all(s, self.steps.exists_one(t, t.name == s.name))",
    "message": "step names must be unique (status and idempotency keys use them)",
    "fieldPath": ".steps"
}]))]
pub struct Failback {
    /// Steps run in order when `watchkeeper.dev/failback` is set after a completed failover.
    #[schemars(length(min = 1, max = 50))]
    pub steps: Vec<Step>,
}

/// How a drill runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DrillMode {
    /// Checks every gate, credential and target (Secrets exist, monitors resolve, the DNS
    /// record is found, endpoints answer) and changes nothing.
    #[default]
    DryRun,
    /// Runs every step for real. Only for plans whose targets are a test environment.
    Full,
}

/// Scheduled rehearsals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Drills {
    /// When drills run. Exactly one form is set.
    pub schedule: DrillSchedule,
    /// IANA time zone of the schedule.
    #[serde(default = "default_time_zone")]
    #[schemars(length(min = 1, max = 64))]
    pub time_zone: String,
    /// DryRun or Full; `DryRun` when unset.
    #[serde(default)]
    pub mode: DrillMode,
    /// A drill slower than this alerts; `objectives.rto` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_objective: Option<Duration>,
    /// Skip scheduled drills for now.
    #[serde(default)]
    pub suspend: bool,
}

/// A drill calendar: cron or RRULE.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.cron) != has(self.rrule)",
    "message": "exactly one of cron or rrule must be set"
}]))]
pub struct DrillSchedule {
    /// 5-field cron expression, e.g. `0 3 1 6,12 *` (03:00 on 1 June and 1 December).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub cron: Option<String>,
    /// RFC 5545 recurrence, e.g. the first Sunday of June and December.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rrule: Option<DrillRecurrence>,
}

/// An RRULE with its first occurrence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DrillRecurrence {
    /// The RRULE value without DTSTART, e.g. `FREQ=MONTHLY;BYMONTH=6,12;BYDAY=1SU`.
    #[schemars(
        length(min = 1, max = 512),
        regex(pattern = r"^(RRULE:)?FREQ=[A-Z0-9=;,:+-]+$")
    )]
    pub rule: String,
    /// First occurrence (DTSTART), a local date-time in the drills' time zone, e.g.
    /// `2026-06-07T03:00:00`.
    #[schemars(regex(pattern = LOCAL_DATE_TIME_PATTERN))]
    pub start: String,
    /// Occurrences skipped (EXDATE), local date-times.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 50),
        inner(regex(pattern = LOCAL_DATE_TIME_PATTERN))
    )]
    pub exdates: Vec<String>,
}

/// Recovery objectives of the plan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FailoverObjectives {
    /// Recovery time objective: from trigger to verified secondary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto: Option<Duration>,
}

super::impl_has_conditions!(FailoverPlan);
