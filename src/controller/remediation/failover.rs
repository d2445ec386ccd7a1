//! Request a failover from a FailoverPlan by setting its `watchkeeper.dev/failover` annotation.
//!
//! The plan's own engine handles each new token at most once and applies its gates (approval,
//! backup freshness); this module only asks. The token names the monitor, the remediation and
//! the time, so the plan's status shows who asked and when, and a later request is a new token.

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;
use kube::{Client, ResourceExt};
use serde_json::json;

use super::{Done, Error, reference};
use crate::api::FailoverPlan;
use crate::api::failover_plan::FAILOVER_ANNOTATION;
use crate::controller::context::FIELD_MANAGER;

/// The token of one request: `healthmonitor/<monitor>/<remediation>@<unix seconds>`.
pub fn token(monitor: &str, remediation: &str, now: Timestamp) -> String {
    format!("healthmonitor/{monitor}/{remediation}@{}", now.as_second())
}

/// Sets the failover annotation of plan `name` to `token`.
pub async fn request(
    client: &Client,
    namespace: &str,
    name: &str,
    token: &str,
) -> Result<Done, Error> {
    // Untyped, so a plan whose spec no longer parses (the plan reports that itself) still
    // gets the request.
    let resource = ApiResource::erase::<FailoverPlan>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let patch = json!({"metadata": {"annotations": {FAILOVER_ANNOTATION: token}}});
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    };
    let plan = api
        .patch(name, &params, &Patch::Merge(&patch))
        .await
        .map_err(|e| Error::api("patch", "FailoverPlan", namespace, name, e))?;
    Ok(Done {
        message: format!("requested failover of FailoverPlan {namespace}/{name} (token {token})"),
        target: reference(
            "watchkeeper.dev/v1alpha1",
            "FailoverPlan",
            namespace,
            name,
            plan.uid(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_names_monitor_remediation_and_time() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        assert_eq!(
            token("api", "failover-eu", now),
            "healthmonitor/api/failover-eu@1800000000"
        );
        let later = Timestamp::from_second(1_800_000_060).unwrap();
        assert_ne!(
            token("api", "failover-eu", now),
            token("api", "failover-eu", later)
        );
    }
}
