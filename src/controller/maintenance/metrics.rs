//! Metrics of MaintenanceWindows, labelled `{namespace, name}`:
//! - `watchkeeper_maintenance_open`: 1 while a window is open, else 0;
//! - `watchkeeper_maintenance_next_start_timestamp_seconds`: Unix time of the next window's
//!   start (absent when there is none).

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WindowLabels {
    namespace: String,
    name: String,
}

/// The maintenance gauges of one controller process.
#[derive(Clone, Debug, Default)]
pub struct MaintenanceMetrics {
    open: Family<WindowLabels, Gauge>,
    next_start: Family<WindowLabels, Gauge>,
}

impl MaintenanceMetrics {
    /// Creates the gauges and registers them (the registry adds the `watchkeeper_` prefix).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "maintenance_open",
            "1 while the MaintenanceWindow's window is open, else 0",
            metrics.open.clone(),
        );
        registry.register(
            "maintenance_next_start_timestamp_seconds",
            "Unix time at which the MaintenanceWindow's next window opens",
            metrics.next_start.clone(),
        );
        metrics
    }

    /// Records whether the window is open and when the next one starts.
    pub fn set(&self, namespace: &str, name: &str, open: bool, next: Option<DateTime<Utc>>) {
        let labels = labels(namespace, name);
        self.open.get_or_create(&labels).set(i64::from(open));
        match next {
            Some(next) => {
                self.next_start.get_or_create(&labels).set(next.timestamp());
            }
            None => {
                self.next_start.remove(&labels);
            }
        }
    }

    /// Drops the series of a window that is gone or invalid.
    pub fn remove(&self, namespace: &str, name: &str) {
        let labels = labels(namespace, name);
        self.open.remove(&labels);
        self.next_start.remove(&labels);
    }
}

fn labels(namespace: &str, name: &str) -> WindowLabels {
    WindowLabels {
        namespace: namespace.to_string(),
        name: name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_documented_names() {
        let mut registry = Registry::with_prefix("watchkeeper");
        let metrics = MaintenanceMetrics::register(&mut registry);
        let next = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        metrics.set("ops", "monthly", true, Some(next));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(r#"watchkeeper_maintenance_open{namespace="ops",name="monthly"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"watchkeeper_maintenance_next_start_timestamp_seconds{namespace="ops",name="monthly"} 1800000000"#), "{text}");
        metrics.remove("ops", "monthly");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(!text.contains("namespace=\"ops\""), "{text}");
    }
}
