//! PagerDuty Events API v2: `trigger` and `resolve` events with a `dedup_key`.
//!
//! The alert key is the `dedup_key`, so PagerDuty folds repeats into the open incident and a
//! resolve closes it. Severity mapping: P0 → `critical`, P1 → `error`, P2 → `warning`,
//! P3 → `info`.

use serde_json::{Value, json};

use super::{JsonPost, post_json, rfc3339, truncate};
use crate::alert::{Notification, NotificationKind, PagerDutyConfig, SinkError};

/// PagerDuty's public Events API v2 endpoint.
pub const DEFAULT_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// PagerDuty limits `payload.summary` to 1024 characters.
const SUMMARY_MAX: usize = 1024;
/// PagerDuty limits `dedup_key` to 255 characters.
const DEDUP_KEY_MAX: usize = 255;

/// The event body. Triggers and repeats are `trigger` events (PagerDuty de-duplicates
/// them by `dedup_key`); resolves carry only `routing_key`, `event_action` and `dedup_key`.
pub fn payload(routing_key: &str, n: &Notification) -> Value {
    let alert = &n.alert;
    let dedup_key = truncate(&alert.key, DEDUP_KEY_MAX);
    if n.kind == NotificationKind::Resolve {
        return json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": dedup_key,
        });
    }
    let mut details = json!({
        "priority": alert.severity.as_str(),
        "labels": alert.labels,
    });
    if !alert.details.is_empty() {
        details["details"] = json!(alert.details);
    }
    if !alert.annotations.is_empty() {
        details["annotations"] = json!(alert.annotations);
    }
    let mut body = json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "client": "watchkeeper",
        "payload": {
            "summary": truncate(&alert.summary, SUMMARY_MAX),
            "source": alert.source,
            "severity": alert.severity.pagerduty(),
            "timestamp": rfc3339(alert.starts_at),
            "custom_details": details,
        },
    });
    if let Some(url) = &alert.generator_url {
        body["client_url"] = json!(url);
    }
    body
}

/// Posts the event; PagerDuty answers 202 Accepted (any 2xx is taken as accepted).
pub async fn send(
    http: &reqwest::Client,
    channel: &str,
    config: &PagerDutyConfig,
    n: &Notification,
) -> Result<(), SinkError> {
    post_json(
        http,
        JsonPost {
            channel,
            sink: "pagerDuty",
            url: config
                .url
                .clone()
                .unwrap_or_else(|| DEFAULT_URL.to_string()),
            body: payload(&config.routing_key, n).to_string().into_bytes(),
            headers: Vec::new(),
            bearer: None,
        },
    )
    .await
}
