//! The status snapshot of one running monitor, shaped like the API's `HealthMonitorStatus`
//! (and convertible into it) plus what a terminal or `/status` wants to show.

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::Serialize;

use crate::alert::OpenAlertEntry;
use crate::api::common::OpenAlert;
use crate::api::health_monitor::{
    ComponentState, ComponentStatistics, Health, HealthMonitorStatus, ProbeRecord, ThresholdLevel,
    ThresholdStatus, WindowStatistics,
};
use crate::probe::ProbeOutcome;
use crate::probe::health::{self, Level};
use crate::probe::stats::WindowSnapshot;

/// The state of one running monitor.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MonitorStatus {
    /// Namespace of the monitor.
    pub namespace: String,
    /// Name of the monitor.
    pub name: String,
    /// The probed target as text.
    pub target: String,
    /// Overall health.
    pub health: Health,
    /// When `health` last changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_since: Option<DateTime<Utc>>,
    /// The most recent probe.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_probe: Option<LastProbe>,
    /// Probes run since start.
    pub probes: u64,
    /// Successful probes in a row.
    pub consecutive_successes: u32,
    /// Failed probes in a row.
    pub consecutive_failures: u32,
    /// Statistics per window, in spec order.
    pub windows: Vec<WindowStatistics>,
    /// Each threshold's level.
    pub thresholds: Vec<ThresholdState>,
    /// Alerts notified and still firing.
    pub open_alerts: Vec<OpenAlertEntry>,
    /// Notifications the receivers accepted since start.
    pub notifications_sent: u64,
    /// The last notification failure, if the last round had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_alert_error: Option<String>,
}

/// The most recent probe.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastProbe {
    /// When it started.
    pub at: DateTime<Utc>,
    /// Whether every check passed.
    pub up: bool,
    /// HTTP status, when one arrived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// Latency in milliseconds.
    pub latency_ms: f64,
    /// The error, or the failed checks joined, when down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Each component's state.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<ComponentState>,
}

/// Where one threshold stands.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdState {
    /// Threshold name.
    pub name: String,
    /// Current level (after hysteresis).
    pub level: ThresholdLevel,
    /// The statistic's value; unset until the window holds `minSamples` probes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// When the level last changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
}

impl MonitorStatus {
    /// A monitor that has not probed yet.
    pub fn new(namespace: &str, name: &str, target: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            name: name.to_string(),
            target: target.to_string(),
            health: Health::Unknown,
            health_since: None,
            last_probe: None,
            probes: 0,
            consecutive_successes: 0,
            consecutive_failures: 0,
            windows: Vec::new(),
            thresholds: Vec::new(),
            open_alerts: Vec::new(),
            notifications_sent: 0,
            last_alert_error: None,
        }
    }

    /// The API status this snapshot corresponds to (conditions and generation are the
    /// controller's to add).
    pub fn to_api(&self) -> HealthMonitorStatus {
        HealthMonitorStatus {
            target: Some(self.target.clone()),
            health: Some(self.health),
            health_since: self.health_since.map(time),
            last_probe: self.last_probe.as_ref().map(|p| ProbeRecord {
                time: time(p.at),
                up: p.up,
                status_code: p.status_code,
                latency_ms: Some(p.latency_ms),
                error: p.error.clone(),
                components: p.components.clone(),
            }),
            consecutive_successes: self.consecutive_successes,
            consecutive_failures: self.consecutive_failures,
            uptime: self.windows.last().and_then(|w| w.uptime),
            p95_latency_ms: self.windows.first().and_then(|w| w.p95_latency_ms),
            windows: self.windows.clone(),
            thresholds: self
                .thresholds
                .iter()
                .map(|t| ThresholdStatus {
                    name: t.name.clone(),
                    level: t.level,
                    value: t.value,
                    since: t.since.map(time),
                })
                .collect(),
            open_alerts: self
                .open_alerts
                .iter()
                .map(|a| OpenAlert {
                    key: a.key.clone(),
                    severity: api_severity(a.severity),
                    since: time(a.since),
                    last_notified: a.last_notified.map(time),
                    summary: a.summary.clone(),
                })
                .collect(),
            ..HealthMonitorStatus::default()
        }
    }
}

/// A chrono time as a Kubernetes `Time` (millisecond precision; the epoch if out of range).
pub fn time(at: DateTime<Utc>) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_millisecond(at.timestamp_millis()).unwrap_or_default())
}

/// A Kubernetes `Time` as a chrono time (the epoch if out of range).
pub fn chrono_time(time: &Time) -> DateTime<Utc> {
    let at = time.0;
    DateTime::from_timestamp(at.as_second(), at.subsec_nanosecond().unsigned_abs())
        .unwrap_or_default()
}

fn api_severity(severity: crate::alert::Severity) -> crate::api::common::Severity {
    use crate::alert::Severity as S;
    use crate::api::common::Severity as A;
    match severity {
        S::P0 => A::P0,
        S::P1 => A::P1,
        S::P2 => A::P2,
        S::P3 => A::P3,
    }
}

/// The engine's health as the API's.
pub fn api_health(health: health::Health) -> Health {
    match health {
        health::Health::Healthy => Health::Healthy,
        health::Health::Degraded => Health::Degraded,
        health::Health::Critical => Health::Critical,
        health::Health::Down => Health::Down,
        health::Health::Unknown => Health::Unknown,
        health::Health::Suppressed => Health::Suppressed,
    }
}

/// The engine's threshold level as the API's.
pub fn api_level(level: Level) -> ThresholdLevel {
    match level {
        Level::Ok => ThresholdLevel::Ok,
        Level::Warning => ThresholdLevel::Warning,
        Level::Critical => ThresholdLevel::Critical,
    }
}

/// A probe outcome as shown in status: the error, else the failed checks.
pub fn last_probe(outcome: &ProbeOutcome) -> LastProbe {
    let error = outcome
        .error
        .clone()
        .or_else(|| (!outcome.failed_checks.is_empty()).then(|| outcome.failed_checks.join("; ")));
    LastProbe {
        at: outcome.at,
        up: outcome.up,
        status_code: outcome.status_code,
        latency_ms: outcome.latency.as_secs_f64() * 1000.0,
        error,
        components: outcome
            .components
            .iter()
            .map(|c| ComponentState {
                name: c.name.clone(),
                up: c.has_state.then_some(c.up),
                state: c.raw.clone(),
                value: c.value,
            })
            .collect(),
    }
}

/// A window snapshot as shown in status, under the window's spec spelling.
pub fn window_statistics(name: &str, snapshot: &WindowSnapshot) -> WindowStatistics {
    WindowStatistics {
        window: name.to_string(),
        samples: snapshot.samples,
        uptime: snapshot.uptime_pct,
        error_rate: snapshot.error_rate_pct,
        mean_latency_ms: snapshot.mean_ms,
        p95_latency_ms: snapshot.p95_ms,
        p99_latency_ms: snapshot.p99_ms,
        components: snapshot
            .components
            .iter()
            .map(|c| ComponentStatistics {
                name: c.name.clone(),
                availability: c.availability_pct,
                mean_value: c.value_mean,
            })
            .collect(),
    }
}
