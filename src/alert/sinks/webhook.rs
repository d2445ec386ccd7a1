//! Generic JSON webhook, optionally signed: `X-Watchkeeper-Signature: sha256=<hex>` is the
//! HMAC-SHA256 of the exact request body under the shared secret. Payload in
//! `docs/alerting.md`.

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{JsonPost, post_json, rfc3339};
use crate::alert::{Notification, NotificationKind, SinkError, WebhookConfig};

/// Header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "X-Watchkeeper-Signature";

/// Version of the payload format, bumped on incompatible changes.
pub const PAYLOAD_VERSION: &str = "1";

/// The documented payload.
pub fn payload(n: &Notification) -> Value {
    let alert = &n.alert;
    json!({
        "version": PAYLOAD_VERSION,
        "kind": n.kind.as_str(),
        "status": match n.kind {
            NotificationKind::Resolve => "resolved",
            NotificationKind::Notice => "notice",
            NotificationKind::Trigger | NotificationKind::Repeat => "firing",
        },
        "channel": n.channel,
        "notificationCount": n.previous_count.saturating_add(1),
        "alert": {
            "key": alert.key,
            "severity": alert.severity.as_str(),
            "pagerDutySeverity": alert.severity.pagerduty(),
            "summary": alert.summary,
            "details": alert.details,
            "labels": alert.labels,
            "annotations": alert.annotations,
            "source": alert.source,
            "generatorURL": alert.generator_url,
            "startsAt": rfc3339(alert.starts_at),
            "endsAt": n.ends_at.map(rfc3339),
        },
    })
}

/// `sha256=<lower-case hex HMAC-SHA256 of body>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Posts the payload with the configured headers and, when a secret is set, the signature.
pub async fn send(
    http: &reqwest::Client,
    channel: &str,
    config: &WebhookConfig,
    n: &Notification,
) -> Result<(), SinkError> {
    let body = payload(n).to_string().into_bytes();
    let mut headers = config.headers.clone();
    if let Some(secret) = &config.hmac_secret {
        headers.push((SIGNATURE_HEADER.to_string(), signature(secret, &body)));
    }
    post_json(
        http,
        JsonPost {
            channel,
            sink: "webhook",
            url: config.url.clone(),
            body,
            headers,
            bearer: None,
        },
    )
    .await
}
