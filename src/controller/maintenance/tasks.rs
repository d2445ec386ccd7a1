//! Tasks run when a window opens, in order, once per window.
//!
//! Each task's result lives in `status.taskResults` (keyed by task name and window start).
//! A Job task is marked `Running` with its deterministic Job name *before* the Job is
//! created, so a restarted controller finds the record and looks the Job up instead of
//! starting another; a Job that is missing is created (the previous process stopped between
//! the two steps). The Job is owned by the MaintenanceWindow, so Kubernetes deletes it with
//! the window.
//!
//! SQL tasks run in the controller process (see [`super::sql`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, PostParams};
use kube::{Client, Resource, ResourceExt};

use super::error::Error;
use super::plan::{chrono_time, job_name, k8s_time, same_second};
use crate::api::MaintenanceWindow;
use crate::api::maintenance_window::{MaintenanceTask, TaskPhase, TaskResult};

/// Label on a task's Job naming its MaintenanceWindow.
pub const WINDOW_LABEL: &str = "watchkeeper.dev/maintenance-window";
/// Label on a task's Job naming its task.
pub const TASK_LABEL: &str = "watchkeeper.dev/maintenance-task";

/// What to do next with the tasks of the window starting at `start`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Start task `index`.
    Start(usize),
    /// Task `index` runs; look at it again.
    Poll(usize),
    /// A task failed: mark every task without an end `Skipped`.
    SkipRest,
    /// Every task has ended.
    Done,
}

/// The result of `task` for the window starting at `start`.
pub fn result_of<'a>(
    results: &'a [TaskResult],
    task: &str,
    start: DateTime<Utc>,
) -> Option<&'a TaskResult> {
    results
        .iter()
        .find(|r| r.name == task && same_second(chrono_time(&r.window_start), start))
}

fn ended(phase: TaskPhase) -> bool {
    matches!(
        phase,
        TaskPhase::Succeeded | TaskPhase::Failed | TaskPhase::Skipped
    )
}

/// Decides the next step from the stored results. Pure.
pub fn next_step(tasks: &[MaintenanceTask], results: &[TaskResult], start: DateTime<Utc>) -> Step {
    let failed = tasks
        .iter()
        .any(|t| result_of(results, &t.name, start).is_some_and(|r| r.phase == TaskPhase::Failed));
    for (index, task) in tasks.iter().enumerate() {
        match result_of(results, &task.name, start).map(|r| r.phase) {
            Some(phase) if ended(phase) => continue,
            _ if failed => return Step::SkipRest,
            Some(TaskPhase::Running) => return Step::Poll(index),
            _ => return Step::Start(index),
        }
    }
    Step::Done
}

/// Fresh `Pending` results for a window that just opened; results of older windows are
/// dropped (status keeps the current or last window's results only).
pub fn pending(tasks: &[MaintenanceTask], start: DateTime<Utc>) -> Vec<TaskResult> {
    tasks
        .iter()
        .map(|t| TaskResult {
            name: t.name.clone(),
            window_start: k8s_time(start),
            phase: TaskPhase::Pending,
            start_time: None,
            end_time: None,
            statements_completed: None,
            job_name: None,
            message: None,
        })
        .collect()
}

/// The owned Job of `task` for the window starting at `start`.
pub fn build_job(
    window: &MaintenanceWindow,
    task: &MaintenanceTask,
    start: DateTime<Utc>,
) -> Option<Job> {
    let template = task.job_template.as_ref()?;
    let name = job_name(&window.name_any(), &task.name, start);
    let mut labels: BTreeMap<String, String> = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(WINDOW_LABEL.into(), window.name_any());
    labels.insert(TASK_LABEL.into(), task.name.clone());
    let mut spec: JobSpec = template.spec.clone().unwrap_or_default();
    if spec.active_deadline_seconds.is_none()
        && let Some(Ok(timeout)) = task.timeout.as_ref().map(|t| t.parse())
    {
        spec.active_deadline_seconds =
            Some(i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX).max(1));
    }
    let owner = OwnerReference {
        api_version: MaintenanceWindow::api_version(&()).into_owned(),
        kind: MaintenanceWindow::kind(&()).into_owned(),
        name: window.name_any(),
        uid: window.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    Some(Job {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: window.namespace(),
            labels: Some(labels),
            annotations: template
                .metadata
                .as_ref()
                .and_then(|m| m.annotations.clone()),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    })
}

/// Creates the task's Job unless it exists. Returns its name.
pub async fn start_job(client: &Client, job: &Job) -> Result<(), Error> {
    let ns = job.namespace().unwrap_or_default();
    let name = job.name_any();
    let api: Api<Job> = Api::namespaced(client.clone(), &ns);
    match api.create(&PostParams::default(), job).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(Error::api("create", "Job", &ns, &name, e)),
    }
}

/// A Job's outcome: `None` while it runs, else (succeeded, message). `Err(Missing)` when it
/// does not exist.
pub async fn job_outcome(
    client: &Client,
    ns: &str,
    name: &str,
) -> Result<Option<(bool, String)>, Error> {
    let job = Api::<Job>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .map_err(|e| Error::api("get", "Job", ns, name, e))?;
    Ok(outcome(&job))
}

/// Reads a Job's status: complete, failed, or still running. Pure.
pub fn outcome(job: &Job) -> Option<(bool, String)> {
    let status = job.status.as_ref()?;
    for condition in status.conditions.iter().flatten() {
        if condition.status != "True" {
            continue;
        }
        match condition.type_.as_str() {
            "Complete" | "SuccessCriteriaMet" => {
                return Some((true, format!("Job {} completed", job.name_any())));
            }
            "Failed" | "FailureTarget" => {
                let why = condition
                    .message
                    .clone()
                    .or_else(|| condition.reason.clone())
                    .unwrap_or_default();
                return Some((false, format!("Job {} failed: {why}", job.name_any())));
            }
            _ => {}
        }
    }
    if status.succeeded.unwrap_or(0) > 0 && status.active.unwrap_or(0) == 0 {
        return Some((true, format!("Job {} succeeded", job.name_any())));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn task(name: &str) -> MaintenanceTask {
        MaintenanceTask {
            name: name.into(),
            sql: None,
            job_template: Some(Default::default()),
            timeout: Some(crate::api::common::Duration("10m".into())),
        }
    }

    #[test]
    fn steps_run_tasks_in_order_and_skip_after_a_failure() {
        let start = Utc.with_ymd_and_hms(2026, 3, 3, 2, 0, 0).unwrap();
        let tasks = [task("a"), task("b"), task("c")];
        let mut results = pending(&tasks, start);
        assert_eq!(next_step(&tasks, &results, start), Step::Start(0));
        results[0].phase = TaskPhase::Running;
        assert_eq!(next_step(&tasks, &results, start), Step::Poll(0));
        results[0].phase = TaskPhase::Succeeded;
        assert_eq!(next_step(&tasks, &results, start), Step::Start(1));
        results[1].phase = TaskPhase::Failed;
        assert_eq!(next_step(&tasks, &results, start), Step::SkipRest);
        results[2].phase = TaskPhase::Skipped;
        assert_eq!(next_step(&tasks, &results, start), Step::Done);
        // Results of another window do not count.
        let later = start + chrono::TimeDelta::days(7);
        assert_eq!(next_step(&tasks, &results, later), Step::Start(0));
    }

    #[test]
    fn job_is_owned_labelled_and_bounded_by_the_timeout() {
        let mut window: MaintenanceWindow = serde_yaml::from_str(
            "apiVersion: watchkeeper.dev/v1alpha1\nkind: MaintenanceWindow\nmetadata: {name: monthly, namespace: ops, uid: u-1}\nspec:\n  schedule: {oneOff: {start: '2026-03-03T02:00:00Z', end: '2026-03-03T04:00:00Z'}}\n",
        )
        .unwrap();
        window.metadata.uid = Some("u-1".into());
        let start = Utc.with_ymd_and_hms(2026, 3, 3, 2, 0, 0).unwrap();
        let job = build_job(&window, &task("reindex"), start).unwrap();
        assert_eq!(
            job.name_any(),
            format!("monthly-reindex-{}", start.timestamp())
        );
        assert_eq!(job.namespace().as_deref(), Some("ops"));
        let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("MaintenanceWindow", "u-1", Some(true))
        );
        assert_eq!(job.labels()[TASK_LABEL], "reindex");
        assert_eq!(
            job.spec.as_ref().unwrap().active_deadline_seconds,
            Some(600)
        );
    }
}
