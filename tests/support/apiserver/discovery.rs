//! Discovery documents: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/{group}`,
//! `/apis/{group}/{version}`, and aggregated discovery (apidiscovery.k8s.io/v2)
//! on `/api` and `/apis` when the client's Accept header asks for it.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::resources::ResourceType;

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "37",
        "emulationMajor": "1",
        "emulationMinor": "37",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "36",
        "gitVersion": "v1.37.0-watchkeeper-test",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `/api` (legacy APIVersions).
pub fn core_versions(address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    })
}

/// Groups (except core) with their versions, preferred first.
fn groups<'a>(resources: impl Iterator<Item = &'a ResourceType>) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for rt in resources.filter(|r| !r.group.is_empty()) {
        let versions = out.entry(rt.group.clone()).or_default();
        for v in &rt.versions {
            if !versions.contains(v) {
                versions.push(v.clone());
            }
        }
    }
    out
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let list: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({
        "name": name,
        "versions": list,
        "preferredVersion": list.first().cloned().unwrap_or(Value::Null),
    })
}

/// `/apis` (APIGroupList).
pub fn group_list<'a>(resources: impl Iterator<Item = &'a ResourceType>) -> Value {
    let groups: Vec<Value> = groups(resources)
        .iter()
        .map(|(name, versions)| group_json(name, versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/{group}` (APIGroup), None if the group is unknown.
pub fn group<'a>(resources: impl Iterator<Item = &'a ResourceType>, name: &str) -> Option<Value> {
    let all = groups(resources);
    let versions = all.get(name)?;
    let mut g = group_json(name, versions);
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    Some(g)
}

/// `/api/v1` or `/apis/{group}/{version}` (APIResourceList), None if unknown.
pub fn resource_list<'a>(
    resources: impl Iterator<Item = &'a ResourceType>,
    group: &str,
    version: &str,
) -> Option<Value> {
    let mut list = Vec::new();
    for rt in resources.filter(|r| r.group == group && r.versions.iter().any(|v| v == version)) {
        list.push(json!({
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": VERBS,
            "shortNames": rt.short_names,
            "categories": rt.categories,
        }));
        if rt.status_subresource {
            list.push(json!({
                "name": format!("{}/status", rt.plural),
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": STATUS_VERBS,
            }));
        }
    }
    if list.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": list,
    }))
}

/// Aggregated discovery for the core group (`core == true`) or all named groups.
pub fn aggregated<'a>(
    resources: impl Iterator<Item = &'a ResourceType> + Clone,
    core: bool,
) -> Value {
    // Versions in the order resources list them (preferred first).
    let mut by_group: BTreeMap<String, Vec<(String, Vec<Value>)>> = BTreeMap::new();
    for rt in resources.filter(|r| r.group.is_empty() == core) {
        for version in &rt.versions {
            let gvk = json!({"group": rt.group, "version": version, "kind": rt.kind});
            let mut subresources = Vec::new();
            if rt.status_subresource {
                subresources.push(
                    json!({"subresource": "status", "responseKind": gvk, "verbs": STATUS_VERBS}),
                );
            }
            let versions = by_group.entry(rt.group.clone()).or_default();
            let index = match versions.iter().position(|(v, _)| v == version) {
                Some(i) => i,
                None => {
                    versions.push((version.clone(), Vec::new()));
                    versions.len() - 1
                }
            };
            versions[index].1.push(json!({
                "resource": rt.plural,
                "responseKind": gvk,
                "scope": if rt.namespaced { "Namespaced" } else { "Cluster" },
                "singularResource": rt.singular,
                "verbs": VERBS,
                "shortNames": rt.short_names,
                "categories": rt.categories,
                "subresources": subresources,
            }));
        }
    }
    let items: Vec<Value> = by_group
        .into_iter()
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .into_iter()
                .map(|(v, res)| json!({"version": v, "resources": res, "freshness": "Current"}))
                .collect();
            json!({"metadata": {"name": group}, "versions": versions})
        })
        .collect();
    json!({
        "apiVersion": "apidiscovery.k8s.io/v2",
        "kind": "APIGroupDiscoveryList",
        "metadata": {},
        "items": items,
    })
}
