//! Scheduler tests on tokio's paused clock: time advances only when every task is idle, so
//! start times are exact and the tests take no wall time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::*;

const SECOND: Duration = Duration::from_secs(1);

/// Start times per monitor, as seen by the jobs themselves.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<HashMap<String, Vec<Instant>>>>);

impl Log {
    fn starts(&self, id: &str) -> Vec<Instant> {
        self.0.lock().unwrap().get(id).cloned().unwrap_or_default()
    }
}

/// A job that logs its start under `id` and then works for `work`.
fn logging_job(log: &Log, id: &str, work: Duration) -> Arc<dyn Job<String>> {
    let log = log.clone();
    let id = id.to_string();
    Arc::new(move || -> JobFuture<String> {
        let log = log.clone();
        let id = id.clone();
        Box::pin(async move {
            log.0
                .lock()
                .unwrap()
                .entry(id.clone())
                .or_default()
                .push(Instant::now());
            tokio::time::sleep(work).await;
            id
        })
    })
}

fn spec(interval: Duration, host: &str, job: Arc<dyn Job<String>>) -> MonitorSpec<String> {
    MonitorSpec {
        interval,
        host: host.to_string(),
        job,
    }
}

/// A scheduler whose results are drained (and counted per monitor) in the background.
fn scheduler(config: SchedulerConfig) -> (Scheduler<String>, Arc<Mutex<HashMap<String, usize>>>) {
    let (scheduler, mut results) = Scheduler::<String>::new(config).unwrap();
    let delivered = Arc::new(Mutex::new(HashMap::new()));
    let sink = Arc::clone(&delivered);
    tokio::spawn(async move {
        while let Some(fired) = results.recv().await {
            assert!(
                fired.output.starts_with(&*fired.id),
                "result under its monitor's id"
            );
            *sink.lock().unwrap().entry(fired.output).or_insert(0) += 1;
        }
    });
    (scheduler, delivered)
}

fn assert_period(starts: &[Instant], period: Duration) {
    for pair in starts.windows(2) {
        assert_eq!(pair[1] - pair[0], period, "starts {starts:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn starts_stay_on_the_grid_over_many_periods_despite_slow_jobs() {
    let log = Log::default();
    let (mut scheduler, delivered) = scheduler(SchedulerConfig::default());
    // Each run works 7 s of its 10 s period: scheduling from completion would start every
    // 17 s.
    scheduler
        .upsert(
            "m",
            spec(10 * SECOND, "h", logging_job(&log, "m", 7 * SECOND)),
        )
        .unwrap();
    let origin = Instant::now();
    tokio::time::sleep(10_005 * SECOND).await;
    let starts = log.starts("m");
    assert_eq!(starts.len(), 1000, "one start per period");
    assert!(starts[0] >= origin && starts[0] <= origin + 10 * SECOND);
    for (k, start) in starts.iter().enumerate() {
        assert_eq!(
            *start,
            starts[0] + 10 * SECOND * k as u32,
            "start {k} drifted"
        );
    }
    assert_eq!(scheduler.skipped(), 0);
    // Only tokio's timer resolution (1 ms) makes a start late.
    assert!(scheduler.lateness().max_us < 1_000);
    tokio::time::sleep(SECOND).await;
    assert_eq!(delivered.lock().unwrap().get("m").copied(), Some(1000));
}

#[tokio::test(start_paused = true)]
async fn an_overrun_skips_missed_periods_instead_of_bursting_and_keeps_the_grid() {
    let log = Log::default();
    let (mut scheduler, _) = scheduler(SchedulerConfig::default());
    let runs = Arc::new(AtomicUsize::new(0));
    let job_log = log.clone();
    let job_runs = Arc::clone(&runs);
    // The second run takes 25 s of a 10 s period; the others 1 s.
    let job: Arc<dyn Job<String>> = Arc::new(move || -> JobFuture<String> {
        let log = job_log.clone();
        let n = job_runs.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            log.0
                .lock()
                .unwrap()
                .entry("m".into())
                .or_default()
                .push(Instant::now());
            let work = if n == 1 { 25 * SECOND } else { SECOND };
            tokio::time::sleep(work).await;
            "m".to_string()
        })
    });
    scheduler.upsert("m", spec(10 * SECOND, "h", job)).unwrap();
    tokio::time::sleep(100 * SECOND).await;
    let starts = log.starts("m");
    let first = starts[0];
    let offsets: Vec<Duration> = starts.iter().map(|s| *s - first).collect();
    // Run 1 at +10 s ends at +35 s: +20 s is skipped, +30 s runs at once (5 s late), then the
    // grid resumes at +40 s.
    assert_eq!(offsets[..5], [0, 10, 35, 40, 50].map(|s| s * SECOND));
    assert_eq!(scheduler.skipped(), 1);
    // Three significant figures.
    let max = scheduler.lateness().max_us;
    assert!(
        (5_000_000..5_010_000).contains(&max),
        "max lateness {max} µs"
    );
}

#[tokio::test(start_paused = true)]
async fn first_starts_are_spread_across_the_first_interval() {
    let log = Log::default();
    let (mut scheduler, _) = scheduler(SchedulerConfig::default());
    let origin = Instant::now();
    for i in 0..1000 {
        let id = format!("monitor-{i}");
        scheduler
            .upsert(
                &id,
                spec(10 * SECOND, "h", logging_job(&log, &id, Duration::ZERO)),
            )
            .unwrap();
    }
    tokio::time::sleep(11 * SECOND).await;
    let mut buckets = [0usize; 10];
    for i in 0..1000 {
        let starts = log.starts(&format!("monitor-{i}"));
        // Tokio's timers round deadlines up to the next millisecond.
        let offset = starts[0] - origin;
        assert!(
            offset <= 10 * SECOND,
            "monitor-{i} first started at +{offset:?}"
        );
        buckets[(offset.as_secs() as usize).min(9)] += 1;
    }
    // Uniform would be 100 per second; all firing together would put 1000 in one bucket.
    for (second, count) in buckets.iter().enumerate() {
        assert!(
            (60..=140).contains(count),
            "second {second}: {count} starts ({buckets:?})"
        );
    }
    // Same id and seed, same phase; another seed, another phase.
    assert_eq!(jitter_fraction(1, "a"), jitter_fraction(1, "a"));
    assert_ne!(jitter_fraction(1, "a"), jitter_fraction(2, "a"));
    assert_ne!(jitter_fraction(1, "a"), jitter_fraction(1, "b"));
}

#[tokio::test(start_paused = true)]
async fn upsert_changes_one_monitors_interval_and_job_without_touching_the_others() {
    let log = Log::default();
    let (mut scheduler, _) = scheduler(SchedulerConfig::default());
    for id in ["a", "b", "c"] {
        scheduler
            .upsert(id, spec(10 * SECOND, "h", logging_job(&log, id, SECOND)))
            .unwrap();
    }
    tokio::time::sleep(35 * SECOND).await;
    let b_before = log.starts("b");
    let change_at = Instant::now();
    // b: 4 s interval and a job that logs under a new name.
    scheduler
        .upsert("b", spec(4 * SECOND, "h", logging_job(&log, "b2", SECOND)))
        .unwrap();
    tokio::time::sleep(60 * SECOND).await;
    for id in ["a", "c"] {
        let starts = log.starts(id);
        assert_period(&starts, 10 * SECOND);
        assert!(
            *starts.last().unwrap() + 10 * SECOND > Instant::now(),
            "{id} stopped"
        );
    }
    assert_eq!(log.starts("b"), b_before, "the old job no longer runs");
    let b2 = log.starts("b2");
    assert!(b2.len() >= 14, "b runs every 4 s now: {b2:?}");
    assert_period(&b2[1..], 4 * SECOND);
    // The phase is kept: the new grid is the last old start plus multiples of 4 s. When its
    // first point had already passed, b ran once at the change (it was overdue).
    let last_old = *b_before.last().unwrap();
    if last_old + 4 * SECOND > change_at {
        assert_eq!(b2[0], last_old + 4 * SECOND);
    } else {
        assert!(b2[0] - change_at < Duration::from_millis(1), "{b2:?}");
    }
    assert_eq!((b2[1] - last_old).as_millis() % 4000, 0, "{b2:?}");
    assert_eq!(scheduler.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn removal_stops_only_that_monitor() {
    let log = Log::default();
    let (mut scheduler, _) = scheduler(SchedulerConfig::default());
    for id in ["a", "b"] {
        scheduler
            .upsert(id, spec(10 * SECOND, "h", logging_job(&log, id, SECOND)))
            .unwrap();
    }
    tokio::time::sleep(30 * SECOND).await;
    assert!(scheduler.remove("b"));
    assert!(!scheduler.remove("b"));
    assert!(!scheduler.contains("b"));
    let b_runs = log.starts("b").len();
    let a_runs = log.starts("a").len();
    tokio::time::sleep(100 * SECOND).await;
    assert_eq!(log.starts("b").len(), b_runs, "removed monitor ran again");
    assert_eq!(log.starts("a").len(), a_runs + 10);
    assert_period(&log.starts("a"), 10 * SECOND);
    // Re-adding starts it afresh.
    scheduler
        .upsert("b", spec(10 * SECOND, "h", logging_job(&log, "b", SECOND)))
        .unwrap();
    tokio::time::sleep(10 * SECOND).await;
    assert_eq!(log.starts("b").len(), b_runs + 1);
}

/// A job that counts runs in flight (overall and per host) and records the maxima.
#[derive(Clone, Default)]
struct InFlight {
    now: Arc<Mutex<HashMap<String, usize>>>,
    max: Arc<Mutex<HashMap<String, usize>>>,
}

impl InFlight {
    fn job(&self, host: &str, work: Duration) -> Arc<dyn Job<String>> {
        let me = self.clone();
        let host = host.to_string();
        Arc::new(move || -> JobFuture<String> {
            let me = me.clone();
            let host = host.clone();
            Box::pin(async move {
                me.enter(&host);
                me.enter("*");
                tokio::time::sleep(work).await;
                me.leave(&host);
                me.leave("*");
                host
            })
        })
    }

    fn enter(&self, key: &str) {
        let mut now = self.now.lock().unwrap();
        let count = now.entry(key.to_string()).or_insert(0);
        *count += 1;
        let mut max = self.max.lock().unwrap();
        let top = max.entry(key.to_string()).or_insert(0);
        *top = (*top).max(*count);
    }

    fn leave(&self, key: &str) {
        *self.now.lock().unwrap().entry(key.to_string()).or_insert(1) -= 1;
    }

    fn max(&self, key: &str) -> usize {
        self.max.lock().unwrap().get(key).copied().unwrap_or(0)
    }
}

#[tokio::test(start_paused = true)]
async fn concurrency_is_bounded_per_host_and_globally() {
    let config = SchedulerConfig {
        per_host: 3,
        global: 5,
        ..SchedulerConfig::default()
    };
    let (mut scheduler, mut results) = Scheduler::<String>::new(config).unwrap();
    let counted = tokio::spawn(async move {
        let mut late = 0;
        while let Some(fired) = results.recv().await {
            if fired.lateness() > Duration::ZERO {
                late += 1;
            }
        }
        late
    });
    let in_flight = InFlight::default();
    // 40 monitors on each of two hosts, each run working 5 s of a 10 s period: unbounded,
    // about 20 per host would be in flight.
    for host in ["x", "y"] {
        for i in 0..40 {
            scheduler
                .upsert(
                    &format!("{host}-{i}"),
                    spec(10 * SECOND, host, in_flight.job(host, 5 * SECOND)),
                )
                .unwrap();
        }
    }
    tokio::time::sleep(60 * SECOND).await;
    assert_eq!(in_flight.max("x"), 3);
    assert_eq!(in_flight.max("y"), 3);
    assert_eq!(in_flight.max("*"), 5);
    drop(scheduler);
    // Waiting for permits is recorded as lateness.
    assert!(counted.await.unwrap() > 0);
}

#[tokio::test(start_paused = true)]
async fn a_slow_host_does_not_hold_up_another_host() {
    let config = SchedulerConfig {
        per_host: 1,
        global: 10,
        ..SchedulerConfig::default()
    };
    let log = Log::default();
    let (mut scheduler, _) = scheduler(config);
    // Ten monitors on a host whose runs take a minute each, one on a fast host.
    let in_flight = InFlight::default();
    for i in 0..10 {
        scheduler
            .upsert(
                &format!("slow-{i}"),
                spec(10 * SECOND, "slow", in_flight.job("slow", 60 * SECOND)),
            )
            .unwrap();
    }
    scheduler
        .upsert(
            "fast",
            spec(10 * SECOND, "fast", logging_job(&log, "fast", SECOND)),
        )
        .unwrap();
    tokio::time::sleep(100 * SECOND).await;
    let fast = log.starts("fast");
    assert_eq!(fast.len(), 10);
    assert_period(&fast, 10 * SECOND);
    assert_eq!(in_flight.max("slow"), 1);
}

#[tokio::test(start_paused = true)]
async fn bad_settings_are_refused() {
    let (mut scheduler, _) = scheduler(SchedulerConfig::default());
    let log = Log::default();
    assert_eq!(
        scheduler.upsert(
            "m",
            spec(Duration::ZERO, "h", logging_job(&log, "m", SECOND))
        ),
        Err(SchedulerError::ZeroInterval { id: "m".into() })
    );
    assert!(scheduler.is_empty());
    let zero = SchedulerConfig {
        per_host: 0,
        ..SchedulerConfig::default()
    };
    assert_eq!(
        Scheduler::<String>::new(zero).err(),
        Some(SchedulerError::ZeroLimit { field: "per_host" })
    );
}

#[test]
fn catch_up_moves_to_the_last_grid_point_not_after_now() {
    let start = Instant::now();
    let ten = 10 * SECOND;
    assert_eq!(catch_up(start, ten, start + 9 * SECOND), (start, 0));
    assert_eq!(catch_up(start, ten, start + ten), (start + ten, 1));
    assert_eq!(
        catch_up(start, ten, start + 35 * SECOND),
        (start + 30 * SECOND, 3)
    );
}
