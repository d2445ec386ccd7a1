//! The runtime: the scheduler's task per monitor, and an alert task per monitor that has
//! something to alert about.
//!
//! Probes are started by the probe scheduler ([`crate::probe::scheduler`]: no drift, jittered
//! first start, bounded concurrency per target host); each outcome is handled on the
//! scheduler's result path (one dispatcher task for the runtime, no await in it): it records the
//! sample, evaluates health and publishes the set of firing alerts. The alert task runs an
//! alert-engine round for each new firing set, so a slow receiver never delays probes (while it
//! is busy, intermediate firing sets are coalesced into the newest one); it is started when the
//! first alert fires (or at once when the restored alert state holds alerts), so a monitor that
//! never alerts costs no task, engine or channel for it (10,000 monitors: see
//! docs/benchmarks.md, "Memory"). Observers
//! (metrics, a terminal table, a state file) follow [`MonitorEvent`]s; everyone else reads
//! [`MonitorRuntime::status`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::alert::{Alert, AlertEngine, AlertState, NotificationKind, Severity, sinks::Sinks};
use crate::api::health_monitor::{Health, HealthMonitorStatus, ThresholdLevel};
use crate::probe::health::{Evaluation, HealthEvaluator, Level};
use crate::probe::scheduler::{Fired, JobFuture, MonitorSpec, Scheduler, SchedulerConfig};
use crate::probe::stats::{MonitorStats, Sample};
use crate::probe::{ProbeOutcome, ProbeSpec, Prober, Target};

use super::status::{self, MonitorStatus, ThresholdState};
use super::{MonitorConfig, MonitorError, MonitorKey};

/// What happened in a monitor, for observers. Sent on a broadcast channel: an observer that
/// falls behind loses the oldest events (and learns so from `RecvError::Lagged`).
#[derive(Clone, Debug)]
pub enum MonitorEvent {
    /// A probe finished.
    Probed {
        /// Which monitor.
        key: MonitorKey,
        /// What it found.
        outcome: Arc<ProbeOutcome>,
    },
    /// The monitor's health changed.
    HealthChanged {
        /// Which monitor.
        key: MonitorKey,
        /// Health before.
        from: crate::api::health_monitor::Health,
        /// Health now.
        to: crate::api::health_monitor::Health,
        /// When the change was seen.
        at: DateTime<Utc>,
    },
    /// A receiver accepted a notification.
    Notified {
        /// Which monitor.
        key: MonitorKey,
        /// Trigger, repeat or resolve.
        kind: NotificationKind,
        /// Channel name.
        channel: String,
        /// Alert key (`down`, `threshold/<name>`).
        alert: String,
        /// Severity sent.
        severity: Severity,
        /// Summary sent.
        summary: String,
    },
    /// A notification could not be delivered (it stays owed and is retried next round).
    NotifyFailed {
        /// Which monitor.
        key: MonitorKey,
        /// Channel name.
        channel: String,
        /// Why (never a credential).
        error: String,
    },
    /// The alert engine's state changed: persist it (status or a state file) so a restart
    /// does not re-send open alerts.
    AlertState {
        /// Which monitor.
        key: MonitorKey,
        /// The state to hand back to [`MonitorRuntime::start`] after a restart.
        state: AlertState,
    },
}

struct Running {
    status: Arc<RwLock<MonitorStatus>>,
    alert_state: Arc<RwLock<AlertState>>,
    cancel: CancellationToken,
    /// The alert task, once started (see [`AlertSlot`]).
    alert_task: AlertTaskHandle,
}

/// The alert task of a monitor, once started; shared so that [`MonitorRuntime::shutdown`] can
/// wait for a task the result path started.
type AlertTaskHandle = Arc<Mutex<Option<JoinHandle<()>>>>;

/// Who handles each monitor's probe outcomes, by scheduler id (`namespace/name`). Outcomes are
/// handled on the dispatcher's task (see the module docs): no task and no channel per monitor.
type Inboxes = Arc<Mutex<BTreeMap<String, Arc<Mutex<ProbeTask>>>>>;

/// Runs many monitors in one process. Cheap to share behind an `Arc`.
pub struct MonitorRuntime {
    prober: Arc<Prober>,
    sinks: Sinks,
    monitors: Mutex<BTreeMap<MonitorKey, Running>>,
    scheduler: Mutex<Scheduler<ProbeOutcome>>,
    inboxes: Inboxes,
    dispatcher: JoinHandle<()>,
    events: broadcast::Sender<MonitorEvent>,
}

impl Drop for MonitorRuntime {
    fn drop(&mut self) {
        self.dispatcher.abort();
    }
}

impl MonitorRuntime {
    /// A runtime with no monitors; builds the shared probe and alert HTTP clients and the
    /// scheduler. Must be called within a Tokio runtime.
    pub fn new() -> Result<Self, MonitorError> {
        let (events, _) = broadcast::channel(4096);
        let (scheduler, mut results) = Scheduler::new(SchedulerConfig::default())
            .map_err(|e| MonitorError::Scheduler(e.to_string()))?;
        let inboxes: Inboxes = Arc::new(Mutex::new(BTreeMap::new()));
        let routes = inboxes.clone();
        let dispatcher = tokio::spawn(async move {
            while let Some(Fired { id, output, .. }) = results.recv().await {
                let handler = routes
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(&*id)
                    .cloned();
                if let Some(handler) = handler {
                    handler
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .after_probe(output);
                }
            }
        });
        Ok(Self {
            prober: Arc::new(Prober::new()),
            sinks: Sinks::new()?,
            monitors: Mutex::new(BTreeMap::new()),
            scheduler: Mutex::new(scheduler),
            inboxes,
            dispatcher,
            events,
        })
    }

    /// Follows what happens in every monitor from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<MonitorEvent> {
        self.events.subscribe()
    }

    /// Starts (or restarts with a new config) one monitor. `alert_state` is what the last
    /// [`MonitorEvent::AlertState`] said (or the default for a new monitor): alerts open in it
    /// are not notified again. Must be called within a Tokio runtime.
    pub fn start(
        &self,
        key: MonitorKey,
        config: MonitorConfig,
        alert_state: AlertState,
    ) -> Result<(), MonitorError> {
        self.start_restored(key, config, alert_state, None)
    }

    /// [`Self::start`], taking up the health a previous process reported (read back from
    /// status), so a restart neither forgets a Down target nor re-enters threshold levels
    /// already reported.
    pub fn start_restored(
        &self,
        key: MonitorKey,
        config: MonitorConfig,
        alert_state: AlertState,
        restored: Option<&HealthMonitorStatus>,
    ) -> Result<(), MonitorError> {
        self.start_inner(key, config, alert_state, restored, None)
    }

    /// [`Self::start`] with statistics that already hold history, e.g. a month of samples,
    /// so `watchkeeper bench probes` measures memory and evaluation cost at steady state.
    /// `stats` must keep the windows of `config` (the windows it lacks are not reported).
    pub fn start_with_stats(
        &self,
        key: MonitorKey,
        config: MonitorConfig,
        stats: MonitorStats,
    ) -> Result<(), MonitorError> {
        self.start_inner(key, config, AlertState::default(), None, Some(stats))
    }

    fn start_inner(
        &self,
        key: MonitorKey,
        config: MonitorConfig,
        alert_state: AlertState,
        restored: Option<&HealthMonitorStatus>,
        stats: Option<MonitorStats>,
    ) -> Result<(), MonitorError> {
        let stats = match stats {
            Some(stats) => stats,
            None => MonitorStats::new(&config.windows)?,
        };
        // The adapter's builders leave spare capacity in the config's vectors and strings
        // (about half of it at 10,000 monitors); a clone allocates exact sizes, and each part
        // is kept once: the probe in the scheduler's job, the policy in the evaluator, the
        // alerting config in the alert engine (when it starts).
        let MonitorConfig {
            probe,
            interval,
            windows,
            window_names,
            policy,
            down_severity,
            threshold_severities,
            alerting,
            target_display,
        } = config;
        let mut evaluator = HealthEvaluator::new(policy.clone())?;
        drop(policy);
        let mut initial = MonitorStatus::new(&key.namespace, &key.name, &target_display);
        if let Some(previous) = restored
            && let Some(health) = previous.health
        {
            let levels: Vec<(String, Level)> = previous
                .thresholds
                .iter()
                .map(|t| (t.name.clone(), engine_level(t.level)))
                .collect();
            evaluator.restore(
                health == Health::Down,
                previous.consecutive_successes,
                previous.consecutive_failures,
                &levels,
                engine_health(health),
            );
            initial.health = health;
            // The health carries over unchanged, so does the time it began (and each
            // threshold's): a probe only moves them when the health or level changes.
            initial.health_since = previous.health_since.as_ref().map(status::chrono_time);
            initial.consecutive_successes = previous.consecutive_successes;
            initial.consecutive_failures = previous.consecutive_failures;
            initial.thresholds = previous
                .thresholds
                .iter()
                .map(|t| ThresholdState {
                    name: t.name.clone(),
                    level: t.level,
                    value: t.value,
                    since: t.since.as_ref().map(status::chrono_time),
                })
                .collect();
        }
        let engine = alerting
            .map(|c| AlertEngine::new(c.clone(), alert_state.clone(), self.sinks.clone()))
            .transpose()?;
        initial.open_alerts = alert_state.open_entries();
        let restored_alerts = alert_state != AlertState::default();
        let shared = Arc::new(RwLock::new(initial));
        let shared_alerts = Arc::new(RwLock::new(alert_state));
        let cancel = CancellationToken::new();
        let alert_task: AlertTaskHandle = Arc::new(Mutex::new(None));
        let id = key.to_string();
        let probe = Arc::new(probe.clone());
        let schedule = MonitorSpec {
            interval,
            host: host_key(&probe),
            job: probe_job(self.prober.clone(), probe),
        };
        let mut probe_task = ProbeTask {
            key: key.clone(),
            windows: windows.clone(),
            window_names: window_names.clone(),
            down_severity,
            threshold_severities: threshold_severities.clone(),
            target_display: target_display.clone(),
            stats,
            evaluator,
            status: shared.clone(),
            events: self.events.clone(),
            alerts: match engine {
                Some(engine) => AlertSlot::Waiting(Box::new(AlertStart {
                    task: AlertTask {
                        key: key.clone(),
                        engine,
                        status: shared.clone(),
                        state: shared_alerts.clone(),
                        events: self.events.clone(),
                    },
                    cancel: cancel.clone(),
                    handle: alert_task.clone(),
                })),
                None => AlertSlot::None,
            },
            open: BTreeMap::new(),
            carried: restored
                .and_then(|r| r.health)
                .filter(|h| *h == Health::Healthy),
        };
        if restored_alerts {
            // Alerts open (or resolves owed) from before a restart: rounds are needed from
            // the first probe on, to resolve them.
            probe_task.alerts.start();
        }
        self.inboxes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), Arc::new(Mutex::new(probe_task)));
        self.scheduler
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .upsert(&id, schedule)
            .map_err(|e| MonitorError::Scheduler(e.to_string()))?;
        let running = Running {
            status: shared,
            alert_state: shared_alerts,
            cancel,
            alert_task,
        };
        let previous = self
            .monitors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, running);
        if let Some(previous) = previous {
            previous.cancel.cancel();
        }
        Ok(())
    }

    /// Stops one monitor; returns whether it was running. Its open alerts are left as they
    /// are (neither resolved nor forgotten by receivers).
    pub fn stop(&self, key: &MonitorKey) -> bool {
        self.unschedule(key);
        let removed = self
            .monitors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
        removed.map(|r| r.cancel.cancel()).is_some()
    }

    /// Stops every monitor, waits for their tasks to end (an alert round in flight is
    /// finished first, so its outcome is recorded) and returns each monitor's final alert
    /// state, to persist.
    pub async fn shutdown(&self) -> BTreeMap<MonitorKey, AlertState> {
        let running =
            std::mem::take(&mut *self.monitors.lock().unwrap_or_else(PoisonError::into_inner));
        for (key, r) in &running {
            self.unschedule(key);
            r.cancel.cancel();
        }
        let mut states = BTreeMap::new();
        for (key, r) in running {
            let task = r
                .alert_task
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(task) = task {
                let _ = task.await;
            }
            states.insert(key, read(&r.alert_state));
        }
        states
    }

    fn unschedule(&self, key: &MonitorKey) {
        let id = key.to_string();
        self.scheduler
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        self.inboxes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }

    /// Start lateness of every probe so far (scheduled versus actual start).
    pub fn lateness(&self) -> crate::probe::scheduler::LatenessSummary {
        self.scheduler
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .lateness()
    }

    /// The status of one monitor.
    pub fn status(&self, key: &MonitorKey) -> Option<MonitorStatus> {
        let monitors = self.monitors.lock().unwrap_or_else(PoisonError::into_inner);
        monitors.get(key).map(|r| read(&r.status))
    }

    /// The status of every monitor, ordered by namespace and name.
    pub fn statuses(&self) -> Vec<MonitorStatus> {
        let monitors = self.monitors.lock().unwrap_or_else(PoisonError::into_inner);
        monitors.values().map(|r| read(&r.status)).collect()
    }

    /// Whether the monitor's alert task has been started (tests: it starts on the first alert).
    #[cfg(test)]
    pub(crate) fn alert_task_started(&self, key: &MonitorKey) -> bool {
        let monitors = self.monitors.lock().unwrap_or_else(PoisonError::into_inner);
        monitors.get(key).is_some_and(|r| {
            r.alert_task
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_some()
        })
    }

    /// The alert state of every monitor, to persist on shutdown.
    pub fn alert_states(&self) -> BTreeMap<MonitorKey, AlertState> {
        let monitors = self.monitors.lock().unwrap_or_else(PoisonError::into_inner);
        monitors
            .iter()
            .map(|(k, r)| (k.clone(), read(&r.alert_state)))
            .collect()
    }
}

fn engine_level(level: ThresholdLevel) -> Level {
    match level {
        ThresholdLevel::Ok => Level::Ok,
        ThresholdLevel::Warning => Level::Warning,
        ThresholdLevel::Critical => Level::Critical,
    }
}

fn engine_health(health: Health) -> crate::probe::health::Health {
    use crate::probe::health::Health as H;
    match health {
        Health::Healthy => H::Healthy,
        Health::Degraded => H::Degraded,
        Health::Critical => H::Critical,
        Health::Down => H::Down,
        Health::Unknown => H::Unknown,
        Health::Suppressed => H::Suppressed,
    }
}

/// The scheduler job of a monitor: one probe.
fn probe_job(
    prober: Arc<Prober>,
    spec: Arc<ProbeSpec>,
) -> Arc<dyn crate::probe::scheduler::Job<ProbeOutcome>> {
    Arc::new(move || -> JobFuture<ProbeOutcome> {
        let prober = prober.clone();
        let spec = spec.clone();
        Box::pin(async move { prober.probe(&spec).await })
    })
}

/// The per-host concurrency key: `host:port` of the URL, or of the TCP target.
fn host_key(spec: &ProbeSpec) -> String {
    match &spec.target {
        Target::Http(http) => {
            let rest = http
                .url
                .split_once("://")
                .map_or(http.url.as_str(), |(_, r)| r);
            let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            host.to_ascii_lowercase()
        }
        Target::Tcp { host, port } => format!("{}:{port}", host.to_ascii_lowercase()),
    }
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read().unwrap_or_else(PoisonError::into_inner).clone()
}

fn write<T>(lock: &RwLock<T>, change: impl FnOnce(&mut T)) {
    change(&mut lock.write().unwrap_or_else(PoisonError::into_inner));
}

/// A condition that is firing: when it started and how it was described then.
struct OpenCondition {
    since: DateTime<Utc>,
    /// What the description was written for (severity and level); a change rewrites it.
    described: (Severity, &'static str),
    severity: Severity,
    summary: String,
    details: String,
}

/// A monitor's alert task: not started yet (nothing has fired), or started and fed through a
/// `watch` channel.
enum AlertSlot {
    /// No alerting configured.
    None,
    /// Configured; started when the first alert fires.
    Waiting(Box<AlertStart>),
    /// Running; the newest firing set goes here.
    Running(watch::Sender<Vec<Alert>>),
}

/// What starting an alert task takes.
struct AlertStart {
    task: AlertTask,
    cancel: CancellationToken,
    handle: AlertTaskHandle,
}

impl AlertSlot {
    /// Starts the alert task if it is waiting. Must be called within a Tokio runtime.
    fn start(&mut self) {
        if !matches!(self, AlertSlot::Waiting(_)) {
            return;
        }
        let (tx, rx) = watch::channel(Vec::<Alert>::new());
        if let AlertSlot::Waiting(start) = std::mem::replace(self, AlertSlot::Running(tx)) {
            let AlertStart {
                task,
                cancel,
                handle,
            } = *start;
            if cancel.is_cancelled() {
                // Stopped while this outcome was being handled: no rounds after a stop.
                return;
            }
            let joined = tokio::spawn(task.run(rx, cancel));
            *handle.lock().unwrap_or_else(PoisonError::into_inner) = Some(joined);
        }
    }

    /// Hands the firing set to the alert task, starting it on the first alert.
    fn publish(&mut self, firing: Vec<Alert>) {
        if !firing.is_empty() {
            self.start();
        }
        if let AlertSlot::Running(tx) = self {
            tx.send_replace(firing);
        }
    }
}

/// A monitor's handling of probe outcomes, run on the scheduler's result path.
struct ProbeTask {
    key: MonitorKey,
    /// Rolling windows, in spec order.
    windows: Vec<Duration>,
    /// The windows as written in the spec, for status.
    window_names: Vec<String>,
    down_severity: Severity,
    threshold_severities: Vec<crate::monitor::LevelSeverities>,
    target_display: String,
    stats: MonitorStats,
    evaluator: HealthEvaluator,
    status: Arc<RwLock<MonitorStatus>>,
    events: broadcast::Sender<MonitorEvent>,
    alerts: AlertSlot,
    open: BTreeMap<String, OpenCondition>,
    /// A restored `Healthy`, kept while thresholds are not judged again: the statistics
    /// restart empty, and "not enough samples yet" must not turn a healthy monitor Unknown
    /// (and move its `healthSince`) after every restart.
    carried: Option<Health>,
}

impl ProbeTask {
    fn after_probe(&mut self, outcome: ProbeOutcome) {
        self.stats.record(&Sample::from(&outcome));
        self.evaluator.record_probe(outcome.up);
        let now = Utc::now();
        let evaluation = self.evaluator.evaluate_stats(&self.stats, now);
        let windows: Vec<_> = self
            .windows
            .iter()
            .zip(&self.window_names)
            .filter_map(|(w, name)| {
                self.stats
                    .snapshot(*w, now)
                    .ok()
                    .map(|s| status::window_statistics(name, &s))
            })
            .collect();
        let mut health = status::api_health(evaluation.health);
        if let Some(carried) = self.carried {
            if health == Health::Unknown && evaluation.levels.iter().any(|l| l.value.is_none()) {
                health = carried;
            } else {
                self.carried = None;
            }
        }
        let mut previous = health;
        write(&self.status, |s| {
            previous = s.health;
            if s.health != health || s.health_since.is_none() {
                s.health_since = Some(now);
            }
            s.health = health;
            s.last_probe = Some(status::last_probe(&outcome));
            s.probes += 1;
            s.consecutive_successes = evaluation.consecutive_successes;
            s.consecutive_failures = evaluation.consecutive_failures;
            s.windows = windows;
            s.thresholds = evaluation
                .levels
                .iter()
                .map(|l| {
                    let old = s.thresholds.iter().find(|t| t.name == l.name);
                    let level = status::api_level(l.level);
                    let since = match old {
                        Some(t) if t.level == level => t.since,
                        _ => Some(now),
                    };
                    ThresholdState {
                        name: l.name.clone(),
                        level,
                        value: l.value,
                        since,
                    }
                })
                .collect();
        });
        let firing = self.firing_alerts(&evaluation, &outcome, now);
        self.alerts.publish(firing);
        let _ = self.events.send(MonitorEvent::Probed {
            key: self.key.clone(),
            outcome: Arc::new(outcome),
        });
        if previous != health {
            let _ = self.events.send(MonitorEvent::HealthChanged {
                key: self.key.clone(),
                from: previous,
                to: health,
                at: now,
            });
        }
    }

    /// The alerts firing after this evaluation; descriptions are kept from when each condition
    /// began (or last changed severity), so receivers see stable alerts.
    fn firing_alerts(
        &mut self,
        evaluation: &Evaluation,
        outcome: &ProbeOutcome,
        now: DateTime<Utc>,
    ) -> Vec<Alert> {
        let target = &self.target_display;
        let mut wanted: Vec<(String, Severity, &'static str, String, String)> = Vec::new();
        if evaluation.down {
            let why = status::last_probe(outcome)
                .error
                .unwrap_or_else(|| "probe failed".to_string());
            wanted.push((
                "down".to_string(),
                self.down_severity,
                "down",
                format!(
                    "{}: down, {} probes in a row failed",
                    self.key, evaluation.consecutive_failures
                ),
                format!("target {target}; last error: {why}"),
            ));
        }
        for ((level, rule), severities) in evaluation
            .levels
            .iter()
            .zip(&self.evaluator.policy().thresholds)
            .zip(&self.threshold_severities)
        {
            let (severity, bound, word) = match level.level {
                Level::Ok => continue,
                Level::Warning => (severities.warning, rule.warning, "warning"),
                Level::Critical => (severities.critical, rule.critical, "critical"),
            };
            let value = level
                .value
                .map_or_else(|| "not judged".to_string(), |v| format!("{v:.2}"));
            let bound = bound.map_or_else(String::new, |b| format!("{b}"));
            let direction = match rule.direction {
                crate::probe::health::Direction::Above => "above",
                crate::probe::health::Direction::Below => "below",
            };
            wanted.push((
                format!("threshold/{}", rule.name),
                severity,
                word,
                format!(
                    "{}: threshold {} {word}: {value} {direction} {bound}",
                    self.key, rule.name
                ),
                format!(
                    "{:?} over {:?} is {value}; warning {:?}, critical {:?}",
                    rule.metric, rule.window, rule.warning, rule.critical
                ),
            ));
        }
        self.open
            .retain(|key, _| wanted.iter().any(|w| &w.0 == key));
        let mut alerts = Vec::with_capacity(wanted.len());
        for (key, severity, word, summary, details) in wanted {
            let condition = self.open.entry(key.clone()).or_insert(OpenCondition {
                since: now,
                described: (severity, word),
                severity,
                summary: summary.clone(),
                details: details.clone(),
            });
            if condition.described != (severity, word) {
                condition.described = (severity, word);
                condition.severity = severity;
                condition.summary = summary;
                condition.details = details;
            }
            let mut labels = BTreeMap::new();
            labels.insert("alertname".to_string(), key.clone());
            labels.insert("kind".to_string(), "HealthMonitor".to_string());
            labels.insert("namespace".to_string(), self.key.namespace.clone());
            labels.insert("monitor".to_string(), self.key.name.clone());
            alerts.push(Alert {
                key,
                severity,
                summary: condition.summary.clone(),
                details: condition.details.clone(),
                labels,
                annotations: BTreeMap::from([("target".to_string(), target.clone())]),
                source: format!("HealthMonitor {}", self.key),
                generator_url: None,
                starts_at: condition.since,
            });
        }
        alerts
    }
}

struct AlertTask {
    key: MonitorKey,
    engine: AlertEngine,
    status: Arc<RwLock<MonitorStatus>>,
    state: Arc<RwLock<AlertState>>,
    events: broadcast::Sender<MonitorEvent>,
}

impl AlertTask {
    async fn run(mut self, mut firing: watch::Receiver<Vec<Alert>>, cancel: CancellationToken) {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                changed = firing.changed() => if changed.is_err() { return },
            }
            let alerts = firing.borrow_and_update().clone();
            let before = self.engine.state().clone();
            let report = self.engine.round(&alerts, Utc::now()).await;
            let state = self.engine.state().clone();
            write(&self.status, |s| {
                s.open_alerts = state.open_entries();
                s.notifications_sent += report.sent.len() as u64;
                s.last_alert_error = report
                    .failed
                    .first()
                    .map(|(n, e)| format!("{}: {e}", n.channel));
            });
            for n in &report.sent {
                let _ = self.events.send(MonitorEvent::Notified {
                    key: self.key.clone(),
                    kind: n.kind,
                    channel: n.channel.clone(),
                    alert: n.alert.key.clone(),
                    severity: n.alert.severity,
                    summary: n.alert.summary.clone(),
                });
            }
            for (n, error) in &report.failed {
                let _ = self.events.send(MonitorEvent::NotifyFailed {
                    key: self.key.clone(),
                    channel: n.channel.clone(),
                    error: error.to_string(),
                });
            }
            if state != before {
                write(&self.state, |s| *s = state.clone());
                let _ = self.events.send(MonitorEvent::AlertState {
                    key: self.key.clone(),
                    state,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::HttpTarget;

    fn spec(target: Target) -> ProbeSpec {
        ProbeSpec {
            target,
            timeout: std::time::Duration::from_secs(1),
            checks: crate::probe::Checks::default(),
            components: Vec::new(),
        }
    }

    #[test]
    fn host_keys_group_by_authority() {
        let http = |url: &str| host_key(&spec(Target::Http(HttpTarget::get(url))));
        assert_eq!(
            http("https://App.example.com:8443/api/health?x=1"),
            "app.example.com:8443"
        );
        assert_eq!(http("http://user:pw@127.0.0.1:8080"), "127.0.0.1:8080");
        assert_eq!(
            host_key(&spec(Target::Tcp {
                host: "DB".into(),
                port: 5432
            })),
            "db:5432"
        );
    }
}
