//! The resource types the server serves: a fixed set of built-in kinds plus one
//! entry per served version of every stored CustomResourceDefinition.

use std::sync::Arc;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};

/// One servable resource (group + plural), with the facts handlers need.
#[derive(Clone, Debug)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: String,
    /// Served versions, preferred (storage) version first.
    pub versions: Vec<String>,
    /// Plural resource name used in paths.
    pub plural: String,
    /// Singular name for discovery.
    pub singular: String,
    /// Kind of the objects.
    pub kind: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Whether `status` is a separate subresource.
    pub status_subresource: bool,
    /// Short names for discovery.
    pub short_names: Vec<String>,
    /// Categories for discovery.
    pub categories: Vec<String>,
    /// The defining CRD for custom resources (drives validation).
    pub crd: Option<Arc<CustomResourceDefinition>>,
}

impl ResourceType {
    /// The storage key: `group/plural`.
    pub fn key(&self) -> String {
        key(&self.group, &self.plural)
    }

    /// `apiVersion` for a version of this resource.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    /// `apiVersion` of the preferred version.
    pub fn preferred_api_version(&self) -> String {
        let version = self.versions.first().map(String::as_str).unwrap_or("v1");
        self.api_version(version)
    }
}

/// The storage key for a group and plural.
pub fn key(group: &str, plural: &str) -> String {
    format!("{group}/{plural}")
}

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    status: bool,
    short: &[&str],
) -> ResourceType {
    ResourceType {
        group: group.to_string(),
        versions: vec![version.to_string()],
        plural: plural.to_string(),
        singular: kind.to_lowercase(),
        kind: kind.to_string(),
        namespaced,
        status_subresource: status,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: Vec::new(),
        crd: None,
    }
}

/// The built-in kinds the server knows from the start.
pub fn builtins() -> Vec<ResourceType> {
    vec![
        builtin("", "v1", "configmaps", "ConfigMap", true, false, &["cm"]),
        builtin("", "v1", "secrets", "Secret", true, false, &[]),
        builtin("", "v1", "services", "Service", true, true, &["svc"]),
        builtin(
            "",
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            true,
            false,
            &["sa"],
        ),
        builtin("", "v1", "pods", "Pod", true, true, &["po"]),
        builtin("", "v1", "events", "Event", true, false, &["ev"]),
        builtin("", "v1", "namespaces", "Namespace", false, true, &["ns"]),
        builtin(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            true,
            true,
            &["deploy"],
        ),
        builtin(
            "apps",
            "v1",
            "replicasets",
            "ReplicaSet",
            true,
            true,
            &["rs"],
        ),
        builtin(
            "apps",
            "v1",
            "statefulsets",
            "StatefulSet",
            true,
            true,
            &["sts"],
        ),
        builtin("batch", "v1", "cronjobs", "CronJob", true, true, &["cj"]),
        builtin("batch", "v1", "jobs", "Job", true, true, &[]),
        builtin(
            "coordination.k8s.io",
            "v1",
            "leases",
            "Lease",
            true,
            false,
            &[],
        ),
        builtin(
            "events.k8s.io",
            "v1",
            "events",
            "Event",
            true,
            false,
            &["ev"],
        ),
        builtin(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            true,
            &["crd", "crds"],
        ),
    ]
}

/// The resource a stored CRD object defines, or an error message if the CRD is
/// unusable (bad shape, no served version).
pub fn from_crd(crd_value: &Value) -> Result<ResourceType, String> {
    let crd: CustomResourceDefinition = serde_json::from_value(crd_value.clone())
        .map_err(|e| format!("CustomResourceDefinition does not parse: {e}"))?;
    let spec = &crd.spec;
    let mut versions: Vec<(bool, String, bool)> = spec
        .versions
        .iter()
        .filter(|v| v.served)
        .map(|v| {
            let status = v.subresources.as_ref().is_some_and(|s| s.status.is_some());
            (v.storage, v.name.clone(), status)
        })
        .collect();
    if versions.is_empty() {
        return Err("CustomResourceDefinition serves no version".into());
    }
    // Storage version first: it is the preferred one in discovery.
    versions.sort_by_key(|(storage, _, _)| !*storage);
    let status_subresource = versions.iter().any(|(_, _, status)| *status);
    let names = &spec.names;
    Ok(ResourceType {
        group: spec.group.clone(),
        versions: versions.into_iter().map(|(_, v, _)| v).collect(),
        plural: names.plural.clone(),
        singular: names
            .singular
            .clone()
            .unwrap_or_else(|| names.kind.to_lowercase()),
        kind: names.kind.clone(),
        namespaced: spec.scope == "Namespaced",
        status_subresource,
        short_names: names.short_names.clone().unwrap_or_default(),
        categories: names.categories.clone().unwrap_or_default(),
        crd: Some(Arc::new(crd)),
    })
}

/// The status the server gives every accepted CRD: names accepted, established.
pub fn crd_status(crd: &Value, now: &str) -> Value {
    let names = crd
        .pointer("/spec/names")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    let condition = |t: &str, reason: &str, message: &str| json!({"type": t, "status": "True", "lastTransitionTime": now, "reason": reason, "message": message});
    json!({
        "acceptedNames": names,
        "storedVersions": stored,
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
    })
}
