//! Field paths into objects (map keys, set values, map-list keys), list kinds
//! (atomic, set, map) from CRD schemas or the built-in table, and reading,
//! removing and rendering values at a path.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

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
pub(super) fn is_key_field(path: &[Elem]) -> bool {
    match path {
        [.., Elem::Key(text), Elem::Field(field)] => {
            matches!(serde_json::from_str::<Value>(text), Ok(Value::Object(key)) if key.contains_key(field))
        }
        _ => false,
    }
}

/// The key element of a map-list item: its key fields as a JSON object.
pub(super) fn item_key(item: &Value, keys: &[String]) -> String {
    let mut map = Map::new();
    for k in keys {
        map.insert(k.clone(), item.get(k).cloned().unwrap_or(Value::Null));
    }
    Value::Object(map).to_string()
}

/// Whether a map-list item has the key fields of a key element.
pub(super) fn matches_key(item: &Value, key_text: &str) -> bool {
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
