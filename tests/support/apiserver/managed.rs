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

/// One path element.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Elem {
    /// A map key.
    Field(String),
    /// A member of a set list, as its JSON text.
    Item(String),
    /// An item of a map list, as the JSON text of its key fields.
    Key(String),
}

/// How a list merges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListKind {
    /// Replaced whole.
    Atomic,
    /// Each value owned on its own.
    Set,
    /// Items merged by these key fields.
    Map(Vec<String>),
}

/// Where list kinds come from: the CRD's structural schema, or (no schema) the
/// built-in table.
#[derive(Clone, Debug, Default)]
pub struct Lists {
    /// openAPIV3Schema of the resource version, for custom resources.
    pub schema: Option<std::sync::Arc<Value>>,
}

impl Lists {
    /// The kind of the list at `path`.
    pub fn kind(&self, path: &[Elem]) -> ListKind {
        match path {
            [Elem::Field(a), Elem::Field(b)] if a == "metadata" && b == "finalizers" => {
                return ListKind::Set;
            }
            [Elem::Field(a), Elem::Field(b)] if a == "metadata" && b == "ownerReferences" => {
                return ListKind::Map(vec!["uid".into()]);
            }
            [Elem::Field(a), ..] if a == "metadata" => return ListKind::Atomic,
            _ => {}
        }
        match &self.schema {
            Some(schema) => schema_list_kind(schema, path),
            None => match path.last() {
                Some(Elem::Field(name)) => match name.as_str() {
                    "conditions" => ListKind::Map(vec!["type".into()]),
                    "containers"
                    | "initContainers"
                    | "ephemeralContainers"
                    | "env"
                    | "volumes"
                    | "imagePullSecrets" => ListKind::Map(vec!["name".into()]),
                    _ => ListKind::Atomic,
                },
                _ => ListKind::Atomic,
            },
        }
    }
}

fn schema_list_kind(schema: &Value, path: &[Elem]) -> ListKind {
    let mut node = schema;
    for elem in path {
        let next = match elem {
            Elem::Field(k) => node
                .get("properties")
                .and_then(|p| p.get(k))
                .or_else(|| node.get("additionalProperties").filter(|a| a.is_object())),
            Elem::Item(_) | Elem::Key(_) => node.get("items"),
        };
        match next {
            Some(n) => node = n,
            None => return ListKind::Atomic,
        }
    }
    match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => ListKind::Set,
        Some("map") => {
            let keys: Vec<String> = node
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|k| {
                    k.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            if keys.is_empty() {
                ListKind::Atomic
            } else {
                ListKind::Map(keys)
            }
        }
        _ => ListKind::Atomic,
    }
}

/// Whether a path is a key field of a map-list item (kept while the item is).
fn is_key_field(path: &[Elem]) -> bool {
    match path {
        [.., Elem::Key(text), Elem::Field(field)] => {
            matches!(serde_json::from_str::<Value>(text), Ok(Value::Object(key)) if key.contains_key(field))
        }
        _ => false,
    }
}

/// The key element of a map-list item: its key fields as a JSON object.
fn item_key(item: &Value, keys: &[String]) -> String {
    let mut map = Map::new();
    for k in keys {
        map.insert(k.clone(), item.get(k).cloned().unwrap_or(Value::Null));
    }
    Value::Object(map).to_string()
}

/// Whether a map-list item has the key fields of a key element.
fn matches_key(item: &Value, key_text: &str) -> bool {
    let Ok(Value::Object(key)) = serde_json::from_str::<Value>(key_text) else {
        return false;
    };
    key.iter()
        .all(|(k, v)| item.get(k).unwrap_or(&Value::Null) == v)
}

/// A path from the object root.
pub type FieldPath = Vec<Elem>;
/// A set of owned leaf paths.
pub type FieldSet = BTreeSet<FieldPath>;

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

fn same_item(item: &Value, text: &str) -> bool {
    let rendered = item.to_string();
    rendered == text
}

/// The value at `path`, if present.
pub fn value_at<'a>(obj: &'a Value, path: &[Elem]) -> Option<&'a Value> {
    let mut current = obj;
    for elem in path {
        current = match elem {
            Elem::Field(k) => current.get(k)?,
            Elem::Item(text) => current
                .as_array()?
                .iter()
                .find(|item| same_item(item, text))?,
            Elem::Key(text) => current
                .as_array()?
                .iter()
                .find(|item| matches_key(item, text))?,
        };
    }
    Some(current)
}

/// Removes the value at `path` (no-op if absent).
pub fn remove_at(obj: &mut Value, path: &[Elem]) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let mut current = obj;
    for elem in parent_path {
        let next = match elem {
            Elem::Field(k) => current.get_mut(k),
            Elem::Item(text) => current
                .as_array_mut()
                .and_then(|items| items.iter_mut().find(|item| same_item(item, text))),
            Elem::Key(text) => current
                .as_array_mut()
                .and_then(|items| items.iter_mut().find(|item| matches_key(item, text))),
        };
        match next {
            Some(n) => current = n,
            None => return,
        }
    }
    match last {
        Elem::Field(k) => {
            if let Some(map) = current.as_object_mut() {
                map.remove(k);
            }
        }
        Elem::Item(text) => {
            if let Some(items) = current.as_array_mut() {
                items.retain(|item| !same_item(item, text));
            }
        }
        Elem::Key(text) => {
            if let Some(items) = current.as_array_mut() {
                items.retain(|item| !matches_key(item, text));
            }
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

/// Renders a path the way conflict messages show it: `.spec.replicas`,
/// `.metadata.finalizers[="x"]`, `.status.conditions[type="Ready"].status`.
pub fn render(path: &[Elem]) -> String {
    let mut s = String::new();
    for elem in path {
        match elem {
            Elem::Field(k) => {
                s.push('.');
                s.push_str(k);
            }
            Elem::Item(text) => {
                s.push_str("[=");
                s.push_str(text);
                s.push(']');
            }
            Elem::Key(text) => {
                let pairs: Vec<String> = match serde_json::from_str::<Value>(text) {
                    Ok(Value::Object(key)) => key.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                    _ => vec![text.clone()],
                };
                s.push('[');
                s.push_str(&pairs.join(","));
                s.push(']');
            }
        }
    }
    s
}

/// One managedFields entry.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Field manager name.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// `""` or `"status"`.
    pub subresource: String,
    /// apiVersion the manager used.
    pub api_version: String,
    /// Last write time.
    pub time: String,
    /// Owned leaves.
    pub fields: FieldSet,
}

impl Entry {
    fn same_owner(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }
}

/// Reads `metadata.managedFields` of a stored object.
pub fn read_entries(obj: &Value) -> Vec<Entry> {
    let Some(list) = obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    list.iter()
        .map(|e| {
            let text = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let mut fields = FieldSet::new();
            if let Some(tree) = e.get("fieldsV1") {
                decode(tree, &mut Vec::new(), &mut fields);
            }
            Entry {
                manager: text("manager"),
                operation: text("operation"),
                subresource: text("subresource"),
                api_version: text("apiVersion"),
                time: text("time"),
                fields,
            }
        })
        .collect()
}

fn decode(tree: &Value, path: &mut FieldPath, out: &mut FieldSet) {
    let Some(map) = tree.as_object() else { return };
    if (map.is_empty() || map.contains_key(".")) && !path.is_empty() {
        out.insert(path.clone());
    }
    for (k, child) in map {
        let elem = if let Some(name) = k.strip_prefix("f:") {
            Elem::Field(name.to_string())
        } else if let Some(item) = k.strip_prefix("v:") {
            Elem::Item(item.to_string())
        } else if let Some(key) = k.strip_prefix("k:") {
            Elem::Key(key.to_string())
        } else {
            continue;
        };
        path.push(elem);
        decode(child, path, out);
        path.pop();
    }
}

fn elem_key(elem: &Elem) -> String {
    match elem {
        Elem::Field(k) => format!("f:{k}"),
        Elem::Item(text) => format!("v:{text}"),
        Elem::Key(text) => format!("k:{text}"),
    }
}

fn encode_level(paths: &[&[Elem]]) -> Value {
    let mut groups: std::collections::BTreeMap<String, Vec<&[Elem]>> = Default::default();
    let mut owns_self = false;
    for path in paths {
        match path.split_first() {
            None => owns_self = true,
            Some((first, rest)) => groups.entry(elem_key(first)).or_default().push(rest),
        }
    }
    let mut map = Map::new();
    if owns_self && !groups.is_empty() {
        // A node that is owned itself and also has owned children gets ".".
        map.insert(".".into(), json!({}));
    }
    for (key, rest) in groups {
        map.insert(key, encode_level(&rest));
    }
    Value::Object(map)
}

fn encode(fields: &FieldSet) -> Value {
    let paths: Vec<&[Elem]> = fields.iter().map(Vec::as_slice).collect();
    encode_level(&paths)
}

/// Writes entries into `metadata.managedFields` (removing it when empty).
pub fn write_entries(obj: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": encode(&e.fields),
            });
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
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
