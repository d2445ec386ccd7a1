//! Observed state of a CronJobSpec.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::common::{Condition, LocalObjectRef, OpenAlert, Time};

/// Observed state of a CronJobSpec.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CronJobSpecStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions: `Ready` (spec accepted and CronJob in sync), `Healthy`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The owned batch/v1 CronJob, in the same namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_job_ref: Option<LocalObjectRef>,
    /// The job's health judged against its schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<CronHealth>,
    /// When a run was last scheduled (created as a Job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<Time>,
    /// When a run last completed successfully; the dead-man's switch counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_time: Option<Time>,
    /// When a run last failed (Kubernetes CronJobs do not keep this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_time: Option<Time>,
    /// The most recent run, finished or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<RunRecord>,
    /// When the schedule next fires (in UTC; `check` previews it in the job's time zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run: Option<Time>,
    /// Failed runs since the last success.
    #[serde(default)]
    pub consecutive_failures: u32,
    /// The last `watchkeeper.dev/run-now` token a Job was created for; a token equal to this one
    /// creates nothing, which makes run-now idempotent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_now_token: Option<String>,
    /// Alerts firing for this job (kept here so a restarted operator does not re-send them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open_alerts: Vec<OpenAlert>,
}

/// The health of a scheduled job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CronHealth {
    /// Runs start on time and the last one succeeded.
    Healthy,
    /// A due run has not started within `monitoring.lateAfter` (or the CronJob controller gave
    /// up after too many missed starts).
    Late,
    /// At least `monitoring.failureThreshold` consecutive runs failed.
    Failing,
    /// `spec.suspend` is true, or an open maintenance window suspends the job.
    Suspended,
    /// No run succeeded within the dead-man's switch.
    Missed,
    /// Not judged yet (new object, or no run due yet).
    Unknown,
}

/// One run of the job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// Outcome so far.
    pub result: RunResult,
    /// Name of the Job (or, in embedded mode, of the in-process run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// Whether the schedule or a run-now request started it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<RunTrigger>,
    /// When the run started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// How long it took (unset while running), e.g. `1m12s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// HTTP status of the last attempt, for HTTP triggers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// Short result: the trigger's termination message or the Job's failure reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Outcome of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RunResult {
    /// The Job (or in-process run) has not finished yet.
    Running,
    /// Finished successfully (for HTTP triggers: an expected status within the retries).
    Succeeded,
    /// Finished unsuccessfully, hit its active deadline, or exhausted its retries.
    Failed,
}

/// What started a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RunTrigger {
    /// The cron schedule came due.
    Schedule,
    /// A `watchkeeper.dev/run-now` annotation asked for it.
    RunNow,
}
