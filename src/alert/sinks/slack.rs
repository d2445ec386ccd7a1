//! Slack incoming webhook: a JSON message with `text` (notification fallback) and `blocks`.

use serde_json::{Value, json};

use super::{JsonPost, post_json, rfc3339, truncate};
use crate::alert::{Notification, NotificationKind, SinkError, SlackConfig};

/// Slack limits a section block's text to 3000 characters.
const SECTION_MAX: usize = 3000;

/// Escapes the three characters Slack's mrkdwn treats as control characters.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The message: a one-line `text` and blocks with the summary, details and context.
pub fn payload(config: &SlackConfig, n: &Notification) -> Value {
    let alert = &n.alert;
    let (icon, state) = match n.kind {
        NotificationKind::Trigger => (":rotating_light:", "FIRING"),
        NotificationKind::Repeat => (":repeat:", "STILL FIRING"),
        NotificationKind::Resolve => (":white_check_mark:", "RESOLVED"),
        NotificationKind::Notice => (":calendar:", "NOTICE"),
    };
    let text = format!(
        "{icon} [{state}] [{}] {}",
        alert.severity,
        escape(&alert.summary)
    );
    let mut section = format!("*{}*", escape(&alert.summary));
    if !alert.details.is_empty() && n.kind != NotificationKind::Resolve {
        section.push('\n');
        section.push_str(&escape(&alert.details));
    }
    let mut context = format!(
        "{state} · {} · {} · key `{}` · since {}",
        alert.severity,
        escape(&alert.source),
        escape(&alert.key),
        rfc3339(alert.starts_at)
    );
    if let Some(ends) = n.ends_at {
        context.push_str(&format!(" · ended {}", rfc3339(ends)));
    }
    if let Some(url) = &alert.generator_url {
        context.push_str(&format!(" · <{}|details>", escape(url)));
    }
    let mut body = json!({
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": truncate(&section, SECTION_MAX)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(&context, SECTION_MAX)}]},
        ],
    });
    if let Some(channel) = &config.channel {
        body["channel"] = json!(channel);
    }
    body
}

/// Posts the message to the webhook URL (Slack answers 200 `ok`).
pub async fn send(
    http: &reqwest::Client,
    channel: &str,
    config: &SlackConfig,
    n: &Notification,
) -> Result<(), SinkError> {
    post_json(
        http,
        JsonPost {
            channel,
            sink: "slack",
            url: config.webhook_url.clone(),
            body: payload(config, n).to_string().into_bytes(),
            headers: Vec::new(),
            bearer: None,
        },
    )
    .await
}
