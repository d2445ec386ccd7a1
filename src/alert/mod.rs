//! Alerting engine shared by every kind that alerts: routing by severity, de-duplication that
//! survives restarts, repeat and resolved notifications, per-channel rate limiting, and sinks that
//! speak Alertmanager v2, Slack incoming webhooks, PagerDuty Events API v2, a signed generic JSON
//! webhook and SMTP e-mail.
//!
//! No Kubernetes types live here: the controller (or the embedded run mode) converts the API's
//! `AlertingSpec` into an [`AlertingConfig`] with every Secret already resolved, feeds the set of
//! currently firing [`Alert`]s each round, and stores the returned [`AlertState`] in the
//! resource's status so that a restarted or newly elected operator sends nothing twice.
//!
//! Layout:
//! - [`route`]: which channels an alert of a given severity goes to.
//! - [`state`]: the persisted de-duplication and rate-limit state, and the pure decision core
//!   ([`state::decide`]) that turns firing alerts + state + config + now into notifications.
//! - [`status`]: the state as a flat list of open alerts for `status.openAlerts`, and back.
//! - [`engine`]: the dispatcher that sends a decision's notifications and records only successes.
//! - [`sinks`]: the wire formats.

pub mod engine;
pub mod error;
pub mod notice;
pub mod route;
pub mod sinks;
pub mod state;
pub mod status;

#[cfg(test)]
mod tests;

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use engine::{AlertEngine, RoundReport};
pub use error::{AlertConfigError, SinkError};
pub use state::{AlertRecord, AlertState, Decision, decide};
pub use status::OpenAlertEntry;

/// Incident severity as both operations guides use it: P0 pages immediately, P3 is backlog.
/// Ordered so that `P0 < P1`: the most severe sorts first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Severity {
    /// Critical: complete outage or data loss; page immediately.
    P0,
    /// High: partial outage; alert within the hour.
    P1,
    /// Medium: one feature or provider down with fallbacks working; next business day.
    P2,
    /// Low: backlog.
    P3,
}

impl Severity {
    /// The PagerDuty Events API v2 `payload.severity` for this level, also used as the
    /// Alertmanager `severity` label so that existing Alertmanager routes keep working.
    pub fn pagerduty(self) -> &'static str {
        match self {
            Self::P0 => "critical",
            Self::P1 => "error",
            Self::P2 => "warning",
            Self::P3 => "info",
        }
    }

    /// `P0` … `P3`, as written in the resources.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::P0 => "P0",
            Self::P1 => "P1",
            Self::P2 => "P2",
            Self::P3 => "P3",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One condition that is firing now, as the kind's evaluator reports it each round.
///
/// The engine never invents alerts: an alert that is absent from a round's firing set is
/// considered resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// Stable de-duplication key, e.g. `threshold/error-rate` or `component/database`. The same
    /// condition must produce the same key every round and across restarts; it is also the
    /// PagerDuty `dedup_key` (prefixed by the caller when keys must be unique across resources).
    pub key: String,
    /// How bad it is; drives routing and the severity every sink shows.
    pub severity: Severity,
    /// One line, shown as the Slack text, e-mail subject and PagerDuty summary.
    pub summary: String,
    /// Longer free text: what was measured, against which threshold, what to do.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
    /// Identifying labels (resource, namespace, component…); sent as Alertmanager labels, so
    /// they should not change while the alert fires.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Non-identifying annotations (runbook URL, dashboard…).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// What is affected, e.g. `HealthMonitor default/api`; PagerDuty's `payload.source`.
    pub source: String,
    /// Link back to where the alert comes from (Alertmanager `generatorURL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<String>,
    /// When the condition began (not when it was first notified).
    pub starts_at: DateTime<Utc>,
}

/// Engine-side alerting configuration: the API's `AlertingSpec` with Secrets resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertingConfig {
    /// Named destinations.
    pub channels: Vec<Channel>,
    /// Severity routes; empty means every alert goes to every channel.
    pub routes: Vec<Route>,
    /// Re-notify a still-firing alert this long after the last successful notification of a
    /// channel. `None` means notify once.
    pub repeat_interval: Option<Duration>,
    /// Notify channels when an alert stops firing.
    pub send_resolved: bool,
    /// Upper bound on notifications per channel in any rolling hour; `None` means no limit.
    pub max_notifications_per_hour: Option<u32>,
}

impl Default for AlertingConfig {
    fn default() -> Self {
        Self {
            channels: Vec::new(),
            routes: Vec::new(),
            repeat_interval: None,
            // The API's default: people want to know when it is over.
            send_resolved: true,
            max_notifications_per_hour: None,
        }
    }
}

/// Sends alerts of the listed severities to the named channels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Severities matched; empty matches all.
    pub severities: Vec<Severity>,
    /// Channel names (must exist in [`AlertingConfig::channels`]).
    pub channels: Vec<String>,
}

/// One named destination.
#[derive(Clone, Debug, PartialEq)]
pub struct Channel {
    /// Name routes refer to; also the key of per-channel state.
    pub name: String,
    /// How to reach it.
    pub sink: SinkConfig,
}

/// The five kinds of sink, with credentials already read from their Secrets.
#[derive(Clone, Debug, PartialEq)]
pub enum SinkConfig {
    /// Prometheus Alertmanager, API v2.
    Alertmanager(AlertmanagerConfig),
    /// Slack incoming webhook.
    Slack(SlackConfig),
    /// PagerDuty Events API v2.
    PagerDuty(PagerDutyConfig),
    /// Generic JSON webhook.
    Webhook(WebhookConfig),
    /// SMTP e-mail.
    Email(EmailConfig),
}

impl SinkConfig {
    /// Short name of the sink kind, for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Alertmanager(_) => "alertmanager",
            Self::Slack(_) => "slack",
            Self::PagerDuty(_) => "pagerDuty",
            Self::Webhook(_) => "webhook",
            Self::Email(_) => "email",
        }
    }
}

/// Alertmanager reached at `{url}/api/v2/alerts`.
#[derive(Clone, PartialEq, Eq)]
pub struct AlertmanagerConfig {
    /// Base URL, e.g. `http://alertmanager.monitoring:9093`.
    pub url: String,
    /// Bearer token for an authenticating proxy; never logged.
    pub bearer_token: Option<String>,
}

/// Slack incoming webhook.
#[derive(Clone, PartialEq, Eq)]
pub struct SlackConfig {
    /// The webhook URL (a credential: it is never logged).
    pub webhook_url: String,
    /// Channel override such as `#ops-alerts`, where the webhook allows it.
    pub channel: Option<String>,
}

/// PagerDuty Events API v2.
#[derive(Clone, PartialEq, Eq)]
pub struct PagerDutyConfig {
    /// The integration's routing key (a credential: never logged).
    pub routing_key: String,
    /// Events endpoint; [`sinks::pagerduty::DEFAULT_URL`] when `None`.
    pub url: Option<String>,
}

/// Generic JSON webhook; payload documented in `docs/alerting.md`.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// URL the payload is POSTed to.
    pub url: String,
    /// HMAC-SHA256 key; when set, requests carry `X-Watchkeeper-Signature: sha256=<hex>`.
    pub hmac_secret: Option<Vec<u8>>,
    /// Extra headers (name, value), values possibly credentials: never logged.
    pub headers: Vec<(String, String)>,
}

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text; only for a relay on the same host or cluster.
    None,
    /// Upgrade with STARTTLS (usually port 587).
    StartTls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

/// E-mail over SMTP.
#[derive(Clone, PartialEq, Eq)]
pub struct EmailConfig {
    /// SMTP server host name.
    pub host: String,
    /// SMTP server port.
    pub port: u16,
    /// Connection security.
    pub tls: SmtpTls,
    /// Sender address (`alerts@example.com` or `Watchkeeper <alerts@example.com>`).
    pub from: String,
    /// Recipient addresses.
    pub to: Vec<String>,
    /// User name and password for SMTP AUTH, when the server wants it.
    pub credentials: Option<(String, String)>,
    /// Extra trusted CA certificates (PEM) for a relay with a private CA; the system roots
    /// are trusted in any case.
    pub ca_pem: Option<Vec<u8>>,
}

// Debug by hand for the configs that hold credentials, so that `{:?}` never prints them.
impl std::fmt::Debug for AlertmanagerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertmanagerConfig")
            .field("url", &self.url)
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl std::fmt::Debug for SlackConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackConfig")
            .field("webhook_url", &"<redacted>")
            .field("channel", &self.channel)
            .finish()
    }
}

impl std::fmt::Debug for PagerDutyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PagerDutyConfig")
            .field("routing_key", &"<redacted>")
            .field("url", &self.url)
            .finish()
    }
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field(
                "hmac_secret",
                &self.hmac_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("header_names", &names)
            .finish()
    }
}

impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// Why a notification is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationKind {
    /// First notification of this alert to this channel (or after its severity changed).
    Trigger,
    /// Still firing, `repeat_interval` after the last notification.
    Repeat,
    /// Was notified, no longer firing.
    Resolve,
    /// A one-shot announcement (maintenance notice, failover progress), not an incident:
    /// delivered once per channel, never repeated nor resolved. See [`AlertEngine::notify`].
    Notice,
}

impl NotificationKind {
    /// `trigger`, `repeat` or `resolve`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trigger => "trigger",
            Self::Repeat => "repeat",
            Self::Resolve => "resolve",
            Self::Notice => "notice",
        }
    }
}

/// One message to one channel, as decided by [`decide`].
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    /// Why it is sent.
    pub kind: NotificationKind,
    /// Name of the channel it goes to.
    pub channel: String,
    /// The alert as it fires now, or (for a resolve) as it was last notified.
    pub alert: Alert,
    /// For a resolve: when the engine saw it stop firing (Alertmanager `endsAt`).
    pub ends_at: Option<DateTime<Utc>>,
    /// How many notifications of this alert the channel has received before this one.
    pub previous_count: u32,
    /// When the decision was made (the round's `now`).
    pub sent_at: DateTime<Utc>,
    /// A keep-alive re-post to Alertmanager (see [`state::ALERTMANAGER_REFRESH`]): not due
    /// by `repeat_interval`, exempt from the rate limit and not counted as a notification.
    pub refresh: bool,
}
