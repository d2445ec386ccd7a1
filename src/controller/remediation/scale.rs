//! Scale a Deployment or StatefulSet.
//!
//! Writes `spec.replicas` with a JSON merge patch guarded by the resourceVersion read, which
//! every API server (including the tests' in-process one, which has no `/scale` subresource)
//! accepts. The previous count goes into the message so a person can scale back.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::{Done, Error, reference};
use crate::api::common::{WorkloadKind, WorkloadRef};
use crate::controller::context::FIELD_MANAGER;

/// Sets `workload`'s replicas to `replicas`.
pub async fn scale(
    client: &Client,
    namespace: &str,
    workload: &WorkloadRef,
    replicas: i32,
) -> Result<Done, Error> {
    let name = workload.name.as_str();
    let (kind, previous, uid, resource_version) = match workload.kind {
        WorkloadKind::Deployment => {
            let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
            let d = api
                .get(name)
                .await
                .map_err(|e| Error::api("get", "Deployment", namespace, name, e))?;
            let previous = d.spec.replicas;
            ("Deployment", previous, d.uid(), d.resource_version())
        }
        WorkloadKind::StatefulSet => {
            let api: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
            let s = api
                .get(name)
                .await
                .map_err(|e| Error::api("get", "StatefulSet", namespace, name, e))?;
            let previous = s.spec.replicas;
            ("StatefulSet", previous, s.uid(), s.resource_version())
        }
    };
    let target = reference("apps/v1", kind, namespace, name, uid);
    // Kubernetes defaults an absent replicas to 1.
    let previous = previous.unwrap_or(1);
    if previous == replicas {
        return Ok(Done {
            message: format!("{kind} {namespace}/{name} already has {replicas} replicas"),
            target,
        });
    }
    let patch = json!({
        "metadata": {"resourceVersion": resource_version},
        "spec": {"replicas": replicas},
    });
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    };
    let patch = Patch::Merge(&patch);
    let written = match workload.kind {
        WorkloadKind::Deployment => Api::<Deployment>::namespaced(client.clone(), namespace)
            .patch(name, &params, &patch)
            .await
            .map(|_| ()),
        WorkloadKind::StatefulSet => Api::<StatefulSet>::namespaced(client.clone(), namespace)
            .patch(name, &params, &patch)
            .await
            .map(|_| ()),
    };
    written.map_err(|e| Error::api("patch", kind, namespace, name, e))?;
    Ok(Done {
        message: format!("scaled {kind} {namespace}/{name} from {previous} to {replicas} replicas"),
        target,
    })
}
