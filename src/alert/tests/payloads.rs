//! Schema checks for each sink's payload (the real APIs' required fields), used by the delivery
//! tests on what the receivers got, and a few direct payload tests.

use chrono::DateTime;
use serde_json::Value;

use super::{alert, at};
use crate::alert::{
    Notification, NotificationKind, Severity, SlackConfig,
    sinks::{alertmanager, pagerduty, slack, webhook},
};

fn rfc3339(value: &Value, what: &str) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{what} must be a string: {value}"));
    assert!(
        DateTime::parse_from_rfc3339(text).is_ok(),
        "{what} must be RFC 3339: {text}"
    );
}

fn string_map(value: &Value, what: &str) {
    let map = value
        .as_object()
        .unwrap_or_else(|| panic!("{what} must be an object: {value}"));
    for (k, v) in map {
        assert!(v.is_string(), "{what}.{k} must be a string: {v}");
    }
}

/// Alertmanager v2 `postableAlerts`: an array of objects with a `labels` map of strings
/// (non-empty, with `alertname`), optional `annotations` map of strings, optional RFC 3339
/// `startsAt`/`endsAt`, optional `generatorURL`, and nothing else.
pub fn check_alertmanager(body: &Value) {
    let alerts = body.as_array().expect("alertmanager body must be an array");
    assert!(!alerts.is_empty());
    for alert in alerts {
        let object = alert.as_object().expect("each alert is an object");
        for key in object.keys() {
            assert!(
                [
                    "labels",
                    "annotations",
                    "startsAt",
                    "endsAt",
                    "generatorURL"
                ]
                .contains(&key.as_str()),
                "unknown field {key} in postable alert"
            );
        }
        string_map(&alert["labels"], "labels");
        assert!(
            alert["labels"]["alertname"]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "labels.alertname required"
        );
        string_map(&alert["annotations"], "annotations");
        rfc3339(&alert["startsAt"], "startsAt");
        if let Some(url) = alert.get("generatorURL") {
            assert!(url.as_str().is_some_and(|u| u.starts_with("http")));
        }
        // Always set: in the future while firing (refreshed), at the end time on resolve.
        rfc3339(&alert["endsAt"], "endsAt");
        let starts = DateTime::parse_from_rfc3339(alert["startsAt"].as_str().unwrap_or_default());
        let ends = DateTime::parse_from_rfc3339(alert["endsAt"].as_str().unwrap_or_default());
        if let (Ok(starts), Ok(ends)) = (starts, ends) {
            assert!(ends >= starts, "endsAt before startsAt");
        }
    }
}

/// PagerDuty Events API v2.
pub fn check_pagerduty(body: &Value, action: &str) {
    assert_eq!(
        body["routing_key"].as_str().map(str::len),
        Some(32),
        "routing_key"
    );
    assert_eq!(body["event_action"], action);
    let dedup = body["dedup_key"].as_str().expect("dedup_key");
    assert!(!dedup.is_empty() && dedup.len() <= 255);
    if action == "trigger" {
        let payload = &body["payload"];
        let summary = payload["summary"].as_str().expect("payload.summary");
        assert!(!summary.is_empty() && summary.chars().count() <= 1024);
        assert!(
            payload["source"].as_str().is_some_and(|s| !s.is_empty()),
            "payload.source"
        );
        assert!(
            ["critical", "error", "warning", "info"]
                .contains(&payload["severity"].as_str().unwrap_or("")),
            "payload.severity"
        );
        if let Some(ts) = payload.get("timestamp") {
            rfc3339(ts, "payload.timestamp");
        }
        assert!(payload["custom_details"].is_object() || payload.get("custom_details").is_none());
    }
}

/// Slack incoming webhook message with `text` and Block Kit `blocks`.
pub fn check_slack(body: &Value) {
    assert!(body["text"].as_str().is_some_and(|t| !t.is_empty()), "text");
    let blocks = body["blocks"].as_array().expect("blocks array");
    assert!(!blocks.is_empty() && blocks.len() <= 50);
    for block in blocks {
        match block["type"].as_str() {
            Some("section") => {
                assert!(
                    ["mrkdwn", "plain_text"]
                        .contains(&block["text"]["type"].as_str().unwrap_or(""))
                );
                let text = block["text"]["text"].as_str().expect("section text");
                assert!(!text.is_empty() && text.chars().count() <= 3000);
            }
            Some("context") => {
                let elements = block["elements"].as_array().expect("context elements");
                assert!(!elements.is_empty() && elements.len() <= 10);
                for e in elements {
                    assert!(e["text"].is_string());
                }
            }
            other => panic!("unexpected block type {other:?}"),
        }
    }
}

/// The generic webhook's documented payload.
pub fn check_webhook(body: &Value, kind: &str) {
    assert_eq!(body["version"], "1");
    assert_eq!(body["kind"], kind);
    assert_eq!(
        body["status"],
        if kind == "resolve" {
            "resolved"
        } else {
            "firing"
        }
    );
    let alert = &body["alert"];
    for field in ["key", "severity", "summary", "source"] {
        assert!(
            alert[field].as_str().is_some_and(|s| !s.is_empty()),
            "alert.{field}"
        );
    }
    rfc3339(&alert["startsAt"], "alert.startsAt");
    if kind == "resolve" {
        rfc3339(&alert["endsAt"], "alert.endsAt");
    } else {
        assert!(alert["endsAt"].is_null());
    }
    string_map(&alert["labels"], "alert.labels");
}

fn notification(kind: NotificationKind, severity: Severity) -> Notification {
    Notification {
        kind,
        channel: "chat".into(),
        alert: alert("threshold/error-rate", severity),
        ends_at: (kind == NotificationKind::Resolve).then(|| at(10)),
        previous_count: 0,
        sent_at: at(10),
        refresh: false,
    }
}

#[test]
fn pagerduty_severity_mapping_and_resolve_shape() {
    let key = "0123456789abcdef0123456789abcdef";
    for (severity, expected) in [
        (Severity::P0, "critical"),
        (Severity::P1, "error"),
        (Severity::P2, "warning"),
        (Severity::P3, "info"),
    ] {
        let body = pagerduty::payload(key, &notification(NotificationKind::Trigger, severity));
        check_pagerduty(&body, "trigger");
        assert_eq!(body["payload"]["severity"], expected);
        assert_eq!(body["dedup_key"], "threshold/error-rate");
    }
    let resolve = pagerduty::payload(key, &notification(NotificationKind::Resolve, Severity::P0));
    check_pagerduty(&resolve, "resolve");
    let fields: Vec<&String> = resolve
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    assert_eq!(
        fields.len(),
        3,
        "resolve carries only routing_key, event_action, dedup_key"
    );
}

#[test]
fn alertmanager_labels_identify_the_alert_across_trigger_and_resolve() {
    let trigger = alertmanager::payload(&notification(NotificationKind::Trigger, Severity::P1));
    let resolve = alertmanager::payload(&notification(NotificationKind::Resolve, Severity::P1));
    check_alertmanager(&trigger);
    check_alertmanager(&resolve);
    assert_eq!(trigger[0]["labels"], resolve[0]["labels"]);
    assert_eq!(trigger[0]["labels"]["severity"], "error");
    assert_eq!(trigger[0]["labels"]["priority"], "P1");
    assert_eq!(trigger[0]["labels"]["alertname"], "threshold/error-rate");
    assert_eq!(
        trigger[0]["annotations"]["summary"],
        "threshold/error-rate is failing"
    );
    assert_eq!(resolve[0]["endsAt"], "2026-03-01T12:10:00Z");
    // Firing: valid for 15 minutes after the post, so Alertmanager keeps it until refreshed.
    assert_eq!(trigger[0]["endsAt"], "2026-03-01T12:25:00Z");
}

#[test]
fn slack_escapes_control_characters() {
    let mut n = notification(NotificationKind::Trigger, Severity::P0);
    n.alert.summary = "latency <500ms & rising>".into();
    let body = slack::payload(
        &SlackConfig {
            webhook_url: "http://127.0.0.1:9/hook".into(),
            channel: Some("#ops-alerts".into()),
        },
        &n,
    );
    check_slack(&body);
    let text = body["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("latency &lt;500ms &amp; rising&gt;"),
        "{text}"
    );
    assert_eq!(body["channel"], "#ops-alerts");
}

#[test]
fn webhook_signature_is_hmac_sha256_of_the_body() {
    // RFC 4231 test case 2.
    let sig = webhook::signature(b"Jefe", b"what do ya want for nothing?");
    assert_eq!(
        sig,
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    check_webhook(
        &webhook::payload(&notification(NotificationKind::Resolve, Severity::P2)),
        "resolve",
    );
}
