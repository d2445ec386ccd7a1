//! Tests of HealthMonitor defaults and `validate()`: a good spec passes, each rule fails at the
//! right path.

use super::*;
use crate::api::validation::Validate;

pub(super) const GOOD: &str = r#"
apiVersion: watchkeeper.dev/v1alpha1
kind: HealthMonitor
metadata:
  name: api
spec:
  target:
    url: https://app.example.com/api/health
  request:
    headers:
      - name: Accept
        value: application/json
      - name: Authorization
        valueFrom:
          secretKeyRef: {name: probe-token, key: token}
    tls:
      caBundle:
        configMapKeyRef: {name: ca, key: ca.crt}
  interval: 30s
  timeout: 5s
  checks:
    statusCodes: ["200", "2xx", "200-299"]
    maxLatency: 2s
    json:
      - {path: $.status, operator: "==", value: healthy}
      - {path: "$.version", operator: matches, value: '^1\.'}
      - {path: "$.services", operator: exists}
      - {path: "$.services.storage", operator: in, values: [ok, degraded]}
    minCertificateValidity: 14d
  components:
    - {name: database, jsonPath: $.services.database}
    - {name: openai, jsonPath: "$.services.ai_providers.openai"}
    - {name: cache, valuePath: $.cache.hitRate}
  windows: [5m, 1h, 30d]
  thresholds:
    - {name: uptime, metric: Uptime, window: 30d, direction: Below, warning: 99.5, critical: 99}
    - {name: latency, metric: LatencyP95, window: 5m, direction: Above, warning: 500, critical: 1000}
    - {name: openai-errors, metric: ComponentErrorRate, component: openai, window: 1h, direction: Above, warning: 5, critical: 10}
    - {name: cache-hit-rate, metric: ComponentValue, component: cache, window: 1h, direction: Below, critical: 60}
  alerting:
    channels:
      - name: slack
        slack:
          webhookUrlSecretRef: {name: slack, key: url}
  remediations:
    - name: switch-provider
      when: {threshold: openai-errors}
      setConfigMapKey:
        configMapKeyRef: {name: app-config, key: AI_PROVIDER}
        value: claude
    - name: rollback
      when: {health: Down}
      rollback: {deployment: web}
      cooldown: 30m
      maxAttempts: 2
"#;

fn good() -> HealthMonitor {
    serde_yaml::from_str(GOOD).expect("GOOD parses")
}

fn paths(monitor: &HealthMonitor) -> Vec<String> {
    monitor.validate().into_iter().map(|e| e.path).collect()
}

/// Asserts that validation reports an error at `path`.
#[track_caller]
fn fails_at(monitor: &HealthMonitor, path: &str) {
    let found = paths(monitor);
    assert!(
        found.iter().any(|p| p == path),
        "expected an error at {path}, got {:?}",
        monitor.validate()
    );
}

fn edit(yaml_edit: impl FnOnce(&mut serde_yaml::Value)) -> HealthMonitor {
    let mut value: serde_yaml::Value = serde_yaml::from_str(GOOD).unwrap();
    yaml_edit(&mut value["spec"]);
    serde_yaml::from_value(value).expect("edited spec still deserializes")
}

fn yaml(text: &str) -> serde_yaml::Value {
    serde_yaml::from_str(text).unwrap()
}

#[test]
fn good_spec_passes() {
    assert_eq!(good().validate(), vec![]);
}

#[test]
fn defaults_fill_in() {
    let monitor: HealthMonitor = serde_yaml::from_str(
        "apiVersion: watchkeeper.dev/v1alpha1\nkind: HealthMonitor\nmetadata: {name: m}\nspec:\n  target: {url: 'http://a.example.com/'}\n",
    )
    .unwrap();
    let spec = &monitor.spec;
    assert_eq!(spec.interval.as_str(), "30s");
    assert_eq!(spec.timeout.as_str(), "10s");
    assert_eq!(spec.checks.status_codes, vec!["2xx"]);
    assert_eq!(spec.failure_threshold, 3);
    assert_eq!(spec.success_threshold, 1);
    assert_eq!(spec.windows.len(), 3);
    assert_eq!(spec.severities.down, crate::api::common::Severity::P0);
    assert_eq!(monitor.validate(), vec![]);
    assert_eq!(spec.target_display(), "http://a.example.com/");
}

#[test]
fn target_must_be_exactly_one() {
    fails_at(
        &edit(|s| s["target"]["tcp"] = yaml("{host: db, port: 5432}")),
        "spec.target",
    );
    fails_at(&edit(|s| s["target"] = yaml("{}")), "spec.target");
    fails_at(
        &edit(|s| s["target"]["url"] = yaml("ftp://x.example.com")),
        "spec.target.url",
    );
}

#[test]
fn tcp_target_takes_no_http_options() {
    let monitor = edit(|s| s["target"] = yaml("{tcp: {host: db.example.com, port: 5432}}"));
    fails_at(&monitor, "spec.request");
    fails_at(&monitor, "spec.checks.json");
    fails_at(&monitor, "spec.components");
    fails_at(&monitor, "spec.checks.minCertificateValidity");
    fails_at(
        &edit(|s| s["target"] = yaml("{tcp: {host: db, port: 70000}}")),
        "spec.target.tcp.port",
    );
}

#[test]
fn inline_credential_header_is_rejected() {
    fails_at(
        &edit(|s| s["request"]["headers"][1] = yaml("{name: Authorization, value: Bearer x}")),
        "spec.request.headers[1].value",
    );
}

#[test]
fn tls_rules() {
    fails_at(
        &edit(|s| s["request"]["tls"]["insecureSkipVerify"] = yaml("true")),
        "spec.request.tls.caBundle",
    );
    fails_at(
        &edit(|s| s["request"]["tls"]["caBundle"]["secretKeyRef"] = yaml("{name: a, key: b}")),
        "spec.request.tls.caBundle",
    );
    fails_at(
        &edit(|s| s["target"]["url"] = yaml("http://app.example.com/")),
        "spec.request.tls",
    );
}

#[test]
fn durations_and_timing() {
    fails_at(&edit(|s| s["interval"] = yaml("30 s")), "spec.interval");
    fails_at(&edit(|s| s["timeout"] = yaml("1m")), "spec.timeout");
    fails_at(
        &edit(|s| s["checks"]["maxLatency"] = yaml("5s")),
        "spec.checks.maxLatency",
    );
    fails_at(&edit(|s| s["windows"][1] = yaml("1y")), "spec.windows[1]");
    fails_at(&edit(|s| s["windows"][1] = yaml("5m")), "spec.windows[1]");
    fails_at(&edit(|s| s["windows"][0] = yaml("10s")), "spec.windows[0]");
}

#[test]
fn status_codes_and_assertions() {
    fails_at(
        &edit(|s| s["checks"]["statusCodes"][2] = yaml("'299-200'")),
        "spec.checks.statusCodes[2]",
    );
    fails_at(
        &edit(|s| s["checks"]["statusCodes"][0] = yaml("'600'")),
        "spec.checks.statusCodes[0]",
    );
    fails_at(
        &edit(|s| s["checks"]["json"][0]["path"] = yaml("'$..status'")),
        "spec.checks.json[0].path",
    );
    fails_at(
        &edit(|s| s["checks"]["json"][1]["value"] = yaml("'(unclosed'")),
        "spec.checks.json[1].value",
    );
    fails_at(
        &edit(|s| s["checks"]["json"][2]["value"] = yaml("x")),
        "spec.checks.json[2]",
    );
    fails_at(
        &edit(|s| s["checks"]["json"][0] = yaml("{path: $.n, operator: '<', value: many}")),
        "spec.checks.json[0].value",
    );
    fails_at(
        &edit(|s| s["checks"]["json"][3] = yaml("{path: $.n, operator: in}")),
        "spec.checks.json[3].values",
    );
    fails_at(
        &edit(|s| s["checks"]["json"][0] = yaml("{path: $.n, operator: '=='}")),
        "spec.checks.json[0].value",
    );
}

#[test]
fn components_rules() {
    fails_at(
        &edit(|s| s["components"][1]["name"] = yaml("database")),
        "spec.components[1].name",
    );
    fails_at(
        &edit(|s| s["components"][0]["jsonPath"] = yaml("services.database")),
        "spec.components[0].jsonPath",
    );
    fails_at(
        &edit(|s| s["components"][2] = yaml("{name: cache}")),
        "spec.components[2]",
    );
}

#[test]
fn warning_must_be_milder_than_critical() {
    fails_at(
        &edit(|s| s["thresholds"][0]["warning"] = yaml("98")),
        "spec.thresholds[0].critical",
    );
    fails_at(
        &edit(|s| s["thresholds"][1]["critical"] = yaml("400")),
        "spec.thresholds[1].critical",
    );
    // equal levels are not milder either
    fails_at(
        &edit(|s| s["thresholds"][1]["critical"] = yaml("500")),
        "spec.thresholds[1].critical",
    );
}

#[test]
fn threshold_rules() {
    fails_at(
        &edit(|s| s["thresholds"][0]["window"] = yaml("7d")),
        "spec.thresholds[0].window",
    );
    fails_at(
        &edit(|s| s["thresholds"][0]["direction"] = yaml("Above")),
        "spec.thresholds[0].direction",
    );
    fails_at(
        &edit(|s| s["thresholds"][0]["critical"] = yaml("120")),
        "spec.thresholds[0].critical",
    );
    fails_at(
        &edit(|s| s["thresholds"][1]["warning"] = yaml("-1")),
        "spec.thresholds[1].warning",
    );
    fails_at(
        &edit(|s| s["thresholds"][2]["component"] = yaml("anthropic")),
        "spec.thresholds[2].component",
    );
    fails_at(
        &edit(|s| s["thresholds"][3]["component"] = yaml("database")),
        "spec.thresholds[3].component",
    );
    fails_at(
        &edit(|s| s["thresholds"][0]["component"] = yaml("database")),
        "spec.thresholds[0].component",
    );
    fails_at(
        &edit(|s| s["thresholds"][1]["name"] = yaml("uptime")),
        "spec.thresholds[1].name",
    );
    fails_at(
        &edit(|s| {
            s["thresholds"][3] = yaml("{name: x, metric: ErrorRate, window: 1h, direction: Above}")
        }),
        "spec.thresholds[3]",
    );
}

#[test]
fn remediation_rules() {
    fails_at(
        &edit(|s| s["remediations"][0]["when"]["threshold"] = yaml("nope")),
        "spec.remediations[0].when.threshold",
    );
    fails_at(
        &edit(|s| s["remediations"][0]["when"]["health"] = yaml("Down")),
        "spec.remediations[0].when",
    );
    fails_at(
        &edit(|s| {
            s["remediations"][1]["scale"] =
                yaml("{workload: {kind: Deployment, name: web}, replicas: 3}")
        }),
        "spec.remediations[1]",
    );
    fails_at(
        &edit(|s| s["remediations"][1]["cooldown"] = yaml("soon")),
        "spec.remediations[1].cooldown",
    );
    fails_at(
        &edit(|s| s["remediations"][1]["maxAttempts"] = yaml("0")),
        "spec.remediations[1].maxAttempts",
    );
    fails_at(
        &edit(|s| {
            s["remediations"][0]["when"] = yaml("{threshold: cache-hit-rate, level: Warning}")
        }),
        "spec.remediations[0].when.level",
    );
    fails_at(
        &edit(|s| s["remediations"][1]["name"] = yaml("switch-provider")),
        "spec.remediations[1].name",
    );
}

#[test]
fn alerting_is_checked() {
    fails_at(
        &edit(|s| s["alerting"]["routes"] = yaml("[{channels: [pager]}]")),
        "spec.alerting.routes[0].channels[0]",
    );
}

#[test]
fn all_errors_are_reported_at_once() {
    let monitor = edit(|s| {
        s["interval"] = yaml("bad");
        s["thresholds"][0]["warning"] = yaml("98");
        s["components"][0]["jsonPath"] = yaml("nope");
    });
    let found = paths(&monitor);
    for path in [
        "spec.interval",
        "spec.thresholds[0].critical",
        "spec.components[0].jsonPath",
    ] {
        assert!(
            found.iter().any(|p| p == path),
            "{path} missing in {found:?}"
        );
    }
}

#[test]
fn threshold_levels() {
    let monitor = good();
    let uptime = &monitor.spec.thresholds[0];
    assert_eq!(uptime.level_of(99.9), ThresholdLevel::Ok);
    assert_eq!(uptime.level_of(99.2), ThresholdLevel::Warning);
    assert_eq!(uptime.level_of(98.0), ThresholdLevel::Critical);
    let latency = &monitor.spec.thresholds[1];
    assert_eq!(latency.level_of(200.0), ThresholdLevel::Ok);
    assert_eq!(latency.level_of(700.0), ThresholdLevel::Warning);
    assert_eq!(latency.level_of(1500.0), ThresholdLevel::Critical);
}

#[test]
fn status_code_entries_match() {
    use crate::api::common::status_code_matches;
    assert!(status_code_matches("2xx", 204));
    assert!(!status_code_matches("2xx", 301));
    assert!(status_code_matches("200-299", 299));
    assert!(!status_code_matches("200-299", 300));
    assert!(status_code_matches("503", 503));
    assert!(!status_code_matches("503", 500));
    assert!(!status_code_matches("2XX", 200));
    assert!(!status_code_matches("abc", 200));
}
