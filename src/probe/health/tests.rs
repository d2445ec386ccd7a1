//! Health evaluation: Up→Down→Up, levels, hysteresis, Unknown.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::probe::stats::{ComponentSample, ComponentSnapshot, Sample};

const FIVE_MIN: Duration = Duration::from_secs(300);

fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap() + chrono::Duration::seconds(secs)
}

fn rule(
    name: &str,
    metric: Metric,
    direction: Direction,
    warning: f64,
    critical: f64,
) -> ThresholdRule {
    ThresholdRule {
        name: name.to_owned(),
        metric,
        window: FIVE_MIN,
        direction,
        warning: Some(warning),
        critical: Some(critical),
        min_samples: 1,
    }
}

fn p95_rule() -> ThresholdRule {
    rule("p95", Metric::LatencyP95, Direction::Above, 500.0, 1000.0)
}

fn policy(failure: u32, success: u32, thresholds: Vec<ThresholdRule>) -> HealthPolicy {
    HealthPolicy {
        failure_threshold: failure,
        success_threshold: success,
        thresholds,
        hysteresis: Hysteresis::default(),
    }
}

/// A 5m snapshot with `samples` probes and the given p95 and uptime.
fn snapshot(samples: u64, p95_ms: f64, uptime: f64) -> WindowSnapshot {
    WindowSnapshot {
        window: FIVE_MIN,
        samples,
        excluded_samples: 0,
        uptime_pct: Some(uptime),
        error_rate_pct: Some(100.0 - uptime),
        mean_ms: Some(p95_ms / 2.0),
        p95_ms: Some(p95_ms),
        p99_ms: Some(p95_ms * 1.2),
        components: Vec::new(),
    }
}

#[test]
fn up_down_up_with_thresholds_three_and_two() {
    let mut eval = HealthEvaluator::new(policy(3, 2, Vec::new())).unwrap();
    assert_eq!(eval.evaluate(&[]).health, Health::Unknown);

    let mut run = |up: bool| {
        eval.record_probe(up);
        eval.evaluate(&[])
    };
    let e = run(true);
    assert_eq!((e.health, e.changed), (Health::Healthy, true));
    // Two failures are not enough.
    for expected_failures in 1..=2 {
        let e = run(false);
        assert_eq!((e.health, e.changed), (Health::Healthy, false));
        assert_eq!(e.consecutive_failures, expected_failures);
        assert_eq!(e.consecutive_successes, 0);
    }
    let e = run(false);
    assert_eq!((e.health, e.changed, e.down), (Health::Down, true, true));
    assert_eq!(e.consecutive_failures, 3);
    // One success is not enough to come back with success_threshold 2 …
    let e = run(true);
    assert_eq!((e.health, e.changed), (Health::Down, false));
    assert_eq!(e.consecutive_successes, 1);
    // … and a failure in between starts the count again.
    assert_eq!(run(false).health, Health::Down);
    assert_eq!(run(true).health, Health::Down);
    let e = run(true);
    assert_eq!(
        (e.health, e.changed, e.down),
        (Health::Healthy, true, false)
    );
    assert_eq!(e.consecutive_successes, 2);
    assert_eq!(e.consecutive_failures, 0);
}

#[test]
fn alternating_probes_never_reach_down() {
    let mut eval = HealthEvaluator::new(policy(3, 1, Vec::new())).unwrap();
    let mut changes = 0;
    for i in 0..100 {
        eval.record_probe(i % 3 != 2);
        let e = eval.evaluate(&[]);
        assert_ne!(e.health, Health::Down);
        changes += usize::from(e.changed);
    }
    assert_eq!(changes, 1, "only Unknown → Healthy");
}

#[test]
fn failing_from_the_start_is_unknown_until_down() {
    let mut eval = HealthEvaluator::new(policy(3, 1, Vec::new())).unwrap();
    eval.record_probe(false);
    assert_eq!(eval.evaluate(&[]).health, Health::Unknown);
    eval.record_probe(false);
    assert_eq!(eval.evaluate(&[]).health, Health::Unknown);
    eval.record_probe(false);
    assert_eq!(eval.evaluate(&[]).health, Health::Down);
}

#[test]
fn unknown_until_min_samples_then_judged() {
    let mut uptime = rule("uptime", Metric::Uptime, Direction::Below, 99.5, 99.0);
    uptime.min_samples = 10;
    let mut eval = HealthEvaluator::new(policy(3, 1, vec![uptime])).unwrap();
    eval.record_probe(true);
    // One failure in five probes would be 80 % uptime: not judged yet.
    let e = eval.evaluate(&[snapshot(5, 10.0, 80.0)]);
    assert_eq!(e.health, Health::Unknown);
    assert_eq!(e.levels[0].value, None);
    assert_eq!(e.levels[0].level, Level::Ok);
    let e = eval.evaluate(&[snapshot(10, 10.0, 100.0)]);
    assert_eq!((e.health, e.changed), (Health::Healthy, true));
    assert_eq!(e.levels[0].value, Some(100.0));
    // A rule whose window is not among the snapshots is not judged either.
    assert_eq!(eval.evaluate(&[]).health, Health::Unknown);
}

#[test]
fn levels_map_to_health_and_down_and_suppressed_take_precedence() {
    let rules = vec![
        rule("uptime", Metric::Uptime, Direction::Below, 99.5, 99.0),
        p95_rule(),
    ];
    let mut eval = HealthEvaluator::new(policy(1, 1, rules)).unwrap();
    eval.record_probe(true);
    assert_eq!(
        eval.evaluate(&[snapshot(100, 100.0, 100.0)]).health,
        Health::Healthy
    );
    let e = eval.evaluate(&[snapshot(100, 600.0, 100.0)]);
    assert_eq!(e.health, Health::Degraded);
    assert_eq!(e.levels[1].level, Level::Warning);
    assert!(e.levels[1].changed);
    assert!(!e.levels[0].changed);
    let e = eval.evaluate(&[snapshot(100, 600.0, 98.0)]);
    assert_eq!(e.health, Health::Critical);
    assert_eq!(e.levels[0].level, Level::Critical);
    eval.record_probe(false);
    assert_eq!(
        eval.evaluate(&[snapshot(100, 600.0, 98.0)]).health,
        Health::Down
    );
    eval.set_suppressed(true);
    let e = eval.evaluate(&[snapshot(100, 600.0, 98.0)]);
    assert_eq!(e.health, Health::Suppressed);
    assert!(e.down, "Down is still tracked under suppression");
    eval.set_suppressed(false);
    assert_eq!(
        eval.evaluate(&[snapshot(100, 600.0, 98.0)]).health,
        Health::Down
    );
}

/// Deterministic noise in [-1, 1].
fn noise(seed: &mut u64) -> f64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    (*seed % 2001) as f64 / 1000.0 - 1.0
}

#[test]
fn hysteresis_stops_a_hovering_statistic_from_toggling_the_level() {
    let rule = p95_rule();
    let mut eval = HealthEvaluator::new(policy(3, 1, vec![rule.clone()])).unwrap();
    eval.record_probe(true);
    let mut seed = 7u64;
    let (mut naive_changes, mut changes, mut health_changes) = (0, 0, 0);
    let mut naive_prev = Level::Ok;
    // 200 evaluations with p95 hovering at 500 ± 30 ms.
    for _ in 0..200 {
        let p95 = 500.0 + 30.0 * noise(&mut seed);
        let naive = rule.level_of(p95);
        naive_changes += usize::from(naive != naive_prev);
        naive_prev = naive;
        let e = eval.evaluate(&[snapshot(100, p95, 100.0)]);
        changes += usize::from(e.levels[0].changed);
        health_changes += usize::from(e.changed);
    }
    assert!(
        naive_changes >= 40,
        "naive evaluator toggled {naive_changes} times"
    );
    // Entered Warning once and stayed: 500 ± 30 never clears 450.
    assert_eq!(changes, 1, "hysteresis toggled {changes} times");
    assert!(health_changes <= 2, "Unknown→Healthy→Degraded at most");
    assert_eq!(
        eval.evaluate(&[snapshot(100, 500.0, 100.0)]).health,
        Health::Degraded
    );
}

#[test]
fn a_level_clears_after_the_margin_and_clear_after_evaluations() {
    let mut eval = HealthEvaluator::new(policy(3, 1, vec![p95_rule()])).unwrap();
    eval.record_probe(true);
    assert_eq!(
        eval.evaluate(&[snapshot(100, 1200.0, 100.0)]).levels[0].level,
        Level::Critical
    );
    // Below the critical level but not past its clear value (900 ms): still Critical.
    for _ in 0..5 {
        assert_eq!(
            eval.evaluate(&[snapshot(100, 950.0, 100.0)]).levels[0].level,
            Level::Critical
        );
    }
    // Past 900 ms but still above the warning level: Warning after three evaluations.
    assert_eq!(
        eval.evaluate(&[snapshot(100, 800.0, 100.0)]).levels[0].level,
        Level::Critical
    );
    assert_eq!(
        eval.evaluate(&[snapshot(100, 800.0, 100.0)]).levels[0].level,
        Level::Critical
    );
    let e = eval.evaluate(&[snapshot(100, 800.0, 100.0)]);
    assert_eq!(
        (e.levels[0].level, e.levels[0].changed),
        (Level::Warning, true)
    );
    assert_eq!(e.health, Health::Degraded);
    // A relapse in between restarts the count.
    eval.evaluate(&[snapshot(100, 300.0, 100.0)]);
    eval.evaluate(&[snapshot(100, 470.0, 100.0)]);
    eval.evaluate(&[snapshot(100, 300.0, 100.0)]);
    eval.evaluate(&[snapshot(100, 300.0, 100.0)]);
    assert_eq!(
        eval.evaluate(&[snapshot(100, 300.0, 100.0)]).health,
        Health::Healthy
    );
    // Entering is immediate, even straight to Critical.
    assert_eq!(
        eval.evaluate(&[snapshot(100, 1001.0, 100.0)]).health,
        Health::Critical
    );
}

#[test]
fn clear_values_follow_the_metric() {
    let m = 0.1;
    let uptime = rule("u", Metric::Uptime, Direction::Below, 99.5, 99.0);
    assert!((uptime.clear_value(99.5, m) - 99.55).abs() < 1e-9);
    let errors = rule("e", Metric::ErrorRate, Direction::Above, 1.0, 5.0);
    assert!((errors.clear_value(1.0, m) - 0.9).abs() < 1e-9);
    assert!((p95_rule().clear_value(500.0, m) - 450.0).abs() < 1e-9);
    let hit_rate = rule(
        "h",
        Metric::ComponentValue("cache".into()),
        Direction::Below,
        60.0,
        40.0,
    );
    assert!((hit_rate.clear_value(60.0, m) - 66.0).abs() < 1e-9);
    assert!((hit_rate.clear_value(60.0, 0.0) - 60.0).abs() < 1e-9);
}

#[test]
fn without_hysteresis_levels_follow_the_value() {
    let mut policy = policy(3, 1, vec![p95_rule()]);
    policy.hysteresis = Hysteresis {
        margin_fraction: 0.0,
        clear_after: 1,
    };
    let mut eval = HealthEvaluator::new(policy).unwrap();
    eval.record_probe(true);
    assert_eq!(
        eval.evaluate(&[snapshot(9, 501.0, 100.0)]).health,
        Health::Degraded
    );
    assert_eq!(
        eval.evaluate(&[snapshot(9, 499.0, 100.0)]).health,
        Health::Healthy
    );
}

#[test]
fn component_rules_read_their_component() {
    let rules = vec![
        rule(
            "openai-errors",
            Metric::ComponentErrorRate("openai".into()),
            Direction::Above,
            5.0,
            10.0,
        ),
        rule(
            "cache-hits",
            Metric::ComponentValue("cache".into()),
            Direction::Below,
            60.0,
            40.0,
        ),
        rule(
            "db-availability",
            Metric::ComponentAvailability("database".into()),
            Direction::Below,
            99.0,
            95.0,
        ),
    ];
    let mut eval = HealthEvaluator::new(policy(3, 1, rules)).unwrap();
    eval.record_probe(true);
    let mut snap = snapshot(100, 10.0, 100.0);
    let component = |name: &str,
                     samples: u64,
                     availability: Option<f64>,
                     value_mean: Option<f64>| ComponentSnapshot {
        name: name.to_owned(),
        samples,
        availability_pct: availability,
        error_rate_pct: availability.map(|a| 100.0 - a),
        value_samples: if value_mean.is_some() { samples } else { 0 },
        value_mean,
        value_last: None,
    };
    snap.components = vec![
        component("openai", 100, Some(93.0), None),
        component("cache", 100, None, Some(55.0)),
    ];
    let e = eval.evaluate(&[snap.clone()]);
    let levels: Vec<_> = e
        .levels
        .iter()
        .map(|l| (l.name.as_str(), l.level, l.value))
        .collect();
    assert_eq!(
        levels,
        [
            ("openai-errors", Level::Warning, Some(7.0)),
            ("cache-hits", Level::Warning, Some(55.0)),
            // The database never reported: not judged.
            ("db-availability", Level::Ok, None),
        ]
    );
    assert_eq!(e.health, Health::Degraded);
    snap.components
        .push(component("database", 100, Some(90.0), None));
    assert_eq!(eval.evaluate(&[snap]).health, Health::Critical);
}

#[test]
fn flapping_endpoint_through_real_statistics_changes_health_far_less_often_than_a_naive_evaluator()
{
    // Error rate over 5m: warning above 5 %, critical above 20 %, 10 samples at least.
    let mut errors = rule("errors", Metric::ErrorRate, Direction::Above, 5.0, 20.0);
    errors.min_samples = 10;
    let mut eval = HealthEvaluator::new(policy(3, 1, vec![errors])).unwrap();
    let mut stats = MonitorStats::new(&[FIVE_MIN]).unwrap();
    let mut seed = 99u64;
    let (mut changes, mut naive_changes) = (0, 0);
    let mut naive_prev = None;
    // An hour at one probe every 5 s, about 6 % of probes failing at random.
    for i in 0..720 {
        let up = noise(&mut seed) > -0.88;
        let sample = Sample {
            at: t(i * 5),
            up,
            latency: Duration::from_millis(40),
            components: vec![ComponentSample {
                name: "database".into(),
                up: Some(true),
                value: Some(3.0),
            }],
        };
        stats.record(&sample);
        eval.record_probe(up);
        let e = eval.evaluate_stats(&stats, t(i * 5));
        assert_ne!(
            e.health,
            Health::Down,
            "no three failures in a row at this rate? {i}"
        );
        changes += usize::from(e.changed);
        if let Some(value) = e.levels[0].value {
            let naive = eval.policy().thresholds[0].level_of(value);
            naive_changes += usize::from(naive_prev.is_some_and(|p| p != naive));
            naive_prev = Some(naive);
        }
    }
    assert!(
        naive_changes >= 10,
        "the series does hover: {naive_changes}"
    );
    // With this seed: 10 health changes against 90 naive level changes.
    assert!(
        changes * 4 <= naive_changes,
        "{changes} health changes vs naive {naive_changes}"
    );
}

#[test]
fn restore_keeps_down_and_levels() {
    let mut eval = HealthEvaluator::new(policy(3, 2, vec![p95_rule()])).unwrap();
    eval.restore(
        true,
        0,
        5,
        &[("p95".to_owned(), Level::Critical)],
        Health::Down,
    );
    let e = eval.evaluate(&[snapshot(100, 950.0, 100.0)]);
    assert_eq!((e.health, e.changed), (Health::Down, false));
    assert_eq!(e.consecutive_failures, 5);
    eval.record_probe(true);
    eval.record_probe(true);
    let e = eval.evaluate(&[snapshot(100, 950.0, 100.0)]);
    // Up again; the restored Critical level is held (950 ms has not cleared 900 ms).
    assert_eq!((e.health, e.changed), (Health::Critical, true));
    assert!(!e.levels[0].changed);
}

#[test]
fn a_restart_keeps_a_restored_level_until_the_statistics_refill() {
    let mut p95 = p95_rule();
    p95.min_samples = 10;
    let mut eval = HealthEvaluator::new(policy(3, 1, vec![p95])).unwrap();
    eval.restore(
        false,
        4,
        0,
        &[("p95".to_owned(), Level::Critical)],
        Health::Critical,
    );
    // Fresh statistics after the restart: too few samples to judge, but still Critical (no
    // spurious "resolved").
    let e = eval.evaluate(&[snapshot(2, 100.0, 100.0)]);
    assert_eq!((e.health, e.changed), (Health::Critical, false));
    assert_eq!(e.levels[0].value, None);
    // Once judged, the level clears by the usual hysteresis.
    for _ in 0..2 {
        assert_eq!(
            eval.evaluate(&[snapshot(10, 100.0, 100.0)]).health,
            Health::Critical
        );
    }
    let e = eval.evaluate(&[snapshot(10, 100.0, 100.0)]);
    assert_eq!((e.health, e.changed), (Health::Healthy, true));
}

#[test]
fn bad_policies_are_refused_naming_the_rule() {
    assert_eq!(
        HealthEvaluator::new(policy(0, 1, Vec::new())).unwrap_err(),
        HealthError::ZeroThreshold {
            field: "failure_threshold"
        }
    );
    assert!(HealthEvaluator::new(policy(1, 0, Vec::new())).is_err());
    let mut no_level = p95_rule();
    no_level.warning = None;
    no_level.critical = None;
    let err = HealthEvaluator::new(policy(1, 1, vec![no_level])).unwrap_err();
    assert!(err.to_string().contains("\"p95\""), "{err}");
    let swapped = rule("uptime", Metric::Uptime, Direction::Below, 99.0, 99.5);
    assert!(matches!(
        HealthEvaluator::new(policy(1, 1, vec![swapped])),
        Err(HealthError::WarningNotMilder { .. })
    ));
    let mut nan = p95_rule();
    nan.warning = Some(f64::NAN);
    assert!(matches!(
        HealthEvaluator::new(policy(1, 1, vec![nan])),
        Err(HealthError::NotFinite { .. })
    ));
    assert!(matches!(
        HealthEvaluator::new(policy(1, 1, vec![p95_rule(), p95_rule()])),
        Err(HealthError::DuplicateName { .. })
    ));
    let mut bad_margin = policy(1, 1, Vec::new());
    bad_margin.hysteresis.margin_fraction = 1.5;
    assert!(matches!(
        HealthEvaluator::new(bad_margin),
        Err(HealthError::BadMargin { .. })
    ));
}

#[test]
fn a_numeric_body_field_is_thresholded_through_real_window_statistics() {
    // The guides' "cache hit rate alert < 60 %": the endpoint reports `hit_rate` in its body;
    // warning below 0.6, critical below 0.5, over 5 minutes, from 10 samples on.
    let mut hits = rule(
        "cache-hit-rate",
        Metric::ComponentValue("cache".into()),
        Direction::Below,
        0.6,
        0.5,
    );
    hits.min_samples = 10;
    let mut eval = HealthEvaluator::new(policy(3, 1, vec![hits])).unwrap();
    let mut stats = MonitorStats::new(&[FIVE_MIN]).unwrap();
    let mut probe = |i: i64, hit_rate: f64, eval: &mut HealthEvaluator| {
        stats.record(&Sample {
            at: t(i * 10),
            up: true,
            latency: Duration::from_millis(20),
            components: vec![ComponentSample {
                name: "cache".into(),
                up: Some(true),
                value: Some(hit_rate),
            }],
        });
        eval.record_probe(true);
        eval.evaluate_stats(&stats, t(i * 10))
    };
    // Ten minutes at 0.93: healthy, and the value read is the mean of the window.
    let mut last = None;
    for i in 0..60 {
        last = Some(probe(i, 0.93, &mut eval));
    }
    let e = last.unwrap();
    assert_eq!(e.health, Health::Healthy);
    assert!((e.levels[0].value.unwrap() - 0.93).abs() < 1e-6, "{e:?}");
    // The cache goes cold: within five minutes the window mean falls below 0.5.
    let mut critical_at = None;
    for i in 60..120 {
        let e = probe(i, 0.2, &mut eval);
        if e.health == Health::Critical && critical_at.is_none() {
            critical_at = Some(i);
            assert_eq!(e.levels[0].level, Level::Critical);
            assert!(e.levels[0].value.unwrap() < 0.5, "{e:?}");
        }
    }
    let critical_at = critical_at.expect("the cold cache never made the monitor Critical");
    // 0.93 → 0.2: the mean crosses 0.5 once about 59 % of the window is cold.
    assert!(
        (70..=95).contains(&critical_at),
        "critical at probe {critical_at}"
    );
}
