//! CronJobSpecs with an HTTP trigger, run in-process on their schedules by `watchkeeper run`,
//! and watched exactly as the controller watches them in a cluster: the same adapter
//! ([`crate::jobs`]), the same judge ([`crate::schedule::watch`]), the same alerts and metrics.
//!
//! Scheduling follows the Kubernetes CronJob controller, so one manifest means the same runs in
//! both modes: the schedule's time zone with Kubernetes' DST rule; after a restart (or a stall)
//! only the most recent missed due time is started, and not when it is older than
//! `startingDeadline`; `concurrencyPolicy` Forbid skips a due time while a run is active,
//! Replace stops the active run, Allow overlaps; `activeDeadline` bounds a run. Each run is one
//! call of the trigger agent's request logic ([`crate::agent::trigger::trigger`]) with its
//! retries.
//!
//! Time comes from a [`JobClock`]: the wall clock, or for tests a compressed clock on which
//! schedules, graces and deadlines pass `speed` times faster (HTTP timeouts stay real).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::maintenance::Calendar;
use super::state::{SavedJob, StateStore};
use crate::agent::trigger::trigger_with;
use crate::agent::{Outcome, TriggerConfig, TriggerResult};
use crate::alert::sinks::Sinks;
use crate::alert::status::OpenAlertEntry;
use crate::alert::{Alert, AlertEngine, NotificationKind, Severity};
use crate::api::cron_job_spec::ConcurrencyPolicy;
use crate::jobs::adapter::observation;
use crate::jobs::{JobConfig, JobError, JobKey, JobMetrics};
use crate::monitor::MonitorError;
use crate::schedule::watch::{
    JobHealth, JobMemory, RunObservation, RunOutcome, RunTrigger, WatchReport, evaluate,
    firing_alerts_from,
};

/// Where the runner's time comes from.
#[derive(Clone, Copy, Debug)]
pub struct JobClock {
    /// Reads the system clock (follows NTP adjustments and suspends).
    wall: bool,
    speed: u32,
    origin_real: Instant,
    origin: DateTime<Utc>,
}

impl JobClock {
    /// The wall clock.
    pub fn wall() -> Self {
        Self {
            wall: true,
            ..Self::compressed(1)
        }
    }

    /// A clock that starts at the current time and runs `speed` times faster (1 is the wall
    /// clock): with 60, a `* * * * *` job runs every real second and a 5m grace is 5 s.
    pub fn compressed(speed: u32) -> Self {
        Self::compressed_from(speed, Utc::now())
    }

    /// A compressed clock that reads `start` when the session starts its jobs (e.g. where a
    /// previous session's clock stopped, so a restart test does not travel back in time).
    pub fn compressed_from(speed: u32, start: DateTime<Utc>) -> Self {
        Self {
            wall: false,
            speed: speed.max(1),
            origin_real: Instant::now(),
            origin: start,
        }
    }

    /// The same clock reading what it reads now from this instant on (a compressed clock
    /// would otherwise run ahead while manifests are validated).
    fn anchored(self) -> Self {
        Self {
            origin_real: Instant::now(),
            ..self
        }
    }

    /// How much faster than the wall clock.
    pub fn speed(&self) -> u32 {
        self.speed
    }

    /// The current time on this clock.
    pub fn now(&self) -> DateTime<Utc> {
        if self.wall {
            return Utc::now();
        }
        let elapsed = self.origin_real.elapsed().saturating_mul(self.speed);
        self.origin + TimeDelta::from_std(elapsed).unwrap_or(TimeDelta::MAX)
    }

    /// The real time a span of this clock's time takes.
    pub fn real(&self, span: Duration) -> Duration {
        span / self.speed
    }
}

/// What happened to a job, for the terminal, tests and metrics.
#[derive(Clone, Debug)]
pub enum JobEvent {
    /// A run started.
    RunStarted {
        /// Which job.
        key: JobKey,
        /// Run name (`<job>-<minutes since the epoch of its due time>`, as Kubernetes names Jobs).
        run: String,
        /// The due time it belongs to.
        scheduled_for: Option<DateTime<Utc>>,
        /// When (job clock).
        at: DateTime<Utc>,
    },
    /// A run finished.
    RunFinished {
        /// Which job.
        key: JobKey,
        /// The run.
        run: RunObservation,
    },
    /// A due time was not run.
    RunSkipped {
        /// Which job.
        key: JobKey,
        /// The due time.
        due: DateTime<Utc>,
        /// Why (concurrency policy, starting deadline).
        reason: String,
    },
    /// The health changed.
    HealthChanged {
        /// Which job.
        key: JobKey,
        /// Before.
        from: JobHealth,
        /// After.
        to: JobHealth,
        /// The report's reason.
        reason: &'static str,
        /// When (job clock).
        at: DateTime<Utc>,
    },
    /// A receiver accepted a notification.
    Notified {
        /// Which job.
        key: JobKey,
        /// Trigger, repeat or resolve.
        kind: NotificationKind,
        /// Channel name.
        channel: String,
        /// Alert key (`job/late`, …).
        alert: String,
        /// Severity sent.
        severity: Severity,
    },
    /// A notification could not be delivered (retried next round).
    NotifyFailed {
        /// Which job.
        key: JobKey,
        /// Channel name.
        channel: String,
        /// Why (never a credential).
        error: String,
    },
}

/// One job as `/status` and the table show it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The cron expression.
    pub schedule: String,
    /// Its time zone.
    pub time_zone: String,
    /// The URL each run calls.
    pub url: String,
    /// Health against the schedule.
    pub health: JobHealth,
    /// Why (CamelCase).
    pub reason: String,
    /// Explanation naming times in the job's zone.
    pub message: String,
    /// Next due time.
    pub next_run: Option<DateTime<Utc>>,
    /// Due time of the newest scheduled run.
    pub last_schedule_time: Option<DateTime<Utc>>,
    /// End of the newest successful run.
    pub last_successful_time: Option<DateTime<Utc>>,
    /// End of the newest failed run.
    pub last_failure_time: Option<DateTime<Utc>>,
    /// Failed runs since the last success.
    pub consecutive_failures: u32,
    /// Due times with no run since the last schedule time.
    pub missed_starts: u32,
    /// More than 100 missed starts.
    pub stuck: bool,
    /// The newest run, finished or running.
    pub last_run: Option<RunObservation>,
    /// Runs started by this process.
    pub runs_started: u64,
    /// Due times skipped by this process (concurrency policy, starting deadline).
    pub runs_skipped: u64,
    /// Alerts open (told to at least one channel).
    pub open_alerts: Vec<OpenAlertEntry>,
    /// Notifications receivers accepted in this process.
    pub notifications_sent: u64,
    /// The last delivery failure, if the last round had one.
    pub last_alert_error: Option<String>,
    /// The open MaintenanceWindow suspending the job (`namespace/name`): due times are not run.
    pub suspended_by_window: Option<String>,
    /// The open MaintenanceWindow muting the job's alerts (`namespace/name`).
    pub alerts_muted_by_window: Option<String>,
}

struct Entry {
    key: JobKey,
    /// The CronJobSpec's labels, which MaintenanceWindow selectors match.
    labels: BTreeMap<String, String>,
    status: Mutex<JobStatus>,
    saved: Mutex<SavedJob>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section replaces whole values; a poisoned lock still holds valid data.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct Shared {
    entries: Mutex<BTreeMap<JobKey, Arc<Entry>>>,
    events: broadcast::Sender<JobEvent>,
    clock: JobClock,
    metrics: JobMetrics,
    store: Option<StateStore>,
    calendar: Arc<Calendar>,
}

impl Shared {
    fn saved(&self) -> BTreeMap<JobKey, SavedJob> {
        lock(&self.entries)
            .iter()
            .map(|(k, e)| (k.clone(), lock(&e.saved).clone()))
            .collect()
    }

    fn persist(&self) {
        if let Some(store) = &self.store
            && let Err(e) = store.save_jobs(&self.saved())
        {
            eprintln!("warning: {e}");
        }
    }

    fn emit(&self, event: JobEvent) {
        let _ = self.events.send(event);
    }
}

/// The in-process jobs of one `watchkeeper run`.
pub struct JobRuntime {
    shared: Arc<Shared>,
    cancel: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// Evaluation period on the job clock's real time: often enough that a grace or a deadline
/// is noticed within a second of job time at any speed, at most once a second.
fn tick(clock: &JobClock) -> Duration {
    (Duration::from_secs(1) / clock.speed()).max(Duration::from_millis(20))
}

impl JobRuntime {
    /// A runtime with no jobs yet.
    pub fn new(clock: JobClock, metrics: JobMetrics, store: Option<StateStore>) -> Self {
        let (events, _) = broadcast::channel(1024);
        Self {
            shared: Arc::new(Shared {
                entries: Mutex::default(),
                events,
                clock: clock.anchored(),
                metrics,
                store,
                calendar: Arc::default(),
            }),
            cancel: CancellationToken::new(),
            tasks: Mutex::default(),
        }
    }

    /// The same runtime obeying the MaintenanceWindows of `calendar` (before any job starts).
    pub fn with_calendar(mut self, calendar: Arc<Calendar>) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.calendar = calendar;
        }
        self
    }

    /// The MaintenanceWindows jobs obey.
    pub fn calendar(&self) -> &Arc<Calendar> {
        &self.shared.calendar
    }

    /// Every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.shared.events.subscribe()
    }

    /// The clock jobs run on.
    pub fn clock(&self) -> JobClock {
        self.shared.clock
    }

    /// Starts a job (HTTP trigger required) from what a previous run saved (or afresh).
    pub fn start(
        &self,
        key: JobKey,
        config: JobConfig,
        saved: Option<SavedJob>,
    ) -> Result<(), JobError> {
        self.start_labelled(key, BTreeMap::new(), config, saved)
    }

    /// [`Self::start`] for a CronJobSpec with `labels` (which MaintenanceWindows select).
    pub fn start_labelled(
        &self,
        key: JobKey,
        labels: BTreeMap<String, String>,
        config: JobConfig,
        saved: Option<SavedJob>,
    ) -> Result<(), JobError> {
        let Some(request) = config.trigger.clone() else {
            // The adapter refuses job templates in embedded mode; nothing to run without a request.
            return Ok(());
        };
        let clock = self.shared.clock;
        let now = clock.now();
        let mut saved = saved.unwrap_or_default();
        let watching_since = *saved.watching_since.get_or_insert(now);
        interrupted(&mut saved.memory, now);
        let engine = match &config.alerting {
            Some(alerting) => Some(
                AlertEngine::new(
                    alerting.clone(),
                    saved.alerts.clone(),
                    Sinks::new().map_err(MonitorError::Sinks)?,
                )
                .map_err(MonitorError::Alerting)?,
            ),
            None => None,
        };
        let metrics = &self.shared.metrics;
        metrics.register_job(&key.namespace, &key.name);
        if let Some(at) = saved.memory.last_successful_time {
            metrics.set_last_success(&key.namespace, &key.name, at);
        }
        metrics.set_health(&key.namespace, &key.name, JobHealth::Unknown);
        let status = JobStatus {
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            schedule: config.policy.schedule.expression().to_string(),
            time_zone: config.policy.schedule.time_zone().name().to_string(),
            url: request.url.to_string(),
            health: JobHealth::Unknown,
            reason: "AwaitingFirstRun".to_string(),
            message: String::new(),
            next_run: None,
            last_schedule_time: saved.memory.last_schedule_time,
            last_successful_time: saved.memory.last_successful_time,
            last_failure_time: saved.memory.last_failure_time,
            consecutive_failures: saved.memory.consecutive_failures,
            missed_starts: 0,
            stuck: false,
            last_run: saved.memory.last_run.clone(),
            runs_started: 0,
            runs_skipped: 0,
            open_alerts: saved.alerts.open_entries(),
            notifications_sent: 0,
            last_alert_error: None,
            suspended_by_window: None,
            alerts_muted_by_window: None,
        };
        let entry = Arc::new(Entry {
            key: key.clone(),
            labels,
            status: Mutex::new(status),
            saved: Mutex::new(saved),
        });
        lock(&self.shared.entries).insert(key, entry.clone());
        let (alerts_tx, alerts_rx) = watch::channel(Vec::new());
        let mut tasks = lock(&self.tasks);
        if let Some(engine) = engine {
            tasks.push(tokio::spawn(alert_loop(
                self.shared.clone(),
                entry.clone(),
                engine,
                alerts_rx,
                self.cancel.clone(),
            )));
        }
        tasks.push(tokio::spawn(
            JobLoop {
                shared: self.shared.clone(),
                entry,
                config,
                request: Arc::new(request),
                watching_since,
                alerts: alerts_tx,
                active: Vec::new(),
                last_health: None,
            }
            .run(self.cancel.clone()),
        ));
        Ok(())
    }

    /// Every job's status, by key.
    pub fn statuses(&self) -> Vec<JobStatus> {
        lock(&self.shared.entries)
            .values()
            .map(|e| lock(&e.status).clone())
            .collect()
    }

    /// What each job would save now.
    pub fn saved(&self) -> BTreeMap<JobKey, SavedJob> {
        self.shared.saved()
    }

    /// Stops every job (active runs are abandoned and count as interrupted at the next start)
    /// and returns what to save.
    pub async fn shutdown(&self) -> BTreeMap<JobKey, SavedJob> {
        self.cancel.cancel();
        let tasks: Vec<JoinHandle<()>> = lock(&self.tasks).drain(..).collect();
        for task in tasks {
            let _ = task.await;
        }
        self.shared.saved()
    }
}

/// A run left Running by a stopped process never reports; count it as failed, as Kubernetes
/// counts a Job whose pod was killed.
fn interrupted(memory: &mut JobMemory, now: DateTime<Utc>) {
    if let Some(run) = memory
        .last_run
        .clone()
        .filter(|r| r.outcome == RunOutcome::Running)
    {
        memory.observe(&[RunObservation {
            finished_at: Some(now.max(run.started_at)),
            outcome: RunOutcome::Failed,
            message: Some("interrupted: watchkeeper run stopped while it ran".to_string()),
            ..run
        }]);
    }
}

/// The most recent due time in `(after, now]`.
fn latest_due(
    schedule: &crate::schedule::CronSchedule,
    after: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    schedule
        .previous_before(now + TimeDelta::nanoseconds(1))
        .filter(|due| *due > after)
}

struct ActiveRun {
    name: String,
    task: JoinHandle<()>,
    started_at: DateTime<Utc>,
    scheduled_for: Option<DateTime<Utc>>,
}

struct JobLoop {
    shared: Arc<Shared>,
    entry: Arc<Entry>,
    config: JobConfig,
    request: Arc<TriggerConfig>,
    watching_since: DateTime<Utc>,
    alerts: watch::Sender<Vec<Alert>>,
    active: Vec<ActiveRun>,
    last_health: Option<JobHealth>,
}

impl JobLoop {
    async fn run(mut self, cancel: CancellationToken) {
        let clock = self.shared.clock;
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<RunObservation>();
        let memory = lock(&self.entry.saved).memory.clone();
        // Due times up to here are handled: the newest scheduled run's, or when watching began.
        let mut handled = memory.last_schedule_time.unwrap_or(self.watching_since);
        loop {
            let now = clock.now();
            if !self.config.policy.suspended
                && let Some(due) = latest_due(&self.config.policy.schedule, handled, now)
            {
                handled = due;
                self.due(due, now, &done_tx);
            }
            self.judge(now);
            let next = self.config.policy.schedule.next_after(handled.max(now));
            let wait = next
                .map(|t| clock.real((t - now).to_std().unwrap_or_default()))
                .unwrap_or(Duration::MAX)
                .min(tick(&clock));
            tokio::select! {
                _ = cancel.cancelled() => break,
                Some(run) = done_rx.recv() => self.finished(run),
                _ = tokio::time::sleep(wait) => {}
            }
        }
        for run in self.active.drain(..) {
            run.task.abort();
        }
    }

    /// A due time came: start a run, or say why not.
    fn due(
        &mut self,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
        done: &mpsc::UnboundedSender<RunObservation>,
    ) {
        let policy = &self.config.policy;
        let window = self
            .shared
            .calendar
            .job_at(&self.entry.key.namespace, &self.entry.labels, due)
            .suspended_by;
        let skip = if let Some(window) = window {
            Some(format!(
                "MaintenanceWindow {window} is open (suspendCronJobs)"
            ))
        } else if let Some(deadline) = policy.starting_deadline
            && now - due > TimeDelta::from_std(deadline).unwrap_or(TimeDelta::MAX)
        {
            Some(format!(
                "missed its starting deadline ({}s)",
                deadline.as_secs()
            ))
        } else if !self.active.is_empty() && self.config.concurrency == ConcurrencyPolicy::Forbid {
            Some("the previous run is still active (concurrencyPolicy Forbid)".to_string())
        } else {
            None
        };
        if let Some(reason) = skip {
            lock(&self.entry.status).runs_skipped += 1;
            self.shared.emit(JobEvent::RunSkipped {
                key: self.entry.key.clone(),
                due,
                reason,
            });
            return;
        }
        if self.config.concurrency == ConcurrencyPolicy::Replace {
            for run in self.active.drain(..) {
                run.task.abort();
                let replaced = RunObservation {
                    name: run.name,
                    trigger: RunTrigger::Scheduled,
                    scheduled_for: run.scheduled_for,
                    started_at: run.started_at,
                    finished_at: Some(now),
                    outcome: RunOutcome::Failed,
                    status_code: None,
                    message: Some("replaced by the next run (concurrencyPolicy Replace)".into()),
                };
                let _ = done.send(replaced);
            }
        }
        self.start_run(due, now, done);
    }

    fn start_run(
        &mut self,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
        done: &mpsc::UnboundedSender<RunObservation>,
    ) {
        let key = &self.entry.key;
        // Kubernetes names a CronJob's Jobs `<name>-<due time in minutes since the epoch>`.
        let name = format!("{}-{}", key.name, due.timestamp().div_euclid(60));
        let running = RunObservation {
            name: name.clone(),
            trigger: RunTrigger::Scheduled,
            scheduled_for: Some(due),
            started_at: now,
            finished_at: None,
            outcome: RunOutcome::Running,
            status_code: None,
            message: None,
        };
        lock(&self.entry.saved).memory.observe(&[running]);
        lock(&self.entry.status).runs_started += 1;
        self.shared.persist();
        self.shared.emit(JobEvent::RunStarted {
            key: key.clone(),
            run: name.clone(),
            scheduled_for: Some(due),
            at: now,
        });
        let clock = self.shared.clock;
        let request = self.request.clone();
        let deadline = self.config.active_deadline;
        let done = done.clone();
        let run_name = name.clone();
        let task = tokio::spawn(async move {
            // Retries show in the run's result (attempts); nothing is printed over the table.
            let call = trigger_with(&request, |_, _, _| {});
            let result = match deadline {
                Some(limit) => tokio::time::timeout(clock.real(limit), call)
                    .await
                    .unwrap_or_else(|_| TriggerResult {
                        outcome: Outcome::Timeout,
                        status_code: None,
                        latency_ms: 0,
                        attempts: 0,
                        body: None,
                        error: Some(format!(
                            "stopped at the active deadline ({}s)",
                            limit.as_secs()
                        )),
                    }),
                None => call.await,
            };
            let _ = done.send(observation(
                run_name,
                RunTrigger::Scheduled,
                Some(due),
                now,
                clock.now(),
                &result,
            ));
        });
        self.active.push(ActiveRun {
            name,
            task,
            started_at: now,
            scheduled_for: Some(due),
        });
    }

    /// A run ended: fold it in, count it, save.
    fn finished(&mut self, run: RunObservation) {
        self.active.retain(|a| a.name != run.name);
        let fresh = lock(&self.entry.saved)
            .memory
            .observe(std::slice::from_ref(&run));
        self.shared.persist();
        self.judge(self.shared.clock.now());
        let key = &self.entry.key;
        for run in fresh {
            self.shared
                .metrics
                .record_finished(&key.namespace, &key.name, &run);
            self.shared.emit(JobEvent::RunFinished {
                key: key.clone(),
                run,
            });
        }
    }

    /// Evaluates the job, publishes health, status and the firing alerts.
    fn judge(&mut self, now: DateTime<Utc>) {
        let memory = lock(&self.entry.saved).memory.clone();
        let key = &self.entry.key;
        let calendar = &self.shared.calendar;
        // Windows back to the oldest instant the judge looks at (due times since the last
        // schedule, dead-man time since the last success).
        let from = [memory.last_schedule_time, memory.last_successful_time]
            .into_iter()
            .flatten()
            .fold(self.watching_since, DateTime::min);
        let excused = calendar.job_excused(&key.namespace, &self.entry.labels, from, now);
        let report = evaluate(
            &self.config.policy,
            &memory,
            self.watching_since,
            &excused,
            now,
        );
        let open = calendar.job_at(&key.namespace, &self.entry.labels, now);
        // Status first, so whoever reacts to an event reads a status that already shows it.
        {
            let mut status = lock(&self.entry.status);
            update_status(&mut status, &report, &memory);
            status.suspended_by_window = open.suspended_by;
            status.alerts_muted_by_window = open.muted_by;
        }
        if self.last_health != Some(report.health) {
            self.shared
                .metrics
                .set_health(&key.namespace, &key.name, report.health);
            let from = self.last_health.unwrap_or(JobHealth::Unknown);
            if from != report.health {
                self.shared.emit(JobEvent::HealthChanged {
                    key: key.clone(),
                    from,
                    to: report.health,
                    reason: report.reason,
                    at: now,
                });
            }
            self.last_health = Some(report.health);
        }
        let firing = firing_alerts_from(
            &report,
            &self.config.severities,
            &key.alert_labels(),
            &key.source(),
        );
        self.alerts.send_if_modified(|current| {
            let changed = keys(current) != keys(&firing);
            *current = firing;
            changed
        });
    }
}

fn keys(alerts: &[Alert]) -> Vec<(&str, Severity)> {
    alerts
        .iter()
        .map(|a| (a.key.as_str(), a.severity))
        .collect()
}

fn update_status(status: &mut JobStatus, report: &WatchReport, memory: &JobMemory) {
    status.health = report.health;
    status.reason = report.reason.to_string();
    status.message = report.message.clone();
    status.next_run = report.next_run;
    status.missed_starts = report.missed_starts;
    status.stuck = report.stuck;
    status.last_schedule_time = memory.last_schedule_time;
    status.last_successful_time = memory.last_successful_time;
    status.last_failure_time = memory.last_failure_time;
    status.consecutive_failures = memory.consecutive_failures;
    status.last_run = memory.last_run.clone();
}

/// Alert rounds of one job, apart from its schedule so a slow receiver never delays a run:
/// at once when the firing set changes, otherwise every tick (repeats, retries of failed
/// deliveries).
async fn alert_loop(
    shared: Arc<Shared>,
    entry: Arc<Entry>,
    mut engine: AlertEngine,
    mut firing: watch::Receiver<Vec<Alert>>,
    cancel: CancellationToken,
) {
    let clock = shared.clock;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            changed = firing.changed() => if changed.is_err() { break },
            _ = tokio::time::sleep(tick(&clock)) => {}
        }
        let alerts = firing.borrow_and_update().clone();
        let before = engine.state().clone();
        let now = clock.now();
        let muted = shared
            .calendar
            .job_at(&entry.key.namespace, &entry.labels, now)
            .muted_by
            .is_some();
        // While a suppressAlerts window is open nothing is sent; what still fires after it is
        // sent at the first round after it closes.
        let report = if muted {
            engine.round_muted(&alerts, now)
        } else {
            engine.round(&alerts, now).await
        };
        {
            let mut status = lock(&entry.status);
            status.notifications_sent += report.sent.len() as u64;
            status.last_alert_error = report
                .failed
                .first()
                .map(|(n, e)| format!("{}: {e}", n.channel));
            status.open_alerts = engine.state().open_entries();
        }
        if engine.state() != &before {
            lock(&entry.saved).alerts = engine.state().clone();
            shared.persist();
        }
        let key = &entry.key;
        for n in &report.sent {
            shared.emit(JobEvent::Notified {
                key: key.clone(),
                kind: n.kind,
                channel: n.channel.clone(),
                alert: n.alert.key.clone(),
                severity: n.alert.severity,
            });
        }
        for (n, error) in &report.failed {
            shared.emit(JobEvent::NotifyFailed {
                key: key.clone(),
                channel: n.channel.clone(),
                error: error.to_string(),
            });
        }
    }
}
