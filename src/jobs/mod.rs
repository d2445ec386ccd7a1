//! CronJobSpecs watched (and, in embedded mode, run): the twin of [`crate::monitor`] for
//! scheduled jobs. [`adapter`] turns the API's `CronJobSpecSpec` into the job-watch engine's
//! configuration ([`crate::schedule::watch`]) plus alerting and, for HTTP triggers, the request
//! the trigger agent makes; [`metrics`] holds the job metric families.
//!
//! Both the Kubernetes controller and `watchkeeper run` use this module; they differ in where
//! Secrets come from ([`crate::monitor::SecretResolver`]), where [`JobMemory`] is kept between
//! restarts (CronJobSpec status or the run state file), and who starts the runs (the
//! Kubernetes CronJob controller, or `watchkeeper run` itself).
//!
//! Alerts a job raises (de-duplication keys, stable across restarts): `job/late`, `job/stuck`,
//! `job/failing`, `job/missed` (see [`crate::schedule::watch::firing_alerts`]).
//!
//! [`JobMemory`]: crate::schedule::watch::JobMemory

pub mod adapter;
pub mod metrics;

#[cfg(test)]
mod tests;

pub use adapter::{JobConfig, JobKey, job_config};
pub use metrics::JobMetrics;

/// Why a CronJobSpec cannot be watched or run. Messages name the field or Secret at fault,
/// never a secret value.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A spec field that cannot be turned into an engine setting.
    #[error("{field}: {message}")]
    Spec {
        /// Field path, e.g. `spec.schedule`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A setting this environment cannot honour (a Job template outside a cluster).
    #[error("{field}: not supported here: {message}")]
    Unsupported {
        /// Field path.
        field: String,
        /// Why, and what to use instead.
        message: String,
    },
    /// A Secret that could not be read, or alerting the alert engine refused (same errors as
    /// for HealthMonitors).
    #[error(transparent)]
    Resolve(#[from] crate::monitor::MonitorError),
}
