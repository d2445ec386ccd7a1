//! One test per schema keyword, on hand-written CRDs so each keyword is exercised in isolation.

use serde_json::{Value, json};

use super::*;

/// A CRD `Widget` in group `example.dev`, version `v1`, whose `spec` has `spec_schema`.
fn crd(spec_schema: Value) -> CustomResourceDefinition {
    crd_with_root(json!({
        "type": "object",
        "properties": { "spec": spec_schema },
    }))
}

fn crd_with_root(root: Value) -> CustomResourceDefinition {
    let crd = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": "widgets.example.dev" },
        "spec": {
            "group": "example.dev",
            "names": { "kind": "Widget", "plural": "widgets" },
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": root },
            }],
        },
    }));
    match crd {
        Ok(crd) => crd,
        Err(error) => panic!("test CRD does not deserialize: {error}"),
    }
}

fn object(spec: Value) -> Value {
    json!({
        "apiVersion": "example.dev/v1",
        "kind": "Widget",
        "metadata": { "name": "w" },
        "spec": spec,
    })
}

/// `(path, message)` of every error for `spec` under `spec_schema`.
fn errors(spec_schema: Value, spec: Value) -> Vec<(String, String)> {
    validate_against_crd(&crd(spec_schema), &object(spec))
        .into_iter()
        .map(|e| (e.path, e.message))
        .collect()
}

fn paths(spec_schema: Value, spec: Value) -> Vec<String> {
    errors(spec_schema, spec)
        .into_iter()
        .map(|(p, _)| p)
        .collect()
}

fn obj(properties: Value) -> Value {
    json!({ "type": "object", "properties": properties })
}

#[test]
fn valid_object_has_no_errors() {
    let schema = obj(json!({ "a": { "type": "string" }, "n": { "type": "integer" } }));
    assert_eq!(errors(schema, json!({ "a": "x", "n": 3 })), vec![]);
}

#[test]
fn type_mismatches_are_reported_for_every_type() {
    let schema = obj(json!({
        "o": { "type": "object" },
        "a": { "type": "array" },
        "s": { "type": "string" },
        "i": { "type": "integer" },
        "f": { "type": "number" },
        "b": { "type": "boolean" },
    }));
    let found = paths(
        schema.clone(),
        json!({ "o": 1, "a": {}, "s": 5, "i": 1.5, "f": "x", "b": "true" }),
    );
    assert_eq!(
        found,
        ["spec.a", "spec.b", "spec.f", "spec.i", "spec.o", "spec.s"]
    );
    assert_eq!(
        errors(schema.clone(), json!({ "i": "3" })),
        [(
            "spec.i".to_string(),
            "must be of type integer, got string".to_string()
        )]
    );
    assert!(
        paths(
            schema,
            json!({ "o": {}, "a": [], "s": "", "i": -2, "f": 2, "b": false })
        )
        .is_empty()
    );
}

#[test]
fn unknown_fields_are_errors_with_their_path() {
    let schema = obj(json!({ "inner": obj(json!({ "x": { "type": "string" } })) }));
    assert_eq!(
        errors(
            schema,
            json!({ "inner": { "x": "1", "routingKey": "k" }, "foo": 1 })
        ),
        [
            ("spec.foo".to_string(), "unknown field".to_string()),
            (
                "spec.inner.routingKey".to_string(),
                "unknown field".to_string()
            ),
        ]
    );
}

#[test]
fn unknown_top_level_fields_are_errors_but_metadata_is_not() {
    let crd = crd(obj(json!({})));
    let mut manifest = object(json!({}));
    manifest["extra"] = json!(1);
    manifest["metadata"]["labels"] = json!({ "app": "x" });
    let found: Vec<String> = validate_against_crd(&crd, &manifest)
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(found, ["extra"]);
}

#[test]
fn preserve_unknown_fields_allows_anything_below() {
    let schema = obj(json!({
        "free": { "type": "object", "x-kubernetes-preserve-unknown-fields": true,
                  "properties": { "typed": { "type": "integer" } } },
    }));
    assert!(
        paths(
            schema.clone(),
            json!({ "free": { "any": { "thing": [1] } } })
        )
        .is_empty()
    );
    assert_eq!(
        paths(schema, json!({ "free": { "typed": "no" } })),
        ["spec.free.typed"]
    );
}

#[test]
fn additional_properties_validate_map_values() {
    let schema = obj(json!({
        "labels": { "type": "object", "additionalProperties": { "type": "string", "maxLength": 3 } },
    }));
    assert!(paths(schema.clone(), json!({ "labels": { "a": "x", "b": "yy" } })).is_empty());
    assert_eq!(
        paths(schema, json!({ "labels": { "a": 1, "b": "long" } })),
        ["spec.labels.a", "spec.labels.b"]
    );
}

#[test]
fn required_fields_are_named() {
    let schema = json!({
        "type": "object",
        "required": ["a", "b"],
        "properties": { "a": { "type": "string" }, "b": { "type": "string" } },
    });
    assert_eq!(
        errors(schema.clone(), json!({ "a": "x" })),
        [("spec.b".to_string(), "Required value".to_string())]
    );
    // A null is pruned by the API server, so a required field set to null is missing.
    assert_eq!(paths(schema, json!({ "a": null, "b": "y" })), ["spec.a"]);
}

#[test]
fn nullable_allows_null() {
    let schema = obj(json!({
        "n": { "type": "string", "nullable": true },
        "list": { "type": "array", "items": { "type": "string" } },
    }));
    assert!(paths(schema.clone(), json!({ "n": null })).is_empty());
    assert_eq!(
        paths(schema, json!({ "list": ["a", null] })),
        ["spec.list[1]"]
    );
}

#[test]
fn enum_lists_supported_values() {
    let schema = obj(json!({ "severity": { "type": "string", "enum": ["P0", "P1"] } }));
    let found = errors(schema.clone(), json!({ "severity": "P9" }));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, "spec.severity");
    assert!(found[0].1.contains("\"P0\", \"P1\""), "{}", found[0].1);
    assert!(paths(schema, json!({ "severity": "P1" })).is_empty());
}

#[test]
fn pattern_uses_regular_expressions() {
    let schema = obj(json!({ "d": { "type": "string", "pattern": "^[0-9]+(s|m)$" } }));
    assert_eq!(
        paths(schema.clone(), json!({ "d": "5 minutes" })),
        ["spec.d"]
    );
    assert!(paths(schema, json!({ "d": "5m" })).is_empty());
}

#[test]
fn string_lengths_count_characters() {
    let schema = obj(json!({ "s": { "type": "string", "minLength": 2, "maxLength": 3 } }));
    assert_eq!(paths(schema.clone(), json!({ "s": "a" })), ["spec.s"]);
    assert_eq!(paths(schema.clone(), json!({ "s": "abcd" })), ["spec.s"]);
    assert!(paths(schema, json!({ "s": "äöü" })).is_empty());
}

#[test]
fn numeric_bounds_inclusive_and_exclusive() {
    let schema = obj(json!({
        "a": { "type": "integer", "minimum": 0, "maximum": 10 },
        "b": { "type": "number", "minimum": 0, "exclusiveMinimum": true, "maximum": 1, "exclusiveMaximum": true },
    }));
    assert!(paths(schema.clone(), json!({ "a": 0, "b": 0.5 })).is_empty());
    assert!(paths(schema.clone(), json!({ "a": 10 })).is_empty());
    assert_eq!(paths(schema.clone(), json!({ "a": -1 })), ["spec.a"]);
    assert_eq!(paths(schema.clone(), json!({ "a": 11 })), ["spec.a"]);
    assert_eq!(paths(schema.clone(), json!({ "b": 0 })), ["spec.b"]);
    assert_eq!(paths(schema, json!({ "b": 1 })), ["spec.b"]);
}

#[test]
fn formats_int32_int64_and_date_time() {
    let schema = obj(json!({
        "i": { "type": "integer", "format": "int32" },
        "l": { "type": "integer", "format": "int64" },
        "t": { "type": "string", "format": "date-time" },
    }));
    assert_eq!(
        paths(schema.clone(), json!({ "i": 3_000_000_000_i64 })),
        ["spec.i"]
    );
    assert_eq!(paths(schema.clone(), json!({ "l": u64::MAX })), ["spec.l"]);
    assert_eq!(
        paths(schema.clone(), json!({ "t": "yesterday" })),
        ["spec.t"]
    );
    assert!(
        paths(
            schema,
            json!({ "i": 5, "l": 3_000_000_000_i64, "t": "2026-03-08T02:30:00-05:00" })
        )
        .is_empty()
    );
}

#[test]
fn list_sizes_and_items() {
    let schema = obj(json!({
        "steps": { "type": "array", "minItems": 1, "maxItems": 2,
                   "items": obj(json!({ "timeout": { "type": "string" } })) },
    }));
    assert_eq!(
        paths(schema.clone(), json!({ "steps": [] })),
        ["spec.steps"]
    );
    assert_eq!(
        paths(schema.clone(), json!({ "steps": [{}, {}, {}] })),
        ["spec.steps"]
    );
    assert_eq!(
        paths(
            schema,
            json!({ "steps": [{ "timeout": "1m" }, { "timeout": 5 }] })
        ),
        ["spec.steps[1].timeout"]
    );
}

#[test]
fn list_types_set_and_map_reject_duplicates() {
    let schema = obj(json!({
        "regions": { "type": "array", "x-kubernetes-list-type": "set", "items": { "type": "string" } },
        "steps": { "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                   "items": obj(json!({ "name": { "type": "string" } })) },
    }));
    assert_eq!(
        paths(
            schema,
            json!({ "regions": ["a", "b", "a"], "steps": [{ "name": "x" }, { "name": "x" }] })
        ),
        ["spec.regions[2]", "spec.steps[1]"]
    );
}

#[test]
fn object_property_counts() {
    let schema = json!({ "type": "object", "minProperties": 1, "additionalProperties": { "type": "string" } });
    assert_eq!(paths(schema, json!({})), ["spec"]);
}

#[test]
fn int_or_string_accepts_both_and_nothing_else() {
    let schema = obj(json!({ "port": { "x-kubernetes-int-or-string": true } }));
    assert!(paths(schema.clone(), json!({ "port": 80 })).is_empty());
    assert!(paths(schema.clone(), json!({ "port": "http" })).is_empty());
    assert_eq!(paths(schema, json!({ "port": true })), ["spec.port"]);
}

#[test]
fn embedded_resources_need_api_version_and_kind() {
    let schema = obj(json!({
        "template": { "type": "object", "x-kubernetes-embedded-resource": true,
                      "x-kubernetes-preserve-unknown-fields": true },
    }));
    assert!(
        paths(
            schema.clone(),
            json!({ "template": { "apiVersion": "v1", "kind": "Pod", "spec": {} } })
        )
        .is_empty()
    );
    assert_eq!(
        paths(schema, json!({ "template": { "kind": "Pod" } })),
        ["spec.template.apiVersion"]
    );
}

#[test]
fn one_of_required_fields_names_the_choice() {
    let schema = json!({
        "type": "object",
        "properties": { "url": { "type": "string" }, "service": { "type": "string" } },
        "oneOf": [{ "required": ["url"] }, { "required": ["service"] }],
    });
    let both = errors(schema.clone(), json!({ "url": "u", "service": "s" }));
    assert_eq!(
        both,
        [(
            "spec".to_string(),
            "must set exactly one of: url, service".to_string()
        )]
    );
    assert_eq!(paths(schema.clone(), json!({})), ["spec"]);
    assert!(paths(schema, json!({ "url": "u" })).is_empty());
}

#[test]
fn any_of_all_of_and_not() {
    let schema = json!({
        "type": "object",
        "properties": { "a": { "type": "integer" }, "b": { "type": "integer" } },
        "anyOf": [{ "required": ["a"] }, { "required": ["b"] }],
        "allOf": [{ "properties": { "a": { "maximum": 5 } } }],
        "not": { "required": ["b"], "properties": { "b": { "enum": [13] } } },
    });
    assert!(paths(schema.clone(), json!({ "a": 1 })).is_empty());
    assert_eq!(paths(schema.clone(), json!({})), ["spec"]);
    assert_eq!(paths(schema.clone(), json!({ "a": 6 })), ["spec.a"]);
    assert_eq!(paths(schema, json!({ "b": 13 })), ["spec"]);
}

#[test]
fn defaults_are_not_errors_and_feed_cel_rules() {
    let schema = json!({
        "type": "object",
        "properties": { "min": { "type": "integer", "default": 1 }, "max": { "type": "integer" } },
        "x-kubernetes-validations": [{ "rule": "self.max >= self.min", "message": "max must be at least min" }],
    });
    assert!(paths(schema.clone(), json!({ "max": 1 })).is_empty());
    assert_eq!(
        errors(schema, json!({ "max": 0 })),
        [("spec".to_string(), "max must be at least min".to_string())]
    );
}

#[test]
fn cel_rules_report_field_path_and_list_indices() {
    let schema = obj(json!({
        "steps": { "type": "array", "items": {
            "type": "object",
            "properties": { "retries": { "type": "integer" } },
            "x-kubernetes-validations": [{ "rule": "self.retries < 5", "message": "too many retries", "fieldPath": ".retries" }],
        } },
    }));
    assert_eq!(
        errors(
            schema,
            json!({ "steps": [{ "retries": 1 }, { "retries": 9 }] })
        ),
        [(
            "spec.steps[1].retries".to_string(),
            "too many retries".to_string()
        )]
    );
}

#[test]
fn cel_rules_do_not_repeat_structural_errors() {
    let schema = json!({
        "type": "object",
        "properties": { "a": { "type": "integer" } },
        "x-kubernetes-validations": [{ "rule": "self.a > 0", "message": "a must be positive" }],
    });
    assert_eq!(paths(schema, json!({ "a": "text" })), ["spec.a"]);
}

#[test]
fn cel_rules_on_ancestors_are_reported_next_to_unknown_fields() {
    let schema = json!({
        "type": "object",
        "properties": { "url": { "type": "string" }, "service": { "type": "string" } },
        "x-kubernetes-validations": [{ "rule": "has(self.url) != has(self.service)", "message": "set exactly one of url or service" }],
    });
    assert_eq!(
        errors(schema, json!({ "url": "u", "service": "s", "extra": 1 })),
        [
            ("spec.extra".to_string(), "unknown field".to_string()),
            (
                "spec".to_string(),
                "set exactly one of url or service".to_string()
            ),
        ]
    );
}

#[test]
fn api_version_kind_and_metadata() {
    let crd = crd(obj(json!({})));
    let mut manifest = object(json!({}));
    manifest["apiVersion"] = json!("example.dev/v2");
    manifest["kind"] = json!("Gadget");
    manifest["metadata"] = json!({ "name": "Not_Valid", "labels": { "n": 1 }, "lables": {} });
    let found: Vec<String> = validate_against_crd(&crd, &manifest)
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(
        found,
        [
            "apiVersion",
            "kind",
            "metadata.name",
            "metadata.lables",
            "metadata.labels.n"
        ]
    );
    let found: Vec<String> = validate_against_crd(
        &crd,
        &json!({ "apiVersion": "example.dev/v1", "kind": "Widget" }),
    )
    .into_iter()
    .map(|e| e.path)
    .collect();
    assert_eq!(found, ["metadata.name"]);
}

#[test]
fn generated_crds_accept_a_minimal_valid_object_shape() {
    // Every watchkeeper CRD compiles (schema walk and CEL) without internal errors on an
    // object with only metadata: the only errors are about the spec.
    for crd in crate::api::crds() {
        let manifest = json!({
            "apiVersion": crate::api::API_VERSION,
            "kind": crd.spec.names.kind,
            "metadata": { "name": "x" },
            "spec": {},
        });
        for error in validate_against_crd(&crd, &manifest) {
            assert!(
                error.path.starts_with("spec"),
                "{}: {error}",
                crd.spec.names.kind
            );
        }
    }
}
