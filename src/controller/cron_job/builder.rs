//! Builds the `batch/v1` CronJob a CronJobSpec owns. Pure: no I/O, so the reconciler can apply
//! the result by server-side apply and tests can inspect it field by field.
//!
//! The CronJob has the CronJobSpec's name and namespace and a controller owner reference to it
//! (deletion cascades). Its Jobs run either the spec's `jobTemplate` or, for an `httpTrigger`,
//! one container running `watchkeeper agent trigger` in the operator's own image. Secrets (the
//! bearer token, credential headers) reach that container only as environment variables from
//! `secretKeyRef`, never as arguments.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{
    CronJob, CronJobSpec as K8sCronJobSpec, JobSpec, JobTemplateSpec,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EnvVar, EnvVarSource, PodSpec, PodTemplateSpec, SecretKeySelector,
    SecurityContext,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};

use crate::agent::BEARER_TOKEN_ENV;
use crate::api::common::{Duration, SecretKeyRef};
use crate::api::cron_job_spec::{ConcurrencyPolicy, CronJobSpec, HttpTrigger};

/// Label on everything watchkeeper creates.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "watchkeeper";
/// Label naming the CronJobSpec a CronJob (and its Jobs and Pods) belongs to, so the
/// controller can list a spec's Jobs by selector.
pub const CRON_JOB_SPEC_LABEL: &str = "watchkeeper.dev/cron-job-spec";
/// Name of the HTTP trigger container.
pub const TRIGGER_CONTAINER: &str = "trigger";
/// Where the trigger writes its result; Kubernetes reads it as the termination message.
pub const TERMINATION_LOG: &str = "/dev/termination-log";
/// Prefix of the environment variables carrying credential header values.
pub const HEADER_ENV_PREFIX: &str = "WATCHKEEPER_HEADER_";

/// Why a CronJob cannot be built from a CronJobSpec.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The object has no name, namespace or uid (it was not read from the API server).
    #[error(
        "CronJobSpec {name}: metadata.{field} is missing; only stored objects can own a CronJob"
    )]
    Metadata { name: String, field: &'static str },
    /// Neither `httpTrigger` nor `jobTemplate` is set.
    #[error("CronJobSpec {name}: spec.httpTrigger or spec.jobTemplate must be set")]
    NoJob { name: String },
    /// A duration field does not parse.
    #[error("CronJobSpec {name}: {field}: {message}")]
    Duration {
        name: String,
        field: &'static str,
        message: String,
    },
    /// A header has neither a value nor a Secret reference.
    #[error(
        "CronJobSpec {name}: spec.httpTrigger.headers[{index}] has neither value nor valueFrom"
    )]
    Header { name: String, index: usize },
}

/// The CronJob owned by `spec`, running HTTP triggers in `image` (the operator's own image).
pub fn build_cron_job(spec: &CronJobSpec, image: &str) -> Result<CronJob, BuildError> {
    let name = spec.name_any();
    let missing = |field| BuildError::Metadata {
        name: name.clone(),
        field,
    };
    let namespace = spec.namespace().ok_or_else(|| missing("namespace"))?;
    if spec.meta().name.is_none() {
        return Err(missing("name"));
    }
    let owner = spec
        .controller_owner_ref(&())
        .ok_or_else(|| missing("uid"))?;
    let s = &spec.spec;

    let mut labels = BTreeMap::new();
    let mut annotations = BTreeMap::new();
    if let Some(meta) = &s.cron_job_metadata {
        labels.extend(meta.labels.clone());
        annotations.extend(meta.annotations.clone());
    }
    labels.insert(MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string());
    labels.insert(CRON_JOB_SPEC_LABEL.to_string(), name.clone());

    let active_deadline = seconds(&name, "spec.activeDeadline", s.active_deadline.as_ref())?;
    let starting_deadline = seconds(&name, "spec.startingDeadline", s.starting_deadline.as_ref())?;

    let mut job_template = match (&s.http_trigger, &s.job_template) {
        (Some(trigger), _) => trigger_job(&name, trigger, image, s.resources.clone())?,
        (None, Some(template)) => template.clone(),
        (None, None) => return Err(BuildError::NoJob { name }),
    };
    // Labels and annotations go to the Jobs and their Pods too, ours winning.
    let job_meta = job_template
        .metadata
        .get_or_insert_with(ObjectMeta::default);
    merge(&mut job_meta.labels, &labels);
    merge(&mut job_meta.annotations, &annotations);
    let job_spec = job_template.spec.get_or_insert_with(JobSpec::default);
    let pod_meta = job_spec
        .template
        .metadata
        .get_or_insert_with(ObjectMeta::default);
    merge(&mut pod_meta.labels, &labels);
    if active_deadline.is_some() {
        job_spec.active_deadline_seconds = active_deadline;
    }
    match (s.backoff_limit, &s.http_trigger) {
        (Some(limit), _) => job_spec.backoff_limit = Some(limit),
        // HTTP triggers retry within the run.
        (None, Some(_)) => job_spec.backoff_limit = Some(0),
        (None, None) => {}
    }

    Ok(CronJob {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(namespace),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: K8sCronJobSpec {
            schedule: s.schedule.clone(),
            time_zone: Some(s.time_zone.clone().unwrap_or_else(|| "UTC".to_string())),
            concurrency_policy: Some(
                match s.concurrency_policy {
                    ConcurrencyPolicy::Allow => "Allow",
                    ConcurrencyPolicy::Forbid => "Forbid",
                    ConcurrencyPolicy::Replace => "Replace",
                }
                .to_string(),
            ),
            starting_deadline_seconds: starting_deadline,
            successful_jobs_history_limit: Some(s.successful_jobs_history_limit),
            failed_jobs_history_limit: Some(s.failed_jobs_history_limit),
            suspend: Some(s.suspend),
            job_template,
        },
        status: None,
    })
}

/// Adds `extra` to `target`, entries of `extra` winning.
fn merge(target: &mut Option<BTreeMap<String, String>>, extra: &BTreeMap<String, String>) {
    if extra.is_empty() {
        return;
    }
    target
        .get_or_insert_with(BTreeMap::new)
        .extend(extra.clone());
}

/// Whole seconds, rounded up (a 1.5s deadline must not become 1s).
fn seconds(
    name: &str,
    field: &'static str,
    duration: Option<&Duration>,
) -> Result<Option<i64>, BuildError> {
    let Some(duration) = duration else {
        return Ok(None);
    };
    let parsed = duration.parse().map_err(|e| BuildError::Duration {
        name: name.to_string(),
        field,
        message: e.to_string(),
    })?;
    let whole = parsed.as_secs() + u64::from(parsed.subsec_nanos() > 0);
    Ok(Some(i64::try_from(whole).unwrap_or(i64::MAX)))
}

fn secret_env(name: String, secret: &SecretKeyRef) -> EnvVar {
    EnvVar {
        name,
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.name.clone(),
                key: secret.key.clone(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
    }
}

/// The Job template of an HTTP trigger: one `watchkeeper agent trigger` container.
fn trigger_job(
    name: &str,
    trigger: &HttpTrigger,
    image: &str,
    resources: Option<k8s_openapi::api::core::v1::ResourceRequirements>,
) -> Result<JobTemplateSpec, BuildError> {
    let method = serde_json::to_value(trigger.method)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "GET".to_string());
    let mut args = vec![
        "agent".to_string(),
        "trigger".to_string(),
        "--url".to_string(),
        trigger.url.clone(),
        "--method".to_string(),
        method,
    ];
    let mut env = Vec::new();
    for (index, header) in trigger.headers.iter().enumerate() {
        match (&header.value, &header.value_from) {
            (Some(value), _) => {
                args.push("--header".to_string());
                args.push(format!("{}: {value}", header.name));
            }
            (None, Some(from)) => {
                let variable = format!("{HEADER_ENV_PREFIX}{index}");
                args.push("--header-from-env".to_string());
                args.push(format!("{}={variable}", header.name));
                env.push(secret_env(variable, &from.secret_key_ref));
            }
            (None, None) => {
                return Err(BuildError::Header {
                    name: name.to_string(),
                    index,
                });
            }
        }
    }
    if let Some(body) = &trigger.body {
        args.push("--body".to_string());
        args.push(body.clone());
    }
    args.push("--expected-status".to_string());
    args.push(trigger.expected_status.join(","));
    for (flag, duration) in [
        ("--timeout", &trigger.timeout),
        ("--backoff", &trigger.backoff),
    ] {
        args.push(flag.to_string());
        args.push(duration.as_str().to_string());
    }
    args.push("--retries".to_string());
    args.push(trigger.retries.to_string());
    args.push("--termination-log".to_string());
    args.push(TERMINATION_LOG.to_string());
    if let Some(secret) = &trigger.bearer_token_secret_ref {
        env.push(secret_env(BEARER_TOKEN_ENV.to_string(), secret));
    }
    let container = Container {
        name: TRIGGER_CONTAINER.to_string(),
        image: Some(image.to_string()),
        args: Some(args),
        env: (!env.is_empty()).then_some(env),
        resources,
        termination_message_path: Some(TERMINATION_LOG.to_string()),
        termination_message_policy: Some("File".to_string()),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_string()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    };
    Ok(JobTemplateSpec {
        metadata: None,
        spec: Some(JobSpec {
            template: PodTemplateSpec {
                metadata: None,
                spec: Some(PodSpec {
                    containers: vec![container],
                    restart_policy: Some("Never".to_string()),
                    ..PodSpec::default()
                }),
            },
            ..JobSpec::default()
        }),
    })
}

#[cfg(test)]
mod tests;
