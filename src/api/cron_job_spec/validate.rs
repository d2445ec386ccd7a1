//! Semantic rules of a CronJobSpec: the ones its CRD schema cannot express (cron syntax, time
//! zones, durations that need parsing) and the one-of rules again, so `check` reports them even
//! where no CEL runs.

use std::time::Duration as StdDuration;

use super::{CronJobSpec, CronJobSpecSpec, HttpTrigger};
use crate::api::common::{check_alerting, check_duration, check_headers, check_status_codes};
use crate::api::validation::{Errors, FieldError, Validate};

/// The CronJob controller looks for due runs every 10 seconds; a shorter starting deadline can
/// make runs be skipped although nothing is wrong.
const MIN_STARTING_DEADLINE: StdDuration = StdDuration::from_secs(10);

impl Validate for CronJobSpec {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Errors::new();
        validate_spec(&mut errors, &self.spec);
        errors.into_vec()
    }
}

fn validate_spec(errors: &mut Errors, spec: &CronJobSpecSpec) {
    let tz = match &spec.time_zone {
        Some(zone) => errors.check("spec.timeZone", crate::schedule::parse_time_zone(zone)),
        None => Some(chrono_tz::UTC),
    };
    let schedule = super::schedule_check::parse(errors, &spec.schedule, tz);

    match (&spec.http_trigger, &spec.job_template) {
        (Some(_), Some(_)) | (None, None) => errors.push(
            "spec.httpTrigger",
            "exactly one of httpTrigger or jobTemplate must be set",
        ),
        _ => {}
    }
    if let Some(trigger) = &spec.http_trigger {
        validate_trigger(errors, trigger);
    }
    if let Some(template) = &spec.job_template {
        validate_job_template(errors, template);
        if spec.resources.is_some() {
            errors.push(
                "spec.resources",
                "resources apply to the HTTP trigger container; set them inside jobTemplate instead",
            );
        }
    }

    if let Some(deadline) = check_duration(
        errors,
        "spec.startingDeadline",
        spec.starting_deadline.as_ref(),
    ) && deadline < MIN_STARTING_DEADLINE
    {
        errors.push(
            "spec.startingDeadline",
            "must be at least 10s: the CronJob controller checks for due runs every 10 seconds",
        );
    }
    if let Some(deadline) =
        check_duration(errors, "spec.activeDeadline", spec.active_deadline.as_ref())
        && deadline < StdDuration::from_secs(1)
    {
        errors.push("spec.activeDeadline", "must be at least 1s");
    }
    if spec.backoff_limit.is_some_and(|limit| limit < 0) {
        errors.push("spec.backoffLimit", "must not be negative");
    }
    if spec.successful_jobs_history_limit < 0 {
        errors.push("spec.successfulJobsHistoryLimit", "must not be negative");
    }
    if spec.failed_jobs_history_limit < 0 {
        errors.push("spec.failedJobsHistoryLimit", "must not be negative");
    }

    if let Some(monitoring) = &spec.monitoring {
        errors.check("spec.monitoring.lateAfter", monitoring.late_after.parse());
        if monitoring.failure_threshold == 0 {
            errors.push("spec.monitoring.failureThreshold", "must be at least 1");
        }
        if let Some(window) = check_duration(
            errors,
            "spec.monitoring.deadMansSwitch",
            monitoring.dead_mans_switch.as_ref(),
        ) && let Some(gap) = schedule
            .as_ref()
            .and_then(super::schedule_check::longest_gap)
            && window <= gap
        {
            errors.push(
                "spec.monitoring.deadMansSwitch",
                format!(
                    "{} is not longer than the {} between scheduled runs, so it would fire between every two runs",
                    monitoring.dead_mans_switch.as_ref().map(|d| d.as_str()).unwrap_or_default(),
                    human(gap)
                ),
            );
        }
        if let Some(alerting) = &monitoring.alerting {
            check_alerting(errors, "spec.monitoring.alerting", alerting);
        }
    }
}

fn validate_trigger(errors: &mut Errors, trigger: &HttpTrigger) {
    let path = "spec.httpTrigger";
    if !(trigger.url.starts_with("http://") || trigger.url.starts_with("https://"))
        || trigger.url.len() <= "https://".len()
    {
        errors.push(
            format!("{path}.url"),
            format!("{:?} is not an absolute http(s) URL", trigger.url),
        );
    }
    check_headers(errors, &format!("{path}.headers"), &trigger.headers);
    if trigger.bearer_token_secret_ref.is_some()
        && let Some(i) = trigger
            .headers
            .iter()
            .position(|h| h.name.eq_ignore_ascii_case("authorization"))
    {
        errors.push(
            format!("{path}.headers[{i}]"),
            "Authorization is already set by bearerTokenSecretRef",
        );
    }
    if trigger.expected_status.is_empty() {
        errors.push(
            format!("{path}.expectedStatus"),
            "must list at least one status",
        );
    }
    check_status_codes(
        errors,
        &format!("{path}.expectedStatus"),
        &trigger.expected_status,
    );
    if let Some(timeout) = errors.check(&format!("{path}.timeout"), trigger.timeout.parse())
        && timeout.is_zero()
    {
        errors.push(format!("{path}.timeout"), "must be longer than 0s");
    }
    errors.check(&format!("{path}.backoff"), trigger.backoff.parse());
    if trigger.retries > 10 {
        errors.push(format!("{path}.retries"), "must be at most 10");
    }
}

/// The parts of a Job template Kubernetes would reject only when the CronJob creates a Job —
/// hours after the object was accepted.
fn validate_job_template(
    errors: &mut Errors,
    template: &k8s_openapi::api::batch::v1::JobTemplateSpec,
) {
    let path = "spec.jobTemplate.spec.template.spec";
    let Some(pod) = template
        .spec
        .as_ref()
        .and_then(|job| job.template.spec.as_ref())
    else {
        errors.push(path, "a job template needs a pod spec");
        return;
    };
    if pod.containers.is_empty() {
        errors.push(
            format!("{path}.containers"),
            "a pod needs at least one container",
        );
    }
    for (i, container) in pod.containers.iter().enumerate() {
        if container.image.as_deref().is_none_or(str::is_empty) {
            errors.push(
                format!("{path}.containers[{i}].image"),
                "every container needs an image",
            );
        }
    }
    match pod.restart_policy.as_deref() {
        Some("OnFailure") | Some("Never") => {}
        other => errors.push(
            format!("{path}.restartPolicy"),
            format!(
                "a Job's pods need restartPolicy OnFailure or Never (got {})",
                other.map_or_else(|| "none".to_string(), |p| format!("{p:?}"))
            ),
        ),
    }
}

/// `1h`, `30m`, `1d 2h` — for messages.
fn human(duration: StdDuration) -> String {
    let secs = duration.as_secs();
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    let mut out = String::new();
    for (value, unit) in [(d, "d"), (h, "h"), (m, "m"), (s, "s")] {
        if value > 0 {
            out.push_str(&format!("{value}{unit}"));
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}
