use chrono::{Datelike, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;
use chrono_tz::{America::New_York, Europe::Berlin};

use super::utc;
use crate::schedule::{CronSchedule, ScheduleError, parse_time_zone};

fn cron(expr: &str, tz: Tz) -> CronSchedule {
    CronSchedule::parse(expr, tz).unwrap()
}

fn instants(
    schedule: &CronSchedule,
    after: chrono::DateTime<Utc>,
    n: usize,
) -> Vec<chrono::DateTime<Utc>> {
    schedule
        .upcoming(after, n)
        .into_iter()
        .map(|t| t.with_timezone(&Utc))
        .collect()
}

#[test]
fn daily_at_two_utc() {
    let s = cron("0 2 * * *", Tz::UTC);
    assert_eq!(
        instants(&s, utc(2026, 1, 30, 2, 0), 3),
        vec![
            utc(2026, 1, 31, 2, 0),
            utc(2026, 2, 1, 2, 0),
            utc(2026, 2, 2, 2, 0)
        ]
    );
}

#[test]
fn every_fifteen_minutes() {
    let s = cron("*/15 * * * *", Tz::UTC);
    assert_eq!(
        instants(&s, utc(2026, 5, 1, 10, 7), 4),
        vec![
            utc(2026, 5, 1, 10, 15),
            utc(2026, 5, 1, 10, 30),
            utc(2026, 5, 1, 10, 45),
            utc(2026, 5, 1, 11, 0)
        ]
    );
    assert_eq!(
        s.min_period(),
        Some(std::time::Duration::from_secs(15 * 60))
    );
}

#[test]
fn monthly_descriptor_is_first_of_month_at_midnight_local() {
    let monthly = cron("@monthly", Berlin);
    let first = cron("0 0 1 * *", Berlin);
    let after = utc(2026, 1, 15, 0, 0);
    let got = monthly.upcoming(after, 12);
    assert_eq!(got, first.upcoming(after, 12));
    for (i, t) in got.iter().enumerate() {
        let month = (i as u32 + 1) % 12 + 1;
        assert_eq!(
            (t.month(), t.day(), t.hour(), t.minute()),
            (month, 1, 0, 0),
            "{t}"
        );
    }
    // Berlin is UTC+1 in winter and UTC+2 in summer: the instants move, the wall time does not.
    assert_eq!(got[0].with_timezone(&Utc), utc(2026, 1, 31, 23, 0));
    assert_eq!(got[3].with_timezone(&Utc), utc(2026, 4, 30, 22, 0));
}

#[test]
fn day_31_fires_only_in_months_that_have_it() {
    let s = cron("0 0 31 * *", Tz::UTC);
    let got = s.upcoming(utc(2026, 1, 1, 0, 0), 14);
    let mut expected = Vec::new();
    let (mut year, mut month) = (2026, 1);
    while expected.len() < 14 {
        if let Some(date) = NaiveDate::from_ymd_opt(year, month, 31) {
            expected.push(date.and_hms_opt(0, 0, 0).unwrap().and_utc());
        }
        month += 1;
        if month == 13 {
            (year, month) = (year + 1, 1);
        }
    }
    let got: Vec<_> = got.into_iter().map(|t| t.with_timezone(&Utc)).collect();
    assert_eq!(got, expected);
}

#[test]
fn descriptors_match_their_expansions() {
    let after = utc(2026, 3, 3, 3, 3);
    for (descriptor, expansion) in [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ] {
        assert_eq!(
            cron(descriptor, New_York).upcoming(after, 5),
            cron(expansion, New_York).upcoming(after, 5),
            "{descriptor}"
        );
    }
    let weekly = cron("@weekly", Tz::UTC).upcoming(after, 3);
    assert!(weekly.iter().all(|t| t.weekday() == chrono::Weekday::Sun));
}

#[test]
fn names_ranges_and_lists() {
    let s = cron("30 9 * JAN,JUL mon-fri", Tz::UTC);
    let got = s.upcoming(utc(2026, 6, 30, 12, 0), 30);
    assert_eq!(got[0].with_timezone(&Utc), utc(2026, 7, 1, 9, 30));
    for t in &got {
        assert!(matches!(t.month(), 1 | 7), "{t}");
        assert!(t.weekday().number_from_monday() <= 5, "{t}");
        assert_eq!((t.hour(), t.minute()), (9, 30));
    }
    // `5/20` means 5-59/20.
    let stepped = cron("5/20 0 * * *", Tz::UTC);
    let minutes: Vec<u32> = stepped
        .upcoming(utc(2026, 1, 1, 0, 0), 3)
        .iter()
        .map(|t| t.minute())
        .collect();
    assert_eq!(minutes, vec![5, 25, 45]);
}

#[test]
fn day_of_month_and_day_of_week_are_ored_when_both_restricted() {
    // February 2026: Fridays are 6, 13, 20, 27.
    let either = cron("0 0 10 * 5", Tz::UTC);
    let days: Vec<u32> = either
        .upcoming(utc(2026, 2, 1, 0, 0), 5)
        .iter()
        .map(|t| t.day())
        .collect();
    assert_eq!(days, vec![6, 10, 13, 20, 27]);
    // With day-of-month `*`, only the weekday restricts.
    let fridays = cron("0 0 * * 5", Tz::UTC);
    let days: Vec<u32> = fridays
        .upcoming(utc(2026, 2, 1, 0, 0), 4)
        .iter()
        .map(|t| t.day())
        .collect();
    assert_eq!(days, vec![6, 13, 20, 27]);
}

#[test]
fn new_york_spring_forward_gap_fires_once_at_the_transition() {
    // 2026-03-08: clocks jump from 02:00 EST (07:00Z) to 03:00 EDT.
    let s = cron("30 2 * * *", New_York);
    assert_eq!(
        instants(&s, utc(2026, 3, 7, 0, 0), 3),
        vec![
            utc(2026, 3, 7, 7, 30), // 02:30 EST
            utc(2026, 3, 8, 7, 0),  // 02:30 does not exist: 03:00 EDT
            utc(2026, 3, 9, 6, 30), // 02:30 EDT
        ]
    );
    // Several skipped times collapse into one firing; 03:00 itself is the same instant.
    let every = cron("*/15 2-3 * * *", New_York);
    let got = instants(&every, utc(2026, 3, 8, 6, 0), 5);
    assert_eq!(
        got,
        vec![
            utc(2026, 3, 8, 7, 0),
            utc(2026, 3, 8, 7, 15),
            utc(2026, 3, 8, 7, 30),
            utc(2026, 3, 8, 7, 45),
            utc(2026, 3, 9, 6, 0),
        ]
    );
}

#[test]
fn new_york_fall_back_repeat_fires_once() {
    // 2026-11-01: 01:00-02:00 happens twice (EDT 05:00Z-06:00Z, then EST 06:00Z-07:00Z).
    let s = cron("30 1 * * *", New_York);
    assert_eq!(
        instants(&s, utc(2026, 10, 31, 12, 0), 2),
        vec![utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]
    );
    let hourly = cron("0 * * * *", New_York);
    assert_eq!(
        instants(&hourly, utc(2026, 11, 1, 4, 30), 3),
        vec![
            utc(2026, 11, 1, 5, 0), // 01:00 EDT
            utc(2026, 11, 1, 7, 0), // 02:00 EST; 01:00 EST (06:00Z) is not repeated
            utc(2026, 11, 1, 8, 0),
        ]
    );
}

#[test]
fn berlin_gap_and_repeat() {
    // 2026-03-29 02:00 CET -> 03:00 CEST (01:00Z); 2026-10-25 03:00 CEST -> 02:00 CET (01:00Z).
    let s = cron("30 2 * * *", Berlin);
    assert_eq!(
        instants(&s, utc(2026, 3, 28, 0, 0), 3),
        vec![
            utc(2026, 3, 28, 1, 30),
            utc(2026, 3, 29, 1, 0),
            utc(2026, 3, 30, 0, 30)
        ]
    );
    assert_eq!(
        instants(&s, utc(2026, 10, 24, 12, 0), 2),
        vec![utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    );
}

#[test]
fn previous_before_mirrors_next_after() {
    let cases = [
        ("0 2 * * *", New_York),
        ("*/15 2 * * *", New_York),
        ("30 1 * * *", New_York),
        ("30 2 * * *", Berlin),
        ("0 0 31 * *", Berlin),
        ("0 0 13 * 5", Tz::UTC),
    ];
    for (expr, tz) in cases {
        let s = cron(expr, tz);
        let mut t = utc(2026, 1, 1, 0, 0);
        let firings = instants(&s, t, 40);
        for pair in firings.windows(2) {
            assert_eq!(s.previous_before(pair[1]), Some(pair[0]), "{expr}");
            assert_eq!(s.next_after(pair[0]), Some(pair[1]), "{expr}");
        }
        // Around the DST changes too.
        for start in [
            utc(2026, 3, 7, 0, 0),
            utc(2026, 3, 28, 0, 0),
            utc(2026, 10, 24, 0, 0),
            utc(2026, 10, 31, 0, 0),
        ] {
            t = start;
            let firings = instants(&s, t, 10);
            for pair in firings.windows(2) {
                assert_eq!(
                    s.previous_before(pair[1]),
                    Some(pair[0]),
                    "{expr} near {start}"
                );
            }
        }
    }
}

#[test]
fn rejects_what_kubernetes_rejects() {
    let reason = |expr: &str| match CronSchedule::parse(expr, Tz::UTC) {
        Err(ScheduleError::InvalidCron { reason, .. }) => reason,
        other => panic!("{expr}: expected an error, got {other:?}"),
    };
    assert!(reason("0 0 2 * * *").contains("6 fields"));
    assert!(reason("0 0 2 * * * 2026").contains("seconds and years"));
    assert!(reason("TZ=Europe/Berlin 0 2 * * *").contains("use spec.timeZone"));
    assert!(reason("CRON_TZ=UTC 0 2 * * *").contains("use spec.timeZone"));
    assert!(reason("60 * * * *").contains("minute field: value 60 is out of range 0-59"));
    assert!(reason("0 24 * * *").contains("hour field"));
    assert!(reason("0 0 0 * *").contains("day-of-month"));
    assert!(reason("0 0 * 13 *").contains("month field"));
    assert!(reason("0 0 * * 7").contains("use 0 for Sunday"));
    assert!(reason("0 0 * FOO *").contains("not a number or a name"));
    assert!(reason("*/0 * * * *").contains("step must be at least 1"));
    assert!(reason("5-1 * * * *").contains("starts after it ends"));
    assert!(reason("0 0 30 2 *").contains("never fires"));
    assert!(reason("@every 5m").contains("@every is not supported"));
    assert!(reason("@fortnightly").contains("unknown descriptor"));
    assert!(reason("").contains("empty"));
    assert!(reason("* * *").contains("3 fields"));
    // The error names the expression for the user.
    let message = CronSchedule::parse("61 * * * *", Tz::UTC)
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("invalid cron expression \"61 * * * *\": "),
        "{message}"
    );
    // Accepted forms.
    for ok in ["0 0 29 2 *", "0 0 ? * MON", "0 0 1-7 * *"] {
        assert!(CronSchedule::parse(ok, Tz::UTC).is_ok(), "{ok}");
    }
}

#[test]
fn leap_day_fires_every_four_years() {
    let s = cron("0 0 29 2 *", Tz::UTC);
    let years: Vec<i32> = s
        .upcoming(utc(2026, 1, 1, 0, 0), 3)
        .iter()
        .map(|t| t.year())
        .collect();
    assert_eq!(years, vec![2028, 2032, 2036]);
    assert_eq!(
        s.previous_before(utc(2026, 1, 1, 0, 0)),
        Some(utc(2024, 2, 29, 0, 0))
    );
}

#[test]
fn time_zone_names() {
    assert_eq!(parse_time_zone("Europe/Berlin"), Ok(Berlin));
    assert_eq!(parse_time_zone("UTC"), Ok(Tz::UTC));
    for bad in [
        "Mars/Olympus",
        "europe/berlin",
        "",
        " UTC",
        "EST5EDT,M3.2.0,M11.1.0",
    ] {
        let err = parse_time_zone(bad).unwrap_err();
        assert!(
            err.to_string().contains("IANA time zone name"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn nominal_periods() {
    let hours = |h: u64| Some(std::time::Duration::from_secs(h * 3600));
    let days = |d: u64| hours(24 * d);
    let s = |expr: &str| cron(expr, New_York);
    assert_eq!(s("30 2 * * *").min_period(), days(1));
    assert_eq!(s("30 2 * * *").max_period(), days(1));
    assert_eq!(s("0 0 1 * *").min_period(), days(28));
    assert_eq!(s("0 0 1 * *").max_period(), days(31));
    // 31 July to 31 August; 31 August to 31 October.
    assert_eq!(s("0 0 31 * *").min_period(), days(31));
    assert_eq!(s("0 0 31 * *").max_period(), days(61));
    assert_eq!(s("0 0 29 2 *").max_period(), days(4 * 365 + 1));
    assert_eq!(s("0 9,17 * * MON-FRI").min_period(), hours(8));
    assert_eq!(s("0 9,17 * * MON-FRI").max_period(), hours(64));
    assert_eq!(
        s("*/20 * * * *").max_period(),
        Some(std::time::Duration::from_secs(20 * 60))
    );
}
