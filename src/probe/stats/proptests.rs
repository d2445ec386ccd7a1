//! Property test: for any in-order series, a window snapshot equals a direct computation over
//! the samples the documented window edge admits (counts and mean exactly, quantiles within the
//! documented ±3 %), including samples that arrive out of order.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use proptest::prelude::*;

use super::*;

/// Windows of very different bucket widths (84 ms … 25 s).
const WINDOWS_MS: [u64; 4] = [1_000, 7_000, 60_000, 300_000];

/// The reference: which samples a window ending at `now_ms` counts, per the module docs (a
/// sample counts when the bucket it fell in started at or after `now - W`).
fn admitted(window_ms: i64, now_ms: i64, at_ms: i64) -> bool {
    let width = (window_ms + 11) / 12;
    let bucket_start = at_ms.div_euclid(width) * width;
    bucket_start >= now_ms - window_ms && at_ms.div_euclid(width) <= now_ms.div_euclid(width)
}

proptest! {
    #[test]
    fn snapshots_match_a_direct_computation(
        series in prop::collection::vec(
            (0i64..4_000, any::<bool>(), 1u64..5_000_000, prop::bool::weighted(0.2)),
            1..300,
        ),
        tail_ms in 0i64..400_000,
    ) {
        let windows: Vec<Duration> = WINDOWS_MS.iter().map(|&ms| Duration::from_millis(ms)).collect();
        let mut stats = MonitorStats::new(&windows).unwrap();
        let start = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).single().unwrap().timestamp_millis();
        let mut t = start;
        // Samples in time order; `swap` records one before its predecessor (a late arrival).
        let mut order: Vec<(i64, bool, u64)> = Vec::new();
        for &(gap, up, micros, swap) in &series {
            t += gap;
            order.push((t, up, micros));
            if swap && order.len() >= 2 {
                let n = order.len();
                order.swap(n - 1, n - 2);
            }
        }
        for &(at, up, micros) in &order {
            stats.record(&Sample {
                at: Utc.timestamp_millis_opt(at).single().unwrap(),
                up,
                latency: Duration::from_micros(micros),
                components: Vec::new(),
            });
        }
        let now_ms = t + tail_ms;
        let now = Utc.timestamp_millis_opt(now_ms).single().unwrap();
        for &window_ms in &WINDOWS_MS {
            let window_ms = window_ms as i64;
            // A sample whose bucket is `slots` or more behind the newest seen is dropped.
            let width = (window_ms + 11) / 12;
            let slots = (window_ms + width - 1) / width + 1;
            let mut newest = i64::MIN;
            let mut samples = Vec::new();
            for &(at, up, micros) in &order {
                let index = at.div_euclid(width);
                newest = newest.max(index);
                if index > newest - slots {
                    samples.push((at, up, micros));
                }
            }
            let inside: Vec<_> = samples
                .iter()
                .filter(|(at, _, _)| admitted(window_ms, now_ms, *at))
                .collect();
            let snap = stats.snapshot(Duration::from_millis(window_ms as u64), now).unwrap();
            let total = inside.len() as u64;
            prop_assert_eq!(snap.samples, total);
            let up = inside.iter().filter(|(_, up, _)| *up).count() as u64;
            prop_assert_eq!(snap.uptime_pct, (total > 0).then(|| up as f64 * 100.0 / total as f64));
            let sum: u128 = inside.iter().map(|(_, _, us)| u128::from(*us)).sum();
            prop_assert_eq!(snap.mean_ms, (total > 0).then(|| sum as f64 / total as f64 / 1000.0));
            if total == 0 {
                prop_assert_eq!(snap.p99_ms, None);
                continue;
            }
            let mut sorted: Vec<u64> = inside.iter().map(|(_, _, us)| *us).collect();
            sorted.sort_unstable();
            for (q, reported) in [(0.95, snap.p95_ms), (0.99, snap.p99_ms)] {
                let rank = ((q * total as f64).ceil() as usize).max(1);
                let exact_ms = sorted[rank - 1] as f64 / 1000.0;
                let reported = reported.unwrap();
                let tolerance = 0.010 + exact_ms * 0.03 + 1e-9;
                prop_assert!(
                    (reported - exact_ms).abs() <= tolerance,
                    "q{} reported {} exact {} over {}ms", q, reported, exact_ms, window_ms
                );
            }
        }
    }
}
