//! `watchkeeper run --demo` end to end on a compressed timeline (speed 10: the 32 s script in
//! 3.2 s): health goes Healthy → unhealthy → Healthy, the on-call channel gets exactly one
//! trigger and one resolve, every team-chat alert is resolved, `/status` and `/metrics` answer.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::broadcast;
use watchkeeper::api::health_monitor::Health;
use watchkeeper::monitor::MonitorEvent;
use watchkeeper::run::{Output, RunOptions, Session};

async fn next_health(events: &mut broadcast::Receiver<MonitorEvent>) -> Health {
    loop {
        match events.recv().await {
            Ok(MonitorEvent::HealthChanged { to, .. }) => return to,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(n)) => panic!("lost {n} events"),
            Err(e) => panic!("event stream ended: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_its_script_with_one_page_and_its_resolution() {
    let state_dir = std::env::temp_dir().join(format!("wk-run-test-{}", std::process::id()));
    let mut session = Session::start(RunOptions {
        texts: Vec::new(),
        demo: Some(10),
        listen: "127.0.0.1:0".parse().unwrap(),
        state_dir: Some(state_dir.clone()),
        secrets_dir: None,
        skip_unsupported: false,
        output: Output::Quiet,
        job_clock: watchkeeper::run::jobs::JobClock::wall(),
    })
    .await
    .unwrap();
    let mut events = session.take_events().unwrap();

    // Health sequence: (Unknown →) Healthy → some unhealthy states → Healthy.
    let sequence = tokio::time::timeout(Duration::from_secs(30), async {
        let mut seen = Vec::new();
        loop {
            let health = next_health(&mut events).await;
            seen.push(health);
            let unhealthy_seen = seen
                .iter()
                .any(|h| matches!(h, Health::Degraded | Health::Critical | Health::Down));
            if health == Health::Healthy && unhealthy_seen {
                return seen;
            }
        }
    })
    .await
    .expect("the demo never went through its script back to Healthy");
    assert_eq!(sequence[0], Health::Healthy, "{sequence:?}");
    assert!(sequence.contains(&Health::Down), "{sequence:?}");
    assert!(
        sequence.contains(&Health::Critical) || sequence.contains(&Health::Degraded),
        "{sequence:?}"
    );

    // Back to Healthy means every threshold and the down alert cleared; their resolves are
    // sent by the alert task right after. Wait for the receiver to have them all.
    let demo = session.demo().unwrap();
    let mut payloads = demo.subscribe();
    let all_resolved = |received: &[Value]| {
        let mut open = std::collections::BTreeMap::<(String, String), i32>::new();
        for p in received {
            let key = (
                p["channel"].as_str().unwrap_or_default().to_string(),
                p["alert"]["key"].as_str().unwrap_or_default().to_string(),
            );
            *open.entry(key).or_default() += match p["kind"].as_str() {
                Some("trigger") => 1,
                Some("resolve") => -1,
                _ => 0,
            };
        }
        !received.is_empty() && open.values().all(|n| *n == 0)
    };
    tokio::time::timeout(Duration::from_secs(10), async {
        while !all_resolved(&demo.received()) {
            let _ = payloads.recv().await;
        }
    })
    .await
    .expect("not every alert was resolved");

    let received = demo.received();
    let on_call: Vec<(&str, &str)> = received
        .iter()
        .filter(|p| p["channel"] == "on-call")
        .map(|p| {
            (
                p["kind"].as_str().unwrap_or_default(),
                p["alert"]["key"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        on_call,
        [("trigger", "down"), ("resolve", "down")],
        "{received:#?}"
    );
    assert_eq!(
        received
            .iter()
            .filter(|p| p["alert"]["severity"] == "P0")
            .count(),
        2
    );
    // Team chat: the thresholds crossed; per alert, triggers and resolves alternate (a
    // threshold may cross twice under a loaded machine's latency jitter, but never triggers
    // twice without a resolve in between).
    let chat: Vec<&Value> = received
        .iter()
        .filter(|p| p["channel"] == "team-chat")
        .collect();
    assert!(
        !chat.is_empty(),
        "the thresholds never crossed: {received:#?}"
    );
    let mut last = std::collections::BTreeMap::<&str, &str>::new();
    for p in &chat {
        let key = p["alert"]["key"].as_str().unwrap_or_default();
        let kind = p["kind"].as_str().unwrap_or_default();
        let previous = last.insert(key, kind).unwrap_or("resolve");
        assert_ne!(previous, kind, "two {kind}s in a row for {key}: {chat:#?}");
    }
    assert!(last.values().all(|k| *k == "resolve"), "{chat:#?}");

    // The HTTP endpoints.
    let base = format!("http://{}", session.local_addr());
    let status = reqwest::get(format!("{base}/status"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let status: Value = serde_json::from_str(&status).unwrap();
    let monitor = &status["monitors"][0];
    assert_eq!(monitor["namespace"], "demo");
    assert_eq!(monitor["name"], "demo-app");
    assert_eq!(monitor["health"], "Healthy");
    assert!(monitor["probes"].as_u64().unwrap() > 20, "{monitor}");
    assert_eq!(monitor["windows"][0]["window"], "10s");
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "watchkeeper_probe_duration_seconds_bucket{",
        "watchkeeper_probe_up{",
        r#"watchkeeper_monitor_health{namespace="demo",monitor="demo-app",health="Healthy"} 1"#,
        r#"watchkeeper_alerts_sent_total{namespace="demo",monitor="demo-app",channel="on-call",kind="trigger"} 1"#,
        r#"watchkeeper_alerts_sent_total{namespace="demo",monitor="demo-app",channel="on-call",kind="resolve"} 1"#,
    ] {
        assert!(metrics.contains(name), "{name} missing in\n{metrics}");
    }

    session.stop().await.unwrap();
    // The state file exists and holds no open alert for the demo monitor.
    let text = std::fs::read_to_string(state_dir.join("alerts.json")).unwrap();
    let saved: Value = serde_json::from_str(&text).unwrap();
    assert!(saved["monitors"]["demo/demo-app"].is_object(), "{saved}");
    assert!(
        saved["monitors"]["demo/demo-app"]
            .get("alerts")
            .is_none_or(|a| a.as_object().is_some_and(|m| m.is_empty())),
        "{saved}"
    );
    std::fs::remove_dir_all(state_dir).unwrap();
}
