//! Roll a Deployment back to its previous revision, as `kubectl rollout undo` does.
//!
//! The Deployment controller keeps one ReplicaSet per pod template, controlled by the
//! Deployment (ownerReference with its uid) and numbered by the
//! `deployment.kubernetes.io/revision` annotation. Rolling back means: find the ReplicaSet
//! with the highest revision below the current one, and write its pod template (without the
//! `pod-template-hash` label the controller added) back into the Deployment. The Deployment
//! controller then rolls out that template and gives it the next revision number. Like
//! kubectl, the ReplicaSet's annotations replace the Deployment's, except the bookkeeping ones
//! the Deployment controller and `kubectl apply` own.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::{Map, Value, json};

use super::{Done, Error, reference};
use crate::controller::context::FIELD_MANAGER;

/// The revision annotation the Deployment controller puts on Deployments and ReplicaSets.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// The label the Deployment controller adds to each ReplicaSet's pod template.
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// Annotations of the Deployment that a rollback keeps (and never copies from the
/// ReplicaSet): owned by the Deployment controller or by `kubectl apply`.
const KEPT_ANNOTATIONS: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION_ANNOTATION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

/// One ReplicaSet revision of a Deployment.
#[derive(Clone, Debug)]
pub struct Revision {
    /// The `deployment.kubernetes.io/revision` number.
    pub number: i64,
    /// The ReplicaSet's name.
    pub replica_set: String,
    /// The ReplicaSet's pod template, with `pod-template-hash` removed.
    pub template: Value,
    /// The ReplicaSet's annotations.
    pub annotations: Map<String, Value>,
}

/// Rolls `name` back to the revision before its current one.
pub async fn rollback(client: &Client, namespace: &str, name: &str) -> Result<Done, Error> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let deployment = deployments
        .get(name)
        .await
        .map_err(|e| Error::api("get", "Deployment", namespace, name, e))?;
    if deployment.spec.paused == Some(true) {
        return Err(Error::Paused {
            namespace: namespace.to_string(),
            name: name.to_string(),
        });
    }
    let malformed = |what: &str| Error::Malformed {
        kind: "Deployment",
        namespace: namespace.to_string(),
        name: name.to_string(),
        what: what.to_string(),
    };
    let uid = deployment
        .uid()
        .ok_or_else(|| malformed("metadata.uid is missing"))?;
    let resource_version = deployment
        .resource_version()
        .ok_or_else(|| malformed("metadata.resourceVersion is missing"))?;

    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
    let owned = replica_sets
        .list(&ListParams::default())
        .await
        .map_err(|e| Error::api("list", "ReplicaSet", namespace, "*", e))?
        .items
        .into_iter()
        .filter(|rs| controlled_by(rs, &uid));
    let revisions: Vec<Revision> = owned.filter_map(revision_of).collect();
    let current = revision_number(deployment.annotations())
        .or_else(|| revisions.iter().map(|r| r.number).max())
        .unwrap_or(0);
    let previous = previous_revision(&revisions, current).ok_or(Error::NoPreviousRevision {
        namespace: namespace.to_string(),
        name: name.to_string(),
        current,
    })?;

    let current_template = serde_json::to_value(&deployment.spec.template)
        .map(strip_hash_label)
        .map_err(|e| malformed(&format!("spec.template does not serialize: {e}")))?;
    if current_template == previous.template {
        return Err(Error::AlreadyAtRevision {
            namespace: namespace.to_string(),
            name: name.to_string(),
            revision: previous.number,
        });
    }

    let annotations = rolled_back_annotations(deployment.annotations(), &previous.annotations);
    // A JSON patch guarded by the resourceVersion read: if the Deployment changed meanwhile
    // (another rollout), the patch fails instead of undoing something nobody looked at.
    let patch = json!([
        {"op": "test", "path": "/metadata/resourceVersion", "value": resource_version},
        {"op": "replace", "path": "/spec/template", "value": previous.template},
        {"op": "add", "path": "/metadata/annotations", "value": annotations},
    ]);
    let patch: json_patch::Patch = serde_json::from_value(patch)
        .map_err(|e| malformed(&format!("rollback patch does not build: {e}")))?;
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    };
    deployments
        .patch(name, &params, &Patch::Json::<()>(patch))
        .await
        .map_err(|e| Error::api("patch", "Deployment", namespace, name, e))?;
    Ok(Done {
        message: format!(
            "rolled Deployment {namespace}/{name} back from revision {current} to revision {} (ReplicaSet {})",
            previous.number, previous.replica_set
        ),
        target: reference("apps/v1", "Deployment", namespace, name, Some(uid)),
    })
}

/// Whether `rs` is controlled by the object with `uid`.
fn controlled_by(rs: &ReplicaSet, uid: &str) -> bool {
    rs.owner_references()
        .iter()
        .any(|o| o.uid == uid && o.controller == Some(true))
}

/// The revision number in an object's annotations.
fn revision_number(annotations: &std::collections::BTreeMap<String, String>) -> Option<i64> {
    annotations.get(REVISION_ANNOTATION)?.trim().parse().ok()
}

/// The revision a ReplicaSet holds; `None` without a revision annotation or template.
pub fn revision_of(rs: ReplicaSet) -> Option<Revision> {
    let number = revision_number(rs.annotations())?;
    let template = serde_json::to_value(rs.spec.template.as_ref()?).ok()?;
    let annotations = rs
        .annotations()
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    Some(Revision {
        number,
        replica_set: rs.name_any(),
        template: strip_hash_label(template),
        annotations,
    })
}

/// The highest revision strictly below `current`.
pub fn previous_revision(revisions: &[Revision], current: i64) -> Option<&Revision> {
    revisions
        .iter()
        .filter(|r| r.number < current)
        .max_by_key(|r| r.number)
}

/// A pod template without the `pod-template-hash` label (and without an emptied label map).
pub fn strip_hash_label(mut template: Value) -> Value {
    if let Some(labels) = template
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(POD_TEMPLATE_HASH_LABEL);
        if labels.is_empty()
            && let Some(metadata) = template
                .pointer_mut("/metadata")
                .and_then(Value::as_object_mut)
        {
            metadata.remove("labels");
        }
    }
    template
}

/// The Deployment's annotations after a rollback: its bookkeeping annotations, plus the
/// ReplicaSet's others (which the Deployment controller copied from the Deployment when that
/// revision was current).
pub fn rolled_back_annotations(
    deployment: &std::collections::BTreeMap<String, String>,
    replica_set: &Map<String, Value>,
) -> Map<String, Value> {
    let mut out: Map<String, Value> = KEPT_ANNOTATIONS
        .iter()
        .filter_map(|k| {
            deployment
                .get(*k)
                .map(|v| (k.to_string(), Value::String(v.clone())))
        })
        .collect();
    for (k, v) in replica_set {
        if !KEPT_ANNOTATIONS.contains(&k.as_str()) {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn revision(number: i64) -> Revision {
        Revision {
            number,
            replica_set: format!("web-{number}"),
            template: json!({}),
            annotations: Map::new(),
        }
    }

    #[test]
    fn previous_is_the_highest_below_current() {
        let revisions = [revision(1), revision(4), revision(2), revision(5)];
        assert_eq!(previous_revision(&revisions, 5).unwrap().number, 4);
        assert_eq!(previous_revision(&revisions, 3).unwrap().number, 2);
        assert!(previous_revision(&revisions, 1).is_none());
    }

    #[test]
    fn hash_label_is_stripped_others_kept() {
        let t = json!({"metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}}});
        assert_eq!(
            strip_hash_label(t),
            json!({"metadata": {"labels": {"app": "web"}}})
        );
        let only = json!({"metadata": {"labels": {"pod-template-hash": "abc"}}, "spec": {}});
        assert_eq!(strip_hash_label(only), json!({"metadata": {}, "spec": {}}));
    }

    #[test]
    fn annotations_keep_bookkeeping_and_take_the_rest_from_the_replica_set() {
        let deployment = BTreeMap::from([
            (REVISION_ANNOTATION.to_string(), "2".to_string()),
            ("team".to_string(), "new".to_string()),
        ]);
        let rs = Map::from_iter([
            (REVISION_ANNOTATION.to_string(), json!("1")),
            ("team".to_string(), json!("old")),
        ]);
        assert_eq!(
            Value::Object(rolled_back_annotations(&deployment, &rs)),
            json!({REVISION_ANNOTATION: "2", "team": "old"})
        );
    }
}
