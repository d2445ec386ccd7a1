//! CronJobSpecs against the in-process API server (tests/support/apiserver) with the real
//! controller: the owned CronJob follows the spec (changes propagate, hand edits are set back,
//! deletion cascades), bad input creates nothing, run-now creates one Job per token across
//! retries and restarts, and — the test playing the Job controller — status, health, alerts and
//! metrics follow the runs.
//!
//! Every wait is a poll for an observable condition with a deadline, never a fixed sleep.

mod controller_support;
mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use controller_support::*;
use support::apiserver::{ApiError, ApiServer, Fault, schema_validator};
use watchkeeper::api::CronJobSpec;
use watchkeeper::api::cron_job_spec::RUN_NOW_ANNOTATION;
use watchkeeper::controller::cron_job::run_now;
use watchkeeper::controller::cron_job::runs::{JOB_NAME_LABEL, SCHEDULED_TIMESTAMP_ANNOTATION};

const NS: &str = "jobs";

async fn start_server() -> (ApiServer, Client) {
    let server = ApiServer::builder()
        .validator(schema_validator())
        .start()
        .await;
    let client = server.client();
    install_crds(&client).await;
    (server, client)
}

async fn create_secret(client: &Client, name: &str, key: &str) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": NS},
        "stringData": {key: "s3cr3t-value"}
    }))
    .expect("secret");
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("create Secret");
}

fn spec_object(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "watchkeeper.dev/v1alpha1",
        "kind": "CronJobSpec",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec
    }))
    .expect("test object")
}

fn trigger_spec() -> Value {
    json!({
        "schedule": "30 2 * * *",
        "timeZone": "Europe/Berlin",
        "concurrencyPolicy": "Replace",
        "startingDeadline": "30s",
        "activeDeadline": "90s",
        "successfulJobsHistoryLimit": 5,
        "failedJobsHistoryLimit": 2,
        "cronJobMetadata": {"labels": {"team": "growth"}, "annotations": {"cost-center": "42"}},
        "resources": {"limits": {"memory": "64Mi"}},
        "httpTrigger": {
            "url": "https://app.example.com/api/cron/web-crawl",
            "method": "POST",
            "bearerTokenSecretRef": {"name": "cron-secret", "key": "token"},
            "retries": 2
        }
    })
}

async fn cron_job_when(
    client: &Client,
    name: &str,
    what: &str,
    test: impl Fn(&CronJob) -> bool,
) -> CronJob {
    let api: Api<CronJob> = Api::namespaced(client.clone(), NS);
    eventually(what, || async {
        let cj = api.get_opt(name).await.ok()??;
        test(&cj).then_some(cj)
    })
    .await
}

fn trigger_container(cj: &CronJob) -> k8s_openapi::api::core::v1::Container {
    cj.spec
        .job_template
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| p.containers[0].clone())
        .expect("a container")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cron_job_follows_the_spec_is_set_back_and_goes_with_it() {
    let (_server, client) = start_server().await;
    let controller = spawn_controller(&client, "solo", None, None);
    create_secret(&client, "cron-secret", "token").await;
    let specs = api_of::<CronJobSpec>(&client, NS);
    let created = specs
        .create(
            &PostParams::default(),
            &spec_object("crawl", trigger_spec()),
        )
        .await
        .expect("create");

    // The CronJob carries every field of the spec.
    let cj = cron_job_when(&client, "crawl", "the owned CronJob", |_| true).await;
    let s = &cj.spec;
    assert_eq!(s.schedule, "30 2 * * *");
    assert_eq!(s.time_zone.as_deref(), Some("Europe/Berlin"));
    assert_eq!(s.concurrency_policy.as_deref(), Some("Replace"));
    assert_eq!(s.starting_deadline_seconds, Some(30));
    assert_eq!(s.successful_jobs_history_limit, Some(5));
    assert_eq!(s.failed_jobs_history_limit, Some(2));
    assert_eq!(s.suspend, Some(false));
    let job_spec = s.job_template.spec.as_ref().expect("job spec");
    assert_eq!(job_spec.active_deadline_seconds, Some(90));
    assert_eq!(job_spec.backoff_limit, Some(0));
    assert_eq!(cj.labels()["team"], "growth");
    assert_eq!(cj.annotations()["cost-center"], "42");
    let owner = &cj.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
        ("CronJobSpec", "crawl", created.uid().unwrap().as_str())
    );
    assert_eq!(owner.controller, Some(true));
    let container = trigger_container(&cj);
    let args = container.args.clone().unwrap_or_default().join(" ");
    assert!(
        args.contains("--url https://app.example.com/api/cron/web-crawl"),
        "{args}"
    );
    assert!(
        args.contains("--method POST") && args.contains("--retries 2"),
        "{args}"
    );
    assert!(!args.contains("s3cr3t"), "no secret in args: {args}");
    let env = container.env.clone().unwrap_or_default();
    let token = env
        .iter()
        .find(|e| e.name == "WATCHKEEPER_BEARER_TOKEN")
        .expect("token env");
    assert_eq!(token.value, None, "the token is only referenced");
    let secret_ref = token
        .value_from
        .as_ref()
        .and_then(|v| v.secret_key_ref.as_ref())
        .expect("secretKeyRef");
    assert_eq!(
        (secret_ref.name.as_str(), secret_ref.key.as_str()),
        ("cron-secret", "token")
    );
    assert_eq!(
        container
            .resources
            .as_ref()
            .and_then(|r| r.limits.as_ref())
            .map(|l| l["memory"].0.clone()),
        Some("64Mi".to_string())
    );
    let (object, _) = wait_ready(&specs, "crawl", "True").await;
    assert_eq!(
        object.data["status"]["cronJobRef"]["name"], "crawl",
        "status names the CronJob"
    );

    // A spec change propagates.
    specs
        .patch(
            "crawl",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"schedule": "*/15 * * * *", "suspend": true}})),
        )
        .await
        .expect("change the spec");
    cron_job_when(&client, "crawl", "the new schedule", |cj| {
        cj.spec.schedule == "*/15 * * * *" && cj.spec.suspend == Some(true)
    })
    .await;

    // A hand edit (another field manager, as kubectl edit) is set back.
    let cron_jobs: Api<CronJob> = Api::namespaced(client.clone(), NS);
    cron_jobs
        .patch(
            "crawl",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"schedule": "0 0 1 1 *", "suspend": false}})),
        )
        .await
        .expect("edit by hand");
    cron_job_when(&client, "crawl", "the hand edit to be set back", |cj| {
        cj.spec.schedule == "*/15 * * * *" && cj.spec.suspend == Some(true)
    })
    .await;

    // Deletion cascades: the CronJob and the Jobs it owns go with the CronJobSpec.
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    let cj = cron_jobs.get("crawl").await.expect("cron job");
    let job = run_now::build_job(&cj, "manual").expect("job from template");
    jobs.create(&PostParams::default(), &job)
        .await
        .expect("a Job of the CronJob");
    delete_and_expect_gone(&client, NS, "crawl").await;
    eventually("the CronJob and its Job to be collected", || async {
        let cj_gone = matches!(cron_jobs.get_opt("crawl").await, Ok(None));
        let jobs_gone = jobs
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .is_empty();
        (cj_gone && jobs_gone).then_some(())
    })
    .await;
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_invalid_spec_naming_the_field_and_creates_nothing() {
    let (server, client) = start_server().await;
    let controller = spawn_controller(&client, "solo", None, None);
    let specs = api_of::<CronJobSpec>(&client, NS);
    let template = |restart: &str| {
        json!({"spec": {"template": {"spec": {"restartPolicy": restart,
            "containers": [{"name": "c", "image": "busybox"}]}}}})
    };
    let cases = [
        (
            "bad-cron",
            json!({"schedule": "61 * * * *", "httpTrigger": {"url": "https://a.example/x"}}),
            "spec.schedule",
        ),
        (
            "bad-zone",
            json!({"schedule": "0 * * * *", "timeZone": "Mars/Olympus_Mons",
                   "httpTrigger": {"url": "https://a.example/x"}}),
            "spec.timeZone",
        ),
        (
            "no-secret",
            json!({"schedule": "0 * * * *", "httpTrigger": {"url": "https://a.example/x",
                   "bearerTokenSecretRef": {"name": "absent", "key": "token"}}}),
            "spec.httpTrigger.bearerTokenSecretRef",
        ),
        (
            "bad-pod",
            json!({"schedule": "0 * * * *", "jobTemplate": template("Always")}),
            "spec.jobTemplate.spec.template.spec.restartPolicy",
        ),
    ];
    for (name, spec, _) in &cases {
        specs
            .create(&PostParams::default(), &spec_object(name, spec.clone()))
            .await
            .unwrap_or_else(|e| panic!("the schema accepts {name}: {e}"));
    }
    for (name, _, field) in &cases {
        let (_, ready) = wait_ready(&specs, name, "False").await;
        assert_eq!(ready.reason, "InvalidSpec", "{name}");
        assert!(
            ready.message.contains(field),
            "{name}: the message names {field}: {}",
            ready.message
        );
    }
    assert!(
        server.objects("batch", "cronjobs").is_empty(),
        "nothing created"
    );
    assert!(
        server.objects("batch", "jobs").is_empty(),
        "nothing created"
    );

    // The missing Secret appears: Secrets are not watched, the recheck finds it.
    create_secret(&client, "absent", "token").await;
    wait_ready(&specs, "no-secret", "True").await;
    cron_job_when(
        &client,
        "no-secret",
        "the CronJob once the Secret exists",
        |_| true,
    )
    .await;
    assert_eq!(server.objects("batch", "cronjobs").len(), 1);
    controller.stop().await;
}

async fn run_now_jobs(client: &Client) -> BTreeMap<String, String> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    jobs.list(&ListParams::default())
        .await
        .expect("list jobs")
        .items
        .into_iter()
        .filter_map(|j| {
            let token = j.annotations().get(run_now::TOKEN_ANNOTATION)?.clone();
            Some((j.name_any(), token))
        })
        .collect()
}

async fn annotate(specs: &Api<DynamicObject>, name: &str, token: &str, touch: &str) {
    // The same token applied again, with a label change so the controller surely reconciles.
    specs
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {
                "annotations": {RUN_NOW_ANNOTATION: token},
                "labels": {"touch": touch}
            }})),
        )
        .await
        .expect("annotate");
}

async fn wait_token(specs: &Api<DynamicObject>, name: &str, token: &str) {
    eventually(&format!("lastRunNowToken {token}"), || async {
        let object = specs.get_opt(name).await.ok()??;
        (object.data["status"]["lastRunNowToken"] == token).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_now_creates_one_job_per_token_across_retries_and_restarts() {
    let (server, client) = start_server().await;
    create_secret(&client, "cron-secret", "token").await;
    let specs = api_of::<CronJobSpec>(&client, NS);
    specs
        .create(
            &PostParams::default(),
            &spec_object("crawl", trigger_spec()),
        )
        .await
        .expect("create");
    let first = spawn_controller(&client, "first", None, None);
    wait_ready(&specs, "crawl", "True").await;

    // The status write after the Job's creation fails once: the retry finds the Job (409) and
    // creates no second one.
    server.inject_fault(
        Fault::new(1, ApiError::new(500, "InternalError", "injected"))
            .verb("patch")
            .resource("cronjobspecs")
            .subresource("status"),
    );
    annotate(&specs, "crawl", "ticket-1", "a").await;
    wait_token(&specs, "crawl", "ticket-1").await;
    annotate(&specs, "crawl", "ticket-1", "b").await;
    eventually("the second application to be reconciled", || async {
        let object = specs.get_opt("crawl").await.ok()??;
        (object.labels().get("touch").map(String::as_str) == Some("b")).then_some(())
    })
    .await;

    // A restart in between: the new process creates nothing for the same token.
    first.stop().await;
    let second = spawn_controller(&client, "second", None, None);
    annotate(&specs, "crawl", "ticket-1", "c").await;
    wait_ready(&specs, "crawl", "True").await;
    // A new token after that is a new Job: proof the restarted controller acts on run-now.
    annotate(&specs, "crawl", "ticket-2", "d").await;
    wait_token(&specs, "crawl", "ticket-2").await;
    let jobs = run_now_jobs(&client).await;
    assert_eq!(
        jobs,
        BTreeMap::from([
            (
                run_now::job_name("crawl", "ticket-1"),
                "ticket-1".to_string()
            ),
            (
                run_now::job_name("crawl", "ticket-2"),
                "ticket-2".to_string()
            ),
        ]),
        "one Job per distinct token"
    );
    assert!(
        server.request_count("create", "jobs") >= 3,
        "the retry after the failed status write tried ticket-1 again (answered 409)"
    );
    second.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Monitoring: the test plays the Job controller.

/// A local Alertmanager (API v2) collecting every alert posted to it.
async fn alertmanager() -> (String, Arc<Mutex<Vec<Value>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/api/v2/alerts",
        axum::routing::post(move |body: String| {
            let sink = sink.clone();
            async move {
                if let Ok(Value::Array(alerts)) = serde_json::from_str::<Value>(&body) {
                    sink.lock().expect("lock").extend(alerts);
                }
                "{}"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), received)
}

/// Alerts named `alertname` received so far, as (firing?, startsAt) pairs in arrival order.
fn received_alerts(received: &Mutex<Vec<Value>>, alertname: &str) -> Vec<(bool, String)> {
    let now = chrono::Utc::now();
    received
        .lock()
        .expect("lock")
        .iter()
        .filter(|a| a["labels"]["alertname"] == alertname)
        .map(|a| {
            let ends = a["endsAt"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&chrono::Utc));
            let firing = ends.is_some_and(|t| t > now);
            (
                firing,
                a["startsAt"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Creates a scheduled run of `cron_job` (as the CronJob controller would: owned by it, with
/// the scheduled-timestamp annotation) and finishes it as the Job controller would; a failed
/// run gets a Pod whose trigger container left `message` as its termination message.
async fn finished_run(
    client: &Client,
    cron_job: &CronJob,
    job_name: &str,
    due: chrono::DateTime<chrono::Utc>,
    finished: chrono::DateTime<chrono::Utc>,
    succeeded: bool,
    message: Option<&str>,
) {
    let mut job = run_now::build_job(cron_job, "unused").expect("job");
    job.metadata.name = Some(job_name.to_string());
    job.metadata.annotations = Some(BTreeMap::from([(
        SCHEDULED_TIMESTAMP_ANNOTATION.to_string(),
        rfc3339(due),
    )]));
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    jobs.create(&PostParams::default(), &job)
        .await
        .expect("create Job");
    if let Some(message) = message {
        let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": format!("{job_name}-pod"), "namespace": NS,
                "labels": {JOB_NAME_LABEL: job_name}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "trigger", "image": "x"}]}
        }))
        .expect("pod");
        pods.create(&PostParams::default(), &pod)
            .await
            .expect("create Pod");
        pods.patch_status(
            &format!("{job_name}-pod"),
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Failed", "containerStatuses": [{
                "name": "trigger", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 3, "message": message}}}]}})),
        )
        .await
        .expect("pod status");
    }
    // Kubernetes times have whole seconds: runs finishing in distinct seconds are distinct.
    let now = finished;
    let (type_, extra) = if succeeded {
        (
            "Complete",
            json!({"completionTime": rfc3339(now), "succeeded": 1}),
        )
    } else {
        ("Failed", json!({"failed": 1}))
    };
    let mut status = json!({
        "startTime": rfc3339(now - chrono::TimeDelta::seconds(2)),
        "conditions": [{"type": type_, "status": "True", "lastTransitionTime": rfc3339(now),
            "reason": if succeeded { "Completed" } else { "BackoffLimitExceeded" },
            "message": if succeeded { "" } else { "Job has reached the specified backoff limit" }}]
    });
    if let (Some(status), Some(extra)) = (status.as_object_mut(), extra.as_object()) {
        status.extend(extra.clone());
    }
    jobs.patch_status(
        job_name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .expect("job status");
}

async fn status_when(
    specs: &Api<DynamicObject>,
    name: &str,
    what: &str,
    test: impl Fn(&Value) -> bool,
) -> Value {
    eventually(what, || async {
        let object = specs.get_opt(name).await.ok()??;
        let status = object.data.get("status")?.clone();
        test(&status).then_some(status)
    })
    .await
}

fn condition<'a>(status: &'a Value, type_: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_health_and_alerts_follow_successes_failures_and_recovery() {
    let (_server, client) = start_server().await;
    let (alertmanager_url, received) = alertmanager().await;
    create_secret(&client, "cron-secret", "token").await;
    let mut spec = trigger_spec();
    // Yearly: no due time comes up during the test, so only runs move health.
    spec["schedule"] = json!("0 0 1 1 *");
    spec["monitoring"] = json!({
        "failureThreshold": 2,
        "alerting": {"channels": [{"name": "am", "alertmanager": {"url": alertmanager_url}}]}
    });
    let specs = api_of::<CronJobSpec>(&client, NS);
    specs
        .create(&PostParams::default(), &spec_object("crawl", spec))
        .await
        .expect("create");
    let controller = spawn_controller(&client, "first", None, None);
    let status = status_when(&specs, "crawl", "status with nextRun and health", |s| {
        s["nextRun"].is_string() && s["health"] == "Unknown"
    })
    .await;
    assert_eq!(status["consecutiveFailures"], 0);
    assert!(
        status["nextRun"]
            .as_str()
            .is_some_and(|t| t.contains("-12-31T23:00:00") || t.contains("-01-01T")),
        "next run is New Year in Berlin: {}",
        status["nextRun"]
    );
    let cj = cron_job_when(&client, "crawl", "the CronJob", |_| true).await;
    let due = chrono::Utc::now() - chrono::TimeDelta::minutes(10);

    // Success.
    finished_run(
        &client,
        &cj,
        "crawl-1",
        due,
        due + chrono::TimeDelta::minutes(1),
        true,
        None,
    )
    .await;
    let status = status_when(&specs, "crawl", "a success", |s| {
        s["lastRun"]["jobName"] == "crawl-1" && s["lastRun"]["result"] != "Running"
    })
    .await;
    assert_eq!(status["health"], "Healthy");
    assert_eq!(status["lastRun"]["result"], "Succeeded");
    assert_eq!(status["lastRun"]["trigger"], "Schedule");
    assert!(status["lastSuccessfulTime"].is_string());
    assert!(status["lastFailureTime"].is_null());
    assert_eq!(
        status["lastScheduleTime"].as_str().map(|t| &t[..16]),
        Some(&rfc3339(due)[..16])
    );
    assert_eq!(
        condition(&status, "Healthy").map(|c| c["status"].clone()),
        Some(json!("True"))
    );

    // One failure: below the threshold of 2; the agent's result is reported.
    let report = r#"{"outcome":"unexpectedStatus","statusCode":503,"latencyMs":12,"attempts":3,"error":"expected 2xx"}"#;
    finished_run(
        &client,
        &cj,
        "crawl-2",
        due,
        due + chrono::TimeDelta::minutes(2),
        false,
        Some(report),
    )
    .await;
    let status = status_when(&specs, "crawl", "a failure", |s| {
        s["lastRun"]["jobName"] == "crawl-2" && s["lastRun"]["result"] != "Running"
    })
    .await;
    assert_eq!(status["consecutiveFailures"], 1);
    assert_eq!(status["health"], "Healthy");
    assert_eq!(status["lastRun"]["result"], "Failed");
    assert_eq!(status["lastRun"]["statusCode"], 503);
    assert!(
        status["lastRun"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("HTTP 503") && m.contains("3 attempts")),
        "{}",
        status["lastRun"]
    );
    assert!(status["lastFailureTime"].is_string());
    assert!(received_alerts(&received, "job/failing").is_empty());

    // The second consecutive failure: Failing, and the alert reaches Alertmanager.
    finished_run(
        &client,
        &cj,
        "crawl-3",
        due,
        due + chrono::TimeDelta::minutes(3),
        false,
        None,
    )
    .await;
    let status = status_when(&specs, "crawl", "Failing", |s| s["health"] == "Failing").await;
    assert_eq!(status["consecutiveFailures"], 2);
    assert_eq!(
        status["lastRun"]["message"],
        "BackoffLimitExceeded: Job has reached the specified backoff limit"
    );
    let healthy = condition(&status, "Healthy").expect("Healthy condition");
    assert_eq!(
        (healthy["status"].clone(), healthy["reason"].clone()),
        (json!("False"), json!("ConsecutiveFailures"))
    );
    eventually("the Failing alert at Alertmanager", || async {
        received_alerts(&received, "job/failing")
            .iter()
            .any(|(firing, _)| *firing)
            .then_some(())
    })
    .await;
    let status = status_when(&specs, "crawl", "the open alert in status", |s| {
        s["openAlerts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["key"] == "job/failing"))
    })
    .await;
    assert_eq!(status["openAlerts"][0]["severity"], "P2");

    // Metrics: runs by result and the last success time.
    let metrics = controller.metrics.encode().expect("metrics");
    assert!(
        metrics.contains(
            r#"watchkeeper_job_runs_total{namespace="jobs",name="crawl",result="failed"} 2"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"watchkeeper_job_runs_total{namespace="jobs",name="crawl",result="succeeded"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("watchkeeper_job_last_success_timestamp_seconds{"),
        "{metrics}"
    );

    // A restart keeps the count and sends the open alert nowhere again.
    controller.stop().await;
    let sent_before = received_alerts(&received, "job/failing").len();
    let controller = spawn_controller(&client, "second", None, None);
    specs
        .patch(
            "crawl",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touch": "restart"}}})),
        )
        .await
        .expect("touch");
    eventually("the restarted controller to reconcile", || async {
        (controller.metrics.total_reconciles() > 0).then_some(())
    })
    .await;
    let status = status_when(&specs, "crawl", "status after restart", |s| {
        s["health"] == "Failing"
    })
    .await;
    assert_eq!(
        status["consecutiveFailures"], 2,
        "counts survive the restart"
    );
    assert_eq!(
        received_alerts(&received, "job/failing").len(),
        sent_before,
        "the restarted controller sends the open alert nowhere again"
    );

    // Recovery: a success resets the streak and resolves the alert.
    finished_run(
        &client,
        &cj,
        "crawl-4",
        due,
        due + chrono::TimeDelta::minutes(4),
        true,
        None,
    )
    .await;
    let status = status_when(&specs, "crawl", "recovery", |s| s["health"] == "Healthy").await;
    assert_eq!(status["consecutiveFailures"], 0);
    eventually("the resolved alert at Alertmanager", || async {
        received_alerts(&received, "job/failing")
            .last()
            .is_some_and(|(firing, _)| !firing)
            .then_some(())
    })
    .await;
    status_when(&specs, "crawl", "no open alert", |s| {
        s["openAlerts"].as_array().is_none_or(Vec::is_empty)
    })
    .await;
    controller.stop().await;
}

/// Polls `probe` for up to `limit` (for waits that depend on the wall clock passing a due time,
/// longer than [`TIMEOUT`]).
async fn within<T, F, Fut>(limit: std::time::Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_and_missed_are_seen_without_events_and_recover() {
    let (_server, client) = start_server().await;
    let (alertmanager_url, received) = alertmanager().await;
    create_secret(&client, "cron-secret", "token").await;
    let mut spec = trigger_spec();
    spec["schedule"] = json!("* * * * *");
    spec["timeZone"] = json!("UTC");
    spec["monitoring"] = json!({
        "lateAfter": "1s",
        "deadMansSwitch": "61s",
        "alerting": {"channels": [{"name": "am", "alertmanager": {"url": alertmanager_url}}]}
    });
    let specs = api_of::<CronJobSpec>(&client, NS);
    specs
        .create(&PostParams::default(), &spec_object("pulse", spec))
        .await
        .expect("create");
    let controller = spawn_controller(&client, "solo", None, None);
    status_when(&specs, "pulse", "a first verdict", |s| {
        s["health"] == "Unknown"
    })
    .await;
    let cj = cron_job_when(&client, "pulse", "the CronJob", |_| true).await;

    // Nobody plays the CronJob controller now: the next minute passes without a run. Nothing
    // changes in the cluster, so only the controller's own requeue can notice.
    let limit = std::time::Duration::from_secs(100);
    within(limit, "Late, then Missed (no success for 61s)", || async {
        let object = specs.get_opt("pulse").await.ok()??;
        (object.data["status"]["health"] == "Missed").then_some(())
    })
    .await;
    let status = specs.get("pulse").await.expect("get").data["status"].clone();
    let keys: Vec<&str> = status["openAlerts"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["key"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        keys.contains(&"job/missed") && keys.contains(&"job/late"),
        "late and missed are both open: {keys:?}"
    );
    assert_eq!(
        condition(&status, "Healthy").map(|c| c["reason"].clone()),
        Some(json!("NoRecentSuccess"))
    );
    for name in ["job/late", "job/missed"] {
        eventually(&format!("{name} firing at Alertmanager"), || async {
            received_alerts(&received, name)
                .iter()
                .any(|(firing, _)| *firing)
                .then_some(())
        })
        .await;
    }

    // Recovery: a successful run for the current due time. Keep clear of the next due time's
    // grace so the run is not immediately late again.
    within(limit, "a moment early in a minute", || async {
        use chrono::Timelike;
        (chrono::Utc::now().second() < 40).then_some(())
    })
    .await;
    let now = chrono::Utc::now();
    let due = now - chrono::TimeDelta::seconds(i64::from(chrono::Timelike::second(&now)));
    finished_run(&client, &cj, "pulse-1", due, now, true, None).await;
    status_when(&specs, "pulse", "Healthy again", |s| {
        s["health"] == "Healthy"
    })
    .await;
    for name in ["job/late", "job/missed"] {
        eventually(&format!("{name} resolved at Alertmanager"), || async {
            received_alerts(&received, name)
                .last()
                .is_some_and(|(firing, _)| !firing)
                .then_some(())
        })
        .await;
    }
    controller.stop().await;
}
