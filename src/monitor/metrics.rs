//! Prometheus metrics of running monitors, fed from [`MonitorEvent`]s; registered into a
//! registry the caller owns (prefix `watchkeeper` expected), so the controller and
//! `watchkeeper run` expose the same names:
//!
//! - `watchkeeper_probe_duration_seconds{namespace,monitor}`: probe latency (histogram).
//! - `watchkeeper_probe_up{namespace,monitor}`: 1 when the last probe passed, else 0.
//! - `watchkeeper_monitor_health{namespace,monitor,health}`: 1 for the current health
//!   (Healthy, Degraded, Critical, Down, Unknown, Suppressed), 0 for the others.
//! - `watchkeeper_alerts_sent_total{namespace,monitor,channel,kind}`: notifications the
//!   receivers accepted (kind `trigger`, `repeat`, `resolve`).
//! - `watchkeeper_alert_failures_total{namespace,monitor,channel}`: failed deliveries.
//!
//! A monitor that stops (deleted, spec invalid, no longer led) loses all its series through
//! [`MonitorMetrics::remove`], so `/metrics` does not report stale monitors forever.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::api::health_monitor::Health;

use super::{MonitorEvent, MonitorKey};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MonitorLabels {
    namespace: String,
    monitor: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HealthLabels {
    namespace: String,
    monitor: String,
    health: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SentLabels {
    namespace: String,
    monitor: String,
    channel: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabels {
    namespace: String,
    monitor: String,
    channel: String,
}

const HEALTHS: [Health; 6] = [
    Health::Healthy,
    Health::Degraded,
    Health::Critical,
    Health::Down,
    Health::Unknown,
    Health::Suppressed,
];

fn probe_histogram() -> Histogram {
    // 1 ms … ~32 s
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The per-channel series a monitor has, so they can be removed with it: `(channel, kind)`
/// of `alerts_sent`, with kind `None` for `alert_failures`.
type ChannelSeries = Arc<Mutex<BTreeMap<MonitorKey, BTreeSet<(String, Option<String>)>>>>;

/// The monitor metrics; cheap to clone (families are shared handles).
#[derive(Clone, Debug)]
pub struct MonitorMetrics {
    durations: Family<MonitorLabels, Histogram, fn() -> Histogram>,
    up: Family<MonitorLabels, Gauge>,
    health: Family<HealthLabels, Gauge>,
    sent: Family<SentLabels, Counter>,
    failures: Family<ChannelLabels, Counter>,
    channels: ChannelSeries,
}

impl MonitorMetrics {
    /// Registers every metric in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            durations: Family::new_with_constructor(probe_histogram),
            up: Family::default(),
            health: Family::default(),
            sent: Family::default(),
            failures: Family::default(),
            channels: Arc::default(),
        };
        registry.register_with_unit(
            "probe_duration",
            "Probe latency (until the body was read, the connection opened, or the failure)",
            Unit::Seconds,
            metrics.durations.clone(),
        );
        registry.register(
            "probe_up",
            "1 when the monitor's last probe passed every check, else 0",
            metrics.up.clone(),
        );
        registry.register(
            "monitor_health",
            "1 for the monitor's current health, 0 for the other states",
            metrics.health.clone(),
        );
        registry.register(
            "alerts_sent",
            "Alert notifications the receivers accepted, by channel and kind",
            metrics.sent.clone(),
        );
        registry.register(
            "alert_failures",
            "Alert notifications that could not be delivered (retried next round)",
            metrics.failures.clone(),
        );
        metrics
    }

    /// Sets a monitor's health (also before its first probe, so it shows as Unknown).
    pub fn set_health(&self, key: &MonitorKey, current: Health) {
        for health in HEALTHS {
            self.health
                .get_or_create(&HealthLabels {
                    namespace: key.namespace.clone(),
                    monitor: key.name.clone(),
                    health: format!("{health:?}"),
                })
                .set(i64::from(health == current));
        }
    }

    /// Removes every series of a monitor (it stopped: deleted, spec invalid, or this process
    /// no longer runs it). An event of the monitor still in flight may create a series again;
    /// callers stop the monitor first, so none follows.
    pub fn remove(&self, key: &MonitorKey) {
        let labels = MonitorLabels {
            namespace: key.namespace.clone(),
            monitor: key.name.clone(),
        };
        self.durations.remove(&labels);
        self.up.remove(&labels);
        for health in HEALTHS {
            self.health.remove(&HealthLabels {
                namespace: key.namespace.clone(),
                monitor: key.name.clone(),
                health: format!("{health:?}"),
            });
        }
        let channels = self
            .channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key)
            .unwrap_or_default();
        for (channel, kind) in channels {
            match kind {
                Some(kind) => self.sent.remove(&SentLabels {
                    namespace: key.namespace.clone(),
                    monitor: key.name.clone(),
                    channel,
                    kind,
                }),
                None => self.failures.remove(&ChannelLabels {
                    namespace: key.namespace.clone(),
                    monitor: key.name.clone(),
                    channel,
                }),
            };
        }
    }

    fn note_channel(&self, key: &MonitorKey, channel: &str, kind: Option<&str>) {
        self.channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_default()
            .insert((channel.to_string(), kind.map(str::to_string)));
    }

    /// Updates the metrics from one event.
    pub fn observe(&self, event: &MonitorEvent) {
        let labels = |key: &MonitorKey| MonitorLabels {
            namespace: key.namespace.clone(),
            monitor: key.name.clone(),
        };
        match event {
            MonitorEvent::Probed { key, outcome } => {
                self.durations
                    .get_or_create(&labels(key))
                    .observe(outcome.latency.as_secs_f64());
                self.up
                    .get_or_create(&labels(key))
                    .set(i64::from(outcome.up));
            }
            MonitorEvent::HealthChanged { key, to, .. } => self.set_health(key, *to),
            MonitorEvent::Notified {
                key, kind, channel, ..
            } => {
                self.note_channel(key, channel, Some(kind.as_str()));
                self.sent
                    .get_or_create(&SentLabels {
                        namespace: key.namespace.clone(),
                        monitor: key.name.clone(),
                        channel: channel.clone(),
                        kind: kind.as_str().to_string(),
                    })
                    .inc();
            }
            MonitorEvent::NotifyFailed { key, channel, .. } => {
                self.note_channel(key, channel, None);
                self.failures
                    .get_or_create(&ChannelLabels {
                        namespace: key.namespace.clone(),
                        monitor: key.name.clone(),
                        channel: channel.clone(),
                    })
                    .inc();
            }
            MonitorEvent::AlertState { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::alert::{NotificationKind, Severity};
    use crate::probe::ProbeOutcome;

    #[test]
    fn encodes_the_documented_names() {
        let mut registry = Registry::with_prefix("watchkeeper");
        let metrics = MonitorMetrics::register(&mut registry);
        let key = MonitorKey {
            namespace: "default".into(),
            name: "api".into(),
        };
        metrics.observe(&MonitorEvent::Probed {
            key: key.clone(),
            outcome: Arc::new(ProbeOutcome {
                at: chrono::Utc::now(),
                up: true,
                status_code: Some(200),
                latency: Duration::from_millis(3),
                error: None,
                failed_checks: vec![],
                components: vec![],
                cert_not_after: None,
            }),
        });
        metrics.set_health(&key, Health::Degraded);
        metrics.observe(&MonitorEvent::Notified {
            key: key.clone(),
            kind: NotificationKind::Trigger,
            channel: "hook".into(),
            alert: "down".into(),
            severity: Severity::P0,
            summary: "x".into(),
        });
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for expected in [
            r#"watchkeeper_probe_duration_seconds_bucket{le="0.004",namespace="default",monitor="api"} 1"#,
            r#"watchkeeper_probe_up{namespace="default",monitor="api"} 1"#,
            r#"watchkeeper_monitor_health{namespace="default",monitor="api",health="Degraded"} 1"#,
            r#"watchkeeper_monitor_health{namespace="default",monitor="api",health="Healthy"} 0"#,
            r#"watchkeeper_alerts_sent_total{namespace="default",monitor="api",channel="hook",kind="trigger"} 1"#,
        ] {
            assert!(text.contains(expected), "{expected} missing in\n{text}");
        }
    }

    fn probed(name: &str) -> MonitorEvent {
        MonitorEvent::Probed {
            key: MonitorKey {
                namespace: "default".into(),
                name: name.into(),
            },
            outcome: Arc::new(ProbeOutcome {
                at: chrono::Utc::now(),
                up: false,
                status_code: Some(503),
                latency: Duration::from_millis(2),
                error: None,
                failed_checks: vec![],
                components: vec![],
                cert_not_after: None,
            }),
        }
    }

    #[test]
    fn removing_a_monitor_drops_all_its_series_and_keeps_the_others() {
        let mut registry = Registry::with_prefix("watchkeeper");
        let metrics = MonitorMetrics::register(&mut registry);
        for name in ["gone", "kept"] {
            let key = MonitorKey {
                namespace: "default".into(),
                name: name.into(),
            };
            metrics.observe(&probed(name));
            metrics.set_health(&key, Health::Down);
            metrics.observe(&MonitorEvent::Notified {
                key: key.clone(),
                kind: NotificationKind::Trigger,
                channel: "hook".into(),
                alert: "down".into(),
                severity: Severity::P0,
                summary: "x".into(),
            });
            metrics.observe(&MonitorEvent::NotifyFailed {
                key,
                channel: "mail".into(),
                error: "refused".into(),
            });
        }
        metrics.remove(&MonitorKey {
            namespace: "default".into(),
            name: "gone".into(),
        });
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(!text.contains(r#"monitor="gone""#), "{text}");
        for family in [
            "watchkeeper_probe_duration_seconds_count",
            "watchkeeper_probe_up",
            "watchkeeper_monitor_health",
            "watchkeeper_alerts_sent_total",
            "watchkeeper_alert_failures_total",
        ] {
            assert!(
                text.lines()
                    .any(|l| l.starts_with(family) && l.contains(r#"monitor="kept""#)),
                "{family} of the other monitor missing in\n{text}"
            );
        }
    }
}
