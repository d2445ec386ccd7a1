//! Tests of the FailoverPlan rules: a good plan passes, each rule fails at its path.

use super::super::{DnsRecordType, FailoverObjectives, PatchAction, PatchTarget};
use super::*;
use crate::api::common::{Duration, LocalObjectRef};

pub(crate) const GOOD: &str = r#"
apiVersion: watchkeeper.dev/v1alpha1
kind: FailoverPlan
metadata: { name: region }
spec:
  primary: { name: us-east-2, healthMonitorRef: { name: app-east } }
  secondary: { name: us-west-1, healthMonitorRef: { name: app-west } }
  trigger: { mode: Automatic, after: 5m, quorum: 1, backupPolicyRef: { name: daily } }
  steps:
    - name: fence
      fence:
        configMapSet:
          configMapKeyRef: { name: app-config, key: WRITES_DISABLED }
          value: "true"
    - name: promote
      sql:
        connection: { uriSecretRef: { name: west-db, key: uri } }
        statements: ["SELECT pg_promote()"]
        expect: t
    - name: dns
      timeout: 2m
      retries: 3
      dnsSwitch:
        cloudflare:
          zoneId: ZONE_ID
          recordName: app.example.com
          recordType: CNAME
          content: us-west.app.example.net
          apiTokenSecretRef: { name: cloudflare, key: token }
    - name: redeploy
      http:
        url: https://api.hosting.example.com/v1/deployments
        headers:
          - name: Authorization
            valueFrom: { secretKeyRef: { name: hosting, key: bearer } }
        expectedStatus: ["2xx"]
    - name: verify
      verify: { consecutiveHealthy: 3 }
    - name: tell
      notify: { message: "moved to us-west-1" }
  failback:
    steps:
      - name: dns-back
        dnsSwitch:
          dnsEndpoint: { name: app, dnsName: app.example.com, recordType: A, targets: ["192.0.2.10"] }
  drills:
    schedule: { rrule: { rule: "FREQ=MONTHLY;BYMONTH=6,12;BYDAY=1SU", start: "2026-06-07T03:00:00" } }
    mode: DryRun
  objectives: { rto: 1h }
  alerting:
    channels:
      - name: ops
        slack: { webhookUrlSecretRef: { name: slack, key: url } }
"#;

fn good() -> FailoverPlan {
    serde_yaml::from_str(GOOD).expect("test manifest parses")
}

fn paths(plan: &FailoverPlan) -> Vec<String> {
    plan.validate().into_iter().map(|e| e.path).collect()
}

#[test]
fn good_plan_passes() {
    assert_eq!(good().validate(), vec![]);
}

#[test]
fn same_region_twice() {
    let mut p = good();
    p.spec.secondary = p.spec.primary.clone();
    assert_eq!(
        paths(&p),
        ["spec.secondary.name", "spec.secondary.healthMonitorRef"]
    );
    // A manual plan may judge both sides by one monitor (a rollback in place).
    p.spec.trigger.mode = super::super::TriggerMode::Manual;
    assert_eq!(paths(&p), ["spec.secondary.name"]);
}

#[test]
fn quorum_and_monitors() {
    let mut p = good();
    p.spec.trigger.quorum = Some(3);
    p.spec.primary.extra_monitors = vec![LocalObjectRef {
        name: "app-east".into(),
    }];
    assert_eq!(
        paths(&p),
        ["spec.primary.extraMonitors[0]", "spec.trigger.quorum"]
    );
}

#[test]
fn trigger_durations() {
    let mut p = good();
    p.spec.trigger.after = Duration::new("5 minutes");
    p.spec.trigger.cooldown = Duration::new("-1h");
    assert_eq!(paths(&p), ["spec.trigger.after", "spec.trigger.cooldown"]);
}

#[test]
fn steps_need_unique_names_and_one_action() {
    let mut p = good();
    p.spec.steps[2].name = "fence".into();
    p.spec.steps[4].notify = p.spec.steps[5].notify.clone();
    p.spec.steps[5].notify = None;
    assert_eq!(
        paths(&p),
        ["spec.steps[2].name", "spec.steps[4]", "spec.steps[5]"]
    );
}

#[test]
fn step_timeouts() {
    let mut p = good();
    p.spec.steps[2].timeout = Duration::new("0s");
    p.spec.steps[3].backoff = Duration::new("soon");
    p.spec.steps[1].retries = 11;
    assert_eq!(
        paths(&p),
        [
            "spec.steps[1].retries",
            "spec.steps[2].timeout",
            "spec.steps[3].backoff"
        ]
    );
}

#[test]
fn fence_must_precede_promotion() {
    let mut p = good();
    p.spec.steps.swap(0, 1);
    assert_eq!(paths(&p), ["spec.steps[0]"]);
}

#[test]
fn dns_rules() {
    let mut p = good();
    if let Some(cf) = p.spec.steps[2]
        .dns_switch
        .as_mut()
        .and_then(|d| d.cloudflare.as_mut())
    {
        cf.ttl = 30;
        cf.record_type = DnsRecordType::A;
    }
    let webhook = p.spec.steps[3].http.clone();
    if let Some(d) = p.spec.steps[2].dns_switch.as_mut() {
        d.webhook = webhook;
    }
    assert_eq!(
        paths(&p),
        [
            "spec.steps[2].dnsSwitch",
            "spec.steps[2].dnsSwitch.cloudflare.ttl",
            "spec.steps[2].dnsSwitch.cloudflare.content"
        ]
    );
}

#[test]
fn credentials_only_by_reference() {
    let mut p = good();
    if let Some(http) = p.spec.steps[3].http.as_mut() {
        http.headers[0].value = Some("Bearer abc".into());
        http.headers[0].value_from = None;
        http.expected_status = vec!["600".into()];
    }
    assert_eq!(
        paths(&p),
        [
            "spec.steps[3].http.headers[0].value",
            "spec.steps[3].http.expectedStatus[0]"
        ]
    );
}

#[test]
fn patch_never_targets_secrets() {
    let mut p = good();
    p.spec.steps[4].verify = None;
    p.spec.steps[4].kubernetes_patch = Some(PatchAction {
        target: PatchTarget {
            api_version: "v1".into(),
            kind: "Secret".into(),
            name: "db".into(),
        },
        merge_patch: serde_json::Map::new(),
    });
    assert_eq!(
        paths(&p),
        [
            "spec.steps[4].kubernetesPatch.target.kind",
            "spec.steps[4].kubernetesPatch.mergePatch"
        ]
    );
}

#[test]
fn notify_needs_channels() {
    let mut p = good();
    p.spec.alerting = None;
    assert_eq!(paths(&p), ["spec.steps[5].notify"]);
}

#[test]
fn failback_steps_checked() {
    let mut p = good();
    if let Some(f) = p.spec.failback.as_mut()
        && let Some(d) = f.steps[0].dns_switch.as_mut()
        && let Some(e) = d.dns_endpoint.as_mut()
    {
        e.targets = vec!["not-an-ip".into()];
    }
    assert_eq!(
        paths(&p),
        ["spec.failback.steps[0].dnsSwitch.dnsEndpoint.targets[0]"]
    );
}

#[test]
fn drills_calendar() {
    let mut p = good();
    if let Some(d) = p.spec.drills.as_mut() {
        d.time_zone = "Moon/Base".into();
        d.schedule.cron = Some("0 3 1 6,12 *".into());
    }
    assert_eq!(paths(&p), ["spec.drills.timeZone", "spec.drills.schedule"]);
    if let Some(d) = p.spec.drills.as_mut() {
        d.time_zone = "UTC".into();
        d.schedule.cron = None;
        if let Some(r) = d.schedule.rrule.as_mut() {
            r.rule = "FREQ=SOMETIMES".into();
        }
    }
    assert_eq!(paths(&p), ["spec.drills.schedule.rrule.rule"]);
    if let Some(r) = p
        .spec
        .drills
        .as_mut()
        .and_then(|d| d.schedule.rrule.as_mut())
    {
        r.start = "June".into();
    }
    assert_eq!(paths(&p), ["spec.drills.schedule.rrule.start"]);
}

#[test]
fn objectives_and_alerting() {
    let mut p = good();
    p.spec.objectives = Some(FailoverObjectives {
        rto: Some(Duration::new("0s")),
    });
    if let Some(a) = p.spec.alerting.as_mut() {
        a.channels.push(a.channels[0].clone());
    }
    assert_eq!(
        paths(&p),
        ["spec.objectives.rto", "spec.alerting.channels[1].name"]
    );
}

#[test]
fn rollback_revision_is_positive() {
    let mut p = good();
    p.spec.steps[4].verify = None;
    p.spec.steps[4].kubernetes_rollback = Some(super::super::RollbackAction {
        workload_ref: crate::api::common::WorkloadRef {
            kind: crate::api::common::WorkloadKind::Deployment,
            name: "web".into(),
        },
        to_revision: Some(0),
    });
    assert_eq!(paths(&p), ["spec.steps[4].kubernetesRollback.toRevision"]);
    if let Some(r) = p.spec.steps[4].kubernetes_rollback.as_mut() {
        r.to_revision = None;
    }
    assert_eq!(paths(&p), Vec::<String>::new());
}
