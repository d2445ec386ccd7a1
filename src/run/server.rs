//! The HTTP endpoints of `watchkeeper run`: `GET /status` (every monitor's and job's status and
//! the open maintenance windows as JSON), `GET /metrics` (Prometheus/OpenMetrics text),
//! `GET /healthz`, and the maintenance feeds `GET /maintenance.ics` and `/maintenance.json`
//! (`?namespace=` optional; the controller's formats).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::RunError;
use super::jobs::{JobRuntime, JobStatus};
use super::maintenance::{self, Calendar, OpenWindow};
use crate::monitor::{MonitorRuntime, MonitorStatus};

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone)]
struct Shared {
    runtime: Arc<MonitorRuntime>,
    jobs: Arc<JobRuntime>,
    registry: Arc<Registry>,
    calendar: Arc<Calendar>,
    unsupported: Arc<Vec<String>>,
}

/// The `/status` document.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDocument {
    /// Every running monitor.
    pub monitors: Vec<MonitorStatus>,
    /// Every CronJobSpec run in-process.
    pub jobs: Vec<JobStatus>,
    /// MaintenanceWindows open now (on the jobs' clock).
    pub maintenance: Vec<OpenWindow>,
    /// Resources in the manifests embedded mode does not run (skipped with
    /// `--skip-unsupported`).
    pub not_run: Vec<String>,
}

/// Binds `addr` and serves until `cancel`.
pub async fn serve(
    addr: SocketAddr,
    runtime: Arc<MonitorRuntime>,
    jobs: Arc<JobRuntime>,
    registry: Arc<Registry>,
    calendar: Arc<Calendar>,
    unsupported: Vec<String>,
    cancel: CancellationToken,
) -> Result<(SocketAddr, JoinHandle<()>), RunError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::Listen {
            addr: addr.to_string(),
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| RunError::Listen {
        addr: addr.to_string(),
        source,
    })?;
    let app = Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/maintenance.ics", get(calendar_feed))
        .route("/maintenance.json", get(json_feed))
        .with_state(Shared {
            runtime,
            jobs,
            registry,
            calendar,
            unsupported: Arc::new(unsupported),
        });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(cancel.cancelled_owned())
            .await;
    });
    Ok((bound, task))
}

async fn status(State(shared): State<Shared>) -> Response {
    let document = StatusDocument {
        monitors: shared.runtime.statuses(),
        jobs: shared.jobs.statuses(),
        maintenance: shared.calendar.open_at(shared.jobs.clock().now()),
        not_run: shared.unsupported.as_ref().clone(),
    };
    match serde_json::to_string_pretty(&document) {
        Ok(text) => ([(header::CONTENT_TYPE, "application/json")], text).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn metrics(State(shared): State<Shared>) -> Response {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &shared.registry) {
        Ok(()) => ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding metrics failed\n",
        )
            .into_response(),
    }
}

/// The `namespace` parameter of a query string (namespace names are DNS labels: no decoding).
fn namespace_of(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "namespace")
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// `/maintenance.ics`: the controller's iCalendar feed of the manifests' windows.
async fn calendar_feed(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let now = shared.jobs.clock().now();
    let body = maintenance::feed_ics(&shared.calendar, namespace_of(query.as_deref()), now);
    (
        [(header::CONTENT_TYPE, "text/calendar; charset=utf-8")],
        body,
    )
        .into_response()
}

/// `/maintenance.json`: the same windows as JSON.
async fn json_feed(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let now = shared.jobs.clock().now();
    let body = maintenance::feed_json(&shared.calendar, namespace_of(query.as_deref()), now);
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
