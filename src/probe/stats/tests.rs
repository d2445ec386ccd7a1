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
fn known_series_gives_exact_counts_and_mean_and_quantiles_within_histogram_precision() {
    let stats = known_series(StatsConfig::default());
    let snap = stats.snapshot(HOUR, at(1001)).unwrap();
    assert_eq!(snap.samples, 1000);
    assert_eq!(snap.excluded_samples, 0);
    assert_eq!(snap.uptime_pct, Some(90.0));
    assert_eq!(snap.error_rate_pct, Some(10.0));
    assert_eq!(snap.mean_ms, Some(500.5));
    let p95 = snap.p95_ms.unwrap();
    let p99 = snap.p99_ms.unwrap();
    // One significant digit: bins are at most 1/16 of their value wide; the middle is reported.
    assert!(within(p95, 950.0, 0.035), "p95 {p95}");
    assert!(within(p99, 990.0, 0.035), "p99 {p99}");
    assert!(p95 < p99);
}

#[test]
fn two_significant_digits_give_quantiles_within_one_percent() {
    let config = StatsConfig {
        latency_sigfig: 2,
        ..StatsConfig::default()
    };
    let snap = known_series(config).snapshot(HOUR, at(1001)).unwrap();
    assert!(within(snap.p95_ms.unwrap(), 950.0, 0.01), "{snap:?}");
    assert!(within(snap.p99_ms.unwrap(), 990.0, 0.01), "{snap:?}");
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
    // 5m buckets are 15 s wide; t0 + 600 s is on a bucket edge, so the window is exactly the
    // last five minutes.
    let short = stats.snapshot(5 * MIN, at(600)).unwrap();
    assert_eq!(short.samples, 300);
    assert_eq!(short.uptime_pct, Some(100.0));
    let long = stats.snapshot(HOUR, at(600)).unwrap();
    assert_eq!(long.samples, 600);
    assert_eq!(long.uptime_pct, Some(50.0));

    // Seven seconds later the oldest partly-outside bucket is no longer counted: the window
    // holds between W - width and W of history.
    let later = stats.snapshot(5 * MIN, at(607)).unwrap();
    assert_eq!(later.samples, 285);

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
    assert_eq!(db.value_min, Some(10.0));
    assert_eq!(db.value_max, Some(40.0));
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
        latency_sigfig: 0,
        ..StatsConfig::default()
    };
    assert_eq!(
        MonitorStats::with_config(&[HOUR], config).unwrap_err(),
        StatsError::BadSigfig { sigfig: 0 }
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
    // 4 windows × 21 buckets, each at most one full histogram plus 4 components.
    let bound = stats.memory_bound_bytes(4);
    assert!(bound < 300 * 1024, "bound {bound}");
    assert!(bound > 4 * 21 * 1024, "bound {bound} ignores histograms");
    // The API's maximum of 32 components stays under half a megabyte.
    assert!(stats.memory_bound_bytes(32) < 400 * 1024);
}

#[test]
fn a_month_of_probes_stays_within_the_memory_bound() {
    let mut stats = MonitorStats::new(&slo_windows()).unwrap();
    let bound = stats.memory_bound_bytes(4);
    // 31 days at a 10 s interval, latencies spread from 1 ms to 30 s, four components.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut peak = 0;
    for i in 0..(31 * 86_400 / 10) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let latency_ms = 1 + seed % 30_000;
        let mut s = sample(i * 10, !seed.is_multiple_of(50), latency_ms);
        s.components = ["database", "storage", "openai", "claude"]
            .iter()
            .map(|n| component(n, Some(!seed.is_multiple_of(7)), Some((seed % 100) as f64)))
            .collect();
        stats.record(&s);
        if i % 1000 == 0 {
            peak = peak.max(stats.heap_bytes());
        }
    }
    peak = peak.max(stats.heap_bytes());
    assert!(peak <= bound, "peak {peak} > bound {bound}");
    let month = stats.snapshot(30 * DAY, at(31 * 86_400)).unwrap();
    // The 30d window holds between 28.5 and 30 days of probes.
    assert!((246_240..=259_200).contains(&month.samples), "{month:?}");
}

#[test]
fn a_fast_endpoint_on_the_default_windows_holds_little() {
    // What the module docs promise for the common case: default windows, latencies under
    // 80 ms, a probe every 10 s; two days fill every bucket of every window.
    let mut stats = MonitorStats::new(&[5 * MIN, HOUR, DAY]).unwrap();
    for i in 0..(2 * 86_400 / 10) {
        stats.record(&sample(i * 10, true, 1 + (i as u64 % 80)));
    }
    let held = stats.heap_bytes();
    assert!(held < 24 * 1024, "held {held}");
    assert_eq!(stats.snapshot(DAY, at(2 * 86_400)).unwrap().samples, 8640);
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
    let p95 = snap.p95_ms.unwrap();
    assert!((p95 - 0.87).abs() <= 0.02, "p95 {p95}");
    assert!((snap.mean_ms.unwrap() - 0.5997).abs() < 1e-3, "{snap:?}");
}
