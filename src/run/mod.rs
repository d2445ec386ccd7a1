//! `watchkeeper run FILES…`: the HealthMonitors and HTTP-trigger CronJobSpecs of some
//! manifests run in this process, with no cluster: real probes, scheduled HTTP calls, alerts,
//! a live status table, `GET /status` and `GET /metrics`.
//!
//! Manifests are validated exactly as `watchkeeper check` validates them and refused on any
//! error. HealthMonitors with `url` or `tcp` targets run; CronJobSpecs with an `httpTrigger`
//! run on their schedules ([`jobs`]), obeying the manifests' MaintenanceWindows
//! ([`maintenance`]); resources of other kinds (and Service targets or Job
//! templates, which need a cluster) are refused by name unless `--skip-unsupported` is given, in
//! which case they are listed as not run. Secrets come from environment variables or files
//! ([`secrets`]); alert state and the jobs' memory are kept in `--state-dir` ([`state`]) so a
//! restart does not re-send open alerts nor forget counts. `--demo` adds a bundled target,
//! receiver and monitor ([`demo`]).

pub mod demo;
pub mod display;
pub mod jobs;
pub mod load;
pub mod maintenance;
pub mod secrets;
pub mod server;
pub mod state;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::health_monitor::Health;
use crate::check::report::ErrorLine;
use crate::jobs::{JobConfig, JobError, JobKey, JobMetrics, job_config};
use crate::monitor::{
    Environment, MonitorError, MonitorEvent, MonitorKey, MonitorMetrics, MonitorRuntime,
    monitor_config,
};

/// Default `--state-dir`.
pub const DEFAULT_STATE_DIR: &str = ".watchkeeper-state";

/// Arguments of `watchkeeper run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Manifest files or directories (recursively, `*.yaml`/`*.yml`); `-` reads standard input.
    #[arg(value_name = "PATH", required_unless_present = "demo")]
    pub paths: Vec<PathBuf>,
    /// Also start the bundled demo: a target that degrades on a script, a webhook receiver
    /// that prints the alerts it gets, and a monitor probing the one and alerting the other.
    #[arg(long)]
    pub demo: bool,
    /// Run the demo's script (and its monitor's interval, timeout and windows) this many
    /// times faster; for tests.
    #[arg(long, default_value_t = 1, value_name = "N", requires = "demo",
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub demo_speed: u32,
    /// Stop after this long (e.g. `60s`, `5m`); without it, run until Ctrl-C or SIGTERM.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Address of the HTTP server with `/status` and `/metrics` (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:9090", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Directory of the alert state file (default `.watchkeeper-state`; with `--demo` and no
    /// files, the state is kept in memory unless this is given).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Directory with Secret values as files `DIR/<secret>/<key>` (checked after the
    /// `WATCHKEEPER_SECRET_<SECRET>_<KEY>` environment variables).
    #[arg(long, value_name = "DIR")]
    pub secrets_dir: Option<PathBuf>,
    /// Run the HealthMonitors even when the manifests hold resources embedded mode cannot run
    /// yet (they are listed as not run instead of refusing to start).
    #[arg(long)]
    pub skip_unsupported: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::api::common::parse_duration(text).map_err(|e| e.to_string())
}

/// Why `watchkeeper run` stops or refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A manifest could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// File name.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The manifests have errors (the same lines `watchkeeper check` prints).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<ErrorLine>),
    /// Resources embedded mode does not run yet.
    #[error(
        "{}\nembedded mode runs HealthMonitors and httpTrigger CronJobSpecs (and obeys MaintenanceWindows) only; pass --skip-unsupported to run them anyway",
        .0.iter().map(|r| format!("{r}: not run in embedded mode yet")).collect::<Vec<_>>().join("\n")
    )]
    Unsupported(Vec<String>),
    /// A CronJobSpec that cannot be run here (Job template, missing Secret, …).
    #[error("{origin} CronJobSpec/{name}: {source}")]
    Job {
        /// `FILE:LINE`.
        origin: String,
        /// Job name.
        name: String,
        /// What is wrong.
        source: Box<JobError>,
    },
    /// A monitor that cannot be run (unsupported target, missing Secret, …).
    #[error("{origin} HealthMonitor/{name}: {source}")]
    Monitor {
        /// `FILE:LINE`.
        origin: String,
        /// Monitor name.
        name: String,
        /// What is wrong.
        source: Box<MonitorError>,
    },
    /// Two resources of one kind with the same namespace and name.
    #[error("{origin}: {kind} {key} is defined twice")]
    Duplicate {
        /// `FILE:LINE` of the second one.
        origin: String,
        /// `HealthMonitor` or `CronJobSpec`.
        kind: &'static str,
        /// `namespace/name`.
        key: String,
    },
    /// Several monitors or jobs cannot be run; one line each.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Monitors(Vec<RunError>),
    /// Nothing to run.
    #[error("no HealthMonitor or CronJobSpec in the given manifests")]
    NothingToRun,
    /// The state file cannot be read or written.
    #[error("state file {path}: {message}")]
    State {
        /// Path of the file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// An address cannot be listened on.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The runtime could not be built.
    #[error("{0}")]
    Runtime(Box<MonitorError>),
    /// Paths on the command line.
    #[error("{0}")]
    Inputs(#[from] crate::check::CheckError),
}

impl From<MonitorError> for RunError {
    fn from(error: MonitorError) -> Self {
        Self::Runtime(Box::new(error))
    }
}

/// Where events are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// A table redrawn every second on a terminal, else one line per event.
    Auto,
    /// Nothing (tests).
    Quiet,
}

/// Settings of one session.
pub struct RunOptions {
    /// Manifests as `(label, text)`.
    pub texts: Vec<(String, String)>,
    /// Demo speed when the demo is on.
    pub demo: Option<u32>,
    /// HTTP address.
    pub listen: SocketAddr,
    /// State directory; `None` keeps alert state in memory.
    pub state_dir: Option<PathBuf>,
    /// Secrets directory.
    pub secrets_dir: Option<PathBuf>,
    /// Run despite unsupported resources.
    pub skip_unsupported: bool,
    /// Terminal output.
    pub output: Output,
    /// The clock CronJobSpecs run on: [`jobs::JobClock::wall`], or for tests a compressed
    /// clock (like the demo's speed) on which schedules and graces pass faster.
    pub job_clock: jobs::JobClock,
}

/// What the manifests ask to run.
struct Prepared {
    monitors: Vec<(MonitorKey, crate::monitor::MonitorConfig)>,
    /// Each job with its `FILE:LINE` and labels.
    jobs: Vec<(JobKey, JobConfig, String, BTreeMap<String, String>)>,
    /// The MaintenanceWindows of the manifests.
    calendar: Arc<maintenance::Calendar>,
    unsupported: Vec<String>,
    notes: Vec<String>,
}

/// A running `watchkeeper run`.
pub struct Session {
    runtime: Arc<MonitorRuntime>,
    jobs: Arc<jobs::JobRuntime>,
    job_events: Option<broadcast::Receiver<jobs::JobEvent>>,
    demo: Option<demo::Demo>,
    addr: SocketAddr,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    store: Option<state::StateStore>,
    events: Option<broadcast::Receiver<MonitorEvent>>,
    notes: Vec<String>,
}

impl Session {
    /// Validates the manifests, starts the demo (if asked), every monitor, the observers and
    /// the HTTP server.
    pub async fn start(options: RunOptions) -> Result<Self, RunError> {
        let cancel = CancellationToken::new();
        let mut texts = options.texts;
        let demo = match options.demo {
            Some(speed) => {
                let demo = demo::Demo::start(speed, cancel.clone()).await?;
                texts.push((demo::MANIFEST_LABEL.to_string(), demo.manifest()));
                Some(demo)
            }
            None => None,
        };
        let result = Self::prepare(
            texts,
            &options.secrets_dir,
            options.skip_unsupported,
            options.demo,
        );
        let Prepared {
            monitors: configs,
            jobs: job_configs,
            calendar,
            unsupported,
            mut notes,
        } = match result {
            Ok(found) => found,
            Err(e) => {
                cancel.cancel();
                return Err(e);
            }
        };
        let store = options.state_dir.as_deref().map(state::StateStore::new);
        let mut saved = match &store {
            Some(store) => store.load()?,
            None => BTreeMap::new(),
        };
        let runtime = Arc::new(MonitorRuntime::new()?);
        let observer_events = runtime.subscribe();
        let test_events = runtime.subscribe();
        let mut saved_jobs = match &store {
            Some(store) => store.load_jobs()?,
            None => BTreeMap::new(),
        };
        let mut registry = Registry::with_prefix("watchkeeper");
        let metrics = MonitorMetrics::register(&mut registry);
        let job_metrics = JobMetrics::register(&mut registry);
        for (key, config) in configs {
            metrics.set_health(&key, Health::Unknown);
            let state = saved.remove(&key.to_string()).unwrap_or_default();
            runtime.start(key, config, state)?;
        }
        let job_runtime = Arc::new(
            jobs::JobRuntime::new(options.job_clock, job_metrics, store.clone())
                .with_calendar(calendar.clone()),
        );
        let job_events = job_runtime.subscribe();
        let job_test_events = job_runtime.subscribe();
        for resource in &unsupported {
            notes.push(format!(
                "{resource}: not run in embedded mode yet (skipped)"
            ));
        }
        let (addr, server) = server::serve(
            options.listen,
            runtime.clone(),
            job_runtime.clone(),
            Arc::new(registry),
            calendar,
            unsupported,
            cancel.clone(),
        )
        .await?;
        // Jobs start once the server is up, so a refused address leaves none running.
        for (key, config, origin, labels) in job_configs {
            let saved = saved_jobs.remove(&key.to_string());
            if let Err(source) = job_runtime.start_labelled(key.clone(), labels, config, saved) {
                cancel.cancel();
                job_runtime.shutdown().await;
                return Err(RunError::Job {
                    origin,
                    name: key.name,
                    source: Box::new(source),
                });
            }
        }
        let mut tasks = vec![server];
        tasks.push(tokio::spawn(observe(
            observer_events,
            job_events,
            runtime.clone(),
            job_runtime.clone(),
            metrics,
            store.clone(),
            demo.as_ref().map(demo::Demo::subscribe),
            options.output,
            header(addr, &store, &demo, &notes),
            cancel.clone(),
        )));
        notes.shrink_to_fit();
        Ok(Self {
            runtime,
            jobs: job_runtime,
            job_events: Some(job_test_events),
            demo,
            addr,
            cancel,
            tasks,
            store,
            events: Some(test_events),
            notes,
        })
    }

    fn prepare(
        texts: Vec<(String, String)>,
        secrets_dir: &Option<PathBuf>,
        skip_unsupported: bool,
        demo_speed: Option<u32>,
    ) -> Result<Prepared, RunError> {
        let mut loaded = load::load(&texts)?;
        if !loaded.unsupported.is_empty() && !skip_unsupported {
            return Err(RunError::Unsupported(loaded.unsupported));
        }
        if loaded.monitors.is_empty() && loaded.jobs.is_empty() {
            return Err(RunError::NothingToRun);
        }
        let secrets = secrets::EnvSecrets {
            dir: secrets_dir.clone(),
        };
        let mut notes = Vec::new();
        let mut seen = BTreeSet::new();
        let mut configs = Vec::new();
        let mut failed = Vec::new();
        for found in loaded.monitors {
            let meta = &found.monitor.metadata;
            let key = MonitorKey {
                namespace: meta
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "default".to_string()),
                name: meta.name.clone().unwrap_or_default(),
            };
            if !seen.insert(key.clone()) {
                return Err(RunError::Duplicate {
                    origin: found.origin,
                    kind: "HealthMonitor",
                    key: key.to_string(),
                });
            }
            let spec = &found.monitor.spec;
            let mut config = match monitor_config(&key, spec, Environment::Embedded, &secrets) {
                Ok(config) => config,
                Err(source) => {
                    failed.push(RunError::Monitor {
                        origin: found.origin.clone(),
                        name: key.name.clone(),
                        source: Box::new(source),
                    });
                    continue;
                }
            };
            if let Some(speed) = demo_speed
                && found.origin.starts_with(demo::MANIFEST_LABEL)
            {
                config = config.compressed(speed);
            }
            if !spec.remediations.is_empty() {
                notes.push(format!(
                    "{} HealthMonitor/{}: spec.remediations are not run in embedded mode (no cluster); probes and alerts are",
                    found.origin, key.name
                ));
            }
            configs.push((key, config));
        }
        let mut seen_jobs = BTreeSet::new();
        let mut jobs = Vec::new();
        for found in std::mem::take(&mut loaded.jobs) {
            let meta = &found.job.metadata;
            let key = JobKey {
                namespace: meta
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "default".to_string()),
                name: meta.name.clone().unwrap_or_default(),
            };
            if !seen_jobs.insert(key.clone()) {
                return Err(RunError::Duplicate {
                    origin: found.origin,
                    kind: "CronJobSpec",
                    key: key.to_string(),
                });
            }
            match job_config(&found.job.spec, Environment::Embedded, &secrets) {
                Ok(config) => jobs.push((
                    key,
                    config,
                    found.origin.clone(),
                    meta.labels.clone().unwrap_or_default(),
                )),
                // A Job template needs a cluster: refused like other resources embedded mode
                // cannot run, or listed as not run with --skip-unsupported.
                Err(JobError::Unsupported { field, message }) if skip_unsupported => {
                    loaded.unsupported.push(format!(
                        "{} CronJobSpec/{} ({field}: {message})",
                        found.origin, key.name
                    ));
                }
                Err(source) => failed.push(RunError::Job {
                    origin: found.origin.clone(),
                    name: key.name.clone(),
                    source: Box::new(source),
                }),
            }
        }
        if !failed.is_empty() {
            return Err(RunError::Monitors(failed));
        }
        if configs.is_empty() && jobs.is_empty() {
            return Err(RunError::NothingToRun);
        }
        let calendar = Arc::new(maintenance::Calendar::new(&loaded.windows)?);
        for (origin, window) in &loaded.windows {
            notes.extend(maintenance::not_applied(origin, window));
        }
        for foreign in loaded.foreign {
            notes.push(format!("{foreign}: not a watchkeeper resource (ignored)"));
        }
        Ok(Prepared {
            monitors: configs,
            jobs,
            calendar,
            unsupported: loaded.unsupported,
            notes,
        })
    }

    /// The address `/status` and `/metrics` are served on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The monitors.
    pub fn runtime(&self) -> &MonitorRuntime {
        &self.runtime
    }

    /// The CronJobSpecs run in-process.
    pub fn jobs(&self) -> &jobs::JobRuntime {
        &self.jobs
    }

    /// Every job event since the session started (the first call only).
    pub fn take_job_events(&mut self) -> Option<broadcast::Receiver<jobs::JobEvent>> {
        self.job_events.take()
    }

    /// The demo, when on.
    pub fn demo(&self) -> Option<&demo::Demo> {
        self.demo.as_ref()
    }

    /// Every monitor event since the session started (the first call only).
    pub fn take_events(&mut self) -> Option<broadcast::Receiver<MonitorEvent>> {
        self.events.take()
    }

    /// Notes printed at start (skipped documents, remediations not run).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Stops everything and saves the alert state one last time.
    pub async fn stop(self) -> Result<(), RunError> {
        let states = self.runtime.shutdown().await;
        let job_states = self.jobs.shutdown().await;
        self.cancel.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        if let Some(store) = &self.store {
            if !states.is_empty() {
                store.save(&states)?;
            }
            if !job_states.is_empty() {
                store.save_jobs(&job_states)?;
            }
        }
        Ok(())
    }
}

fn header(
    addr: SocketAddr,
    store: &Option<state::StateStore>,
    demo: &Option<demo::Demo>,
    notes: &[String],
) -> Vec<String> {
    let mut lines = vec![format!(
        "watchkeeper run: status http://{addr}/status  metrics http://{addr}/metrics  state {}",
        store.as_ref().map_or_else(
            || "in memory".to_string(),
            |s| s.path().display().to_string()
        )
    )];
    if let Some(demo) = demo {
        lines.push(format!(
            "demo target {}/api/health, script:",
            demo.target_url()
        ));
        lines.extend(demo.script_lines().into_iter().map(|l| format!("  {l}")));
    }
    lines.extend(notes.iter().cloned());
    lines
}

/// Feeds metrics and the state file from events, and writes the terminal output.
#[allow(clippy::too_many_arguments)]
async fn observe(
    mut events: broadcast::Receiver<MonitorEvent>,
    mut job_events: broadcast::Receiver<jobs::JobEvent>,
    runtime: Arc<MonitorRuntime>,
    job_runtime: Arc<jobs::JobRuntime>,
    metrics: MonitorMetrics,
    store: Option<state::StateStore>,
    receiver: Option<broadcast::Receiver<serde_json::Value>>,
    output: Output,
    header: Vec<String>,
    cancel: CancellationToken,
) {
    let tty = output == Output::Auto && std::io::stdout().is_terminal();
    let lines = output == Output::Auto && !tty;
    let mut recent = display::Recent::default();
    let mut redraw = tokio::time::interval(Duration::from_secs(1));
    redraw.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (_keep, mut receiver) = match receiver {
        Some(r) => (None, r),
        None => {
            let (tx, rx) = broadcast::channel(1);
            (Some(tx), rx)
        }
    };
    if lines {
        for line in &header {
            println!("{line}");
        }
    }
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            event = events.recv() => match event {
                Ok(event) => {
                    metrics.observe(&event);
                    if let MonitorEvent::AlertState { .. } = &event
                        && let Some(store) = &store
                        && let Err(e) = store.save(&runtime.alert_states())
                    {
                        eprintln!("warning: {e}");
                    }
                    if let Some(line) = display::event_line(&event) {
                        if lines {
                            println!("{line}");
                        }
                        recent.push(line);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            event = job_events.recv() => match event {
                Ok(event) => {
                    if let Some(line) = display::job_event_line(&event) {
                        if lines {
                            println!("{line}");
                        }
                        recent.push(line);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            payload = receiver.recv() => {
                if let Ok(payload) = payload {
                    let line = demo::describe(&payload);
                    if lines {
                        println!("{line}");
                    }
                    recent.push(line);
                }
            },
            _ = redraw.tick(), if tty => {
                let statuses = runtime.statuses();
                let job_statuses = job_runtime.statuses();
                if statuses.is_empty() && job_statuses.is_empty() {
                    // Shutting down: keep the last frame on screen.
                    continue;
                }
                let open = job_runtime.calendar().open_at(job_runtime.clock().now());
                let screen = display::render(&header, &statuses, &job_statuses, &open, &recent);
                let mut out = std::io::stdout().lock();
                // Clear the screen and move home, then draw.
                let _ = write!(out, "\x1b[2J\x1b[H{screen}");
                let _ = out.flush();
            }
        }
    }
}

/// `watchkeeper run`: exit status 1 when the manifests are refused or the run fails.
pub fn run(args: RunArgs) -> ExitCode {
    let tokio = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match tokio.block_on(run_async(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_async(args: RunArgs) -> Result<(), RunError> {
    let inputs = crate::check::collect_inputs(&args.paths)?;
    let texts = load::read_inputs(&inputs)?;
    let state_dir = match (&args.state_dir, args.demo && args.paths.is_empty()) {
        (Some(dir), _) => Some(dir.clone()),
        (None, true) => None,
        (None, false) => Some(PathBuf::from(DEFAULT_STATE_DIR)),
    };
    let session = Session::start(RunOptions {
        texts,
        demo: args.demo.then_some(args.demo_speed),
        listen: args.listen,
        state_dir,
        secrets_dir: args.secrets_dir,
        skip_unsupported: args.skip_unsupported,
        output: Output::Auto,
        job_clock: jobs::JobClock::wall(),
    })
    .await?;
    let signals = crate::controller::shutdown::on_signals();
    match args.duration {
        Some(duration) => {
            tokio::select! {
                _ = tokio::time::sleep(duration) => {}
                _ = signals.cancelled() => {}
            }
        }
        None => signals.cancelled().await,
    }
    let statuses = session.runtime().statuses();
    let job_statuses = session.jobs().statuses();
    let received = session.demo().map(demo::Demo::received);
    session.stop().await?;
    println!();
    for s in statuses {
        println!(
            "{}/{}: {:?} after {} probes, {} notification(s) sent",
            s.namespace, s.name, s.health, s.probes, s.notifications_sent
        );
    }
    for j in job_statuses {
        println!(
            "{}/{}: {:?}, {} run(s) started, {} skipped, {} consecutive failure(s), {} notification(s) sent",
            j.namespace,
            j.name,
            j.health,
            j.runs_started,
            j.runs_skipped,
            j.consecutive_failures,
            j.notifications_sent
        );
    }
    if let Some(received) = received {
        println!("demo receiver got {} notification(s)", received.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MONITOR: &str = r#"apiVersion: watchkeeper.dev/v1alpha1
kind: HealthMonitor
metadata: {name: web}
spec:
  target: {service: {name: web, port: 8080}}
---
apiVersion: watchkeeper.dev/v1alpha1
kind: CronJobSpec
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  httpTrigger: {url: "https://app.example.com/cron", method: POST}
"#;

    fn texts() -> Vec<(String, String)> {
        vec![("m.yaml".to_string(), MONITOR.to_string())]
    }

    #[test]
    fn other_kinds_are_refused_by_name_unless_skipped() {
        let text = format!(
            "{MONITOR}---\n{}",
            r#"apiVersion: watchkeeper.dev/v1alpha1
kind: BackupPolicy
metadata: {name: nightly-db}
spec:
  schedule: "0 3 * * *"
  source:
    connection:
      uriSecretRef: {name: postgres, key: uri}
    pgDump: {format: Custom}
  destination:
    s3:
      bucket: backups
      accessKeyIdSecretRef: {name: s3, key: id}
      secretAccessKeySecretRef: {name: s3, key: secret}
  retention: {daily: 7}
  objectives: {rpo: 1d, rto: 1h}
"#
        );
        let texts = vec![("m.yaml".to_string(), text)];
        let Err(error) = Session::prepare(texts, &None, false, None) else {
            panic!("expected a refusal");
        };
        let text = error.to_string();
        assert!(
            text.starts_with("m.yaml:14 BackupPolicy/nightly-db: not run in embedded mode yet\n"),
            "{text}"
        );
        assert!(
            text.ends_with("pass --skip-unsupported to run them anyway"),
            "{text}"
        );
    }

    const TEMPLATE_JOB: &str = r#"apiVersion: watchkeeper.dev/v1alpha1
kind: CronJobSpec
metadata: {name: report}
spec:
  schedule: "0 6 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: report, image: "busybox:1.36"}]
"#;

    #[test]
    fn job_template_cron_job_specs_are_refused_with_the_reason() {
        let texts = vec![("j.yaml".to_string(), TEMPLATE_JOB.to_string())];
        let Err(error) = Session::prepare(texts.clone(), &None, false, None) else {
            panic!("expected a refusal");
        };
        let text = error.to_string();
        assert!(
            text.starts_with(
                "j.yaml:1 CronJobSpec/report: spec.jobTemplate: not supported here: a Job template needs a cluster"
            ),
            "{text}"
        );
        // With --skip-unsupported it is listed as not run, with the reason; nothing else to run.
        let Err(RunError::NothingToRun) = Session::prepare(texts, &None, true, None) else {
            panic!("expected nothing to run");
        };
        let both = vec![(
            "j.yaml".to_string(),
            format!(
                "{TEMPLATE_JOB}---\n{}",
                "apiVersion: watchkeeper.dev/v1alpha1\nkind: CronJobSpec\nmetadata: {name: ping}\nspec:\n  schedule: \"* * * * *\"\n  httpTrigger: {url: \"http://127.0.0.1:9/ping\"}\n"
            ),
        )];
        let Ok(prepared) = Session::prepare(both, &None, true, None) else {
            panic!("the HTTP trigger job should run");
        };
        assert_eq!(prepared.jobs.len(), 1);
        assert_eq!(prepared.jobs[0].0.name, "ping");
        assert_eq!(prepared.unsupported.len(), 1);
        assert!(
            prepared.unsupported[0].starts_with("j.yaml:1 CronJobSpec/report (spec.jobTemplate:"),
            "{:?}",
            prepared.unsupported
        );
    }

    #[test]
    fn service_targets_are_refused_outside_a_cluster() {
        let Err(error) = Session::prepare(texts(), &None, true, None) else {
            panic!("expected a refusal");
        };
        let text = error.to_string();
        assert!(
            text.starts_with(
                "m.yaml:1 HealthMonitor/web: spec.target.service: not supported here:"
            ),
            "{text}"
        );
    }
}
