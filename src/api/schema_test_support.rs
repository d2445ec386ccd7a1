//! Helpers shared by the schema tests of every kind: a known-good manifest is edited in place
//! and the result run through the generated CRD with the same validator `check` and the test
//! API server use, so each test names only its edit and the path that must be refused.

use kube::CustomResourceExt;

/// Parses a YAML snippet used as a replacement value in an edit.
pub(crate) fn yaml(text: &str) -> serde_yaml::Value {
    serde_yaml::from_str(text).expect("test YAML parses")
}

/// Schema errors of `base` (a whole manifest of kind `K`) after `edit` changed its `spec`, as
/// `path: message` lines.
pub(crate) fn schema_errors<K: CustomResourceExt>(
    base: &str,
    edit: impl FnOnce(&mut serde_yaml::Value),
) -> Vec<String> {
    let mut value: serde_yaml::Value = serde_yaml::from_str(base).expect("base manifest parses");
    edit(&mut value["spec"]);
    let object = serde_json::to_value(&value).expect("YAML converts to JSON");
    crate::check::schema::validate_against_crd(&K::crd(), &object)
        .into_iter()
        .map(|e| format!("{}: {}", e.path, e.message))
        .collect()
}

/// Asserts that the schema refuses `base` after `edit`, with at least one error at `path`.
#[track_caller]
pub(crate) fn rejects_at<K: CustomResourceExt>(
    base: &str,
    path: &str,
    edit: impl FnOnce(&mut serde_yaml::Value),
) {
    let found = schema_errors::<K>(base, edit);
    assert!(
        found.iter().any(|e| e.starts_with(&format!("{path}: "))),
        "expected a schema error at {path}, got {found:?}"
    );
}

/// Asserts that the CRD of `K` stays well under the 256 KiB annotation a client-side
/// `kubectl apply` stores the whole object in.
#[track_caller]
pub(crate) fn assert_crd_fits_a_client_side_apply<K: CustomResourceExt>() {
    let json = serde_json::to_string(&K::crd()).expect("CRD serializes");
    assert!(
        json.len() < 200 * 1024,
        "{} CRD is {} bytes",
        K::crd_name(),
        json.len()
    );
}
