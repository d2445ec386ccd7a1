//! A local server speaking the part of Cloudflare's API v4 a DNS switch uses:
//! `GET /client/v4/zones/{zone_id}/dns_records?type=…&name=…` and
//! `PATCH /client/v4/zones/{zone_id}/dns_records/{id}`, bearer-token authentication, the
//! `{success, errors, messages, result}` envelope. Anything else is answered with the
//! envelope's error form and counted as malformed, so tests can assert the client stuck to the
//! real format. Mutations are counted.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One DNS record held by the server.
#[derive(Clone, Debug, PartialEq)]
pub struct DnsRecord {
    pub id: String,
    pub zone_id: String,
    pub name: String,
    pub kind: String,
    pub content: String,
    pub ttl: u32,
    pub proxied: bool,
}

/// A request as received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

#[derive(Default)]
struct Inner {
    records: Vec<DnsRecord>,
    seen: Vec<Seen>,
    patches: usize,
    malformed: Vec<String>,
    fail_next_patches: usize,
}

#[derive(Clone)]
struct Shared {
    token: String,
    inner: Arc<Mutex<Inner>>,
}

/// The running server.
pub struct Cloudflare {
    /// `http://127.0.0.1:port/client/v4`, the value for `apiUrl`.
    pub api_url: String,
    shared: Shared,
    task: JoinHandle<()>,
}

impl Drop for Cloudflare {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn envelope(
    status: StatusCode,
    success: bool,
    errors: Value,
    result: Value,
) -> (StatusCode, HeaderMap, String) {
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        "application/json".parse().expect("static header"),
    );
    let body = json!({"success": success, "errors": errors, "messages": [], "result": result});
    (status, headers, body.to_string())
}

fn error(status: StatusCode, code: u32, message: &str) -> (StatusCode, HeaderMap, String) {
    envelope(
        status,
        false,
        json!([{"code": code, "message": message}]),
        Value::Null,
    )
}

fn record_json(r: &DnsRecord) -> Value {
    json!({
        "id": r.id, "zone_id": r.zone_id, "zone_name": "example.com", "name": r.name,
        "type": r.kind, "content": r.content, "proxiable": true, "proxied": r.proxied,
        "ttl": r.ttl, "locked": false, "meta": {}, "comment": null, "tags": [],
        "created_on": "2026-01-01T00:00:00.000000Z", "modified_on": "2026-01-01T00:00:00.000000Z"
    })
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap, String) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let seen = Seen {
        method: method.clone(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        authorization: header("authorization"),
        content_type: header("content-type"),
        body: body.to_vec(),
    };
    let Ok(mut inner) = shared.inner.lock() else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, 10000, "poisoned");
    };
    inner.seen.push(seen.clone());
    if seen.authorization.as_deref() != Some(format!("Bearer {}", shared.token).as_str()) {
        return error(StatusCode::FORBIDDEN, 10000, "Authentication error");
    }
    let segments: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (Method::GET, ["client", "v4", "zones", zone, "dns_records"]) => {
            let pairs: Vec<(String, String)> =
                form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                    .into_owned()
                    .collect();
            let get = |k: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| v.clone())
            };
            let (Some(kind), Some(name)) = (get("type"), get("name")) else {
                inner
                    .malformed
                    .push(format!("lookup without type and name: {:?}", uri.query()));
                return error(
                    StatusCode::BAD_REQUEST,
                    9000,
                    "lookup by type and name expected",
                );
            };
            let found: Vec<Value> = inner
                .records
                .iter()
                .filter(|r| r.zone_id == *zone && r.kind == kind && r.name == name)
                .map(record_json)
                .collect();
            if !inner.records.iter().any(|r| r.zone_id == *zone) {
                return error(
                    StatusCode::NOT_FOUND,
                    7003,
                    "Could not route to /zones, perhaps your object identifier is invalid?",
                );
            }
            let count = found.len();
            let mut response = envelope(StatusCode::OK, true, json!([]), Value::Array(found));
            // Cloudflare adds paging information to list answers.
            if let Ok(mut value) = serde_json::from_str::<Value>(&response.2) {
                value["result_info"] =
                    json!({"page": 1, "per_page": 100, "count": count, "total_count": count});
                response.2 = value.to_string();
            }
            response
        }
        (Method::PATCH, ["client", "v4", "zones", zone, "dns_records", id]) => {
            if seen.content_type.as_deref() != Some("application/json") {
                inner
                    .malformed
                    .push(format!("PATCH content-type {:?}", seen.content_type));
                return error(StatusCode::BAD_REQUEST, 9000, "JSON body expected");
            }
            let Ok(patch) = serde_json::from_slice::<Value>(&seen.body) else {
                inner.malformed.push("PATCH body is not JSON".to_string());
                return error(StatusCode::BAD_REQUEST, 9207, "Request body is invalid.");
            };
            if inner.fail_next_patches > 0 {
                inner.fail_next_patches -= 1;
                return error(StatusCode::INTERNAL_SERVER_ERROR, 10000, "internal error");
            }
            let (zone, id) = (zone.to_string(), id.to_string());
            let Some(record) = inner
                .records
                .iter_mut()
                .find(|r| r.zone_id == zone && r.id == id)
            else {
                return error(StatusCode::NOT_FOUND, 81044, "Record does not exist.");
            };
            if let Some(content) = patch.get("content").and_then(Value::as_str) {
                record.content = content.to_string();
            }
            if let Some(ttl) = patch.get("ttl").and_then(Value::as_u64) {
                record.ttl = u32::try_from(ttl).unwrap_or(u32::MAX);
            }
            if let Some(proxied) = patch.get("proxied").and_then(Value::as_bool) {
                record.proxied = proxied;
            }
            let body = record_json(record);
            inner.patches += 1;
            envelope(StatusCode::OK, true, json!([]), body)
        }
        (method, _) => {
            inner.malformed.push(format!("{method} {}", uri.path()));
            error(StatusCode::NOT_FOUND, 7000, "No route for that URI")
        }
    }
}

impl Cloudflare {
    /// Starts a server accepting `token`, holding `records`.
    pub async fn start(token: &str, records: Vec<DnsRecord>) -> Self {
        let shared = Shared {
            token: token.to_string(),
            inner: Arc::new(Mutex::new(Inner {
                records,
                ..Inner::default()
            })),
        };
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let api_url = format!(
            "http://{}/client/v4",
            listener.local_addr().expect("address")
        );
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            api_url,
            shared,
            task,
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().expect("cloudflare state")
    }

    /// Successful record updates so far.
    pub fn patches(&self) -> usize {
        self.inner().patches
    }

    /// Every request received.
    pub fn seen(&self) -> Vec<Seen> {
        self.inner().seen.clone()
    }

    /// Requests that did not follow the API's format.
    pub fn malformed(&self) -> Vec<String> {
        self.inner().malformed.clone()
    }

    /// A record by id.
    pub fn record(&self, id: &str) -> Option<DnsRecord> {
        self.inner().records.iter().find(|r| r.id == id).cloned()
    }

    /// Answers the next `n` PATCHes with a 500.
    pub fn fail_next_patches(&self, n: usize) {
        self.inner().fail_next_patches = n;
    }
}
