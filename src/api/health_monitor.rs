//! HealthMonitor: a probe of one endpoint and what its results mean.
//!
//! The spec says where to probe and how (`target`, `request`), what makes one probe *up*
//! (`checks`), which parts of the response body are components with their own health
//! (`components`), how results turn into health over time (`failureThreshold`, `windows`,
//! `thresholds`), and what happens then (`alerting`, `remediations`).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{
    AlertingSpec, ConfigMapKeyRef, Duration, HttpHeader, HttpMethod, LocalObjectRef,
    STATUS_CODE_PATTERN, SecretKeyRef, Severity,
};

pub mod json_path;
mod remediation;
mod status;
mod threshold;
mod validate;

pub use remediation::*;
pub use status::*;
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

/// What is probed. Exactly one of `url`, `service` and `tcp` is set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "[has(self.url), has(self.service), has(self.tcp)].filter(x, x).size() == 1",
    "message": "exactly one of url, service or tcp must be set"
}]))]
pub struct ProbeTarget {
    /// Absolute http(s) URL, e.g. `https://app.example.com/api/health`. For endpoints outside
    /// the cluster or behind an Ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://[^\s/$.?#][^\s]*$"), length(max = 2048))]
    pub url: Option<String>,
    /// A Service in the monitor's namespace, probed over HTTP(S) at its cluster DNS name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceTarget>,
    /// A TCP connect probe: up when a connection to host:port opens within the timeout. For
    /// databases, caches and other non-HTTP dependencies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpTarget>,
}

/// An HTTP(S) endpoint of a Service in the monitor's namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceTarget {
    /// Name of the Service.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Service port number.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Request path, with query if any. Defaults to `/`.
    #[serde(default = "default_path")]
    #[schemars(regex(pattern = r"^/[^\s]*$"), length(max = 2048))]
    pub path: String,
    /// `http` or `https`. Defaults to `http`, what Services usually serve inside the cluster.
    #[serde(default)]
    pub scheme: Scheme,
}

fn default_path() -> String {
    "/".to_string()
}

/// URL scheme of a Service target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    #[default]
    Http,
    Https,
}

/// A host and port to open a TCP connection to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpTarget {
    /// DNS name or IP address, e.g. `db.example.com` or `postgres.prod.svc`.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[A-Za-z0-9.:\[\]-]+$"))]
    pub host: String,
    /// Port number.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
}

/// How an HTTP probe request is made.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRequest {
    /// HTTP method. Defaults to GET.
    #[serde(default)]
    pub method: HttpMethod,
    /// Request headers; credential headers (`Authorization`, …) only through
    /// `valueFrom.secretKeyRef`, resolved at probe time and never logged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub headers: Vec<HttpHeader>,
    /// Request body, e.g. a JSON document for a POST health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub body: Option<String>,
    /// TLS settings for https targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsOptions>,
    /// Whether and how far redirects are followed. Defaults to following up to 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirects: Option<RedirectPolicy>,
}

/// TLS settings. Certificates are verified against the system roots (plus `caBundle`) unless
/// `insecureSkipVerify` is set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!(has(self.insecureSkipVerify) && self.insecureSkipVerify && has(self.caBundle))",
    "message": "caBundle has no effect with insecureSkipVerify",
    "fieldPath": ".caBundle"
}]))]
pub struct TlsOptions {
    /// Extra PEM CA certificates to trust, e.g. a private CA for in-cluster endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<CaBundleSource>,
    /// Accept any certificate. Off by default and meant for test environments only: it hides
    /// exactly the failures a probe should catch.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Name to send as SNI and verify the certificate against, when it differs from the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub server_name: Option<String>,
    /// A `kubernetes.io/tls` Secret (`tls.crt`, `tls.key`) presented as client certificate,
    /// for endpoints that require mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate_secret_ref: Option<LocalObjectRef>,
}

/// Where a PEM CA bundle is read from: exactly one of a ConfigMap key or a Secret key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.configMapKeyRef) != has(self.secretKeyRef)",
    "message": "exactly one of configMapKeyRef or secretKeyRef must be set"
}]))]
pub struct CaBundleSource {
    /// A ConfigMap key holding the PEM bundle (CA certificates are not secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_key_ref: Option<ConfigMapKeyRef>,
    /// A Secret key holding the PEM bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeyRef>,
}

/// Redirect handling.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedirectPolicy {
    /// Follow 3xx redirects. When false, the redirect response itself is checked (so list 3xx
    /// in `checks.statusCodes`). Defaults to true.
    #[serde(default = "default_true")]
    pub follow: bool,
    /// Most redirects followed before the probe fails. Defaults to 10.
    #[serde(default = "default_redirect_limit")]
    #[schemars(range(min = 1, max = 20))]
    pub limit: u32,
}

fn default_true() -> bool {
    true
}

fn default_redirect_limit() -> u32 {
    10
}

/// What makes one probe *up*: every check listed must pass.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProbeChecks {
    /// Accepted status codes: codes (`200`), classes (`2xx`) or ranges (`200-299`). Defaults to
    /// `2xx`. Ignored for tcp targets.
    #[serde(default = "default_status_codes")]
    #[schemars(length(min = 1, max = 16), inner(regex(pattern = STATUS_CODE_PATTERN)))]
    pub status_codes: Vec<String>,
    /// A probe slower than this is down even if everything else passes. Unset means only the
    /// timeout applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency: Option<Duration>,
    /// Assertions on the JSON response body, e.g. `$.status == "healthy"`. A body that is not
    /// JSON fails them all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub json: Vec<JsonAssertion>,
    /// Certificate expiry horizon: a probe is down when the server certificate expires within
    /// this time (e.g. `14d`), so renewal failures are caught before users see them. https only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_certificate_validity: Option<Duration>,
}

impl Default for ProbeChecks {
    fn default() -> Self {
        Self {
            status_codes: default_status_codes(),
            max_latency: None,
            json: Vec::new(),
            min_certificate_validity: None,
        }
    }
}

fn default_status_codes() -> Vec<String> {
    vec!["2xx".to_string()]
}

/// One assertion on the JSON body: the value at `path` compared with `value` (or `values`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "self.operator == 'exists' ? (!has(self.value) && !has(self.values)) : self.operator == 'in' ? (has(self.values) && !has(self.value)) : (has(self.value) && !has(self.values))",
    "message": "exists takes no value, in takes values, every other operator takes value"
}]))]
pub struct JsonAssertion {
    /// JSONPath of the value, rooted at `$`: dotted names and `[index]` / `['name']`
    /// brackets, e.g. `$.services.database` or `$.checks[0].status`.
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^\$"))]
    pub path: String,
    /// How the value is compared.
    pub operator: JsonOperator,
    /// The expected value, written as a string: compared as a number when the body holds a
    /// number (`"200"`), as a boolean for booleans (`"true"`), as text otherwise; a regular
    /// expression for `matches`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub value: Option<String>,
    /// Accepted values for `in`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 32))]
    pub values: Vec<String>,
}

/// Comparison of a JSON assertion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum JsonOperator {
    /// Equal to `value`.
    #[serde(rename = "==")]
    Eq,
    /// Not equal to `value` (a missing value is not equal).
    #[serde(rename = "!=")]
    Ne,
    /// A number less than `value`.
    #[serde(rename = "<")]
    Lt,
    /// A number greater than `value`.
    #[serde(rename = ">")]
    Gt,
    /// Equal to one of `values`.
    #[serde(rename = "in")]
    In,
    /// Present (any value, including null).
    #[serde(rename = "exists")]
    Exists,
    /// A string matching the regular expression in `value`.
    #[serde(rename = "matches")]
    Matches,
}

/// A named part of the application whose state is read from the JSON body, e.g. `database` at
/// `$.services.database`. Each component has its own up/down per probe, availability statistics
/// and (through `valuePath`) an optional number such as its latency or hit rate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.jsonPath) || has(self.valuePath)",
    "message": "set jsonPath, valuePath or both"
}]))]
pub struct Component {
    /// Name used in status, alerts and thresholds, e.g. `database` or `openai`.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9_]*[a-z0-9])?$")
    )]
    pub name: String,
    /// JSONPath of the component's state, e.g. `$.services.ai_providers.openai`. The component
    /// is up when the value is one of `healthyValues`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^\$"))]
    pub json_path: Option<String>,
    /// Values of `jsonPath` that mean up, compared as text (`true` matches a JSON boolean).
    /// Defaults to `ok`, `healthy`, `up` and `true`.
    #[serde(default = "default_healthy_values")]
    #[schemars(length(min = 1, max = 16))]
    pub healthy_values: Vec<String>,
    /// JSONPath of a number the endpoint reports for this component (DB latency in ms, cache
    /// hit rate in %), kept as statistics and usable in `ComponentValue` thresholds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^\$"))]
    pub value_path: Option<String>,
}

fn default_healthy_values() -> Vec<String> {
    ["ok", "healthy", "up", "true"]
        .into_iter()
        .map(String::from)
        .collect()
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
