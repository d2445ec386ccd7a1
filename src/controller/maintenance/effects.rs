//! ConfigMap keys and workload replicas a window changes, with exact restore.
//!
//! Crash safety comes from the order the caller keeps: [`snapshot`] reads what is there, the
//! caller records it in `status.appliedEffects` (written to the API server), and only then
//! [`ensure`] changes the object. A restart between the two finds the record and only ensures
//! the value; a restart after the change finds the record and the value in place. The record
//! is dropped from status only after [`revert`] succeeded.
//!
//! A revert restores only while the object still holds what the window wrote: if a person
//! changed the key or the replicas during the window, their change is kept (and reported).
//! Every write is a JSON merge patch guarded by the resourceVersion read.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::error::Error;
use super::plan::{Wanted, k8s_time, workload_kind_name};
use crate::api::common::WorkloadKind;
use crate::api::maintenance_window::{AppliedEffect, EffectKind};
use crate::controller::context::FIELD_MANAGER;

/// Reads the current state of `wanted`'s target: the record to store before changing it.
pub async fn snapshot(client: &Client, ns: &str, wanted: &Wanted) -> Result<AppliedEffect, Error> {
    let now = Some(k8s_time(chrono::Utc::now()));
    match wanted {
        Wanted::ConfigMap { name, key, value } => {
            let map = get_config_map(client, ns, name).await?;
            let previous = map.data.as_ref().and_then(|d| d.get(key)).cloned();
            Ok(AppliedEffect {
                kind: EffectKind::ConfigMapSet,
                target_kind: "ConfigMap".into(),
                target_name: name.clone(),
                key: Some(key.clone()),
                previously_absent: previous.is_none(),
                previous_value: previous,
                value: Some(value.clone()),
                previous_replicas: None,
                replicas: None,
                previously_suspended: false,
                applied_time: now,
            })
        }
        Wanted::Scale {
            kind,
            name,
            replicas,
        } => {
            let (current, _) = get_replicas(client, ns, *kind, name).await?;
            Ok(AppliedEffect {
                kind: EffectKind::Scale,
                target_kind: workload_kind_name(*kind).into(),
                target_name: name.clone(),
                key: None,
                previous_value: None,
                previously_absent: false,
                value: None,
                previous_replicas: Some(current),
                replicas: Some(*replicas),
                previously_suspended: false,
                applied_time: now,
            })
        }
    }
}

/// Makes the target hold the wanted value (no write when it already does). Returns whether it
/// wrote.
pub async fn ensure(client: &Client, ns: &str, wanted: &Wanted) -> Result<bool, Error> {
    match wanted {
        Wanted::ConfigMap { name, key, value } => {
            let map = get_config_map(client, ns, name).await?;
            if map.immutable == Some(true) {
                return Err(Error::Immutable {
                    namespace: ns.into(),
                    name: name.clone(),
                    key: key.clone(),
                });
            }
            let current = map.data.as_ref().and_then(|d| d.get(key));
            if current == Some(value) {
                return Ok(false);
            }
            patch_config_map(client, ns, name, &map, json!({ key: value })).await?;
            Ok(true)
        }
        Wanted::Scale {
            kind,
            name,
            replicas,
        } => {
            let (current, version) = get_replicas(client, ns, *kind, name).await?;
            if current == *replicas {
                return Ok(false);
            }
            patch_replicas(client, ns, *kind, name, &version, *replicas).await?;
            Ok(true)
        }
    }
}

/// Restores what `record` saved. `Ok(message)` says what happened (restored, already as
/// before, kept a person's change, or the object is gone); the record can then be dropped.
pub async fn revert(client: &Client, ns: &str, record: &AppliedEffect) -> Result<String, Error> {
    let name = record.target_name.as_str();
    match record.kind {
        EffectKind::ConfigMapSet => {
            let key = record.key.clone().unwrap_or_default();
            let map = match get_config_map(client, ns, name).await {
                Err(Error::Missing { .. }) => {
                    return Ok(format!("ConfigMap {name} is gone; nothing to restore"));
                }
                other => other?,
            };
            let current = map.data.as_ref().and_then(|d| d.get(&key)).cloned();
            let restored = if record.previously_absent {
                None
            } else {
                record.previous_value.clone()
            };
            if current == restored {
                return Ok(format!("ConfigMap {name} key {key} already as before"));
            }
            if current != record.value {
                return Ok(format!(
                    "ConfigMap {name} key {key} was changed during the window; the change is kept"
                ));
            }
            let data = match &restored {
                Some(text) => json!({ key.as_str(): text }),
                None => json!({ key.as_str(): Value::Null }),
            };
            patch_config_map(client, ns, name, &map, data).await?;
            Ok(match restored {
                Some(_) => format!("ConfigMap {name} key {key} restored"),
                None => format!("ConfigMap {name} key {key} removed (absent before the window)"),
            })
        }
        EffectKind::Scale => {
            let kind = if record.target_kind == "StatefulSet" {
                WorkloadKind::StatefulSet
            } else {
                WorkloadKind::Deployment
            };
            let (current, version) = match get_replicas(client, ns, kind, name).await {
                Err(Error::Missing { .. }) => {
                    return Ok(format!(
                        "{} {name} is gone; nothing to restore",
                        record.target_kind
                    ));
                }
                other => other?,
            };
            let Some(previous) = record.previous_replicas else {
                return Ok(format!(
                    "{} {name}: no previous replicas recorded",
                    record.target_kind
                ));
            };
            if current == previous {
                return Ok(format!(
                    "{} {name} already has {previous} replicas",
                    record.target_kind
                ));
            }
            if Some(current) != record.replicas {
                return Ok(format!(
                    "{} {name} was scaled to {current} during the window; kept",
                    record.target_kind
                ));
            }
            patch_replicas(client, ns, kind, name, &version, previous).await?;
            Ok(format!(
                "{} {name} scaled back to {previous}",
                record.target_kind
            ))
        }
        // Selector-based effects are not applied by this module (the other kinds consult the
        // index); nothing to restore here.
        _ => Ok(String::new()),
    }
}

async fn get_config_map(client: &Client, ns: &str, name: &str) -> Result<ConfigMap, Error> {
    Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .map_err(|e| Error::api("get", "ConfigMap", ns, name, e))
}

async fn patch_config_map(
    client: &Client,
    ns: &str,
    name: &str,
    map: &ConfigMap,
    data: Value,
) -> Result<(), Error> {
    let patch = json!({
        "metadata": {"resourceVersion": map.resource_version()},
        "data": data,
    });
    Api::<ConfigMap>::namespaced(client.clone(), ns)
        .patch(name, &params(), &Patch::Merge(&patch))
        .await
        .map_err(|e| Error::api("patch", "ConfigMap", ns, name, e))?;
    Ok(())
}

/// Current replicas (absent counts as Kubernetes' default 1) and resourceVersion.
async fn get_replicas(
    client: &Client,
    ns: &str,
    kind: WorkloadKind,
    name: &str,
) -> Result<(i32, Option<String>), Error> {
    let label = workload_kind_name(kind);
    let (replicas, version) = match kind {
        WorkloadKind::Deployment => {
            let d = Api::<Deployment>::namespaced(client.clone(), ns)
                .get(name)
                .await
                .map_err(|e| Error::api("get", label, ns, name, e))?;
            (d.spec.replicas, d.resource_version())
        }
        WorkloadKind::StatefulSet => {
            let s = Api::<StatefulSet>::namespaced(client.clone(), ns)
                .get(name)
                .await
                .map_err(|e| Error::api("get", label, ns, name, e))?;
            (s.spec.replicas, s.resource_version())
        }
    };
    Ok((replicas.unwrap_or(1), version))
}

async fn patch_replicas(
    client: &Client,
    ns: &str,
    kind: WorkloadKind,
    name: &str,
    version: &Option<String>,
    replicas: i32,
) -> Result<(), Error> {
    let patch = json!({
        "metadata": {"resourceVersion": version},
        "spec": {"replicas": replicas},
    });
    let patch = Patch::Merge(&patch);
    let label = workload_kind_name(kind);
    let result = match kind {
        WorkloadKind::Deployment => Api::<Deployment>::namespaced(client.clone(), ns)
            .patch(name, &params(), &patch)
            .await
            .map(|_| ()),
        WorkloadKind::StatefulSet => Api::<StatefulSet>::namespaced(client.clone(), ns)
            .patch(name, &params(), &patch)
            .await
            .map(|_| ()),
    };
    result.map_err(|e| Error::api("patch", label, ns, name, e))
}

fn params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    }
}
