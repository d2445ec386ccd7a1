//! Prometheus metrics of the controller core, all prefixed `watchkeeper_`.
//!
//! - `watchkeeper_reconcile_total{kind,result}`: reconciles finished, by result
//!   (`accepted`, `invalid_spec`, `error`).
//! - `watchkeeper_reconcile_errors_total{kind,error}`: failed reconciles by error class.
//! - `watchkeeper_reconcile_duration_seconds{kind}`: time per reconcile (histogram).
//! - `watchkeeper_leader`: 1 while this replica holds the leader Lease (or runs without
//!   leader election), else 0.
//! - `watchkeeper_events_failed_total{kind}`: Kubernetes Events that could not be published.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// Outcome of one reconcile, the `result` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReconcileResult {
    /// The spec is valid; status says `Ready=True`.
    Accepted,
    /// The spec is invalid; status says `Ready=False/InvalidSpec`.
    InvalidSpec,
    /// The reconcile failed (API error) and will be retried with backoff.
    Error,
}

impl ReconcileResult {
    fn label(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::InvalidSpec => "invalid_spec",
            Self::Error => "error",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    kind: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    kind: String,
    error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

fn duration_histogram() -> Histogram {
    // 1 ms … ~16 s
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The registry and every metric in it. One per controller process (tests run several).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ResultLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    durations: Family<KindLabels, Histogram, fn() -> Histogram>,
    events_failed: Family<KindLabels, Counter>,
    leader: Gauge,
    /// Probe, health and alert metrics of the HealthMonitors this process runs.
    pub monitor: crate::monitor::MonitorMetrics,
    /// Run and health metrics of CronJobSpecs (`watchkeeper_job_*`).
    pub job: crate::jobs::JobMetrics,
    /// Backup and restore metrics of BackupPolicies (`watchkeeper_backup_*`).
    pub backup: super::backup::BackupMetrics,
    /// Open/next-start gauges of MaintenanceWindows.
    pub maintenance: super::maintenance::MaintenanceMetrics,
    /// Phase and duration metrics of FailoverPlans (`watchkeeper_failover_*`).
    pub failover: super::failover::FailoverMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("watchkeeper");
        let reconciles = Family::<ResultLabels, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let durations = Family::<KindLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_histogram,
        );
        let events_failed = Family::<KindLabels, Counter>::default();
        let leader = Gauge::default();
        registry.register(
            "reconcile",
            "Reconciles finished, by kind and result",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Failed reconciles, by kind and error class",
            errors.clone(),
        );
        registry.register_with_unit(
            "reconcile_duration",
            "Time spent in one reconcile",
            Unit::Seconds,
            durations.clone(),
        );
        registry.register(
            "events_failed",
            "Kubernetes Events that could not be published",
            events_failed.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica is the active leader, else 0",
            leader.clone(),
        );
        let monitor = crate::monitor::MonitorMetrics::register(&mut registry);
        let job = crate::jobs::JobMetrics::register(&mut registry);
        let backup = super::backup::BackupMetrics::register(&mut registry);
        let maintenance = super::maintenance::MaintenanceMetrics::register(&mut registry);
        let failover = super::failover::FailoverMetrics::register(&mut registry);
        Self {
            registry,
            monitor,
            job,
            backup,
            maintenance,
            failover,
            reconciles,
            errors,
            durations,
            events_failed,
            leader,
        }
    }

    /// Records one finished reconcile.
    pub fn reconciled(
        &self,
        kind: &str,
        result: ReconcileResult,
        error: Option<&str>,
        took: Duration,
    ) {
        self.reconciles
            .get_or_create(&ResultLabels {
                kind: kind.to_string(),
                result: result.label().to_string(),
            })
            .inc();
        if let Some(error) = error {
            self.errors
                .get_or_create(&ErrorLabels {
                    kind: kind.to_string(),
                    error: error.to_string(),
                })
                .inc();
        }
        self.durations
            .get_or_create(&KindLabels {
                kind: kind.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// Records an Event that could not be published.
    pub fn event_failed(&self, kind: &str) {
        self.events_failed
            .get_or_create(&KindLabels {
                kind: kind.to_string(),
            })
            .inc();
    }

    /// Sets the `watchkeeper_leader` gauge.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Number of reconciles of `kind` with `result` so far (for tests and diagnostics).
    pub fn reconcile_count(&self, kind: &str, result: ReconcileResult) -> u64 {
        self.reconciles
            .get_or_create(&ResultLabels {
                kind: kind.to_string(),
                result: result.label().to_string(),
            })
            .get()
    }

    /// Total reconciles of every kind and result.
    pub fn total_reconciles(&self) -> u64 {
        let mut total = 0;
        for kind in crate::api::KINDS {
            for result in [
                ReconcileResult::Accepted,
                ReconcileResult::InvalidSpec,
                ReconcileResult::Error,
            ] {
                total += self.reconcile_count(kind, result);
            }
        }
        total
    }

    /// The registry in the OpenMetrics text format Prometheus scrapes.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_documented_names() {
        let metrics = Metrics::new();
        metrics.reconciled(
            "HealthMonitor",
            ReconcileResult::InvalidSpec,
            None,
            Duration::from_millis(3),
        );
        metrics.reconciled(
            "HealthMonitor",
            ReconcileResult::Error,
            Some("status_write"),
            Duration::from_millis(5),
        );
        metrics.set_leader(true);
        let text = metrics.encode().unwrap();
        assert!(
            text.contains(
                r#"watchkeeper_reconcile_total{kind="HealthMonitor",result="invalid_spec"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"watchkeeper_reconcile_errors_total{kind="HealthMonitor",error="status_write"} 1"#
        ));
        assert!(
            text.contains(
                r#"watchkeeper_reconcile_duration_seconds_count{kind="HealthMonitor"} 2"#
            )
        );
        assert!(text.contains("watchkeeper_leader 1"));
        assert_eq!(
            metrics.reconcile_count("HealthMonitor", ReconcileResult::InvalidSpec),
            1
        );
        assert_eq!(metrics.total_reconciles(), 2);
    }
}
