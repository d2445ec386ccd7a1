//! Thresholds: warning and critical levels on statistics over a rolling window.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::common::{DNS_LABEL_PATTERN, Duration, Severity};

/// A warning and/or critical level on one statistic over one window, e.g. "uptime over 30d below
/// 99.5 % is a warning, below 99 % critical". The warning level is always the milder one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "has(self.warning) || has(self.critical)",
        "message": "set warning, critical or both"
    },
    {
        "rule": "!has(self.warning) || !has(self.critical) || (self.direction == 'Below' ? self.warning > self.critical : self.warning < self.critical)",
        "message": "warning must be milder than critical: higher for Below thresholds, lower for Above thresholds",
        "fieldPath": ".critical"
    },
    {
        "rule": "self.metric.startsWith('Component') == has(self.component)",
        "message": "component metrics need component; other metrics take none",
        "fieldPath": ".component"
    },
    {
        "rule": "self.metric == 'ComponentValue' || self.direction == ((self.metric == 'Uptime' || self.metric == 'ComponentAvailability') ? 'Below' : 'Above')",
        "message": "availability and uptime thresholds fire Below their level; error rates and latencies Above",
        "fieldPath": ".direction"
    }
]))]
pub struct Threshold {
    /// Name used in alerts (`threshold/<name>`), status and remediation triggers.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = DNS_LABEL_PATTERN)
    )]
    pub name: String,
    /// The statistic compared.
    pub metric: ThresholdMetric,
    /// For `Component*` metrics: the name of a component in `spec.components`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub component: Option<String>,
    /// The window the statistic is computed over; one of `spec.windows`, spelled the same.
    pub window: Duration,
    /// Whether the threshold fires when the statistic is `Above` or `Below` a level.
    pub direction: Direction,
    /// Level at which the threshold is at warning. Units: percent for uptime, error rate and
    /// availability; milliseconds for latencies; the endpoint's own unit for `ComponentValue`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub warning: Option<f64>,
    /// Level at which the threshold is critical (same units as `warning`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub critical: Option<f64>,
    /// Fewest probes the window must hold before the threshold is judged, so a new monitor's
    /// first failure is not "0 % uptime". Defaults to 10.
    #[serde(default = "default_min_samples")]
    #[schemars(range(min = 1, max = 100000))]
    pub min_samples: u32,
    /// Alert severities for this threshold, overriding `spec.severities` (e.g. one AI provider
    /// failing is P2 even when critical, because the others take over).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severities: Option<ThresholdSeverities>,
}

fn default_min_samples() -> u32 {
    10
}

impl Threshold {
    /// Whether `value` is at or past `level` in this threshold's direction.
    pub fn breaches(&self, value: f64, level: f64) -> bool {
        match self.direction {
            Direction::Above => value > level,
            Direction::Below => value < level,
        }
    }

    /// The level `value` is at: Critical when past `critical`, Warning when past `warning`.
    pub fn level_of(&self, value: f64) -> ThresholdLevel {
        if self.critical.is_some_and(|c| self.breaches(value, c)) {
            ThresholdLevel::Critical
        } else if self.warning.is_some_and(|w| self.breaches(value, w)) {
            ThresholdLevel::Warning
        } else {
            ThresholdLevel::Ok
        }
    }
}

/// A statistic over a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ThresholdMetric {
    /// Percentage of probes that were up.
    Uptime,
    /// Percentage of probes that were down.
    ErrorRate,
    /// Mean probe latency in milliseconds.
    LatencyMean,
    /// 95th percentile probe latency in milliseconds.
    LatencyP95,
    /// 99th percentile probe latency in milliseconds.
    LatencyP99,
    /// Percentage of probes in which the component was up.
    ComponentAvailability,
    /// Percentage of probes in which the component was down (e.g. AI provider errors).
    ComponentErrorRate,
    /// Mean of the component's `valuePath` number (DB latency, cache hit rate).
    ComponentValue,
}

impl ThresholdMetric {
    /// Whether the metric is a percentage (0–100).
    pub fn is_percentage(self) -> bool {
        matches!(
            self,
            Self::Uptime | Self::ErrorRate | Self::ComponentAvailability | Self::ComponentErrorRate
        )
    }

    /// Whether the metric is about one component.
    pub fn is_component(self) -> bool {
        matches!(
            self,
            Self::ComponentAvailability | Self::ComponentErrorRate | Self::ComponentValue
        )
    }

    /// The only sensible direction, for metrics that have one.
    pub fn natural_direction(self) -> Option<Direction> {
        match self {
            Self::Uptime | Self::ComponentAvailability => Some(Direction::Below),
            Self::ComponentValue => None,
            _ => Some(Direction::Above),
        }
    }
}

/// Which side of a level is bad.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Direction {
    /// Bad when the statistic is above the level (error rates, latencies).
    Above,
    /// Bad when the statistic is below the level (uptime, availability, hit rates).
    Below,
}

/// How bad a threshold currently is.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum ThresholdLevel {
    /// Not past the warning level (or not enough samples yet).
    Ok,
    /// Past the warning level but not the critical one.
    Warning,
    /// Past the critical level.
    Critical,
}

/// Per-threshold severity overrides.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThresholdSeverities {
    /// Severity at the warning level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<Severity>,
    /// Severity at the critical level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical: Option<Severity>,
}
