//! The engine against local receivers: real requests, counted and checked.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{
    alert, at, at_secs,
    payloads::{check_alertmanager, check_pagerduty, check_slack, check_webhook},
    receivers::{HttpReceiver, SmtpReceiver},
};
use crate::alert::{
    AlertEngine, AlertState, AlertingConfig, AlertmanagerConfig, Channel, EmailConfig,
    PagerDutyConfig, Route, Severity, SinkConfig, SinkError, SlackConfig, SmtpTls, WebhookConfig,
    sinks::Sinks,
};

const ROUTING_KEY: &str = "R0UT1NGKEY0000000000000000000abc";
const HMAC_SECRET: &[u8] = b"s3cret-shared-with-receiver";

pub(super) fn engine(config: AlertingConfig, state: AlertState) -> AlertEngine {
    AlertEngine::new(config, state, Sinks::new().unwrap()).unwrap()
}

fn webhook_channel(name: &str, receiver: &HttpReceiver) -> Channel {
    Channel {
        name: name.into(),
        sink: SinkConfig::Webhook(WebhookConfig {
            url: format!("{}/hooks/{name}", receiver.base),
            hmac_secret: Some(HMAC_SECRET.to_vec()),
            headers: vec![("X-Team".into(), "platform".into())],
        }),
    }
}

fn verify_signature(body: &[u8], header: Option<String>) {
    let header = header.expect("X-Watchkeeper-Signature header");
    let hex_sig = header.strip_prefix("sha256=").expect("sha256= prefix");
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(HMAC_SECRET).unwrap();
    mac.update(body);
    mac.verify_slice(&hex::decode(hex_sig).unwrap())
        .expect("signature verifies against the received body");
}

pub(super) struct AllSinks {
    pub alertmanager: HttpReceiver,
    pub slack: HttpReceiver,
    pub pagerduty: HttpReceiver,
    pub webhook: HttpReceiver,
    pub smtp: SmtpReceiver,
}

impl AllSinks {
    pub async fn start() -> Self {
        Self {
            alertmanager: HttpReceiver::start(200).await,
            slack: HttpReceiver::start(200).await,
            pagerduty: HttpReceiver::start(202).await,
            webhook: HttpReceiver::start(204).await,
            smtp: SmtpReceiver::start().await,
        }
    }

    pub fn config(&self) -> AlertingConfig {
        AlertingConfig {
            channels: vec![
                Channel {
                    name: "am".into(),
                    sink: SinkConfig::Alertmanager(AlertmanagerConfig {
                        url: format!("{}/", self.alertmanager.base),
                        bearer_token: Some("am-token".into()),
                    }),
                },
                Channel {
                    name: "slack".into(),
                    sink: SinkConfig::Slack(SlackConfig {
                        webhook_url: format!("{}/services/T000/B000/XXXX", self.slack.base),
                        channel: Some("#ops-alerts".into()),
                    }),
                },
                Channel {
                    name: "pd".into(),
                    sink: SinkConfig::PagerDuty(PagerDutyConfig {
                        routing_key: ROUTING_KEY.into(),
                        url: Some(format!("{}/v2/enqueue", self.pagerduty.base)),
                    }),
                },
                webhook_channel("hook", &self.webhook),
                Channel {
                    name: "mail".into(),
                    sink: SinkConfig::Email(EmailConfig {
                        host: "127.0.0.1".into(),
                        port: self.smtp.port,
                        tls: SmtpTls::None,
                        from: "Watchkeeper <alerts@example.com>".into(),
                        to: vec!["oncall@example.com".into(), "lead@example.com".into()],
                        credentials: None,
                        ca_pem: None,
                    }),
                },
            ],
            routes: vec![],
            repeat_interval: Some(Duration::from_secs(30 * 60)),
            send_resolved: true,
            max_notifications_per_hour: None,
        }
    }

    pub fn counts(&self) -> [usize; 5] {
        [
            self.alertmanager.count(),
            self.slack.count(),
            self.pagerduty.count(),
            self.webhook.count(),
            self.smtp.mails().len(),
        ]
    }
}

#[tokio::test]
async fn every_sink_gets_trigger_repeat_and_resolve_in_its_format() {
    let sinks = AllSinks::start().await;
    let mut engine = engine(sinks.config(), AlertState::default());
    let firing = [alert("threshold/error-rate", Severity::P0)];

    let report = engine.round(&firing, at(0)).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.sent.len(), 5);
    assert_eq!(sinks.counts(), [1; 5]);

    // Within the repeat interval and the Alertmanager refresh: nothing.
    let report = engine.round(&firing, at_secs(30)).await;
    assert!(report.sent.is_empty() && report.failed.is_empty());
    assert_eq!(sinks.counts(), [1; 5]);

    // Within the repeat interval: only the Alertmanager keep-alive (not a notification).
    let report = engine.round(&firing, at(10)).await;
    assert_eq!(report.sent.len(), 1);
    assert!(report.sent[0].refresh && report.sent[0].channel == "am");
    assert_eq!(sinks.counts(), [2, 1, 1, 1, 1]);

    let report = engine.round(&firing, at(30)).await;
    assert_eq!(report.sent.len(), 5, "{:?}", report.failed);
    assert_eq!(sinks.counts(), [3, 2, 2, 2, 2]);

    let report = engine.round(&[], at(31)).await;
    assert_eq!(report.sent.len(), 5, "{:?}", report.failed);
    assert_eq!(sinks.counts(), [4, 3, 3, 3, 3]);
    assert!(engine.state().alerts.is_empty());
    engine.round(&[], at(32)).await;
    assert_eq!(sinks.counts(), [4, 3, 3, 3, 3]);

    // Alertmanager: path, bearer token, schema, same labels on resolve.
    let am = sinks.alertmanager.requests();
    for request in &am {
        assert_eq!(request.path, "/api/v2/alerts");
        assert_eq!(
            request.header("authorization").as_deref(),
            Some("Bearer am-token")
        );
        assert_eq!(
            request.header("content-type").as_deref(),
            Some("application/json")
        );
        check_alertmanager(&request.json());
    }
    assert!(
        am.iter()
            .all(|r| r.json()[0]["labels"] == am[0].json()[0]["labels"])
    );
    // Firing posts stay valid 15 minutes past each post; the resolve ends it when it stopped.
    assert_eq!(am[0].json()[0]["endsAt"], "2026-03-01T12:15:00Z");
    assert_eq!(am[1].json()[0]["endsAt"], "2026-03-01T12:25:00Z");
    assert_eq!(am[3].json()[0]["endsAt"], "2026-03-01T12:31:00Z");

    // Slack.
    let slack = sinks.slack.requests();
    for request in &slack {
        assert_eq!(request.path, "/services/T000/B000/XXXX");
        check_slack(&request.json());
    }
    assert!(slack[0].json()["text"].as_str().unwrap().contains("FIRING"));
    assert!(
        slack[2].json()["text"]
            .as_str()
            .unwrap()
            .contains("RESOLVED")
    );

    // PagerDuty: trigger, trigger (de-duplicated by PagerDuty), resolve, one dedup_key.
    let pd = sinks.pagerduty.requests();
    check_pagerduty(&pd[0].json(), "trigger");
    check_pagerduty(&pd[1].json(), "trigger");
    check_pagerduty(&pd[2].json(), "resolve");
    assert_eq!(pd[0].json()["payload"]["severity"], "critical");
    assert!(
        pd.iter()
            .all(|r| r.json()["dedup_key"] == "threshold/error-rate")
    );

    // Webhook: payload, signature over the exact bytes, extra header.
    let hooks = sinks.webhook.requests();
    for (request, kind) in hooks.iter().zip(["trigger", "repeat", "resolve"]) {
        assert_eq!(request.path, "/hooks/hook");
        check_webhook(&request.json(), kind);
        verify_signature(&request.body, request.header("x-watchkeeper-signature"));
        assert_eq!(request.header("x-team").as_deref(), Some("platform"));
    }
    assert_eq!(hooks[1].json()["notificationCount"], 2);

    // E-mail: envelope and headers.
    let mails = sinks.smtp.mails();
    for mail in &mails {
        assert_eq!(mail.from, "alerts@example.com");
        assert_eq!(mail.to, vec!["oncall@example.com", "lead@example.com"]);
        let from = mail.header("From").unwrap_or_default();
        assert!(from.contains("alerts@example.com"), "From: {from}");
        let to = mail.header("To").unwrap_or_default();
        assert!(
            to.contains("oncall@example.com") && to.contains("lead@example.com"),
            "To: {to}"
        );
        assert!(mail.data.contains("Source:   HealthMonitor prod/api"));
    }
    assert_eq!(
        mails[0].header("Subject").as_deref(),
        Some("[FIRING P0] threshold/error-rate is failing")
    );
    assert_eq!(
        mails[1].header("Subject").as_deref(),
        Some("[STILL FIRING P0] threshold/error-rate is failing")
    );
    assert_eq!(
        mails[2].header("Subject").as_deref(),
        Some("[RESOLVED P0] threshold/error-rate is failing")
    );
}

#[tokio::test]
async fn routes_send_each_severity_to_its_channels_only() {
    let pager = HttpReceiver::start(200).await;
    let chat = HttpReceiver::start(200).await;
    let config = AlertingConfig {
        channels: vec![
            webhook_channel("pager", &pager),
            webhook_channel("chat", &chat),
        ],
        routes: vec![
            Route {
                severities: vec![Severity::P0],
                channels: vec!["pager".into(), "chat".into()],
            },
            Route {
                severities: vec![Severity::P1, Severity::P2, Severity::P3],
                channels: vec!["chat".into()],
            },
        ],
        ..AlertingConfig::default()
    };
    let mut engine = engine(config, AlertState::default());
    engine
        .round(&[alert("provider/openai", Severity::P2)], at(0))
        .await;
    assert_eq!((pager.count(), chat.count()), (0, 1));
    engine
        .round(
            &[
                alert("provider/openai", Severity::P2),
                alert("down", Severity::P0),
            ],
            at(1),
        )
        .await;
    assert_eq!((pager.count(), chat.count()), (1, 2));
    assert_eq!(pager.requests()[0].json()["alert"]["key"], "down");
}

#[tokio::test]
async fn failed_send_is_retried_next_round_and_not_marked_sent() {
    let pd = HttpReceiver::start(500).await;
    let config = AlertingConfig {
        channels: vec![Channel {
            name: "pd".into(),
            sink: SinkConfig::PagerDuty(PagerDutyConfig {
                routing_key: ROUTING_KEY.into(),
                url: Some(format!("{}/v2/enqueue", pd.base)),
            }),
        }],
        ..AlertingConfig::default()
    };
    let mut engine = engine(config, AlertState::default());
    let firing = [alert("db", Severity::P0)];

    let report = engine.round(&firing, at(0)).await;
    assert_eq!(report.failed.len(), 1);
    assert!(matches!(
        report.failed[0].1,
        SinkError::Status { status: 500, .. }
    ));
    assert!(report.sent.is_empty());
    assert!(
        engine.state().open_alerts().next().is_none(),
        "nothing marked sent"
    );

    pd.set_status(202);
    let report = engine.round(&firing, at(1)).await;
    assert_eq!(report.sent.len(), 1);
    assert_eq!(pd.count(), 2);
    engine.round(&firing, at(2)).await;
    assert_eq!(pd.count(), 2, "delivered once, not again");

    // A failing resolve is retried too, and the alert stays open until it goes through.
    pd.set_status(503);
    let report = engine.round(&[], at(3)).await;
    assert_eq!(report.failed.len(), 1);
    assert_eq!(engine.state().alerts.len(), 1);
    pd.set_status(202);
    engine.round(&[], at(4)).await;
    assert_eq!(pd.count(), 4);
    assert!(engine.state().alerts.is_empty());
    check_pagerduty(&pd.requests()[3].json(), "resolve");
}

#[tokio::test]
async fn engine_recreated_from_persisted_state_sends_no_duplicate() {
    let sinks = AllSinks::start().await;
    let firing = [alert("threshold/p95", Severity::P1)];
    let stored = {
        let mut first = engine(sinks.config(), AlertState::default());
        first.round(&firing, at(0)).await;
        serde_json::to_string(first.state()).unwrap()
    };
    assert_eq!(sinks.counts(), [1; 5]);

    // Operator restart or new leader: state comes back from status.
    let restored: AlertState = serde_json::from_str(&stored).unwrap();
    let mut second = engine(sinks.config(), restored);
    let report = second.round(&firing, at_secs(40)).await;
    assert!(report.sent.is_empty(), "{:?}", report.sent);
    assert_eq!(sinks.counts(), [1; 5]);
    // Minutes later only Alertmanager's keep-alive goes out: the cadences survived too.
    second.round(&firing, at(5)).await;
    assert_eq!(sinks.counts(), [2, 1, 1, 1, 1]);
    second.round(&[], at(6)).await;
    assert_eq!(sinks.counts(), [3, 2, 2, 2, 2]);
    check_pagerduty(&sinks.pagerduty.requests()[1].json(), "resolve");
}

#[tokio::test]
async fn rate_limit_caps_requests_per_channel_and_counts_drops() {
    let chat = HttpReceiver::start(200).await;
    let config = AlertingConfig {
        channels: vec![webhook_channel("chat", &chat)],
        max_notifications_per_hour: Some(2),
        repeat_interval: Some(Duration::from_secs(60)),
        ..AlertingConfig::default()
    };
    let mut engine = engine(config, AlertState::default());
    let firing: Vec<_> = (0..5)
        .map(|i| alert(&format!("a{i}"), Severity::P2))
        .collect();
    let report = engine.round(&firing, at(0)).await;
    assert_eq!((report.sent.len(), report.dropped.len()), (2, 3));
    // Repeats every minute would flood; the budget holds for the whole hour.
    for minute in 1..60 {
        engine.round(&firing, at(minute)).await;
    }
    assert_eq!(chat.count(), 2);
    assert!(engine.state().dropped_total() >= 3);
}

#[tokio::test]
async fn transport_errors_do_not_leak_the_webhook_url() {
    // A port nothing listens on: bind, note the port, close.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = AlertingConfig {
        channels: vec![Channel {
            name: "slack".into(),
            sink: SinkConfig::Slack(SlackConfig {
                webhook_url: format!("http://127.0.0.1:{port}/services/SECRET-TOKEN"),
                channel: None,
            }),
        }],
        ..AlertingConfig::default()
    };
    let mut engine = engine(config, AlertState::default());
    let report = engine.round(&[alert("a", Severity::P1)], at(0)).await;
    assert_eq!(report.failed.len(), 1);
    let message = report.failed[0].1.to_string();
    assert!(message.contains("\"slack\""), "{message}");
    assert!(!message.contains("SECRET-TOKEN"), "{message}");
    assert!(engine.state().open_alerts().next().is_none());
}

#[tokio::test]
async fn starttls_required_but_not_offered_fails_without_sending() {
    let smtp = SmtpReceiver::start().await;
    let mut config = AllSinks::start().await.config();
    config.channels.retain(|c| c.name == "mail");
    if let SinkConfig::Email(email) = &mut config.channels[0].sink {
        email.port = smtp.port;
        email.tls = SmtpTls::StartTls;
    }
    let mut engine = engine(config, AlertState::default());
    let report = engine.round(&[alert("a", Severity::P1)], at(0)).await;
    assert_eq!(report.failed.len(), 1, "{:?}", report.sent);
    assert!(matches!(report.failed[0].1, SinkError::Smtp { .. }));
    assert!(smtp.mails().is_empty());
}

#[tokio::test]
async fn muted_rounds_send_nothing_and_owe_what_is_still_true_afterwards() {
    let chat = HttpReceiver::start(200).await;
    let config = AlertingConfig {
        channels: vec![webhook_channel("chat", &chat)],
        repeat_interval: Some(Duration::from_secs(10 * 60)),
        ..AlertingConfig::default()
    };
    let mut engine = engine(config, AlertState::default());
    // "before" was notified before the window; it ends inside the window.
    engine.round(&[alert("before", Severity::P1)], at(0)).await;
    assert_eq!(chat.count(), 1);

    // Window: "blip" fires and ends, "down" starts and lasts, "before" ends; nothing is sent.
    let report = engine.round_muted(
        &[alert("blip", Severity::P0), alert("down", Severity::P0)],
        at(1),
    );
    assert_eq!(report.muted.len(), 3, "{:?}", report.muted);
    assert!(report.sent.is_empty());
    engine.round_muted(&[alert("down", Severity::P0)], at(20));
    assert_eq!(chat.count(), 1, "nothing sent during the window");

    // After the window: exactly the resolve owed for "before" (ended at 1) and "down".
    let report = engine.round(&[alert("down", Severity::P0)], at(30)).await;
    assert_eq!(report.sent.len(), 2);
    let bodies: Vec<serde_json::Value> = chat.requests().iter().skip(1).map(|r| r.json()).collect();
    let mut seen: Vec<(String, String)> = bodies
        .iter()
        .map(|b| {
            (
                b["alert"]["key"].as_str().unwrap_or_default().to_string(),
                b["kind"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("before".to_string(), "resolve".to_string()),
            ("down".to_string(), "trigger".to_string())
        ]
    );
    let resolve = bodies.iter().find(|b| b["kind"] == "resolve").unwrap();
    assert_eq!(resolve["alert"]["endsAt"], "2026-03-01T12:01:00Z");
    assert_eq!(chat.count(), 3);
}

#[tokio::test]
async fn a_redirect_is_a_failure_not_followed() {
    let hook = HttpReceiver::start(307).await;
    let config = AlertingConfig {
        channels: vec![webhook_channel("hook", &hook)],
        ..AlertingConfig::default()
    };
    let mut engine = engine(config, AlertState::default());
    let report = engine.round(&[alert("a", Severity::P2)], at(0)).await;
    assert!(matches!(
        report.failed.first().map(|f| &f.1),
        Some(SinkError::Status { status: 307, .. })
    ));
    assert_eq!(hook.count(), 1);
}
