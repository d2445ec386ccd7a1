//! The BackupPolicy reconciler's API calls: Secrets checked, owned objects applied by
//! server-side apply, backup-now Jobs created, the policy's Jobs and their pods' reports read.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Error;
use super::agent_config::SecretEnv;
use super::builder::{AGENT_CONTAINER, Owned, POLICY_LABEL, ROLE_LABEL, Role};
use super::fold::{JobOutcome, JobRun};
use crate::api::FieldError;
use crate::backup::report::AgentReport;
use crate::controller::context::FIELD_MANAGER;
use crate::monitor::{MonitorError, SecretResolver};

/// Label Kubernetes puts on a Job's pods.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";

fn api_error(what: String) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Api {
        what,
        source: Box::new(source),
    }
}

/// One error per Secret (or key) the pods would read that does not exist. Values are never
/// put into messages.
pub async fn missing_secrets(
    client: &Client,
    namespace: &str,
    secrets: &[SecretEnv],
) -> Result<Vec<FieldError>, Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut read: BTreeMap<String, Option<Secret>> = BTreeMap::new();
    let mut errors = Vec::new();
    for wanted in secrets {
        let name = &wanted.secret.name;
        if !read.contains_key(name) {
            let secret = api
                .get_opt(name)
                .await
                .map_err(api_error(format!("reading Secret {namespace}/{name}")))?;
            read.insert(name.clone(), secret);
        }
        let message = match read.get(name).and_then(Option::as_ref) {
            None => Some(format!(
                "Secret {name:?} does not exist in namespace {namespace}"
            )),
            Some(secret) if !has_key(secret, &wanted.secret.key) => Some(format!(
                "Secret {name:?} has no key {:?}",
                wanted.secret.key
            )),
            Some(_) => None,
        };
        if let Some(message) = message {
            errors.push(FieldError::new(wanted.field.clone(), message));
        }
    }
    Ok(errors)
}

fn has_key(secret: &Secret, key: &str) -> bool {
    secret.data.as_ref().is_some_and(|d| d.contains_key(key))
        || secret
            .string_data
            .as_ref()
            .is_some_and(|d| d.contains_key(key))
}

async fn apply<K>(client: &Client, namespace: &str, object: &K) -> Result<K, Error>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let name = object.name_any();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&name, &params, &Patch::Apply(object))
        .await
        .map_err(api_error(format!(
            "applying {} {namespace}/{name}",
            K::kind(&())
        )))
}

/// Applies the ServiceAccount and CronJobs, and deletes the verification CronJob when the
/// spec no longer asks for one. Returns the applied backup CronJob (with its uid).
pub async fn apply_owned(
    client: &Client,
    namespace: &str,
    policy: &str,
    owned: &Owned,
) -> Result<CronJob, Error> {
    let sa: ServiceAccount = apply(client, namespace, &owned.service_account).await?;
    drop(sa);
    let backup = apply(client, namespace, &owned.backup).await?;
    match &owned.verify {
        Some(verify) => {
            apply(client, namespace, verify).await?;
        }
        None => {
            let api: Api<CronJob> = Api::namespaced(client.clone(), namespace);
            let name = super::builder::cron_job_name(policy, Role::Verify);
            let existing = api
                .get_opt(&name)
                .await
                .map_err(api_error(format!("reading CronJob {namespace}/{name}")))?;
            let ours = existing
                .is_some_and(|c| c.labels().get(POLICY_LABEL).map(String::as_str) == Some(policy));
            if ours {
                match api.delete(&name, &DeleteParams::background()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(status)) if status.code == 404 => {}
                    Err(source) => {
                        return Err(api_error(format!("deleting CronJob {namespace}/{name}"))(
                            source,
                        ));
                    }
                }
            }
        }
    }
    Ok(backup)
}

/// Creates the backup-now Job; one that exists already (a retry, a restart) is success.
pub async fn create_job(client: &Client, namespace: &str, job: &Job) -> Result<bool, Error> {
    let api: Api<Job> = Api::namespaced(client.clone(), namespace);
    let name = job.name_any();
    match api.create(&PostParams::default(), job).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(source) => Err(api_error(format!("creating Job {namespace}/{name}"))(
            source,
        )),
    }
}

/// Parsed runs by policy (`namespace/name`) and Job uid: a finished Job's pods are read once.
#[derive(Default)]
pub struct RunCache {
    runs: Mutex<BTreeMap<(String, String), JobRun>>,
}

impl RunCache {
    fn get(&self, policy: &str, uid: &str) -> Option<JobRun> {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(policy.to_string(), uid.to_string()))
            .cloned()
    }

    fn insert(&self, policy: &str, uid: String, run: JobRun) {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((policy.to_string(), uid), run);
    }

    /// Forgets the policy's runs of Jobs not in `alive` (garbage-collected by the history
    /// limits).
    fn retain(&self, policy: &str, alive: &[String]) {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(p, uid), _| p != policy || alive.contains(uid));
    }

    /// Forgets every run of a deleted policy.
    pub fn forget(&self, policy: &str) {
        self.retain(policy, &[]);
    }
}

/// The policy's Jobs as runs; finished Jobs carry their pods' reports.
pub async fn runs(
    client: &Client,
    namespace: &str,
    policy: &str,
    cache: &RunCache,
) -> Result<Vec<JobRun>, Error> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    let selector = format!("{POLICY_LABEL}={policy}");
    let key = format!("{namespace}/{policy}");
    let listed = jobs
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(api_error(format!("listing Jobs of {namespace}/{policy}")))?;
    let mut out = Vec::new();
    let mut alive = Vec::new();
    for job in listed.items {
        let uid = job.uid().unwrap_or_default();
        alive.push(uid.clone());
        if let Some(run) = cache.get(&key, &uid) {
            out.push(run);
            continue;
        }
        let Some(role) = job.labels().get(ROLE_LABEL).and_then(|r| Role::parse(r)) else {
            continue;
        };
        let (outcome, finished_at) = job_outcome(&job);
        let mut run = JobRun {
            name: job.name_any(),
            role,
            outcome,
            finished_at,
            reports: Vec::new(),
        };
        if run.outcome != JobOutcome::Running {
            run.reports = reports(client, namespace, &run.name).await?;
            cache.insert(&key, uid, run.clone());
        }
        out.push(run);
    }
    cache.retain(&key, &alive);
    out.sort_by_key(|r| r.finished_at);
    Ok(out)
}

/// How a Job ended, from its `Complete`/`Failed` conditions (or counts, for servers that
/// only set those).
fn job_outcome(job: &Job) -> (JobOutcome, Option<DateTime<Utc>>) {
    let Some(status) = &job.status else {
        return (JobOutcome::Running, None);
    };
    let conditions = status.conditions.as_deref().unwrap_or_default();
    let at = |c: &k8s_openapi::api::batch::v1::JobCondition| {
        c.last_transition_time.as_ref().map(super::fold::chrono_of)
    };
    if let Some(failed) = conditions
        .iter()
        .find(|c| c.type_ == "Failed" && c.status == "True")
    {
        let message = format!(
            "{}: {}",
            failed.reason.as_deref().unwrap_or("Failed"),
            failed.message.as_deref().unwrap_or("the Job failed")
        );
        return (JobOutcome::Failed(message), at(failed).or_else(now_opt));
    }
    if let Some(complete) = conditions
        .iter()
        .find(|c| c.type_ == "Complete" && c.status == "True")
    {
        let at = status
            .completion_time
            .as_ref()
            .map(super::fold::chrono_of)
            .or_else(|| at(complete));
        return (JobOutcome::Succeeded, at.or_else(now_opt));
    }
    if status.succeeded.unwrap_or(0) > 0 && status.completion_time.is_some() {
        return (
            JobOutcome::Succeeded,
            status.completion_time.as_ref().map(super::fold::chrono_of),
        );
    }
    (JobOutcome::Running, None)
}

fn now_opt() -> Option<DateTime<Utc>> {
    Some(Utc::now())
}

/// The agent reports in the termination messages of a Job's pods, oldest pod first.
async fn reports(client: &Client, namespace: &str, job: &str) -> Result<Vec<AgentReport>, Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let listed = pods
        .list(&ListParams::default().labels(&format!("{JOB_NAME_LABEL}={job}")))
        .await
        .map_err(api_error(format!("listing pods of Job {namespace}/{job}")))?;
    let mut items = listed.items;
    items.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
    Ok(items.iter().filter_map(pod_report).collect())
}

/// The report in a pod's agent container termination message, if it parses.
pub fn pod_report(pod: &Pod) -> Option<AgentReport> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    let container = statuses.iter().find(|s| s.name == AGENT_CONTAINER)?;
    let message = container
        .state
        .as_ref()?
        .terminated
        .as_ref()?
        .message
        .as_deref()?;
    // The agent prints the report as its last line; with FallbackToLogsOnError the message
    // may be the log's tail, so the last line that parses wins.
    message
        .lines()
        .rev()
        .find_map(|line| AgentReport::from_json(line).ok())
}

/// Secret values read for the alerting configuration (never logged; per reconcile).
#[derive(Default)]
pub struct Fetched {
    values: BTreeMap<(String, String), Result<String, String>>,
    missed: Mutex<Vec<(String, String)>>,
}

impl SecretResolver for Fetched {
    fn get(&self, name: &str, key: &str) -> Result<String, MonitorError> {
        let wanted = (name.to_string(), key.to_string());
        match self.values.get(&wanted) {
            Some(Ok(value)) => Ok(value.clone()),
            Some(Err(message)) => Err(MonitorError::Secret {
                name: name.to_string(),
                key: key.to_string(),
                message: message.clone(),
            }),
            None => {
                self.missed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(wanted);
                Err(MonitorError::Secret {
                    name: name.to_string(),
                    key: key.to_string(),
                    message: "not read yet".to_string(),
                })
            }
        }
    }
}

/// Runs `build` with Secrets from `namespace`, reading the ones it asks for and retrying
/// (each round may reveal Secrets the previous one did not reach).
pub async fn with_secrets<T>(
    client: &Client,
    namespace: &str,
    build: impl Fn(&dyn SecretResolver) -> Result<T, MonitorError>,
) -> Result<Result<T, MonitorError>, Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut fetched = Fetched::default();
    for _ in 0..16 {
        let result = build(&fetched);
        let wanted: Vec<(String, String)> = fetched
            .missed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect();
        if wanted.is_empty() {
            return Ok(result);
        }
        for (name, key) in wanted {
            let secret = api
                .get_opt(&name)
                .await
                .map_err(api_error(format!("reading Secret {namespace}/{name}")))?;
            let value = match secret {
                None => Err("the Secret does not exist".to_string()),
                Some(secret) => secret
                    .data
                    .as_ref()
                    .and_then(|d| d.get(&key))
                    .map(|b| String::from_utf8(b.0.clone()).map_err(|_| "not UTF-8".to_string()))
                    .or_else(|| {
                        secret
                            .string_data
                            .as_ref()
                            .and_then(|d| d.get(&key))
                            .map(|v| Ok(v.clone()))
                    })
                    .unwrap_or_else(|| Err("the Secret has no such key".to_string())),
            };
            fetched.values.insert((name, key), value);
        }
    }
    Ok(build(&fetched))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(container: &str, message: Option<&str>) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "status": {"containerStatuses": [{
                "name": container, "image": "i", "imageID": "", "ready": false,
                "restartCount": 0,
                "state": {"terminated": {"exitCode": 3, "message": message}}
            }]}
        }))
        .unwrap()
    }

    #[test]
    fn the_report_is_the_last_parsable_line_of_the_agent_termination_message() {
        let report = r#"{"kind":"Backup","outcome":"Failed","startedAt":"2026-01-06T03:00:00Z","finishedAt":"2026-01-06T03:00:05Z","message":"pg_dump: connection refused"}"#;
        let logs = format!("2026-01-06 starting\nerror: refused\n{report}\n");
        for message in [report.to_string(), logs] {
            match pod_report(&pod(AGENT_CONTAINER, Some(&message))) {
                Some(AgentReport::Backup(b)) => {
                    assert_eq!(b.message, "pg_dump: connection refused")
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(pod_report(&pod(AGENT_CONTAINER, Some("OOMKilled"))).is_none());
        assert!(pod_report(&pod(AGENT_CONTAINER, None)).is_none());
        assert!(pod_report(&pod("sidecar", Some(report))).is_none());
    }
}
