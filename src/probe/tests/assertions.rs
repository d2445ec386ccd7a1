//! JSON assertions, components and status codes, without a network.

use serde_json::json;

use super::{assertion, component};
use crate::probe::{ComponentSpec, JsonAssertion, JsonOperator, ProbeError, status_code_matches};

fn body() -> serde_json::Value {
    json!({
        "status": "healthy",
        "version": "1.4.2",
        "uptime_s": 86400,
        "latency_ms": 12.5,
        "ready": true,
        "maintenance": null,
        "region": "eu-west",
        "services": {"database": "ok", "ai_providers": {"openai": "ok", "claude": "down"}, "storage": "ok"},
        "checks": [{"name": "db", "ok": true}]
    })
}

#[test]
fn every_operator_passes_and_fails() {
    let document = body();
    let cases = [
        (r#"$.status == "healthy""#, true),
        (r#"$.status == "degraded""#, false),
        ("$.uptime_s == 86400", true),
        ("$.uptime_s == 86401", false),
        ("$.ready == true", true),
        ("$.ready == false", false),
        ("$.maintenance == null", true),
        (r#"$.status != "degraded""#, true),
        (r#"$.status != "healthy""#, false),
        (r#"$.missing != "x""#, true),
        ("$.latency_ms < 200", true),
        ("$.latency_ms < 12.5", false),
        ("$.uptime_s > 3600", true),
        ("$.uptime_s > 86400", false),
        (r#"$.region in ["us-east", "eu-west"]"#, true),
        (r#"$.region in ["us-east", "ap-south"]"#, false),
        ("$.uptime_s in [1, 86400]", true),
        ("$.maintenance exists", true),
        ("$.checks[0].name exists", true),
        ("$.build exists", false),
        (r#"$.version matches "^1\\.4\\.""#, true),
        (r#"$.version matches '^1\.4\.'"#, true),
        (r#"$.version matches "^2\\.""#, false),
        (r#"$.uptime_s matches "^864""#, true),
        (r#"$.services.ai_providers.claude == "ok""#, false),
        (r#"$.checks[-1].ok == true"#, true),
    ];
    for (expression, expected) in cases {
        let result = assertion(expression).check(&document);
        assert_eq!(result.is_ok(), expected, "{expression}: {result:?}");
    }
}

#[test]
fn failures_say_what_was_found() {
    let document = body();
    let message = assertion(r#"$.status == "degraded""#)
        .check(&document)
        .unwrap_err();
    assert!(message.contains("\"healthy\""), "{message}");
    assert!(message.contains("$.status"), "{message}");
    let message = assertion("$.build exists").check(&document).unwrap_err();
    assert!(message.contains("not present"), "{message}");
    let message = assertion("$.status < 5").check(&document).unwrap_err();
    assert!(message.contains("not a number"), "{message}");
    let message = assertion(r#"$.nothing == "x""#)
        .check(&document)
        .unwrap_err();
    assert!(message.contains("not present"), "{message}");
}

#[test]
fn bad_assertions_are_rejected_when_built() {
    let invalid = |result: Result<JsonAssertion, ProbeError>| {
        result.expect_err("should be rejected").to_string()
    };
    let message = invalid(JsonAssertion::new(
        "checks.json[0]",
        "$..x",
        JsonOperator::Exists,
        None,
        &[],
    ));
    assert!(message.contains("checks.json[0].path"), "{message}");
    let message = invalid(JsonAssertion::new(
        "checks.json[1]",
        "$.a",
        JsonOperator::Lt,
        Some("fast"),
        &[],
    ));
    assert!(message.contains("needs a number"), "{message}");
    let message = invalid(JsonAssertion::new(
        "j",
        "$.a",
        JsonOperator::Matches,
        Some("(unclosed"),
        &[],
    ));
    assert!(message.contains("regular expression"), "{message}");
    invalid(JsonAssertion::new("j", "$.a", JsonOperator::Eq, None, &[]));
    invalid(JsonAssertion::new(
        "j",
        "$.a",
        JsonOperator::Exists,
        Some("x"),
        &[],
    ));
    invalid(JsonAssertion::new("j", "$.a", JsonOperator::In, None, &[]));
    invalid(JsonAssertion::new(
        "j",
        "$.a",
        JsonOperator::Eq,
        Some("x"),
        &["y".into()],
    ));
    invalid(JsonAssertion::parse_expression("j", "$.a ~ 3"));
    invalid(JsonAssertion::parse_expression("j", "$.a in notalist"));
    let ok = JsonAssertion::new("j", "$.a", JsonOperator::In, None, &["x".into()]).unwrap();
    assert_eq!(ok.operator(), JsonOperator::In);
    assert_eq!(ok.path().to_string(), "$.a");
}

#[test]
fn components_follow_the_guide_shape() {
    let document = body();
    let database = component("database", "$.services.database").evaluate(&document);
    assert!(database.up);
    assert_eq!(database.raw.as_deref(), Some("ok"));
    let claude = component("claude", "$.services.ai_providers.claude").evaluate(&document);
    assert!(!claude.up);
    assert_eq!(claude.raw.as_deref(), Some("down"));
    let missing = component("cache", "$.services.cache").evaluate(&document);
    assert!(!missing.up);
    assert_eq!(missing.raw, None);
    let ready = component("ready", "$.ready").evaluate(&document);
    assert!(ready.up, "true matches the default healthy value \"true\"");
    let custom =
        ComponentSpec::new("c", "status", Some("$.status"), &["green".into()], None).unwrap();
    assert!(
        !custom.evaluate(&document).up,
        "healthy values replace the defaults"
    );
}

#[test]
fn component_values_are_numbers() {
    let document = json!({"db": {"state": "ok", "latency_ms": 42.5}, "cache": {"hit_rate": "71.5"}, "odd": {"v": "fast"}});
    let db = ComponentSpec::new("c", "db", Some("$.db.state"), &[], Some("$.db.latency_ms"))
        .unwrap()
        .evaluate(&document);
    assert!(db.up);
    assert_eq!(db.value, Some(42.5));
    let cache = ComponentSpec::new("c", "cache", None, &[], Some("$.cache.hit_rate"))
        .unwrap()
        .evaluate(&document);
    assert!(cache.up);
    assert_eq!(cache.value, Some(71.5));
    let odd = ComponentSpec::new("c", "odd", None, &[], Some("$.odd.v"))
        .unwrap()
        .evaluate(&document);
    assert!(!odd.up);
    assert_eq!(odd.value, None);
    assert!(ComponentSpec::new("c", "none", None, &[], None).is_err());
    assert!(ComponentSpec::new("c", "bad", Some("$[*]"), &[], None).is_err());
}

#[test]
fn status_codes_accept_codes_classes_and_ranges() {
    assert!(status_code_matches("200", 200));
    assert!(!status_code_matches("200", 201));
    assert!(status_code_matches("2xx", 204));
    assert!(!status_code_matches("2xx", 301));
    assert!(status_code_matches("200-299", 299));
    assert!(!status_code_matches("200-299", 300));
    assert!(!status_code_matches("garbage", 200));
    assert!(!status_code_matches("299-200", 250));
}
