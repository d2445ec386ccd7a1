//! CronJobSpec: a scheduled job that is watched, not just fired.
//!
//! The operator reconciles each CronJobSpec into an owned `batch/v1` CronJob (so jobs keep running
//! while the operator is down) and watches the Jobs it spawns against the schedule: late starts,
//! consecutive failures and a dead-man's switch raise alerts.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::JobTemplateSpec;
use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{
    AlertingSpec, Duration, HttpHeader, HttpMethod, STATUS_CODE_PATTERN, SecretKeyRef, Severity,
};

use super::k8s_schema;
mod schedule_check;
mod status;
mod validate;

pub use status::*;

/// Annotation that asks for one immediate run, outside the schedule. Its value is a token of the
/// user's choice (a timestamp, a ticket id): each distinct token creates exactly one Job, however
/// often the object is re-applied or the operator restarts; the last token handled is recorded in
/// `status.lastRunNowToken`. Example: `kubectl annotate cjs web-crawl watchkeeper.dev/run-now=$(date +%s)`.
pub const RUN_NOW_ANNOTATION: &str = "watchkeeper.dev/run-now";

/// A scheduled job that is watched, not just fired: a cron schedule in a time zone, either an
/// HTTP call to the application's own cron endpoint or a full Job template, reconciled into an
/// owned batch/v1 CronJob, plus monitoring (late and failing runs, a dead-man's switch) with
/// alerts.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "watchkeeper.dev",
    version = "v1alpha1",
    kind = "CronJobSpec",
    namespaced,
    status = "CronJobSpecStatus",
    shortname = "cjs",
    category = "watchkeeper",
    doc = "A scheduled job that is watched, not just fired: a cron schedule in a time zone, either an HTTP trigger (run by `watchkeeper agent trigger`) or a full Job template, reconciled into an owned batch/v1 CronJob, with schedule-aware monitoring (late, failing, dead-man's switch) and alerts.",
    printcolumn = r#"{"name":"Schedule","type":"string","jsonPath":".spec.schedule"}"#,
    printcolumn = r#"{"name":"Health","type":"string","jsonPath":".status.health"}"#,
    printcolumn = r#"{"name":"Last Success","type":"date","jsonPath":".status.lastSuccessfulTime"}"#,
    printcolumn = r#"{"name":"Next Run","type":"string","jsonPath":".status.nextRun"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "has(self.httpTrigger) != has(self.jobTemplate)",
        "message": "exactly one of httpTrigger or jobTemplate must be set",
        "fieldPath": ".httpTrigger"
    },
    {
        "rule": "!has(self.resources) || has(self.httpTrigger)",
        "message": "resources apply to the HTTP trigger container; set them inside jobTemplate instead",
        "fieldPath": ".resources"
    }
]))]
pub struct CronJobSpecSpec {
    /// When the job runs: a 5-field cron expression (minute hour day-of-month month day-of-week)
    /// as Kubernetes CronJobs accept it, or `@hourly`, `@daily`, `@weekly`, `@monthly`,
    /// `@yearly`. Evaluated in `timeZone`, so `0 2 * * *` means 02:00 local time.
    #[schemars(length(min = 1, max = 128))]
    pub schedule: String,
    /// IANA time zone the schedule is read in (`UTC`, `America/New_York`). Defaults to UTC
    /// rather than the node's zone, so the meaning of the schedule never depends on the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub time_zone: Option<String>,
    /// Run the job as an HTTP call to an endpoint of the application (the guides' cron routes),
    /// made by `watchkeeper agent trigger` in the operator's own image. Exactly one of
    /// `httpTrigger` and `jobTemplate` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_trigger: Option<HttpTrigger>,
    /// Run an arbitrary Job (any image, command and volumes): the template of the Jobs the
    /// CronJob creates. Exactly one of `httpTrigger` and `jobTemplate` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "k8s_schema::job_template")]
    pub job_template: Option<JobTemplateSpec>,
    /// What to do when a run is due while the previous one is still going. Defaults to Forbid
    /// (not Kubernetes' Allow) because the jobs the guides schedule — crawls, resets, cleanups —
    /// must not overlap.
    #[serde(default)]
    pub concurrency_policy: ConcurrencyPolicy,
    /// How late a run may still start when it missed its time (controller down, cluster busy);
    /// later runs are skipped and reported. At least 10s, since the CronJob controller only looks
    /// every 10 seconds. Unset means no deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_deadline: Option<Duration>,
    /// Longest a single run may take before Kubernetes stops it and marks it failed (the Job's
    /// `activeDeadlineSeconds`). Unset means no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline: Option<Duration>,
    /// Pod retries before a run counts as failed (the Job's `backoffLimit`). Defaults to 0 for
    /// HTTP triggers, which retry within the run (`httpTrigger.retries`), and to Kubernetes'
    /// default of 6 for job templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub backoff_limit: Option<i32>,
    /// Finished successful Jobs kept for inspection.
    #[serde(default = "default_successful_history")]
    #[schemars(range(min = 0, max = 100))]
    pub successful_jobs_history_limit: i32,
    /// Finished failed Jobs kept for inspection (their logs explain the failure).
    #[serde(default = "default_failed_history")]
    #[schemars(range(min = 0, max = 100))]
    pub failed_jobs_history_limit: i32,
    /// Stops scheduling new runs (running ones finish). Health becomes Suspended and no
    /// late/missed alerts fire; a maintenance window may also suspend the job while it is open.
    #[serde(default)]
    pub suspend: bool,
    /// Labels and annotations added to the owned CronJob (and copied to its Jobs), e.g. for cost
    /// allocation or a service mesh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_job_metadata: Option<ObjectMetaTemplate>,
    /// CPU and memory for the HTTP trigger container. Only with `httpTrigger`; a job template
    /// sets resources on its own containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "k8s_schema::resources")]
    pub resources: Option<ResourceRequirements>,
    /// How runs are watched and who hears about problems. Without it, status is still kept but
    /// nothing alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<CronMonitoring>,
}

fn default_successful_history() -> i32 {
    3
}

fn default_failed_history() -> i32 {
    1
}

/// What the CronJob does when a run is due while the previous run is still active.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConcurrencyPolicy {
    /// Start the new run anyway; runs may overlap.
    Allow,
    /// Skip the new run while the previous one is active.
    #[default]
    Forbid,
    /// Stop the active run and start the new one.
    Replace,
}

/// Labels and annotations for an owned object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMetaTemplate {
    /// Labels to add. Labels watchkeeper sets itself (`app.kubernetes.io/managed-by`, …) win.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations to add.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An HTTP call that is one run of the job. The run succeeds when a response with an expected
/// status arrives within the timeout, after at most `retries` further attempts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpTrigger {
    /// Absolute URL of the endpoint, e.g. `https://app.example.com/api/cron/web-crawl`.
    #[schemars(regex(pattern = r"^https?://[^\s/$.?#].[^\s]*$"), length(max = 2048))]
    pub url: String,
    /// HTTP method. Defaults to GET, what most hosted cron services send.
    #[serde(default)]
    pub method: HttpMethod,
    /// Extra request headers; credentials only through `valueFrom.secretKeyRef`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub headers: Vec<HttpHeader>,
    /// Secret key holding a token sent as `Authorization: Bearer <token>` (a cron secret the
    /// endpoint checks). Mounted into the trigger container as an environment variable, never
    /// passed as an argument nor logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_secret_ref: Option<SecretKeyRef>,
    /// Request body, e.g. a JSON document for a POST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub body: Option<String>,
    /// Status codes that mean success: codes (`200`), classes (`2xx`) or ranges (`200-299`).
    /// Defaults to `2xx`.
    #[serde(default = "default_expected_status")]
    #[schemars(length(min = 1, max = 16), inner(regex(pattern = STATUS_CODE_PATTERN)))]
    pub expected_status: Vec<String>,
    /// Longest one attempt may take, from connecting to the end of the response body.
    #[serde(default = "default_trigger_timeout")]
    pub timeout: Duration,
    /// Further attempts after a failed one (connection error, timeout or unexpected status).
    #[serde(default)]
    #[schemars(range(min = 0, max = 10))]
    pub retries: u32,
    /// Wait before the first retry; doubled for each further retry.
    #[serde(default = "default_backoff")]
    pub backoff: Duration,
}

fn default_expected_status() -> Vec<String> {
    vec!["2xx".to_string()]
}

fn default_trigger_timeout() -> Duration {
    Duration::new("30s")
}

fn default_backoff() -> Duration {
    Duration::new("10s")
}

/// How runs are watched against the schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CronMonitoring {
    /// Dead-man's switch: health becomes Missed when no run has succeeded for this long (the
    /// guide's "alert if no execution in 1 hour" is `1h`). Must be longer than the gap between
    /// scheduled runs, or it would fire between every two runs. Unset disables it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_mans_switch: Option<Duration>,
    /// Grace after a due time: health becomes Late when no run has started this long after the
    /// schedule said it should. Defaults to 5m.
    #[serde(default = "default_late_after")]
    pub late_after: Duration,
    /// Consecutive failed runs after which health becomes Failing and an alert fires. Defaults
    /// to 1: every failure of a scheduled job deserves attention.
    #[serde(default = "default_failure_threshold")]
    #[schemars(range(min = 1, max = 100))]
    pub failure_threshold: u32,
    /// Alert severity for each unhealthy state.
    #[serde(default)]
    pub severities: CronSeverities,
    /// Where alerts about this job go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerting: Option<AlertingSpec>,
}

fn default_late_after() -> Duration {
    Duration::new("5m")
}

fn default_failure_threshold() -> u32 {
    1
}

/// Severity (P0 most urgent … P3) used for alerts about each unhealthy state of a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CronSeverities {
    /// A run did not start within `lateAfter` of its due time. Defaults to P3.
    #[serde(default = "default_late_severity")]
    pub late: Severity,
    /// `failureThreshold` consecutive runs failed. Defaults to P2.
    #[serde(default = "default_failing_severity")]
    pub failing: Severity,
    /// No successful run within the dead-man's switch. Defaults to P1.
    #[serde(default = "default_missed_severity")]
    pub missed: Severity,
}

impl Default for CronSeverities {
    fn default() -> Self {
        Self {
            late: default_late_severity(),
            failing: default_failing_severity(),
            missed: default_missed_severity(),
        }
    }
}

fn default_late_severity() -> Severity {
    Severity::P3
}

fn default_failing_severity() -> Severity {
    Severity::P2
}

fn default_missed_severity() -> Severity {
    Severity::P1
}

impl CronJobSpecSpec {
    /// The time zone the schedule is read in: `timeZone`, or UTC when unset.
    pub fn time_zone(&self) -> Result<chrono_tz::Tz, crate::schedule::ScheduleError> {
        match &self.time_zone {
            Some(zone) => crate::schedule::parse_time_zone(zone),
            None => Ok(chrono_tz::UTC),
        }
    }

    /// The parsed schedule in its time zone, for computing `status.nextRun` and lateness.
    pub fn cron_schedule(
        &self,
    ) -> Result<crate::schedule::CronSchedule, crate::schedule::ScheduleError> {
        crate::schedule::CronSchedule::parse(&self.schedule, self.time_zone()?)
    }
}

super::impl_has_conditions!(CronJobSpec);

#[cfg(test)]
mod tests;

#[cfg(test)]
mod schema_tests;
