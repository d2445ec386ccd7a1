use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::America::New_York;
use chrono_tz::Tz;

use super::{local, utc};
use crate::schedule::{CronSchedule, RecurrenceRule, Window, WindowSchedule};

fn window(start: DateTime<Utc>, end: DateTime<Utc>) -> Window {
    Window { start, end }
}

/// Daily occurrences at 01:00 and 02:00 UTC lasting `minutes`.
fn two_a_night(minutes: u64) -> WindowSchedule {
    WindowSchedule::Recurring {
        rule: RecurrenceRule::parse(
            "FREQ=DAILY;BYHOUR=1,2;BYMINUTE=0",
            local(2026, 1, 1, 0, 0),
            Tz::UTC,
            &[],
        )
        .unwrap(),
        duration: Duration::from_secs(minutes * 60),
    }
}

#[test]
fn overlapping_occurrences_merge() {
    let s = two_a_night(90);
    assert_eq!(
        s.next_windows(utc(2026, 2, 1, 12, 0), 3),
        vec![
            window(utc(2026, 2, 2, 1, 0), utc(2026, 2, 2, 3, 30)),
            window(utc(2026, 2, 3, 1, 0), utc(2026, 2, 3, 3, 30)),
            window(utc(2026, 2, 4, 1, 0), utc(2026, 2, 4, 3, 30)),
        ]
    );
}

#[test]
fn adjacent_occurrences_merge_and_disjoint_ones_do_not() {
    let adjacent = two_a_night(60);
    assert_eq!(
        adjacent.next_windows(utc(2026, 2, 1, 12, 0), 1),
        vec![window(utc(2026, 2, 2, 1, 0), utc(2026, 2, 2, 3, 0))]
    );
    let disjoint = two_a_night(30);
    assert_eq!(
        disjoint.next_windows(utc(2026, 2, 1, 12, 0), 2),
        vec![
            window(utc(2026, 2, 2, 1, 0), utc(2026, 2, 2, 1, 30)),
            window(utc(2026, 2, 2, 2, 0), utc(2026, 2, 2, 2, 30)),
        ]
    );
}

#[test]
fn open_window_comes_first_with_its_real_start() {
    let s = two_a_night(90);
    let merged = window(utc(2026, 2, 2, 1, 0), utc(2026, 2, 2, 3, 30));
    for inside in [
        utc(2026, 2, 2, 1, 0),
        utc(2026, 2, 2, 2, 45),
        utc(2026, 2, 2, 3, 29),
    ] {
        assert_eq!(s.open_at(inside), Some(merged), "{inside}");
        assert_eq!(s.next_windows(inside, 1), vec![merged], "{inside}");
    }
    assert_eq!(s.open_at(utc(2026, 2, 2, 3, 30)), None, "end is exclusive");
    assert_eq!(s.open_at(utc(2026, 2, 2, 0, 59)), None);
}

#[test]
fn previous_is_the_last_closed_window() {
    let s = two_a_night(90);
    let day1 = window(utc(2026, 2, 1, 1, 0), utc(2026, 2, 1, 3, 30));
    let day2 = window(utc(2026, 2, 2, 1, 0), utc(2026, 2, 2, 3, 30));
    assert_eq!(s.previous(utc(2026, 2, 2, 0, 0)), Some(day1));
    assert_eq!(
        s.previous(utc(2026, 2, 2, 2, 0)),
        Some(day1),
        "day 2 is still open"
    );
    assert_eq!(s.previous(utc(2026, 2, 2, 3, 30)), Some(day2));
}

#[test]
fn one_off_window() {
    let s = WindowSchedule::one_off(utc(2026, 5, 1, 22, 0), utc(2026, 5, 2, 2, 0)).unwrap();
    let w = window(utc(2026, 5, 1, 22, 0), utc(2026, 5, 2, 2, 0));
    assert_eq!(s.next_windows(utc(2026, 4, 1, 0, 0), 5), vec![w]);
    assert_eq!(s.next_windows(utc(2026, 5, 2, 2, 0), 5), vec![]);
    assert_eq!(s.open_at(utc(2026, 5, 2, 1, 0)), Some(w));
    assert_eq!(s.open_at(utc(2026, 5, 2, 2, 0)), None);
    assert_eq!(s.previous(utc(2026, 5, 2, 1, 0)), None);
    assert_eq!(s.previous(utc(2026, 5, 3, 0, 0)), Some(w));
    assert_eq!(s.min_period(), None);
    assert!(WindowSchedule::one_off(utc(2026, 5, 2, 0, 0), utc(2026, 5, 1, 0, 0)).is_err());
}

#[test]
fn cron_windows_across_dst_keep_their_duration() {
    let s = WindowSchedule::Cron {
        cron: CronSchedule::parse("30 2 * * SUN", New_York).unwrap(),
        duration: Duration::from_secs(2 * 3600),
    };
    let got = s.next_windows(utc(2026, 3, 1, 12, 0), 2);
    assert_eq!(
        got,
        vec![
            window(utc(2026, 3, 8, 7, 0), utc(2026, 3, 8, 9, 0)),
            window(utc(2026, 3, 15, 6, 30), utc(2026, 3, 15, 8, 30)),
        ]
    );
    assert!(got.iter().all(|w| w.end - w.start == TimeDelta::hours(2)));
    assert_eq!(s.min_period(), Some(Duration::from_secs(7 * 86_400)));
}

#[test]
fn next_windows_agree_with_open_at() {
    let s = WindowSchedule::Recurring {
        rule: RecurrenceRule::parse(
            "FREQ=MONTHLY;BYDAY=1TU;BYHOUR=2;BYMINUTE=0",
            local(2026, 1, 1, 0, 0),
            New_York,
            &[],
        )
        .unwrap(),
        duration: Duration::from_secs(4 * 3600),
    };
    let windows = s.next_windows(utc(2026, 1, 1, 0, 0), 12);
    assert_eq!(windows.len(), 12);
    for w in &windows {
        assert_eq!(s.open_at(w.start), Some(*w));
        assert_eq!(s.open_at(w.end - TimeDelta::seconds(1)), Some(*w));
        assert_eq!(s.open_at(w.end), None);
        assert_eq!(s.previous(w.end), Some(*w));
    }
}

/// Not a timed assertion: prints how long 10,000 `open_at` and `next_windows` calls take, for
/// the record. Run with `cargo test --release -- --ignored --nocapture window_cost`.
#[test]
#[ignore]
fn window_cost() {
    let s = WindowSchedule::Recurring {
        rule: RecurrenceRule::parse(
            "FREQ=MONTHLY;BYDAY=1TU;BYHOUR=2;BYMINUTE=0",
            local(2015, 1, 1, 0, 0),
            New_York,
            &[],
        )
        .unwrap(),
        duration: Duration::from_secs(4 * 3600),
    };
    let cron = WindowSchedule::Cron {
        cron: CronSchedule::parse("0 2 * * 2", New_York).unwrap(),
        duration: Duration::from_secs(4 * 3600),
    };
    let minutely = WindowSchedule::Recurring {
        rule: RecurrenceRule::parse(
            "FREQ=MINUTELY;INTERVAL=30;BYHOUR=1,2,3",
            local(2015, 1, 1, 0, 0),
            New_York,
            &[],
        )
        .unwrap(),
        duration: Duration::from_secs(600),
    };
    for (name, s) in [
        ("rrule", &s),
        ("cron", &cron),
        ("minutely rrule", &minutely),
    ] {
        let started = std::time::Instant::now();
        let mut open = 0;
        for i in 0..10_000i64 {
            let t = utc(2026, 1, 1, 0, 0) + TimeDelta::minutes(i * 53);
            open += usize::from(s.open_at(t).is_some());
        }
        let open_cost = started.elapsed();
        let started = std::time::Instant::now();
        for i in 0..10_000i64 {
            let t = utc(2026, 1, 1, 0, 0) + TimeDelta::minutes(i * 53);
            assert_eq!(s.next_windows(t, 1).len(), 1);
        }
        println!(
            "{name}: 10k open_at {open_cost:?} ({open} open), 10k next_windows(1) {:?}",
            started.elapsed()
        );
    }
}
