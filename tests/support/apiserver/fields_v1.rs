//! `metadata.managedFields` entries and their `fieldsV1` trees (`f:` keys, `v:`
//! set values, `k:` map-list keys, `.` for a node owned itself and through
//! children).

use serde_json::{Map, Value, json};

use super::fieldpath::{Elem, FieldPath, FieldSet};

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
    pub(super) fn same_owner(&self, manager: &str, operation: &str, subresource: &str) -> bool {
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
