//! Prometheus Alertmanager, API v2: `POST {url}/api/v2/alerts` with a JSON list of alerts.
//!
//! Alertmanager identifies an alert by its label set, so a resolve carries exactly the labels
//! of the trigger with `endsAt` set to when it ended. Firing posts carry `endsAt` a little in
//! the future (`ALERTMANAGER_VALID_FOR`) and are refreshed every `ALERTMANAGER_REFRESH`, the
//! way Prometheus keeps alerts alive. Labels: the alert's own, plus `alertname` (the alert's
//! `alertname` label, else its key), `severity` (`critical`/`error`/`warning`/`info`, the
//! PagerDuty mapping, which Alertmanager routes commonly match) and `priority` (`P0`…`P3`).

use serde_json::{Value, json};

use super::{JsonPost, post_json, rfc3339};
use crate::alert::{
    AlertmanagerConfig, Notification, NotificationKind, SinkError, state::ALERTMANAGER_VALID_FOR,
};

/// The request body: a one-element list in Alertmanager's `postableAlerts` schema.
pub fn payload(n: &Notification) -> Value {
    let alert = &n.alert;
    let mut labels = alert.labels.clone();
    labels
        .entry("alertname".into())
        .or_insert_with(|| alert.key.clone());
    labels.insert("severity".into(), alert.severity.pagerduty().into());
    labels.insert("priority".into(), alert.severity.as_str().into());
    let mut annotations = alert.annotations.clone();
    annotations.insert("summary".into(), alert.summary.clone());
    if !alert.details.is_empty() {
        annotations.insert("description".into(), alert.details.clone());
    }
    annotations.insert("source".into(), alert.source.clone());
    let mut item = json!({
        "labels": labels,
        "annotations": annotations,
        "startsAt": rfc3339(alert.starts_at),
    });
    if let Some(url) = &alert.generator_url {
        item["generatorURL"] = json!(url);
    }
    let ends = match n.kind {
        // An endsAt in the past or present resolves the alert in Alertmanager.
        NotificationKind::Resolve | NotificationKind::Notice => n.ends_at.unwrap_or(n.sent_at),
        // Firing: valid until the next refresh is overdue (see ALERTMANAGER_VALID_FOR).
        NotificationKind::Trigger | NotificationKind::Repeat => n.sent_at + ALERTMANAGER_VALID_FOR,
    };
    item["endsAt"] = json!(rfc3339(ends));
    json!([item])
}

/// Posts the notification to `{url}/api/v2/alerts`.
pub async fn send(
    http: &reqwest::Client,
    channel: &str,
    config: &AlertmanagerConfig,
    n: &Notification,
) -> Result<(), SinkError> {
    post_json(
        http,
        JsonPost {
            channel,
            sink: "alertmanager",
            url: format!("{}/api/v2/alerts", config.url.trim_end_matches('/')),
            body: payload(n).to_string().into_bytes(),
            headers: Vec::new(),
            bearer: config.bearer_token.as_deref(),
        },
    )
    .await
}
