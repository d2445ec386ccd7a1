//! Pruning of unknown fields of custom resources, as the real API server does
//! for structural schemas when `fieldValidation` is not `Strict`: fields not
//! declared under `properties` (or `additionalProperties`) are dropped unless the
//! schema node has `x-kubernetes-preserve-unknown-fields: true`. `apiVersion`,
//! `kind` and `metadata` are kept at the root and in embedded resources.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

/// The openAPIV3Schema for the version named in `apiVersion` (storage version
/// if it does not match), as JSON.
pub fn schema_for(crd: &CustomResourceDefinition, api_version: &str) -> Option<Value> {
    let version = api_version.rsplit('/').next().unwrap_or("");
    let versions = &crd.spec.versions;
    let chosen = versions
        .iter()
        .find(|v| v.name == version)
        .or_else(|| versions.iter().find(|v| v.storage))?;
    let schema = chosen.schema.as_ref()?.open_api_v3_schema.as_ref()?;
    serde_json::to_value(schema).ok()
}

/// Removes unknown fields from a custom resource in place.
pub fn prune_custom_resource(crd: &CustomResourceDefinition, obj: &mut Value) {
    let api_version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let Some(schema) = schema_for(crd, &api_version) else {
        return;
    };
    prune(obj, &schema, true);
}

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool) == Some(true)
}

fn prune(value: &mut Value, schema: &Value, resource_root: bool) {
    let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
    let embedded = resource_root || flag(schema, "x-kubernetes-embedded-resource");
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                if embedded && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let child_schema = properties
                    .and_then(|p| p.get(&key))
                    .or_else(|| additional.filter(|a| a.is_object()));
                match child_schema {
                    Some(child) => {
                        if let Some(child_value) = map.get_mut(&key) {
                            prune(child_value, child, false);
                        }
                    }
                    None => {
                        let allowed = preserve || additional.and_then(Value::as_bool) == Some(true);
                        if !allowed {
                            map.remove(&key);
                        }
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    prune(item, item_schema, false);
                }
            }
        }
        _ => {}
    }
}

/// Applies the `default` values of the CRD schema to absent fields (objects
/// recursively, list items, additionalProperties), as the real API server does
/// on writes. Root `metadata` is left alone.
pub fn default_custom_resource(crd: &CustomResourceDefinition, obj: &mut Value) {
    let api_version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let Some(schema) = schema_for(crd, &api_version) else {
        return;
    };
    apply_defaults(obj, &schema, true);
}

fn apply_defaults(value: &mut Value, schema: &Value, root: bool) {
    match value {
        Value::Object(map) => {
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (key, property) in properties {
                    if root && key == "metadata" {
                        continue;
                    }
                    if !map.contains_key(key)
                        && let Some(default) = property.get("default")
                    {
                        map.insert(key.clone(), default.clone());
                    }
                    if let Some(child) = map.get_mut(key) {
                        apply_defaults(child, property, false);
                    }
                }
            }
            if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for child in map.values_mut() {
                    apply_defaults(child, additional, false);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    apply_defaults(item, item_schema, false);
                }
            }
        }
        _ => {}
    }
}
