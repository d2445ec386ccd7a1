//! HTTP routing: maps Kubernetes REST paths and verbs onto the store.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, request::Parts};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::errors::ApiError;
use super::resources;
use super::store::{self, Store};
use super::{Inner, RequestRecord};

/// Largest request body accepted.
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// The single axum handler for every path.
pub async fn handle(State(inner): State<Arc<Inner>>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(e) => return ApiError::bad_request(format!("unreadable body: {e}")).into_response(),
    };
    let response = match route(&inner, &parts, &bytes) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    let wanted = inner
        .store
        .lock()
        .map(|mut st| std::mem::take(&mut st.gc_wanted))
        .unwrap_or(false);
    if wanted {
        inner.gc_notify.notify_one();
    }
    response
}

pub(super) fn json_response(code: StatusCode, value: &Value) -> Response {
    (
        code,
        [("content-type", "application/json")],
        value.to_string(),
    )
        .into_response()
}

pub(super) fn lock(inner: &Inner) -> Result<std::sync::MutexGuard<'_, Store>, ApiError> {
    inner
        .store
        .lock()
        .map_err(|_| ApiError::internal("store lock poisoned"))
}

/// A parsed resource path.
pub(super) struct Target {
    pub(super) group: String,
    pub(super) version: String,
    pub(super) namespace: Option<String>,
    pub(super) plural: String,
    pub(super) name: Option<String>,
    pub(super) subresource: Option<String>,
}

fn parse_resource_path(group: &str, version: &str, rest: &[&str]) -> Option<Target> {
    let namespaced = rest.len() >= 3
        && rest[0] == "namespaces"
        && !(rest.len() == 3 && matches!(rest[2], "status" | "finalize"));
    let (namespace, rest) = if namespaced {
        (Some(rest[1].to_string()), &rest[2..])
    } else {
        (None, rest)
    };
    if rest.is_empty() || rest.len() > 3 {
        return None;
    }
    Some(Target {
        group: group.to_string(),
        version: version.to_string(),
        namespace,
        plural: rest[0].to_string(),
        name: rest.get(1).map(|s| s.to_string()),
        subresource: rest.get(2).map(|s| s.to_string()),
    })
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn route(inner: &Arc<Inner>, parts: &Parts, body: &Bytes) -> Result<Response, ApiError> {
    let path = parts.uri.path().to_string();
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let accept = header(&parts.headers, "accept");
    let aggregated = accept.contains("as=APIGroupDiscoveryList");
    let target = match segments.as_slice() {
        ["version"] => return Ok(json_response(StatusCode::OK, &super::discovery::version())),
        ["healthz" | "readyz" | "livez"] => return Ok((StatusCode::OK, "ok").into_response()),
        ["api"] => {
            let st = lock(inner)?;
            let doc = if aggregated {
                super::discovery::aggregated(st.resources.values(), true)
            } else {
                super::discovery::core_versions(&inner.address)
            };
            return Ok(discovery_response(doc, aggregated));
        }
        ["apis"] => {
            let st = lock(inner)?;
            let doc = if aggregated {
                super::discovery::aggregated(st.resources.values(), false)
            } else {
                super::discovery::group_list(st.resources.values())
            };
            return Ok(discovery_response(doc, aggregated));
        }
        ["api", "v1"] => {
            let st = lock(inner)?;
            let doc = super::discovery::resource_list(st.resources.values(), "", "v1")
                .ok_or_else(|| ApiError::no_route(&path))?;
            return Ok(json_response(StatusCode::OK, &doc));
        }
        ["apis", group] => {
            let st = lock(inner)?;
            let doc = super::discovery::group(st.resources.values(), group)
                .ok_or_else(|| ApiError::no_route(&path))?;
            return Ok(json_response(StatusCode::OK, &doc));
        }
        ["apis", group, version] => {
            let st = lock(inner)?;
            let doc = super::discovery::resource_list(st.resources.values(), group, version)
                .ok_or_else(|| ApiError::no_route(&path))?;
            return Ok(json_response(StatusCode::OK, &doc));
        }
        ["api", "v1", rest @ ..] => parse_resource_path("", "v1", rest),
        ["apis", group, version, rest @ ..] => parse_resource_path(group, version, rest),
        _ => None,
    }
    .ok_or_else(|| ApiError::no_route(&path))?;

    let query: HashMap<String, String> =
        form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let is_watch = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    let verb = match (&parts.method, &target.name, is_watch) {
        (&Method::GET, None, true) => "watch",
        (&Method::GET, None, false) => "list",
        (&Method::GET, Some(_), _) => "get",
        (&Method::POST, None, _) => "create",
        (&Method::PUT, Some(_), _) => "update",
        (&Method::PATCH, Some(_), _) => "patch",
        (&Method::DELETE, Some(_), _) => "delete",
        (&Method::DELETE, None, _) => "deletecollection",
        _ => "unsupported",
    };
    let user_agent = header(&parts.headers, "user-agent").to_string();
    let field_manager = query.get("fieldManager").cloned().unwrap_or_else(|| {
        let derived = user_agent
            .split('/')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        if derived.is_empty() {
            "unknown".into()
        } else {
            derived
        }
    });
    inner.record(RequestRecord {
        verb: verb.to_string(),
        group: target.group.clone(),
        resource: target.plural.clone(),
        subresource: target.subresource.clone().unwrap_or_default(),
        namespace: target.namespace.clone(),
        name: target.name.clone(),
        field_manager: field_manager.clone(),
        user_agent,
        content_type: header(&parts.headers, "content-type").to_string(),
        client: parts
            .headers
            .get(super::CLIENT_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(String::from),
        body: serde_json::from_slice(body).ok(),
    });
    if let Some(err) = inner.take_fault(
        verb,
        &target.plural,
        target.subresource.as_deref().unwrap_or(""),
    ) {
        return Err(err);
    }

    let key = resources::key(&target.group, &target.plural);
    let rt = {
        let st = lock(inner)?;
        st.resource(&key).cloned()
    }
    .map_err(|_| ApiError::no_route(&path))?;
    if !rt.versions.contains(&target.version) {
        return Err(ApiError::no_route(&path));
    }
    if target.namespace.is_some() && !rt.namespaced {
        return Err(ApiError::no_route(&path));
    }
    if rt.namespaced
        && target.namespace.is_none()
        && !matches!(verb, "list" | "watch" | "deletecollection")
    {
        return Err(ApiError::no_route(&path));
    }
    match target.subresource.as_deref() {
        None => {}
        Some("status") if rt.status_subresource => {}
        Some(_) => return Err(ApiError::no_route(&path)),
    }
    let ctx = super::verbs::Ctx {
        inner,
        rt: &rt,
        key: &key,
        target: &target,
        query: &query,
        api_version: rt.api_version(&target.version),
        field_manager,
        metadata_only: accept.contains("as=PartialObjectMetadata"),
        dry_run: query.get("dryRun").is_some_and(|v| v == "All"),
        now: store::now(),
    };
    match verb {
        "get" => ctx.get(),
        "list" => ctx.list(),
        "watch" => ctx.watch(),
        "create" => ctx.create(body),
        "update" => ctx.update(body),
        "patch" => ctx.patch(body, header(&parts.headers, "content-type")),
        "delete" => ctx.delete(body),
        "deletecollection" => ctx.delete_collection(body),
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({} {path})",
            parts.method
        ))),
    }
}

fn discovery_response(doc: Value, aggregated: bool) -> Response {
    let content_type = if aggregated {
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    } else {
        "application/json"
    };
    (
        StatusCode::OK,
        [("content-type", content_type)],
        doc.to_string(),
    )
        .into_response()
}
