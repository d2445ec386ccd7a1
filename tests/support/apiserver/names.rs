//! Object name rules the real API server enforces: DNS-1123 labels for
//! namespaces and services, DNS-1123 subdomains otherwise, `<plural>.<group>` for
//! CustomResourceDefinitions.

use serde_json::Value;

use super::resources::ResourceType;

fn is_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// Why a name is not acceptable for a resource, as the real server checks:
/// DNS-1123 labels for namespaces and services, DNS-1123 subdomains otherwise.
pub fn name_problem(rt: &ResourceType, name: &str) -> Option<String> {
    if matches!(rt.plural.as_str(), "namespaces" | "services") {
        return (!is_label(name)).then(|| {
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', start and end with an alphanumeric character, and be at most 63 characters".to_string()
        });
    }
    if name.len() > 253 || !name.split('.').all(is_label) {
        return Some("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character".into());
    }
    None
}

/// A CRD must be named `<plural>.<group>`.
pub fn crd_name_problem(crd: &Value, name: &str) -> Option<String> {
    let plural = crd
        .pointer("/spec/names/plural")
        .and_then(Value::as_str)
        .unwrap_or("");
    let group = crd
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or("");
    let expected = format!("{plural}.{group}");
    (name != expected).then(|| {
        format!("metadata.name: Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group ({expected})")
    })
}
