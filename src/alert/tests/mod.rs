//! Tests of the alerting engine: the pure decision core, the payloads, and delivery to local
//! receivers (HTTP on 127.0.0.1 via axum, and a small SMTP server) that check each request
//! against the real APIs' required fields.

mod decide;
mod delivery;
mod notices;
mod payloads;
mod receivers;
mod smtp_tls;
mod status;

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, TimeZone, Utc};

use super::{Alert, AlertingConfig, Channel, Route, Severity, SinkConfig, WebhookConfig};

/// A fixed starting instant for the controllable clock.
pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

/// `t0() + seconds`.
pub(crate) fn at_secs(seconds: i64) -> DateTime<Utc> {
    t0() + chrono::TimeDelta::seconds(seconds)
}

/// `t0() + minutes`.
pub(crate) fn at(minutes: i64) -> DateTime<Utc> {
    t0() + chrono::TimeDelta::minutes(minutes)
}

pub(crate) fn alert(key: &str, severity: Severity) -> Alert {
    Alert {
        key: key.into(),
        severity,
        summary: format!("{key} is failing"),
        details: "error rate 7.5% > 5% over 5m".into(),
        labels: BTreeMap::from([
            ("monitor".to_string(), "api".to_string()),
            ("namespace".to_string(), "prod".to_string()),
        ]),
        annotations: BTreeMap::from([(
            "runbook".to_string(),
            "https://runbooks.example/api".to_string(),
        )]),
        source: "HealthMonitor prod/api".into(),
        generator_url: Some("http://watchkeeper.example/monitors/prod/api".into()),
        starts_at: t0() - chrono::TimeDelta::minutes(3),
    }
}

/// A channel with a webhook sink pointing nowhere (for the pure core, which never sends).
pub(crate) fn dummy_channel(name: &str) -> Channel {
    Channel {
        name: name.into(),
        sink: SinkConfig::Webhook(WebhookConfig {
            url: "http://127.0.0.1:9/".into(),
            hmac_secret: None,
            headers: vec![],
        }),
    }
}

pub(crate) fn config(channels: Vec<Channel>, routes: Vec<Route>) -> AlertingConfig {
    AlertingConfig {
        channels,
        routes,
        repeat_interval: Some(Duration::from_secs(30 * 60)),
        send_resolved: true,
        max_notifications_per_hour: None,
    }
}
