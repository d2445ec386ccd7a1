//! Resolution of step actions: which executor each step goes to, and every missing Secret
//! reported with its path before anything runs.

use crate::api::common::SecretKeyRef;
use crate::api::failover_plan::FailoverPlanSpec;
use crate::failover::action::{ResolvedPlan, StepAction};
use crate::failover::error::FailoverError;
use crate::failover::plan::{PlanPolicy, StepKind};
use crate::failover::record::AttemptKind;

const SPEC: &str = r#"
primary: {name: us-east-2, healthMonitorRef: {name: app-ohio}}
secondary: {name: us-west-1, healthMonitorRef: {name: app-west}}
steps:
- name: fence
  fence: {webhook: {url: "https://provider.example/pause"}}
- name: promote
  timeout: 2m
  sql:
    connection: {host: db-west, database: app, user: app, passwordSecretRef: {name: db, key: password}}
    statements: ["SELECT pg_promote()"]
    expect: "t"
- name: dns
  dnsSwitch:
    cloudflare: {zoneId: z, recordName: app.example.com, recordType: A, content: 198.51.100.20, apiTokenSecretRef: {name: cf, key: token}}
- name: deploy
  http:
    url: "https://provider.example/deploy"
    headers: [{name: Authorization, valueFrom: {secretKeyRef: {name: host, key: token}}}]
- name: verify
  verify: {}
failback:
  steps:
  - name: dns-back
    dnsSwitch:
      cloudflare: {zoneId: z, recordName: app.example.com, recordType: A, content: 203.0.113.10, apiTokenSecretRef: {name: cf, key: token}}
"#;

fn spec() -> FailoverPlanSpec {
    serde_yaml::from_str(SPEC).expect("spec parses")
}

#[test]
fn each_step_goes_to_its_executor_with_secrets_resolved() {
    let secrets = |r: &SecretKeyRef| Some(format!("value-of-{}-{}", r.name, r.key));
    let plan = ResolvedPlan::resolve(&spec(), &secrets).expect("resolves");
    assert!(matches!(&plan.steps[0], StepAction::Http(c) if c.url.ends_with("/pause")));
    assert!(matches!(&plan.steps[1], StepAction::Sql(c) if c.expect.as_deref() == Some("t")));
    match &plan.steps[2] {
        StepAction::Cloudflare(c) => {
            assert_eq!(c.token, "value-of-cf-token");
            assert_eq!(c.api_url, "https://api.cloudflare.com/client/v4");
            assert_eq!(c.ttl, 60);
            assert!(
                !format!("{c:?}").contains("value-of-cf-token"),
                "Debug redacts the token"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&plan.steps[3], StepAction::Http(c) if c.headers[0].1 == "value-of-host-token" && c.headers[0].2)
    );
    assert!(matches!(&plan.steps[4], StepAction::Cluster(s) if s.verify.is_some()));
    assert!(
        matches!(plan.action(AttemptKind::Failback, 0), Some(StepAction::Cloudflare(c)) if c.content == "203.0.113.10")
    );
    assert!(plan.action(AttemptKind::Failover, 5).is_none());
}

#[test]
fn every_missing_secret_is_reported_with_its_path() {
    let only_db = |r: &SecretKeyRef| (r.name == "db").then(|| "pw".to_string());
    let errors = ResolvedPlan::resolve(&spec(), &only_db).expect_err("secrets missing");
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "spec.steps[2].dnsSwitch.cloudflare.apiTokenSecretRef: Secret cf has no key token (or does not exist)",
            "spec.steps[3].http.headers[0].valueFrom.secretKeyRef: Secret host has no key token (or does not exist)",
            "spec.failback.steps[0].dnsSwitch.cloudflare.apiTokenSecretRef: Secret cf has no key token (or does not exist)",
        ]
    );
    assert!(
        errors
            .iter()
            .all(|e| matches!(e, FailoverError::MissingSecret { .. }))
    );
}

#[test]
fn the_policy_takes_kinds_timeouts_and_defaults_from_the_spec() {
    let policy = PlanPolicy::from_spec("ns/plan", &spec()).expect("policy");
    let kinds: Vec<StepKind> = policy.steps.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        [
            StepKind::Fence,
            StepKind::Sql,
            StepKind::DnsSwitch,
            StepKind::Http,
            StepKind::Verify
        ]
    );
    assert_eq!(policy.steps[1].timeout.as_secs(), 120);
    assert_eq!(policy.steps[0].timeout.as_secs(), 600, "default 10m");
    assert_eq!(policy.trigger.dwell.as_secs(), 300, "default 5m");
    assert!(!policy.trigger.automatic, "Manual by default");
    assert_eq!(policy.failback_steps.len(), 1);
    assert_eq!(policy.primary.monitors, ["app-ohio"]);
    let mut broken = spec();
    broken.steps[2].backoff = crate::api::common::Duration::new("soon");
    let error = PlanPolicy::from_spec("ns/plan", &broken).expect_err("bad duration");
    assert!(
        error.to_string().starts_with("spec.steps[2].backoff:"),
        "{error}"
    );
}
