//! The CEL rules and size of the generated CronJobSpec schema, run through the same validator
//! `check` and the test API server use.

use super::CronJobSpec;
use super::tests::{GOOD, TEMPLATE};
use crate::api::schema_test_support::{self as support, yaml};

fn schema_errors(base: &str, edit: impl FnOnce(&mut serde_yaml::Value)) -> Vec<String> {
    support::schema_errors::<CronJobSpec>(base, edit)
}

#[track_caller]
fn rejects_at(base: &str, path: &str, edit: impl FnOnce(&mut serde_yaml::Value)) {
    support::rejects_at::<CronJobSpec>(base, path, edit);
}

#[test]
fn good_specs_pass_the_schema() {
    assert_eq!(schema_errors(GOOD, |_| {}), Vec::<String>::new());
    assert_eq!(schema_errors(TEMPLATE, |_| {}), Vec::<String>::new());
}

#[test]
fn exactly_one_job_form() {
    rejects_at(GOOD, "spec.httpTrigger", |s| {
        s.as_mapping_mut().unwrap().remove("httpTrigger");
    });
    rejects_at(TEMPLATE, "spec.httpTrigger", |s| {
        s["httpTrigger"] = yaml("{url: 'https://app.example.com/x'}")
    });
}

#[test]
fn resources_only_with_the_http_trigger() {
    rejects_at(TEMPLATE, "spec.resources", |s| {
        s["resources"] = yaml("{limits: {memory: 64Mi}}")
    });
    assert_eq!(
        schema_errors(GOOD, |s| s["resources"] = yaml("{limits: {memory: 64Mi}}")),
        Vec::<String>::new()
    );
}

#[test]
fn job_template_is_checked_by_the_schema() {
    rejects_at(
        TEMPLATE,
        "spec.jobTemplate.spec.template.spec.containers[0].name",
        |s| {
            s["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
                .as_mapping_mut()
                .unwrap()
                .remove("name");
        },
    );
    rejects_at(TEMPLATE, "spec.jobTemplate.spec.backoffLimit", |s| {
        s["jobTemplate"]["spec"]["backoffLimit"] = yaml("many")
    });
}

#[test]
fn crd_fits_a_client_side_apply() {
    // `kubectl apply` (client side) stores the whole object in an annotation limited to 256 KiB.
    support::assert_crd_fits_a_client_side_apply::<CronJobSpec>();
}

#[test]
fn quantities_may_be_numbers_or_strings() {
    let resources = "{requests: {cpu: 1, memory: 64Mi}, limits: {cpu: '0.5', memory: 134217728}}";
    assert_eq!(
        schema_errors(GOOD, |s| s["resources"] = yaml(resources)),
        Vec::<String>::new()
    );
    assert_eq!(
        schema_errors(TEMPLATE, |s| {
            s["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["resources"] =
                yaml(resources)
        }),
        Vec::<String>::new()
    );
    rejects_at(GOOD, "spec.resources.limits.cpu", |s| {
        s["resources"] = yaml("{limits: {cpu: [1]}}")
    });
}
