//! Set one ConfigMap key (switch `AI_PROVIDER` from `openai` to `claude`), and put it back.
//!
//! The value the key had before the first change (or its absence) is kept on the ConfigMap
//! itself, in the annotation [`PREVIOUS_ANNOTATION`] (a JSON object: key → previous value, or
//! `null` when the key was absent). Keeping it there rather than in operator memory means a
//! restarted or newly elected operator can still revert, and a person can see what will be
//! restored. A repeated attempt does not overwrite the recorded value, so the revert restores
//! the value from before the incident, not the one the first attempt wrote.
//!
//! A revert only happens while the key still holds the value the remediation wrote: if someone
//! changed it since, their change wins and the revert is refused.
//!
//! Every write carries the resourceVersion read, so a concurrent change makes it fail instead
//! of being overwritten.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::{Map, Value, json};

use super::{Done, Error, reference};
use crate::api::health_monitor::SetConfigMapKeyAction;
use crate::controller::context::FIELD_MANAGER;

/// Annotation holding the values before remediation changed them (JSON: key → value or null).
pub const PREVIOUS_ANNOTATION: &str = "watchkeeper.dev/remediation-previous-values";
/// Values longer than this are not quoted in messages (status and Events).
const MAX_QUOTED: usize = 64;

/// Sets the action's key to its value, recording the previous value first.
pub async fn set(
    client: &Client,
    namespace: &str,
    action: &SetConfigMapKeyAction,
) -> Result<Done, Error> {
    let name = action.config_map_key_ref.name.as_str();
    let key = action.config_map_key_ref.key.as_str();
    let (config_map, mut previous) = read(client, namespace, name).await?;
    let target = reference("v1", "ConfigMap", namespace, name, config_map.uid());
    if config_map.immutable == Some(true) {
        return Err(Error::Immutable {
            namespace: namespace.to_string(),
            name: name.to_string(),
            key: key.to_string(),
        });
    }
    let current = config_map.data.as_ref().and_then(|d| d.get(key)).cloned();
    if current.as_deref() == Some(action.value.as_str()) {
        return Ok(Done {
            message: format!(
                "ConfigMap {namespace}/{name} key {key} already is {}",
                quote(&action.value)
            ),
            target,
        });
    }
    // Only the first change of an incident records the value to restore.
    previous
        .entry(key.to_string())
        .or_insert_with(|| current.clone().map_or(Value::Null, Value::String));
    let patch = json!({
        "metadata": {
            "resourceVersion": config_map.resource_version(),
            "annotations": {PREVIOUS_ANNOTATION: Value::Object(previous).to_string()},
        },
        "data": {key: action.value},
    });
    write(client, namespace, name, &patch).await?;
    Ok(Done {
        message: format!(
            "set ConfigMap {namespace}/{name} key {key} from {} to {}",
            current.as_deref().map_or("<absent>".to_string(), quote),
            quote(&action.value)
        ),
        target,
    })
}

/// Puts the action's key back to the value recorded before the first change (removing the key
/// if it was absent), and forgets the recorded value.
pub async fn revert(
    client: &Client,
    namespace: &str,
    action: &SetConfigMapKeyAction,
) -> Result<Done, Error> {
    let name = action.config_map_key_ref.name.as_str();
    let key = action.config_map_key_ref.key.as_str();
    let (config_map, mut previous) = read(client, namespace, name).await?;
    let target = reference("v1", "ConfigMap", namespace, name, config_map.uid());
    let Some(before) = previous.remove(key) else {
        return Err(Error::NothingToRevert {
            namespace: namespace.to_string(),
            name: name.to_string(),
            key: key.to_string(),
        });
    };
    let remaining = if previous.is_empty() {
        Value::Null
    } else {
        Value::String(Value::Object(previous).to_string())
    };
    let current = config_map.data.as_ref().and_then(|d| d.get(key)).cloned();
    if current.as_deref() != Some(action.value.as_str()) {
        // Someone else changed the key: keep their value, drop the stale record.
        let patch = json!({
            "metadata": {
                "resourceVersion": config_map.resource_version(),
                "annotations": {PREVIOUS_ANNOTATION: remaining},
            },
        });
        write(client, namespace, name, &patch).await?;
        return Err(Error::ChangedSince {
            namespace: namespace.to_string(),
            name: name.to_string(),
            key: key.to_string(),
        });
    }
    let restored = match &before {
        Value::String(text) => Value::String(text.clone()),
        _ => Value::Null,
    };
    let patch = json!({
        "metadata": {
            "resourceVersion": config_map.resource_version(),
            "annotations": {PREVIOUS_ANNOTATION: remaining},
        },
        "data": {key: restored},
    });
    write(client, namespace, name, &patch).await?;
    let message = match before {
        Value::String(text) => format!(
            "reverted ConfigMap {namespace}/{name} key {key} from {} to {}",
            quote(&action.value),
            quote(&text)
        ),
        _ => format!(
            "reverted ConfigMap {namespace}/{name}: removed key {key} (absent before remediation)"
        ),
    };
    Ok(Done { message, target })
}

/// The ConfigMap and its recorded previous values.
async fn read(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<(ConfigMap, Map<String, Value>), Error> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let config_map = api
        .get(name)
        .await
        .map_err(|e| Error::api("get", "ConfigMap", namespace, name, e))?;
    let previous = match config_map.annotations().get(PREVIOUS_ANNOTATION) {
        None => Map::new(),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            _ => {
                return Err(Error::Malformed {
                    kind: "ConfigMap",
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                    what: format!(
                        "annotation {PREVIOUS_ANNOTATION} is not a JSON object of key to previous value"
                    ),
                });
            }
        },
    };
    Ok((config_map, previous))
}

async fn write(client: &Client, namespace: &str, name: &str, patch: &Value) -> Result<(), Error> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    };
    api.patch(name, &params, &Patch::Merge(patch))
        .await
        .map_err(|e| Error::api("patch", "ConfigMap", namespace, name, e))?;
    Ok(())
}

/// A value quoted for a message, or its length when too long to quote.
fn quote(value: &str) -> String {
    if value.len() <= MAX_QUOTED {
        format!("{value:?}")
    } else {
        format!("<{} bytes>", value.len())
    }
}
