//! The FailoverPlan controller against the in-process API server (tests/support/apiserver):
//! a manual token runs the steps (a local HTTP endpoint counting calls, a local
//! Cloudflare-compatible server, a scale of a Deployment) once each and ends in FailedOver
//! with measured durations; the same token again runs nothing; a controller stopped after the
//! first step and started again resumes and runs each step once; an automatic trigger inside
//! an open MaintenanceWindow is refused with its reason; a plan referencing a missing Secret
//! is InvalidSpec and runs nothing. Every wait polls an observable condition with a deadline.

mod controller_support;
mod support;

#[path = "support/cloudflare.rs"]
mod cloudflare;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DurationRound, TimeDelta, Utc};
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use cloudflare::{Cloudflare, DnsRecord};
use controller_support::*;
use support::apiserver::{ApiServer, Validator};
use watchkeeper::api::failover_plan::{FailoverPhase, FailoverPlanStatus, StepPhase};
use watchkeeper::api::{FailoverPlan, HealthMonitor, MaintenanceWindow};
use watchkeeper::controller::metrics::ReconcileResult;

const NS: &str = "ops";
const TOKEN: &str = "cf-token-123";
const OLD_IP: &str = "198.51.100.10";
const NEW_IP: &str = "203.0.113.20";

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

async fn cloudflare() -> Cloudflare {
    Cloudflare::start(
        TOKEN,
        vec![DnsRecord {
            id: "rec1".into(),
            zone_id: "zone1".into(),
            name: "app.example.com".into(),
            kind: "A".into(),
            content: OLD_IP.into(),
            ttl: 300,
            proxied: false,
        }],
    )
    .await
}

async fn create_secret(client: &Client) {
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("cloudflare".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "token".to_string(),
            ByteString(TOKEN.as_bytes().to_vec()),
        )])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &secret)
        .await
        .expect("Secret created");
}

async fn create_deployment(client: &Client) {
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web-west", "namespace": NS},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "web:1"}]},
            },
        },
    }))
    .expect("a valid Deployment");
    Api::<Deployment>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &deployment)
        .await
        .expect("Deployment created");
}

async fn replicas(client: &Client) -> Option<i32> {
    Api::<Deployment>::namespaced(client.clone(), NS)
        .get("web-west")
        .await
        .expect("Deployment readable")
        .spec
        .replicas
}

fn http_step(name: &str, target: &Target, extra: Value) -> Value {
    let mut step = json!({
        "name": name,
        "http": {"url": format!("http://{}/{name}", target.addr), "method": "POST"},
    });
    if let (Some(step), Value::Object(extra)) = (step.as_object_mut(), extra) {
        step.extend(extra);
    }
    step
}

fn dns_step(cf: &Cloudflare, secret: &str) -> Value {
    json!({
        "name": "dns",
        "dnsSwitch": {"cloudflare": {
            "zoneId": "zone1",
            "recordName": "app.example.com",
            "recordType": "A",
            "content": NEW_IP,
            "ttl": 60,
            "proxied": false,
            "apiTokenSecretRef": {"name": secret, "key": "token"},
            "apiUrl": cf.api_url,
        }},
    })
}

fn scale_step() -> Value {
    json!({
        "name": "scale-west",
        "kubernetesScale": {"workloadRef": {"kind": "Deployment", "name": "web-west"}, "replicas": 3},
    })
}

fn plan(name: &str, trigger: Value, steps: Vec<Value>, annotations: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "watchkeeper.dev/v1alpha1",
        "kind": "FailoverPlan",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": "shop"},
                     "annotations": annotations},
        "spec": {
            "primary": {"name": "us-east", "healthMonitorRef": {"name": "app-east"}},
            "secondary": {"name": "us-west", "healthMonitorRef": {"name": "app-west"}},
            "trigger": trigger,
            "steps": steps,
        },
    }))
    .expect("test object")
}

async fn status(client: &Client, name: &str) -> FailoverPlanStatus {
    Api::<FailoverPlan>::namespaced(client.clone(), NS)
        .get(name)
        .await
        .expect("plan readable")
        .status
        .unwrap_or_default()
}

async fn set_annotation(client: &Client, name: &str, key: &str, value: &str) {
    api_of::<FailoverPlan>(client, NS)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {key: value}}})),
        )
        .await
        .expect("annotation set");
}

async fn wait_phase(client: &Client, name: &str, phase: FailoverPhase) -> FailoverPlanStatus {
    eventually(&format!("{name} in phase {phase:?}"), || async {
        let s = status(client, name).await;
        (s.phase == phase).then_some(s)
    })
    .await
}

fn step_phases(status: &FailoverPlanStatus) -> Vec<StepPhase> {
    status
        .current_attempt
        .as_ref()
        .map(|a| a.steps.iter().map(|s| s.phase).collect())
        .unwrap_or_default()
}

fn trigger_allowed(status: &FailoverPlanStatus) -> Option<(String, String, String)> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == "TriggerAllowed")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_token_runs_each_step_once_and_the_same_token_runs_nothing() {
    let (_server, client) = start_server().await;
    let endpoint = Target::start().await;
    let cf = cloudflare().await;
    let hook = Target::start().await;
    create_secret(&client).await;
    create_deployment(&client).await;
    let running = spawn_controller(&client, "failover-a", Some(NS), None);
    let api = api_of::<FailoverPlan>(&client, NS);
    let mut object = plan(
        "regional",
        json!({"mode": "Manual"}),
        vec![
            http_step("deploy-west", &endpoint, json!({})),
            dns_step(&cf, "cloudflare"),
            scale_step(),
            json!({"name": "notify-ops", "notify": {"message": "production moved to us-west"}}),
        ],
        json!({}),
    );
    object.data["spec"]["alerting"] = json!({
        "channels": [{"name": "ops", "webhook": {"url": format!("http://{}/hook", hook.addr)}}],
    });
    api.create(&PostParams::default(), &object)
        .await
        .expect("plan created");
    wait_ready(&api, "regional", "True").await;
    assert_eq!(endpoint.requests(), 0, "nothing runs without a trigger");
    assert_eq!(
        status(&client, "regional").await.phase,
        FailoverPhase::Standby
    );

    set_annotation(&client, "regional", "watchkeeper.dev/failover", "t1").await;
    let done = wait_phase(&client, "regional", FailoverPhase::FailedOver).await;
    assert_eq!(endpoint.requests(), 1, "the HTTP step ran once");
    assert_eq!(cf.patches(), 1, "the DNS record was patched once");
    let record = cf.record("rec1").expect("record kept");
    assert_eq!((record.content.as_str(), record.ttl), (NEW_IP, 60));
    assert_eq!(replicas(&client).await, Some(3));
    assert_eq!(hook.requests(), 1, "the notice went out once");
    assert_eq!(step_phases(&done), vec![StepPhase::Succeeded; 4]);
    let attempt = done.current_attempt.as_ref().expect("attempt kept");
    for step in &attempt.steps {
        assert_eq!(step.attempts, 1, "{}", step.name);
        assert!(
            step.start_time.is_some() && step.end_time.is_some(),
            "{step:?}"
        );
    }
    assert_eq!(done.active_region.as_deref(), Some("us-west"));
    assert_eq!(done.last_trigger_token.as_deref(), Some("t1"));
    assert_eq!(done.attempts_started, 1);
    let rto = done.last_rto_seconds.expect("RTO measured");
    assert!((0.0..60.0).contains(&rto), "RTO {rto}");
    assert_eq!(done.history.len(), 1);
    assert_eq!(done.history[0].rto_seconds, Some(rto));

    let reasons: Vec<String> = eventually("step Events", || async {
        let reasons: Vec<String> = events_for(&client, NS, "regional")
            .await
            .into_iter()
            .filter_map(|e| e.reason)
            .collect();
        reasons
            .iter()
            .any(|r| r == "AttemptSucceeded")
            .then_some(reasons)
    })
    .await;
    for reason in ["AttemptStarted", "StepStarted", "StepSucceeded"] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "{reason} in {reasons:?}"
        );
    }
    let metrics = running.metrics.encode().expect("metrics encode");
    assert!(
        metrics.contains(
            r#"watchkeeper_failover_phase{namespace="ops",name="regional",phase="FailedOver"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"watchkeeper_failover_step_duration_seconds_count{namespace="ops",name="regional",step="dns"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("watchkeeper_failover_duration_seconds_count{"),
        "{metrics}"
    );

    // The same token again (with a label change, so the plan is reconciled): nothing runs.
    let before = running
        .metrics
        .reconcile_count("FailoverPlan", ReconcileResult::Accepted);
    api.patch(
        "regional",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"},
            "annotations": {"watchkeeper.dev/failover": "t1"}}})),
    )
    .await
    .expect("plan touched");
    eventually("a reconcile after the touch", || async {
        (running
            .metrics
            .reconcile_count("FailoverPlan", ReconcileResult::Accepted)
            > before)
            .then_some(())
    })
    .await;
    let again = status(&client, "regional").await;
    assert_eq!(endpoint.requests(), 1);
    assert_eq!(cf.patches(), 1);
    assert_eq!(hook.requests(), 1);
    assert_eq!(again.attempts_started, 1);
    assert_eq!(again.history.len(), 1);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_controller_resumes_and_runs_each_step_once() {
    let (_server, client) = start_server().await;
    let first = Target::start().await;
    let provider = Target::start().await;
    provider.set_code(503);
    let cf = cloudflare().await;
    create_secret(&client).await;
    create_deployment(&client).await;
    let running = spawn_controller(&client, "failover-a", Some(NS), None);
    api_of::<FailoverPlan>(&client, NS)
        .create(
            &PostParams::default(),
            &plan(
                "regional",
                json!({"mode": "Manual"}),
                vec![
                    http_step("deploy-west", &first, json!({})),
                    http_step(
                        "provider",
                        &provider,
                        json!({"retries": 10, "backoff": "1s"}),
                    ),
                    dns_step(&cf, "cloudflare"),
                    scale_step(),
                ],
                json!({"watchkeeper.dev/failover": "t1"}),
            ),
        )
        .await
        .expect("plan created");
    eventually("the first step Succeeded", || async {
        let s = status(&client, "regional").await;
        (step_phases(&s).first() == Some(&StepPhase::Succeeded)).then_some(())
    })
    .await;
    running.stop().await;
    let failed_tries = provider.requests();
    let mid = status(&client, "regional").await;
    assert_eq!(mid.phase, FailoverPhase::InProgress);
    assert_eq!(cf.patches(), 0, "stopped before the DNS step");
    provider.set_code(200);

    let running = spawn_controller(&client, "failover-b", Some(NS), None);
    let done = wait_phase(&client, "regional", FailoverPhase::FailedOver).await;
    assert_eq!(first.requests(), 1, "the finished step did not run again");
    assert_eq!(
        provider.requests(),
        failed_tries + 1,
        "one successful try after the restart"
    );
    assert_eq!(cf.patches(), 1);
    assert_eq!(replicas(&client).await, Some(3));
    assert_eq!(step_phases(&done), vec![StepPhase::Succeeded; 4]);
    assert_eq!(done.attempts_started, 1, "the same attempt resumed");
    assert!(done.last_rto_seconds.is_some());
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_trigger_is_refused_inside_a_maintenance_window() {
    let (_server, client) = start_server().await;
    let east = Target::start().await;
    east.set_code(500);
    let west = Target::start().await;
    let endpoint = Target::start().await;
    let running = spawn_controller(&client, "failover-a", Some(NS), None);
    let now = Utc::now()
        .duration_trunc(TimeDelta::seconds(1))
        .expect("whole seconds");
    let windows = api_of::<MaintenanceWindow>(&client, NS);
    let window: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "watchkeeper.dev/v1alpha1",
        "kind": "MaintenanceWindow",
        "metadata": {"name": "freeze", "namespace": NS},
        "spec": {
            "schedule": {"oneOff": {
                "start": (now - TimeDelta::seconds(60)).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "end": (now + TimeDelta::hours(1)).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            }},
            "selector": {"matchLabels": {"app": "shop"}},
            "effects": {"blockFailover": true},
        },
    }))
    .expect("test object");
    windows
        .create(&PostParams::default(), &window)
        .await
        .expect("window created");
    eventually("the window open", || async {
        let w = windows.get("freeze").await.ok()?;
        (w.data["status"]["open"] == true).then_some(())
    })
    .await;
    let monitors = api_of::<HealthMonitor>(&client, NS);
    for (name, target) in [("app-east", &east), ("app-west", &west)] {
        let monitor: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "watchkeeper.dev/v1alpha1",
            "kind": "HealthMonitor",
            "metadata": {"name": name, "namespace": NS},
            "spec": {
                "target": {"url": format!("http://{}/api/health", target.addr)},
                "interval": "1s",
                "timeout": "500ms",
                "failureThreshold": 2,
                "successThreshold": 1,
            },
        }))
        .expect("test object");
        monitors
            .create(&PostParams::default(), &monitor)
            .await
            .expect("monitor created");
    }
    api_of::<FailoverPlan>(&client, NS)
        .create(
            &PostParams::default(),
            &plan(
                "regional",
                json!({"mode": "Automatic", "after": "1s", "cooldown": "1m"}),
                vec![http_step("deploy-west", &endpoint, json!({}))],
                json!({}),
            ),
        )
        .await
        .expect("plan created");
    let (status_, reason, message) = eventually("TriggerAllowed=False", || async {
        let c = trigger_allowed(&status(&client, "regional").await)?;
        (c.0 == "False").then_some(c)
    })
    .await;
    assert_eq!(
        (status_.as_str(), reason.as_str()),
        ("False", "MaintenanceWindow")
    );
    assert!(message.contains("freeze"), "{message}");
    let s = status(&client, "regional").await;
    assert_eq!(s.phase, FailoverPhase::Standby);
    assert!(s.current_attempt.is_none());
    assert_eq!(endpoint.requests(), 0, "no step ran");
    let refused = events_for(&client, NS, "regional")
        .await
        .into_iter()
        .any(|e| e.reason.as_deref() == Some("MaintenanceWindow"));
    assert!(refused, "a refusal Event");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_is_invalid_spec_and_nothing_runs() {
    let (_server, client) = start_server().await;
    let endpoint = Target::start().await;
    let cf = cloudflare().await;
    let running = spawn_controller(&client, "failover-a", Some(NS), None);
    let api = api_of::<FailoverPlan>(&client, NS);
    api.create(
        &PostParams::default(),
        &plan(
            "regional",
            json!({"mode": "Manual"}),
            vec![
                http_step("deploy-west", &endpoint, json!({})),
                dns_step(&cf, "missing"),
            ],
            json!({"watchkeeper.dev/failover": "t1"}),
        ),
    )
    .await
    .expect("plan created");
    let (_, ready) = wait_ready(&api, "regional", "False").await;
    assert_eq!(ready.reason, "InvalidSpec");
    assert!(
        ready
            .message
            .contains("spec.steps[1].dnsSwitch.cloudflare.apiTokenSecretRef"),
        "{}",
        ready.message
    );
    let s = status(&client, "regional").await;
    assert!(s.current_attempt.is_none());
    assert_eq!(s.last_trigger_token, None, "the token is not consumed");
    assert_eq!(endpoint.requests(), 0);
    assert_eq!(cf.patches(), 0);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_waits_for_the_secondary_monitor_and_the_rto_ends_there() {
    let (_server, client) = start_server().await;
    let west = Target::start().await;
    west.set_code(500);
    let endpoint = Target::start().await;
    let running = spawn_controller(&client, "failover-a", Some(NS), None);
    let monitor: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "watchkeeper.dev/v1alpha1",
        "kind": "HealthMonitor",
        "metadata": {"name": "app-west", "namespace": NS},
        "spec": {
            "target": {"url": format!("http://{}/api/health", west.addr)},
            "interval": "1s",
            "timeout": "500ms",
            "failureThreshold": 2,
            "successThreshold": 1,
        },
    }))
    .expect("test object");
    api_of::<HealthMonitor>(&client, NS)
        .create(&PostParams::default(), &monitor)
        .await
        .expect("monitor created");
    api_of::<FailoverPlan>(&client, NS)
        .create(
            &PostParams::default(),
            &plan(
                "regional",
                json!({"mode": "Manual"}),
                vec![
                    json!({"name": "verify-west", "timeout": "2m", "verify": {"consecutiveHealthy": 2}}),
                    http_step("announce", &endpoint, json!({})),
                ],
                json!({"watchkeeper.dev/failover": "t1"}),
            ),
        )
        .await
        .expect("plan created");
    eventually("verify waiting on the unhealthy secondary", || async {
        let s = status(&client, "regional").await;
        (step_phases(&s).first() == Some(&StepPhase::Running)).then_some(())
    })
    .await;
    assert_eq!(
        endpoint.requests(),
        0,
        "nothing after verify runs before it passes"
    );
    west.set_code(200);
    let done = wait_phase(&client, "regional", FailoverPhase::FailedOver).await;
    let attempt = done.current_attempt.as_ref().expect("attempt kept");
    let verify = &attempt.steps[0];
    assert_eq!(verify.attempts, 1, "one try, waiting inside it");
    assert!(
        verify
            .message
            .as_deref()
            .is_some_and(|m| m.contains("Healthy")),
        "{verify:?}"
    );
    assert_eq!(endpoint.requests(), 1);
    let rto = done.last_rto_seconds.expect("RTO measured");
    let verified =
        watchkeeper::monitor::status::chrono_time(verify.end_time.as_ref().expect("end"));
    let started =
        watchkeeper::monitor::status::chrono_time(attempt.start_time.as_ref().expect("start"));
    let to_verify = (verified - started).num_milliseconds() as f64 / 1000.0;
    assert!(
        (rto - to_verify).abs() < 1.01,
        "RTO {rto} ends at the verify step ({to_verify})"
    );
    running.stop().await;
}
