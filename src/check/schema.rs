//! Validation of an object against a CRD's structural OpenAPI v3 schema and its CEL rules, the
//! way the API server validates a custom resource on create and update.
//!
//! Covered: `type` (object, array, string, integer, number, boolean), `format` (int32, int64,
//! date-time), `enum`, `pattern`, `minimum`/`maximum` (and their exclusive forms),
//! `minLength`/`maxLength`, `minItems`/`maxItems`, `minProperties`/`maxProperties`, `required`,
//! `nullable`, `properties`, `additionalProperties` (maps), `items`, `allOf`/`anyOf`/`oneOf`/`not`,
//! `x-kubernetes-preserve-unknown-fields`, `x-kubernetes-int-or-string`,
//! `x-kubernetes-embedded-resource`, `x-kubernetes-list-type` (set, map) and CEL
//! `x-kubernetes-validations` (through `kube::core::cel`). Unknown fields are errors, as
//! `kubectl apply --validate=strict` reports them. `default` is not a constraint: CEL rules see
//! defaulted values, as on the API server.
//!
//! Error paths are dotted with list indices (`spec.steps[2].timeout`), like `validate()`'s.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, LazyLock, Mutex},
};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::core::cel::{CompiledSchema, ErrorKind, RootContext, Validator, compile_schema};
use regex::Regex;
use serde_json::Value;

use super::yaml::{join_field, join_index};
use crate::api::FieldError;

/// Validates an object (whole manifest as JSON) against the openAPIV3Schema of `crd`
/// (structural OpenAPI: type, enum, pattern, min/max, minLength/maxLength, minItems/maxItems,
/// required, nullable, unknown fields are errors unless x-kubernetes-preserve-unknown-fields,
/// int-or-string, embedded-resource) and its CEL x-kubernetes-validations (kube::core::cel).
///
/// `apiVersion` and `kind` must name this CRD and a version it serves; `metadata` is checked for
/// a name and well-formed string fields only (the API server owns the rest).
pub fn validate_against_crd(crd: &CustomResourceDefinition, object: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let Some(root) = object.as_object() else {
        return vec![FieldError::new(
            "",
            format!("must be an object, got {}", type_name(object)),
        )];
    };
    let group = &crd.spec.group;
    let served: Vec<&str> = crd
        .spec
        .versions
        .iter()
        .filter(|v| v.served)
        .map(|v| v.name.as_str())
        .collect();
    let expected = served
        .iter()
        .map(|v| format!("{group}/{v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let version = match root.get("apiVersion") {
        None | Some(Value::Null) => {
            errors.push(FieldError::new(
                "apiVersion",
                format!("Required value: must be {expected}"),
            ));
            None
        }
        Some(Value::String(api_version)) => {
            let found = api_version
                .split_once('/')
                .filter(|(g, _)| g == group)
                .and_then(|(_, v)| {
                    crd.spec
                        .versions
                        .iter()
                        .find(|ver| ver.served && ver.name == v)
                });
            if found.is_none() {
                errors.push(FieldError::new(
                    "apiVersion",
                    format!("unsupported value {api_version:?}: must be {expected}"),
                ));
            }
            found
        }
        Some(other) => {
            errors.push(FieldError::new(
                "apiVersion",
                format!("must be a string, got {}", type_name(other)),
            ));
            None
        }
    };
    let kind = &crd.spec.names.kind;
    match root.get("kind") {
        Some(Value::String(k)) if k == kind => {}
        Some(Value::String(k)) => errors.push(FieldError::new(
            "kind",
            format!("unsupported value {k:?}: must be {kind:?}"),
        )),
        None | Some(Value::Null) => errors.push(FieldError::new(
            "kind",
            format!("Required value: must be {kind:?}"),
        )),
        Some(other) => errors.push(FieldError::new(
            "kind",
            format!("must be a string, got {}", type_name(other)),
        )),
    }
    check_metadata(root.get("metadata"), "metadata", true, &mut errors);

    let Some(version) = version else {
        return errors;
    };
    let Some(schema) = version
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
    else {
        return errors;
    };
    let compiled = match compiled_for(schema) {
        Ok(compiled) => compiled,
        Err(message) => {
            errors.push(FieldError::new("", message));
            return errors;
        }
    };
    let structural_start = errors.len();
    let mut walker = Walker {
        errors: &mut errors,
        strict: true,
    };
    walker.walk(&compiled.schema, object, "");
    let structural: Vec<String> = errors[structural_start..]
        .iter()
        .map(|e| e.path.clone())
        .collect();
    let root_context = RootContext {
        api_version: format!("{group}/{}", version.name),
        api_group: group.clone(),
        kind: kind.clone(),
    };
    errors.extend(cel_errors(
        &compiled.cel,
        object,
        &root_context,
        &structural,
    ));
    errors
}

/// The schema of one CRD version as JSON plus its compiled CEL rules, built once per distinct
/// schema and shared.
struct Compiled {
    schema: Value,
    cel: CompiledSchema,
}

/// Compiled schemas by their JSON text: CEL compilation is the expensive part of validation and
/// the same few CRDs are used for every object.
static COMPILED: LazyLock<Mutex<HashMap<String, Arc<Compiled>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn compiled_for<T: serde::Serialize>(schema: &T) -> Result<Arc<Compiled>, String> {
    let schema = serde_json::to_value(schema).map_err(|e| format!("unusable CRD schema: {e}"))?;
    let key = schema.to_string();
    let mut cache = COMPILED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(found) = cache.get(&key) {
        return Ok(Arc::clone(found));
    }
    let cel = compile_schema(&schema);
    let compiled = Arc::new(Compiled { schema, cel });
    cache.insert(key, Arc::clone(&compiled));
    Ok(compiled)
}

thread_local! {
    /// CEL evaluator with the Kubernetes function library registered (costly to set up).
    static VALIDATOR: Validator = Validator::new();
}

/// Evaluates the CEL rules. Rules on or under a field that already failed structural validation
/// are not reported (their failure would only repeat that error), and neither are evaluation
/// errors (values of the wrong type, missing fields) when structural errors exist. Rules on an
/// ancestor are reported: an unknown field does not excuse a broken cross-field rule.
fn cel_errors(
    compiled: &CompiledSchema,
    object: &Value,
    root: &RootContext,
    structural: &[String],
) -> Vec<FieldError> {
    let result = VALIDATOR.with(|validator| {
        validator.validate_compiled_with_context(compiled, object, None, Some(root))
    });
    let Err(failures) = result else {
        return Vec::new();
    };
    failures
        .into_vec()
        .into_iter()
        .filter(|failure| {
            let path = failure.field_path.trim_start_matches('.');
            let covered = structural.iter().any(|s| is_within(path, s));
            let noise =
                !structural.is_empty() && !matches!(failure.kind, ErrorKind::ValidationFailure);
            !covered && !noise
        })
        .map(|failure| FieldError::new(failure.field_path.trim_start_matches('.'), failure.message))
        .collect()
}

/// Whether `path` is `ancestor` or lies below it (`spec.a[1].b` is within `spec.a`).
pub fn is_within(path: &str, ancestor: &str) -> bool {
    ancestor.is_empty()
        || path == ancestor
        || path
            .strip_prefix(ancestor)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

/// `metadata` of a manifest: a name (or generateName for the top-level object), DNS-style name
/// and namespace, and string maps for labels and annotations.
fn check_metadata(
    value: Option<&Value>,
    path: &str,
    need_name: bool,
    errors: &mut Vec<FieldError>,
) {
    let metadata = match value {
        None | Some(Value::Null) => {
            if need_name {
                errors.push(FieldError::new(join_field(path, "name"), "Required value"));
            }
            return;
        }
        Some(Value::Object(map)) => map,
        Some(other) => {
            errors.push(FieldError::new(
                path,
                format!("must be an object, got {}", type_name(other)),
            ));
            return;
        }
    };
    for field in ["name", "namespace", "generateName"] {
        match metadata.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::String(text)) => {
                let field_path = join_field(path, field);
                let problem = match field {
                    "name" => dns_subdomain_problem(text),
                    "namespace" => dns_label_problem(text),
                    _ => None,
                };
                if let Some(problem) = problem {
                    errors.push(FieldError::new(
                        field_path,
                        format!("invalid value {text:?}: {problem}"),
                    ));
                }
            }
            Some(other) => errors.push(FieldError::new(
                join_field(path, field),
                format!("must be a string, got {}", type_name(other)),
            )),
        }
    }
    let has_name =
        |field: &str| matches!(metadata.get(field), Some(Value::String(s)) if !s.is_empty());
    if need_name && !has_name("name") && !has_name("generateName") {
        errors.push(FieldError::new(join_field(path, "name"), "Required value"));
    }
    for field in metadata.keys() {
        if !OBJECT_META_FIELDS.contains(&field.as_str()) {
            errors.push(FieldError::new(join_field(path, field), "unknown field"));
        }
    }
    for field in ["labels", "annotations"] {
        let field_path = join_field(path, field);
        match metadata.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (key, value) in map {
                    if !value.is_string() {
                        errors.push(FieldError::new(
                            join_field(&field_path, key),
                            format!("must be a string, got {}", type_name(value)),
                        ));
                    }
                }
            }
            Some(other) => errors.push(FieldError::new(
                field_path,
                format!("must be a map of strings, got {}", type_name(other)),
            )),
        }
    }
}

/// Fields of `metadata` (ObjectMeta); anything else is an unknown field, as
/// `kubectl apply --validate=strict` reports it.
const OBJECT_META_FIELDS: [&str; 15] = [
    "name",
    "generateName",
    "namespace",
    "labels",
    "annotations",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "ownerReferences",
    "finalizers",
    "managedFields",
    "selfLink",
];

static DNS_LABEL: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(crate::api::common::DNS_LABEL_PATTERN).ok());

fn dns_label_problem(text: &str) -> Option<&'static str> {
    let valid = text.len() <= 63 && DNS_LABEL.as_ref().is_none_or(|re| re.is_match(text));
    (!valid).then_some(
        "must be a DNS label: at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit",
    )
}

fn dns_subdomain_problem(text: &str) -> Option<&'static str> {
    let valid = !text.is_empty()
        && text.len() <= 253
        && text
            .split('.')
            .all(|part| DNS_LABEL.as_ref().is_none_or(|re| re.is_match(part)));
    (!valid).then_some(
        "must be a DNS subdomain: at most 253 lower-case letters, digits, '-' and '.', starting and ending with a letter or digit",
    )
}

/// The JSON type of a value, as schema errors name it.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Regular expressions of `pattern` keywords, compiled once.
static PATTERNS: LazyLock<Mutex<HashMap<String, Result<Regex, String>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn pattern_matches(pattern: &str, text: &str) -> Result<bool, String> {
    let mut cache = PATTERNS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let compiled = cache
        .entry(pattern.to_string())
        .or_insert_with(|| Regex::new(pattern).map_err(|e| e.to_string()));
    match compiled {
        Ok(re) => Ok(re.is_match(text)),
        Err(error) => Err(format!("schema pattern {pattern:?} is invalid: {error}")),
    }
}

/// Walks a value and its schema together, collecting errors.
struct Walker<'e> {
    errors: &'e mut Vec<FieldError>,
    /// Whether unknown fields are errors here (not inside allOf/anyOf/oneOf/not branches, which
    /// only add value validations to the fields the main schema declares).
    strict: bool,
}

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool).unwrap_or(false)
}

impl Walker<'_> {
    fn push(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(path, message));
    }

    fn walk(&mut self, schema: &Value, value: &Value, path: &str) {
        if value.is_null() {
            if !flag(schema, "nullable") && schema.get("type").is_some() {
                self.push(
                    path,
                    format!("must be of type {}, got null", schema_type(schema)),
                );
            }
            return;
        }
        if !self.check_type(schema, value, path) {
            return;
        }
        self.check_enum(schema, value, path);
        match value {
            Value::String(text) => self.check_string(schema, text, path),
            Value::Number(_) => self.check_number(schema, value, path),
            Value::Array(items) => self.check_array(schema, items, path),
            Value::Object(map) => self.check_object(schema, map, path),
            Value::Bool(_) | Value::Null => {}
        }
        self.check_combinators(schema, value, path);
    }

    /// Type (and int-or-string); `false` when the value has the wrong type and nothing below it
    /// is worth checking.
    fn check_type(&mut self, schema: &Value, value: &Value, path: &str) -> bool {
        if flag(schema, "x-kubernetes-int-or-string") {
            let ok = value.is_string() || value.is_i64() || value.is_u64();
            if !ok {
                self.push(
                    path,
                    format!("must be an integer or a string, got {}", type_name(value)),
                );
            }
            return ok;
        }
        let Some(expected) = schema.get("type").and_then(Value::as_str) else {
            return true;
        };
        let ok = match expected {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            _ => true,
        };
        if !ok {
            self.push(
                path,
                format!("must be of type {expected}, got {}", type_name(value)),
            );
        }
        ok
    }

    fn check_enum(&mut self, schema: &Value, value: &Value, path: &str) {
        let Some(allowed) = schema.get("enum").and_then(Value::as_array) else {
            return;
        };
        if !allowed.contains(value) {
            let list = allowed
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            self.push(
                path,
                format!("unsupported value {value}: supported values: {list}"),
            );
        }
    }

    fn check_string(&mut self, schema: &Value, text: &str, path: &str) {
        let length = text.chars().count() as u64;
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && length < min
        {
            self.push(path, format!("must be at least {min} characters long"));
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && length > max
        {
            self.push(path, format!("may not be longer than {max} characters"));
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            match pattern_matches(pattern, text) {
                Ok(true) => {}
                Ok(false) => self.push(
                    path,
                    format!("invalid value {text:?}: must match the pattern {pattern}"),
                ),
                Err(message) => self.push(path, message),
            }
        }
        if schema.get("format").and_then(Value::as_str) == Some("date-time")
            && chrono::DateTime::parse_from_rfc3339(text).is_err()
        {
            self.push(
                path,
                format!("invalid value {text:?}: must be an RFC 3339 date-time such as 2026-01-31T02:00:00Z"),
            );
        }
    }

    fn check_number(&mut self, schema: &Value, value: &Value, path: &str) {
        let format = schema.get("format").and_then(Value::as_str);
        if format == Some("int32") && value.as_i64().is_none_or(|n| i32::try_from(n).is_err()) {
            self.push(path, format!("{value} does not fit in a 32-bit integer"));
        }
        if format == Some("int64") && value.as_i64().is_none() && value.is_u64() {
            self.push(path, format!("{value} does not fit in a 64-bit integer"));
        }
        let Some(number) = value.as_f64() else {
            return;
        };
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
            if flag(schema, "exclusiveMinimum") {
                if number <= min {
                    self.push(path, format!("must be greater than {}", show(min)));
                }
            } else if number < min {
                self.push(
                    path,
                    format!("must be greater than or equal to {}", show(min)),
                );
            }
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
            if flag(schema, "exclusiveMaximum") {
                if number >= max {
                    self.push(path, format!("must be less than {}", show(max)));
                }
            } else if number > max {
                self.push(path, format!("must be less than or equal to {}", show(max)));
            }
        }
        if let Some(factor) = schema.get("multipleOf").and_then(Value::as_f64)
            && factor > 0.0
            && (number / factor).fract() != 0.0
        {
            self.push(path, format!("must be a multiple of {}", show(factor)));
        }
    }

    fn check_array(&mut self, schema: &Value, items: &[Value], path: &str) {
        let count = items.len() as u64;
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
            && count < min
        {
            self.push(
                path,
                format!("must have at least {min} item(s), has {count}"),
            );
        }
        if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
            && count > max
        {
            self.push(
                path,
                format!("must have at most {max} item(s), has {count}"),
            );
        }
        match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => {
                let mut seen = HashSet::new();
                for (index, item) in items.iter().enumerate() {
                    if !seen.insert(item.to_string()) {
                        self.push(&join_index(path, index), format!("duplicate value {item}"));
                    }
                }
            }
            Some("map") => {
                let keys: Vec<&str> = schema
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|keys| keys.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let mut seen = HashSet::new();
                for (index, item) in items.iter().enumerate() {
                    let key: Vec<String> = keys
                        .iter()
                        .map(|k| item.get(k).map(Value::to_string).unwrap_or_default())
                        .collect();
                    if !keys.is_empty() && !seen.insert(key.clone()) {
                        let shown = keys
                            .iter()
                            .zip(&key)
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(", ");
                        self.push(
                            &join_index(path, index),
                            format!("duplicate entry with {shown}"),
                        );
                    }
                }
            }
            _ => {}
        }
        if let Some(item_schema) = schema.get("items").filter(|s| s.is_object()) {
            for (index, item) in items.iter().enumerate() {
                self.walk(item_schema, item, &join_index(path, index));
            }
        }
    }

    fn check_object(&mut self, schema: &Value, map: &serde_json::Map<String, Value>, path: &str) {
        let count = map.len() as u64;
        if let Some(min) = schema.get("minProperties").and_then(Value::as_u64)
            && count < min
        {
            self.push(
                path,
                format!("must have at least {min} entries, has {count}"),
            );
        }
        if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
            && count > max
        {
            self.push(
                path,
                format!("must have at most {max} entries, has {count}"),
            );
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        let is_root = path.is_empty();
        let embedded = flag(schema, "x-kubernetes-embedded-resource");
        if embedded {
            for field in ["apiVersion", "kind"] {
                match map.get(field) {
                    Some(Value::String(s)) if !s.is_empty() => {}
                    _ => self.push(
                        &join_field(path, field),
                        "Required value: must be a non-empty string",
                    ),
                }
            }
            check_metadata(
                map.get("metadata"),
                &join_field(path, "metadata"),
                false,
                self.errors,
            );
        }
        // Fields the API server supplies or checks itself: the object's type and metadata.
        let implicit = |name: &str| {
            (is_root || embedded) && matches!(name, "apiVersion" | "kind" | "metadata")
        };
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                let nullable_child = properties
                    .and_then(|p| p.get(name))
                    .is_some_and(|child| flag(child, "nullable"));
                let missing = match map.get(name) {
                    None => true,
                    Some(Value::Null) => !nullable_child,
                    Some(_) => false,
                };
                if missing && !implicit(name) {
                    self.push(&join_field(path, name), "Required value");
                }
            }
        }
        let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
        let additional = schema.get("additionalProperties");
        for (name, child) in map {
            if implicit(name) {
                continue;
            }
            let child_path = join_field(path, name);
            if let Some(child_schema) = properties.and_then(|p| p.get(name)) {
                if child.is_null() && !flag(child_schema, "nullable") {
                    // The API server prunes nulls of non-nullable fields; `required` caught the
                    // cases where that matters.
                    continue;
                }
                self.walk(child_schema, child, &child_path);
                continue;
            }
            match additional {
                Some(extra @ Value::Object(_)) => self.walk(extra, child, &child_path),
                Some(Value::Bool(true)) => {}
                _ if preserve || !self.strict => {}
                _ => self.push(&child_path, "unknown field"),
            }
        }
    }

    fn check_combinators(&mut self, schema: &Value, value: &Value, path: &str) {
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            for branch in all {
                let errors = branch_errors(branch, value, path);
                self.errors.extend(errors);
            }
        }
        if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
            let results: Vec<Vec<FieldError>> =
                any.iter().map(|b| branch_errors(b, value, path)).collect();
            if !any.is_empty() && results.iter().all(|errors| !errors.is_empty()) {
                let message =
                    describe_required_branches(any, "at least one of").unwrap_or_else(|| {
                        first_branch_detail(
                            "must satisfy at least one of the allowed forms",
                            &results,
                        )
                    });
                self.push(path, message);
            }
        }
        if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
            let results: Vec<Vec<FieldError>> =
                one.iter().map(|b| branch_errors(b, value, path)).collect();
            let passing = results.iter().filter(|errors| errors.is_empty()).count();
            if !one.is_empty() && passing != 1 {
                let message =
                    describe_required_branches(one, "exactly one of").unwrap_or_else(|| {
                        if passing == 0 {
                            first_branch_detail(
                                "must satisfy exactly one of the allowed forms",
                                &results,
                            )
                        } else {
                            format!(
                                "must satisfy exactly one of the allowed forms, satisfies {passing}"
                            )
                        }
                    });
                self.push(path, message);
            }
        }
        if let Some(not) = schema.get("not").filter(|s| s.is_object())
            && branch_errors(not, value, path).is_empty()
        {
            self.push(path, "must not satisfy the excluded form (not)");
        }
    }
}

/// The errors of one allOf/anyOf/oneOf/not branch (value validations only: unknown fields are
/// the main schema's business).
fn branch_errors(branch: &Value, value: &Value, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    Walker {
        errors: &mut errors,
        strict: false,
    }
    .walk(branch, value, path);
    errors
}

/// For one-of/any-of branches that only list required fields (the usual way to say "set exactly
/// one of url or service"), a message naming the fields.
fn describe_required_branches(branches: &[Value], quantity: &str) -> Option<String> {
    let mut names = Vec::new();
    for branch in branches {
        let object = branch.as_object()?;
        if object.keys().any(|k| k != "required") {
            return None;
        }
        let required: Vec<&str> = object
            .get("required")?
            .as_array()?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        names.push(required.join(" and "));
    }
    Some(format!("must set {quantity}: {}", names.join(", ")))
}

fn first_branch_detail(lead: &str, results: &[Vec<FieldError>]) -> String {
    match results.iter().flatten().next() {
        Some(first) => format!("{lead} (first form: {first})"),
        None => lead.to_string(),
    }
}

/// The declared type of a schema node, for messages.
fn schema_type(schema: &Value) -> &str {
    schema.get("type").and_then(Value::as_str).unwrap_or("any")
}

/// A bound without a needless `.0`.
fn show(number: f64) -> String {
    if number.fract() == 0.0 && number.abs() < 1e15 {
        format!("{}", number as i64)
    } else {
        number.to_string()
    }
}

#[cfg(test)]
mod tests;
