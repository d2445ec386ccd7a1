//! Semantic rules of a HealthMonitor: everything its CRD schema cannot express (durations,
//! JSONPath and regex syntax, references between thresholds, components and remediations) and
//! the one-of rules again, so `check` reports them even where no CEL runs.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration as StdDuration;

use super::json_path::JsonPath;
use super::{
    Component, HealthMonitor, HealthMonitorSpec, JsonAssertion, JsonOperator, ProbeTarget, Scheme,
};
use crate::api::common::{check_alerting, check_duration, check_headers, check_status_codes};
use crate::api::validation::{Errors, FieldError, Validate};

mod thresholds;
use thresholds::{validate_remediations, validate_thresholds};

impl Validate for HealthMonitor {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Errors::new();
        validate_spec(&mut errors, &self.spec);
        errors.into_vec()
    }
}

fn validate_spec(errors: &mut Errors, spec: &HealthMonitorSpec) {
    let tcp = spec.target.tcp.is_some();
    validate_target(errors, &spec.target);
    validate_request(errors, spec, tcp);

    let interval = errors.check("spec.interval", spec.interval.parse());
    if interval.is_some_and(|i| i < StdDuration::from_secs(1)) {
        errors.push("spec.interval", "must be at least 1s");
    }
    let timeout = errors.check("spec.timeout", spec.timeout.parse());
    if let Some(timeout) = timeout {
        if timeout.is_zero() {
            errors.push("spec.timeout", "must be longer than 0s");
        } else if interval.is_some_and(|i| timeout >= i) {
            errors.push(
                "spec.timeout",
                format!(
                    "must be shorter than interval ({}), or probes would overlap",
                    spec.interval
                ),
            );
        }
    }

    validate_checks(errors, spec, timeout, tcp);
    let components = validate_components(errors, &spec.components, tcp);

    if spec.failure_threshold == 0 {
        errors.push("spec.failureThreshold", "must be at least 1");
    }
    if spec.success_threshold == 0 {
        errors.push("spec.successThreshold", "must be at least 1");
    }

    validate_windows(errors, spec, interval);
    let thresholds = validate_thresholds(errors, spec, &components);
    if let Some(alerting) = &spec.alerting {
        check_alerting(errors, "spec.alerting", alerting);
    }
    validate_remediations(errors, &spec.remediations, &thresholds);
}

fn validate_target(errors: &mut Errors, target: &ProbeTarget) {
    let set = [
        target.url.is_some(),
        target.service.is_some(),
        target.tcp.is_some(),
    ];
    if set.iter().filter(|s| **s).count() != 1 {
        errors.push(
            "spec.target",
            "exactly one of url, service or tcp must be set",
        );
    }
    if let Some(url) = &target.url {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        if rest
            .is_none_or(|r| r.is_empty() || r.starts_with('/') || r.contains(char::is_whitespace))
        {
            errors.push(
                "spec.target.url",
                format!("{url:?} is not an absolute http(s) URL"),
            );
        }
    }
    if let Some(service) = &target.service {
        check_port(errors, "spec.target.service.port", service.port);
        if !service.path.starts_with('/') {
            errors.push("spec.target.service.path", "must start with /");
        }
    }
    if let Some(tcp) = &target.tcp {
        check_port(errors, "spec.target.tcp.port", tcp.port);
        if tcp.host.is_empty() {
            errors.push("spec.target.tcp.host", "must not be empty");
        }
    }
}

fn check_port(errors: &mut Errors, path: &str, port: i32) {
    if !(1..=65535).contains(&port) {
        errors.push(path, format!("{port} is not a port number (1-65535)"));
    }
}

fn validate_request(errors: &mut Errors, spec: &HealthMonitorSpec, tcp: bool) {
    let Some(request) = &spec.request else {
        return;
    };
    if tcp {
        errors.push(
            "spec.request",
            "request options apply to HTTP targets only, not to a tcp target",
        );
    }
    check_headers(errors, "spec.request.headers", &request.headers);
    if let Some(tls) = &request.tls {
        if let Some(bundle) = &tls.ca_bundle {
            if bundle.config_map_key_ref.is_some() == bundle.secret_key_ref.is_some() {
                errors.push(
                    "spec.request.tls.caBundle",
                    "exactly one of configMapKeyRef or secretKeyRef must be set",
                );
            }
            if tls.insecure_skip_verify {
                errors.push(
                    "spec.request.tls.caBundle",
                    "caBundle has no effect with insecureSkipVerify",
                );
            }
        }
        if !is_https(spec) {
            errors.push("spec.request.tls", "TLS options need an https target");
        }
    }
    if let Some(redirects) = &request.redirects
        && !(1..=20).contains(&redirects.limit)
    {
        errors.push("spec.request.redirects.limit", "must be between 1 and 20");
    }
}

fn is_https(spec: &HealthMonitorSpec) -> bool {
    spec.target
        .url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
        || spec
            .target
            .service
            .as_ref()
            .is_some_and(|s| s.scheme == Scheme::Https)
}

fn validate_checks(
    errors: &mut Errors,
    spec: &HealthMonitorSpec,
    timeout: Option<StdDuration>,
    tcp: bool,
) {
    let checks = &spec.checks;
    if checks.status_codes.is_empty() {
        errors.push("spec.checks.statusCodes", "must list at least one status");
    }
    check_status_codes(errors, "spec.checks.statusCodes", &checks.status_codes);
    if let Some(max) = check_duration(
        errors,
        "spec.checks.maxLatency",
        checks.max_latency.as_ref(),
    ) && timeout.is_some_and(|t| max >= t)
    {
        errors.push(
            "spec.checks.maxLatency",
            format!("must be shorter than timeout ({})", spec.timeout),
        );
    }
    if tcp && !checks.json.is_empty() {
        errors.push("spec.checks.json", "a tcp target has no body to assert on");
    }
    for (i, assertion) in checks.json.iter().enumerate() {
        validate_assertion(errors, &format!("spec.checks.json[{i}]"), assertion);
    }
    if check_duration(
        errors,
        "spec.checks.minCertificateValidity",
        checks.min_certificate_validity.as_ref(),
    )
    .is_some()
        && !is_https(spec)
    {
        errors.push(
            "spec.checks.minCertificateValidity",
            "a certificate expiry horizon needs an https target",
        );
    }
}

fn validate_assertion(errors: &mut Errors, path: &str, assertion: &JsonAssertion) {
    errors.check(&format!("{path}.path"), JsonPath::parse(&assertion.path));
    match assertion.operator {
        JsonOperator::Exists => {
            if assertion.value.is_some() || !assertion.values.is_empty() {
                errors.push(path, "exists takes no value or values");
            }
        }
        JsonOperator::In => {
            if assertion.values.is_empty() {
                errors.push(format!("{path}.values"), "in needs at least one value");
            }
            if assertion.value.is_some() {
                errors.push(format!("{path}.value"), "in takes values, not value");
            }
        }
        operator => {
            if !assertion.values.is_empty() {
                errors.push(
                    format!("{path}.values"),
                    "only the in operator takes values",
                );
            }
            match (&assertion.value, operator) {
                (None, _) => errors.push(
                    format!("{path}.value"),
                    "this operator needs a value to compare with",
                ),
                (Some(value), JsonOperator::Lt | JsonOperator::Gt)
                    if value.trim().parse::<f64>().is_err() =>
                {
                    errors.push(
                        format!("{path}.value"),
                        format!("{value:?} is not a number, which < and > compare"),
                    );
                }
                (Some(value), JsonOperator::Matches) => {
                    if let Err(error) = regex::Regex::new(value) {
                        errors.push(
                            format!("{path}.value"),
                            format!("invalid regular expression: {error}"),
                        );
                    }
                }
                _ => {}
            }
        }
    }
}

/// What thresholds may refer to about each component: (has jsonPath, has valuePath).
pub(super) type ComponentKinds = BTreeMap<String, (bool, bool)>;

fn validate_components(errors: &mut Errors, components: &[Component], tcp: bool) -> ComponentKinds {
    let mut kinds = ComponentKinds::new();
    if tcp && !components.is_empty() {
        errors.push(
            "spec.components",
            "a tcp target has no body to read components from",
        );
    }
    for (i, component) in components.iter().enumerate() {
        let path = format!("spec.components[{i}]");
        if kinds
            .insert(
                component.name.clone(),
                (
                    component.json_path.is_some(),
                    component.value_path.is_some(),
                ),
            )
            .is_some()
        {
            errors.push(
                format!("{path}.name"),
                format!("duplicate component name {:?}", component.name),
            );
        }
        if component.json_path.is_none() && component.value_path.is_none() {
            errors.push(&path, "set jsonPath, valuePath or both");
        }
        if let Some(json_path) = &component.json_path {
            errors.check(&format!("{path}.jsonPath"), JsonPath::parse(json_path));
            if component.healthy_values.is_empty() {
                errors.push(
                    format!("{path}.healthyValues"),
                    "must list at least one value",
                );
            }
        }
        if let Some(value_path) = &component.value_path {
            errors.check(&format!("{path}.valuePath"), JsonPath::parse(value_path));
        }
    }
    kinds
}

fn validate_windows(errors: &mut Errors, spec: &HealthMonitorSpec, interval: Option<StdDuration>) {
    if spec.windows.is_empty() {
        errors.push("spec.windows", "must list at least one window");
    }
    let mut seen = BTreeSet::new();
    for (i, window) in spec.windows.iter().enumerate() {
        let path = format!("spec.windows[{i}]");
        let Some(length) = errors.check(&path, window.parse()) else {
            continue;
        };
        if !seen.insert(length) {
            errors.push(&path, format!("window {window} is listed twice"));
        }
        if interval.is_some_and(|i| length < i) {
            errors.push(
                &path,
                format!(
                    "window {window} is shorter than interval ({})",
                    spec.interval
                ),
            );
        }
    }
}
