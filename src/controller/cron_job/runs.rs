//! Reading runs from the cluster: each Job of a CronJobSpec becomes one observed run (trigger,
//! due time, start, end, outcome), and a finished HTTP-trigger run gets its status code and a
//! short message from the trigger container's termination message (the JSON `watchkeeper agent
//! trigger` writes). Pure except [`termination_message`], which reads the Job's Pods.

use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use serde::Deserialize;

use super::builder::TRIGGER_CONTAINER;
use super::run_now::TOKEN_ANNOTATION;

/// Annotation the CronJob controller puts on each Job it creates: the due time it belongs to.
pub const SCHEDULED_TIMESTAMP_ANNOTATION: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// Label the Job controller puts on a Job's Pods.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// Longest message kept from a run (status is not a log).
const MAX_MESSAGE: usize = 256;

/// How a Job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not finished.
    Running,
    /// `Complete=True`.
    Succeeded,
    /// `Failed=True`.
    Failed,
}

/// One Job as a run.
#[derive(Clone, Debug, PartialEq)]
pub struct JobRun {
    /// Job name.
    pub name: String,
    /// The run-now token, for Jobs created by run-now.
    pub token: Option<String>,
    /// The due time (scheduled Jobs).
    pub scheduled_for: Option<DateTime<Utc>>,
    /// `status.startTime`, else creation.
    pub started_at: DateTime<Utc>,
    /// `status.completionTime`, else when the Failed condition turned True.
    pub finished_at: Option<DateTime<Utc>>,
    /// Outcome so far.
    pub outcome: Outcome,
    /// HTTP status of the trigger's last attempt.
    pub status_code: Option<u16>,
    /// Short result.
    pub message: Option<String>,
}

/// The run a Job represents; `None` for a Job without any timestamp (not read from a server).
pub fn job_run(job: &Job) -> Option<JobRun> {
    let annotations = job.annotations();
    let status = job.status.as_ref();
    let started_at = status
        .and_then(|s| s.start_time.as_ref())
        .or(job.metadata.creation_timestamp.as_ref())
        .map(|t| chrono_time(&t.0))?;
    let condition = |type_: &str| {
        status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == type_ && c.status == "True"))
    };
    let (outcome, finished_at, message) = if let Some(done) = condition("Complete") {
        let at = status
            .and_then(|s| s.completion_time.as_ref())
            .or(done.last_transition_time.as_ref())
            .map(|t| chrono_time(&t.0));
        (Outcome::Succeeded, at.or(Some(started_at)), None)
    } else if let Some(failed) = condition("Failed") {
        let at = failed
            .last_transition_time
            .as_ref()
            .map(|t| chrono_time(&t.0));
        let message = [failed.reason.as_deref(), failed.message.as_deref()]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(": ");
        (
            Outcome::Failed,
            at.or(Some(started_at)),
            (!message.is_empty()).then(|| short(&message)),
        )
    } else {
        (Outcome::Running, None, None)
    };
    Some(JobRun {
        name: job.name_any(),
        token: annotations.get(TOKEN_ANNOTATION).cloned(),
        scheduled_for: annotations
            .get(SCHEDULED_TIMESTAMP_ANNOTATION)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc)),
        started_at,
        finished_at,
        outcome,
        status_code: None,
        message,
    })
}

fn chrono_time(at: &k8s_openapi::jiff::Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp(at.as_second(), at.subsec_nanosecond().unsigned_abs())
        .unwrap_or_default()
}

/// The fields of the trigger's result the controller reports.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TriggerReport {
    outcome: String,
    #[serde(default)]
    status_code: Option<u16>,
    #[serde(default)]
    latency_ms: Option<u64>,
    #[serde(default)]
    attempts: Option<u32>,
    #[serde(default)]
    error: Option<String>,
}

/// Status code and short message from a termination message: the trigger's JSON result, or
/// (for job templates) the first line of whatever the container wrote.
pub fn parse_termination_message(text: &str) -> (Option<u16>, Option<String>) {
    let text = text.trim();
    if text.is_empty() {
        return (None, None);
    }
    let Ok(report) = serde_json::from_str::<TriggerReport>(text) else {
        return (None, Some(short(text.lines().next().unwrap_or_default())));
    };
    let mut message = match report.status_code {
        Some(code) => format!("{}: HTTP {code}", report.outcome),
        None => report.outcome.clone(),
    };
    if let Some(ms) = report.latency_ms {
        message.push_str(&format!(" in {ms} ms"));
    }
    if let Some(attempts) = report.attempts.filter(|a| *a > 1) {
        message.push_str(&format!(" after {attempts} attempts"));
    }
    if let Some(error) = report.error.filter(|e| !e.is_empty()) {
        message.push_str(": ");
        message.push_str(&error);
    }
    (report.status_code, Some(short(&message)))
}

/// At most [`MAX_MESSAGE`] bytes, cut at a character boundary.
fn short(text: &str) -> String {
    if text.len() <= MAX_MESSAGE {
        return text.to_string();
    }
    let mut end = MAX_MESSAGE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The termination message of a finished Job's Pod: the trigger container's when present,
/// else the first container with one; newest Pod first. `None` when nothing can be read (no
/// Pods left, or no permission: the Job's own condition message is used then).
pub async fn termination_message(client: &Client, namespace: &str, job: &str) -> Option<String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let params = ListParams::default().labels(&format!("{JOB_NAME_LABEL}={job}"));
    let mut pods = match api.list(&params).await {
        Ok(list) => list.items,
        Err(error) => {
            tracing::debug!(%namespace, %job, %error, "cannot read the Job's Pods");
            return None;
        }
    };
    pods.sort_by_key(|p| std::cmp::Reverse(p.metadata.creation_timestamp.clone()));
    pods.iter().find_map(pod_message)
}

fn pod_message(pod: &Pod) -> Option<String> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    let message_of = |s: &k8s_openapi::api::core::v1::ContainerStatus| {
        s.state
            .as_ref()?
            .terminated
            .as_ref()?
            .message
            .clone()
            .filter(|m| !m.trim().is_empty())
    };
    statuses
        .iter()
        .filter(|s| s.name == TRIGGER_CONTAINER)
        .chain(statuses.iter())
        .find_map(message_of)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(value: serde_json::Value) -> Job {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_complete_scheduled_job_is_a_success_at_its_completion_time() {
        let run = job_run(&job(json!({
            "metadata": {"name": "crawl-29000000", "creationTimestamp": "2026-01-01T02:00:00Z",
                "annotations": {SCHEDULED_TIMESTAMP_ANNOTATION: "2026-01-01T02:00:00Z"}},
            "status": {"startTime": "2026-01-01T02:00:01Z", "completionTime": "2026-01-01T02:01:00Z",
                "conditions": [{"type": "Complete", "status": "True"}]}
        })))
        .unwrap();
        assert_eq!(run.outcome, Outcome::Succeeded);
        assert_eq!(run.token, None);
        assert_eq!(
            run.scheduled_for.unwrap().to_rfc3339(),
            "2026-01-01T02:00:00+00:00"
        );
        assert_eq!(run.started_at.to_rfc3339(), "2026-01-01T02:00:01+00:00");
        assert_eq!(
            run.finished_at.unwrap().to_rfc3339(),
            "2026-01-01T02:01:00+00:00"
        );
    }

    #[test]
    fn a_failed_job_carries_its_reason_and_a_running_one_has_no_end() {
        let failed = job_run(&job(json!({
            "metadata": {"name": "x", "creationTimestamp": "2026-01-01T02:00:00Z",
                "annotations": {TOKEN_ANNOTATION: "t1"}},
            "status": {"conditions": [{"type": "Failed", "status": "True",
                "lastTransitionTime": "2026-01-01T02:05:00Z", "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit"}]}
        })))
        .unwrap();
        assert_eq!(failed.outcome, Outcome::Failed);
        assert_eq!(failed.token.as_deref(), Some("t1"));
        assert_eq!(
            failed.message.as_deref(),
            Some("BackoffLimitExceeded: Job has reached the specified backoff limit")
        );
        assert_eq!(
            failed.finished_at.unwrap().to_rfc3339(),
            "2026-01-01T02:05:00+00:00"
        );

        let running = job_run(&job(json!({
            "metadata": {"name": "y", "creationTimestamp": "2026-01-01T02:00:00Z"},
            "status": {"conditions": [{"type": "Failed", "status": "False"}]}
        })))
        .unwrap();
        assert_eq!(running.outcome, Outcome::Running);
        assert_eq!(running.finished_at, None);
        assert!(job_run(&job(json!({"metadata": {"name": "z"}}))).is_none());
    }

    #[test]
    fn trigger_results_become_status_code_and_message() {
        let (code, message) = parse_termination_message(
            r#"{"outcome":"unexpectedStatus","statusCode":503,"latencyMs":12,"attempts":3,"body":"down","error":"expected 2xx"}"#,
        );
        assert_eq!(code, Some(503));
        assert_eq!(
            message.as_deref(),
            Some("unexpectedStatus: HTTP 503 in 12 ms after 3 attempts: expected 2xx")
        );
        let (code, message) = parse_termination_message("disk full\nmore");
        assert_eq!((code, message.as_deref()), (None, Some("disk full")));
        assert_eq!(parse_termination_message("  "), (None, None));
        let long = parse_termination_message(&"é".repeat(400)).1.unwrap();
        assert!(long.len() <= MAX_MESSAGE + "…".len());
    }

    #[test]
    fn the_trigger_container_message_wins() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "status": {"containerStatuses": [
                {"name": "sidecar", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                 "state": {"terminated": {"exitCode": 0, "message": "sidecar"}}},
                {"name": TRIGGER_CONTAINER, "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                 "state": {"terminated": {"exitCode": 3, "message": "{\"outcome\":\"timeout\"}"}}}
            ]}
        }))
        .unwrap();
        assert_eq!(
            pod_message(&pod).as_deref(),
            Some("{\"outcome\":\"timeout\"}")
        );
    }
}
