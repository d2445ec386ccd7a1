//! Judging a CronJobSpec's runs against its schedule with the job-watch engine
//! (`crate::schedule::watch`): the Jobs become observations, folded into the [`JobMemory`]
//! (kept in this process and, for restarts and leader changes, in status), then evaluated into
//! health, next run and alerts; alerts go through the alert engine, its open alerts into
//! `status.openAlerts` so a restarted controller sends nothing twice.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::{Client, ResourceExt};
use serde_json::Value;

use super::super::conditions::{ConditionStatus, DesiredCondition};
use super::runs::{self, JobRun, Outcome};
use crate::alert::sinks::Sinks;
use crate::alert::{AlertEngine, AlertState, AlertingConfig, OpenAlertEntry, Severity};
use crate::api::common::{OpenAlert, parse_duration};
use crate::api::cron_job_spec::{CronJobSpecStatus, RunResult, RunTrigger as ApiTrigger};
use crate::api::{CronJobSpec, common};
use crate::jobs::adapter::{self, JobKey};
use crate::jobs::{JobError, JobMetrics};
use crate::monitor::MonitorError;
use crate::monitor::adapter::SecretResolver;
use crate::monitor::status::{chrono_time, time};
use crate::schedule::watch::{
    self as engine, JobHealth, JobMemory, RunObservation, RunOutcome, RunTrigger, WatchReport,
};

/// Job metrics (`watchkeeper_job_*`), registered in the controller's registry.
pub type Metrics = JobMetrics;

/// Condition type of the job's health judged against its schedule.
pub const HEALTHY: &str = "Healthy";

/// Earliest re-evaluation: never spin faster than this.
const MIN_REQUEUE: Duration = Duration::from_secs(1);
/// Slack after a computed instant, so the evaluation at it sees the state changed.
const SLACK: Duration = Duration::from_millis(500);

/// Monitoring state of one CronJobSpec kept between reconciles.
#[derive(Default)]
pub struct WatchState {
    /// The memory as last folded (authoritative in this process; status is its copy).
    memory: Option<JobMemory>,
    /// The alert engine, with the alerting spec it was configured from.
    alerts: Option<(Value, AlertEngine)>,
    /// Parsed termination messages of finished Jobs, by Job name (read once).
    results: HashMap<String, (Option<u16>, Option<String>)>,
    /// Whether the metric series were set up from status.
    seeded: bool,
}

/// What judging produced.
#[derive(Default)]
pub struct Judged {
    /// `Healthy`.
    pub conditions: Vec<DesiredCondition>,
    /// When to look again so Late and Missed are seen without any event.
    pub requeue_after: Option<Duration>,
}

impl WatchState {
    /// Judges the runs of `object` (whose Jobs are `jobs`) at `now` and fills the run, health
    /// and alert fields of `status`.
    pub async fn judge(
        &mut self,
        client: &Client,
        object: &CronJobSpec,
        jobs: &[Job],
        status: &mut CronJobSpecStatus,
        metrics: &Metrics,
        now: DateTime<Utc>,
    ) -> Judged {
        let key = JobKey {
            namespace: object.namespace().unwrap_or_default(),
            name: object.name_any(),
        };
        let policy = match adapter::watch_policy(&object.spec) {
            Ok(policy) => policy,
            Err(error) => return cannot_judge(&error.to_string()),
        };
        if !self.seeded {
            metrics.register_job(&key.namespace, &key.name);
            if let Some(at) = &status.last_successful_time {
                metrics.set_last_success(&key.namespace, &key.name, chrono_time(at));
            }
            self.seeded = true;
        }

        let stored = memory_from_status(status);
        let mut memory = match self.memory.take() {
            Some(mine) if mine.watermark() >= stored.watermark() => mine,
            _ => stored,
        };
        let observed = self.observe(client, &key, jobs, &memory).await;
        for run in memory.observe(&observed) {
            metrics.record_finished(&key.namespace, &key.name, &run);
        }
        let watching_since = object
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(now, chrono_time);
        let report = engine::evaluate(&policy, &memory, watching_since, &[], now);
        metrics.set_health(&key.namespace, &key.name, report.health);
        write_memory(status, &memory);
        status.next_run = report.next_run.map(time);
        status.health = Some(adapter::cron_health(report.health));
        self.memory = Some(memory.clone());

        let alert_problem = self.alert(client, object, &key, &report, status, now).await;
        let mut requeue = requeue_after(&policy, &memory, &report, watching_since, now);
        if let Some(repeat) = self
            .alerts
            .as_ref()
            .and_then(|(_, e)| e.config().repeat_interval)
            .filter(|_| !status.open_alerts.is_empty())
        {
            requeue = requeue.min(repeat);
        }
        if alert_problem.is_some() {
            requeue = requeue.min(super::SECRET_RECHECK);
        }
        // Before anything can be judged the condition is left out (not written as Unknown),
        // unless it is already there: a new object then gets one Event (Ready), not two.
        let has_healthy = object
            .status
            .as_ref()
            .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == HEALTHY));
        let conditions = if report.health == JobHealth::Unknown && !has_healthy {
            Vec::new()
        } else {
            vec![healthy_condition(&report, alert_problem.as_deref())]
        };
        Judged {
            conditions,
            requeue_after: Some(requeue.max(MIN_REQUEUE)),
        }
    }

    /// The Jobs as observations; finished ones get their result from the Pod's termination
    /// message (read once per Job, and only for runs the memory has not folded in yet).
    async fn observe(
        &mut self,
        client: &Client,
        key: &JobKey,
        jobs: &[Job],
        memory: &JobMemory,
    ) -> Vec<RunObservation> {
        let mut observed = Vec::with_capacity(jobs.len());
        for job in jobs {
            let Some(run) = runs::job_run(job) else {
                continue;
            };
            let fresh = run
                .finished_at
                .is_some_and(|end| memory.watermark().is_none_or(|mark| end >= mark));
            if run.outcome != Outcome::Running && fresh && !self.results.contains_key(&run.name) {
                let parsed =
                    match runs::termination_message(client, &key.namespace, &run.name).await {
                        Some(text) => runs::parse_termination_message(&text),
                        None => (None, None),
                    };
                self.results.insert(run.name.clone(), parsed);
            }
            observed.push(observation(run, self.results.get(&job.name_any())));
        }
        // Forget results of Jobs that are gone (history limits).
        self.results
            .retain(|name, _| jobs.iter().any(|j| j.name_any() == *name));
        observed
    }

    /// Runs one alert round; returns why alerting cannot work, if it cannot.
    async fn alert(
        &mut self,
        client: &Client,
        object: &CronJobSpec,
        key: &JobKey,
        report: &WatchReport,
        status: &mut CronJobSpecStatus,
        now: DateTime<Utc>,
    ) -> Option<String> {
        let spec = object
            .spec
            .monitoring
            .as_ref()
            .and_then(|m| m.alerting.as_ref());
        let Some(spec) = spec else {
            self.alerts = None;
            status.open_alerts.clear();
            return None;
        };
        let spec_value = serde_json::to_value(spec).unwrap_or(Value::Null);
        let config = match alerting_config(client, &key.namespace, object).await {
            Ok(Some(config)) => config,
            Ok(None) => return None,
            Err(error) => return Some(error.to_string()),
        };
        let engine = match self.alerts.take() {
            Some((seen, mut engine)) if seen == spec_value => {
                let _ = engine.set_config(config);
                Some(engine)
            }
            Some((_, mut engine)) => engine.set_config(config).ok().map(|()| engine),
            None => {
                let restored = restored_alerts(&status.open_alerts, &config);
                match Sinks::new() {
                    Ok(sinks) => AlertEngine::new(config, restored, sinks).ok(),
                    Err(error) => return Some(format!("alert sinks cannot start: {error}")),
                }
            }
        };
        let Some(mut engine) = engine else {
            return Some("the alerting configuration is refused".to_string());
        };
        let firing = engine::firing_alerts_from(
            report,
            &adapter::job_severities(&object.spec),
            &key.alert_labels(),
            &key.source(),
        );
        let round = engine.round(&firing, now).await;
        for (notification, error) in &round.failed {
            tracing::warn!(cron_job_spec = %key, channel = %notification.channel, %error, "alert not delivered; retried next round");
        }
        status.open_alerts = engine
            .state()
            .open_entries()
            .iter()
            .map(open_alert)
            .collect();
        self.alerts = Some((spec_value, engine));
        None
    }
}

fn cannot_judge(message: &str) -> Judged {
    Judged {
        conditions: vec![DesiredCondition::new(
            HEALTHY,
            ConditionStatus::Unknown,
            "CannotJudge",
            message.to_string(),
        )],
        requeue_after: None,
    }
}

/// `Healthy`: True when runs are on time and succeed, False when Late, Failing or Missed,
/// Unknown before the first due run or while suspended.
pub fn healthy_condition(report: &WatchReport, alert_problem: Option<&str>) -> DesiredCondition {
    let status = match report.health {
        JobHealth::Healthy => ConditionStatus::True,
        JobHealth::Late | JobHealth::Failing | JobHealth::Missed => ConditionStatus::False,
        JobHealth::Unknown | JobHealth::Suspended => ConditionStatus::Unknown,
    };
    let mut message = if report.message.is_empty() {
        report.health.as_str().to_string()
    } else {
        report.message.clone()
    };
    if let Some(problem) = alert_problem {
        message.push_str(&format!(" (alerts cannot be sent: {problem})"));
    }
    DesiredCondition::new(HEALTHY, status, report.reason, message)
}

/// One Job as the engine's observation, with the parsed termination message when there is one
/// (it says more than the Job's condition).
fn observation(run: JobRun, parsed: Option<&(Option<u16>, Option<String>)>) -> RunObservation {
    let (status_code, message) = match parsed {
        Some((code, Some(message))) => (*code, Some(message.clone())),
        Some((code, None)) => (*code, run.message.clone()),
        None => (None, run.message.clone()),
    };
    RunObservation {
        name: run.name,
        trigger: match run.token {
            Some(token) => RunTrigger::Manual { token },
            None => RunTrigger::Scheduled,
        },
        scheduled_for: run.scheduled_for,
        started_at: run.started_at,
        finished_at: run.finished_at,
        outcome: match run.outcome {
            Outcome::Running => RunOutcome::Running,
            Outcome::Succeeded => RunOutcome::Succeeded,
            Outcome::Failed => RunOutcome::Failed,
        },
        status_code,
        message,
    }
}

/// The memory a status holds (what a restarted controller starts from). Lost compared with
/// the in-process memory: when the current failure streak began (the last failure time is used)
/// and which runs finished exactly at the newest finish time.
pub fn memory_from_status(status: &CronJobSpecStatus) -> JobMemory {
    JobMemory {
        last_schedule_time: status.last_schedule_time.as_ref().map(chrono_time),
        last_successful_time: status.last_successful_time.as_ref().map(chrono_time),
        last_failure_time: status.last_failure_time.as_ref().map(chrono_time),
        consecutive_failures: status.consecutive_failures,
        failing_since: None,
        last_run: status.last_run.as_ref().and_then(|record| {
            let started_at = chrono_time(record.start_time.as_ref()?);
            let finished_at = record
                .duration
                .as_deref()
                .and_then(|d| parse_duration(d).ok())
                .and_then(|d| TimeDelta::from_std(d).ok())
                .map(|d| started_at + d);
            Some(RunObservation {
                name: record.job_name.clone()?,
                trigger: match record.trigger {
                    Some(ApiTrigger::RunNow) => RunTrigger::Manual {
                        token: status.last_run_now_token.clone().unwrap_or_default(),
                    },
                    _ => RunTrigger::Scheduled,
                },
                scheduled_for: None,
                started_at,
                finished_at,
                outcome: match record.result {
                    RunResult::Running => RunOutcome::Running,
                    RunResult::Succeeded => RunOutcome::Succeeded,
                    RunResult::Failed => RunOutcome::Failed,
                },
                status_code: record.status_code,
                message: record.message.clone(),
            })
        }),
        seen_at_watermark: Vec::new(),
    }
}

fn write_memory(status: &mut CronJobSpecStatus, memory: &JobMemory) {
    status.last_schedule_time = memory.last_schedule_time.map(time);
    status.last_successful_time = memory.last_successful_time.map(time);
    status.last_failure_time = memory.last_failure_time.map(time);
    status.consecutive_failures = memory.consecutive_failures;
    status.last_run = memory.last_run.as_ref().map(adapter::run_record);
}

/// When the verdict can next change without any event: the next due time plus the grace
/// (Late), the dead-man's-switch deadline (Missed).
pub fn requeue_after(
    policy: &engine::WatchPolicy,
    memory: &JobMemory,
    report: &WatchReport,
    watching_since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Duration {
    let mut at: Vec<DateTime<Utc>> = Vec::new();
    let grace = TimeDelta::from_std(policy.late_after).unwrap_or(TimeDelta::MAX);
    if let Some(next) = report.next_run {
        at.push(next + grace);
    }
    // The first due time not yet started may already be past (a run is late but still in its
    // grace): look again when the grace ends.
    let since = memory
        .last_schedule_time
        .map_or(watching_since, |t| t.max(watching_since));
    if let Some(due) = policy.schedule.next_after(since)
        && due + grace > now
    {
        at.push(due + grace);
    }
    if let Some(switch) = policy
        .dead_mans_switch
        .and_then(|d| TimeDelta::from_std(d).ok())
    {
        let from = memory
            .last_successful_time
            .map_or(watching_since, |t| t.max(watching_since));
        if from + switch > now {
            at.push(from + switch);
        }
    }
    at.into_iter()
        .filter_map(|t| (t - now).to_std().ok())
        .min()
        .map_or(Duration::from_secs(3600), |d| d + SLACK)
}

fn open_alert(entry: &OpenAlertEntry) -> OpenAlert {
    OpenAlert {
        key: entry.key.clone(),
        severity: match entry.severity {
            Severity::P0 => common::Severity::P0,
            Severity::P1 => common::Severity::P1,
            Severity::P2 => common::Severity::P2,
            Severity::P3 => common::Severity::P3,
        },
        since: time(entry.since),
        last_notified: entry.last_notified.map(time),
        summary: entry.summary.clone(),
    }
}

/// Open alerts from a previous process's status, so a restart does not notify them again.
fn restored_alerts(stored: &[OpenAlert], config: &AlertingConfig) -> AlertState {
    let entries: Vec<OpenAlertEntry> = stored
        .iter()
        .map(|a| OpenAlertEntry {
            key: a.key.clone(),
            severity: crate::monitor::adapter::severity(a.severity),
            since: chrono_time(&a.since),
            last_notified: a.last_notified.as_ref().map(chrono_time),
            summary: a.summary.clone(),
            channels: Vec::new(),
        })
        .collect();
    AlertState::from_open_entries(&entries, config)
}

/// The alerting configuration of a CronJobSpec with the Secrets it references read from its
/// namespace (per reconcile: a rotated Secret is taken up on the next one). Values are never
/// logged.
async fn alerting_config(
    client: &Client,
    namespace: &str,
    object: &CronJobSpec,
) -> Result<Option<AlertingConfig>, JobError> {
    let Some(alerting) = object
        .spec
        .monitoring
        .as_ref()
        .and_then(|m| m.alerting.as_ref())
    else {
        return Ok(None);
    };
    let mut wanted = Vec::new();
    collect_secret_refs(
        &serde_json::to_value(alerting).unwrap_or(Value::Null),
        &mut wanted,
    );
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut values = BTreeMap::new();
    for (name, key) in wanted {
        let value = match api.get_opt(&name).await {
            Ok(Some(secret)) => secret_value(&secret, &key),
            Ok(None) => Err("the Secret does not exist".to_string()),
            Err(error) => Err(format!("cannot be read: {error}")),
        };
        values.insert((name, key), value);
    }
    adapter::job_alerting(&object.spec, &Resolved(values))
}

fn secret_value(secret: &Secret, key: &str) -> Result<String, String> {
    if let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(key)) {
        return String::from_utf8(bytes.0.clone()).map_err(|_| "the value is not UTF-8".into());
    }
    secret
        .string_data
        .as_ref()
        .and_then(|d| d.get(key))
        .cloned()
        .ok_or_else(|| "the Secret has no such key".to_string())
}

/// Every `{name, key}` under a field named `…SecretRef` or `secretKeyRef`.
fn collect_secret_refs(value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (field, inner) in map {
                if (field.ends_with("SecretRef") || field == "secretKeyRef")
                    && let (Some(name), Some(key)) = (
                        inner.get("name").and_then(Value::as_str),
                        inner.get("key").and_then(Value::as_str),
                    )
                {
                    out.push((name.to_string(), key.to_string()));
                }
                collect_secret_refs(inner, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_secret_refs(i, out)),
        _ => {}
    }
}

/// Secret values read for one reconcile.
struct Resolved(BTreeMap<(String, String), Result<String, String>>);

impl SecretResolver for Resolved {
    fn get(&self, name: &str, key: &str) -> Result<String, MonitorError> {
        match self.0.get(&(name.to_string(), key.to_string())) {
            Some(Ok(value)) => Ok(value.clone()),
            Some(Err(message)) => Err(MonitorError::Secret {
                name: name.to_string(),
                key: key.to_string(),
                message: message.clone(),
            }),
            None => Err(MonitorError::Secret {
                name: name.to_string(),
                key: key.to_string(),
                message: "not referenced".to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests;
