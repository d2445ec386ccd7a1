//! The structural-schema rules the real API server enforces on
//! CustomResourceDefinitions (apiextensions.k8s.io/v1):
//! 1. every schema node has a non-empty `type` (unless it sets
//!    `x-kubernetes-int-or-string` or `x-kubernetes-preserve-unknown-fields`);
//! 2. a field or items named inside `allOf`/`anyOf`/`oneOf`/`not` is also
//!    specified outside of them;
//! 3. `description`, `type`, `default`, `additionalProperties`, `nullable` are not
//!    set inside those junctors;
//! 4. `properties` and `additionalProperties` are not both set;
//! 5. under the root `metadata` only `name` and `generateName` may be restricted,
//!    and only with `type: string` plus value validations.
//!
//! Messages follow the server's paths, e.g.
//! `spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[size].type: Required value: must not be empty for specified object fields`.

use serde_json::Value;

const JUNCTORS: &[&str] = &["allOf", "anyOf", "oneOf", "not"];
const FORBIDDEN_IN_JUNCTORS: &[&str] = &[
    "description",
    "type",
    "default",
    "additionalProperties",
    "nullable",
];

/// Every structural-schema violation of a CRD (as JSON), one message each.
pub fn violations(crd: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, version) in versions.iter().enumerate() {
        let Some(schema) = version.pointer("/schema/openAPIV3Schema") else {
            out.push(format!(
                "spec.versions[{i}].schema.openAPIV3Schema: Required value: schemas are required"
            ));
            continue;
        };
        let path = format!("spec.versions[{i}].schema.openAPIV3Schema");
        check_node(schema, &path, &mut out);
        if let Some(metadata) = schema.pointer("/properties/metadata") {
            check_metadata(metadata, &format!("{path}.properties[metadata]"), &mut out);
        }
    }
    out
}

fn flag(node: &Value, name: &str) -> bool {
    node.get(name).and_then(Value::as_bool) == Some(true)
}

fn check_node(node: &Value, path: &str, out: &mut Vec<String>) {
    let Some(map) = node.as_object() else { return };
    let typ = map.get("type").and_then(Value::as_str).unwrap_or("");
    let exempt = flag(node, "x-kubernetes-int-or-string")
        || flag(node, "x-kubernetes-preserve-unknown-fields");
    if typ.is_empty() && !exempt {
        out.push(format!(
            "{path}.type: Required value: must not be empty for specified object fields"
        ));
    }
    if map.contains_key("properties") && map.contains_key("additionalProperties") {
        out.push(format!(
            "{path}.additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"
        ));
    }
    if let Some(properties) = map.get("properties").and_then(Value::as_object) {
        for (name, child) in properties {
            check_node(child, &format!("{path}.properties[{name}]"), out);
        }
    }
    if let Some(additional) = map.get("additionalProperties").filter(|a| a.is_object()) {
        check_node(additional, &format!("{path}.additionalProperties"), out);
    }
    if let Some(items) = map.get("items") {
        check_node(items, &format!("{path}.items"), out);
    }
    for junctor in JUNCTORS {
        let Some(branches) = map.get(*junctor) else {
            continue;
        };
        let branches: Vec<&Value> = match branches {
            Value::Array(list) => list.iter().collect(),
            other => vec![other],
        };
        for (i, branch) in branches.iter().enumerate() {
            let branch_path = if *junctor == "not" {
                format!("{path}.not")
            } else {
                format!("{path}.{junctor}[{i}]")
            };
            check_junctor_branch(node, branch, &branch_path, out);
        }
    }
}

/// A junctor branch may only carry value validations of fields the outer
/// node specifies.
fn check_junctor_branch(outer: &Value, branch: &Value, path: &str, out: &mut Vec<String>) {
    let Some(map) = branch.as_object() else {
        return;
    };
    for key in FORBIDDEN_IN_JUNCTORS {
        if map.contains_key(*key) && !is_int_or_string_pattern(outer, branch) {
            out.push(format!(
                "{path}.{key}: Forbidden: must be empty to be structural"
            ));
        }
    }
    if let Some(properties) = map.get("properties").and_then(Value::as_object) {
        for (name, child) in properties {
            let outer_child = outer.get("properties").and_then(|p| p.get(name));
            match outer_child {
                Some(outer_child) => {
                    check_junctor_branch(outer_child, child, &format!("{path}.properties[{name}]"), out)
                }
                None => out.push(format!(
                    "{path}.properties[{name}]: Required value: must be specified outside of the junctor too"
                )),
            }
        }
    }
    if let Some(items) = map.get("items") {
        match outer.get("items") {
            Some(outer_items) => {
                check_junctor_branch(outer_items, items, &format!("{path}.items"), out)
            }
            None => out.push(format!(
                "{path}.items: Required value: must be specified outside of the junctor too"
            )),
        }
    }
    for junctor in JUNCTORS {
        if let Some(nested) = map.get(*junctor) {
            let list: Vec<&Value> = match nested {
                Value::Array(l) => l.iter().collect(),
                other => vec![other],
            };
            for (i, b) in list.iter().enumerate() {
                check_junctor_branch(outer, b, &format!("{path}.{junctor}[{i}]"), out);
            }
        }
    }
}

/// `x-kubernetes-int-or-string` nodes may use `anyOf: [{type: integer}, {type: string}]`.
fn is_int_or_string_pattern(outer: &Value, branch: &Value) -> bool {
    flag(outer, "x-kubernetes-int-or-string")
        && branch.as_object().is_some_and(|m| {
            m.len() == 1
                && matches!(
                    m.get("type").and_then(Value::as_str),
                    Some("integer" | "string")
                )
        })
}

fn check_metadata(metadata: &Value, path: &str, out: &mut Vec<String>) {
    let Some(map) = metadata.as_object() else {
        return;
    };
    for key in map.keys() {
        if !matches!(key.as_str(), "type" | "properties" | "description") {
            out.push(format!("{path}.{key}: Forbidden: must not be specified"));
        }
    }
    if let Some(properties) = map.get("properties").and_then(Value::as_object) {
        for (name, child) in properties {
            if !matches!(name.as_str(), "name" | "generateName") {
                out.push(format!(
                    "{path}.properties[{name}]: Forbidden: must not be specified"
                ));
                continue;
            }
            if child.get("type").and_then(Value::as_str) != Some("string") {
                out.push(format!(
                    "{path}.properties[{name}].type: Unsupported value: must be string"
                ));
            }
        }
    }
}
