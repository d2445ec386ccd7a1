//! HTTP handlers of the maintenance feeds: `/maintenance.ics` (RFC 5545, `text/calendar`)
//! and `/maintenance.json`, both with an optional `?namespace=` filter, listing the upcoming
//! windows of the valid, unsuspended MaintenanceWindows this controller knows.

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::ics;
use super::index::MaintenanceIndex;

/// Routes `/maintenance.ics` and `/maintenance.json`.
pub fn router(index: Arc<MaintenanceIndex>) -> Router {
    Router::new()
        .route("/maintenance.ics", get(calendar))
        .route("/maintenance.json", get(list))
        .with_state(index)
}

/// The `namespace` parameter of a query string (namespace names need no percent-decoding:
/// they are DNS labels).
fn namespace_of(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "namespace")
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

fn entries(index: &MaintenanceIndex, query: Option<&str>) -> Vec<ics::FeedEntry> {
    let namespace = namespace_of(query);
    ics::upcoming(&index.snapshot(namespace), chrono::Utc::now())
}

async fn calendar(
    State(index): State<Arc<MaintenanceIndex>>,
    RawQuery(query): RawQuery,
) -> Response {
    let body = ics::to_ics(&entries(&index, query.as_deref()), chrono::Utc::now());
    (
        [(header::CONTENT_TYPE, "text/calendar; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn list(State(index): State<Arc<MaintenanceIndex>>, RawQuery(query): RawQuery) -> Response {
    let body = ics::to_json(&entries(&index, query.as_deref()), chrono::Utc::now()).to_string();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_parameter() {
        assert_eq!(namespace_of(Some("namespace=ops")), Some("ops"));
        assert_eq!(namespace_of(Some("x=1&namespace=db")), Some("db"));
        assert_eq!(namespace_of(Some("namespace=")), None);
        assert_eq!(namespace_of(None), None);
    }
}
