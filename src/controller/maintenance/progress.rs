//! Task progress within an open window: start each task in order (marked `Running` in status
//! first), poll it, record its result, apply the failure policy.

use chrono::{DateTime, TimeDelta, Utc};
use kube::runtime::events::EventType;

use super::error::Error;
use super::lifecycle::{Run, indexed};
use super::notices::Notice;
use super::plan::{chrono_time, k8s_time, same_second};
use super::sql::{self, SqlOutcome};
use super::tasks::{self, Step};
use crate::api::maintenance_window::{
    FailurePolicy, MaintenanceTask, MaintenanceWindowStatus, TaskPhase, TaskResult,
};

/// How often a running task is looked at.
pub const TASK_POLL: std::time::Duration = std::time::Duration::from_secs(1);

fn poll_at(now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Some(now + TimeDelta::from_std(TASK_POLL).unwrap_or_default())
}

/// Key of a background SQL run: window, task and window start.
fn run_key(ns: &str, name: &str, task: &str, start: DateTime<Utc>) -> String {
    format!("{ns}/{name}/{task}/{}", start.timestamp())
}

fn result_mut<'a>(
    status: &'a mut MaintenanceWindowStatus,
    task: &str,
    start: DateTime<Utc>,
) -> Option<&'a mut TaskResult> {
    status
        .task_results
        .iter_mut()
        .find(|r| r.name == task && same_second(chrono_time(&r.window_start), start))
}

/// Whether a task is still running after a step.
enum Progress {
    Running,
    Ended,
}

impl Run<'_> {
    /// Runs the tasks of the open window as far as they go now; returns when to look again.
    pub(super) async fn advance_tasks(
        &mut self,
        status: &mut MaintenanceWindowStatus,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, Error> {
        let Some(current) = status.current_window.clone() else {
            return Ok(None);
        };
        let start = chrono_time(&current.start);
        let tasks = self.window.spec.tasks.clone();
        for _ in 0..=tasks.len() * 2 + 1 {
            let progress = match tasks::next_step(&tasks, &status.task_results, start) {
                Step::Done => return Ok(None),
                Step::SkipRest => {
                    self.skip_rest(status, now).await?;
                    return Ok(None);
                }
                Step::Start(index) => self.start(status, &tasks[index], start, now).await?,
                Step::Poll(index) => self.poll(status, &tasks[index], start, now).await?,
            };
            if let Progress::Running = progress {
                return Ok(poll_at(now));
            }
        }
        Ok(poll_at(now))
    }

    /// After a failure: the rest is skipped; with `CloseEarlyAndRestore` the window closes.
    async fn skip_rest(
        &mut self,
        status: &mut MaintenanceWindowStatus,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        for result in &mut status.task_results {
            if matches!(result.phase, TaskPhase::Pending | TaskPhase::Running) {
                result.phase = TaskPhase::Skipped;
                result.message = Some("not run: an earlier task failed".into());
            }
        }
        self.persist(status).await?;
        if self.window.spec.failure_policy == FailurePolicy::CloseEarlyAndRestore {
            self.close(
                status,
                now,
                "a task failed (failurePolicy CloseEarlyAndRestore)",
            )
            .await?;
            if let Some(entry) = indexed(self.window, status) {
                self.owner.index.upsert(entry);
            }
        }
        Ok(())
    }

    async fn start(
        &mut self,
        status: &mut MaintenanceWindowStatus,
        task: &MaintenanceTask,
        start: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Progress, Error> {
        if result_mut(status, &task.name, start).is_none() {
            status
                .task_results
                .extend(tasks::pending(std::slice::from_ref(task), start));
        }
        let job = tasks::build_job(self.window, task, start);
        if let Some(result) = result_mut(status, &task.name, start) {
            result.phase = TaskPhase::Running;
            result.start_time = Some(k8s_time(now));
            result.job_name = job.as_ref().and_then(|j| j.metadata.name.clone());
        }
        // Recorded before anything runs: a restart from here on never starts it again.
        self.persist(status).await?;
        if let Some(job) = job {
            tasks::start_job(self.client(), &job).await?;
            return Ok(Progress::Running);
        }
        let Some(sql_task) = task.sql.clone() else {
            let outcome = SqlOutcome {
                succeeded: false,
                completed: 0,
                message: "the task has neither sql nor jobTemplate".into(),
            };
            return self.finish(status, task, start, now, outcome).await;
        };
        let config =
            match sql::connection_config(self.client(), &self.ns, &sql_task.connection).await {
                Ok(config) => config,
                Err(message) => {
                    let outcome = SqlOutcome {
                        succeeded: false,
                        completed: 0,
                        message: format!("sql.connection: {message}"),
                    };
                    return self.finish(status, task, start, now, outcome).await;
                }
            };
        let timeout = task.timeout.as_ref().and_then(|t| t.parse().ok());
        let label = task.timeout.clone();
        let handle = tokio::spawn(async move {
            match timeout {
                Some(limit) => tokio::time::timeout(limit, sql::run(config, &sql_task))
                    .await
                    .unwrap_or_else(|_| SqlOutcome {
                        succeeded: false,
                        completed: 0,
                        message: format!(
                            "timed out after {}",
                            label.map(|l| l.0).unwrap_or_default()
                        ),
                    }),
                None => sql::run(config, &sql_task).await,
            }
        });
        self.owner
            .sql_runs_insert(run_key(&self.ns, &self.name, &task.name, start), handle);
        Ok(Progress::Running)
    }

    async fn poll(
        &mut self,
        status: &mut MaintenanceWindowStatus,
        task: &MaintenanceTask,
        start: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Progress, Error> {
        let job_name = result_mut(status, &task.name, start).and_then(|r| r.job_name.clone());
        if let Some(job_name) = job_name {
            return match tasks::job_outcome(self.client(), &self.ns, &job_name).await {
                Ok(None) => Ok(Progress::Running),
                Ok(Some((succeeded, message))) => {
                    let outcome = SqlOutcome {
                        succeeded,
                        completed: 0,
                        message,
                    };
                    self.finish(status, task, start, now, outcome).await
                }
                Err(Error::Missing { .. }) => {
                    // Marked running, but the previous process stopped before creating it.
                    if let Some(job) = tasks::build_job(self.window, task, start) {
                        tasks::start_job(self.client(), &job).await?;
                    }
                    Ok(Progress::Running)
                }
                Err(error) => Err(error),
            };
        }
        let key = run_key(&self.ns, &self.name, &task.name, start);
        let outcome = match self.owner.sql_run_take_finished(&key) {
            SqlRun::Running => return Ok(Progress::Running),
            SqlRun::Finished(outcome) => outcome,
            SqlRun::Unknown => SqlOutcome {
                succeeded: false,
                completed: 0,
                message: "interrupted by a controller restart; not run again (statements may have partly run)".into(),
            },
        };
        self.finish(status, task, start, now, outcome).await
    }

    /// Records a task's end; a failure raises a Warning Event and an alert.
    async fn finish(
        &mut self,
        status: &mut MaintenanceWindowStatus,
        task: &MaintenanceTask,
        start: DateTime<Utc>,
        now: DateTime<Utc>,
        outcome: SqlOutcome,
    ) -> Result<Progress, Error> {
        if let Some(result) = result_mut(status, &task.name, start) {
            result.phase = if outcome.succeeded {
                TaskPhase::Succeeded
            } else {
                TaskPhase::Failed
            };
            result.end_time = Some(k8s_time(now));
            if task.sql.is_some() {
                result.statements_completed = Some(outcome.completed);
            }
            result.message = Some(outcome.message.clone());
        }
        self.persist(status).await?;
        if !outcome.succeeded {
            self.task_failed(&task.name, &outcome.message, now).await;
        }
        Ok(Progress::Ended)
    }

    /// A task failed: a Warning Event and an alert through the notice channels.
    async fn task_failed(&self, task: &str, message: &str, now: DateTime<Utc>) {
        self.event_typed(
            EventType::Warning,
            "TaskFailed",
            "RunTask",
            format!("Task {task} failed: {message}"),
        )
        .await;
        let notice = Notice {
            key: format!(
                "maintenance/{}/{}/task-failed/{task}/{}",
                self.ns,
                self.name,
                now.timestamp()
            ),
            summary: format!("Maintenance {}/{}: task {task} failed", self.ns, self.name),
            details: message.to_string(),
        };
        self.notify(&notice, now).await;
    }
}

/// A background SQL run as the reconcile finds it.
pub(super) enum SqlRun {
    /// Still running.
    Running,
    /// Done; its outcome (taken out of memory).
    Finished(SqlOutcome),
    /// Not known to this process (started by a process that stopped).
    Unknown,
}
