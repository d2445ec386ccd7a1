//! Job-watch engine: judges a scheduled job's runs against its schedule, like healthchecks.io or
//! Cronitor would, but from the runs themselves. Pure computation with no Kubernetes types:
//! the CronJobSpec controller feeds it the owned Jobs, `watchkeeper run` its in-process runs.
//!
//! - [`JobMemory`] is what must survive restarts (Jobs are garbage-collected by history limits,
//!   so counts cannot be recomputed from them); [`JobMemory::observe`] folds runs in.
//! - [`evaluate`] turns policy + memory + now into a [`WatchReport`]: health (Healthy, Late,
//!   Failing, Missed, Suspended, Unknown), next run, missed starts and the Kubernetes CronJob
//!   controller's "too many missed start times" state.
//! - [`firing_alerts`] turns a report into alerts for the alerting engine (`crate::alert`).

mod alerts;
mod evaluate;
mod memory;

#[cfg(test)]
mod tests;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::schedule::CronSchedule;

pub use alerts::{JobSeverities, firing_alerts, firing_alerts_from};
pub use evaluate::{TOO_MANY_MISSED_STARTS, evaluate};
pub use memory::JobMemory;

/// How a job is judged. Built from a CronJobSpec by `crate::jobs::adapter`.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchPolicy {
    /// The schedule, already in the job's time zone (with [`crate::schedule::DstRule::Kubernetes`]
    /// for jobs the Kubernetes CronJob controller starts).
    pub schedule: CronSchedule,
    /// Grace after a due time before the job counts as Late.
    pub late_after: Duration,
    /// Consecutive failed runs before the job counts as Failing (0 is treated as 1).
    pub failure_threshold: u32,
    /// Dead-man's switch: Missed when no run succeeded for this long.
    pub dead_mans_switch: Option<Duration>,
    /// The CronJob's starting deadline: due times older than this are no longer started, and
    /// the Kubernetes controller counts missed starts only within it.
    pub starting_deadline: Option<Duration>,
    /// Suspended (spec or maintenance): nothing is judged, nothing alerts.
    pub suspended: bool,
}

/// How a run ended, or that it has not yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RunOutcome {
    /// Started, not finished.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Finished unsuccessfully (including deadline exceeded and retries exhausted).
    Failed,
}

/// What started a run.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RunTrigger {
    /// The schedule came due.
    Scheduled,
    /// A run-now request with this token.
    Manual {
        /// The `watchkeeper.dev/run-now` token.
        token: String,
    },
}

/// One run: a Job in the cluster or one in-process run in embedded mode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunObservation {
    /// Job name (cluster) or run name (embedded); identifies the run.
    pub name: String,
    /// Schedule or run-now.
    pub trigger: RunTrigger,
    /// The due time the run belongs to (Kubernetes: the Job annotation
    /// `batch.kubernetes.io/cronjob-scheduled-timestamp`); `None` for manual runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_for: Option<DateTime<Utc>>,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// When it finished; `None` while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Result so far.
    pub outcome: RunOutcome,
    /// HTTP status of the last attempt, for HTTP triggers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// Short result text; never secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl RunObservation {
    /// How long the run took, if finished (zero if the clock went backwards).
    pub fn duration(&self) -> Option<Duration> {
        self.finished_at
            .map(|end| (end - self.started_at).to_std().unwrap_or_default())
    }
}

/// The health of a job judged against its schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JobHealth {
    /// Nothing to judge yet: no run seen and none overdue.
    Unknown,
    /// Runs start on time and the last one did not fail past the threshold.
    Healthy,
    /// A due run has not started within the grace (or too many starts were missed).
    Late,
    /// At least `failure_threshold` consecutive runs failed.
    Failing,
    /// No success within the dead-man's switch.
    Missed,
    /// Suspended by the spec or a maintenance window.
    Suspended,
}

impl JobHealth {
    /// The name as the API writes it (`Healthy`, `Late`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "Unknown",
            Self::Healthy => "Healthy",
            Self::Late => "Late",
            Self::Failing => "Failing",
            Self::Missed => "Missed",
            Self::Suspended => "Suspended",
        }
    }
}

/// One unhealthy state that holds now; a job can be Late and Failing at once, and each raises
/// its own alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Late, Failing or Missed.
    pub health: JobHealth,
    /// CamelCase reason (`RunLate`, `TooManyMissedStarts`, `ConsecutiveFailures`,
    /// `NoRecentSuccess`).
    pub reason: &'static str,
    /// Human sentence naming times in the job's zone.
    pub message: String,
    /// When the state began (alert `startsAt`; stable while it lasts).
    pub since: DateTime<Utc>,
}

/// The verdict of one [`evaluate`] call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchReport {
    /// The most urgent state: Suspended, then Missed, Failing, Late; else Healthy or Unknown.
    pub health: JobHealth,
    /// CamelCase, for a condition reason.
    pub reason: &'static str,
    /// Human sentence naming times in the job's zone.
    pub message: String,
    /// When the schedule fires next (`None` while suspended).
    pub next_run: Option<DateTime<Utc>>,
    /// The first due time without a start past its grace (Late).
    pub overdue_since: Option<DateTime<Utc>>,
    /// Due times with no run since `last_schedule_time` (or since watching began), counted like
    /// the Kubernetes CronJob controller: within the starting deadline when one is set; capped
    /// at [`TOO_MANY_MISSED_STARTS`] + 1.
    pub missed_starts: u32,
    /// More than [`TOO_MANY_MISSED_STARTS`] missed starts: the Kubernetes CronJob controller
    /// reports "too many missed start times" (Warning event `TooManyMissedTimes`).
    pub stuck: bool,
    /// Every unhealthy state that holds now, most urgent first (empty when Healthy, Unknown or
    /// Suspended).
    pub problems: Vec<Problem>,
}
