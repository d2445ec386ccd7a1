//! The flush against a local HTTP server standing in for the API server: changed statuses are
//! written concurrently up to the bound, unchanged ones not at all.

use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::State;
use axum::routing::patch;
use chrono::DateTime;

use super::*;

#[test]
fn kubernetes_times_convert_to_chrono() {
    let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    assert_eq!(chrono_time(&crate::monitor::status::time(at)), at);
}

/// Status patches seen: how many in total, how many at once now and at most.
#[derive(Default)]
struct Seen {
    total: AtomicUsize,
    now: AtomicUsize,
    most: AtomicUsize,
}

/// A server answering every status patch after 200 ms, counting patches in flight.
async fn slow_api_server(seen: Arc<Seen>) -> Client {
    let app = Router::new()
        .route(
            "/apis/watchkeeper.dev/v1alpha1/namespaces/{ns}/healthmonitors/{name}/status",
            patch(|State(seen): State<Arc<Seen>>| async move {
                let now = seen.now.fetch_add(1, Ordering::SeqCst) + 1;
                seen.most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(200)).await;
                seen.now.fetch_sub(1, Ordering::SeqCst);
                seen.total.fetch_add(1, Ordering::SeqCst);
                (
                    [("content-type", "application/json")],
                    r#"{"apiVersion":"watchkeeper.dev/v1alpha1","kind":"HealthMonitor","metadata":{"name":"m"}}"#,
                )
            }),
        )
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
    Client::try_from(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_writes_changed_statuses_concurrently_up_to_the_bound_and_only_once() {
    let seen = Arc::new(Seen::default());
    let client = slow_api_server(seen.clone()).await;
    let mut registry = prometheus_client::registry::Registry::default();
    let monitors = Monitors::new(MonitorMetrics::register(&mut registry));
    let count = FLUSH_CONCURRENCY * 2 + 5;
    {
        let mut entries = monitors.entries();
        for i in 0..count {
            let mut entry = Entry::new(None);
            entry.running = true;
            let key = MonitorKey {
                namespace: "ops".into(),
                name: format!("m{i}"),
            };
            entries.insert(key, entry);
        }
    }
    let started = std::time::Instant::now();
    monitors.flush(&client).await;
    assert_eq!(
        seen.total.load(Ordering::SeqCst),
        count,
        "every changed status written"
    );
    assert_eq!(
        seen.most.load(Ordering::SeqCst),
        FLUSH_CONCURRENCY,
        "writes in flight at most"
    );
    // Three rounds of 200 ms, not `count` of them one after the other.
    assert!(
        started.elapsed() < Duration::from_millis(200) * 10,
        "{:?}",
        started.elapsed()
    );
    // Nothing changed since: the next flush writes nothing.
    monitors.flush(&client).await;
    assert_eq!(seen.total.load(Ordering::SeqCst), count);
}
