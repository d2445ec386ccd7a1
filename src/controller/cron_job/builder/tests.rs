//! Tests of the CronJob builder: every field follows the CronJobSpec; secrets only as env from
//! `secretKeyRef`.

use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::Container;

use super::*;

const TRIGGER: &str = r#"
apiVersion: watchkeeper.dev/v1alpha1
kind: CronJobSpec
metadata:
  name: web-crawl
  namespace: shop
  uid: 0b1c2d3e-0000-4000-8000-000000000001
spec:
  schedule: "0 2 * * *"
  timeZone: America/New_York
  httpTrigger:
    url: https://app.example.com/api/cron/web-crawl
    method: POST
    headers:
      - {name: Accept, value: application/json}
      - name: X-Api-Key
        valueFrom: {secretKeyRef: {name: api-keys, key: crawl}}
    bearerTokenSecretRef: {name: cron-secret, key: token}
    body: '{"full":true}'
    expectedStatus: ["200-204", "302"]
    timeout: 5m
    retries: 2
    backoff: 30s
  concurrencyPolicy: Replace
  startingDeadline: 10m
  activeDeadline: 1500ms
  successfulJobsHistoryLimit: 5
  failedJobsHistoryLimit: 2
  suspend: true
  cronJobMetadata:
    labels: {team: growth, app.kubernetes.io/managed-by: someone-else}
    annotations: {cost-center: "42"}
  resources:
    limits: {cpu: 100m, memory: 64Mi}
"#;

const TEMPLATE: &str = r#"
apiVersion: watchkeeper.dev/v1alpha1
kind: CronJobSpec
metadata:
  name: cleanup
  namespace: ops
  uid: 0b1c2d3e-0000-4000-8000-000000000002
spec:
  schedule: "@daily"
  jobTemplate:
    metadata:
      labels: {kind: cleanup}
    spec:
      backoffLimit: 3
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - name: cleanup
              image: registry.example.com/cleanup:1.2
              args: ["--older-than", "30d"]
"#;

const IMAGE: &str = "ghcr.io/example/watchkeeper:0.1.0";

fn parse(yaml: &str) -> CronJobSpec {
    serde_yaml::from_str(yaml).unwrap()
}

fn build(yaml: &str) -> CronJob {
    build_cron_job(&parse(yaml), IMAGE).unwrap()
}

fn container(cron_job: &CronJob) -> &Container {
    let pod = cron_job.spec.job_template.spec.as_ref().unwrap();
    &pod.template.spec.as_ref().unwrap().containers[0]
}

/// The value following `flag` in the container's arguments.
fn arg<'a>(container: &'a Container, flag: &str) -> Vec<&'a str> {
    let args = container.args.as_ref().unwrap();
    args.windows(2)
        .filter(|w| w[0] == flag)
        .map(|w| w[1].as_str())
        .collect()
}

#[test]
fn metadata_owner_and_labels() {
    let cron_job = build(TRIGGER);
    let meta = &cron_job.metadata;
    assert_eq!(meta.name.as_deref(), Some("web-crawl"));
    assert_eq!(meta.namespace.as_deref(), Some("shop"));
    let owners = meta.owner_references.as_ref().unwrap();
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0].kind, "CronJobSpec");
    assert_eq!(owners[0].api_version, "watchkeeper.dev/v1alpha1");
    assert_eq!(owners[0].name, "web-crawl");
    assert_eq!(owners[0].uid, "0b1c2d3e-0000-4000-8000-000000000001");
    assert_eq!(owners[0].controller, Some(true));
    let labels = meta.labels.as_ref().unwrap();
    assert_eq!(labels["team"], "growth");
    // Our labels win over the user's.
    assert_eq!(labels[MANAGED_BY_LABEL], MANAGED_BY);
    assert_eq!(labels[CRON_JOB_SPEC_LABEL], "web-crawl");
    assert_eq!(meta.annotations.as_ref().unwrap()["cost-center"], "42");
    // Copied to the Jobs and Pods.
    let job = &cron_job.spec.job_template;
    assert_eq!(job.metadata.as_ref().unwrap().labels.as_ref(), Some(labels));
    assert_eq!(
        job.metadata.as_ref().unwrap().annotations.as_ref().unwrap()["cost-center"],
        "42"
    );
    let pod_meta = job
        .spec
        .as_ref()
        .unwrap()
        .template
        .metadata
        .as_ref()
        .unwrap();
    assert_eq!(
        pod_meta.labels.as_ref().unwrap()[CRON_JOB_SPEC_LABEL],
        "web-crawl"
    );
}

#[test]
fn schedule_fields_follow_the_spec() {
    let cron_job = build(TRIGGER);
    let spec = &cron_job.spec;
    assert_eq!(spec.schedule, "0 2 * * *");
    assert_eq!(spec.time_zone.as_deref(), Some("America/New_York"));
    assert_eq!(spec.concurrency_policy.as_deref(), Some("Replace"));
    assert_eq!(spec.starting_deadline_seconds, Some(600));
    assert_eq!(spec.successful_jobs_history_limit, Some(5));
    assert_eq!(spec.failed_jobs_history_limit, Some(2));
    assert_eq!(spec.suspend, Some(true));
    let job = spec.job_template.spec.as_ref().unwrap();
    // 1500ms rounds up to 2s.
    assert_eq!(job.active_deadline_seconds, Some(2));
    // HTTP triggers retry inside the run.
    assert_eq!(job.backoff_limit, Some(0));
}

#[test]
fn defaults_give_utc_forbid_and_history_3_1() {
    let cron_job = build(
        &TRIGGER
            .replace("  timeZone: America/New_York\n", "")
            .replace("  concurrencyPolicy: Replace\n", "")
            .replace(
                "  successfulJobsHistoryLimit: 5\n  failedJobsHistoryLimit: 2\n  suspend: true\n",
                "",
            ),
    );
    let spec = &cron_job.spec;
    assert_eq!(spec.time_zone.as_deref(), Some("UTC"));
    assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
    assert_eq!(spec.successful_jobs_history_limit, Some(3));
    assert_eq!(spec.failed_jobs_history_limit, Some(1));
    assert_eq!(spec.suspend, Some(false));
}

#[test]
fn trigger_container_runs_the_agent_with_the_spec_arguments() {
    let cron_job = build(TRIGGER);
    let pod = cron_job.spec.job_template.spec.as_ref().unwrap();
    let pod_spec = pod.template.spec.as_ref().unwrap();
    assert_eq!(pod_spec.restart_policy.as_deref(), Some("Never"));
    assert_eq!(pod_spec.containers.len(), 1);
    let c = container(&cron_job);
    assert_eq!(c.name, TRIGGER_CONTAINER);
    assert_eq!(c.image.as_deref(), Some(IMAGE));
    let args = c.args.as_ref().unwrap();
    assert_eq!(&args[..2], ["agent", "trigger"]);
    assert_eq!(
        arg(c, "--url"),
        ["https://app.example.com/api/cron/web-crawl"]
    );
    assert_eq!(arg(c, "--method"), ["POST"]);
    assert_eq!(arg(c, "--header"), ["Accept: application/json"]);
    assert_eq!(
        arg(c, "--header-from-env"),
        ["X-Api-Key=WATCHKEEPER_HEADER_1"]
    );
    assert_eq!(arg(c, "--body"), [r#"{"full":true}"#]);
    assert_eq!(arg(c, "--expected-status"), ["200-204,302"]);
    assert_eq!(arg(c, "--timeout"), ["5m"]);
    assert_eq!(arg(c, "--retries"), ["2"]);
    assert_eq!(arg(c, "--backoff"), ["30s"]);
    assert_eq!(arg(c, "--termination-log"), [TERMINATION_LOG]);
    assert_eq!(c.termination_message_path.as_deref(), Some(TERMINATION_LOG));
    let limits = c.resources.as_ref().unwrap().limits.as_ref().unwrap();
    assert_eq!(limits["cpu"].0, "100m");
    assert_eq!(limits["memory"].0, "64Mi");
}

#[test]
fn the_arguments_parse_as_the_agent_expects() {
    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(subcommand)]
        agent: crate::agent::AgentCommand,
    }
    use clap::Parser;
    let cron_job = build(TRIGGER);
    let args = container(&cron_job).args.clone().unwrap();
    let parsed = Wrapper::try_parse_from(
        std::iter::once("watchkeeper".to_string()).chain(args.into_iter().skip(1)),
    )
    .unwrap();
    let crate::agent::AgentCommand::Trigger(args) = parsed.agent else {
        panic!("the container runs `agent trigger`");
    };
    assert_eq!(args.retries, 2);
    assert_eq!(args.timeout, std::time::Duration::from_secs(300));
    assert_eq!(args.headers_from_env, ["X-Api-Key=WATCHKEEPER_HEADER_1"]);
}

#[test]
fn secrets_are_only_env_from_secret_key_refs() {
    let cron_job = build(TRIGGER);
    let c = container(&cron_job);
    let env = c.env.as_ref().unwrap();
    let from = |name: &str| {
        let var = env.iter().find(|e| e.name == name).unwrap();
        assert_eq!(var.value, None, "{name} must not be inlined");
        let secret = var
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap();
        (secret.name.clone(), secret.key.clone())
    };
    assert_eq!(
        from(crate::agent::BEARER_TOKEN_ENV),
        ("cron-secret".to_string(), "token".to_string())
    );
    assert_eq!(
        from("WATCHKEEPER_HEADER_1"),
        ("api-keys".to_string(), "crawl".to_string())
    );
    assert_eq!(env.len(), 2);
    // No argument names the secrets or the token variable.
    let args = c.args.as_ref().unwrap().join(" ");
    for word in [
        "cron-secret",
        "api-keys",
        crate::agent::BEARER_TOKEN_ENV,
        "Authorization",
    ] {
        assert!(!args.contains(word), "{word} in args: {args}");
    }
}

#[test]
fn job_template_form_keeps_the_template_and_adds_deadlines_and_labels() {
    let cron_job = build(TEMPLATE);
    let spec = &cron_job.spec;
    assert_eq!(spec.schedule, "@daily");
    let job = &spec.job_template;
    let labels = job.metadata.as_ref().unwrap().labels.as_ref().unwrap();
    assert_eq!(labels["kind"], "cleanup");
    assert_eq!(labels[CRON_JOB_SPEC_LABEL], "cleanup");
    let job_spec = job.spec.as_ref().unwrap();
    // The template's own backoff limit stays when the CronJobSpec sets none.
    assert_eq!(job_spec.backoff_limit, Some(3));
    assert_eq!(job_spec.active_deadline_seconds, None);
    let c = container(&cron_job);
    assert_eq!(c.image.as_deref(), Some("registry.example.com/cleanup:1.2"));
    assert_eq!(c.args.as_ref().unwrap(), &["--older-than", "30d"]);

    let overridden = build(&TEMPLATE.replace(
        "  jobTemplate:",
        "  backoffLimit: 1\n  activeDeadline: 1h\n  jobTemplate:",
    ));
    let job_spec = overridden.spec.job_template.spec.unwrap();
    assert_eq!(job_spec.backoff_limit, Some(1));
    assert_eq!(job_spec.active_deadline_seconds, Some(3600));
}

#[test]
fn objects_not_from_the_api_server_are_refused() {
    let mut spec = parse(TRIGGER);
    spec.metadata.uid = None;
    let error = build_cron_job(&spec, IMAGE).unwrap_err().to_string();
    assert!(
        error.contains("web-crawl") && error.contains("metadata.uid"),
        "{error}"
    );
    let mut spec = parse(TRIGGER);
    spec.metadata.namespace = None;
    let error = build_cron_job(&spec, IMAGE).unwrap_err().to_string();
    assert!(error.contains("metadata.namespace"), "{error}");
    let mut spec = parse(TRIGGER);
    spec.spec.http_trigger = None;
    let error = build_cron_job(&spec, IMAGE).unwrap_err().to_string();
    assert!(
        error.contains("spec.httpTrigger or spec.jobTemplate"),
        "{error}"
    );
}
