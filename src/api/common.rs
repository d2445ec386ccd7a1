//! Types shared by all five kinds: durations, secret and object references, alert channels and
//! routes. Kept in one place so every kind spells the same idea the same way.

use std::{borrow::Cow, fmt, str::FromStr, time::Duration as StdDuration};

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use super::validation::Errors;

pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};

/// Regular expression every duration string matches: one or more `<integer><unit>` parts with
/// unit `ms`, `s`, `m`, `h`, `d` (24h) or `w` (7d), e.g. `30s`, `5m`, `1h30m`, `7d`.
pub const DURATION_PATTERN: &str = r"^([0-9]+(ms|s|m|h|d|w))+$";

/// Pattern of the URL fields the operator sends requests to (alert sinks, webhooks, storage and
/// DNS API endpoints): an `http` or `https` URL. The schema checks only the scheme.
pub const HTTP_URL_PATTERN: &str = r"^https?://";

/// Pattern of a lowercase RFC 1123 (DNS) label, as Kubernetes requires of most object names.
/// Also the form of names other fields, status, events and alerts refer to (a step, task,
/// check, threshold, remediation, channel or region), so they fit in object names and labels.
pub const DNS_LABEL_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// A length of time written the way operators write it: `30s`, `5m`, `24h`, `7d`, `1h30m`.
///
/// Kept as the user's string (so status and `kubectl get` show what they wrote) and parsed on
/// use; the CRD schema carries [`DURATION_PATTERN`] so the API server rejects malformed values.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Duration(pub String);

/// Why a duration string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("must be a duration such as 30s, 5m, 24h or 7d (got {0:?})")]
    Malformed(String),
    #[error("duration {0:?} is too long")]
    Overflow(String),
}

impl Duration {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// Parses the string. `0s` is a valid zero duration.
    pub fn parse(&self) -> Result<StdDuration, DurationError> {
        parse_duration(&self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Duration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s)?;
        Ok(Self(s.to_string()))
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            // Bounded so CEL rules comparing durations stay within the API server's cost budget.
            "maxLength": 32,
        })
    }
}

/// Parses `30s`, `5m`, `1h30m`, `7d`, `2w`, `250ms` into a [`StdDuration`].
pub fn parse_duration(text: &str) -> Result<StdDuration, DurationError> {
    let malformed = || DurationError::Malformed(text.to_string());
    if text.is_empty() {
        return Err(malformed());
    }
    let mut total: u64 = 0; // milliseconds
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(malformed());
        }
        let value: u64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError::Overflow(text.to_string()))?;
        rest = &rest[digits..];
        let (unit_ms, unit_len) = if rest.starts_with("ms") {
            (1, 2)
        } else {
            match rest.as_bytes().first() {
                Some(b's') => (1_000, 1),
                Some(b'm') => (60_000, 1),
                Some(b'h') => (3_600_000, 1),
                Some(b'd') => (86_400_000, 1),
                Some(b'w') => (604_800_000, 1),
                _ => return Err(malformed()),
            }
        };
        rest = &rest[unit_len..];
        total = value
            .checked_mul(unit_ms)
            .and_then(|part| total.checked_add(part))
            .ok_or_else(|| DurationError::Overflow(text.to_string()))?;
    }
    Ok(StdDuration::from_millis(total))
}

/// Validates an optional duration field and returns its value when present and well formed.
pub fn check_duration(
    errors: &mut Errors,
    path: &str,
    value: Option<&Duration>,
) -> Option<StdDuration> {
    value.and_then(|d| errors.check(path, d.parse()))
}

/// A key of a Secret in the resource's own namespace. Secrets are only ever referenced: their
/// values are read when needed and never copied into status, events or logs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeyRef {
    /// Name of the Secret, in the same namespace as the resource.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// A key of a ConfigMap in the resource's own namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigMapKeyRef {
    /// Name of the ConfigMap, in the same namespace as the resource.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the ConfigMap's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// A reference to another watchkeeper resource (or any object) by name in the same namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalObjectRef {
    /// Name of the object, in the same namespace as the resource.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Kinds of workload watchkeeper can scale, roll back or fence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
}

/// A Deployment or StatefulSet in the resource's own namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadRef {
    /// Kind of the workload.
    pub kind: WorkloadKind,
    /// Name of the workload, in the same namespace as the resource.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Where a value comes from when it must not be written into the resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValueFrom {
    /// A key of a Secret in the resource's namespace.
    pub secret_key_ref: SecretKeyRef,
}

/// An HTTP header: a plain value, or a value read from a Secret (for credentials).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.value) != has(self.valueFrom)",
    "message": "exactly one of value or valueFrom must be set"
}]))]
pub struct HttpHeader {
    /// Header name, e.g. `Accept` or `Authorization`.
    #[schemars(
        length(min = 1, max = 256),
        regex(pattern = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
    )]
    pub name: String,
    /// Plain header value. Not allowed for credential headers (`Authorization`, `Cookie`,
    /// `X-Api-Key`, …): use `valueFrom.secretKeyRef` for those.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Header value read from a Secret; never logged nor copied into status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ValueFrom>,
}

/// Header names whose values are credentials and must come from a Secret.
pub const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "api-key",
    "x-auth-token",
];

/// Validates a list of headers: exactly one value source each, and credentials only by reference.
pub fn check_headers(errors: &mut Errors, path: &str, headers: &[HttpHeader]) {
    for (i, header) in headers.iter().enumerate() {
        let here = format!("{path}[{i}]");
        match (&header.value, &header.value_from) {
            (Some(_), Some(_)) | (None, None) => {
                errors.push(&here, "exactly one of value or valueFrom must be set")
            }
            (Some(_), None) if CREDENTIAL_HEADERS.contains(&header.name.to_ascii_lowercase().as_str()) => {
                errors.push(
                    format!("{here}.value"),
                    format!(
                        "header {:?} carries a credential: reference it with valueFrom.secretKeyRef instead of an inline value",
                        header.name
                    ),
                )
            }
            _ => {}
        }
    }
}

/// Incident severity, as both guides use it: P0 page immediately … P3 backlog.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum Severity {
    /// Critical: page immediately (complete outage, data loss).
    P0,
    /// High: alert within the hour (partial outage, degraded database).
    P1,
    /// Medium: next business day (one feature or provider down, fallbacks working).
    P2,
    /// Low: backlog.
    P3,
}

/// Where alerts go and how often. Shared by every kind that alerts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlertingSpec {
    /// Named destinations for notifications.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub channels: Vec<AlertChannel>,
    /// Which severities go to which channels. With no routes, every alert goes to every channel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub routes: Vec<AlertRoute>,
    /// How long to wait before notifying again about an alert that is still firing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<Duration>,
    /// Whether a notification is sent when an alert resolves. Defaults to true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_resolved: Option<bool>,
    /// Upper bound on notifications per channel per hour, whatever fires; protects on-call
    /// people from storms. Unset means no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_notifications_per_hour: Option<u32>,
}

/// Sends alerts of the listed severities to the named channels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlertRoute {
    /// Severities this route matches; empty matches all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severities: Vec<Severity>,
    /// Names of channels in `alerting.channels`.
    #[schemars(length(min = 1, max = 16))]
    pub channels: Vec<String>,
}

/// One notification destination. Exactly one of the sink fields is set; endpoints that are
/// secrets themselves (Slack webhook URLs, PagerDuty routing keys) are Secret references.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "[has(self.alertmanager), has(self.slack), has(self.pagerDuty), has(self.webhook), has(self.email)].filter(x, x).size() == 1",
    "message": "exactly one of alertmanager, slack, pagerDuty, webhook or email must be set"
}]))]
pub struct AlertChannel {
    /// Name routes refer to.
    #[schemars(
        regex(pattern = DNS_LABEL_PATTERN),
        length(min = 1, max = 63)
    )]
    pub name: String,
    /// Prometheus Alertmanager (API v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alertmanager: Option<AlertmanagerSink>,
    /// Slack incoming webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackSink>,
    /// PagerDuty Events API v2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pager_duty: Option<PagerDutySink>,
    /// Generic JSON webhook, optionally signed with HMAC-SHA256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookSink>,
    /// E-mail over SMTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailSink>,
}

/// Prometheus Alertmanager reached over its v2 API (`POST /api/v2/alerts`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlertmanagerSink {
    /// Base URL of Alertmanager, e.g. `http://alertmanager.monitoring:9093`.
    #[schemars(regex(pattern = HTTP_URL_PATTERN))]
    pub url: String,
    /// Optional bearer token for an authenticating proxy in front of Alertmanager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_secret_ref: Option<SecretKeyRef>,
}

/// Slack incoming webhook. The webhook URL is itself a credential, so it is read from a Secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlackSink {
    /// Secret key holding the incoming-webhook URL.
    pub webhook_url_secret_ref: SecretKeyRef,
    /// Channel override such as `#ops-alerts`, where the webhook allows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

/// PagerDuty Events API v2 (`trigger` and `resolve` with a `dedup_key`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PagerDutySink {
    /// Secret key holding the integration's routing key.
    pub routing_key_secret_ref: SecretKeyRef,
    /// Events API endpoint; defaults to PagerDuty's public `https://events.pagerduty.com/v2/enqueue`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = HTTP_URL_PATTERN))]
    pub url: Option<String>,
}

/// A generic JSON webhook (payload documented in `docs/alerting.md`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookSink {
    /// URL the JSON payload is POSTed to.
    #[schemars(regex(pattern = HTTP_URL_PATTERN))]
    pub url: String,
    /// When set, each request carries `X-Watchkeeper-Signature: sha256=<hex HMAC of the body>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac_secret_ref: Option<SecretKeyRef>,
    /// Extra headers, e.g. an authorization header from a Secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub headers: Vec<HttpHeader>,
}

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SmtpTls {
    /// Plain connection (only for a relay on the same host or cluster).
    None,
    /// Upgrade with STARTTLS (usually port 587).
    StartTls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

/// E-mail over SMTP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmailSink {
    /// SMTP server host name.
    #[schemars(length(min = 1))]
    pub host: String,
    /// SMTP server port.
    #[serde(default = "default_smtp_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// Connection security; defaults to StartTls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<SmtpTls>,
    /// Sender address.
    #[schemars(length(min = 3))]
    pub from: String,
    /// Recipient addresses.
    #[schemars(length(min = 1))]
    pub to: Vec<String>,
    /// SMTP user name, from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_secret_ref: Option<SecretKeyRef>,
    /// SMTP password, from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<SecretKeyRef>,
    /// Extra PEM CA certificates to trust for a relay with a private CA (same shape as a
    /// HealthMonitor's `request.tls.caBundle`); the system roots are trusted in any case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<crate::api::health_monitor::CaBundleSource>,
}

fn default_smtp_port() -> u16 {
    587
}

/// Validates an alerting block: one sink per channel, unique names, routes naming real channels.
pub fn check_alerting(errors: &mut Errors, path: &str, alerting: &AlertingSpec) {
    let mut names = std::collections::BTreeSet::new();
    for (i, channel) in alerting.channels.iter().enumerate() {
        let here = format!("{path}.channels[{i}]");
        if !names.insert(channel.name.as_str()) {
            errors.push(
                format!("{here}.name"),
                format!("duplicate channel name {:?}", channel.name),
            );
        }
        let sinks = [
            channel.alertmanager.is_some(),
            channel.slack.is_some(),
            channel.pager_duty.is_some(),
            channel.webhook.is_some(),
            channel.email.is_some(),
        ];
        if sinks.iter().filter(|set| **set).count() != 1 {
            errors.push(
                &here,
                "exactly one of alertmanager, slack, pagerDuty, webhook or email must be set",
            );
        }
        if let Some(webhook) = &channel.webhook {
            check_headers(errors, &format!("{here}.webhook.headers"), &webhook.headers);
        }
    }
    for (i, route) in alerting.routes.iter().enumerate() {
        for (j, name) in route.channels.iter().enumerate() {
            if !names.contains(name.as_str()) {
                errors.push(
                    format!("{path}.routes[{i}].channels[{j}]"),
                    format!("no channel named {name:?} in {path}.channels"),
                );
            }
        }
    }
    if let Some(repeat) = &alerting.repeat_interval {
        errors.check(&format!("{path}.repeatInterval"), repeat.parse());
    }
}

/// HTTP request methods a probe or trigger may use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// `GET`, the default.
    #[default]
    Get,
    /// `HEAD`: status and headers only.
    Head,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
    /// `OPTIONS`.
    Options,
}

/// Pattern of one accepted-status entry: a code (`200`), a class (`2xx`) or an inclusive range
/// (`200-299`).
pub const STATUS_CODE_PATTERN: &str = r"^([1-5][0-9][0-9](-[1-5][0-9][0-9])?|[1-5]xx)$";

/// Whether `code` is accepted by one entry of a status-code list (see [`STATUS_CODE_PATTERN`]).
/// Malformed entries accept nothing.
pub fn status_code_matches(entry: &str, code: u16) -> bool {
    if let Some(class) = entry.strip_suffix("xx") {
        return class.parse::<u16>().is_ok_and(|c| code / 100 == c);
    }
    match entry.split_once('-') {
        Some((low, high)) => match (low.parse::<u16>(), high.parse::<u16>()) {
            (Ok(low), Ok(high)) => (low..=high).contains(&code),
            _ => false,
        },
        None => entry.parse::<u16>().is_ok_and(|c| c == code),
    }
}

/// Validates a list of accepted status codes: each entry matches [`STATUS_CODE_PATTERN`] and
/// ranges run low to high.
pub fn check_status_codes(errors: &mut Errors, path: &str, entries: &[String]) {
    for (i, entry) in entries.iter().enumerate() {
        let here = format!("{path}[{i}]");
        let well_formed = match entry.split_once('-') {
            Some((low, high)) => match (low.parse::<u16>(), high.parse::<u16>()) {
                (Ok(low), Ok(high))
                    if (100..=599).contains(&low) && (100..=599).contains(&high) =>
                {
                    if low > high {
                        errors.push(&here, format!("range {entry:?} runs backwards"));
                    }
                    true
                }
                _ => false,
            },
            None => {
                entry.parse::<u16>().is_ok_and(|c| (100..=599).contains(&c))
                    || entry
                        .strip_suffix("xx")
                        .is_some_and(|c| matches!(c, "1" | "2" | "3" | "4" | "5"))
            }
        };
        if !well_formed {
            errors.push(
                &here,
                format!("{entry:?} is not a status code (200), class (2xx) or range (200-299)"),
            );
        }
    }
}

/// An alert that is firing and has been notified, kept in status so de-duplication and repeat
/// intervals survive operator restarts and leader changes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenAlert {
    /// Stable de-duplication key (also the PagerDuty `dedup_key`), e.g. `threshold/error-rate`.
    pub key: String,
    /// Severity the alert was sent with.
    pub severity: Severity,
    /// When the condition behind the alert started.
    pub since: Time,
    /// When the channels were last notified; drives `repeatInterval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_notified: Option<Time>,
    /// One-line summary as sent to the channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// Validates an IANA time zone name such as `America/New_York` or `UTC`.
pub fn check_time_zone(errors: &mut Errors, path: &str, zone: &str) -> Option<chrono_tz::Tz> {
    match zone.parse::<chrono_tz::Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            errors.push(
                path,
                format!(
                    "unknown time zone {zone:?} (use an IANA name such as UTC or America/New_York)"
                ),
            );
            None
        }
    }
}

/// TLS mode of a PostgreSQL connection, libpq's `sslmode` in Kubernetes enum spelling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS only if the server insists.
    Allow,
    /// TLS when the server offers it (libpq's default).
    #[default]
    Prefer,
    /// TLS always, certificate not checked.
    Require,
    /// TLS always, certificate checked against `caCertSecretRef`.
    #[serde(rename = "VerifyCA")]
    VerifyCa,
    /// TLS always, certificate and host name checked.
    VerifyFull,
}

impl SslMode {
    /// The value libpq and `pg_dump` expect in `sslmode`.
    pub fn as_libpq(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Allow => "allow",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// How to reach a PostgreSQL database: either a whole connection URI kept in a Secret, or its
/// parts with the password in a Secret. Used by backups, maintenance tasks and failover steps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.uriSecretRef) ? !(has(self.host) || has(self.port) || has(self.database) || has(self.user) || has(self.passwordSecretRef)) : (has(self.host) && has(self.database) && has(self.user))",
    "message": "set either uriSecretRef alone, or host, database and user (with passwordSecretRef)"
}]))]
pub struct PostgresConnection {
    /// A Secret key holding a complete `postgres://user:password@host:port/database` URI, for
    /// providers that hand out connection strings (Supabase, RDS proxies). Excludes the parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri_secret_ref: Option<SecretKeyRef>,
    /// Server host name or address, e.g. `db.example.com` or a Service name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub host: Option<String>,
    /// Server port; 5432 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u16>,
    /// Database name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub database: Option<String>,
    /// Role to connect as. Not a secret; the password is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub user: Option<String>,
    /// Secret key holding the role's password. Unset for certificate or trust authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<SecretKeyRef>,
    /// TLS mode; `Prefer` when unset. Managed providers usually want `Require` or stricter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_mode: Option<SslMode>,
    /// Secret key holding the PEM CA certificate that `VerifyCA` and `VerifyFull` check against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert_secret_ref: Option<SecretKeyRef>,
}

/// Validates a connection: either `uriSecretRef` alone, or host, database and user.
pub fn check_postgres_connection(errors: &mut Errors, path: &str, connection: &PostgresConnection) {
    if connection.uri_secret_ref.is_some() {
        let parts = [
            ("host", connection.host.is_some()),
            ("port", connection.port.is_some()),
            ("database", connection.database.is_some()),
            ("user", connection.user.is_some()),
            (
                "passwordSecretRef",
                connection.password_secret_ref.is_some(),
            ),
        ];
        for (name, _) in parts.iter().filter(|(_, set)| *set) {
            errors.push(
                format!("{path}.{name}"),
                "must not be set together with uriSecretRef (the URI carries it)",
            );
        }
    } else {
        let required = [
            ("host", connection.host.is_none()),
            ("database", connection.database.is_none()),
            ("user", connection.user.is_none()),
        ];
        for (name, _) in required.iter().filter(|(_, missing)| *missing) {
            errors.push(
                format!("{path}.{name}"),
                "required unless uriSecretRef is set",
            );
        }
    }
    if connection.port == Some(0) {
        errors.push(format!("{path}.port"), "must be between 1 and 65535");
    }
}

/// Validates a block of SQL statements run against a database (a maintenance task's or a
/// failover step's `sql`): the connection, at least one statement, no blank statement, and a
/// well-formed `statementTimeout`. `path` names the block itself, e.g. `spec.tasks[0].sql`.
pub fn check_sql_statements(
    errors: &mut Errors,
    path: &str,
    connection: &PostgresConnection,
    statements: &[String],
    statement_timeout: Option<&Duration>,
) {
    check_postgres_connection(errors, &format!("{path}.connection"), connection);
    if statements.is_empty() {
        errors.push(format!("{path}.statements"), "needs at least one statement");
    }
    for (j, statement) in statements.iter().enumerate() {
        if statement.trim().is_empty() {
            errors.push(format!("{path}.statements[{j}]"), "must not be empty");
        }
    }
    check_duration(
        errors,
        &format!("{path}.statementTimeout"),
        statement_timeout,
    );
}

/// A value written into one key of a ConfigMap: a maintenance or read-only flag, a feature
/// switch, a fencing marker. Whoever writes it records the previous value so it can be restored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigMapValue {
    /// The ConfigMap key to set; the ConfigMap must exist, the key need not.
    pub config_map_key_ref: ConfigMapKeyRef,
    /// The value to write, e.g. `"true"` or `"read-only"`.
    #[schemars(length(max = 65536))]
    pub value: String,
}

/// Pattern of a local date-time without offset (`2026-01-06T02:00:00`), interpreted in the
/// resource's time zone; used for an RRULE's first occurrence (DTSTART) and its exclusions.
pub const LOCAL_DATE_TIME_PATTERN: &str =
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?$";

/// Parses a local date-time in the form of [`LOCAL_DATE_TIME_PATTERN`] (seconds optional).
pub fn parse_local_date_time(text: &str) -> Result<chrono::NaiveDateTime, String> {
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M"))
        .map_err(|_| {
            format!(
                "must be a local date-time such as 2026-01-06T02:00:00 (no offset: the time zone field applies), got {text:?}"
            )
        })
}

/// Checks an RRULE's first occurrence (`{path}.start`) and exclusions (`{path}.exdates[i]`),
/// recording each one that is not a local date-time. Returns the start with the exclusions that
/// parse, or `None` when the start does not parse (the rule cannot be built without it).
pub fn check_rrule_dates(
    errors: &mut Errors,
    path: &str,
    start: &str,
    exdates: &[String],
) -> Option<(chrono::NaiveDateTime, Vec<chrono::NaiveDateTime>)> {
    let start = errors.check(&format!("{path}.start"), parse_local_date_time(start));
    let mut parsed = Vec::new();
    for (i, text) in exdates.iter().enumerate() {
        if let Some(date) =
            errors.check(&format!("{path}.exdates[{i}]"), parse_local_date_time(text))
        {
            parsed.push(date);
        }
    }
    start.map(|start| (start, parsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30s").unwrap(), StdDuration::from_secs(30));
        assert_eq!(
            parse_duration("1h30m").unwrap(),
            StdDuration::from_secs(5400)
        );
        assert_eq!(
            parse_duration("7d").unwrap(),
            StdDuration::from_secs(7 * 86400)
        );
        assert_eq!(
            parse_duration("250ms").unwrap(),
            StdDuration::from_millis(250)
        );
        assert_eq!(
            parse_duration("2w").unwrap(),
            StdDuration::from_secs(14 * 86400)
        );
        for bad in ["", "5", "m", "5x", "1.5h", "-5m", "5 m", "5mm"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(matches!(
            parse_duration("99999999999999999999d"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn credential_header_must_be_a_reference() {
        let mut errors = Errors::new();
        let headers = vec![
            HttpHeader {
                name: "Accept".into(),
                value: Some("application/json".into()),
                value_from: None,
            },
            HttpHeader {
                name: "Authorization".into(),
                value: Some("Bearer abc".into()),
                value_from: None,
            },
        ];
        check_headers(&mut errors, "spec.target.headers", &headers);
        let errors = errors.into_vec();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "spec.target.headers[1].value");
    }

    #[test]
    fn sql_statements_flag_each_problem_under_the_block() {
        let connection = PostgresConnection {
            host: Some("db".into()),
            ..PostgresConnection::default()
        };
        let statements = vec!["SELECT 1".to_string(), "  ".to_string()];
        let mut errors = Errors::new();
        check_sql_statements(
            &mut errors,
            "spec.steps[2].sql",
            &connection,
            &statements,
            Some(&Duration::new("soon")),
        );
        let paths: Vec<String> = errors.into_vec().into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "spec.steps[2].sql.connection.database",
                "spec.steps[2].sql.connection.user",
                "spec.steps[2].sql.statements[1]",
                "spec.steps[2].sql.statementTimeout",
            ]
        );

        let mut errors = Errors::new();
        check_sql_statements(&mut errors, "spec.tasks[0].sql", &connection, &[], None);
        let paths: Vec<String> = errors.into_vec().into_iter().map(|e| e.path).collect();
        assert!(paths.contains(&"spec.tasks[0].sql.statements".to_string()));
    }
}
