//! Tests of CronJobSpec defaults and `validate()`: a good spec passes, each rule fails at the
//! right path.

use super::*;
use crate::api::validation::Validate;

pub(super) const GOOD: &str = r#"
apiVersion: watchkeeper.dev/v1alpha1
kind: CronJobSpec
metadata:
  name: web-crawl
spec:
  schedule: "0 2 * * *"
  timeZone: America/New_York
  httpTrigger:
    url: https://app.example.com/api/cron/web-crawl
    headers:
      - {name: Accept, value: application/json}
    bearerTokenSecretRef: {name: cron-secret, key: token}
    expectedStatus: ["200-204"]
    timeout: 5m
    retries: 2
    backoff: 30s
  startingDeadline: 10m
  activeDeadline: 30m
  monitoring:
    deadMansSwitch: 26h  # 25h would not do: the fall-back day has 25 hours between 02:00s
    lateAfter: 10m
    failureThreshold: 2
    alerting:
      channels:
        - name: ops
          email: {host: smtp.example.com, from: watchkeeper@example.com, to: [ops@example.com]}
"#;

pub(super) const TEMPLATE: &str = r#"
apiVersion: watchkeeper.dev/v1alpha1
kind: CronJobSpec
metadata:
  name: cleanup
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: cleanup
              image: ghcr.io/example/cleanup:1.0
              args: ["--older-than", "90d"]
"#;

fn parse(text: &str) -> CronJobSpec {
    serde_yaml::from_str(text).expect("parses")
}

#[track_caller]
fn fails_at(job: &CronJobSpec, path: &str) {
    let errors = job.validate();
    assert!(
        errors.iter().any(|e| e.path == path),
        "expected an error at {path}, got {errors:?}"
    );
}

fn edit(base: &str, yaml_edit: impl FnOnce(&mut serde_yaml::Value)) -> CronJobSpec {
    let mut value: serde_yaml::Value = serde_yaml::from_str(base).unwrap();
    yaml_edit(&mut value["spec"]);
    serde_yaml::from_value(value).expect("edited spec still deserializes")
}

fn yaml(text: &str) -> serde_yaml::Value {
    serde_yaml::from_str(text).unwrap()
}

#[test]
fn good_specs_pass() {
    assert_eq!(parse(GOOD).validate(), vec![]);
    assert_eq!(parse(TEMPLATE).validate(), vec![]);
}

#[test]
fn defaults_fill_in() {
    let job = parse(TEMPLATE);
    assert_eq!(job.spec.concurrency_policy, ConcurrencyPolicy::Forbid);
    assert_eq!(job.spec.successful_jobs_history_limit, 3);
    assert_eq!(job.spec.failed_jobs_history_limit, 1);
    assert!(!job.spec.suspend);
    let trigger = parse(GOOD).spec.http_trigger.unwrap();
    assert_eq!(trigger.method, HttpMethod::Get);
    let minimal = edit(GOOD, |s| {
        s["httpTrigger"] = yaml("{url: 'https://app.example.com/x'}");
        s["monitoring"] = yaml("{}");
    });
    let trigger = minimal.spec.http_trigger.as_ref().unwrap();
    assert_eq!(trigger.expected_status, vec!["2xx"]);
    assert_eq!(trigger.timeout.as_str(), "30s");
    assert_eq!(trigger.retries, 0);
    let monitoring = minimal.spec.monitoring.as_ref().unwrap();
    assert_eq!(monitoring.late_after.as_str(), "5m");
    assert_eq!(monitoring.failure_threshold, 1);
    assert_eq!(monitoring.severities.missed, Severity::P1);
}

#[test]
fn schedule_and_time_zone() {
    fails_at(
        &edit(GOOD, |s| s["schedule"] = yaml("'61 * * * *'")),
        "spec.schedule",
    );
    fails_at(
        &edit(GOOD, |s| s["schedule"] = yaml("'every day'")),
        "spec.schedule",
    );
    fails_at(
        &edit(GOOD, |s| s["timeZone"] = yaml("Mars/Olympus")),
        "spec.timeZone",
    );
    // a bad zone does not hide a bad expression
    let both = edit(GOOD, |s| {
        s["timeZone"] = yaml("Nowhere/Land");
        s["schedule"] = yaml("'* * *'");
    });
    fails_at(&both, "spec.timeZone");
    fails_at(&both, "spec.schedule");
}

#[test]
fn exactly_one_job_form() {
    let both = edit(GOOD, |s| {
        s["jobTemplate"] = yaml(&serde_yaml::to_string(&parse(TEMPLATE).spec.job_template).unwrap())
    });
    fails_at(&both, "spec.httpTrigger");
    fails_at(
        &edit(GOOD, |s| {
            s.as_mapping_mut().unwrap().remove("httpTrigger");
        }),
        "spec.httpTrigger",
    );
}

#[test]
fn trigger_rules() {
    fails_at(
        &edit(GOOD, |s| {
            s["httpTrigger"]["headers"][0] = yaml("{name: X-Api-Key, value: abc}")
        }),
        "spec.httpTrigger.headers[0].value",
    );
    fails_at(
        &edit(GOOD, |s| {
            s["httpTrigger"]["headers"][0] =
                yaml("{name: authorization, valueFrom: {secretKeyRef: {name: a, key: b}}}")
        }),
        "spec.httpTrigger.headers[0]",
    );
    fails_at(
        &edit(GOOD, |s| s["httpTrigger"]["url"] = yaml("/api/cron")),
        "spec.httpTrigger.url",
    );
    fails_at(
        &edit(GOOD, |s| {
            s["httpTrigger"]["expectedStatus"] = yaml("['2xx', '20']")
        }),
        "spec.httpTrigger.expectedStatus[1]",
    );
    fails_at(
        &edit(GOOD, |s| s["httpTrigger"]["timeout"] = yaml("0s")),
        "spec.httpTrigger.timeout",
    );
    fails_at(
        &edit(GOOD, |s| s["httpTrigger"]["backoff"] = yaml("1 minute")),
        "spec.httpTrigger.backoff",
    );
    fails_at(
        &edit(GOOD, |s| s["httpTrigger"]["retries"] = yaml("11")),
        "spec.httpTrigger.retries",
    );
}

#[test]
fn deadlines_and_limits() {
    fails_at(
        &edit(GOOD, |s| s["startingDeadline"] = yaml("5s")),
        "spec.startingDeadline",
    );
    fails_at(
        &edit(GOOD, |s| s["activeDeadline"] = yaml("half an hour")),
        "spec.activeDeadline",
    );
    fails_at(
        &edit(GOOD, |s| s["backoffLimit"] = yaml("-1")),
        "spec.backoffLimit",
    );
    fails_at(
        &edit(GOOD, |s| s["successfulJobsHistoryLimit"] = yaml("-3")),
        "spec.successfulJobsHistoryLimit",
    );
    fails_at(
        &edit(GOOD, |s| s["failedJobsHistoryLimit"] = yaml("-1")),
        "spec.failedJobsHistoryLimit",
    );
}

#[test]
fn dead_mans_switch_must_outlast_the_gap_between_runs() {
    // daily job, 1h switch: would fire every day
    fails_at(
        &edit(GOOD, |s| s["monitoring"]["deadMansSwitch"] = yaml("1h")),
        "spec.monitoring.deadMansSwitch",
    );
    // every 30 minutes with a 1h switch: the guide's rule, fine
    let ok = edit(GOOD, |s| {
        s["schedule"] = yaml("'*/30 * * * *'");
        s["monitoring"]["deadMansSwitch"] = yaml("1h");
    });
    assert_eq!(ok.validate(), vec![]);
    // monthly job: the longest month decides
    fails_at(
        &edit(GOOD, |s| {
            s["schedule"] = yaml("'0 0 1 * *'");
            s["monitoring"]["deadMansSwitch"] = yaml("30d");
        }),
        "spec.monitoring.deadMansSwitch",
    );
}

#[test]
fn monitoring_rules() {
    fails_at(
        &edit(GOOD, |s| s["monitoring"]["lateAfter"] = yaml("late")),
        "spec.monitoring.lateAfter",
    );
    fails_at(
        &edit(GOOD, |s| s["monitoring"]["failureThreshold"] = yaml("0")),
        "spec.monitoring.failureThreshold",
    );
    fails_at(
        &edit(GOOD, |s| {
            s["monitoring"]["alerting"]["routes"] = yaml("[{channels: [missing]}]")
        }),
        "spec.monitoring.alerting.routes[0].channels[0]",
    );
}

#[test]
fn job_template_rules() {
    fails_at(
        &edit(TEMPLATE, |s| {
            s["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = yaml("Always")
        }),
        "spec.jobTemplate.spec.template.spec.restartPolicy",
    );
    fails_at(
        &edit(TEMPLATE, |s| {
            s["jobTemplate"]["spec"]["template"]["spec"]["containers"] = yaml("[]")
        }),
        "spec.jobTemplate.spec.template.spec.containers",
    );
    fails_at(
        &edit(TEMPLATE, |s| {
            s["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
                .as_mapping_mut()
                .unwrap()
                .remove("image");
        }),
        "spec.jobTemplate.spec.template.spec.containers[0].image",
    );
    fails_at(
        &edit(TEMPLATE, |s| s["resources"] = yaml("{limits: {cpu: 100m}}")),
        "spec.resources",
    );
}

#[test]
fn numeric_quantities_deserialize() {
    let job = edit(GOOD, |s| {
        s["resources"] = yaml("{requests: {cpu: 1, memory: 64Mi}}")
    });
    assert_eq!(job.validate(), vec![]);
    let requests = job.spec.resources.and_then(|r| r.requests).unwrap();
    assert_eq!(requests["cpu"].0, "1");
}

#[test]
fn parsed_schedule_uses_the_time_zone() {
    use chrono::{TimeZone, Utc};
    let job = parse(GOOD); // 02:00 America/New_York
    let after = Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).unwrap();
    let next = job.spec.cron_schedule().unwrap().next_after(after).unwrap();
    // 02:00 EDT is 06:00 UTC
    assert_eq!(next, Utc.with_ymd_and_hms(2026, 7, 2, 6, 0, 0).unwrap());
    let utc = edit(GOOD, |s| {
        s.as_mapping_mut().unwrap().remove("timeZone");
    });
    let next = utc.spec.cron_schedule().unwrap().next_after(after).unwrap();
    assert_eq!(next, Utc.with_ymd_and_hms(2026, 7, 2, 2, 0, 0).unwrap());
    assert!(
        edit(GOOD, |s| s["timeZone"] = yaml("Nowhere/Land"))
            .spec
            .cron_schedule()
            .is_err()
    );
}
