//! Judging a CronJobSpec's runs against its schedule (placeholder until the job-watch engine
//! lands: nothing is judged yet).

use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::Client;

use super::super::conditions::DesiredCondition;
use crate::api::CronJobSpec;
use crate::api::cron_job_spec::CronJobSpecStatus;

/// Job metrics.
#[derive(Clone, Debug, Default)]
pub struct Metrics;

impl Metrics {
    /// Removes the series of a deleted CronJobSpec.
    pub fn remove(&self, _namespace: &str, _name: &str) {}
}

/// Monitoring state of one CronJobSpec kept between reconciles.
#[derive(Default)]
pub struct WatchState;

/// What judging produced.
#[derive(Default)]
pub struct Judged {
    /// Conditions besides Ready.
    pub conditions: Vec<DesiredCondition>,
    /// When to look again.
    pub requeue_after: Option<std::time::Duration>,
}

impl WatchState {
    /// Judges the runs; fills `status`.
    pub async fn judge(
        &mut self,
        _client: &Client,
        _object: &CronJobSpec,
        _cron_job: &CronJob,
        _jobs: &[Job],
        _status: &mut CronJobSpecStatus,
        _metrics: &Metrics,
    ) -> Judged {
        Judged::default()
    }
}
