//! The CEL rules and constraints of the generated HealthMonitor schema, run through the same
//! validator `check` and the test API server use.

use super::HealthMonitor;
use super::tests::GOOD;
use crate::api::schema_test_support::{self as support, yaml};

fn schema_errors(edit: impl FnOnce(&mut serde_yaml::Value)) -> Vec<String> {
    support::schema_errors::<HealthMonitor>(GOOD, edit)
}

#[track_caller]
fn rejects_at(path: &str, edit: impl FnOnce(&mut serde_yaml::Value)) {
    support::rejects_at::<HealthMonitor>(GOOD, path, edit);
}

#[test]
fn good_spec_passes_the_schema() {
    assert_eq!(schema_errors(|_| {}), Vec::<String>::new());
}

#[test]
fn target_one_of() {
    rejects_at("spec.target", |s| {
        s["target"]["tcp"] = yaml("{host: db, port: 5432}")
    });
    rejects_at("spec.target", |s| s["target"] = yaml("{}"));
}

#[test]
fn tcp_target_takes_no_request() {
    rejects_at("spec.request", |s| {
        s["target"] = yaml("{tcp: {host: db, port: 5432}}")
    });
}

#[test]
fn warning_milder_than_critical_in_both_directions() {
    rejects_at("spec.thresholds[0].critical", |s| {
        s["thresholds"][0]["warning"] = yaml("98")
    });
    rejects_at("spec.thresholds[1].critical", |s| {
        s["thresholds"][1]["warning"] = yaml("1500")
    });
    rejects_at("spec.thresholds[1].critical", |s| {
        s["thresholds"][1]["warning"] = yaml("1000")
    });
    rejects_at("spec.thresholds[1]", |s| {
        let t = s["thresholds"][1].as_mapping_mut().unwrap();
        t.remove("warning");
        t.remove("critical");
    });
}

#[test]
fn threshold_component_and_direction() {
    rejects_at("spec.thresholds[2].component", |s| {
        s["thresholds"][2]
            .as_mapping_mut()
            .unwrap()
            .remove("component");
    });
    rejects_at("spec.thresholds[0].component", |s| {
        s["thresholds"][0]["component"] = yaml("database")
    });
    rejects_at("spec.thresholds[0].direction", |s| {
        s["thresholds"][0]["direction"] = yaml("Above")
    });
    rejects_at("spec.thresholds[1].direction", |s| {
        s["thresholds"][1]["direction"] = yaml("Below")
    });
    rejects_at("spec.thresholds", |s| {
        s["thresholds"][2]["component"] = yaml("anthropic")
    });
    rejects_at("spec.thresholds", |s| {
        s["thresholds"][0]["window"] = yaml("7d")
    });
}

#[test]
fn json_assertion_operands() {
    rejects_at("spec.checks.json[2]", |s| {
        s["checks"]["json"][2]["value"] = yaml("x")
    });
    rejects_at("spec.checks.json[3]", |s| {
        s["checks"]["json"][3] = yaml("{path: $.a, operator: in, value: x}")
    });
    rejects_at("spec.checks.json[0]", |s| {
        s["checks"]["json"][0] = yaml("{path: $.a, operator: '=='}")
    });
    rejects_at("spec.checks.json[0].operator", |s| {
        s["checks"]["json"][0]["operator"] = yaml("'>='")
    });
}

#[test]
fn components_remediations_and_tls() {
    rejects_at("spec.components[2]", |s| {
        s["components"][2] = yaml("{name: cache}")
    });
    rejects_at("spec.remediations[1]", |s| {
        s["remediations"][1]["failover"] = yaml("{plan: {name: us-west}}")
    });
    rejects_at("spec.remediations[0].when", |s| {
        s["remediations"][0]["when"]["health"] = yaml("Down")
    });
    rejects_at("spec.request.tls.caBundle", |s| {
        s["request"]["tls"]["insecureSkipVerify"] = yaml("true")
    });
    rejects_at("spec.request.tls.caBundle", |s| {
        s["request"]["tls"]["caBundle"]["secretKeyRef"] = yaml("{name: a, key: b}")
    });
}

#[test]
fn constraints_from_attributes() {
    rejects_at("spec.failureThreshold", |s| {
        s["failureThreshold"] = yaml("0")
    });
    rejects_at("spec.windows", |s| s["windows"] = yaml("[]"));
    rejects_at("spec.checks.statusCodes[0]", |s| {
        s["checks"]["statusCodes"][0] = yaml("'2XX'")
    });
    rejects_at("spec.target.url", |s| {
        s["target"]["url"] = yaml("app.example.com")
    });
    rejects_at("spec.components[0].name", |s| {
        s["components"][0]["name"] = yaml("Database")
    });
}
