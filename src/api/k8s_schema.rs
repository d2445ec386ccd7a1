//! Schemas of the Kubernetes types our kinds embed (CronJobSpec's and MaintenanceWindow's
//! `jobTemplate`, CronJobSpec's `resources`), adapted for a CRD:
//!
//! - nested descriptions are dropped: with them the CRD exceeds the 256 KiB a client-side
//!   `kubectl apply` can keep in its last-applied annotation (`kubectl explain
//!   cronjob.spec.jobTemplate` documents the same fields);
//! - resource quantities accept numbers as well as strings (`cpu: 1`, `memory: 1Gi`), as the
//!   built-in types do, instead of k8s-openapi's string-only schema.

use k8s_openapi::api::batch::v1::JobTemplateSpec;
use k8s_openapi::api::core::v1::ResourceRequirements;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value};

/// Schema of a `jobTemplate` field: Kubernetes' JobTemplateSpec, adapted.
pub(crate) fn job_template(generator: &mut SchemaGenerator) -> Schema {
    adapted::<JobTemplateSpec>(generator)
}

/// Schema of `spec.resources`: Kubernetes' ResourceRequirements, adapted.
pub(crate) fn resources(generator: &mut SchemaGenerator) -> Schema {
    adapted::<ResourceRequirements>(generator)
}

fn adapted<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = generator.subschema_for::<T>();
    if let Some(map) = schema.as_object_mut() {
        let mut value = Value::Object(std::mem::take(map));
        adapt(&mut value);
        if let Value::Object(adapted) = value {
            *map = adapted;
        }
    }
    schema
}

/// k8s-openapi describes `resource.Quantity` with this text and `type: string`.
const QUANTITY_DESCRIPTION: &str = "Quantity is a fixed-point representation of a number.";

/// Rewrites quantities as int-or-string and removes every `description` keyword below `value`
/// (leaving properties that happen to be named `description` alone).
fn adapt(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if is_quantity(map) {
                *map =
                    Map::from_iter([("x-kubernetes-int-or-string".to_string(), Value::Bool(true))]);
                return;
            }
            map.remove("description");
            for (key, child) in map.iter_mut() {
                if key == "properties" {
                    if let Value::Object(properties) = child {
                        properties.values_mut().for_each(adapt);
                    }
                } else {
                    adapt(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(adapt),
        _ => {}
    }
}

fn is_quantity(map: &Map<String, Value>) -> bool {
    map.get("type").and_then(Value::as_str) == Some("string")
        && map
            .get("description")
            .and_then(Value::as_str)
            .is_some_and(|d| d.starts_with(QUANTITY_DESCRIPTION))
}
