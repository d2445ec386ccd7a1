//! The verbs on one resource: get, list, watch, create, update, patch (merge,
//! JSON, strategic, apply), delete and deletecollection.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Inner;
use super::errors::ApiError;
use super::handlers::{Target, json_response, lock};
use super::managed::{self, Scope, Writer};
use super::patch::{self, PatchKind};
use super::resources::ResourceType;
use super::selectors::{FieldSelector, LabelSelector, Selector};
use super::store::{self, DeleteOpts};
use super::watch::{self, WatchRequest, present};

/// One request on a resource, with everything the verbs need.
pub(super) struct Ctx<'a> {
    pub(super) inner: &'a Arc<Inner>,
    pub(super) rt: &'a ResourceType,
    pub(super) key: &'a str,
    pub(super) target: &'a Target,
    pub(super) query: &'a HashMap<String, String>,
    pub(super) api_version: String,
    pub(super) field_manager: String,
    pub(super) metadata_only: bool,
    pub(super) dry_run: bool,
    pub(super) now: String,
}

impl Ctx<'_> {
    fn ns(&self) -> &str {
        self.target.namespace.as_deref().unwrap_or("")
    }

    fn name(&self) -> &str {
        self.target.name.as_deref().unwrap_or("")
    }

    fn subresource(&self) -> &str {
        self.target.subresource.as_deref().unwrap_or("")
    }

    fn scope(&self) -> Scope {
        if self.subresource() == "status" {
            Scope::StatusOnly
        } else if self.rt.status_subresource {
            Scope::NoStatus
        } else {
            Scope::All
        }
    }

    fn writer(&self) -> Writer<'_> {
        Writer {
            manager: &self.field_manager,
            subresource: self.subresource(),
            api_version: &self.api_version,
            now: &self.now,
            scope: self.scope(),
            strict: match self.query.get("fieldValidation").map(String::as_str) {
                Some("Strict") => true,
                Some(_) => false,
                None => self.inner.strict_by_default,
            },
            lists: store::lists_for(self.rt, &self.api_version),
        }
    }

    fn out(&self, code: StatusCode, obj: &Value) -> Response {
        json_response(code, &present(obj, &self.api_version, self.metadata_only))
    }

    fn not_found(&self) -> ApiError {
        ApiError::not_found(&self.rt.plural, &self.rt.group, self.name())
    }

    fn selector(&self) -> Result<Selector, ApiError> {
        Ok(Selector {
            labels: LabelSelector::parse(
                self.query
                    .get("labelSelector")
                    .map(String::as_str)
                    .unwrap_or(""),
            )?,
            fields: FieldSelector::parse(
                self.query
                    .get("fieldSelector")
                    .map(String::as_str)
                    .unwrap_or(""),
            )?,
        })
    }

    pub(super) fn get(&self) -> Result<Response, ApiError> {
        let st = lock(self.inner)?;
        let obj = st
            .get(self.key, self.ns(), self.name())
            .ok_or_else(|| self.not_found())?;
        Ok(self.out(StatusCode::OK, obj))
    }

    pub(super) fn list(&self) -> Result<Response, ApiError> {
        let selector = self.selector()?;
        let st = lock(self.inner)?;
        if self
            .query
            .get("resourceVersionMatch")
            .is_some_and(|m| m == "Exact")
            && let Some(rv) = self
                .query
                .get("resourceVersion")
                .and_then(|v| v.parse::<u64>().ok())
        {
            st.check_not_expired(rv)?;
        }
        let limit = self
            .query
            .get("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0);
        let after = self
            .query
            .get("continue")
            .filter(|c| !c.is_empty())
            .map(|c| {
                let (ns, name) = c.split_once('/').unwrap_or(("", c));
                (ns.to_string(), name.to_string())
            });
        let matching: Vec<&Value> = st
            .list(self.key, self.target.namespace.as_deref())
            .filter(|o| selector.matches(o))
            .filter(|o| {
                after.as_ref().is_none_or(|(ans, aname)| {
                    (store::namespace_of(o), store::name_of(o)) > (ans.as_str(), aname.as_str())
                })
            })
            .collect();
        let total = matching.len();
        let page: Vec<&Value> = match limit {
            Some(l) => matching.into_iter().take(l).collect(),
            None => matching,
        };
        let mut metadata = json!({"resourceVersion": st.rv.to_string()});
        if page.len() < total
            && let Some(last) = page.last()
        {
            metadata["continue"] = json!(format!(
                "{}/{}",
                store::namespace_of(last),
                store::name_of(last)
            ));
            metadata["remainingItemCount"] = json!(total - page.len());
        }
        let items: Vec<Value> = page
            .into_iter()
            .map(|o| present(o, &self.api_version, self.metadata_only))
            .collect();
        let (api_version, kind) = if self.metadata_only {
            (
                "meta.k8s.io/v1".to_string(),
                "PartialObjectMetadataList".to_string(),
            )
        } else {
            (self.api_version.clone(), format!("{}List", self.rt.kind))
        };
        Ok(json_response(
            StatusCode::OK,
            &json!({"apiVersion": api_version, "kind": kind, "metadata": metadata, "items": items}),
        ))
    }

    pub(super) fn watch(&self) -> Result<Response, ApiError> {
        let flag = |k: &str| self.query.get(k).is_some_and(|v| v == "true" || v == "1");
        let request = WatchRequest {
            key: self.key.to_string(),
            kind: self.rt.kind.clone(),
            api_version: self.api_version.clone(),
            namespace: self.target.namespace.clone(),
            selector: self.selector()?,
            resource_version: self
                .query
                .get("resourceVersion")
                .cloned()
                .unwrap_or_default(),
            send_initial_events: flag("sendInitialEvents"),
            bookmarks: flag("allowWatchBookmarks"),
            timeout: self
                .query
                .get("timeoutSeconds")
                .and_then(|t| t.parse::<u64>().ok())
                .map(Duration::from_secs),
            metadata_only: self.metadata_only,
        };
        let body: Body = watch::start(&self.inner.store, request, self.inner.bookmark_every)?;
        Ok((StatusCode::OK, [("content-type", "application/json")], body).into_response())
    }

    pub(super) fn create(&self, body: &Bytes) -> Result<Response, ApiError> {
        let obj = patch::parse_body(body, false)?;
        let mut st = lock(self.inner)?;
        let created = st.create(
            self.key,
            self.target.namespace.as_deref(),
            obj,
            &self.writer(),
            self.dry_run,
            true,
        )?;
        Ok(self.out(StatusCode::CREATED, &created))
    }

    fn check_rv(&self, old: &Value, new: &Value) -> Result<(), ApiError> {
        let wanted = new
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let current = old
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !wanted.is_empty() && wanted != current {
            return Err(ApiError::conflict(
                &self.rt.plural,
                &self.rt.group,
                self.name(),
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        Ok(())
    }

    pub(super) fn update(&self, body: &Bytes) -> Result<Response, ApiError> {
        let new = patch::parse_body(body, false)?;
        let given = new
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        if self.rt.crd.is_some() && given.is_empty() {
            // Custom resources allow no unconditional update.
            return Err(ApiError::invalid(
                &self.rt.kind,
                &self.rt.group,
                self.name(),
                &[
                    "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
                        .into(),
                ],
            ));
        }
        let mut st = lock(self.inner)?;
        let old = st
            .get(self.key, self.ns(), self.name())
            .cloned()
            .ok_or_else(|| self.not_found())?;
        self.check_rv(&old, &new)?;
        let stored = st.commit_update(self.key, &old, new, &self.writer(), self.dry_run, true)?;
        Ok(self.out(StatusCode::OK, &stored))
    }

    pub(super) fn patch(&self, body: &Bytes, content_type: &str) -> Result<Response, ApiError> {
        let kind = PatchKind::from_content_type(content_type)?;
        if kind == PatchKind::Apply {
            return self.apply(body);
        }
        let mut st = lock(self.inner)?;
        let old = st
            .get(self.key, self.ns(), self.name())
            .cloned()
            .ok_or_else(|| self.not_found())?;
        let lists = store::lists_for(self.rt, &self.api_version);
        let new = patch::apply_patch(&old, kind, body, &lists, self.rt.crd.is_some())?;
        self.check_rv(&old, &new)?;
        let stored = st.commit_update(self.key, &old, new, &self.writer(), self.dry_run, true)?;
        Ok(self.out(StatusCode::OK, &stored))
    }

    fn apply(&self, body: &Bytes) -> Result<Response, ApiError> {
        if !self.query.contains_key("fieldManager") {
            return Err(ApiError::new(
                422,
                "Invalid",
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
            ));
        }
        let mut config = patch::parse_body(body, true)?;
        if !config.is_object() {
            return Err(ApiError::bad_request(
                "an apply configuration must be an object",
            ));
        }
        for required in ["apiVersion", "kind"] {
            if config
                .get(required)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(ApiError::bad_request(format!(
                    "{required} must be set in an apply configuration"
                )));
            }
        }
        if !config.get("metadata").is_some_and(Value::is_object) {
            config["metadata"] = json!({});
        }
        let cfg_name = store::name_of(&config).to_string();
        if !cfg_name.is_empty() && cfg_name != self.name() {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({cfg_name}) does not match the name on the URL ({})",
                self.name()
            )));
        }
        config["metadata"]["name"] = json!(self.name());
        let cfg_ns = store::namespace_of(&config).to_string();
        if !cfg_ns.is_empty() && cfg_ns != self.ns() {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        if self.rt.namespaced {
            config["metadata"]["namespace"] = json!(self.ns());
        }
        let force = self.query.get("force").is_some_and(|f| f == "true");
        let mut st = lock(self.inner)?;
        let live = st.get(self.key, self.ns(), self.name()).cloned();
        if let Some(old) = &live {
            self.check_rv(old, &config)?;
        } else if self.subresource() == "status" {
            return Err(self.not_found());
        }
        if let Some(meta) = config.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
        }
        let writer = self.writer();
        let merged = managed::apply(live.as_ref(), &config, &writer, force)
            .map_err(|conflicts| self.apply_conflict(&conflicts))?;
        match live {
            None => {
                let created = st.create(
                    self.key,
                    self.target.namespace.as_deref(),
                    merged,
                    &writer,
                    self.dry_run,
                    false,
                )?;
                Ok(self.out(StatusCode::CREATED, &created))
            }
            Some(old) => {
                let stored =
                    st.commit_update(self.key, &old, merged, &writer, self.dry_run, false)?;
                Ok(self.out(StatusCode::OK, &stored))
            }
        }
    }

    fn apply_conflict(&self, conflicts: &[managed::Conflict]) -> ApiError {
        let lines: Vec<String> = conflicts
            .iter()
            .map(|(manager, path)| format!("conflict with \"{manager}\": {path}"))
            .collect();
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|(manager, path)| {
                json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{manager}\""), "field": path})
            })
            .collect();
        let plural = if conflicts.len() == 1 {
            "conflict"
        } else {
            "conflicts"
        };
        ApiError::new(
            409,
            "Conflict",
            format!("Apply failed with {} {plural}: {}", conflicts.len(), lines.join("\n")),
        )
        .with_details(json!({"name": self.name(), "group": self.rt.group, "kind": self.rt.plural, "causes": causes}))
    }

    fn delete_opts(&self, body: &Bytes) -> Result<DeleteOpts, ApiError> {
        let options = if body.is_empty() {
            json!({})
        } else {
            patch::parse_body(body, false)?
        };
        let mut propagation = options
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .map(String::from)
            .or_else(|| self.query.get("propagationPolicy").cloned());
        if propagation.is_none()
            && options.get("orphanDependents").and_then(Value::as_bool) == Some(true)
        {
            propagation = Some("Orphan".into());
        }
        let dry_run = self.dry_run
            || options
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|d| d.iter().any(|x| x.as_str() == Some("All")));
        let pre = |k: &str| {
            options
                .pointer(&format!("/preconditions/{k}"))
                .and_then(Value::as_str)
                .map(String::from)
        };
        Ok(DeleteOpts {
            propagation,
            uid: pre("uid"),
            resource_version: pre("resourceVersion"),
            dry_run,
        })
    }

    pub(super) fn delete(&self, body: &Bytes) -> Result<Response, ApiError> {
        let opts = self.delete_opts(body)?;
        let mut st = lock(self.inner)?;
        let (obj, gone) = st.delete(self.key, self.ns(), self.name(), &opts)?;
        let code = if gone {
            StatusCode::OK
        } else {
            StatusCode::ACCEPTED
        };
        Ok(self.out(code, &obj))
    }

    pub(super) fn delete_collection(&self, body: &Bytes) -> Result<Response, ApiError> {
        let opts = self.delete_opts(body)?;
        let selector = self.selector()?;
        let mut st = lock(self.inner)?;
        let targets: Vec<(String, String)> = st
            .list(self.key, self.target.namespace.as_deref())
            .filter(|o| selector.matches(o))
            .map(|o| {
                (
                    store::namespace_of(o).to_string(),
                    store::name_of(o).to_string(),
                )
            })
            .collect();
        let mut items = Vec::new();
        for (ns, name) in targets {
            let (obj, _) = st.delete(self.key, &ns, &name, &opts)?;
            items.push(present(&obj, &self.api_version, self.metadata_only));
        }
        Ok(json_response(
            StatusCode::OK,
            &json!({
                "apiVersion": self.api_version,
                "kind": format!("{}List", self.rt.kind),
                "metadata": {"resourceVersion": st.rv.to_string()},
                "items": items,
            }),
        ))
    }
}
