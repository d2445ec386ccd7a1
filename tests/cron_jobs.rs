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

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use controller_support::*;
use support::apiserver::{ApiError, ApiServer, Fault, schema_validator};
use watchkeeper::api::CronJobSpec;
use watchkeeper::api::cron_job_spec::RUN_NOW_ANNOTATION;
use watchkeeper::controller::cron_job::run_now;

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
