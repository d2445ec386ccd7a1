//! Non-apply patch formats: JSON merge patch (RFC 7386), JSON patch (RFC 6902)
//! and strategic merge patch for built-in kinds (maps merge; lists merge by the
//! same keys server-side apply uses — `containers`/`env`/`volumes` by `name`,
//! `conditions` by `type` — with `$patch: delete` items; `metadata.finalizers` is
//! a union with `$deleteFromPrimitiveList/finalizers`; other lists are replaced;
//! other `$` directives are ignored). Custom resources reject strategic merge
//! patches with 415, as the real server does.

use serde_json::Value;

use super::errors::ApiError;
use super::managed::{Elem, FieldPath, ListKind, Lists};

/// The patch formats the server accepts, by content type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json`
    Merge,
    /// `application/json-patch+json`
    Json,
    /// `application/strategic-merge-patch+json`
    Strategic,
    /// `application/apply-patch+yaml`
    Apply,
}

impl PatchKind {
    /// Maps a `Content-Type` header to a patch kind.
    pub fn from_content_type(content_type: &str) -> Result<Self, ApiError> {
        let base = content_type.split(';').next().unwrap_or("").trim();
        match base {
            "application/merge-patch+json" => Ok(Self::Merge),
            "application/json-patch+json" => Ok(Self::Json),
            "application/strategic-merge-patch+json" => Ok(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(Self::Apply),
            other => Err(ApiError::unsupported_media_type(other)),
        }
    }
}

/// Parses a JSON body, or YAML (apply bodies may be YAML).
pub fn parse_body(body: &[u8], allow_yaml: bool) -> Result<Value, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => Ok(v),
        Err(json_err) if allow_yaml => serde_yaml::from_slice::<Value>(body).map_err(|yaml_err| {
            ApiError::bad_request(format!(
                "error decoding patch: not JSON ({json_err}) nor YAML ({yaml_err})"
            ))
        }),
        Err(e) => Err(ApiError::bad_request(format!(
            "error decoding request body: {e}"
        ))),
    }
}

fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|k, _| !k.starts_with('$'));
            for child in map.values_mut() {
                strip_directives(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

fn stripped(v: &Value) -> Value {
    let mut v = v.clone();
    strip_directives(&mut v);
    v
}

fn key_matches(item: &Value, wanted: &Value, keys: &[String]) -> bool {
    keys.iter().all(|k| item.get(k) == wanted.get(k))
}

/// Strategic merge of `patch` into `target`.
fn strategic_merge(target: &mut Value, patch: &Value, path: &mut FieldPath, lists: &Lists) {
    let (Some(target_map), Some(patch_map)) = (target.as_object_mut(), patch.as_object()) else {
        *target = stripped(patch);
        return;
    };
    for (k, v) in patch_map {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(existing), Some(gone)) = (
                target_map.get_mut(field).and_then(Value::as_array_mut),
                v.as_array(),
            ) {
                existing.retain(|x| !gone.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        path.push(Elem::Field(k.clone()));
        match v {
            Value::Null => {
                target_map.remove(k);
            }
            Value::Object(_) if target_map.get(k).is_some_and(Value::is_object) => {
                if let Some(slot) = target_map.get_mut(k) {
                    strategic_merge(slot, v, path, lists);
                }
            }
            Value::Array(items) => match lists.kind(path) {
                ListKind::Map(keys) => {
                    let slot = target_map
                        .entry(k.clone())
                        .or_insert_with(|| Value::Array(vec![]));
                    if !slot.is_array() {
                        *slot = Value::Array(vec![]);
                    }
                    if let Some(existing) = slot.as_array_mut() {
                        for item in items {
                            if item.get("$patch").and_then(Value::as_str) == Some("delete") {
                                existing.retain(|e| !key_matches(e, item, &keys));
                                continue;
                            }
                            match existing.iter_mut().find(|e| key_matches(e, item, &keys)) {
                                Some(e) if e.is_object() && item.is_object() => {
                                    path.push(Elem::Key(String::new()));
                                    strategic_merge(e, item, path, lists);
                                    path.pop();
                                }
                                Some(e) => *e = stripped(item),
                                None => existing.push(stripped(item)),
                            }
                        }
                    }
                }
                ListKind::Set => {
                    let slot = target_map
                        .entry(k.clone())
                        .or_insert_with(|| Value::Array(vec![]));
                    match slot.as_array_mut() {
                        Some(existing) => {
                            for item in items {
                                if !existing.contains(item) {
                                    existing.push(item.clone());
                                }
                            }
                        }
                        None => *slot = v.clone(),
                    }
                }
                ListKind::Atomic => {
                    target_map.insert(k.clone(), stripped(v));
                }
            },
            _ => {
                target_map.insert(k.clone(), stripped(v));
            }
        }
        path.pop();
    }
}

/// Applies a non-apply patch to a copy of `current`. `lists` gives the list
/// merge keys (strategic merge patch); `custom` marks custom resources.
pub fn apply_patch(
    current: &Value,
    kind: PatchKind,
    body: &[u8],
    lists: &Lists,
    custom: bool,
) -> Result<Value, ApiError> {
    let mut doc = current.clone();
    match kind {
        PatchKind::Merge => {
            let patch = parse_body(body, false)?;
            if !patch.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            json_patch::merge(&mut doc, &patch);
        }
        PatchKind::Strategic if custom => {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
            ));
        }
        PatchKind::Strategic => {
            let patch = parse_body(body, false)?;
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "a strategic merge patch must be a JSON object",
                ));
            }
            strategic_merge(&mut doc, &patch, &mut Vec::new(), lists);
        }
        PatchKind::Json => {
            let patch: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(&mut doc, &patch.0).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the JSON patch could not be applied: {e}"),
                )
            })?;
        }
        PatchKind::Apply => {
            return Err(ApiError::bad_request(
                "apply patches are handled separately",
            ));
        }
    }
    Ok(doc)
}
