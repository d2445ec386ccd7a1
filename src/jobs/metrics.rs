//! Prometheus metrics of watched jobs; registered into a registry the caller owns (prefix
//! `watchkeeper` expected), so the controller and `watchkeeper run` expose the same names:
//!
//! - `watchkeeper_job_last_success_timestamp_seconds{namespace,name}`: Unix time of the last
//!   successful run's end (alert on `time() - … > N`, as with Kubernetes' kube-state-metrics).
//! - `watchkeeper_job_runs_total{namespace,name,result}`: finished runs, `result` `succeeded`
//!   or `failed` (scheduled and run-now runs alike).
//! - `watchkeeper_job_duration_seconds{namespace,name}`: run duration (histogram, 100 ms … ~3 h).
//! - `watchkeeper_job_health{namespace,name,health}`: 1 for the current health, 0 for the others.

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;

use crate::schedule::watch::{JobHealth, RunObservation, RunOutcome};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    namespace: String,
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    namespace: String,
    name: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HealthLabels {
    namespace: String,
    name: String,
    health: String,
}

const HEALTHS: [JobHealth; 6] = [
    JobHealth::Healthy,
    JobHealth::Late,
    JobHealth::Failing,
    JobHealth::Missed,
    JobHealth::Suspended,
    JobHealth::Unknown,
];

const RESULTS: [&str; 2] = ["succeeded", "failed"];

fn duration_histogram() -> Histogram {
    // 0.1 s … ~3.6 h
    Histogram::new(exponential_buckets(0.1, 2.0, 18))
}

/// The job metrics; cheap to clone (families are shared handles).
#[derive(Clone, Debug)]
pub struct JobMetrics {
    last_success: Family<JobLabels, Gauge<f64, AtomicU64>>,
    runs: Family<ResultLabels, Counter>,
    durations: Family<JobLabels, Histogram, fn() -> Histogram>,
    health: Family<HealthLabels, Gauge>,
}

fn labels(namespace: &str, name: &str) -> JobLabels {
    JobLabels {
        namespace: namespace.to_string(),
        name: name.to_string(),
    }
}

impl JobMetrics {
    /// Registers every metric in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            last_success: Family::default(),
            runs: Family::default(),
            durations: Family::new_with_constructor(duration_histogram),
            health: Family::default(),
        };
        registry.register_with_unit(
            "job_last_success_timestamp",
            "Unix time at which the job's last successful run finished",
            Unit::Seconds,
            metrics.last_success.clone(),
        );
        registry.register(
            "job_runs",
            "Finished runs of the job, by result (succeeded, failed)",
            metrics.runs.clone(),
        );
        registry.register_with_unit(
            "job_duration",
            "Duration of the job's finished runs",
            Unit::Seconds,
            metrics.durations.clone(),
        );
        registry.register(
            "job_health",
            "1 for the job's current health, 0 for the other states",
            metrics.health.clone(),
        );
        metrics
    }

    /// Counts one finished run (running ones are ignored), observes its duration and, for a
    /// success, moves the last-success time.
    pub fn record_finished(&self, namespace: &str, name: &str, run: &RunObservation) {
        let result = match run.outcome {
            RunOutcome::Running => return,
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Failed => "failed",
        };
        self.runs
            .get_or_create(&ResultLabels {
                namespace: namespace.to_string(),
                name: name.to_string(),
                result: result.to_string(),
            })
            .inc();
        if let Some(duration) = run.duration() {
            self.durations
                .get_or_create(&labels(namespace, name))
                .observe(duration.as_secs_f64());
        }
        if run.outcome == RunOutcome::Succeeded
            && let Some(end) = run.finished_at
        {
            self.set_last_success(namespace, name, end);
        }
    }

    /// Sets the last-success time (also from remembered state after a restart).
    pub fn set_last_success(&self, namespace: &str, name: &str, at: DateTime<Utc>) {
        let seconds = at.timestamp() as f64 + f64::from(at.timestamp_subsec_millis()) / 1000.0;
        self.last_success
            .get_or_create(&labels(namespace, name))
            .set(seconds);
    }

    /// Creates the run counters at zero so `increase()` sees the first run.
    pub fn register_job(&self, namespace: &str, name: &str) {
        for result in RESULTS {
            let _ = self.runs.get_or_create(&ResultLabels {
                namespace: namespace.to_string(),
                name: name.to_string(),
                result: result.to_string(),
            });
        }
    }

    /// Sets the job's health (one series per state, 1 for the current one).
    pub fn set_health(&self, namespace: &str, name: &str, current: JobHealth) {
        for health in HEALTHS {
            self.health
                .get_or_create(&HealthLabels {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                    health: health.as_str().to_string(),
                })
                .set(i64::from(health == current));
        }
    }

    /// Removes every series of a job (deleted, or no longer watched).
    pub fn remove(&self, namespace: &str, name: &str) {
        let job = labels(namespace, name);
        self.last_success.remove(&job);
        self.durations.remove(&job);
        for result in RESULTS {
            self.runs.remove(&ResultLabels {
                namespace: namespace.to_string(),
                name: name.to_string(),
                result: result.to_string(),
            });
        }
        for health in HEALTHS {
            self.health.remove(&HealthLabels {
                namespace: namespace.to_string(),
                name: name.to_string(),
                health: health.as_str().to_string(),
            });
        }
    }
}
