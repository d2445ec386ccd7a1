//! FailoverPlan metrics, labelled `{namespace, name}`:
//! - `watchkeeper_failover_phase{phase}`: 1 for the plan's current phase, 0 for the others;
//! - `watchkeeper_failover_duration_seconds{kind, result}`: finished attempts, trigger to end;
//! - `watchkeeper_failover_step_duration_seconds{step}`: finished steps, first try to end.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::failover::Phase;

const PHASES: [Phase; 7] = [
    Phase::Standby,
    Phase::Triggered,
    Phase::AwaitingApproval,
    Phase::InProgress,
    Phase::FailedOver,
    Phase::Failed,
    Phase::FailingBack,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    namespace: String,
    name: String,
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    namespace: String,
    name: String,
    kind: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    namespace: String,
    name: String,
    step: String,
}

fn seconds_histogram() -> Histogram {
    // 0.1 s … ~1.8 h: a webhook call up to a full regional failover.
    Histogram::new(exponential_buckets(0.1, 2.0, 17))
}

/// The failover metrics of one controller process.
#[derive(Clone, Debug)]
pub struct FailoverMetrics {
    phase: Family<PhaseLabels, Gauge>,
    duration: Family<AttemptLabels, Histogram, fn() -> Histogram>,
    step_duration: Family<StepLabels, Histogram, fn() -> Histogram>,
}

impl FailoverMetrics {
    /// Creates the metrics and registers them (the registry adds the `watchkeeper_` prefix).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            phase: Family::default(),
            duration: Family::new_with_constructor(seconds_histogram),
            step_duration: Family::new_with_constructor(seconds_histogram),
        };
        registry.register(
            "failover_phase",
            "1 for the FailoverPlan's current phase, 0 for the others",
            metrics.phase.clone(),
        );
        registry.register_with_unit(
            "failover_duration",
            "Finished FailoverPlan attempts, from the accepted trigger to the end",
            Unit::Seconds,
            metrics.duration.clone(),
        );
        registry.register_with_unit(
            "failover_step_duration",
            "Finished FailoverPlan steps, from the first try's start to the end",
            Unit::Seconds,
            metrics.step_duration.clone(),
        );
        metrics
    }

    /// Sets the phase gauges of a plan.
    pub fn set_phase(&self, namespace: &str, name: &str, phase: Phase) {
        for p in PHASES {
            let labels = PhaseLabels {
                namespace: namespace.to_string(),
                name: name.to_string(),
                phase: format!("{p:?}"),
            };
            self.phase.get_or_create(&labels).set(i64::from(p == phase));
        }
    }

    /// Drops a plan's phase series (deleted or invalid).
    pub fn remove(&self, namespace: &str, name: &str) {
        for p in PHASES {
            self.phase.remove(&PhaseLabels {
                namespace: namespace.to_string(),
                name: name.to_string(),
                phase: format!("{p:?}"),
            });
        }
    }

    /// Records a finished attempt.
    pub fn attempt(&self, namespace: &str, name: &str, kind: &str, result: &str, seconds: f64) {
        self.duration
            .get_or_create(&AttemptLabels {
                namespace: namespace.to_string(),
                name: name.to_string(),
                kind: kind.to_string(),
                result: result.to_string(),
            })
            .observe(seconds.max(0.0));
    }

    /// Records a finished step.
    pub fn step(&self, namespace: &str, name: &str, step: &str, seconds: f64) {
        self.step_duration
            .get_or_create(&StepLabels {
                namespace: namespace.to_string(),
                name: name.to_string(),
                step: step.to_string(),
            })
            .observe(seconds.max(0.0));
    }
}
