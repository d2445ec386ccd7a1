//! Remediation actions against the in-process API server (tests/support/apiserver): rollback
//! to the previous ReplicaSet revision, ConfigMap key switch and revert, scaling, failover
//! requests, and the cooldown and attempt limits as seen from the objects.
//!
//! No Deployment controller runs in the test server, so the ReplicaSets of each revision are
//! created by the tests with the ownerReferences and revision annotations the Deployment
//! controller would have set.

mod controller_support;
mod support;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use k8s_openapi::jiff::{Timestamp, ToSpan};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::events::{Recorder, Reporter};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use controller_support::{api_of, events_for, install_crds};
use support::apiserver::ApiServer;
use watchkeeper::api::FailoverPlan;
use watchkeeper::api::common::{
    ConfigMapKeyRef, Duration, LocalObjectRef, WorkloadKind, WorkloadRef,
};
use watchkeeper::api::failover_plan::FAILOVER_ANNOTATION;
use watchkeeper::api::health_monitor::{
    FailoverAction, Remediation, RemediationRecord, RemediationResult, RemediationTrigger,
    RollbackAction, ScaleAction, SetConfigMapKeyAction, TriggerLevel,
};
use watchkeeper::controller::remediation::configmap::PREVIOUS_ANNOTATION;
use watchkeeper::controller::remediation::{
    Decision, Error, Execution, Remediator, Request, failover, policy,
};

const NS: &str = "ops";
const MONITOR: &str = "api-health";

async fn start() -> (ApiServer, Client) {
    let server = ApiServer::start().await;
    let client = server.client();
    (server, client)
}

fn remediation(name: &str, cooldown: &str, max_attempts: u32) -> Remediation {
    Remediation {
        name: name.into(),
        when: RemediationTrigger {
            threshold: Some("error-rate".into()),
            level: TriggerLevel::Critical,
            health: None,
        },
        rollback: None,
        scale: None,
        set_config_map_key: None,
        failover: None,
        cooldown: Duration::new(cooldown),
        max_attempts,
    }
}

fn rollback_of(deployment: &str) -> Remediation {
    Remediation {
        rollback: Some(RollbackAction {
            deployment: deployment.into(),
        }),
        ..remediation("undo-release", "15m", 1)
    }
}

fn switch_provider(revert_on_recovery: bool) -> Remediation {
    Remediation {
        set_config_map_key: Some(SetConfigMapKeyAction {
            config_map_key_ref: ConfigMapKeyRef {
                name: "app-config".into(),
                key: "AI_PROVIDER".into(),
            },
            value: "claude".into(),
            revert_on_recovery,
        }),
        ..remediation("switch-provider", "0s", 5)
    }
}

fn scale_of(kind: WorkloadKind, name: &str, replicas: i32) -> Remediation {
    Remediation {
        scale: Some(ScaleAction {
            workload: WorkloadRef {
                kind,
                name: name.into(),
            },
            replicas,
        }),
        ..remediation("scale-out", "10m", 2)
    }
}

fn request<'a>(
    remediation: &'a Remediation,
    history: &'a [RemediationRecord],
    incident_since: Timestamp,
    now: Timestamp,
) -> Request<'a> {
    Request {
        namespace: NS,
        monitor: MONITOR,
        monitor_ref: None,
        remediation,
        history,
        incident_since,
        now,
    }
}

/// Runs `remediation` once as the first attempt of a fresh incident.
async fn run_once(remediator: &Remediator, remediation: &Remediation) -> Execution {
    let now = Timestamp::now();
    remediator
        .execute(&request(remediation, &[], now, now))
        .await
}

fn pod_template(image: &str, hash: Option<&str>) -> Value {
    let mut labels = json!({"app": "web"});
    if let Some(hash) = hash {
        labels["pod-template-hash"] = json!(hash);
    }
    json!({
        "metadata": {"labels": labels, "annotations": {"release": image}},
        "spec": {"containers": [{
            "name": "web",
            "image": image,
            "env": [{"name": "MODE", "value": image}],
        }]},
    })
}

async fn create_deployment(
    client: &Client,
    name: &str,
    revision: &str,
    image: &str,
    paused: bool,
) -> Deployment {
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": NS,
            "annotations": {
                "deployment.kubernetes.io/revision": revision,
                "kubectl.kubernetes.io/last-applied-configuration": "{\"kind\":\"Deployment\"}",
                "team": "current",
            },
        },
        "spec": {
            "replicas": 3,
            "paused": paused,
            "revisionHistoryLimit": 7,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": pod_template(image, None),
        },
    }))
    .expect("a valid Deployment");
    Api::<Deployment>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &deployment)
        .await
        .expect("Deployment created")
}

/// A ReplicaSet of revision `revision`, controlled by the object with `owner_uid`.
async fn create_replica_set(
    client: &Client,
    name: &str,
    owner: &str,
    owner_uid: &str,
    revision: &str,
    image: &str,
) {
    let hash = name.rsplit('-').next().unwrap_or("0");
    let rs: ReplicaSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": NS,
            "annotations": {
                "deployment.kubernetes.io/revision": revision,
                "team": format!("team-of-{image}"),
            },
            "ownerReferences": [{
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": owner,
                "uid": owner_uid,
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web", "pod-template-hash": hash}},
            "template": pod_template(image, Some(hash)),
        },
    }))
    .expect("a valid ReplicaSet");
    Api::<ReplicaSet>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &rs)
        .await
        .expect("ReplicaSet created");
}

async fn create_config_map(client: &Client, data: Value) {
    let cm: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "app-config", "namespace": NS},
        "data": data,
    }))
    .expect("a valid ConfigMap");
    Api::<ConfigMap>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &cm)
        .await
        .expect("ConfigMap created");
}

async fn config_map(client: &Client) -> ConfigMap {
    Api::<ConfigMap>::namespaced(client.clone(), NS)
        .get("app-config")
        .await
        .expect("ConfigMap readable")
}

fn key_of(cm: &ConfigMap, key: &str) -> Option<String> {
    cm.data.as_ref().and_then(|d| d.get(key)).cloned()
}

async fn deployment_replicas(client: &Client, name: &str) -> Option<i32> {
    Api::<Deployment>::namespaced(client.clone(), NS)
        .get(name)
        .await
        .expect("Deployment readable")
        .spec
        .replicas
}

async fn set_deployment_replicas(client: &Client, name: &str, replicas: i32) {
    Api::<Deployment>::namespaced(client.clone(), NS)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": replicas}})),
        )
        .await
        .expect("replicas set by hand");
}

#[tokio::test]
async fn rollback_restores_the_previous_revisions_pod_template() {
    let (_server, client) = start().await;
    let deployment = create_deployment(&client, "web", "3", "web:3", false).await;
    let uid = deployment.uid().expect("uid");
    create_replica_set(&client, "web-1111", "web", &uid, "1", "web:1").await;
    create_replica_set(&client, "web-3333", "web", &uid, "3", "web:3").await;
    // Revision 2 belongs to another Deployment: it must not be chosen.
    create_replica_set(
        &client,
        "other-2222",
        "other",
        "some-other-uid",
        "2",
        "other:2",
    )
    .await;

    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "watchkeeper.dev/controller".into(),
            instance: Some("test".into()),
        },
    );
    let remediator = Remediator::new(client.clone()).with_recorder(recorder);
    let monitor = ObjectReference {
        api_version: Some("watchkeeper.dev/v1alpha1".into()),
        kind: Some("HealthMonitor".into()),
        namespace: Some(NS.into()),
        name: Some(MONITOR.into()),
        uid: Some("monitor-uid".into()),
        ..ObjectReference::default()
    };
    let undo = rollback_of("web");
    let now = Timestamp::now();
    let execution = remediator
        .execute(&Request {
            monitor_ref: Some(&monitor),
            ..request(&undo, &[], now, now)
        })
        .await;
    assert!(execution.error.is_none(), "{execution:?}");
    assert_eq!(execution.decision, Some(Decision::Run { attempt: 1 }));
    let record = &execution.record;
    assert_eq!(record.result, RemediationResult::Succeeded);
    assert_eq!(
        (record.name.as_str(), record.action.as_str()),
        ("undo-release", "rollback")
    );
    assert_eq!(record.attempt, 1);
    let message = record.message.as_deref().unwrap_or("");
    assert!(
        message.contains("revision 3 to revision 1") && message.contains("web-1111"),
        "{message}"
    );

    let after = Api::<Deployment>::namespaced(client.clone(), NS)
        .get("web")
        .await
        .expect("Deployment readable");
    assert_eq!(
        serde_json::to_value(&after.spec.template).expect("template serializes"),
        pod_template("web:1", None),
        "the Deployment runs revision 1's pod template, without pod-template-hash"
    );
    // Everything else in the spec is kept.
    assert_eq!(after.spec.replicas, Some(3));
    assert_eq!(after.spec.revision_history_limit, Some(7));
    assert_eq!(
        serde_json::to_value(&after.spec.strategy).expect("strategy serializes"),
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})
    );
    // Annotations as kubectl leaves them: bookkeeping kept, the rest from the ReplicaSet.
    let annotations = after.annotations();
    assert_eq!(
        annotations
            .get("deployment.kubernetes.io/revision")
            .map(String::as_str),
        Some("3")
    );
    assert_eq!(
        annotations
            .get("kubectl.kubernetes.io/last-applied-configuration")
            .map(String::as_str),
        Some("{\"kind\":\"Deployment\"}")
    );
    assert_eq!(
        annotations.get("team").map(String::as_str),
        Some("team-of-web:1")
    );

    // The attempt is an Event on the monitor, naming the Deployment as related object.
    let events = events_for(&client, NS, MONITOR).await;
    let event = events
        .iter()
        .find(|e| e.reason.as_deref() == Some("RemediationSucceeded"))
        .unwrap_or_else(|| panic!("a RemediationSucceeded Event, got {events:?}"));
    assert_eq!(event.type_.as_deref(), Some("Normal"));
    assert!(
        event
            .note
            .as_deref()
            .unwrap_or("")
            .contains("undo-release (rollback) attempt 1")
    );
    assert_eq!(
        event.related.as_ref().and_then(|r| r.name.as_deref()),
        Some("web")
    );
}

#[tokio::test]
async fn rollback_refuses_without_a_previous_revision_or_when_paused() {
    let (_server, client) = start().await;
    let remediator = Remediator::new(client.clone());

    let only = create_deployment(&client, "fresh", "1", "fresh:1", false).await;
    create_replica_set(
        &client,
        "fresh-1111",
        "fresh",
        &only.uid().expect("uid"),
        "1",
        "fresh:1",
    )
    .await;
    let execution = run_once(&remediator, &rollback_of("fresh")).await;
    assert_eq!(execution.record.result, RemediationResult::Failed);
    assert!(
        matches!(
            execution.error,
            Some(Error::NoPreviousRevision { current: 1, .. })
        ),
        "{execution:?}"
    );
    assert!(
        execution
            .record
            .message
            .as_deref()
            .unwrap_or("")
            .contains("no revision before revision 1")
    );
    assert_eq!(execution.event.reason, "RemediationFailed");

    let paused = create_deployment(&client, "held", "2", "held:2", true).await;
    let uid = paused.uid().expect("uid");
    create_replica_set(&client, "held-1111", "held", &uid, "1", "held:1").await;
    create_replica_set(&client, "held-2222", "held", &uid, "2", "held:2").await;
    let execution = run_once(&remediator, &rollback_of("held")).await;
    assert_eq!(execution.record.result, RemediationResult::Failed);
    assert!(
        matches!(execution.error, Some(Error::Paused { .. })),
        "{execution:?}"
    );
    let after = Api::<Deployment>::namespaced(client.clone(), NS)
        .get("held")
        .await
        .expect("Deployment readable");
    assert_eq!(
        serde_json::to_value(&after.spec.template).expect("template serializes"),
        pod_template("held:2", None),
        "a paused Deployment is left alone"
    );

    let execution = run_once(&remediator, &rollback_of("missing")).await;
    assert!(
        matches!(
            execution.error,
            Some(Error::NotFound {
                kind: "Deployment",
                ..
            })
        ),
        "{execution:?}"
    );
}

#[tokio::test]
async fn config_map_key_switches_provider_and_reverts() {
    let (_server, client) = start().await;
    create_config_map(
        &client,
        json!({"AI_PROVIDER": "openai", "APP_REGION": "us-east"}),
    )
    .await;
    let remediator = Remediator::new(client.clone());
    let switch = switch_provider(true);

    let first = run_once(&remediator, &switch).await;
    assert_eq!(
        first.record.result,
        RemediationResult::Succeeded,
        "{first:?}"
    );
    assert_eq!(first.record.action, "setConfigMapKey");
    let cm = config_map(&client).await;
    assert_eq!(key_of(&cm, "AI_PROVIDER").as_deref(), Some("claude"));
    assert_eq!(key_of(&cm, "APP_REGION").as_deref(), Some("us-east"));
    let recorded: Value = serde_json::from_str(
        cm.annotations()
            .get(PREVIOUS_ANNOTATION)
            .expect("previous value recorded"),
    )
    .expect("JSON");
    assert_eq!(recorded, json!({"AI_PROVIDER": "openai"}));

    // A second attempt leaves the value from before the incident as the one to restore.
    let history = [first.record.clone()];
    let since = first.record.time.0;
    let now = Timestamp::now();
    let second = remediator
        .execute(&request(&switch, &history, since, now))
        .await;
    assert_eq!(second.record.result, RemediationResult::Succeeded);
    assert_eq!(second.record.attempt, 2);
    let cm = config_map(&client).await;
    assert_eq!(
        cm.annotations()
            .get(PREVIOUS_ANNOTATION)
            .map(String::as_str),
        Some(r#"{"AI_PROVIDER":"openai"}"#)
    );

    let reverted = remediator
        .revert(&request(&switch, &history, now, now))
        .await;
    assert_eq!(
        reverted.record.result,
        RemediationResult::Reverted,
        "{reverted:?}"
    );
    assert_eq!(reverted.event.reason, "RemediationReverted");
    let cm = config_map(&client).await;
    assert_eq!(key_of(&cm, "AI_PROVIDER").as_deref(), Some("openai"));
    assert!(
        !cm.annotations().contains_key(PREVIOUS_ANNOTATION),
        "record forgotten after revert"
    );

    // Nothing recorded any more: a second revert refuses.
    let again = remediator
        .revert(&request(&switch, &history, now, now))
        .await;
    assert_eq!(again.record.result, RemediationResult::Failed);
    assert!(
        matches!(again.error, Some(Error::NothingToRevert { .. })),
        "{again:?}"
    );

    // Without revertOnRecovery nothing is reverted.
    let keep = switch_provider(false);
    let refused = remediator.revert(&request(&keep, &[], now, now)).await;
    assert!(
        matches!(refused.error, Some(Error::NotRevertible { .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn absent_key_is_removed_on_revert_and_a_human_change_wins() {
    let (_server, client) = start().await;
    create_config_map(&client, json!({"APP_REGION": "us-east"})).await;
    let remediator = Remediator::new(client.clone());
    let switch = switch_provider(true);
    let now = Timestamp::now();

    let set = run_once(&remediator, &switch).await;
    assert_eq!(set.record.result, RemediationResult::Succeeded, "{set:?}");
    assert_eq!(
        key_of(&config_map(&client).await, "AI_PROVIDER").as_deref(),
        Some("claude")
    );
    let reverted = remediator.revert(&request(&switch, &[], now, now)).await;
    assert_eq!(
        reverted.record.result,
        RemediationResult::Reverted,
        "{reverted:?}"
    );
    let cm = config_map(&client).await;
    assert_eq!(
        key_of(&cm, "AI_PROVIDER"),
        None,
        "the key was absent before"
    );
    assert_eq!(key_of(&cm, "APP_REGION").as_deref(), Some("us-east"));

    run_once(&remediator, &switch).await;
    Api::<ConfigMap>::namespaced(client.clone(), NS)
        .patch(
            "app-config",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"AI_PROVIDER": "gemini"}})),
        )
        .await
        .expect("changed by hand");
    let refused = remediator.revert(&request(&switch, &[], now, now)).await;
    assert!(
        matches!(refused.error, Some(Error::ChangedSince { .. })),
        "{refused:?}"
    );
    let cm = config_map(&client).await;
    assert_eq!(key_of(&cm, "AI_PROVIDER").as_deref(), Some("gemini"));
    assert!(!cm.annotations().contains_key(PREVIOUS_ANNOTATION));
}

#[tokio::test]
async fn scale_sets_replicas_of_deployments_and_stateful_sets() {
    let (_server, client) = start().await;
    create_deployment(&client, "web", "1", "web:1", false).await;
    let sts: StatefulSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "worker", "namespace": NS},
        "spec": {
            "replicas": 2,
            "serviceName": "worker",
            "selector": {"matchLabels": {"app": "worker"}},
            "template": {
                "metadata": {"labels": {"app": "worker"}},
                "spec": {"containers": [{"name": "worker", "image": "worker:1"}]},
            },
        },
    }))
    .expect("a valid StatefulSet");
    Api::<StatefulSet>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &sts)
        .await
        .expect("StatefulSet created");
    let remediator = Remediator::new(client.clone());

    let up = run_once(&remediator, &scale_of(WorkloadKind::Deployment, "web", 6)).await;
    assert_eq!(up.record.result, RemediationResult::Succeeded, "{up:?}");
    assert!(
        up.record
            .message
            .as_deref()
            .unwrap_or("")
            .contains("from 3 to 6")
    );
    assert_eq!(deployment_replicas(&client, "web").await, Some(6));

    let down = run_once(
        &remediator,
        &scale_of(WorkloadKind::StatefulSet, "worker", 0),
    )
    .await;
    assert_eq!(down.record.result, RemediationResult::Succeeded, "{down:?}");
    let replicas = Api::<StatefulSet>::namespaced(client.clone(), NS)
        .get("worker")
        .await
        .expect("StatefulSet readable")
        .spec
        .replicas;
    assert_eq!(replicas, Some(0));

    let missing = run_once(&remediator, &scale_of(WorkloadKind::StatefulSet, "nope", 1)).await;
    assert!(
        matches!(
            missing.error,
            Some(Error::NotFound {
                kind: "StatefulSet",
                ..
            })
        ),
        "{missing:?}"
    );
}

#[tokio::test]
async fn failover_request_annotates_the_plan() {
    let (_server, client) = start().await;
    install_crds(&client).await;
    let plans = api_of::<FailoverPlan>(&client, NS);
    let plan: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "watchkeeper.dev/v1alpha1",
        "kind": "FailoverPlan",
        "metadata": {"name": "region-failover", "namespace": NS},
        "spec": {},
    }))
    .expect("a FailoverPlan object");
    plans
        .create(&PostParams::default(), &plan)
        .await
        .expect("plan created");
    let remediator = Remediator::new(client.clone());
    let action = Remediation {
        failover: Some(FailoverAction {
            plan: LocalObjectRef {
                name: "region-failover".into(),
            },
        }),
        ..remediation("fail-over", "1h", 1)
    };
    let now = Timestamp::now();
    let execution = remediator.execute(&request(&action, &[], now, now)).await;
    assert_eq!(
        execution.record.result,
        RemediationResult::Succeeded,
        "{execution:?}"
    );
    let token = failover::token(MONITOR, "fail-over", now);
    let stored = plans.get("region-failover").await.expect("plan readable");
    assert_eq!(
        stored
            .annotations()
            .get(FAILOVER_ANNOTATION)
            .map(String::as_str),
        Some(token.as_str())
    );

    let missing = Remediation {
        failover: Some(FailoverAction {
            plan: LocalObjectRef {
                name: "absent".into(),
            },
        }),
        ..action.clone()
    };
    let execution = remediator.execute(&request(&missing, &[], now, now)).await;
    assert!(
        matches!(
            execution.error,
            Some(Error::NotFound {
                kind: "FailoverPlan",
                ..
            })
        ),
        "{execution:?}"
    );
}

#[tokio::test]
async fn cooldown_and_attempt_limit_hold_against_the_server() {
    let (server, client) = start().await;
    create_deployment(&client, "web", "1", "web:1", false).await;
    let remediator = Remediator::new(client.clone());
    // cooldown 10m, maxAttempts 2.
    let scale = scale_of(WorkloadKind::Deployment, "web", 6);
    let patches = || {
        server
            .requests()
            .iter()
            .filter(|r| r.resource == "deployments" && r.verb == "patch")
            .count()
    };
    let t0 = Timestamp::now();
    let mut history: Vec<RemediationRecord> = Vec::new();
    let step = |history: &mut Vec<RemediationRecord>, e: Execution| {
        policy::push_record(history, e.record.clone());
        e
    };

    let first = remediator.execute(&request(&scale, &history, t0, t0)).await;
    let first = step(&mut history, first);
    assert_eq!(
        first.record.result,
        RemediationResult::Succeeded,
        "{first:?}"
    );
    assert_eq!(deployment_replicas(&client, "web").await, Some(6));
    set_deployment_replicas(&client, "web", 3).await;
    let patches_before = patches();

    // Within the cooldown: nothing is done.
    let now = t0 + 5.minutes();
    let cooling = remediator
        .execute(&request(&scale, &history, t0, now))
        .await;
    let cooling = step(&mut history, cooling);
    assert_eq!(
        cooling.decision,
        Some(Decision::CoolingDown {
            until: t0 + 10.minutes()
        })
    );
    assert_eq!(cooling.record.result, RemediationResult::Skipped);
    assert_eq!(cooling.event.reason, "RemediationSkipped");
    assert_eq!(patches(), patches_before, "no write during the cooldown");
    assert_eq!(deployment_replicas(&client, "web").await, Some(3));

    // After the cooldown: the second and last attempt.
    let now = t0 + 11.minutes();
    let second = remediator
        .execute(&request(&scale, &history, t0, now))
        .await;
    let second = step(&mut history, second);
    assert_eq!(second.decision, Some(Decision::Run { attempt: 2 }));
    assert_eq!(deployment_replicas(&client, "web").await, Some(6));
    set_deployment_replicas(&client, "web", 3).await;
    let patches_before = patches();

    // maxAttempts reached: nothing more in this incident, however long it lasts.
    let now = t0 + 2.hours();
    let exhausted = remediator
        .execute(&request(&scale, &history, t0, now))
        .await;
    let exhausted = step(&mut history, exhausted);
    assert_eq!(
        exhausted.decision,
        Some(Decision::AttemptsExhausted { attempts: 2 })
    );
    assert_eq!(exhausted.record.result, RemediationResult::Skipped);
    assert_eq!(patches(), patches_before, "no write after maxAttempts");
    assert_eq!(deployment_replicas(&client, "web").await, Some(3));

    // A new incident (the trigger cleared and fired again) starts counting afresh.
    let since = t0 + 3.hours();
    let fresh = remediator
        .execute(&request(&scale, &history, since, since + 1.minutes()))
        .await;
    assert_eq!(fresh.decision, Some(Decision::Run { attempt: 1 }));
    assert_eq!(deployment_replicas(&client, "web").await, Some(6));
}
