//! Tests of the CronJobSpec adapter and the job metrics.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{TimeDelta, TimeZone, Utc};

use super::adapter::{self, JobKey};
use super::*;
use crate::alert::{Severity, SinkConfig};
use crate::api::cron_job_spec::{CronHealth, CronJobSpec, RunResult};
use crate::monitor::{Environment, MonitorError, SecretResolver};
use crate::schedule::DstRule;
use crate::schedule::watch::{JobHealth, RunObservation, RunOutcome, RunTrigger};

struct Secrets(BTreeMap<(String, String), String>);

impl SecretResolver for Secrets {
    fn get(&self, name: &str, key: &str) -> Result<String, MonitorError> {
        self.0
            .get(&(name.to_string(), key.to_string()))
            .cloned()
            .ok_or_else(|| MonitorError::Secret {
                name: name.to_string(),
                key: key.to_string(),
                message: "not found".to_string(),
            })
    }
}

fn secrets() -> Secrets {
    Secrets(BTreeMap::from([
        (("cron".into(), "token".into()), "s3cr3t-token".into()),
        (("cron".into(), "api-key".into()), "key-123".into()),
        (("hooks".into(), "hmac".into()), "hmac-key".into()),
    ]))
}

fn spec(yaml: &str) -> CronJobSpec {
    serde_yaml::from_str(yaml).unwrap()
}

const FULL: &str = r#"
apiVersion: watchkeeper.dev/v1alpha1
kind: CronJobSpec
metadata: {name: crawl, namespace: shop}
spec:
  schedule: "30 2 * * *"
  timeZone: America/New_York
  startingDeadline: 10m
  activeDeadline: 15m
  concurrencyPolicy: Replace
  httpTrigger:
    url: http://127.0.0.1:9/api/cron/crawl
    method: POST
    body: '{"full":true}'
    headers:
      - {name: Accept, value: application/json}
      - {name: X-Api-Key, valueFrom: {secretKeyRef: {name: cron, key: api-key}}}
    bearerTokenSecretRef: {name: cron, key: token}
    expectedStatus: ["200", "202"]
    timeout: 20s
    retries: 2
    backoff: 1s
  monitoring:
    lateAfter: 3m
    failureThreshold: 2
    deadMansSwitch: 26h
    severities: {late: P2, failing: P1, missed: P0}
    alerting:
      channels:
        - name: hook
          webhook: {url: "http://127.0.0.1:9/hook", hmacSecretRef: {name: hooks, key: hmac}}
"#;

#[test]
fn full_spec_becomes_policy_severities_alerting_and_trigger() {
    let job = spec(FULL);
    let config = job_config(&job.spec, Environment::Embedded, &secrets()).unwrap();
    let policy = &config.policy;
    assert_eq!(policy.schedule.expression(), "30 2 * * *");
    assert_eq!(policy.schedule.time_zone(), chrono_tz::America::New_York);
    assert_eq!(policy.schedule.dst_rule(), DstRule::Kubernetes);
    assert_eq!(policy.late_after, Duration::from_secs(180));
    assert_eq!(policy.failure_threshold, 2);
    assert_eq!(
        policy.dead_mans_switch,
        Some(Duration::from_secs(26 * 3600))
    );
    assert_eq!(policy.starting_deadline, Some(Duration::from_secs(600)));
    assert!(!policy.suspended);
    assert_eq!(config.active_deadline, Some(Duration::from_secs(900)));
    assert_eq!(
        config.severities,
        crate::schedule::watch::JobSeverities {
            late: Severity::P2,
            failing: Severity::P1,
            missed: Severity::P0,
        }
    );
    let alerting = config.alerting.as_ref().unwrap();
    let SinkConfig::Webhook(webhook) = &alerting.channels[0].sink else {
        panic!("expected a webhook sink");
    };
    assert_eq!(webhook.hmac_secret.as_deref(), Some(&b"hmac-key"[..]));
    let trigger = config.trigger.as_ref().unwrap();
    assert_eq!(trigger.method, reqwest::Method::POST);
    assert_eq!(trigger.url.as_str(), "http://127.0.0.1:9/api/cron/crawl");
    assert_eq!(trigger.bearer_token.as_deref(), Some("s3cr3t-token"));
    assert_eq!(trigger.headers.len(), 1);
    assert_eq!(trigger.secret_headers.len(), 1);
    assert!(trigger.secret_headers[0].1.is_sensitive());
    assert_eq!(trigger.expected_status, ["200", "202"]);
    assert_eq!(trigger.timeout, Duration::from_secs(20));
    assert_eq!(
        (trigger.retries, trigger.backoff),
        (2, Duration::from_secs(1))
    );
    assert_eq!(trigger.body.as_deref(), Some(&br#"{"full":true}"#[..]));
    let debug = format!("{config:?}");
    assert!(
        !debug.contains("s3cr3t-token") && !debug.contains("key-123"),
        "{debug}"
    );
}

#[test]
fn defaults_without_monitoring() {
    let job = spec(
        r#"
apiVersion: watchkeeper.dev/v1alpha1
kind: CronJobSpec
metadata: {name: reset}
spec:
  schedule: "@monthly"
  suspend: true
  httpTrigger: {url: "http://127.0.0.1:9/reset"}
"#,
    );
    let config = job_config(&job.spec, Environment::Embedded, &secrets()).unwrap();
    assert_eq!(config.policy.late_after, Duration::from_secs(300));
    assert_eq!(config.policy.failure_threshold, 1);
    assert_eq!(config.policy.dead_mans_switch, None);
    assert!(config.policy.suspended);
    assert_eq!(config.policy.schedule.time_zone(), chrono_tz::UTC);
    assert_eq!(
        config.severities,
        crate::schedule::watch::JobSeverities::default()
    );
    assert!(config.alerting.is_none());
    assert!(config.trigger.as_ref().unwrap().bearer_token.is_none());
}

#[test]
fn job_templates_are_refused_outside_a_cluster_and_missing_secrets_named() {
    let job = spec(
        r#"
apiVersion: watchkeeper.dev/v1alpha1
kind: CronJobSpec
metadata: {name: report}
spec:
  schedule: "0 6 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: report, image: "busybox:1.36"}]
"#,
    );
    let error = job_config(&job.spec, Environment::Embedded, &secrets())
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("spec.jobTemplate: not supported here: a Job template needs a cluster"),
        "{error}"
    );
    let cluster = job_config(&job.spec, Environment::Cluster, &secrets()).unwrap();
    assert!(cluster.trigger.is_none());

    let mut full = spec(FULL);
    let missing = Secrets(BTreeMap::new());
    let error = job_config(&full.spec, Environment::Embedded, &missing)
        .unwrap_err()
        .to_string();
    assert!(error.contains("secret cron/"), "{error}");
    assert!(!error.contains("s3cr3t"), "{error}");
    // In a cluster the trigger's Secrets are the agent's business; alerting still resolves.
    full.spec.monitoring = None;
    assert!(job_config(&full.spec, Environment::Cluster, &missing).is_ok());
}

#[test]
fn observations_become_status_values() {
    let start = Utc.with_ymd_and_hms(2026, 5, 1, 2, 30, 0).unwrap();
    let result = crate::agent::TriggerResult {
        outcome: crate::agent::Outcome::UnexpectedStatus,
        status_code: Some(503),
        latency_ms: 40,
        attempts: 3,
        body: Some("maintenance".to_string()),
        error: None,
    };
    let run = adapter::observation(
        "crawl-29634270".into(),
        RunTrigger::Scheduled,
        Some(start),
        start,
        start + TimeDelta::seconds(72),
        &result,
    );
    assert_eq!(run.outcome, RunOutcome::Failed);
    assert_eq!(
        run.message.as_deref(),
        Some("HTTP 503 (unexpected status) after 3 attempts: maintenance")
    );
    let record = adapter::run_record(&run);
    assert_eq!(record.result, RunResult::Failed);
    assert_eq!(record.duration.as_deref(), Some("1m12s"));
    assert_eq!(record.status_code, Some(503));
    assert_eq!(adapter::cron_health(JobHealth::Missed), CronHealth::Missed);
    let key = JobKey {
        namespace: "shop".into(),
        name: "crawl".into(),
    };
    assert_eq!(key.alert_labels()["name"], "crawl");
    assert_eq!(key.source(), "CronJobSpec shop/crawl");
}

fn encode(registry: &prometheus_client::registry::Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text
}

#[test]
fn metrics_count_runs_time_successes_and_are_removed() {
    let mut registry = prometheus_client::registry::Registry::with_prefix("watchkeeper");
    let metrics = JobMetrics::register(&mut registry);
    let start = Utc.with_ymd_and_hms(2026, 5, 1, 2, 30, 0).unwrap();
    let run = |outcome, seconds| RunObservation {
        name: "r".into(),
        trigger: RunTrigger::Scheduled,
        scheduled_for: Some(start),
        started_at: start,
        finished_at: Some(start + TimeDelta::seconds(seconds)),
        outcome,
        status_code: None,
        message: None,
    };
    metrics.register_job("shop", "crawl");
    metrics.set_health("shop", "crawl", JobHealth::Failing);
    metrics.record_finished("shop", "crawl", &run(RunOutcome::Failed, 3));
    metrics.record_finished("shop", "crawl", &run(RunOutcome::Succeeded, 5));
    metrics.record_finished("shop", "crawl", &run(RunOutcome::Running, 0));
    let text = encode(&registry);
    let labels = r#"namespace="shop",name="crawl""#;
    for line in [
        format!(r#"watchkeeper_job_runs_total{{{labels},result="succeeded"}} 1"#),
        format!(r#"watchkeeper_job_runs_total{{{labels},result="failed"}} 1"#),
        format!(
            "watchkeeper_job_last_success_timestamp_seconds{{{labels}}} {}.0",
            start.timestamp() + 5
        ),
        format!("watchkeeper_job_duration_seconds_count{{{labels}}} 2"),
        format!("watchkeeper_job_duration_seconds_sum{{{labels}}} 8.0"),
        format!(r#"watchkeeper_job_health{{{labels},health="Failing"}} 1"#),
        format!(r#"watchkeeper_job_health{{{labels},health="Healthy"}} 0"#),
    ] {
        assert!(text.contains(&line), "missing {line:?} in\n{text}");
    }
    metrics.remove("shop", "crawl");
    let text = encode(&registry);
    assert!(!text.contains("crawl"), "{text}");
}
