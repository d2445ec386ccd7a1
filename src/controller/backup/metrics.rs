//! Prometheus metrics of BackupPolicies, labelled `{namespace, name}`, registered into the
//! controller's registry (prefix `watchkeeper`):
//!
//! - `watchkeeper_backup_last_success_timestamp_seconds`: completion time of the newest
//!   successful backup (Unix seconds); alert on `time() - … > rpo`.
//! - `watchkeeper_backup_size_bytes`: stored size of the newest successful backup.
//! - `watchkeeper_backup_duration_seconds`: wall-clock duration of the newest successful backup.
//! - `watchkeeper_restore_duration_seconds`: restore time of the newest verification.
//!
//! Gauges of the newest run, not histograms: one backup a day gives too few samples for
//! buckets, and the newest value is what dashboards and RPO alerts ask for.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::api::backup_policy::BackupPolicyStatus;

use super::fold::seconds_of;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyLabels {
    namespace: String,
    name: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// The backup metrics of one controller process.
#[derive(Clone, Debug, Default)]
pub struct BackupMetrics {
    last_success: Family<PolicyLabels, FloatGauge>,
    size: Family<PolicyLabels, FloatGauge>,
    duration: Family<PolicyLabels, FloatGauge>,
    restore: Family<PolicyLabels, FloatGauge>,
}

impl BackupMetrics {
    /// Registers the four gauges into `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register_with_unit(
            "backup_last_success_timestamp",
            "Completion time of the newest successful backup of a BackupPolicy (Unix time)",
            Unit::Seconds,
            metrics.last_success.clone(),
        );
        registry.register_with_unit(
            "backup_size",
            "Stored size of the newest successful backup of a BackupPolicy",
            Unit::Bytes,
            metrics.size.clone(),
        );
        registry.register_with_unit(
            "backup_duration",
            "Duration of the newest successful backup of a BackupPolicy",
            Unit::Seconds,
            metrics.duration.clone(),
        );
        registry.register_with_unit(
            "restore_duration",
            "Restore time of the newest verification of a BackupPolicy",
            Unit::Seconds,
            metrics.restore.clone(),
        );
        metrics
    }

    /// Sets the gauges of one policy from its status; values the status lacks are left out
    /// (no series rather than a misleading 0).
    pub fn observe(&self, namespace: &str, name: &str, status: &BackupPolicyStatus) {
        let labels = PolicyLabels {
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        if let Some(last) = &status.last_backup {
            if let Some(at) = last.completion_time.as_ref().map(seconds_of) {
                self.last_success.get_or_create(&labels).set(at);
            }
            if let Some(size) = last.size_bytes {
                // u64 → f64 loses precision only above 2^53 bytes (8 PiB).
                self.size.get_or_create(&labels).set(size as f64);
            }
            if let Some(duration) = last.duration_seconds {
                self.duration.get_or_create(&labels).set(duration);
            }
        }
        if let Some(restore) = status
            .last_verification
            .as_ref()
            .and_then(|v| v.restore_duration_seconds)
        {
            self.restore.get_or_create(&labels).set(restore);
        }
    }

    /// Drops the series of a deleted policy.
    pub fn remove(&self, namespace: &str, name: &str) {
        let labels = PolicyLabels {
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        for family in [
            &self.last_success,
            &self.size,
            &self.duration,
            &self.restore,
        ] {
            family.remove(&labels);
        }
    }
}
