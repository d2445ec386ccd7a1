//! `watchkeeper run` executing an HTTP-trigger CronJobSpec in-process, on a compressed job clock
//! (60×: `* * * * *` fires every real second, graces and deadlines shrink alike; HTTP stays
//! real). A local endpoint counts the calls that carry the bearer token from the secrets
//! directory; a local webhook receiver gets the alerts. Failure → Failing alert → restart keeps
//! the counts and sends nothing twice → recovery → resolved; `/status` and `/metrics` show the
//! job.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;
use tokio::sync::broadcast;
use watchkeeper::run::jobs::{JobClock, JobEvent};
use watchkeeper::run::{Output, RunOptions, Session};
use watchkeeper::schedule::watch::{JobHealth, RunOutcome};

const TOKEN: &str = "cron-secret-4711";
const SPEED: u32 = 60;

#[derive(Default)]
struct Endpoint {
    status: AtomicU16,
    with_token: AtomicUsize,
    without_token: AtomicUsize,
}

#[derive(Default)]
struct Receiver {
    payloads: Mutex<Vec<Value>>,
}

async fn cron_endpoint(State(endpoint): State<Arc<Endpoint>>, headers: HeaderMap) -> StatusCode {
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TOKEN}"));
    if !authorized {
        endpoint.without_token.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED;
    }
    endpoint.with_token.fetch_add(1, Ordering::SeqCst);
    StatusCode::from_u16(endpoint.status.load(Ordering::SeqCst)).unwrap()
}

async fn receive(State(receiver): State<Arc<Receiver>>, body: String) -> StatusCode {
    let Ok(payload) = serde_json::from_str::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    receiver.payloads.lock().unwrap().push(payload);
    StatusCode::OK
}

async fn serve(router: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

fn manifest(endpoint: std::net::SocketAddr, receiver: std::net::SocketAddr) -> String {
    format!(
        r#"apiVersion: watchkeeper.dev/v1alpha1
kind: CronJobSpec
metadata: {{name: price-collection, namespace: shop}}
spec:
  schedule: "* * * * *"
  timeZone: Europe/Berlin
  httpTrigger:
    url: http://{endpoint}/api/cron/collect-prices
    method: POST
    bearerTokenSecretRef: {{name: cron-secret, key: token}}
    timeout: 5s
  monitoring:
    failureThreshold: 2
    lateAfter: 5m
    alerting:
      channels:
        - name: on-call
          webhook: {{url: "http://{receiver}/alerts"}}
"#
    )
}

fn options(
    text: &str,
    state_dir: &std::path::Path,
    secrets_dir: &std::path::Path,
    clock: JobClock,
) -> RunOptions {
    RunOptions {
        texts: vec![("jobs.yaml".to_string(), text.to_string())],
        demo: None,
        listen: "127.0.0.1:0".parse().unwrap(),
        state_dir: Some(state_dir.to_path_buf()),
        secrets_dir: Some(secrets_dir.to_path_buf()),
        skip_unsupported: false,
        output: Output::Quiet,
        job_clock: clock,
    }
}

/// Waits (bounded) for an event matching `wanted`; returns it.
async fn wait_for(
    events: &mut broadcast::Receiver<JobEvent>,
    what: &str,
    wanted: impl Fn(&JobEvent) -> bool,
) -> JobEvent {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match events.recv().await {
                Ok(event) if wanted(&event) => return event,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => panic!("lost {n} events"),
                Err(e) => panic!("event stream ended: {e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn notified(event: &JobEvent, kind: &str, alert: &str) -> bool {
    matches!(event, JobEvent::Notified { kind: k, alert: a, .. } if k.as_str() == kind && a == alert)
}

fn received(receiver: &Receiver) -> Vec<(String, String)> {
    receiver
        .payloads
        .lock()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["kind"].as_str().unwrap_or_default().to_string(),
                p["alert"]["key"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_trigger_job_runs_alerts_survives_a_restart_and_recovers() {
    let base = std::env::temp_dir().join(format!("wk-run-jobs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let (state_dir, secrets_dir) = (base.join("state"), base.join("secrets"));
    std::fs::create_dir_all(secrets_dir.join("cron-secret")).unwrap();
    std::fs::write(secrets_dir.join("cron-secret/token"), format!("{TOKEN}\n")).unwrap();

    let endpoint = Arc::new(Endpoint::default());
    endpoint.status.store(200, Ordering::SeqCst);
    let endpoint_addr = serve(
        Router::new()
            .route("/api/cron/collect-prices", post(cron_endpoint))
            .with_state(endpoint.clone()),
    )
    .await;
    let receiver = Arc::new(Receiver::default());
    let receiver_addr = serve(
        Router::new()
            .route("/alerts", post(receive))
            .with_state(receiver.clone()),
    )
    .await;
    let text = manifest(endpoint_addr, receiver_addr);

    // 1. Runs on schedule with the token: two successful runs, Healthy.
    let mut session = Session::start(options(
        &text,
        &state_dir,
        &secrets_dir,
        JobClock::compressed(SPEED),
    ))
    .await
    .unwrap();
    let mut events = session.take_job_events().unwrap();
    for _ in 0..2 {
        wait_for(&mut events, "a successful run", |e| {
            matches!(e, JobEvent::RunFinished { run, .. } if run.outcome == RunOutcome::Succeeded)
        })
        .await;
    }
    let status = &session.jobs().statuses()[0];
    assert_eq!(status.health, JobHealth::Healthy, "{status:?}");
    assert!(endpoint.with_token.load(Ordering::SeqCst) >= 2);
    assert_eq!(endpoint.without_token.load(Ordering::SeqCst), 0);
    // Run names follow Kubernetes: <job>-<due time in minutes since the epoch>, and the due
    // times are whole minutes of the job clock.
    let last = status.last_run.clone().unwrap();
    let due = last.scheduled_for.unwrap();
    assert_eq!(due.timestamp() % 60, 0, "{last:?}");
    assert_eq!(
        last.name,
        format!("price-collection-{}", due.timestamp() / 60)
    );

    // 2. The endpoint fails: Failing after two consecutive failures, one trigger alert.
    endpoint.status.store(500, Ordering::SeqCst);
    wait_for(&mut events, "the Failing trigger", |e| {
        notified(e, "trigger", "job/failing")
    })
    .await;
    let status = &session.jobs().statuses()[0];
    assert_eq!(status.health, JobHealth::Failing, "{status:?}");
    assert!(status.consecutive_failures >= 2, "{status:?}");
    assert!(
        status.message.contains("HTTP 500"),
        "the last failure is described: {status:?}"
    );
    assert_eq!(status.open_alerts.len(), 1, "{status:?}");

    // /status and /metrics show the job.
    let base_url = format!("http://{}", session.local_addr());
    let document: Value = serde_json::from_str(
        &reqwest::get(format!("{base_url}/status"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    let job = &document["jobs"][0];
    assert_eq!(job["name"], "price-collection");
    assert_eq!(job["health"], "Failing");
    assert_eq!(job["timeZone"], "Europe/Berlin");
    let metrics = reqwest::get(format!("{base_url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let labels = r#"namespace="shop",name="price-collection""#;
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
    };
    assert!(
        value(&format!(
            r#"watchkeeper_job_runs_total{{{labels},result="succeeded"}}"#
        )) >= 2.0
    );
    assert!(
        value(&format!(
            r#"watchkeeper_job_runs_total{{{labels},result="failed"}}"#
        )) >= 2.0
    );
    assert!(
        value(&format!(
            "watchkeeper_job_last_success_timestamp_seconds{{{labels}}}"
        )) > 1.7e9
    );
    assert!(
        value(&format!(
            "watchkeeper_job_duration_seconds_count{{{labels}}}"
        )) >= 4.0
    );
    assert_eq!(
        value(&format!(
            r#"watchkeeper_job_health{{{labels},health="Failing"}}"#
        )),
        1.0
    );

    // 3. Restart with the same state directory, the endpoint still failing: the counts come
    // back from the state file and the open alert is not sent again.
    let stopped_at = session.jobs().clock().now();
    let failures_before = session.jobs().statuses()[0].consecutive_failures;
    session.stop().await.unwrap();
    let saved = std::fs::read_to_string(state_dir.join("alerts.json")).unwrap();
    assert!(saved.contains("shop/price-collection"), "{saved}");
    assert!(
        !saved.contains(TOKEN),
        "the token never reaches the state file"
    );
    let mut session = Session::start(options(
        &text,
        &state_dir,
        &secrets_dir,
        JobClock::compressed_from(SPEED, stopped_at),
    ))
    .await
    .unwrap();
    let mut events = session.take_job_events().unwrap();
    let restored = &session.jobs().statuses()[0];
    assert!(
        restored.consecutive_failures >= failures_before,
        "restored {restored:?}, before {failures_before}"
    );
    wait_for(
        &mut events,
        "a failed run after the restart",
        |e| matches!(e, JobEvent::RunFinished { run, .. } if run.outcome == RunOutcome::Failed),
    )
    .await;
    assert_eq!(session.jobs().statuses()[0].health, JobHealth::Failing);

    // 4. Recovery: one success resolves the alert.
    endpoint.status.store(200, Ordering::SeqCst);
    wait_for(&mut events, "the resolve", |e| {
        notified(e, "resolve", "job/failing")
    })
    .await;
    let status = &session.jobs().statuses()[0];
    assert_eq!(status.health, JobHealth::Healthy, "{status:?}");
    assert_eq!(status.consecutive_failures, 0);
    assert!(status.open_alerts.is_empty(), "{status:?}");
    session.stop().await.unwrap();

    // The receiver got exactly one trigger and one resolve, across the restart.
    assert_eq!(
        received(&receiver),
        [
            ("trigger".to_string(), "job/failing".to_string()),
            ("resolve".to_string(), "job/failing".to_string())
        ]
    );
    let payloads = receiver.payloads.lock().unwrap().clone();
    assert_eq!(payloads[0]["alert"]["severity"], "P2");
    assert_eq!(payloads[0]["alert"]["labels"]["name"], "price-collection");
    assert_eq!(endpoint.without_token.load(Ordering::SeqCst), 0);
    let _ = std::fs::remove_dir_all(&base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_does_not_run_is_late_and_forbid_skips_overlapping_runs() {
    // The endpoint never answers within the run: with concurrencyPolicy Forbid (the default)
    // the next due times are skipped while the run is active, and with lateAfter 2m the job
    // turns Late two (compressed) minutes after the first skipped due time.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(socket); // never answered
        }
    });
    let text = format!(
        r#"apiVersion: watchkeeper.dev/v1alpha1
kind: CronJobSpec
metadata: {{name: crawl}}
spec:
  schedule: "* * * * *"
  httpTrigger: {{url: "http://{addr}/api/cron/crawl", timeout: 30s}}
  monitoring: {{lateAfter: 2m}}
"#
    );
    let base = std::env::temp_dir().join(format!("wk-run-jobs-late-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let mut session = Session::start(options(
        &text,
        &base.join("state"),
        &base,
        JobClock::compressed(SPEED),
    ))
    .await
    .unwrap();
    let mut events = session.take_job_events().unwrap();
    let mut skipped: BTreeMap<i64, String> = BTreeMap::new();
    let late = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match events.recv().await.unwrap() {
                JobEvent::RunSkipped { due, reason, .. } => {
                    skipped.insert(due.timestamp(), reason);
                }
                JobEvent::HealthChanged {
                    to: JobHealth::Late,
                    ..
                } => return,
                _ => {}
            }
        }
    })
    .await;
    assert!(late.is_ok(), "never Late; skipped {skipped:?}");
    assert!(!skipped.is_empty());
    assert!(
        skipped
            .values()
            .all(|r| r.contains("concurrencyPolicy Forbid")),
        "{skipped:?}"
    );
    let status = &session.jobs().statuses()[0];
    assert_eq!(status.reason, "RunLate");
    assert!(status.message.contains("still running"), "{status:?}");
    assert_eq!(status.runs_started, 1, "{status:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    session.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_runs_only_the_latest_missed_due_time_and_not_past_the_starting_deadline() {
    use chrono::{TimeDelta, TimeZone, Utc};
    let endpoint = Arc::new(Endpoint::default());
    endpoint.status.store(200, Ordering::SeqCst);
    let endpoint_addr = serve(
        Router::new()
            .route("/api/cron/collect-prices", post(cron_endpoint))
            .with_state(endpoint.clone()),
    )
    .await;
    let job = |deadline: &str| {
        format!(
            r#"apiVersion: watchkeeper.dev/v1alpha1
kind: CronJobSpec
metadata: {{name: reset}}
spec:
  schedule: "*/2 * * * *"
  {deadline}
  httpTrigger:
    url: http://{endpoint_addr}/api/cron/collect-prices
    bearerTokenSecretRef: {{name: cron-secret, key: token}}
"#
        )
    };
    let base = std::env::temp_dir().join(format!("wk-run-jobs-catchup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let (state_dir, secrets_dir) = (base.join("state"), base.join("secrets"));
    std::fs::create_dir_all(secrets_dir.join("cron-secret")).unwrap();
    std::fs::write(secrets_dir.join("cron-secret/token"), TOKEN).unwrap();
    let started = |e: &JobEvent| matches!(e, JobEvent::RunStarted { .. });

    // One run due at 10:00 (the clock starts at 09:59:30).
    let start = Utc.with_ymd_and_hms(2026, 6, 1, 9, 59, 30).unwrap();
    let ten = start + TimeDelta::seconds(30);
    let mut session = Session::start(options(
        &job(""),
        &state_dir,
        &secrets_dir,
        JobClock::compressed_from(SPEED, start),
    ))
    .await
    .unwrap();
    let mut events = session.take_job_events().unwrap();
    let JobEvent::RunStarted { scheduled_for, .. } = wait_for(&mut events, "run", started).await
    else {
        unreachable!()
    };
    assert_eq!(scheduled_for, Some(ten));
    wait_for(&mut events, "the run's end", |e| {
        matches!(e, JobEvent::RunFinished { .. })
    })
    .await;
    session.stop().await.unwrap();

    // Back at 10:21:30: due times 10:02 … 10:20 were missed; only 10:20 runs, at once.
    let mut session = Session::start(options(
        &job(""),
        &state_dir,
        &secrets_dir,
        JobClock::compressed_from(SPEED, ten + TimeDelta::seconds(21 * 60 + 30)),
    ))
    .await
    .unwrap();
    let mut events = session.take_job_events().unwrap();
    let JobEvent::RunStarted { scheduled_for, .. } =
        wait_for(&mut events, "catch-up", started).await
    else {
        unreachable!()
    };
    assert_eq!(scheduled_for, Some(ten + TimeDelta::minutes(20)));
    let JobEvent::RunStarted { scheduled_for, .. } = wait_for(&mut events, "next", started).await
    else {
        unreachable!()
    };
    assert_eq!(scheduled_for, Some(ten + TimeDelta::minutes(22)));
    let last_end = session.jobs().clock().now();
    session.stop().await.unwrap();

    // With a 30s starting deadline, a due time 90s old is skipped and the next one runs.
    let later = ten + TimeDelta::minutes(30) + TimeDelta::seconds(90);
    assert!(later > last_end);
    let mut session = Session::start(options(
        &job("startingDeadline: 30s"),
        &state_dir,
        &secrets_dir,
        JobClock::compressed_from(SPEED, later),
    ))
    .await
    .unwrap();
    let mut events = session.take_job_events().unwrap();
    let skipped = wait_for(&mut events, "the skip", |e| {
        matches!(e, JobEvent::RunSkipped { .. }) || started(e)
    })
    .await;
    let JobEvent::RunSkipped { due, reason, .. } = skipped else {
        panic!("expected a skip first, got {skipped:?}");
    };
    assert_eq!(due, ten + TimeDelta::minutes(30));
    assert!(reason.contains("starting deadline"), "{reason}");
    let JobEvent::RunStarted { scheduled_for, .. } = wait_for(&mut events, "next", started).await
    else {
        unreachable!()
    };
    assert_eq!(scheduled_for, Some(ten + TimeDelta::minutes(32)));
    session.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_deadline_stops_a_run_and_replace_replaces_it() {
    // An endpoint that accepts and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let text = format!(
        r#"apiVersion: watchkeeper.dev/v1alpha1
kind: CronJobSpec
metadata: {{name: bounded}}
spec:
  schedule: "* * * * *"
  activeDeadline: 20s
  httpTrigger: {{url: "http://{addr}/slow", timeout: 30s}}
---
apiVersion: watchkeeper.dev/v1alpha1
kind: CronJobSpec
metadata: {{name: replaced}}
spec:
  schedule: "* * * * *"
  concurrencyPolicy: Replace
  httpTrigger: {{url: "http://{addr}/slow", timeout: 30s}}
"#
    );
    let base = std::env::temp_dir().join(format!("wk-run-jobs-deadline-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let mut session = Session::start(options(
        &text,
        &base.join("state"),
        &base,
        JobClock::compressed(SPEED),
    ))
    .await
    .unwrap();
    let mut events = session.take_job_events().unwrap();
    let mut messages: BTreeMap<String, String> = BTreeMap::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while messages.len() < 2 {
            if let JobEvent::RunFinished { key, run } = events.recv().await.unwrap() {
                assert_eq!(run.outcome, RunOutcome::Failed, "{run:?}");
                messages
                    .entry(key.name.clone())
                    .or_insert(run.message.unwrap_or_default());
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("runs did not end: {messages:?}"));
    assert!(
        messages["bounded"].contains("stopped at the active deadline (20s)"),
        "{messages:?}"
    );
    assert!(
        messages["replaced"].contains("replaced by the next run"),
        "{messages:?}"
    );
    session.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&base);
}
