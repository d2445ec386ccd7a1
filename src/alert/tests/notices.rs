//! One-shot notices: delivered once per channel in each sink's notice form, retried where they
//! failed, not repeated after a restart.

use super::{
    alert, at,
    delivery::{AllSinks, engine},
    payloads::check_slack,
};
use crate::alert::{AlertState, NotificationKind, Severity, sinks::pagerduty::change_url};

#[tokio::test]
async fn notice_reaches_each_channel_once_in_its_form() {
    let sinks = AllSinks::start().await;
    sinks.slack.set_status(500);
    let mut engine = engine(sinks.config(), AlertState::default());
    let mut notice = alert("maintenance/monthly/2026-03-03/notice-7d", Severity::P3);
    notice.summary = "Maintenance on 2026-03-03 02:00-04:00 UTC (read-only 30-60 min)".into();

    let report = engine.notify(&notice, at(0)).await;
    // Alertmanager is skipped; Slack failed and is owed.
    assert_eq!(report.sent.len(), 3, "{:?}", report.failed);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].0.channel, "slack");
    assert!(
        report
            .sent
            .iter()
            .all(|n| n.kind == NotificationKind::Notice)
    );
    assert_eq!(sinks.counts(), [0, 1, 1, 1, 1]);

    sinks.slack.set_status(200);
    let report = engine.notify(&notice, at(1)).await;
    assert_eq!(report.sent.len(), 1);
    assert_eq!(report.sent[0].channel, "slack");
    assert_eq!(sinks.counts(), [0, 2, 1, 1, 1]);

    // A restarted engine does not announce again.
    let stored = serde_json::to_string(engine.state()).unwrap();
    let mut restarted = engine_from(&sinks, &stored);
    assert!(restarted.notify(&notice, at(2)).await.sent.is_empty());
    assert_eq!(sinks.counts(), [0, 2, 1, 1, 1]);

    // Formats: PagerDuty Change Event (no incident), Slack NOTICE, webhook kind notice, mail.
    let pd = &sinks.pagerduty.requests()[0];
    assert_eq!(pd.path, "/v2/change/enqueue");
    let body = pd.json();
    assert_eq!(body["routing_key"].as_str().map(str::len), Some(32));
    assert!(body.get("event_action").is_none() && body.get("dedup_key").is_none());
    assert!(
        body["payload"]["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("Maintenance"))
    );
    assert_eq!(body["payload"]["source"], "HealthMonitor prod/api");
    assert_eq!(body["payload"]["timestamp"], "2026-03-01T12:00:00Z");
    let slack = sinks.slack.requests()[1].json();
    check_slack(&slack);
    assert!(
        slack["text"]
            .as_str()
            .unwrap_or_default()
            .contains("NOTICE")
    );
    let hook = sinks.webhook.requests()[0].json();
    assert_eq!(
        (hook["kind"].as_str(), hook["status"].as_str()),
        (Some("notice"), Some("notice"))
    );
    let mail = &sinks.smtp.mails()[0];
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("[NOTICE P3] Maintenance on 2026-03-03 02:00-04:00 UTC (read-only 30-60 min)")
    );
}

fn engine_from(sinks: &AllSinks, stored: &str) -> crate::alert::AlertEngine {
    engine(sinks.config(), serde_json::from_str(stored).unwrap())
}

#[test]
fn change_events_url_sits_next_to_the_events_url() {
    assert_eq!(
        change_url("https://events.pagerduty.com/v2/enqueue"),
        "https://events.pagerduty.com/v2/change/enqueue"
    );
    assert_eq!(
        change_url("http://127.0.0.1:8080/v2/enqueue/"),
        "http://127.0.0.1:8080/v2/change/enqueue"
    );
}
