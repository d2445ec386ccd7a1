//! The HTTP endpoints of the controller process: `/metrics`, `/healthz`, `/readyz`.
//!
//! - `/metrics`: Prometheus metrics in the OpenMetrics text format.
//! - `/healthz`: 200 while the process runs (liveness).
//! - `/readyz`: 200 once every kind's initial list is done, and also while this replica is a
//!   standby waiting for the leader Lease (it is healthy and ready to take over); 503 otherwise.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::context::Health;
use super::maintenance::MaintenanceIndex;
use super::metrics::Metrics;

/// Content type of the OpenMetrics text exposition format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Errors of the HTTP server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address is taken or not allowed.
    #[error("cannot listen on {addr} for /metrics, /healthz and /readyz: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

/// Binds `addr` and serves until `shutdown` fires. Returns the bound address (useful with
/// port 0) and the server task.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, JoinHandle<()>), Error> {
    serve_with_feeds(addr, metrics, health, None, shutdown).await
}

/// As [`serve`], plus `/maintenance.ics` and `/maintenance.json` (upcoming maintenance
/// windows, optional `?namespace=`) from `feeds`.
pub async fn serve_with_feeds(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    feeds: Option<Arc<MaintenanceIndex>>,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, JoinHandle<()>), Error> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| Error::Bind { addr, source })?;
    let app = match feeds {
        Some(index) => router(metrics, health).merge(super::maintenance::feed::router(index)),
        None => router(metrics, health),
    };
    info!(addr = %bound, "serving /metrics, /healthz and /readyz");
    let task = tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(error) = result {
            warn!(%error, "HTTP server stopped");
        }
    });
    Ok((bound, task))
}

fn router(metrics: Arc<Metrics>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(Shared { metrics, health })
}

async fn metrics_handler(State(shared): State<Shared>) -> Response {
    match shared.metrics.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding metrics failed\n",
        )
            .into_response(),
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(shared): State<Shared>) -> Response {
    if shared.health.is_ready() {
        let text = if shared.health.is_leader() {
            "ready: leader, all kinds synced\n"
        } else {
            "ready: standby, waiting for the leader Lease\n"
        };
        (StatusCode::OK, text).into_response()
    } else {
        let synced = shared.health.synced_kinds().join(", ");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: initial lists done for [{synced}]\n"),
        )
            .into_response()
    }
}
