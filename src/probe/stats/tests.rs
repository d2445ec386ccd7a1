//! Window statistics against known series.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::*;

const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// A start time aligned to every bucket width used below (midnight).
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(secs)
}

fn sample(secs: i64, up: bool, latency_ms: u64) -> Sample {
    Sample {
        at: at(secs),
        up,
        latency: Duration::from_millis(latency_ms),
        components: Vec::new(),
    }
}

fn component(name: &str, up: Option<bool>, value: Option<f64>) -> ComponentSample {
    ComponentSample {
        name: name.to_owned(),
        up,
        value,
    }
}

fn within(actual: f64, expected: f64, relative: f64) -> bool {
    (actual - expected).abs() <= expected * relative
}

/// 1000 probes, latencies 1..=1000 ms, every tenth one down.
fn known_series(config: StatsConfig) -> MonitorStats {
    let mut stats = MonitorStats::with_config(&[HOUR], config).unwrap();
    for i in 1..=1000u64 {
        stats.record(&sample(i as i64, i % 10 != 0, i));
    }
    stats
}

#[test]
fn known_series_gives_exact_counts_and_mean_and_quantiles_within_three_percent() {
    let stats = known_series(StatsConfig::default());
    let snap = stats.snapshot(HOUR, at(1001)).unwrap();
    assert_eq!(snap.samples, 1000);
    assert_eq!(snap.excluded_samples, 0);
    assert_eq!(snap.uptime_pct, Some(90.0));
    assert_eq!(snap.error_rate_pct, Some(10.0));
    assert_eq!(snap.mean_ms, Some(500.5));
    let p95 = snap.p95_ms.unwrap();
    let p99 = snap.p99_ms.unwrap();
    // The sample of rank 950 (resp. 990) is 950 ms (990 ms); the bin reports within 3 %.
    assert!(within(p95, 950.0, 0.03), "p95 {p95}");
    assert!(within(p99, 990.0, 0.03), "p99 {p99}");
    assert!(p95 < p99);
}

#[test]
fn every_latency_is_reported_within_the_documented_relative_error() {
    // Every bin's representative is within 3 % of every value that falls in it, from 10 µs to
    // an hour (and within 10 µs below that).
    let mut micros = 1u64;
    while micros <= latency::MAX_LATENCY_US {
        let reported = latency::representative_us(latency::bin(micros));
        let exact = micros as f64;
        assert!(
            (reported - exact).abs()
                <= (exact * latency::RELATIVE_ERROR).max(latency::MIN_US) + 1e-9,
            "{micros} µs reported as {reported}"
        );
        micros += 1 + micros / 97;
    }
    assert!(usize::from(latency::bin(latency::MAX_LATENCY_US)) < latency::BINS);
    assert_eq!(
        usize::from(latency::bin(latency::MAX_LATENCY_US)),
        latency::BINS - 1,
        "BINS is exactly the scale's length"
    );
    assert_eq!(
        latency::bin(u64::MAX),
        latency::bin(latency::MAX_LATENCY_US)
    );
}

#[test]
fn few_samples_are_kept_exactly() {
    let mut stats = MonitorStats::new(&[5 * MIN]).unwrap();
    for (i, ms) in [12u64, 15, 480].into_iter().enumerate() {
        stats.record(&sample(i as i64, true, ms));
    }
    let snap = stats.snapshot(5 * MIN, at(10)).unwrap();
    assert_eq!(snap.samples, 3);
    assert_eq!(snap.mean_ms, Some(169.0));
    assert!(within(snap.p99_ms.unwrap(), 480.0, 0.035));
}

#[test]
fn empty_window_has_no_rates() {
    let stats = MonitorStats::new(&[5 * MIN]).unwrap();
    let snap = stats.snapshot(5 * MIN, at(0)).unwrap();
    assert_eq!(snap.samples, 0);
    assert_eq!(snap.uptime_pct, None);
    assert_eq!(snap.error_rate_pct, None);
    assert_eq!(snap.mean_ms, None);
    assert_eq!(snap.p95_ms, None);
}

#[test]
fn windows_slide_old_samples_drop_out() {
    let mut stats = MonitorStats::new(&[5 * MIN, HOUR]).unwrap();
    // Ten minutes at one probe per second: down for five minutes, then up for five.
    for s in 0..600 {
        stats.record(&sample(s, s >= 300, 20));
    }
    // 5m buckets are 25 s wide; t0 + 600 s is on a bucket edge, so the window is exactly the
    // last five minutes.
    let short = stats.snapshot(5 * MIN, at(600)).unwrap();
    assert_eq!(short.samples, 300);
    assert_eq!(short.uptime_pct, Some(100.0));
    let long = stats.snapshot(HOUR, at(600)).unwrap();
    assert_eq!(long.samples, 600);
    assert_eq!(long.uptime_pct, Some(50.0));

    // Seven seconds later the oldest partly-outside bucket is no longer counted: the window
    // holds between W - width and W of history (here from t0 + 325 s).
    let later = stats.snapshot(5 * MIN, at(607)).unwrap();
    assert_eq!(later.samples, 275);

    // Five more minutes without probes: the short window is empty, the hour still remembers.
    assert_eq!(stats.snapshot(5 * MIN, at(900)).unwrap().samples, 0);
    assert_eq!(stats.snapshot(HOUR, at(900)).unwrap().samples, 600);
    // And after an hour and a bit, nothing is left.
    assert_eq!(stats.snapshot(HOUR, at(600 + 3600)).unwrap().samples, 0);
}

#[test]
fn ring_slots_are_reused_as_time_advances() {
    let mut stats = MonitorStats::new(&[5 * MIN]).unwrap();
    // Three hours of probes every 10 s, all down, then five minutes up: only the recent
    // five minutes may count, whatever slots the old buckets used.
    for s in (0..3 * 3600).step_by(10) {
        stats.record(&sample(s, false, 50));
    }
    for s in (3 * 3600..3 * 3600 + 300).step_by(10) {
        stats.record(&sample(s, true, 50));
    }
    let snap = stats.snapshot(5 * MIN, at(3 * 3600 + 300)).unwrap();
    assert_eq!(snap.samples, 30);
    assert_eq!(snap.uptime_pct, Some(100.0));
}

#[test]
fn samples_older_than_the_ring_are_ignored_and_late_ones_within_it_count() {
    let mut stats = MonitorStats::new(&[5 * MIN]).unwrap();
    stats.record(&sample(1000, true, 10));
    // Slightly late (same window): counted.
    stats.record(&sample(990, false, 10));
    // An hour late: it would land in a slot holding a newer bucket, so it is dropped.
    stats.record(&sample(1000 - 3600, false, 10));
    let snap = stats.snapshot(5 * MIN, at(1005)).unwrap();
    assert_eq!(snap.samples, 2);
    assert_eq!(snap.uptime_pct, Some(50.0));
}

#[test]
fn excluded_ranges_count_toward_nothing() {
    let mut stats = MonitorStats::new(&[HOUR]).unwrap();
    stats.exclude(at(100), at(200)).unwrap();
    assert!(stats.is_excluded(at(100)));
    assert!(!stats.is_excluded(at(200)));
    for s in 0..300 {
        let in_maintenance = (100..200).contains(&s);
        // Maintenance probes fail slowly; outside it everything is fine.
        let mut sample = sample(s, !in_maintenance, if in_maintenance { 9000 } else { 10 });
        sample.components = vec![component("db", Some(!in_maintenance), Some(1.0))];
        stats.record(&sample);
    }
    let snap = stats.snapshot(HOUR, at(300)).unwrap();
    assert_eq!(snap.samples, 200);
    assert_eq!(snap.excluded_samples, 100);
    assert_eq!(snap.uptime_pct, Some(100.0));
    assert_eq!(snap.error_rate_pct, Some(0.0));
    assert_eq!(snap.mean_ms, Some(10.0));
    assert!(snap.p99_ms.unwrap() < 11.0);
    assert_eq!(snap.components[0].samples, 200);
    assert_eq!(snap.components[0].availability_pct, Some(100.0));
}

#[test]
fn bad_exclusion_is_refused() {
    let mut stats = MonitorStats::new(&[HOUR]).unwrap();
    let err = stats.exclude(at(10), at(10)).unwrap_err();
    assert!(matches!(err, StatsError::EmptyExclusion { .. }));
}

#[test]
fn exclusions_are_bounded() {
    let config = StatsConfig {
        max_exclusions: 4,
        ..StatsConfig::default()
    };
    let mut stats = MonitorStats::with_config(&[HOUR], config).unwrap();
    for i in 0..10 {
        stats.exclude(at(i * 100), at(i * 100 + 50)).unwrap();
    }
    // The newest four are kept, the oldest forgotten.
    assert!(stats.is_excluded(at(910)));
    assert!(stats.is_excluded(at(610)));
    assert!(!stats.is_excluded(at(510)));
}

#[test]
fn components_have_their_own_availability_and_values() {
    let mut stats = MonitorStats::new(&[HOUR]).unwrap();
    let readings = [
        (Some(true), Some(10.0), Some(0.9)),
        (Some(true), Some(20.0), Some(0.7)),
        (Some(false), Some(30.0), None),
        (Some(true), Some(40.0), Some(0.5)),
    ];
    for (i, (db_up, db_ms, hit_rate)) in readings.into_iter().enumerate() {
        let mut s = sample(i as i64 * 10, true, 5);
        s.components = vec![
            component("database", db_up, db_ms),
            component("cache", None, hit_rate),
        ];
        // A component missing from one probe (e.g. the provider was not listed).
        if i != 1 {
            s.components.push(component("openai", Some(i != 3), None));
        }
        stats.record(&s);
    }
    let snap = stats.snapshot(HOUR, at(60)).unwrap();
    let names: Vec<&str> = snap.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["database", "cache", "openai"]);

    let db = &snap.components[0];
    assert_eq!(db.samples, 4);
    assert_eq!(db.availability_pct, Some(75.0));
    assert_eq!(db.error_rate_pct, Some(25.0));
    assert_eq!(db.value_samples, 4);
    assert_eq!(db.value_mean, Some(25.0));
    assert_eq!(db.value_last, Some(40.0));

    let cache = &snap.components[1];
    assert_eq!(cache.samples, 0);
    assert_eq!(cache.availability_pct, None);
    assert_eq!(cache.value_samples, 3);
    assert!(within(cache.value_mean.unwrap(), 0.7, 1e-9));
    assert_eq!(cache.value_last, Some(0.5));

    let openai = &snap.components[2];
    assert_eq!(openai.samples, 3);
    assert!(within(openai.availability_pct.unwrap(), 200.0 / 3.0, 1e-9));
    assert_eq!(openai.value_mean, None);

    // Two hours later nothing of this is in the window, not even the last value.
    let later = stats.snapshot(HOUR, at(2 * 3600)).unwrap();
    assert_eq!(later.components[0].samples, 0);
    assert_eq!(later.components[0].value_last, None);
}

#[test]
fn non_finite_values_are_ignored() {
    let mut stats = MonitorStats::new(&[HOUR]).unwrap();
    let mut s = sample(0, true, 5);
    s.components = vec![component("cache", None, Some(f64::NAN))];
    stats.record(&s);
    let snap = stats.snapshot(HOUR, at(1)).unwrap();
    assert_eq!(snap.components[0].value_samples, 0);
    assert_eq!(snap.components[0].value_last, None);
}

#[test]
fn component_names_are_bounded() {
    let config = StatsConfig {
        max_components: 2,
        ..StatsConfig::default()
    };
    let mut stats = MonitorStats::with_config(&[HOUR], config).unwrap();
    let mut s = sample(0, true, 5);
    s.components = ["a", "b", "c"]
        .iter()
        .map(|n| component(n, Some(true), None))
        .collect();
    stats.record(&s);
    assert_eq!(stats.ignored_components(), 1);
    assert_eq!(stats.snapshot(HOUR, at(1)).unwrap().components.len(), 2);
}

#[test]
fn bad_configuration_is_refused_with_the_offending_value() {
    assert_eq!(MonitorStats::new(&[]).unwrap_err(), StatsError::NoWindows);
    assert_eq!(
        MonitorStats::new(&[Duration::ZERO]).unwrap_err(),
        StatsError::BadWindow {
            window: Duration::ZERO
        }
    );
    let too_long = MAX_WINDOW + Duration::from_secs(1);
    assert!(matches!(
        MonitorStats::new(&[too_long]),
        Err(StatsError::BadWindow { .. })
    ));
    let config = StatsConfig {
        buckets_per_window: 0,
        ..StatsConfig::default()
    };
    assert_eq!(
        MonitorStats::with_config(&[HOUR], config).unwrap_err(),
        StatsError::BadBuckets { buckets: 0 }
    );
    let stats = MonitorStats::new(&[HOUR, HOUR, 5 * MIN]).unwrap();
    assert_eq!(stats.windows().collect::<Vec<_>>(), [HOUR, 5 * MIN]);
    let err = stats.snapshot(DAY, at(0)).unwrap_err();
    assert!(err.to_string().contains("not kept"), "{err}");
}

/// The four windows of the guides' SLOs.
fn slo_windows() -> [Duration; 4] {
    [5 * MIN, HOUR, DAY, 30 * DAY]
}

#[test]
fn memory_bound_is_computed_from_buckets_not_samples() {
    let stats = MonitorStats::new(&slo_windows()).unwrap();
    // 4 windows × 12 sealed buckets, each at most every latency bin plus 4 components.
    let bound = stats.memory_bound_bytes(4);
    assert!(
        bound > 4 * 12 * latency::BINS * 2,
        "bound {bound} ignores histograms"
    );
    assert!(bound < 200 * 1024, "bound {bound}");
    // The API's maximum of 32 components stays under a quarter of a megabyte.
    assert!(stats.memory_bound_bytes(32) < 256 * 1024);
    // Nothing is allocated before the first sample.
    assert!(
        stats.heap_bytes() <= std::mem::size_of::<MonitorStats>() + 4 * 16,
        "{}",
        stats.heap_bytes()
    );
}

/// A small xorshift generator, so series are reproducible.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn a_month_of_widely_spread_probes_stays_within_the_memory_bound() {
    let mut stats = MonitorStats::new(&slo_windows()).unwrap();
    let bound = stats.memory_bound_bytes(4);
    // 31 days at a 10 s interval, latencies spread from 1 ms to 30 s, four components.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut peak = 0;
    for i in 0..(31 * 86_400 / 10) {
        let r = next(&mut seed);
        let latency_ms = 1 + r % 30_000;
        let mut s = sample(i * 10, !r.is_multiple_of(50), latency_ms);
        s.components = ["database", "storage", "openai", "claude"]
            .iter()
            .map(|n| component(n, Some(!r.is_multiple_of(7)), Some((r % 100) as f64)))
            .collect();
        stats.record(&s);
        if i % 1000 == 0 {
            peak = peak.max(stats.heap_bytes());
        }
    }
    peak = peak.max(stats.heap_bytes());
    assert!(peak <= bound, "peak {peak} > bound {bound}");
    // Spread over the whole scale, a bucket uses up to ~160 bins: about 30 KB.
    assert!(peak < 40 * 1024, "peak {peak}");
    let month = stats.snapshot(30 * DAY, at(31 * 86_400)).unwrap();
    // The 30d window holds between 27.5 and 30 days of probes.
    assert!((237_600..=259_200).contains(&month.samples), "{month:?}");
}

/// What the benchmark's monitors hold after a month: windows 5m/1h/24h/30d, a probe every 10 s
/// answering in 0.1–2 ms (mostly ~0.2 ms, like loopback), two components with a state and a
/// value each. Returns the statistics at the end.
pub(crate) fn benchmark_month() -> MonitorStats {
    let mut stats = MonitorStats::new(&slo_windows()).unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..(31 * 86_400 / 10) {
        let r = next(&mut seed);
        // 90 % between 150 and 300 µs, 9 % up to 1 ms, 1 % up to 2 ms.
        let micros = match r % 100 {
            0 => 1_000 + r % 1_000,
            1..=9 => 300 + r % 700,
            _ => 150 + r % 150,
        };
        let mut s = sample(i * 10, !r.is_multiple_of(1000), 0);
        s.latency = Duration::from_micros(micros);
        s.components = vec![
            component("database", Some(true), Some((2 + r % 5) as f64)),
            component("cache", Some(true), Some(0.9 + (r % 10) as f64 / 100.0)),
        ];
        stats.record(&s);
    }
    stats
}

#[test]
fn the_benchmark_monitor_holds_a_few_kilobytes_after_a_month() {
    let stats = benchmark_month();
    let held = stats.heap_bytes();
    eprintln!("benchmark monitor after 31 days: {held} bytes");
    assert!(held < 4 * 1024, "held {held}");
    let day = stats.snapshot(DAY, at(31 * 86_400)).unwrap();
    assert!(
        (79_200..=8_640 * 10).contains(&(day.samples * 10)),
        "{day:?}"
    );
    let p95 = day.p95_ms.unwrap();
    // 90 % of latencies are below 0.3 ms and 99 % below 1 ms: p95 lies in 0.3–1 ms.
    assert!((0.3 * 0.97..=1.0 * 1.03).contains(&p95), "p95 {p95}");
    assert_eq!(day.components.len(), 2);
    let cache = day.components[1].value_mean.unwrap();
    assert!((0.9..=0.99).contains(&cache), "cache {cache}");
}

#[test]
fn sealed_component_sums_keep_the_mean_within_a_millionth() {
    // A value per probe for six hours: the 1h window spans several sealed buckets.
    let mut stats = MonitorStats::new(&[HOUR]).unwrap();
    let mut sum = 0.0;
    let mut count = 0.0;
    for i in 0..(6 * 360) {
        let value = 0.93 + (i % 7) as f64 * 0.001;
        let mut s = sample(i * 10, true, 5);
        s.components = vec![component("cache", None, Some(value))];
        stats.record(&s);
        if i * 10 >= 5 * 3600 {
            sum += value;
            count += 1.0;
        }
    }
    let snap = stats.snapshot(HOUR, at(6 * 3600)).unwrap();
    assert_eq!(snap.components[0].value_samples, 360);
    let mean = snap.components[0].value_mean.unwrap();
    assert!(within(mean, sum / count, 1e-6), "{mean} vs {}", sum / count);
}

#[test]
fn late_samples_for_sealed_buckets_are_counted_in_their_bucket() {
    let mut stats = MonitorStats::new(&[HOUR]).unwrap();
    // Buckets are 5 min wide: fill three, then a sample for the first arrives late.
    for s in [0, 400, 700] {
        stats.record(&sample(s, true, 10));
    }
    stats.record(&sample(10, false, 2_000));
    // And one for a bucket that had no sample yet (between the first two).
    stats.record(&sample(350, true, 10));
    let snap = stats.snapshot(HOUR, at(900)).unwrap();
    assert_eq!(snap.samples, 5);
    assert_eq!(snap.uptime_pct, Some(80.0));
    assert!(within(snap.p99_ms.unwrap(), 2_000.0, 0.03));
    // Once the hour has moved past the first bucket, the late sample leaves with it.
    let later = stats.snapshot(HOUR, at(3_600 + 300)).unwrap();
    assert_eq!(later.samples, 3, "{later:?}");
    assert_eq!(later.uptime_pct, Some(100.0));
}

#[test]
fn sub_millisecond_latencies_keep_their_absolute_precision() {
    let mut stats = MonitorStats::new(&[HOUR]).unwrap();
    // 1000 loopback-fast probes from 0.3 ms to 0.9 ms.
    for i in 0..1000i64 {
        let mut s = sample(i, true, 0);
        s.latency = Duration::from_micros(300 + (i as u64 * 600 / 1000));
        stats.record(&s);
    }
    let snap = stats.snapshot(HOUR, at(1000)).unwrap();
    // The sample of rank 950 is 0.869 ms; reported within 3 %.
    let p95 = snap.p95_ms.unwrap();
    assert!(within(p95, 0.869, 0.03), "p95 {p95}");
    assert!((snap.mean_ms.unwrap() - 0.5997).abs() < 1e-3, "{snap:?}");
}
