//! `watchkeeper bench probes`: N HealthMonitors on the real per-monitor path against local
//! health endpoints.
//!
//! Each monitor is a HealthMonitor spec (the guides' shape: `GET /api/health`, status 200,
//! `$.status == "healthy"`, components `database` and `cache` each with a state and a number
//! read from the body, windows 5m/1h/24h/30d, five thresholds, a webhook alert channel),
//! turned into an engine config by the same adapter the controller and `watchkeeper run` use,
//! and run by the same [`MonitorRuntime`]: scheduler, prober, statistics recording, health
//! evaluation, status snapshot and alert task per monitor. Before the run every monitor's
//! statistics are seeded with `--history` of synthetic probes (default 30 days), so memory and
//! the cost of window queries are those of a monitor that has run for a month, not for two
//! minutes. The endpoints run in a child process (this binary's hidden `bench serve`) unless
//! `--in-process-servers` is given, so the CPU reported as ours is the monitors' only; the
//! child's CPU is reported on its own line.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use tokio::sync::broadcast::error::RecvError;

use super::BenchError;
use super::procfs::{self, CpuTime};
use crate::api::health_monitor::HealthMonitorSpec;
use crate::monitor::{
    Environment, MonitorConfig, MonitorError, MonitorEvent, MonitorKey, MonitorRuntime,
    SecretResolver, monitor_config,
};
use crate::probe::scheduler::LatenessSummary;
use crate::probe::stats::{ComponentSample, MonitorStats, Sample};

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::api::common::parse_duration(text).map_err(|e| e.to_string())
}

/// Arguments of `watchkeeper bench probes`.
#[derive(Clone, Debug, clap::Args)]
pub struct ProbesArgs {
    /// Number of monitors.
    #[arg(long, default_value_t = 10_000)]
    pub monitors: usize,
    /// Interval of every monitor.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub interval: Duration,
    /// How long to run.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Number of local endpoint servers (ports); monitors are spread over them.
    #[arg(long, default_value_t = 4)]
    pub servers: u16,
    /// Worker threads of the endpoint process.
    #[arg(long, default_value_t = 1)]
    pub server_threads: usize,
    /// Run the endpoint servers in this process (their CPU then counts as ours).
    #[arg(long)]
    pub in_process_servers: bool,
    /// Timeout of each probe.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Synthetic probe history each monitor's statistics start with (one probe per interval
    /// ending now; 0s: start empty).
    #[arg(long, default_value = "30d", value_parser = parse_duration)]
    pub history: Duration,
    /// Print a progress line every this often (0s: never).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub progress: Duration,
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct ProbesReport {
    /// Monitors scheduled.
    pub monitors: usize,
    /// Wall time of the measured run, seconds.
    pub elapsed_s: f64,
    /// Probes recorded by the monitors (sum of their status `probes`).
    pub probes: u64,
    /// Probes that were down (all endpoints answer healthy, so every one is a failure).
    pub failures: u64,
    /// First few failure reasons.
    pub failure_samples: Vec<String>,
    /// Probe events the observer missed because it fell behind (counted in `probes` anyway).
    pub lagged_events: u64,
    /// Probes per second over the run.
    pub probes_per_s: f64,
    /// Lowest probes/s of any full progress window after the first interval.
    pub min_window_probes_per_s: Option<f64>,
    /// Start lateness.
    pub lateness: LatenessSummary,
    /// Probe latency p50 / p99 / max, µs.
    pub latency_us: (u64, u64, u64),
    /// Monitors per health at the end.
    pub health: BTreeMap<String, usize>,
    /// Samples in each monitor's 30d window at the end (min, max).
    pub window_samples: Option<(u64, u64)>,
    /// Heap bytes of one monitor's seeded statistics.
    pub stats_bytes: usize,
    /// Synthetic history per monitor.
    pub history: Duration,
    /// Our resident memory at the end.
    pub memory: procfs::Memory,
    /// Our resident memory before the monitors were created.
    pub memory_before: procfs::Memory,
    /// Our CPU during the run.
    pub cpu: CpuTime,
    /// The endpoint process's CPU during the run (None when in-process).
    pub server_cpu: Option<CpuTime>,
}

impl ProbesReport {
    /// CPU seconds per 1,000 probes.
    pub fn cpu_per_1000(&self) -> f64 {
        if self.probes == 0 {
            return f64::NAN;
        }
        self.cpu.total() * 1000.0 / self.probes as f64
    }

    /// The report as `name: value` lines.
    pub fn render(&self) -> String {
        let ms = |us: u64| us as f64 / 1000.0;
        let mut out = String::new();
        let mut line = |text: String| {
            out.push_str(&text);
            out.push('\n');
        };
        line(format!("monitors: {}", self.monitors));
        line(format!(
            "history_per_monitor: {} s of synthetic probes; stats_bytes_per_monitor: {}",
            self.history.as_secs(),
            self.stats_bytes
        ));
        line(format!("elapsed_s: {:.1}", self.elapsed_s));
        line(format!("probes: {}", self.probes));
        line(format!("probes_per_s: {:.1}", self.probes_per_s));
        if let Some(min) = self.min_window_probes_per_s {
            line(format!("min_window_probes_per_s: {min:.1}"));
        }
        line(format!("failures: {}", self.failures));
        for sample in &self.failure_samples {
            line(format!("failure_sample: {sample}"));
        }
        if self.lagged_events > 0 {
            line(format!("lagged_events: {}", self.lagged_events));
        }
        let health: Vec<String> = self
            .health
            .iter()
            .map(|(h, n)| format!("{h} {n}"))
            .collect();
        line(format!("health: {}", health.join(", ")));
        if let Some((min, max)) = self.window_samples {
            line(format!("samples_in_longest_window: min {min} max {max}"));
        }
        line(format!(
            "lateness_ms: p50 {:.3} p99 {:.3} max {:.3} (runs {})",
            ms(self.lateness.p50_us),
            ms(self.lateness.p99_us),
            ms(self.lateness.max_us),
            self.lateness.count
        ));
        line(format!(
            "probe_latency_ms: p50 {:.3} p99 {:.3} max {:.3}",
            ms(self.latency_us.0),
            ms(self.latency_us.1),
            ms(self.latency_us.2)
        ));
        line(format!(
            "rss_mib: {:.1} (peak {:.1}; before the monitors {:.1})",
            self.memory.rss_kib as f64 / 1024.0,
            self.memory.peak_kib as f64 / 1024.0,
            self.memory_before.rss_kib as f64 / 1024.0
        ));
        line(format!(
            "cpu_s: {:.2} (user {:.2} sys {:.2})",
            self.cpu.total(),
            self.cpu.user,
            self.cpu.system
        ));
        line(format!("cpu_s_per_1000_probes: {:.4}", self.cpu_per_1000()));
        if self.probes > 0 {
            line(format!(
                "probes_per_cpu_s: {:.0}",
                self.probes as f64 / self.cpu.total().max(f64::MIN_POSITIVE)
            ));
        }
        match self.server_cpu {
            Some(cpu) => line(format!(
                "server_cpu_s: {:.2} (user {:.2} sys {:.2}, separate process)",
                cpu.total(),
                cpu.user,
                cpu.system
            )),
            None => line("server_cpu_s: counted in cpu_s (in-process servers)".to_string()),
        }
        out
    }
}

/// The endpoint servers: a child process, or tasks of this one.
enum Servers {
    Child(Child),
    InProcess(tokio::task::JoinHandle<()>),
}

impl Servers {
    fn cpu(&self) -> Option<CpuTime> {
        match self {
            Servers::Child(child) => procfs::cpu_time(&child.id().to_string()).ok(),
            Servers::InProcess(_) => None,
        }
    }

    fn stop(self) {
        match self {
            Servers::Child(mut child) => {
                // Closing its stdin stops it; kill in case it does not.
                drop(child.stdin.take());
                let _ = child.kill();
                let _ = child.wait();
            }
            Servers::InProcess(task) => task.abort(),
        }
    }
}

/// Starts `watchkeeper bench serve` and reads the addresses it listens on.
fn spawn_servers(args: &ProbesArgs) -> Result<(Child, Vec<SocketAddr>), BenchError> {
    let exe = std::env::current_exe().map_err(|e| BenchError::Servers(e.to_string()))?;
    let mut child = Command::new(exe)
        .args(["bench", "serve", "--exit-on-stdin-close"])
        .args(["--servers", &args.servers.to_string()])
        .args(["--threads", &args.server_threads.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| BenchError::Servers(e.to_string()))?;
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        let _ = BufReader::new(stdout).read_line(&mut line);
    }
    let addresses: Vec<SocketAddr> = line
        .strip_prefix("listening ")
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|a| a.parse().ok())
        .collect();
    if addresses.len() != usize::from(args.servers) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(BenchError::Servers(format!(
            "expected {} addresses, got {line:?}",
            args.servers
        )));
    }
    Ok((child, addresses))
}

/// The windows every benchmark monitor keeps (the guides' SLO windows).
pub const WINDOWS: [&str; 4] = ["5m", "1h", "24h", "30d"];

/// The HealthMonitor spec of monitor `i`: the guides' `/api/health` check with two components,
/// the SLO windows and thresholds from the guides' tables, and a webhook alert channel (on a
/// closed loopback port: with healthy endpoints nothing fires, but every monitor runs its
/// alert task as a real one does).
pub fn monitor_spec(
    address: SocketAddr,
    i: usize,
    interval: Duration,
    timeout: Duration,
) -> Result<HealthMonitorSpec, BenchError> {
    let spec = serde_json::json!({
        "target": {"url": format!("http://{address}/api/health?monitor={i}")},
        "interval": format!("{}ms", interval.as_millis()),
        "timeout": format!("{}ms", timeout.as_millis()),
        "checks": {
            "statusCodes": ["200"],
            "json": [{"path": "$.status", "operator": "==", "value": "healthy"}],
        },
        "components": [
            {"name": "database", "jsonPath": "$.services.database.status",
             "healthyValues": ["ok"], "valuePath": "$.services.database.latency_ms"},
            {"name": "cache", "jsonPath": "$.services.cache.status",
             "healthyValues": ["ok"], "valuePath": "$.services.cache.hit_rate"},
        ],
        "windows": WINDOWS,
        "thresholds": [
            {"name": "uptime", "metric": "Uptime", "window": "30d", "direction": "Below",
             "warning": 99.5, "critical": 99},
            {"name": "response-time", "metric": "LatencyP95", "window": "5m",
             "direction": "Above", "warning": 500, "critical": 1000},
            {"name": "error-rate", "metric": "ErrorRate", "window": "1h", "direction": "Above",
             "warning": 1, "critical": 5},
            {"name": "db-latency", "metric": "ComponentValue", "component": "database",
             "window": "5m", "direction": "Above", "warning": 100, "critical": 200},
            {"name": "cache-hit-rate", "metric": "ComponentValue", "component": "cache",
             "window": "1h", "direction": "Below", "warning": 0.6, "critical": 0.5},
        ],
        "alerting": {
            "channels": [{"name": "hook", "webhook": {"url": "http://127.0.0.1:9/alerts"}}],
            "routes": [{"severities": ["P0", "P1", "P2", "P3"], "channels": ["hook"]}],
        },
    });
    serde_json::from_value(spec).map_err(|e| BenchError::Setup(format!("monitor spec: {e}")))
}

/// No Secrets in the benchmark's monitors.
struct NoSecrets;

impl SecretResolver for NoSecrets {
    fn get(&self, name: &str, key: &str) -> Result<String, MonitorError> {
        Err(MonitorError::Secret {
            name: name.to_string(),
            key: key.to_string(),
            message: "the benchmark uses no Secrets".to_string(),
        })
    }
}

/// Statistics holding `history` of synthetic probes every `interval` up to `now`: answers of
/// 0.15–2 ms (mostly under 0.3 ms, like the loopback endpoints), one probe in 1,000 down, and
/// both components' states and numbers.
pub fn seeded_stats(
    config: &MonitorConfig,
    history: Duration,
    now: DateTime<Utc>,
) -> Result<MonitorStats, BenchError> {
    let mut stats =
        MonitorStats::new(&config.windows).map_err(|e| BenchError::Setup(e.to_string()))?;
    let step = chrono::Duration::from_std(config.interval)
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let span = chrono::Duration::from_std(history).map_err(|e| BenchError::Setup(e.to_string()))?;
    let mut at = now - span;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    while at < now {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let micros = match seed % 100 {
            0 => 1_000 + seed % 1_000,
            1..=9 => 300 + seed % 700,
            _ => 150 + seed % 150,
        };
        stats.record(&Sample {
            at,
            up: !seed.is_multiple_of(1000),
            latency: Duration::from_micros(micros),
            components: vec![
                ComponentSample {
                    name: "database".to_string(),
                    up: Some(true),
                    value: Some((2 + seed % 5) as f64),
                },
                ComponentSample {
                    name: "cache".to_string(),
                    up: Some(true),
                    value: Some(0.9 + (seed % 10) as f64 / 100.0),
                },
            ],
        });
        at += step;
    }
    Ok(stats)
}

/// Follows the monitors' probe events: counts, failures and probe latency.
struct Tally {
    probes: AtomicU64,
    failures: AtomicU64,
    lagged: AtomicU64,
    samples: std::sync::Mutex<Vec<String>>,
    latency: std::sync::Mutex<Histogram<u64>>,
}

impl Tally {
    fn record(&self, key: &MonitorKey, outcome: &crate::probe::ProbeOutcome) {
        self.probes.fetch_add(1, Ordering::Relaxed);
        if !outcome.up {
            self.failures.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut samples) = self.samples.lock()
                && samples.len() < 5
            {
                let why = outcome
                    .error
                    .clone()
                    .unwrap_or_else(|| outcome.failed_checks.join("; "));
                samples.push(format!("{key}: {why}"));
            }
        }
        let micros = u64::try_from(outcome.latency.as_micros()).unwrap_or(u64::MAX);
        if let Ok(mut latency) = self.latency.lock() {
            latency.saturating_record(micros);
        }
    }
}

/// Runs the benchmark and returns what it measured.
pub async fn measure(args: &ProbesArgs) -> Result<ProbesReport, BenchError> {
    if args.servers == 0 || args.monitors == 0 || args.interval.is_zero() {
        return Err(BenchError::Setup(
            "--servers, --monitors and --interval must be positive".to_string(),
        ));
    }
    let (servers, addresses) = if args.in_process_servers {
        let listeners = super::serve::bind(args.servers, 0).await?;
        let addresses = super::serve::addresses(&listeners);
        let task = tokio::spawn(super::serve::serve(listeners));
        (Servers::InProcess(task), addresses)
    } else {
        let (child, addresses) = tokio::task::block_in_place(|| spawn_servers(args))?;
        (Servers::Child(child), addresses)
    };
    let result = drive(args, &addresses, &servers).await;
    servers.stop();
    result
}

async fn drive(
    args: &ProbesArgs,
    addresses: &[SocketAddr],
    servers: &Servers,
) -> Result<ProbesReport, BenchError> {
    let setup = |e: MonitorError| BenchError::Setup(e.to_string());
    let memory_before = procfs::memory("self")?;
    let runtime = MonitorRuntime::new().map_err(setup)?;
    let mut events = runtime.subscribe();
    let histogram = Histogram::new_with_bounds(1, 3_600_000_000, 3)
        .map_err(|e| BenchError::Setup(format!("latency histogram: {e}")))?;
    let tally = Arc::new(Tally {
        probes: AtomicU64::new(0),
        failures: AtomicU64::new(0),
        lagged: AtomicU64::new(0),
        samples: std::sync::Mutex::new(Vec::new()),
        latency: std::sync::Mutex::new(histogram),
    });
    let consumer = {
        let tally = Arc::clone(&tally);
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(MonitorEvent::Probed { key, outcome }) => tally.record(&key, &outcome),
                    Ok(_) => {}
                    Err(RecvError::Lagged(n)) => {
                        tally.lagged.fetch_add(n, Ordering::Relaxed);
                        tally.probes.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        })
    };
    // Every monitor's config through the real adapter, built just before the monitor starts
    // (as the controller does: 10,000 configs held at once would be a bench artefact of
    // ~40 MB); one seeded history, cloned per monitor.
    let config_of = |i: usize| -> Result<(MonitorKey, MonitorConfig), BenchError> {
        let address = addresses[i % addresses.len()];
        let key = MonitorKey {
            namespace: "bench".to_string(),
            name: format!("monitor-{i}"),
        };
        let spec = monitor_spec(address, i, args.interval, args.timeout)?;
        let config =
            monitor_config(&key, &spec, Environment::Embedded, &NoSecrets).map_err(setup)?;
        Ok((key, config))
    };
    let template = if args.history.is_zero() {
        None
    } else {
        Some(seeded_stats(&config_of(0)?.1, args.history, Utc::now())?)
    };
    let stats_bytes = template.as_ref().map_or(0, MonitorStats::heap_bytes);
    let cpu_start = procfs::cpu_time("self")?;
    let server_cpu_start = servers.cpu();
    let started = tokio::time::Instant::now();
    let mut keys = Vec::with_capacity(args.monitors);
    for i in 0..args.monitors {
        let (key, config) = config_of(i)?;
        keys.push(key.clone());
        match &template {
            Some(stats) => runtime.start_with_stats(key, config, stats.clone()),
            None => runtime.start(key, config, Default::default()),
        }
        .map_err(setup)?;
    }
    drop(template);
    let min_window = progress(args, &tally, started).await;
    let elapsed_s = started.elapsed().as_secs_f64();
    let cpu = procfs::cpu_time("self")?.since(cpu_start);
    let server_cpu = match (server_cpu_start, servers.cpu()) {
        (Some(start), Some(end)) => Some(end.since(start)),
        _ => None,
    };
    let memory = procfs::memory("self")?;
    let lateness = runtime.lateness();
    let statuses = runtime.statuses();
    for key in &keys {
        runtime.stop(key);
    }
    consumer.abort();
    let probes: u64 = statuses.iter().map(|s| s.probes).sum();
    let mut health = BTreeMap::new();
    for status in &statuses {
        *health.entry(format!("{:?}", status.health)).or_insert(0) += 1;
    }
    let longest = WINDOWS[WINDOWS.len() - 1];
    let in_window: Vec<u64> = statuses
        .iter()
        .filter_map(|s| s.windows.iter().find(|w| w.window == longest))
        .map(|w| w.samples)
        .collect();
    let window_samples = in_window
        .iter()
        .min()
        .zip(in_window.iter().max())
        .map(|(a, b)| (*a, *b));
    let latency_us = match tally.latency.lock() {
        Ok(h) => (h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.max()),
        Err(_) => (0, 0, 0),
    };
    Ok(ProbesReport {
        monitors: args.monitors,
        elapsed_s,
        probes,
        failures: tally.failures.load(Ordering::Relaxed),
        failure_samples: tally.samples.lock().map(|s| s.clone()).unwrap_or_default(),
        lagged_events: tally.lagged.load(Ordering::Relaxed),
        probes_per_s: probes as f64 / elapsed_s.max(f64::MIN_POSITIVE),
        min_window_probes_per_s: min_window,
        lateness,
        latency_us,
        health,
        window_samples,
        stats_bytes,
        history: args.history,
        memory,
        memory_before,
        cpu,
        server_cpu,
    })
}

/// Waits out the run, printing a progress line per window to stderr; returns the lowest
/// probes/s of the windows that began after the first interval (the jittered ramp-up).
async fn progress(args: &ProbesArgs, tally: &Tally, started: tokio::time::Instant) -> Option<f64> {
    let end = started + args.duration;
    if args.progress.is_zero() {
        tokio::time::sleep_until(end).await;
        return None;
    }
    let mut min: Option<f64> = None;
    let mut window_start = started;
    let mut count_start = 0;
    loop {
        let window_end = (window_start + args.progress).min(end);
        tokio::time::sleep_until(window_end).await;
        let count = tally.probes.load(Ordering::Relaxed);
        let seconds = window_end.duration_since(window_start).as_secs_f64();
        let rate = (count - count_start) as f64 / seconds.max(f64::MIN_POSITIVE);
        let rss = procfs::memory("self")
            .map(|m| m.rss_kib / 1024)
            .unwrap_or(0);
        eprintln!(
            "t={:>6.1}s probes={count} window_probes_per_s={rate:.1} rss_mib={rss}",
            window_end.duration_since(started).as_secs_f64()
        );
        let full = window_end.duration_since(window_start) >= args.progress;
        if full && window_start >= started + args.interval {
            min = Some(min.map_or(rate, |m: f64| m.min(rate)));
        }
        if window_end >= end {
            return min;
        }
        window_start = window_end;
        count_start = count;
    }
}

/// `watchkeeper bench probes`.
pub fn run(args: ProbesArgs) -> Result<(), BenchError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(BenchError::Runtime)?;
    let report = runtime.block_on(measure(&args))?;
    print!("{}", report.render());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bench code path end to end on a small scale: real servers (in process), the real
    /// adapter and monitor runtime with seeded statistics. Asserts only what cannot flake:
    /// probes ran, none failed, every probed monitor is Healthy with the seeded history plus
    /// its own probes in its 30d window.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_run_probes_local_endpoints_through_the_monitor_runtime() {
        let args = ProbesArgs {
            monitors: 20,
            interval: Duration::from_millis(200),
            duration: Duration::from_secs(2),
            servers: 2,
            server_threads: 1,
            in_process_servers: true,
            timeout: Duration::from_secs(5),
            history: Duration::from_secs(3600),
            progress: Duration::ZERO,
        };
        let report = measure(&args).await.unwrap();
        assert!(report.probes >= 20, "{}", report.render());
        assert_eq!(report.failures, 0, "{}", report.render());
        assert!(
            report.lateness.count >= report.probes,
            "every recorded probe was started"
        );
        // An hour at 200 ms is 18,000 seeded samples, more than the 5m/1h rings' minimum.
        let (min, _) = report.window_samples.unwrap();
        assert!(min >= 18_000, "{}", report.render());
        assert!(report.stats_bytes > 0);
        assert_eq!(
            report.health.get("Healthy").copied(),
            Some(20),
            "{}",
            report.render()
        );
        assert!(report.memory.rss_kib > 0);
    }

    #[test]
    fn the_benchmark_spec_passes_the_adapter_with_two_components_and_four_windows() {
        let address: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let spec =
            monitor_spec(address, 7, Duration::from_secs(10), Duration::from_secs(5)).unwrap();
        let key = MonitorKey {
            namespace: "bench".into(),
            name: "m".into(),
        };
        let config = monitor_config(&key, &spec, Environment::Embedded, &NoSecrets).unwrap();
        assert_eq!(config.windows.len(), 4);
        assert_eq!(config.probe.components.len(), 2);
        assert_eq!(config.policy.thresholds.len(), 5);
        assert!(config.alerting.is_some());
    }
}
