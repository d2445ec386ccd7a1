//! HealthMonitor: a probe of one endpoint and what its results mean.
//!
//! The spec says where to probe and how (`target`, `request`), what makes one probe *up*
//! (`checks`), which parts of the response body are components with their own health
//! (`components`), how results turn into health over time (`failureThreshold`, `windows`,
//! `thresholds`), and what happens then (`alerting`, `remediations`).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{AlertingSpec, Duration, Severity};

mod checks;
pub mod json_path;
mod remediation;
mod status;
mod target;
mod threshold;
mod validate;

pub use checks::*;
pub use remediation::*;
pub use status::*;
pub use target::*;
pub use threshold::*;

/// A probe of one endpoint and what its results mean.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "watchkeeper.dev",
    version = "v1alpha1",
    kind = "HealthMonitor",
    namespaced,
    status = "HealthMonitorStatus",
    shortname = "hm",
    category = "watchkeeper",
    doc = "A probe of one endpoint (an HTTP URL, a Service, or a TCP port) and what its results mean: checks that make one probe up, components read from the response body, statistics over rolling windows with warning and critical thresholds, alerts, and remediation (roll back, scale, switch a ConfigMap key, request a failover).",
    printcolumn = r#"{"name":"Target","type":"string","jsonPath":".status.target"}"#,
    printcolumn = r#"{"name":"Health","type":"string","jsonPath":".status.health"}"#,
    printcolumn = r#"{"name":"P95 ms","type":"number","jsonPath":".status.p95LatencyMs"}"#,
    printcolumn = r#"{"name":"Uptime %","type":"number","jsonPath":".status.uptime"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!has(self.request) || !has(self.target.tcp)",
        "message": "request options apply to HTTP targets only, not to a tcp target",
        "fieldPath": ".request"
    },
    {
        "rule": "!has(self.thresholds) || self.thresholds.all(t, t.window in self.windows)",
        "message": "every threshold's window must be listed in windows",
        "fieldPath": ".thresholds"
    },
    {
        "rule": "!has(self.thresholds) || self.thresholds.all(t, !has(t.component) || (has(self.components) && self.components.exists(c, c.name == t.component)))",
        "message": "every threshold's component must be named in components",
        "fieldPath": ".thresholds"
    }
]))]
pub struct HealthMonitorSpec {
    /// What is probed: exactly one of an absolute `url`, an in-cluster `service`, or a `tcp`
    /// host and port.
    pub target: ProbeTarget,
    /// How the HTTP request is made (method, headers, body, TLS, redirects). HTTP targets only;
    /// everything defaults to a plain GET.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<HttpRequest>,
    /// Time between the starts of two probes. Defaults to 30s.
    #[serde(default = "default_interval")]
    pub interval: Duration,
    /// Longest one probe may take (connect, TLS, request, body) before it counts as down.
    /// Must be shorter than `interval`. Defaults to 10s.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// What makes one probe *up*. By default: any 2xx status within the timeout.
    #[serde(default)]
    pub checks: ProbeChecks,
    /// Named parts of the application read from the JSON body (database, cache, storage, each
    /// AI provider), each with its own up/down, statistics and thresholds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub components: Vec<Component>,
    /// Consecutive failed probes after which health becomes Down. Defaults to 3, so one lost
    /// packet does not page anyone.
    #[serde(default = "default_failure_threshold")]
    #[schemars(range(min = 1, max = 100))]
    pub failure_threshold: u32,
    /// Consecutive successful probes after which a Down monitor is up again. Defaults to 1.
    #[serde(default = "default_success_threshold")]
    #[schemars(range(min = 1, max = 100))]
    pub success_threshold: u32,
    /// Rolling windows statistics are kept over (and reported in status), e.g. `5m`, `1h`,
    /// `24h`, `30d`. Thresholds name one of these. Defaults to 5m, 1h and 24h.
    #[serde(default = "default_windows")]
    #[schemars(length(min = 1, max = 8))]
    pub windows: Vec<Duration>,
    /// Warning and critical levels on window statistics: the guides' alert-threshold tables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub thresholds: Vec<Threshold>,
    /// Alert severity (P0 most urgent … P3) for each unhealthy state; a threshold may override
    /// its own.
    #[serde(default)]
    pub severities: HealthSeverities,
    /// Where alerts go, how often they repeat, whether resolutions are sent. Without it, health
    /// is still tracked in status but nobody is notified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerting: Option<AlertingSpec>,
    /// Automatic actions when a threshold is crossed or the target is down: roll back, scale,
    /// set a ConfigMap key, request a failover; each with a cooldown and an attempt limit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub remediations: Vec<Remediation>,
}

fn default_interval() -> Duration {
    Duration::new("30s")
}

fn default_timeout() -> Duration {
    Duration::new("10s")
}

fn default_failure_threshold() -> u32 {
    3
}

fn default_success_threshold() -> u32 {
    1
}

fn default_windows() -> Vec<Duration> {
    ["5m", "1h", "24h"].into_iter().map(Duration::new).collect()
}

/// Alert severity for each unhealthy state of a monitor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthSeverities {
    /// A threshold at its warning level. Defaults to P2.
    #[serde(default = "default_warning_severity")]
    pub warning: Severity,
    /// A threshold at its critical level. Defaults to P1.
    #[serde(default = "default_critical_severity")]
    pub critical: Severity,
    /// The target is down (`failureThreshold` consecutive failed probes). Defaults to P0.
    #[serde(default = "default_down_severity")]
    pub down: Severity,
}

impl Default for HealthSeverities {
    fn default() -> Self {
        Self {
            warning: default_warning_severity(),
            critical: default_critical_severity(),
            down: default_down_severity(),
        }
    }
}

fn default_warning_severity() -> Severity {
    Severity::P2
}

fn default_critical_severity() -> Severity {
    Severity::P1
}

fn default_down_severity() -> Severity {
    Severity::P0
}

impl HealthMonitorSpec {
    /// The target as shown in `kubectl get` (`status.target`): the URL, the Service URL or
    /// `host:port`.
    pub fn target_display(&self) -> String {
        if let Some(url) = &self.target.url {
            return url.clone();
        }
        if let Some(service) = &self.target.service {
            let scheme = match service.scheme {
                Scheme::Http => "http",
                Scheme::Https => "https",
            };
            return format!(
                "{scheme}://{}:{}{}",
                service.name, service.port, service.path
            );
        }
        if let Some(tcp) = &self.target.tcp {
            return format!("tcp://{}:{}", tcp.host, tcp.port);
        }
        String::new()
    }
}

super::impl_has_conditions!(HealthMonitor);

#[cfg(test)]
mod tests;

#[cfg(test)]
mod schema_tests;
