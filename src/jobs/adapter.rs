//! From the API's `CronJobSpecSpec` to the engines' configurations: the watch policy
//! ([`WatchPolicy`]), alert severities ([`JobSeverities`]) and alerting ([`AlertingConfig`]),
//! and for HTTP triggers run in-process the request ([`TriggerConfig`]), with every Secret
//! resolved through a [`SecretResolver`]. Also the way back: engine values as status values.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderName, HeaderValue};

use crate::agent::{Outcome, TriggerConfig, TriggerResult};
use crate::alert::AlertingConfig;
use crate::api::common::{self, HttpMethod};
use crate::api::cron_job_spec::{
    ConcurrencyPolicy, CronHealth, CronJobSpecSpec, HttpTrigger, RunRecord, RunResult,
};
use crate::monitor::adapter::{SecretResolver, alerting_config, severity};
use crate::monitor::{Environment, status::time};
use crate::schedule::DstRule;
use crate::schedule::watch::{
    JobHealth, JobSeverities, RunObservation, RunOutcome, RunTrigger, WatchPolicy,
};

use super::JobError;

/// Late grace when `monitoring` is absent (the API's default for `monitoring.lateAfter`).
const DEFAULT_LATE_AFTER: Duration = Duration::from_secs(5 * 60);

/// Longest wait between two trigger retries (the agent's `--max-backoff` default).
const MAX_BACKOFF: Duration = Duration::from_secs(5 * 60);

/// Where the job lives, for alert labels, metrics and sources.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobKey {
    /// Namespace (`default` in run mode unless the manifest sets one).
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

impl std::fmt::Display for JobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl JobKey {
    /// Labels of the job's alerts: `kind`, `namespace`, `name` (the engine adds `condition`).
    pub fn alert_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("kind".to_string(), "CronJobSpec".to_string()),
            ("namespace".to_string(), self.namespace.clone()),
            ("name".to_string(), self.name.clone()),
        ])
    }

    /// The alert source, `CronJobSpec namespace/name`.
    pub fn source(&self) -> String {
        format!("CronJobSpec {self}")
    }
}

/// Everything needed to watch (and in embedded mode run) one job, with no Kubernetes types.
#[derive(Clone, Debug)]
pub struct JobConfig {
    /// How runs are judged against the schedule.
    pub policy: WatchPolicy,
    /// Alert severity per unhealthy state.
    pub severities: JobSeverities,
    /// Where alerts go; `None` means health is tracked but nobody is notified.
    pub alerting: Option<AlertingConfig>,
    /// The HTTP call of one run, in embedded mode (`None` in a cluster, where the trigger
    /// agent makes it inside the Job's pod).
    pub trigger: Option<TriggerConfig>,
    /// What to do when a run is due while the previous one is still going.
    pub concurrency: ConcurrencyPolicy,
    /// Longest a run may take (`spec.activeDeadline`).
    pub active_deadline: Option<Duration>,
}

fn duration(field: &str, value: &common::Duration) -> Result<Duration, JobError> {
    value.parse().map_err(|e| JobError::Spec {
        field: field.to_string(),
        message: e.to_string(),
    })
}

/// The watch policy: the schedule in its zone with the Kubernetes CronJob controller's DST rule
/// (docs/decisions.md), the monitoring thresholds, the starting deadline and `suspend`.
pub fn watch_policy(spec: &CronJobSpecSpec) -> Result<WatchPolicy, JobError> {
    let schedule = spec.cron_schedule().map_err(|e| JobError::Spec {
        field: if matches!(e, crate::schedule::ScheduleError::UnknownTimeZone(_)) {
            "spec.timeZone".to_string()
        } else {
            "spec.schedule".to_string()
        },
        message: e.to_string(),
    })?;
    let monitoring = spec.monitoring.as_ref();
    Ok(WatchPolicy {
        schedule: schedule.with_dst_rule(DstRule::Kubernetes),
        late_after: monitoring
            .map(|m| duration("spec.monitoring.lateAfter", &m.late_after))
            .transpose()?
            .unwrap_or(DEFAULT_LATE_AFTER),
        failure_threshold: monitoring.map_or(1, |m| m.failure_threshold.max(1)),
        dead_mans_switch: monitoring
            .and_then(|m| m.dead_mans_switch.as_ref())
            .map(|d| duration("spec.monitoring.deadMansSwitch", d))
            .transpose()?,
        starting_deadline: spec
            .starting_deadline
            .as_ref()
            .map(|d| duration("spec.startingDeadline", d))
            .transpose()?,
        suspended: spec.suspend,
    })
}

/// The alert severities of `monitoring.severities` (API defaults when unset).
pub fn job_severities(spec: &CronJobSpecSpec) -> JobSeverities {
    let severities = spec
        .monitoring
        .as_ref()
        .map(|m| m.severities.clone())
        .unwrap_or_default();
    JobSeverities {
        late: severity(severities.late),
        failing: severity(severities.failing),
        missed: severity(severities.missed),
    }
}

/// The alerting configuration with Secrets resolved; `None` without `monitoring.alerting`.
pub fn job_alerting(
    spec: &CronJobSpecSpec,
    secrets: &dyn SecretResolver,
) -> Result<Option<AlertingConfig>, JobError> {
    Ok(spec
        .monitoring
        .as_ref()
        .and_then(|m| m.alerting.as_ref())
        .map(|a| alerting_config(a, secrets))
        .transpose()?)
}

/// Converts a CronJobSpec into the engines' configuration. In [`Environment::Embedded`] the
/// job must be an HTTP trigger (a Job template needs a cluster to run its pods) and the
/// trigger's Secrets are resolved; in [`Environment::Cluster`] the trigger is left to the agent.
pub fn job_config(
    spec: &CronJobSpecSpec,
    environment: Environment,
    secrets: &dyn SecretResolver,
) -> Result<JobConfig, JobError> {
    let policy = watch_policy(spec)?;
    let trigger = match (environment, &spec.http_trigger, &spec.job_template) {
        (Environment::Embedded, Some(http), _) => Some(trigger_config(http, secrets)?),
        (Environment::Embedded, None, _) => {
            return Err(JobError::Unsupported {
                field: "spec.jobTemplate".to_string(),
                message: "a Job template needs a cluster to run its pods; `watchkeeper run` executes httpTrigger jobs only (apply this CronJobSpec to a cluster, or write the job as an httpTrigger)".to_string(),
            });
        }
        (Environment::Cluster, _, _) => None,
    };
    Ok(JobConfig {
        policy,
        severities: job_severities(spec),
        alerting: job_alerting(spec, secrets)?,
        trigger,
        concurrency: spec.concurrency_policy,
        active_deadline: spec
            .active_deadline
            .as_ref()
            .map(|d| duration("spec.activeDeadline", d))
            .transpose()?,
    })
}

fn method(method: HttpMethod) -> reqwest::Method {
    match method {
        HttpMethod::Get => reqwest::Method::GET,
        HttpMethod::Head => reqwest::Method::HEAD,
        HttpMethod::Post => reqwest::Method::POST,
        HttpMethod::Put => reqwest::Method::PUT,
        HttpMethod::Patch => reqwest::Method::PATCH,
        HttpMethod::Delete => reqwest::Method::DELETE,
        HttpMethod::Options => reqwest::Method::OPTIONS,
    }
}

/// The request one in-process run makes: the same [`TriggerConfig`] `watchkeeper agent
/// trigger` builds from its flags, with the bearer token and `valueFrom` headers read through
/// `secrets` (kept as sensitive values, redacted from results).
pub fn trigger_config(
    http: &HttpTrigger,
    secrets: &dyn SecretResolver,
) -> Result<TriggerConfig, JobError> {
    let spec_error = |field: &str, message: String| JobError::Spec {
        field: format!("spec.httpTrigger.{field}"),
        message,
    };
    let url = reqwest::Url::parse(&http.url).map_err(|e| spec_error("url", e.to_string()))?;
    let mut headers = Vec::new();
    let mut secret_headers = Vec::new();
    for (i, header) in http.headers.iter().enumerate() {
        let field = format!("headers[{i}]");
        let name = HeaderName::from_bytes(header.name.as_bytes())
            .map_err(|e| spec_error(&field, e.to_string()))?;
        match (&header.value, &header.value_from) {
            (Some(value), _) => headers.push((
                name,
                HeaderValue::from_str(value).map_err(|e| spec_error(&field, e.to_string()))?,
            )),
            (None, Some(from)) => {
                let r = &from.secret_key_ref;
                let value = secrets.get(&r.name, &r.key)?;
                let mut value = HeaderValue::from_str(value.trim()).map_err(|_| {
                    spec_error(
                        &field,
                        format!(
                            "secret {}/{} holds characters not allowed in a header",
                            r.name, r.key
                        ),
                    )
                })?;
                value.set_sensitive(true);
                secret_headers.push((name, value));
            }
            (None, None) => return Err(spec_error(&field, "set value or valueFrom".to_string())),
        }
    }
    let bearer_token = http
        .bearer_token_secret_ref
        .as_ref()
        .map(|r| {
            let token = secrets.get(&r.name, &r.key)?;
            let token = token.trim().to_string();
            if HeaderValue::from_str(&format!("Bearer {token}")).is_err() {
                return Err(spec_error(
                    "bearerTokenSecretRef",
                    format!(
                        "secret {}/{} holds characters not allowed in a header",
                        r.name, r.key
                    ),
                ));
            }
            Ok(token)
        })
        .transpose()?
        .filter(|t| !t.is_empty());
    Ok(TriggerConfig {
        url,
        method: method(http.method),
        headers,
        body: http.body.clone().map(String::into_bytes),
        expected_status: http.expected_status.clone(),
        timeout: duration("spec.httpTrigger.timeout", &http.timeout)?,
        retries: http.retries,
        backoff: duration("spec.httpTrigger.backoff", &http.backoff)?,
        max_backoff: MAX_BACKOFF,
        secret_headers,
        bearer_token,
    })
}

/// A short run result from the trigger's: `HTTP 200 in 12 ms`, `HTTP 500 (unexpected) after 3
/// attempts: <body start>`, `timeout: …`. The trigger already redacted secrets.
pub fn trigger_message(result: &TriggerResult) -> String {
    let mut text = match (result.outcome, result.status_code) {
        (Outcome::Success, Some(code)) => format!("HTTP {code} in {} ms", result.latency_ms),
        (Outcome::UnexpectedStatus, Some(code)) => format!("HTTP {code} (unexpected status)"),
        (_, _) => result
            .error
            .clone()
            .unwrap_or_else(|| format!("{:?}", result.outcome)),
    };
    if result.attempts > 1 {
        text.push_str(&format!(" after {} attempts", result.attempts));
    }
    if result.outcome != Outcome::Success
        && let Some(body) = result.body.as_deref().filter(|b| !b.trim().is_empty())
    {
        let body: String = body.trim().chars().take(120).collect();
        text.push_str(&format!(": {body}"));
    }
    text
}

/// One in-process run as an observation.
pub fn observation(
    name: String,
    trigger: RunTrigger,
    scheduled_for: Option<DateTime<Utc>>,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    result: &TriggerResult,
) -> RunObservation {
    RunObservation {
        name,
        trigger,
        scheduled_for,
        started_at,
        finished_at: Some(finished_at),
        outcome: if result.outcome == Outcome::Success {
            RunOutcome::Succeeded
        } else {
            RunOutcome::Failed
        },
        status_code: result.status_code,
        message: Some(trigger_message(result)),
    }
}

/// The engine's health as the API's `status.health`.
pub fn cron_health(health: JobHealth) -> CronHealth {
    match health {
        JobHealth::Unknown => CronHealth::Unknown,
        JobHealth::Healthy => CronHealth::Healthy,
        JobHealth::Late => CronHealth::Late,
        JobHealth::Failing => CronHealth::Failing,
        JobHealth::Missed => CronHealth::Missed,
        JobHealth::Suspended => CronHealth::Suspended,
    }
}

/// A run as the API's `status.lastRun`.
pub fn run_record(run: &RunObservation) -> RunRecord {
    RunRecord {
        result: match run.outcome {
            RunOutcome::Running => RunResult::Running,
            RunOutcome::Succeeded => RunResult::Succeeded,
            RunOutcome::Failed => RunResult::Failed,
        },
        job_name: Some(run.name.clone()),
        trigger: Some(match run.trigger {
            RunTrigger::Scheduled => crate::api::cron_job_spec::RunTrigger::Schedule,
            RunTrigger::Manual { .. } => crate::api::cron_job_spec::RunTrigger::RunNow,
        }),
        start_time: Some(time(run.started_at)),
        duration: run.duration().map(short_duration),
        status_code: run.status_code,
        message: run.message.clone(),
    }
}

/// `1m12s`, `850ms`, `2h0m5s`.
fn short_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}
