//! Observed state of a HealthMonitor.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::threshold::ThresholdLevel;
use crate::api::common::{Condition, OpenAlert, Time};

/// Observed state of a HealthMonitor. Written coalesced (not once per probe).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthMonitorStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions: `Ready` (spec accepted, probing), `Healthy`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The probed target as text (URL, Service URL or `tcp://host:port`), for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Overall health.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// When `health` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_since: Option<Time>,
    /// The most recent probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe: Option<ProbeRecord>,
    /// Successful probes in a row (0 after a failure).
    #[serde(default)]
    pub consecutive_successes: u32,
    /// Failed probes in a row (0 after a success).
    #[serde(default)]
    pub consecutive_failures: u32,
    /// Uptime percentage over the longest window, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime: Option<f64>,
    /// 95th percentile latency in milliseconds over the shortest window, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95_latency_ms: Option<f64>,
    /// Statistics per window in `spec.windows`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<WindowStatistics>,
    /// Current level of each threshold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<ThresholdStatus>,
    /// Alerts firing now (kept here so a restarted operator does not re-send them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open_alerts: Vec<OpenAlert>,
    /// Recent remediation attempts, newest last (bounded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remediations: Vec<RemediationRecord>,
}

/// Overall health of a monitored target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Health {
    /// Probes pass and no threshold is past its warning level.
    Healthy,
    /// A threshold is at its warning level.
    Degraded,
    /// A threshold is at its critical level.
    Critical,
    /// `failureThreshold` consecutive probes failed.
    Down,
    /// Not enough probes yet.
    Unknown,
    /// A maintenance window is open: probes run, alerts and remediation are held back.
    Suppressed,
}

/// The result of one probe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProbeRecord {
    /// When the probe started.
    pub time: Time,
    /// Whether every check passed.
    pub up: bool,
    /// HTTP status code, for HTTP targets that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// Time to the end of the response, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// Why the probe failed: connection error, timeout, or the first failing check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Each component's state in this probe.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<ComponentState>,
}

/// One component's state in one probe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentState {
    /// Component name.
    pub name: String,
    /// Whether the component was up (unset when it has no `jsonPath`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up: Option<bool>,
    /// The value read at `jsonPath`, as text (truncated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The number read at `valuePath`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
}

/// Statistics over one rolling window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WindowStatistics {
    /// The window, as written in `spec.windows`.
    pub window: String,
    /// Probes in the window.
    pub samples: u64,
    /// Percentage of probes that were up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime: Option<f64>,
    /// Percentage of probes that were down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    /// Mean latency in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_latency_ms: Option<f64>,
    /// 95th percentile latency in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95_latency_ms: Option<f64>,
    /// 99th percentile latency in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_latency_ms: Option<f64>,
    /// Per-component statistics.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<ComponentStatistics>,
}

/// One component's statistics over a window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatistics {
    /// Component name.
    pub name: String,
    /// Percentage of probes in which the component was up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<f64>,
    /// Mean of the component's `valuePath` number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_value: Option<f64>,
}

/// Where one threshold stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdStatus {
    /// Threshold name.
    pub name: String,
    /// Current level.
    pub level: ThresholdLevel,
    /// The statistic's current value (unset until `minSamples` probes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// When the level last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
}

/// One remediation attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemediationRecord {
    /// Name of the remediation in `spec.remediations`.
    pub name: String,
    /// Action kind (`rollback`, `scale`, `setConfigMapKey`, `failover`).
    pub action: String,
    /// When it was attempted.
    pub time: Time,
    /// Attempt number within the current incident (1-based).
    pub attempt: u32,
    /// Outcome.
    pub result: RemediationResult,
    /// Details, e.g. the revision rolled back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Outcome of a remediation attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RemediationResult {
    Succeeded,
    Failed,
    /// Not attempted: cooldown, attempt limit, or a maintenance window.
    Skipped,
    /// A `revertOnRecovery` action undone after recovery.
    Reverted,
}
