//! Field ownership (`metadata.managedFields`) and server-side apply.
//!
//! Ownership is tracked per (manager, operation, subresource) as a set of leaf
//! paths: scalars, atomic lists and empty maps are leaves; maps are recursed into.
//! Lists follow [`Lists`]: `x-kubernetes-list-type: set` (and
//! `metadata.finalizers`) lists own each value; `x-kubernetes-list-type: map`
//! lists (and, for built-in kinds, `conditions` by `type`, `containers`, `env`,
//! `volumes`... by `name`, `metadata.ownerReferences` by `uid`) merge item by item
//! on their keys; all other lists are atomic (replaced whole), which is what the
//! real API server does for CRD lists without `x-kubernetes-list-type`. The sets
//! are written as real `fieldsV1` trees (`f:` keys, `v:` set values, `k:` map-list
//! keys, `.` for a node that is owned itself and has owned children).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

pub use super::fieldpath::{
    Elem, FieldPath, FieldSet, ListKind, Lists, remove_at, render, value_at,
};
use super::fieldpath::{is_key_field, item_key, matches_key};
pub use super::fields_v1::{Entry, read_entries, write_entries};

/// Which part of an object a write may touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Everything (kinds without a status subresource).
    All,
    /// Everything except `status` (main resource of kinds with a status subresource).
    NoStatus,
    /// Only `status` (the status subresource).
    StatusOnly,
}

/// Metadata fields the server owns; never part of any field set.
const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

fn root_key_in_scope(key: &str, scope: Scope) -> bool {
    match key {
        "apiVersion" | "kind" => false,
        "status" => scope != Scope::NoStatus,
        _ => scope != Scope::StatusOnly,
    }
}

/// Returns `obj` restricted to `scope` (top-level keys only).
pub fn scoped(obj: &Value, scope: Scope) -> Value {
    let mut out = Map::new();
    if let Some(map) = obj.as_object() {
        for (k, v) in map {
            if root_key_in_scope(k, scope) || k == "apiVersion" || k == "kind" {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// All owned leaf paths of `obj` within `scope`.
pub fn leaves(obj: &Value, scope: Scope, lists: &Lists) -> FieldSet {
    let mut out = FieldSet::new();
    if let Some(map) = obj.as_object() {
        for (k, v) in map {
            if !root_key_in_scope(k, scope) {
                continue;
            }
            let mut path = vec![Elem::Field(k.clone())];
            if k == "metadata" {
                if let Some(meta) = v.as_object() {
                    for (mk, mv) in meta {
                        if SERVER_METADATA.contains(&mk.as_str()) {
                            continue;
                        }
                        path.push(Elem::Field(mk.clone()));
                        collect(mv, &mut path, &mut out, lists);
                        path.pop();
                    }
                }
            } else {
                collect(v, &mut path, &mut out, lists);
            }
        }
    }
    out
}

fn collect(v: &Value, path: &mut FieldPath, out: &mut FieldSet, lists: &Lists) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, child) in map {
                path.push(Elem::Field(k.clone()));
                collect(child, path, out, lists);
                path.pop();
            }
        }
        Value::Array(items) => match lists.kind(path) {
            ListKind::Set => {
                for item in items {
                    let mut p = path.clone();
                    p.push(Elem::Item(item.to_string()));
                    out.insert(p);
                }
            }
            ListKind::Map(keys) => {
                for item in items {
                    path.push(Elem::Key(item_key(item, &keys)));
                    match item {
                        Value::Object(m) if !m.is_empty() => collect(item, path, out, lists),
                        _ => {
                            out.insert(path.clone());
                        }
                    }
                    path.pop();
                }
            }
            ListKind::Atomic => {
                out.insert(path.clone());
            }
        },
        _ => {
            out.insert(path.clone());
        }
    }
}

fn overlaps(a: &[Elem], b: &[Elem]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

fn is_map(obj: &Value, path: &[Elem]) -> bool {
    value_at(obj, path).is_some_and(Value::is_object)
}

/// Whether owning `a` (valued in `in_a`) and `b` (valued in `in_b`) touches the
/// same data: the same path, or one inside the other where the outer one is not
/// a map (a map merges with its children; a scalar or list replaces them).
fn contends(a: &[Elem], in_a: &Value, b: &[Elem], in_b: &Value) -> bool {
    if !overlaps(a, b) {
        return false;
    }
    match a.len().cmp(&b.len()) {
        std::cmp::Ordering::Equal => true,
        std::cmp::Ordering::Less => !is_map(in_a, a),
        std::cmp::Ordering::Greater => !is_map(in_b, b),
    }
}

/// Who writes, and through which endpoint.
#[derive(Clone, Debug)]
pub struct Writer<'a> {
    /// Field manager name.
    pub manager: &'a str,
    /// `""` or `"status"`.
    pub subresource: &'a str,
    /// apiVersion of the request path.
    pub api_version: &'a str,
    /// Write time (RFC 3339).
    pub now: &'a str,
    /// Part of the object this endpoint may change.
    pub scope: Scope,
    /// `fieldValidation=Strict`: unknown fields of custom resources are kept (for
    /// the validator to report) instead of pruned.
    pub strict: bool,
    /// List kinds of the resource.
    pub lists: Lists,
}

/// An apply conflict: the other manager and the rendered path.
pub type Conflict = (String, String);

/// Server-side apply of `config` onto `live` (None: the object does not exist).
/// Returns the merged object with updated managedFields, or the conflicts when
/// `force` is false and another manager owns a field with a different value.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    writer: &Writer<'_>,
    force: bool,
) -> Result<Value, Vec<Conflict>> {
    let empty = json!({});
    let live_value = live.unwrap_or(&empty);
    let mut entries = read_entries(live_value);
    let config = scoped(config, writer.scope);
    let new_set = leaves(&config, writer.scope, &writer.lists);
    let is_mine = |e: &Entry| e.same_owner(writer.manager, "Apply", writer.subresource);

    // Conflicts with every other manager.
    let mut conflicts = Vec::new();
    for entry in entries.iter_mut().filter(|e| !is_mine(e)) {
        let mut lost = Vec::new();
        for theirs in &entry.fields {
            for mine in &new_set {
                if !contends(theirs, live_value, mine, &config) {
                    continue;
                }
                let longer = if theirs.len() >= mine.len() {
                    theirs
                } else {
                    mine
                };
                if value_at(live_value, longer) != value_at(&config, longer) {
                    conflicts.push((entry.manager.clone(), render(longer)));
                    lost.push(theirs.clone());
                }
            }
        }
        if force {
            for path in lost {
                entry.fields.remove(&path);
            }
        }
    }
    if !force && !conflicts.is_empty() {
        conflicts.sort();
        conflicts.dedup();
        return Err(conflicts);
    }

    // Fields this manager applied before but not now are removed unless someone
    // else also owns them.
    let mut obj = live_value.clone();
    let old_set = entries
        .iter()
        .find(|e| is_mine(e))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let others: Vec<&FieldSet> = entries
        .iter()
        .filter(|e| !is_mine(e))
        .map(|e| &e.fields)
        .collect();
    let owned_elsewhere = |path: &[Elem]| {
        others.iter().any(|set| {
            set.iter()
                .any(|p| contends(p, live_value, path, live_value))
        }) || new_set
            .iter()
            .any(|p| contends(p, &config, path, live_value))
    };
    let gone: Vec<&FieldPath> = old_set
        .difference(&new_set)
        .filter(|g| !owned_elsewhere(g))
        .collect();
    // A map-list item nobody owns anything of any more is removed whole (first,
    // while its key fields still identify it).
    let mut whole_items: BTreeSet<FieldPath> = BTreeSet::new();
    for g in &gone {
        for (i, elem) in g.iter().enumerate() {
            if !matches!(elem, Elem::Key(_)) {
                continue;
            }
            let item = &g[..=i];
            let still_owned = others
                .iter()
                .chain(std::iter::once(&&new_set))
                .any(|set| set.iter().any(|p| p.starts_with(item)));
            if !still_owned {
                whole_items.insert(item.to_vec());
            }
        }
    }
    for item in &whole_items {
        remove_at(&mut obj, item);
    }
    for g in gone {
        if whole_items.iter().any(|item| g.starts_with(item)) || is_key_field(g) {
            continue;
        }
        remove_at(&mut obj, g);
        prune_empty_parents(&mut obj, g, &others, &new_set);
    }

    merge_config(&mut obj, &config, &mut Vec::new(), &writer.lists);

    match entries.iter_mut().find(|e| is_mine(e)) {
        Some(entry) => {
            entry.fields = new_set;
            entry.time = writer.now.to_string();
            entry.api_version = writer.api_version.to_string();
        }
        None => entries.push(Entry {
            manager: writer.manager.to_string(),
            operation: "Apply".into(),
            subresource: writer.subresource.to_string(),
            api_version: writer.api_version.to_string(),
            time: writer.now.to_string(),
            fields: new_set,
        }),
    }
    if obj.get("metadata").is_none() {
        obj["metadata"] = json!({});
    }
    write_entries(&mut obj, &entries);
    Ok(obj)
}

fn prune_empty_parents(
    obj: &mut Value,
    removed: &[Elem],
    others: &[&FieldSet],
    new_set: &FieldSet,
) {
    let mut len = removed.len();
    // Never prune top-level sections (spec, status, metadata).
    while len > 2 {
        len -= 1;
        let parent = &removed[..len];
        let empty = value_at(obj, parent).is_some_and(|v| v.as_object().is_some_and(Map::is_empty));
        let owned = others
            .iter()
            .chain(std::iter::once(&new_set))
            .any(|set| set.iter().any(|p| overlaps(p, parent)));
        if !empty || owned {
            break;
        }
        remove_at(obj, parent);
    }
}

fn merge_config(target: &mut Value, config: &Value, path: &mut FieldPath, lists: &Lists) {
    let (Some(target_map), Some(config_map)) = (target.as_object_mut(), config.as_object()) else {
        *target = config.clone();
        return;
    };
    for (k, v) in config_map {
        if path.is_empty() && k == "metadata" {
            // managedFields in an applied config are ignored.
            if let Some(meta) = v.as_object() {
                let slot = target_map.entry("metadata").or_insert_with(|| json!({}));
                let mut meta = meta.clone();
                meta.remove("managedFields");
                path.push(Elem::Field(k.clone()));
                merge_config(slot, &Value::Object(meta), path, lists);
                path.pop();
            }
            continue;
        }
        path.push(Elem::Field(k.clone()));
        match v {
            Value::Null => {
                target_map.remove(k);
            }
            Value::Object(_) if target_map.get(k).is_some_and(Value::is_object) => {
                if let Some(slot) = target_map.get_mut(k) {
                    merge_config(slot, v, path, lists);
                }
            }
            Value::Array(items) => match lists.kind(path) {
                ListKind::Set => {
                    let slot = target_map.entry(k.clone()).or_insert_with(|| json!([]));
                    if let Some(existing) = slot.as_array_mut() {
                        for item in items {
                            if !existing.contains(item) {
                                existing.push(item.clone());
                            }
                        }
                    } else {
                        *slot = v.clone();
                    }
                }
                ListKind::Map(keys) => {
                    let slot = target_map.entry(k.clone()).or_insert_with(|| json!([]));
                    if !slot.is_array() {
                        *slot = json!([]);
                    }
                    if let Some(existing) = slot.as_array_mut() {
                        for item in items {
                            let key = item_key(item, &keys);
                            path.push(Elem::Key(key.clone()));
                            match existing.iter_mut().find(|e| matches_key(e, &key)) {
                                Some(e) if e.is_object() && item.is_object() => {
                                    merge_config(e, item, path, lists);
                                }
                                Some(e) => *e = item.clone(),
                                None => existing.push(item.clone()),
                            }
                            path.pop();
                        }
                    }
                }
                ListKind::Atomic => {
                    target_map.insert(k.clone(), v.clone());
                }
            },
            _ => {
                target_map.insert(k.clone(), v.clone());
            }
        }
        path.pop();
    }
}

/// Records ownership for a non-apply write (create, update, patch): fields the
/// write changed move to the writer's `Update` entry; fields it removed are
/// dropped from every entry.
pub fn record_update(old: Option<&Value>, new: &mut Value, writer: &Writer<'_>) {
    let empty = json!({});
    let old_value = old.unwrap_or(&empty);
    let mut entries = read_entries(old_value);
    let new_leaves = leaves(new, writer.scope, &writer.lists);
    let changed: Vec<FieldPath> = new_leaves
        .iter()
        .filter(|p| value_at(old_value, p) != value_at(new, p))
        .cloned()
        .collect();
    let removed: Vec<FieldPath> = leaves(old_value, writer.scope, &writer.lists)
        .into_iter()
        .filter(|p| value_at(new, p).is_none())
        .collect();
    if changed.is_empty() && removed.is_empty() {
        write_entries(new, &entries);
        return;
    }
    let new_ref: &Value = new;
    for entry in entries.iter_mut() {
        entry.fields.retain(|p| {
            !removed.iter().any(|r| contends(p, old_value, r, old_value))
                && !changed.iter().any(|c| contends(p, old_value, c, new_ref))
        });
    }
    let mine = entries
        .iter()
        .position(|e| e.same_owner(writer.manager, "Update", writer.subresource));
    let index = match mine {
        Some(i) => i,
        None => {
            entries.push(Entry {
                manager: writer.manager.to_string(),
                operation: "Update".into(),
                subresource: writer.subresource.to_string(),
                api_version: writer.api_version.to_string(),
                time: writer.now.to_string(),
                fields: FieldSet::new(),
            });
            entries.len() - 1
        }
    };
    if let Some(entry) = entries.get_mut(index) {
        entry.fields.extend(changed);
        entry.time = writer.now.to_string();
        entry.api_version = writer.api_version.to_string();
    }
    entries.retain(|e| !e.fields.is_empty());
    write_entries(new, &entries);
}

/// managedFields with the timestamps removed, for no-op detection.
pub fn ownership_fingerprint(obj: &Value) -> Vec<(String, String, String, FieldSet)> {
    read_entries(obj)
        .into_iter()
        .map(|e| (e.manager, e.operation, e.subresource, e.fields))
        .collect()
}
