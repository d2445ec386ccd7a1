//! `watchkeeper bench probes`: N monitors on the real scheduler and prober against local
//! health endpoints.
//!
//! Each monitor is an HTTP GET of `/api/health` with the checks a guide's monitor has (2xx,
//! `$.status == "healthy"`, a `database` component), spread over the endpoint servers. The
//! endpoints run in a child process (this binary's hidden `bench serve`) unless
//! `--in-process-servers` is given, so the CPU reported as ours is the prober's and the
//! scheduler's only; the child's CPU is reported on its own line.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

use super::BenchError;
use super::procfs::{self, CpuTime};
use crate::probe::scheduler::{
    Fired, JobFuture, LatenessSummary, MonitorSpec, Scheduler, SchedulerConfig,
};
use crate::probe::{
    Checks, ComponentSpec, HttpTarget, JsonAssertion, ProbeOutcome, ProbeSpec, Prober, Target,
};

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
    /// Most probes in flight per endpoint (host:port).
    #[arg(long, default_value_t = 64)]
    pub per_host: usize,
    /// Most probes in flight overall.
    #[arg(long, default_value_t = 1024)]
    pub global: usize,
    /// Timeout of each probe.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
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
    /// Probes completed.
    pub probes: u64,
    /// Probes that were down (all endpoints answer healthy, so every one is a failure).
    pub failures: u64,
    /// First few failure reasons.
    pub failure_samples: Vec<String>,
    /// Probes per second over the run.
    pub probes_per_s: f64,
    /// Lowest probes/s of any full progress window after the first interval.
    pub min_window_probes_per_s: Option<f64>,
    /// Start lateness.
    pub lateness: LatenessSummary,
    /// Grid points skipped because a probe overran its interval.
    pub skipped: u64,
    /// Probe latency p50 / p99 / max, µs.
    pub latency_us: (u64, u64, u64),
    /// Our resident memory at the end.
    pub memory: procfs::Memory,
    /// Our CPU during the run.
    pub cpu: CpuTime,
    /// The endpoint process's CPU during the run (None when in-process).
    pub server_cpu: Option<CpuTime>,
    /// HTTP clients (connection pools) the prober built.
    pub clients: usize,
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
        line(format!(
            "lateness_ms: p50 {:.3} p99 {:.3} max {:.3} (runs {})",
            ms(self.lateness.p50_us),
            ms(self.lateness.p99_us),
            ms(self.lateness.max_us),
            self.lateness.count
        ));
        line(format!("skipped_ticks: {}", self.skipped));
        line(format!(
            "probe_latency_ms: p50 {:.3} p99 {:.3} max {:.3}",
            ms(self.latency_us.0),
            ms(self.latency_us.1),
            ms(self.latency_us.2)
        ));
        line(format!(
            "rss_mib: {:.1} (peak {:.1})",
            self.memory.rss_kib as f64 / 1024.0,
            self.memory.peak_kib as f64 / 1024.0
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
        line(format!("http_clients: {}", self.clients));
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

/// The probe of monitor `i`: the guides' health check.
fn probe_spec(address: SocketAddr, i: usize, timeout: Duration) -> Result<ProbeSpec, BenchError> {
    let setup = |e: crate::probe::ProbeError| BenchError::Setup(e.to_string());
    let mut target = HttpTarget::get(format!("http://{address}/api/health?monitor={i}"));
    target.max_body_bytes = 64 * 1024;
    Ok(ProbeSpec {
        target: Target::Http(target),
        timeout,
        checks: Checks {
            json: vec![
                JsonAssertion::parse_expression("checks.json[0]", r#"$.status == "healthy""#)
                    .map_err(setup)?,
            ],
            ..Checks::default()
        },
        components: vec![
            ComponentSpec::new(
                "components[0]",
                "database",
                Some("$.services.database.status"),
                &[],
                Some("$.services.database.latency_ms"),
            )
            .map_err(setup)?,
        ],
    })
}

/// Counts results as they arrive.
struct Tally {
    probes: AtomicU64,
    failures: AtomicU64,
    samples: std::sync::Mutex<Vec<String>>,
    latency: std::sync::Mutex<Histogram<u64>>,
}

impl Tally {
    fn record(&self, fired: &Fired<ProbeOutcome>) {
        let outcome = &fired.output;
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
                samples.push(format!("{}: {why}", fired.id));
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
    let config = SchedulerConfig {
        per_host: args.per_host,
        global: args.global,
        ..SchedulerConfig::default()
    };
    let (mut scheduler, mut results) =
        Scheduler::<ProbeOutcome>::new(config).map_err(|e| BenchError::Setup(e.to_string()))?;
    let histogram = Histogram::new_with_bounds(1, 3_600_000_000, 3)
        .map_err(|e| BenchError::Setup(format!("latency histogram: {e}")))?;
    let tally = Arc::new(Tally {
        probes: AtomicU64::new(0),
        failures: AtomicU64::new(0),
        samples: std::sync::Mutex::new(Vec::new()),
        latency: std::sync::Mutex::new(histogram),
    });
    let consumer = {
        let tally = Arc::clone(&tally);
        tokio::spawn(async move {
            while let Some(fired) = results.recv().await {
                tally.record(&fired);
            }
        })
    };
    let prober = Arc::new(Prober::new());
    let cpu_start = procfs::cpu_time("self")?;
    let server_cpu_start = servers.cpu();
    let started = tokio::time::Instant::now();
    for i in 0..args.monitors {
        let address = addresses[i % addresses.len()];
        let spec = Arc::new(probe_spec(address, i, args.timeout)?);
        let prober = Arc::clone(&prober);
        let job = move || -> JobFuture<ProbeOutcome> {
            let prober = Arc::clone(&prober);
            let spec = Arc::clone(&spec);
            Box::pin(async move { prober.probe(&spec).await })
        };
        let monitor = MonitorSpec {
            interval: args.interval,
            host: address.to_string(),
            job: Arc::new(job),
        };
        scheduler
            .upsert(&format!("monitor-{i}"), monitor)
            .map_err(|e| BenchError::Setup(e.to_string()))?;
    }
    let min_window = progress(args, &tally, started).await;
    let elapsed_s = started.elapsed().as_secs_f64();
    let cpu = procfs::cpu_time("self")?.since(cpu_start);
    let server_cpu = match (server_cpu_start, servers.cpu()) {
        (Some(start), Some(end)) => Some(end.since(start)),
        _ => None,
    };
    let memory = procfs::memory("self")?;
    let lateness = scheduler.lateness();
    let skipped = scheduler.skipped();
    drop(scheduler);
    consumer.abort();
    let probes = tally.probes.load(Ordering::Relaxed);
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
        probes_per_s: probes as f64 / elapsed_s.max(f64::MIN_POSITIVE),
        min_window_probes_per_s: min_window,
        lateness,
        skipped,
        latency_us,
        memory,
        cpu,
        server_cpu,
        clients: prober.client_count(),
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

    /// The bench code path end to end on a small scale: real servers (in process), real
    /// prober, real scheduler. Asserts only what cannot flake: probes ran and none failed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_run_probes_local_endpoints_without_failures() {
        let args = ProbesArgs {
            monitors: 20,
            interval: Duration::from_millis(200),
            duration: Duration::from_secs(1),
            servers: 2,
            server_threads: 1,
            in_process_servers: true,
            per_host: 8,
            global: 64,
            timeout: Duration::from_secs(5),
            progress: Duration::ZERO,
        };
        let report = measure(&args).await.unwrap();
        assert!(report.probes >= 20, "{}", report.render());
        assert_eq!(report.failures, 0, "{}", report.render());
        assert!(
            report.lateness.count >= report.probes,
            "every completed probe was started"
        );
        assert!(report.memory.rss_kib > 0);
        assert_eq!(report.clients, 1, "one shared client for plain http");
    }
}
