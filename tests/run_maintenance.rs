//! `watchkeeper run` honouring MaintenanceWindows, on a compressed job clock (60×: a
//! `* * * * *` job fires every real second) that starts at a fixed instant, so the windows
//! can be written as fixed times:
//!
//! - `shop/patching` (suspendCronJobs, 10:02–10:05) selects `price-collection` (every minute,
//!   late after 30 s, dead-man's switch 2 min): 10:01 runs, 10:02–10:04 are skipped naming the
//!   window, no Late or Missed alert although the switch would have fired at 10:03, 10:05
//!   runs (no burst), `/status` shows the window while open;
//! - `shop/quiet` (suppressAlerts, 10:00–10:03) selects `report`, which always fails: its
//!   Failing alert is not sent while the window is open and is sent after it closes;
//! - `/maintenance.ics` and `/maintenance.json` list both windows with their times.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use tokio::sync::broadcast;
use watchkeeper::run::jobs::{JobClock, JobEvent};
use watchkeeper::run::{Output, RunOptions, Session};
use watchkeeper::schedule::watch::{JobHealth, RunOutcome};

const SPEED: u32 = 60;

#[derive(Default)]
struct Calls {
    prices: AtomicUsize,
    report: AtomicUsize,
    alerts: Mutex<Vec<Value>>,
}

async fn prices(State(calls): State<Arc<Calls>>) -> StatusCode {
    calls.prices.fetch_add(1, Ordering::SeqCst);
    StatusCode::OK
}

async fn report(State(calls): State<Arc<Calls>>) -> StatusCode {
    calls.report.fetch_add(1, Ordering::SeqCst);
    StatusCode::INTERNAL_SERVER_ERROR
}

async fn receive(State(calls): State<Arc<Calls>>, body: String) -> StatusCode {
    match serde_json::from_str::<Value>(&body) {
        Ok(payload) => {
            calls.alerts.lock().unwrap().push(payload);
            StatusCode::OK
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 7, h, m, s).unwrap()
}

fn manifests(server: std::net::SocketAddr) -> String {
    format!(
        r#"apiVersion: watchkeeper.dev/v1alpha1
kind: CronJobSpec
metadata: {{name: price-collection, namespace: shop, labels: {{app: prices}}}}
spec:
  schedule: "* * * * *"
  httpTrigger: {{url: "http://{server}/prices", method: POST, timeout: 5s}}
  monitoring:
    lateAfter: 30s
    deadMansSwitch: 2m
    alerting:
      channels: [{{name: ops, webhook: {{url: "http://{server}/alerts"}}}}]
---
apiVersion: watchkeeper.dev/v1alpha1
kind: CronJobSpec
metadata: {{name: report, namespace: shop, labels: {{app: reports}}}}
spec:
  schedule: "* * * * *"
  httpTrigger: {{url: "http://{server}/report", method: POST, timeout: 5s}}
  monitoring:
    failureThreshold: 1
    lateAfter: 30s
    alerting:
      channels: [{{name: ops, webhook: {{url: "http://{server}/alerts"}}}}]
---
apiVersion: watchkeeper.dev/v1alpha1
kind: MaintenanceWindow
metadata: {{name: patching, namespace: shop}}
spec:
  description: OS patching
  schedule: {{oneOff: {{start: "2030-01-07T10:02:00Z", end: "2030-01-07T10:05:00Z"}}}}
  selector: {{matchLabels: {{app: prices}}}}
  effects: {{suspendCronJobs: true}}
---
apiVersion: watchkeeper.dev/v1alpha1
kind: MaintenanceWindow
metadata: {{name: quiet, namespace: shop}}
spec:
  schedule: {{oneOff: {{start: "2030-01-07T10:00:00Z", end: "2030-01-07T10:03:00Z"}}}}
  selector: {{matchLabels: {{app: reports}}}}
  effects: {{suppressAlerts: true}}
"#
    )
}

async fn wait_for(
    events: &mut broadcast::Receiver<JobEvent>,
    seen: &mut Vec<JobEvent>,
    what: &str,
    wanted: impl Fn(&JobEvent) -> bool,
) {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    let done = wanted(&event);
                    seen.push(event);
                    if done {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => panic!("lost {n} events"),
                Err(e) => panic!("event stream ended: {e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    reqwest::get(format!("http://{addr}{path}"))
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_suspend_jobs_without_late_alerts_mute_alerts_and_are_served_as_feeds() {
    let calls = Arc::new(Calls::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/prices", post(prices))
        .route("/report", post(report))
        .route("/alerts", post(receive))
        .with_state(calls.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut session = Session::start(RunOptions {
        texts: vec![("m.yaml".to_string(), manifests(server))],
        demo: None,
        listen: "127.0.0.1:0".parse().unwrap(),
        state_dir: None,
        secrets_dir: None,
        skip_unsupported: false,
        output: Output::Quiet,
        job_clock: JobClock::compressed_from(SPEED, at(10, 0, 30)),
    })
    .await
    .unwrap();
    let addr = session.local_addr();
    let clock = session.jobs().clock();
    let mut events = session.take_job_events().unwrap();

    // Feeds: both windows with their times, UTC; the namespace filter applies.
    let ics = get(addr, "/maintenance.ics").await;
    assert!(ics.starts_with("BEGIN:VCALENDAR\r\n"), "{ics}");
    for line in [
        "DTSTART:20300107T100200Z",
        "DTEND:20300107T100500Z",
        "SUMMARY:Maintenance: OS patching",
        "DTSTART:20300107T100000Z",
        "DTEND:20300107T100300Z",
    ] {
        assert!(
            ics.contains(&format!("{line}\r\n")),
            "{line} missing in {ics}"
        );
    }
    let json: Value =
        serde_json::from_str(&get(addr, "/maintenance.json?namespace=shop").await).unwrap();
    let names: Vec<&str> = json["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["quiet", "patching"], "{json}");
    assert_eq!(json["windows"][1]["start"], "2030-01-07T10:02:00Z");
    assert_eq!(json["windows"][1]["effects"][0], "suspendCronJobs");
    let other: Value =
        serde_json::from_str(&get(addr, "/maintenance.json?namespace=other").await).unwrap();
    assert_eq!(other["windows"], Value::Array(Vec::new()));

    // The job runs at 10:01, skips 10:02–10:04 naming the window, and runs at 10:05.
    let mut seen = Vec::new();
    wait_for(
        &mut events,
        &mut seen,
        "a skipped due time",
        |e| matches!(e, JobEvent::RunSkipped { key, .. } if key.name == "price-collection"),
    )
    .await;
    // Inside `quiet` (before 10:03): the report job has failed at 10:01 and nothing was sent
    // (unmuted, the alert would have gone out within a tick of that failure).
    let now = clock.now();
    assert!(now < at(10, 3, 0), "the test fell behind its clock: {now}");
    let failed_inside = seen.iter().any(|e| {
        matches!(e, JobEvent::RunFinished { key, run }
            if key.name == "report" && run.outcome == RunOutcome::Failed
                && run.scheduled_for == Some(at(10, 1, 0)))
    });
    assert!(failed_inside, "{seen:?}");
    assert!(
        calls.alerts.lock().unwrap().is_empty(),
        "sent inside the window"
    );
    let report_status = session
        .jobs()
        .statuses()
        .into_iter()
        .find(|s| s.name == "report")
        .unwrap();
    assert_eq!(report_status.health, JobHealth::Failing);
    assert_eq!(
        report_status.alerts_muted_by_window.as_deref(),
        Some("shop/quiet")
    );
    // While open, /status lists the window and the job says which window suspends it.
    let status: Value = serde_json::from_str(&get(addr, "/status").await).unwrap();
    let open: Vec<&str> = status["maintenance"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["window"].as_str().unwrap())
        .collect();
    assert!(open.contains(&"shop/patching"), "{status}");
    let job = status["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "price-collection")
        .unwrap();
    assert_eq!(job["suspendedByWindow"], "shop/patching", "{job}");

    wait_for(&mut events, &mut seen, "the run due at 10:05", |e| {
        matches!(e, JobEvent::RunFinished { key, run }
            if key.name == "price-collection" && run.scheduled_for == Some(at(10, 5, 0)))
    })
    .await;
    let started: BTreeSet<DateTime<Utc>> = seen
        .iter()
        .filter_map(|e| match e {
            JobEvent::RunStarted {
                key, scheduled_for, ..
            } if key.name == "price-collection" => *scheduled_for,
            _ => None,
        })
        .collect();
    assert_eq!(
        started,
        BTreeSet::from([at(10, 1, 0), at(10, 5, 0)]),
        "no runs inside the window, no burst after it"
    );
    let skipped: Vec<(DateTime<Utc>, String)> = seen
        .iter()
        .filter_map(|e| match e {
            JobEvent::RunSkipped { key, due, reason } if key.name == "price-collection" => {
                Some((*due, reason.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        skipped.iter().map(|(d, _)| *d).collect::<Vec<_>>(),
        [at(10, 2, 0), at(10, 3, 0), at(10, 4, 0)]
    );
    assert!(
        skipped
            .iter()
            .all(|(_, r)| r.contains("MaintenanceWindow shop/patching is open")),
        "{skipped:?}"
    );
    // Neither Late (lateAfter 30s) nor Missed (switch 2m, no success 10:01–10:05).
    for e in &seen {
        if let JobEvent::HealthChanged { key, to, .. } = e {
            assert!(
                key.name != "price-collection"
                    || !matches!(to, JobHealth::Late | JobHealth::Missed),
                "{e:?}"
            );
        }
    }
    let prices_alerts: Vec<Value> = calls
        .alerts
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p.to_string().contains("price-collection"))
        .cloned()
        .collect();
    assert!(prices_alerts.is_empty(), "{prices_alerts:?}");
    assert_eq!(calls.prices.load(Ordering::SeqCst), 2);
    let status = session
        .jobs()
        .statuses()
        .into_iter()
        .find(|s| s.name == "price-collection")
        .unwrap();
    assert_eq!(status.health, JobHealth::Healthy, "{status:?}");
    assert_eq!(status.suspended_by_window, None);

    // After `quiet` closed, the still-firing Failing alert was sent, once.
    if !seen.iter().any(
        |e| matches!(e, JobEvent::Notified { key, alert, .. } if key.name == "report" && alert == "job/failing"),
    ) {
        wait_for(&mut events, &mut seen, "the report's Failing alert", |e| {
            matches!(e, JobEvent::Notified { key, alert, .. }
                if key.name == "report" && alert == "job/failing")
        })
        .await;
    }
    let sent: Vec<Value> = calls
        .alerts
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p["alert"]["key"] == "job/failing")
        .cloned()
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(calls.report.load(Ordering::SeqCst) >= 3);
    session.stop().await.unwrap();
}
