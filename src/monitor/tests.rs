//! Adapter tests (spec → engine config) and a runtime test against local HTTP servers.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::{Router, extract::State, http::StatusCode, http::header, routing::get, routing::post};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::*;
use crate::alert::{Severity, SinkConfig};
use crate::api::health_monitor::{Health, HealthMonitorSpec};
use crate::probe::health::Metric;
use crate::probe::{RedirectConfig, Target};

struct MapSecrets(HashMap<(String, String), String>);

impl SecretResolver for MapSecrets {
    fn get(&self, name: &str, key: &str) -> Result<String, MonitorError> {
        self.0
            .get(&(name.to_string(), key.to_string()))
            .cloned()
            .ok_or_else(|| MonitorError::Secret {
                name: name.into(),
                key: key.into(),
                message: "not found".into(),
            })
    }
}

fn secrets(entries: &[(&str, &str, &str)]) -> MapSecrets {
    MapSecrets(
        entries
            .iter()
            .map(|(n, k, v)| ((n.to_string(), k.to_string()), v.to_string()))
            .collect(),
    )
}

fn spec(yaml: &str) -> HealthMonitorSpec {
    serde_yaml::from_str(yaml).unwrap()
}

fn key(name: &str) -> MonitorKey {
    MonitorKey {
        namespace: "shop".into(),
        name: name.into(),
    }
}

const FULL: &str = r#"
target: {url: "https://app.example.com/api/health"}
request:
  method: POST
  body: '{"ping":1}'
  headers:
    - {name: Accept, value: application/json}
    - name: Authorization
      valueFrom: {secretKeyRef: {name: api-token, key: header}}
  redirects: {follow: false}
interval: 15s
timeout: 5s
checks:
  statusCodes: ["200", "3xx"]
  maxLatency: 800ms
  json:
    - {path: $.status, operator: "==", value: healthy}
components:
  - {name: openai, jsonPath: $.services.ai_providers.openai}
  - {name: database, valuePath: $.services.db_ms}
failureThreshold: 4
successThreshold: 2
windows: [5m, 1h]
thresholds:
  - {name: errors, metric: ErrorRate, window: 5m, direction: Above, warning: 1, critical: 5}
  - name: openai-errors
    metric: ComponentErrorRate
    component: openai
    window: 1h
    direction: Above
    warning: 5
    critical: 10
    severities: {critical: P2}
severities: {down: P1}
alerting:
  channels:
    - name: pager
      pagerDuty: {routingKeySecretRef: {name: pd, key: routing-key}}
    - name: hook
      webhook:
        url: http://127.0.0.1:9/hook
        hmacSecretRef: {name: hook, key: hmac}
  routes:
    - {severities: [P0, P1], channels: [pager]}
    - {channels: [hook]}
  repeatInterval: 1h
  sendResolved: false
"#;

#[test]
fn full_spec_becomes_engine_config() {
    let resolver = secrets(&[
        ("api-token", "header", "Bearer s3cret"),
        ("pd", "routing-key", "R0UTING"),
        ("hook", "hmac", "k"),
    ]);
    let config =
        monitor_config(&key("app"), &spec(FULL), Environment::Embedded, &resolver).unwrap();
    assert_eq!(config.interval, Duration::from_secs(15));
    assert_eq!(config.probe.timeout, Duration::from_secs(5));
    let Target::Http(http) = &config.probe.target else {
        panic!("expected an HTTP target");
    };
    assert_eq!(http.url, "https://app.example.com/api/health");
    assert_eq!(http.method, "POST");
    assert_eq!(http.body.as_deref(), Some(r#"{"ping":1}"#));
    assert_eq!(http.redirects, RedirectConfig::None);
    assert!(
        http.headers
            .contains(&("Authorization".into(), "Bearer s3cret".into()))
    );
    assert_eq!(config.probe.checks.status_codes, ["200", "3xx"]);
    assert_eq!(
        config.probe.checks.max_latency,
        Some(Duration::from_millis(800))
    );
    assert_eq!(config.probe.checks.json.len(), 1);
    assert_eq!(config.probe.components.len(), 2);
    assert_eq!(config.probe.components[0].name(), "openai");
    assert_eq!(
        config.windows,
        [Duration::from_secs(300), Duration::from_secs(3600)]
    );
    assert_eq!(config.window_names, ["5m", "1h"]);
    assert_eq!(config.policy.failure_threshold, 4);
    assert_eq!(config.policy.success_threshold, 2);
    assert_eq!(config.policy.thresholds.len(), 2);
    assert_eq!(config.policy.thresholds[0].metric, Metric::ErrorRate);
    assert_eq!(
        config.policy.thresholds[1].metric,
        Metric::ComponentErrorRate("openai".into())
    );
    assert_eq!(
        config.policy.thresholds[1].window,
        Duration::from_secs(3600)
    );
    assert_eq!(config.policy.thresholds[0].min_samples, 10);
    assert_eq!(config.down_severity, Severity::P1);
    // Defaults P2/P1, the second threshold overrides critical only.
    assert_eq!(
        config.threshold_severities,
        [
            LevelSeverities {
                warning: Severity::P2,
                critical: Severity::P1
            },
            LevelSeverities {
                warning: Severity::P2,
                critical: Severity::P2
            },
        ]
    );
    let alerting = config.alerting.unwrap();
    assert!(!alerting.send_resolved);
    assert_eq!(alerting.repeat_interval, Some(Duration::from_secs(3600)));
    assert_eq!(alerting.routes[0].severities, [Severity::P0, Severity::P1]);
    assert!(alerting.routes[1].severities.is_empty());
    match &alerting.channels[0].sink {
        SinkConfig::PagerDuty(pd) => assert_eq!(pd.routing_key, "R0UTING"),
        other => panic!("expected PagerDuty, got {other:?}"),
    }
    match &alerting.channels[1].sink {
        SinkConfig::Webhook(w) => assert_eq!(w.hmac_secret.as_deref(), Some(&b"k"[..])),
        other => panic!("expected a webhook, got {other:?}"),
    }
}

#[test]
fn email_ca_bundle_reaches_the_sink() {
    let yaml = r#"
target: {url: "https://app.example.com/api/health"}
alerting:
  channels:
    - name: mail
      email:
        host: smtp.example.com
        from: alerts@example.com
        to: [ops@example.com]
        caBundle: {secretKeyRef: {name: relay-ca, key: ca.crt}}
"#;
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let resolver = secrets(&[("relay-ca", "ca.crt", pem)]);
    let config =
        monitor_config(&key("app"), &spec(yaml), Environment::Embedded, &resolver).unwrap();
    match &config.alerting.unwrap().channels[0].sink {
        SinkConfig::Email(email) => assert_eq!(email.ca_pem.as_deref(), Some(pem.as_bytes())),
        other => panic!("expected e-mail, got {other:?}"),
    }
    let error = monitor_config(
        &key("app"),
        &spec(yaml),
        Environment::Embedded,
        &secrets(&[]),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(error, "secret relay-ca/ca.crt: not found");
    // A ConfigMap source is refused where ConfigMaps cannot be read (run mode), naming it.
    let from_map = yaml.replace(
        "secretKeyRef: {name: relay-ca, key: ca.crt}",
        "configMapKeyRef: {name: relay-ca, key: ca.crt}",
    );
    let error = monitor_config(
        &key("app"),
        &spec(&from_map),
        Environment::Embedded,
        &resolver,
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("relay-ca/ca.crt"), "{error}");
}

#[test]
fn missing_secret_is_named_without_values() {
    let resolver = secrets(&[("api-token", "header", "Bearer s3cret")]);
    let error = monitor_config(&key("app"), &spec(FULL), Environment::Embedded, &resolver)
        .unwrap_err()
        .to_string();
    assert_eq!(error, "secret pd/routing-key: not found");
}

#[test]
fn service_target_resolves_in_cluster_and_is_refused_outside() {
    let yaml = "target: {service: {name: web, port: 8080, path: /api/health}}";
    let none = secrets(&[]);
    let config = monitor_config(&key("web"), &spec(yaml), Environment::Cluster, &none).unwrap();
    let Target::Http(http) = &config.probe.target else {
        panic!("expected an HTTP target");
    };
    assert_eq!(http.url, "http://web.shop.svc:8080/api/health");
    assert_eq!(config.target_display, http.url);
    let error = monitor_config(&key("web"), &spec(yaml), Environment::Embedded, &none)
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("spec.target.service: not supported here"),
        "{error}"
    );
}

#[test]
fn defaults_and_tcp_targets() {
    let config = monitor_config(
        &key("db"),
        &spec("target: {tcp: {host: db.internal, port: 5432}}"),
        Environment::Embedded,
        &secrets(&[]),
    )
    .unwrap();
    assert!(matches!(
        &config.probe.target,
        Target::Tcp { host, port: 5432 } if host == "db.internal"
    ));
    assert_eq!(config.interval, Duration::from_secs(30));
    assert_eq!(config.policy.failure_threshold, 3);
    assert_eq!(config.down_severity, Severity::P0);
    assert!(config.alerting.is_none());
    assert_eq!(config.target_display, "tcp://db.internal:5432");
}

#[test]
fn compressed_divides_durations_and_latency_levels() {
    let yaml = r#"
target: {url: "http://127.0.0.1:1/"}
interval: 10s
timeout: 2s
windows: [20s]
thresholds:
  - {name: p95, metric: LatencyP95, window: 20s, direction: Above, warning: 300, critical: 1000}
  - {name: errors, metric: ErrorRate, window: 20s, direction: Above, warning: 10}
"#;
    let config = monitor_config(&key("a"), &spec(yaml), Environment::Embedded, &secrets(&[]))
        .unwrap()
        .compressed(10);
    assert_eq!(config.interval, Duration::from_secs(1));
    assert_eq!(config.probe.timeout, Duration::from_millis(200));
    assert_eq!(config.windows, [Duration::from_secs(2)]);
    assert_eq!(config.policy.thresholds[0].window, Duration::from_secs(2));
    assert_eq!(config.policy.thresholds[0].warning, Some(30.0));
    assert_eq!(config.policy.thresholds[1].warning, Some(10.0));
}

/// A target whose health the test switches, and a webhook receiver forwarding payloads.
async fn start_servers(
    healthy: Arc<AtomicBool>,
) -> (String, String, mpsc::UnboundedReceiver<Value>) {
    let target = Router::new()
        .route(
            "/health",
            get(|State(ok): State<Arc<AtomicBool>>| async move {
                let (code, body) = if ok.load(Ordering::SeqCst) {
                    (StatusCode::OK, json!({"status": "healthy"}))
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, json!({"status": "down"}))
                };
                (
                    code,
                    [(header::CONTENT_TYPE, "application/json")],
                    body.to_string(),
                )
            }),
        )
        .with_state(healthy);
    let (tx, rx) = mpsc::unbounded_channel();
    let receiver = Router::new()
        .route(
            "/hook",
            post(
                |State(tx): State<mpsc::UnboundedSender<Value>>, body: String| async move {
                    let _ = tx.send(serde_json::from_str(&body).unwrap_or(Value::Null));
                    StatusCode::OK
                },
            ),
        )
        .with_state(tx);
    let serve = |router: Router| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        addr
    };
    let target = serve(target).await;
    let receiver = serve(receiver).await;
    (
        format!("http://{target}/health"),
        format!("http://{receiver}/hook"),
        rx,
    )
}

async fn wait_health(events: &mut broadcast::Receiver<MonitorEvent>, wanted: Health) {
    let wait = async {
        loop {
            if let Ok(MonitorEvent::HealthChanged { to, .. }) = events.recv().await
                && to == wanted
            {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("health never became {wanted:?}"));
}

async fn next_payload(rx: &mut mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no notification arrived")
        .expect("receiver closed")
}

#[tokio::test]
async fn up_down_up_with_thresholds_alerts_and_resolves() {
    let healthy = Arc::new(AtomicBool::new(true));
    let (url, hook, mut received) = start_servers(healthy.clone()).await;
    let yaml = format!(
        r#"
target: {{url: "{url}"}}
interval: 50ms
timeout: 40ms
checks:
  json: [{{path: $.status, operator: "==", value: healthy}}]
failureThreshold: 3
successThreshold: 2
windows: [10s]
severities: {{down: P1}}
alerting:
  channels: [{{name: hook, webhook: {{url: "{hook}"}}}}]
"#
    );
    let config = monitor_config(
        &key("app"),
        &spec(&yaml),
        Environment::Embedded,
        &secrets(&[]),
    )
    .unwrap();
    let runtime = MonitorRuntime::new().unwrap();
    let mut events = runtime.subscribe();
    runtime
        .start(key("app"), config, Default::default())
        .unwrap();
    wait_health(&mut events, Health::Healthy).await;
    // Nothing has fired: no alert task yet (it costs memory at 10,000 monitors).
    assert!(!runtime.alert_task_started(&key("app")));

    healthy.store(false, Ordering::SeqCst);
    wait_health(&mut events, Health::Down).await;
    assert!(runtime.alert_task_started(&key("app")));
    let status = runtime.status(&key("app")).unwrap();
    assert!(status.consecutive_failures >= 3, "{status:?}");
    assert_eq!(status.last_probe.as_ref().unwrap().status_code, Some(503));
    let trigger = next_payload(&mut received).await;
    assert_eq!(trigger["kind"], "trigger");
    assert_eq!(trigger["alert"]["key"], "down");
    assert_eq!(trigger["alert"]["severity"], "P1");
    assert_eq!(trigger["alert"]["source"], "HealthMonitor shop/app");

    healthy.store(true, Ordering::SeqCst);
    wait_health(&mut events, Health::Healthy).await;
    let status = runtime.status(&key("app")).unwrap();
    assert!(status.consecutive_successes >= 2, "{status:?}");
    let resolve = next_payload(&mut received).await;
    assert_eq!(resolve["kind"], "resolve");
    assert_eq!(resolve["alert"]["key"], "down");
    // The window counted the failures.
    let window = &runtime.status(&key("app")).unwrap().windows[0];
    assert!(window.error_rate.unwrap() > 0.0, "{window:?}");
    runtime.shutdown().await;
    assert!(
        received.try_recv().is_err(),
        "no further notification expected"
    );
}

#[tokio::test]
async fn restored_alert_state_is_not_notified_again() {
    let healthy = Arc::new(AtomicBool::new(false));
    let (url, hook, mut received) = start_servers(healthy.clone()).await;
    let yaml = format!(
        r#"
target: {{url: "{url}"}}
interval: 50ms
timeout: 40ms
failureThreshold: 1
windows: [10s]
alerting:
  channels: [{{name: hook, webhook: {{url: "{hook}"}}}}]
"#
    );
    let config = monitor_config(
        &key("app"),
        &spec(&yaml),
        Environment::Embedded,
        &secrets(&[]),
    )
    .unwrap();
    let runtime = MonitorRuntime::new().unwrap();
    let mut events = runtime.subscribe();
    runtime
        .start(key("app"), config.clone(), Default::default())
        .unwrap();
    let trigger = next_payload(&mut received).await;
    assert_eq!(trigger["kind"], "trigger");
    let state = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(MonitorEvent::AlertState { state, .. }) = events.recv().await
                && state.open_alerts().count() == 1
            {
                return state;
            }
        }
    })
    .await
    .unwrap();
    runtime.shutdown().await;

    // A "restarted" runtime with the persisted state: still down, nothing re-sent; then a
    // recovery sends exactly the resolve.
    let runtime = MonitorRuntime::new().unwrap();
    let mut events = runtime.subscribe();
    runtime.start(key("app"), config, state).unwrap();
    wait_health(&mut events, Health::Down).await;
    // Five more probes, all down, and still nothing sent.
    let mut probes = 0;
    while probes < 5 {
        if let Ok(MonitorEvent::Probed { .. }) = events.recv().await {
            probes += 1;
        }
    }
    assert!(
        received.try_recv().is_err(),
        "the open alert was sent again"
    );
    healthy.store(true, Ordering::SeqCst);
    let resolve = next_payload(&mut received).await;
    assert_eq!(resolve["kind"], "resolve", "{resolve}");
    runtime.shutdown().await;
}

#[tokio::test]
async fn stopping_one_monitor_leaves_the_others_probing() {
    let healthy = Arc::new(AtomicBool::new(true));
    let (url, _hook, _received) = start_servers(healthy).await;
    let yaml = format!("target: {{url: \"{url}\"}}\ninterval: 50ms\ntimeout: 40ms\nwindows: [10s]");
    let config = monitor_config(
        &key("a"),
        &spec(&yaml),
        Environment::Embedded,
        &secrets(&[]),
    )
    .unwrap();
    let runtime = MonitorRuntime::new().unwrap();
    let mut events = runtime.subscribe();
    runtime
        .start(key("a"), config.clone(), Default::default())
        .unwrap();
    runtime.start(key("b"), config, Default::default()).unwrap();
    assert!(runtime.stop(&key("a")));
    assert!(!runtime.stop(&key("a")));
    // Drain what "a" may have had in flight, then count: only "b" keeps probing.
    let counted = tokio::time::timeout(Duration::from_secs(10), async {
        let mut b = 0;
        let mut a_after = 0;
        while b < 10 {
            if let Ok(MonitorEvent::Probed { key: k, .. }) = events.recv().await {
                if k == key("b") {
                    b += 1;
                } else if b > 2 {
                    a_after += 1;
                }
            }
        }
        a_after
    })
    .await
    .expect("monitor b stopped probing");
    assert_eq!(counted, 0, "monitor a still probing after stop");
    assert!(runtime.status(&key("a")).is_none());
    assert_eq!(runtime.statuses().len(), 1);
    runtime.shutdown().await;
}

#[tokio::test]
async fn restored_down_health_is_kept_from_the_first_probe() {
    let healthy = Arc::new(AtomicBool::new(false));
    let (url, _hook, _received) = start_servers(healthy).await;
    let yaml = format!(
        "target: {{url: \"{url}\"}}\ninterval: 300ms\ntimeout: 100ms\nfailureThreshold: 3\nwindows: [10s]"
    );
    let config = monitor_config(
        &key("a"),
        &spec(&yaml),
        Environment::Embedded,
        &secrets(&[]),
    )
    .unwrap();
    let down_since = chrono::DateTime::from_timestamp(1_800_000_000, 123_000_000).unwrap();
    let previous = crate::api::health_monitor::HealthMonitorStatus {
        health: Some(Health::Down),
        health_since: Some(crate::monitor::status::time(down_since)),
        consecutive_failures: 7,
        ..Default::default()
    };
    let runtime = MonitorRuntime::new().unwrap();
    let mut events = runtime.subscribe();
    runtime
        .start_restored(
            key("a"),
            config.clone(),
            Default::default(),
            Some(&previous),
        )
        .unwrap();
    runtime
        .start(key("fresh"), config, Default::default())
        .unwrap();
    let mut seen = std::collections::BTreeSet::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while seen.len() < 2 {
            match events.recv().await {
                Ok(MonitorEvent::Probed { key: k, .. }) => {
                    // After its first failed probe: the restored monitor is still Down, the
                    // fresh one is not Down yet (1 failure of 3).
                    let status = runtime.status(&k).unwrap();
                    if seen.insert(k.name.clone()) {
                        if k.name == "a" {
                            assert_eq!(status.health, Health::Down);
                            assert!(status.consecutive_failures >= 8, "{status:?}");
                            assert_eq!(
                                status.health_since,
                                Some(down_since),
                                "no health change, so healthSince is the stored one"
                            );
                        } else {
                            assert_eq!(status.health, Health::Unknown);
                        }
                    }
                }
                Ok(MonitorEvent::HealthChanged { key: k, .. }) => {
                    assert_ne!(k.name, "a", "restored monitor changed health");
                }
                _ => {}
            }
        }
    })
    .await
    .unwrap();
    runtime.shutdown().await;
}

#[tokio::test]
async fn restored_healthy_stays_healthy_while_thresholds_gather_samples() {
    let healthy = Arc::new(AtomicBool::new(true));
    let (url, _hook, _received) = start_servers(healthy).await;
    let yaml = format!(
        "target: {{url: \"{url}\"}}\ninterval: 200ms\ntimeout: 100ms\nwindows: [10s]\nthresholds:\n  - {{name: errors, metric: ErrorRate, window: 10s, direction: Above, critical: 50, minSamples: 3}}"
    );
    let config = monitor_config(
        &key("a"),
        &spec(&yaml),
        Environment::Embedded,
        &secrets(&[]),
    )
    .unwrap();
    let since = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let previous = crate::api::health_monitor::HealthMonitorStatus {
        health: Some(Health::Healthy),
        health_since: Some(crate::monitor::status::time(since)),
        consecutive_successes: 40,
        ..Default::default()
    };
    let runtime = MonitorRuntime::new().unwrap();
    let mut events = runtime.subscribe();
    runtime
        .start_restored(key("a"), config, Default::default(), Some(&previous))
        .unwrap();
    // Through the probes before the threshold is judged (minSamples 3) and after it.
    let mut probes = 0;
    tokio::time::timeout(Duration::from_secs(10), async {
        while probes < 5 {
            match events.recv().await {
                Ok(MonitorEvent::Probed { .. }) => {
                    probes += 1;
                    let status = runtime.status(&key("a")).unwrap();
                    assert_eq!(status.health, Health::Healthy, "probe {probes}: {status:?}");
                    assert_eq!(status.health_since, Some(since), "probe {probes}");
                }
                Ok(MonitorEvent::HealthChanged { from, to, .. }) => {
                    panic!("restored Healthy changed {from:?} -> {to:?} at probe {probes}")
                }
                _ => {}
            }
        }
    })
    .await
    .unwrap();
    let status = runtime.status(&key("a")).unwrap();
    assert_eq!(status.thresholds[0].value, Some(0.0), "judged by now");
    runtime.shutdown().await;
}
