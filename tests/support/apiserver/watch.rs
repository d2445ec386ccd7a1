//! Watch streams: newline-delimited JSON `WatchEvent`s (ADDED, MODIFIED, DELETED,
//! BOOKMARK, ERROR), with selector-aware event translation (an object that stops
//! matching is DELETED for that watch, one that starts matching is ADDED),
//! resumption from the bounded history, 410 for a too-old resourceVersion,
//! `sendInitialEvents` with the `k8s.io/initial-events-end` bookmark, periodic
//! bookmarks and `timeoutSeconds`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use serde_json::{Value, json};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::time::Instant;

use super::errors::ApiError;
use super::selectors::Selector;
use super::store::{HistoryEvent, Store, WatchMsg, Watcher};

/// Presents a stored object in the apiVersion (and shape) a client asked for.
pub fn present(obj: &Value, api_version: &str, metadata_only: bool) -> Value {
    if metadata_only {
        return json!({
            "apiVersion": "meta.k8s.io/v1",
            "kind": "PartialObjectMetadata",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        });
    }
    let mut out = obj.clone();
    out["apiVersion"] = json!(api_version);
    out
}

fn line(etype: &str, object: Value) -> String {
    let mut s = json!({"type": etype, "object": object}).to_string();
    s.push('\n');
    s
}

/// The line a watcher sees for a change, if the change is visible to it.
pub fn render_event(w: &Watcher, event: &HistoryEvent) -> Option<String> {
    let ns_ok = |o: &Value| {
        w.namespace
            .as_deref()
            .is_none_or(|ns| o.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns))
    };
    if !ns_ok(&event.new) {
        return None;
    }
    let now_matches = w.selector.matches(&event.new);
    let etype = match event.etype {
        "MODIFIED" => {
            let before = event.old.as_ref().is_some_and(|o| w.selector.matches(o));
            match (before, now_matches) {
                (true, true) => "MODIFIED",
                (false, true) => "ADDED",
                (true, false) => "DELETED",
                (false, false) => return None,
            }
        }
        other if now_matches => other,
        _ => return None,
    };
    Some(line(
        etype,
        present(&event.new, &w.api_version, w.metadata_only),
    ))
}

/// Parameters of one watch request.
pub struct WatchRequest {
    /// Storage key.
    pub key: String,
    /// Kind, for bookmarks.
    pub kind: String,
    /// apiVersion to present.
    pub api_version: String,
    /// Namespace filter.
    pub namespace: Option<String>,
    /// Selectors.
    pub selector: Selector,
    /// `resourceVersion` parameter ("" or "0": start with the current state).
    pub resource_version: String,
    /// `sendInitialEvents=true`.
    pub send_initial_events: bool,
    /// `allowWatchBookmarks=true`.
    pub bookmarks: bool,
    /// `timeoutSeconds` (None: until the client goes away).
    pub timeout: Option<Duration>,
    /// PartialObjectMetadata presentation.
    pub metadata_only: bool,
}

fn bookmark(
    kind: &str,
    api_version: &str,
    rv: u64,
    initial_end: bool,
    metadata_only: bool,
) -> String {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let (api_version, kind) = if metadata_only {
        ("meta.k8s.io/v1", "PartialObjectMetadata")
    } else {
        (api_version, kind)
    };
    line(
        "BOOKMARK",
        json!({"kind": kind, "apiVersion": api_version, "metadata": metadata}),
    )
}

/// Registers a watch and returns the response body streaming its events.
/// An expired resourceVersion yields a stream with a single 410 ERROR event.
pub fn start(
    store: &Arc<Mutex<Store>>,
    req: WatchRequest,
    bookmark_every: Duration,
) -> Result<Body, ApiError> {
    let (tx, rx) = unbounded_channel();
    let id = {
        let mut guard = store
            .lock()
            .map_err(|_| ApiError::internal("store lock poisoned"))?;
        let st = &mut *guard;
        let watcher = Watcher {
            id: 0,
            key: req.key.clone(),
            namespace: req.namespace.clone(),
            selector: req.selector.clone(),
            api_version: req.api_version.clone(),
            metadata_only: req.metadata_only,
            tx: tx.clone(),
        };
        let from_now = req.resource_version.is_empty() || req.resource_version == "0";
        if from_now || req.send_initial_events {
            let current: Vec<Value> = st
                .list(&req.key, req.namespace.as_deref())
                .filter(|o| req.selector.matches(o))
                .cloned()
                .collect();
            for obj in current {
                let _ = tx.send(WatchMsg::Line(line(
                    "ADDED",
                    present(&obj, &req.api_version, req.metadata_only),
                )));
            }
            if req.send_initial_events {
                let _ = tx.send(WatchMsg::Line(bookmark(
                    &req.kind,
                    &req.api_version,
                    st.rv,
                    true,
                    req.metadata_only,
                )));
            }
        } else {
            let rv: u64 = req.resource_version.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid resourceVersion {:?}",
                    req.resource_version
                ))
            })?;
            if let Err(expired) = st.check_not_expired(rv) {
                let body = line("ERROR", expired.to_status());
                return Ok(Body::from(body));
            }
            for event in st.history_since(&req.key, rv) {
                if let Some(l) = render_event(&watcher, event) {
                    let _ = tx.send(WatchMsg::Line(l));
                }
            }
        }
        if req.bookmarks && !req.send_initial_events {
            let _ = tx.send(WatchMsg::Line(bookmark(
                &req.kind,
                &req.api_version,
                st.rv,
                false,
                req.metadata_only,
            )));
        }
        st.add_watcher(watcher)
    };
    drop(tx);
    let state = StreamState {
        rx,
        store: store.clone(),
        id,
        deadline: req.timeout.map(|t| Instant::now() + t),
        bookmark_every: req.bookmarks.then_some(bookmark_every),
        next_bookmark: Instant::now() + bookmark_every,
        kind: req.kind,
        api_version: req.api_version,
        metadata_only: req.metadata_only,
        done: false,
    };
    let stream = futures::stream::unfold(state, |mut state| async move {
        let chunk = state.next_chunk().await?;
        Some((Ok::<Bytes, std::io::Error>(Bytes::from(chunk)), state))
    });
    Ok(Body::from_stream(stream))
}

struct StreamState {
    rx: UnboundedReceiver<WatchMsg>,
    store: Arc<Mutex<Store>>,
    id: u64,
    deadline: Option<Instant>,
    bookmark_every: Option<Duration>,
    next_bookmark: Instant,
    kind: String,
    api_version: String,
    metadata_only: bool,
    done: bool,
}

impl StreamState {
    async fn next_chunk(&mut self) -> Option<String> {
        if self.done {
            return None;
        }
        let far = Instant::now() + Duration::from_secs(24 * 3600);
        let deadline = self.deadline.unwrap_or(far);
        let bookmark_at = if self.bookmark_every.is_some() {
            self.next_bookmark
        } else {
            far
        };
        tokio::select! {
            msg = self.rx.recv() => msg.map(|WatchMsg::Line(l)| l),
            _ = tokio::time::sleep_until(deadline) => None,
            _ = tokio::time::sleep_until(bookmark_at) => {
                self.next_bookmark = Instant::now() + self.bookmark_every.unwrap_or_default();
                // Under the lock every event up to the current resourceVersion is
                // already queued: send those first, then the bookmark.
                let mut out = String::new();
                let mut closed = false;
                let rv = {
                    let Ok(st) = self.store.lock() else { return None };
                    loop {
                        match self.rx.try_recv() {
                            Ok(WatchMsg::Line(l)) => out.push_str(&l),
                            Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                            Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                                closed = true;
                                break;
                            }
                        }
                    }
                    st.rv
                };
                if closed {
                    self.done = true;
                    return if out.is_empty() { None } else { Some(out) };
                }
                out.push_str(&bookmark(&self.kind, &self.api_version, rv, false, self.metadata_only));
                Some(out)
            }
        }
    }
}

impl Drop for StreamState {
    fn drop(&mut self) {
        if let Ok(mut st) = self.store.lock() {
            st.remove_watcher(self.id);
        }
    }
}
