//! Schedule edge cases in the job's time zone, under the Kubernetes CronJob controller's DST
//! rule (gap times skipped, repeated times fired twice) next to the ISC rule used elsewhere.
//! Expected instants are worked out by hand from the 2026 transitions: America/New_York
//! 2026-03-08 02:00 EST → 03:00 EDT and 2026-11-01 02:00 EDT → 01:00 EST; Europe/Berlin
//! 2026-03-29 02:00 CET → 03:00 CEST and 2026-10-25 03:00 CEST → 02:00 CET.

use std::time::Duration;

use chrono::{Datelike, TimeDelta, Timelike};
use chrono_tz::Tz;

use super::utc;
use crate::schedule::watch::{
    JobHealth, JobMemory, RunObservation, RunOutcome, RunTrigger, WatchPolicy, evaluate,
};
use crate::schedule::{CronSchedule, DstRule};

fn k8s(expr: &str, tz: Tz) -> CronSchedule {
    CronSchedule::parse(expr, tz)
        .unwrap()
        .with_dst_rule(DstRule::Kubernetes)
}

fn isc(expr: &str, tz: Tz) -> CronSchedule {
    CronSchedule::parse(expr, tz).unwrap()
}

fn firings(s: &CronSchedule, from: chrono::DateTime<chrono::Utc>, n: usize) -> Vec<String> {
    s.upcoming(from, n)
        .iter()
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%m-%d %H:%M")
                .to_string()
        })
        .collect()
}

#[test]
fn new_york_gap_is_skipped_like_kubernetes() {
    let ny = Tz::America__New_York;
    let after = utc(2026, 3, 7, 8, 0);
    // 02:30 does not exist on 8 March: Kubernetes runs nothing that day.
    assert_eq!(
        k8s("30 2 * * *", ny).next_after(after),
        Some(utc(2026, 3, 9, 6, 30))
    );
    assert_eq!(
        isc("30 2 * * *", ny).next_after(after),
        Some(utc(2026, 3, 8, 7, 0))
    );
    assert_eq!(
        k8s("30 2 * * *", ny).previous_before(utc(2026, 3, 9, 6, 0)),
        Some(utc(2026, 3, 7, 7, 30))
    );
    // Every quarter hour: 01:45 EST, then straight to 03:00 EDT.
    assert_eq!(
        firings(&k8s("*/15 * * * *", ny), utc(2026, 3, 8, 6, 40), 3),
        ["03-08 06:45", "03-08 07:00", "03-08 07:15"]
    );
}

#[test]
fn new_york_repeat_fires_twice_like_kubernetes() {
    let ny = Tz::America__New_York;
    let from = utc(2026, 11, 1, 4, 0);
    assert_eq!(
        firings(&k8s("30 1 * * *", ny), from, 3),
        ["11-01 05:30", "11-01 06:30", "11-02 06:30"]
    );
    assert_eq!(
        firings(&isc("30 1 * * *", ny), from, 2),
        ["11-01 05:30", "11-02 06:30"]
    );
    assert_eq!(
        k8s("30 1 * * *", ny).previous_before(utc(2026, 11, 1, 7, 0)),
        Some(utc(2026, 11, 1, 6, 30))
    );
    assert_eq!(
        isc("30 1 * * *", ny).previous_before(utc(2026, 11, 1, 7, 0)),
        Some(utc(2026, 11, 1, 5, 30))
    );
    // Hourly stays hourly in real time: 01:00 EDT and 01:00 EST both fire.
    assert_eq!(
        firings(&k8s("0 * * * *", ny), utc(2026, 11, 1, 3, 30), 4),
        ["11-01 04:00", "11-01 05:00", "11-01 06:00", "11-01 07:00"]
    );
    assert_eq!(
        firings(&isc("0 * * * *", ny), utc(2026, 11, 1, 3, 30), 3),
        ["11-01 04:00", "11-01 05:00", "11-01 07:00"]
    );
}

#[test]
fn berlin_gap_and_repeat() {
    let berlin = Tz::Europe__Berlin;
    assert_eq!(
        k8s("30 2 * * *", berlin).next_after(utc(2026, 3, 28, 2, 0)),
        Some(utc(2026, 3, 30, 0, 30))
    );
    assert_eq!(
        isc("30 2 * * *", berlin).next_after(utc(2026, 3, 28, 2, 0)),
        Some(utc(2026, 3, 29, 1, 0))
    );
    assert_eq!(
        firings(&k8s("30 2 * * *", berlin), utc(2026, 10, 24, 23, 0), 3),
        ["10-25 00:30", "10-25 01:30", "10-26 01:30"]
    );
}

#[test]
fn a_year_of_daily_runs_has_one_day_less_and_one_more_at_the_transitions() {
    let ny = Tz::America__New_York;
    let (from, to) = (utc(2026, 1, 1, 5, 0), utc(2027, 1, 1, 5, 0));
    let count = |s: CronSchedule| {
        let mut n = 0;
        let mut t = from;
        while let Some(next) = s.next_after(t).filter(|next| *next < to) {
            n += 1;
            t = next;
        }
        n
    };
    assert_eq!(count(k8s("30 2 * * *", ny)), 364);
    assert_eq!(count(k8s("30 1 * * *", ny)), 366);
    assert_eq!(count(k8s("30 3 * * *", ny)), 365);
    assert_eq!(count(isc("30 2 * * *", ny)), 365);
    assert_eq!(count(isc("30 1 * * *", ny)), 365);
}

#[test]
fn monthly_first_day_and_day_31() {
    let berlin = Tz::Europe__Berlin;
    let monthly = k8s("@monthly", berlin).upcoming(utc(2026, 1, 15, 0, 0), 12);
    for (k, t) in monthly.iter().enumerate() {
        let month = (k as u32 + 1) % 12 + 1;
        assert_eq!((t.month(), t.day(), t.hour(), t.minute()), (month, 1, 0, 0));
        let summer = (4..=10).contains(&month);
        let utc_hour = t.with_timezone(&chrono::Utc).hour();
        assert_eq!(utc_hour, if summer { 22 } else { 23 }, "{t}");
    }
    let ny = Tz::America__New_York;
    let first = k8s("0 9 1 * *", ny).upcoming(utc(2026, 1, 1, 0, 0), 12);
    for (k, t) in first.iter().enumerate() {
        let month = k as u32 + 1;
        assert_eq!((t.month(), t.day(), t.hour()), (month, 1, 9));
        let summer = (4..=10).contains(&month);
        let utc_hour = t.with_timezone(&chrono::Utc).hour();
        assert_eq!(utc_hour, if summer { 13 } else { 14 }, "{t}");
    }
    // Months without a 31st are skipped, not moved to the 30th or the 1st.
    let days: Vec<(u32, u32)> = k8s("0 0 31 * *", Tz::UTC)
        .upcoming(utc(2026, 1, 1, 0, 0), 7)
        .iter()
        .map(|t| (t.month(), t.day()))
        .collect();
    assert_eq!(
        days,
        [
            (1, 31),
            (3, 31),
            (5, 31),
            (7, 31),
            (8, 31),
            (10, 31),
            (12, 31)
        ]
    );
}

fn daily_policy(rule: DstRule, expr: &str) -> WatchPolicy {
    WatchPolicy {
        schedule: CronSchedule::parse(expr, Tz::America__New_York)
            .unwrap()
            .with_dst_rule(rule),
        late_after: Duration::from_secs(300),
        failure_threshold: 1,
        dead_mans_switch: None,
        starting_deadline: None,
        suspended: false,
    }
}

fn ran(due: chrono::DateTime<chrono::Utc>) -> JobMemory {
    let mut memory = JobMemory::default();
    memory.observe(&[RunObservation {
        name: "previous".into(),
        trigger: RunTrigger::Scheduled,
        scheduled_for: Some(due),
        started_at: due,
        finished_at: Some(due + TimeDelta::seconds(10)),
        outcome: RunOutcome::Succeeded,
        status_code: Some(200),
        message: None,
    }]);
    memory
}

#[test]
fn lateness_follows_the_runs_kubernetes_really_makes_on_transition_days() {
    // Gap: no 02:30 run on 8 March, so none is late under the Kubernetes rule.
    let memory = ran(utc(2026, 3, 7, 7, 30));
    let since = utc(2026, 3, 1, 0, 0);
    let now = utc(2026, 3, 8, 8, 0);
    let report = evaluate(
        &daily_policy(DstRule::Kubernetes, "30 2 * * *"),
        &memory,
        since,
        &[],
        now,
    );
    assert_eq!(report.health, JobHealth::Healthy);
    assert_eq!(report.next_run, Some(utc(2026, 3, 9, 6, 30)));
    let isc = evaluate(
        &daily_policy(DstRule::Vixie, "30 2 * * *"),
        &memory,
        since,
        &[],
        now,
    );
    assert_eq!(isc.health, JobHealth::Late);
    // Repeat: Kubernetes starts a second 01:30 run; its absence is late.
    let memory = ran(utc(2026, 11, 1, 5, 30));
    let now = utc(2026, 11, 1, 6, 40);
    let report = evaluate(
        &daily_policy(DstRule::Kubernetes, "30 1 * * *"),
        &memory,
        since,
        &[],
        now,
    );
    assert_eq!(report.health, JobHealth::Late);
    assert!(
        report.message.contains("2026-11-01 01:30 EST"),
        "{}",
        report.message
    );
}

/// The Kubernetes rule against an independent oracle: robfig/cron fires at every instant whose
/// local wall-clock time matches the fields, so walking every UTC minute and testing its local
/// time gives the expected firings. Five days each side of the 2026 transitions of New York,
/// Berlin and Lord Howe (whose clocks move by 30 minutes).
#[test]
fn kubernetes_rule_matches_a_minute_by_minute_walk_around_transitions() {
    use chrono::Datelike as _;
    type Matcher = fn(&chrono::DateTime<Tz>) -> bool;
    let expressions: [(&str, Matcher); 4] = [
        ("30 2 * * *", |l| l.minute() == 30 && l.hour() == 2),
        ("*/20 1-3 * * *", |l| {
            l.minute() % 20 == 0 && (1..=3).contains(&l.hour())
        }),
        ("0 * * * *", |l| l.minute() == 0),
        ("15 0,1,2 * * 0", |l| {
            l.minute() == 15 && [0, 1, 2].contains(&l.hour()) && l.weekday() == chrono::Weekday::Sun
        }),
    ];
    let windows = [
        (Tz::America__New_York, utc(2026, 3, 8, 7, 0)),
        (Tz::America__New_York, utc(2026, 11, 1, 6, 0)),
        (Tz::Europe__Berlin, utc(2026, 3, 29, 1, 0)),
        (Tz::Europe__Berlin, utc(2026, 10, 25, 1, 0)),
        (Tz::Australia__Lord_Howe, utc(2026, 4, 4, 15, 0)),
        (Tz::Australia__Lord_Howe, utc(2026, 10, 3, 15, 30)),
    ];
    for (tz, around) in windows {
        let (from, to) = (around - TimeDelta::days(5), around + TimeDelta::days(5));
        for (expr, matches) in expressions {
            let mut expected = Vec::new();
            let mut t = from + TimeDelta::minutes(1);
            while t < to {
                if matches(&t.with_timezone(&tz)) {
                    expected.push(t);
                }
                t += TimeDelta::minutes(1);
            }
            let schedule = k8s(expr, tz);
            let mut forward = Vec::new();
            let mut cursor = from;
            while let Some(next) = schedule.next_after(cursor).filter(|n| *n < to) {
                forward.push(next);
                cursor = next;
            }
            assert_eq!(
                forward, expected,
                "{expr} in {tz} around {around}, next_after"
            );
            let mut backward = Vec::new();
            let mut cursor = to;
            while let Some(previous) = schedule.previous_before(cursor).filter(|p| *p > from) {
                backward.push(previous);
                cursor = previous;
            }
            backward.reverse();
            assert_eq!(
                backward, expected,
                "{expr} in {tz} around {around}, previous_before"
            );
        }
    }
}
