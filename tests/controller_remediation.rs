//! Remediation triggered by the running controller against the in-process API server
//! (tests/support/apiserver): a local `/api/health` fails, the HealthMonitor's trigger fires,
//! and the controller rolls a Deployment back or switches a ConfigMap key, recording each
//! attempt in status and as an Event; cooldown and attempt limit hold, also across a restart.
//!
//! No Deployment controller runs in the test server, so the ReplicaSets of each revision are
//! created by the test with the ownerReferences and revision annotations the Deployment
//! controller would have set. Every wait polls an observable condition with a deadline.

mod controller_support;
mod support;

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use controller_support::*;
use support::apiserver::{ApiServer, Validator};
use watchkeeper::api::HealthMonitor;

const NS: &str = "ops";

async fn start_server() -> (ApiServer, Client) {
    let validator: Validator = Arc::new(|crd: &CustomResourceDefinition, object: &Value| {
        watchkeeper::check::schema::validate_against_crd(crd, object)
            .into_iter()
            .map(|error| error.to_string())
            .collect()
    });
    let server = ApiServer::builder().validator(validator).start().await;
    let client = server.client();
    install_crds(&client).await;
    (server, client)
}

fn pod_template(image: &str, hash: Option<&str>) -> Value {
    let mut labels = json!({"app": "web"});
    if let Some(hash) = hash {
        labels["pod-template-hash"] = json!(hash);
    }
    json!({
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "web", "image": image}]},
    })
}

/// Deployment `web` at revision 2 (`web:2`), with the ReplicaSets of revisions 1 and 2.
async fn deployment_with_two_revisions(client: &Client) {
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": NS,
            "annotations": {"deployment.kubernetes.io/revision": "2"},
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": pod_template("web:2", None),
        },
    }))
    .expect("a valid Deployment");
    let deployment = Api::<Deployment>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &deployment)
        .await
        .expect("Deployment created");
    let uid = deployment.uid().expect("uid");
    for (revision, hash) in [("1", "1111"), ("2", "2222")] {
        let rs: ReplicaSet = serde_json::from_value(json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": format!("web-{hash}"),
                "namespace": NS,
                "annotations": {"deployment.kubernetes.io/revision": revision},
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                    "uid": uid, "controller": true, "blockOwnerDeletion": true,
                }],
            },
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web", "pod-template-hash": hash}},
                "template": pod_template(&format!("web:{revision}"), Some(hash)),
            },
        }))
        .expect("a valid ReplicaSet");
        Api::<ReplicaSet>::namespaced(client.clone(), NS)
            .create(&PostParams::default(), &rs)
            .await
            .expect("ReplicaSet created");
    }
}

async fn deployment_template(client: &Client) -> Value {
    let deployment = Api::<Deployment>::namespaced(client.clone(), NS)
        .get("web")
        .await
        .expect("Deployment readable");
    serde_json::to_value(&deployment.spec.template).expect("template serializes")
}

async fn provider(client: &Client) -> Option<String> {
    Api::<ConfigMap>::namespaced(client.clone(), NS)
        .get("app-config")
        .await
        .expect("ConfigMap readable")
        .data
        .and_then(|d| d.get("AI_PROVIDER").cloned())
}

async fn set_provider(client: &Client, value: &str) {
    Api::<ConfigMap>::namespaced(client.clone(), NS)
        .patch(
            "app-config",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"AI_PROVIDER": value}})),
        )
        .await
        .expect("ConfigMap key set by hand");
}

fn monitor(name: &str, target: &Target, extra: Value) -> DynamicObject {
    let mut spec = json!({
        "target": {"url": format!("http://{}/api/health", target.addr)},
        "interval": "1s",
        "timeout": "500ms",
        "failureThreshold": 2,
        "successThreshold": 1,
    });
    if let (Some(spec), Value::Object(extra)) = (spec.as_object_mut(), extra) {
        spec.extend(extra);
    }
    serde_json::from_value(json!({
        "apiVersion": "watchkeeper.dev/v1alpha1",
        "kind": "HealthMonitor",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }))
    .expect("test object")
}

/// `status.remediations` of a monitor.
fn records(object: &DynamicObject) -> Vec<Value> {
    object.data["status"]["remediations"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Records that are attempts (the action ran).
fn attempts(records: &[Value]) -> Vec<&Value> {
    records
        .iter()
        .filter(|r| r["result"] == "Succeeded" || r["result"] == "Failed")
        .collect()
}

/// Waits until the monitor's records satisfy `wanted`.
async fn wait_records(
    api: &Api<DynamicObject>,
    name: &str,
    what: &str,
    wanted: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    eventually(what, || async {
        let object = api.get_opt(name).await.ok()??;
        let records = records(&object);
        wanted(&records).then_some(records)
    })
    .await
}

/// A `Skipped` record stamped at or after `from` whose message contains `reason`.
fn skipped_since(records: &[Value], from: chrono::DateTime<chrono::Utc>, reason: &str) -> bool {
    records.iter().any(|r| {
        r["result"] == "Skipped"
            && r["message"].as_str().unwrap_or("").contains(reason)
            && r["time"]
                .as_str()
                .and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok())
                .is_some_and(|t| t >= from)
    })
}

/// Waits for the next whole second and returns it. Status times are kept to the second, so
/// a record stamped at or after it was made after this call (by a controller started now).
async fn next_whole_second() -> chrono::DateTime<chrono::Utc> {
    let now = chrono::Utc::now().timestamp();
    eventually("the next second", || async {
        let second = chrono::Utc::now().timestamp();
        (second > now).then(|| chrono::DateTime::from_timestamp(second, 0))?
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_target_rolls_the_deployment_back_once_even_across_a_restart() {
    let (_server, client) = start_server().await;
    deployment_with_two_revisions(&client).await;
    let target = Target::start().await;
    target.set_code(503);
    let started = next_whole_second().await;
    let first = spawn_controller(&client, "first", None, None);
    let monitors = api_of::<HealthMonitor>(&client, NS);
    let object = monitor(
        "web-health",
        &target,
        json!({"remediations": [{
            "name": "undo-release",
            "when": {"health": "Down"},
            "rollback": {"deployment": "web"},
            // A short cooldown: only the attempt limit keeps a second rollback from running.
            "cooldown": "1s",
            "maxAttempts": 1,
        }]}),
    );
    monitors
        .create(&PostParams::default(), &object)
        .await
        .expect("create");

    let records = wait_records(&monitors, "web-health", "a rollback attempt", |r| {
        !attempts(r).is_empty()
    })
    .await;
    let attempt = attempts(&records)[0].clone();
    assert_eq!(attempt["result"], "Succeeded", "{records:?}");
    assert_eq!(attempt["action"], "rollback");
    assert_eq!(attempt["attempt"], 1);
    let message = attempt["message"].as_str().unwrap_or("");
    assert!(
        message.contains("revision 2 to revision 1") && message.contains("web-1111"),
        "{message}"
    );
    assert_eq!(
        deployment_template(&client).await,
        pod_template("web:1", None),
        "the Deployment runs revision 1's pod template"
    );
    let event = eventually("a RemediationSucceeded Event on the monitor", || async {
        events_for(&client, NS, "web-health")
            .await
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("RemediationSucceeded"))
    })
    .await;
    assert!(
        event
            .note
            .as_deref()
            .unwrap_or("")
            .contains("undo-release (rollback) attempt 1"),
        "{event:?}"
    );
    assert_eq!(
        event.related.as_ref().and_then(|r| r.name.as_deref()),
        Some("web")
    );

    // Still Down after the cooldown: the attempt limit refuses, recorded as Skipped.
    wait_records(
        &monitors,
        "web-health",
        "the attempt limit to refuse",
        |r| skipped_since(r, started, "maxAttempts"),
    )
    .await;

    // A restarted controller counts the same incident's attempt from status (its runtime
    // keeps the stored healthSince): it refuses again instead of rolling back a second time.
    first.stop().await;
    let restarted_at = next_whole_second().await;
    let second = spawn_controller(&client, "second", None, None);
    let records = wait_records(
        &monitors,
        "web-health",
        "the restarted controller to refuse",
        |r| skipped_since(r, restarted_at, "maxAttempts"),
    )
    .await;
    assert_eq!(
        attempts(&records).len(),
        1,
        "one attempt in the incident: {records:?}"
    );
    assert_eq!(
        deployment_template(&client).await,
        pod_template("web:1", None)
    );
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_critical_error_rate_switches_the_provider_and_the_cooldown_holds_across_a_restart() {
    let (_server, client) = start_server().await;
    let config_map: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "app-config", "namespace": NS},
        "data": {"AI_PROVIDER": "openai", "LOG_LEVEL": "info"},
    }))
    .expect("a valid ConfigMap");
    Api::<ConfigMap>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &config_map)
        .await
        .expect("ConfigMap created");
    let target = Target::start().await;
    let first = spawn_controller(&client, "first", None, None);
    let monitors = api_of::<HealthMonitor>(&client, NS);
    let object = monitor(
        "provider-health",
        &target,
        json!({
            "windows": ["1m"],
            "thresholds": [{
                "name": "errors", "metric": "ErrorRate", "window": "1m",
                "direction": "Above", "warning": 10, "critical": 20, "minSamples": 2,
            }],
            "remediations": [{
                "name": "switch-provider",
                "when": {"threshold": "errors", "level": "Critical"},
                "setConfigMapKey": {
                    "configMapKeyRef": {"name": "app-config", "key": "AI_PROVIDER"},
                    "value": "claude",
                },
                "cooldown": "1h",
                "maxAttempts": 3,
            }],
        }),
    );
    monitors
        .create(&PostParams::default(), &object)
        .await
        .expect("create");
    // Healthy first: nothing is done while the threshold is Ok.
    eventually("the monitor to be Healthy", || async {
        let object = monitors.get_opt("provider-health").await.ok()??;
        (object.data["status"]["health"] == "Healthy").then_some(())
    })
    .await;
    assert!(records(&monitors.get("provider-health").await.expect("get")).is_empty());
    assert_eq!(provider(&client).await.as_deref(), Some("openai"));

    target.set_code(503);
    let records = wait_records(&monitors, "provider-health", "the provider switch", |r| {
        !attempts(r).is_empty()
    })
    .await;
    let attempt = attempts(&records)[0].clone();
    assert_eq!(attempt["result"], "Succeeded", "{records:?}");
    assert_eq!(attempt["action"], "setConfigMapKey");
    assert_eq!(provider(&client).await.as_deref(), Some("claude"));
    let config = Api::<ConfigMap>::namespaced(client.clone(), NS)
        .get("app-config")
        .await
        .expect("ConfigMap readable");
    assert_eq!(
        config
            .data
            .as_ref()
            .and_then(|d| d.get("LOG_LEVEL"))
            .map(String::as_str),
        Some("info"),
        "other keys are kept"
    );

    // Someone switches back by hand while the threshold is still critical. The cooldown (1h)
    // refuses a second switch, in this process and in the next one.
    set_provider(&client, "openai").await;
    first.stop().await;
    let restarted_at = next_whole_second().await;
    let second = spawn_controller(&client, "second", None, None);
    let records = wait_records(
        &monitors,
        "provider-health",
        "the cooldown to refuse after the restart",
        |r| skipped_since(r, restarted_at, "cooling down"),
    )
    .await;
    assert_eq!(attempts(&records).len(), 1, "{records:?}");
    assert_eq!(
        provider(&client).await.as_deref(),
        Some("openai"),
        "not switched again within the cooldown"
    );
    let skipped = eventually("a RemediationSkipped Event", || async {
        events_for(&client, NS, "provider-health")
            .await
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("RemediationSkipped"))
    })
    .await;
    assert!(
        skipped
            .note
            .as_deref()
            .unwrap_or("")
            .contains("cooling down"),
        "{skipped:?}"
    );
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_reverts_a_provider_switch_marked_revert_on_recovery() {
    let (_server, client) = start_server().await;
    let config_map: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "app-config", "namespace": NS},
        "data": {"AI_PROVIDER": "openai"},
    }))
    .expect("a valid ConfigMap");
    Api::<ConfigMap>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &config_map)
        .await
        .expect("ConfigMap created");
    let target = Target::start().await;
    target.set_code(503);
    let controller = spawn_controller(&client, "solo", None, None);
    let monitors = api_of::<HealthMonitor>(&client, NS);
    let object = monitor(
        "switch-back",
        &target,
        json!({"remediations": [{
            "name": "use-claude",
            "when": {"health": "Down"},
            "setConfigMapKey": {
                "configMapKeyRef": {"name": "app-config", "key": "AI_PROVIDER"},
                "value": "claude",
                "revertOnRecovery": true,
            },
        }]}),
    );
    monitors
        .create(&PostParams::default(), &object)
        .await
        .expect("create");
    wait_records(&monitors, "switch-back", "the provider switch", |r| {
        attempts(r).iter().any(|a| a["result"] == "Succeeded")
    })
    .await;
    assert_eq!(provider(&client).await.as_deref(), Some("claude"));

    target.set_code(200);
    let records = wait_records(&monitors, "switch-back", "the revert", |r| {
        r.iter().any(|a| a["result"] == "Reverted")
    })
    .await;
    assert_eq!(
        provider(&client).await.as_deref(),
        Some("openai"),
        "{records:?}"
    );
    eventually("a RemediationReverted Event", || async {
        events_for(&client, NS, "switch-back")
            .await
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("RemediationReverted"))
    })
    .await;
    controller.stop().await;
}
