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

/// The Events API body. Triggers and repeats are `trigger` events (PagerDuty de-duplicates
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

/// A Change Events API body for a notice: informational, never an incident.
pub fn change_payload(routing_key: &str, n: &Notification) -> Value {
    let alert = &n.alert;
    let mut body = json!({
        "routing_key": routing_key,
        "payload": {
            "summary": truncate(&alert.summary, SUMMARY_MAX),
            "source": alert.source,
            "timestamp": rfc3339(n.sent_at),
            "custom_details": {
                "priority": alert.severity.as_str(),
                "details": alert.details,
                "labels": alert.labels,
            },
        },
    });
    if let Some(url) = &alert.generator_url {
        body["links"] = json!([{"href": url, "text": "watchkeeper"}]);
    }
    body
}

/// The Change Events endpoint next to an Events endpoint: `…/v2/enqueue` → `…/v2/change/enqueue`.
pub fn change_url(events_url: &str) -> String {
    match events_url.trim_end_matches('/').strip_suffix("/enqueue") {
        Some(base) => format!("{base}/change/enqueue"),
        None => events_url.to_string(),
    }
}

/// Posts the event; PagerDuty answers 202 Accepted (any 2xx is taken as accepted). Notices go
/// to the Change Events API instead, so they show on the service's timeline without paging.
pub async fn send(
    http: &reqwest::Client,
    channel: &str,
    config: &PagerDutyConfig,
    n: &Notification,
) -> Result<(), SinkError> {
    let events_url = config.url.as_deref().unwrap_or(DEFAULT_URL);
    let (url, body) = if n.kind == NotificationKind::Notice {
        (
            change_url(events_url),
            change_payload(&config.routing_key, n),
        )
    } else {
        (events_url.to_string(), payload(&config.routing_key, n))
    };
    post_json(
        http,
        JsonPost {
            channel,
            sink: "pagerDuty",
            url,
            body: body.to_string().into_bytes(),
            headers: Vec::new(),
            bearer: None,
        },
    )
    .await
}
