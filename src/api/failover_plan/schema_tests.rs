//! The generated FailoverPlan schema (OpenAPI constraints and CEL rules) run through the same
//! validator `check` and the test API server use.

use super::FailoverPlan;
use super::validate::tests::GOOD;
use crate::api::schema_test_support::{self as support, yaml};

fn errors(edit: impl FnOnce(&mut serde_yaml::Value)) -> Vec<String> {
    support::schema_errors::<FailoverPlan>(GOOD, edit)
}

#[track_caller]
fn rejects_at(path: &str, edit: impl FnOnce(&mut serde_yaml::Value)) {
    support::rejects_at::<FailoverPlan>(GOOD, path, edit);
}

#[test]
fn good_plan_passes_the_schema() {
    assert_eq!(errors(|_| {}), Vec::<String>::new());
}

#[test]
fn regions_differ() {
    rejects_at("spec.secondary.name", |s| {
        s["secondary"]["name"] = s["primary"]["name"].clone()
    });
    rejects_at("spec.secondary.healthMonitorRef", |s| {
        s["secondary"]["healthMonitorRef"] = s["primary"]["healthMonitorRef"].clone()
    });
    // With a manual trigger one monitor may judge both sides.
    assert_eq!(
        errors(|s| {
            s["secondary"]["healthMonitorRef"] = s["primary"]["healthMonitorRef"].clone();
            s["trigger"]["mode"] = yaml("Manual");
        }),
        Vec::<String>::new()
    );
}

#[test]
fn one_action_per_step_and_unique_names() {
    rejects_at("spec.steps[5]", |s| {
        s["steps"][5]["verify"] = yaml("{consecutiveHealthy: 2}")
    });
    rejects_at("spec.steps[5]", |s| {
        if let Some(m) = s["steps"][5].as_mapping_mut() {
            m.remove("notify");
        }
    });
    rejects_at("spec.steps", |s| s["steps"][1]["name"] = yaml("fence"));
    rejects_at("spec.failback.steps", |s| {
        let copy = s["failback"]["steps"][0].clone();
        if let Some(list) = s["failback"]["steps"].as_sequence_mut() {
            list.push(copy);
        }
    });
}

#[test]
fn dns_and_fence_one_of() {
    rejects_at("spec.steps[2].dnsSwitch", |s| {
        s["steps"][2]["dnsSwitch"]["dnsEndpoint"] =
            yaml("{name: app, dnsName: app.example.com, recordType: A, targets: ['192.0.2.1']}")
    });
    rejects_at("spec.steps[0].fence", |s| {
        s["steps"][0]["fence"]["scaleToZero"] = yaml("{kind: Deployment, name: web}")
    });
}

#[test]
fn secrets_only_by_reference() {
    rejects_at("spec.steps[2].dnsSwitch.cloudflare.apiToken", |s| {
        s["steps"][2]["dnsSwitch"]["cloudflare"]["apiToken"] = yaml("abc")
    });
}

#[test]
fn drill_schedule_one_of_and_enums() {
    rejects_at("spec.drills.schedule", |s| {
        s["drills"]["schedule"]["cron"] = yaml("'0 3 1 6,12 *'")
    });
    rejects_at("spec.trigger.mode", |s| {
        s["trigger"]["mode"] = yaml("Sometimes")
    });
    rejects_at("spec.steps[1].retries", |s| {
        s["steps"][1]["retries"] = yaml("11")
    });
}

#[test]
fn merge_patch_keeps_any_object() {
    assert_eq!(
        errors(|s| {
            s["steps"][4] = yaml(
                "{name: env, kubernetesPatch: {target: {apiVersion: v1, kind: ConfigMap, name: app-config}, mergePatch: {data: {REGION: us-west-1}, metadata: {labels: {a: b}}}}}",
            )
        }),
        Vec::<String>::new()
    );
}

#[test]
fn crd_fits_a_client_side_apply() {
    support::assert_crd_fits_a_client_side_apply::<FailoverPlan>();
}
