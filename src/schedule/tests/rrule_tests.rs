use chrono::{DateTime, Datelike, Days, NaiveDate, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use chrono_tz::{America::New_York, Europe::Berlin};

use super::{local, utc};
use crate::schedule::RecurrenceRule;

fn rule(text: &str, dtstart: chrono::NaiveDateTime, tz: Tz) -> RecurrenceRule {
    RecurrenceRule::parse(text, dtstart, tz, &[]).unwrap()
}

fn instants(rule: &RecurrenceRule, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
    rule.upcoming(after, n)
        .into_iter()
        .map(|t| t.with_timezone(&Utc))
        .collect()
}

/// The first `weekday` of a month, found by walking its days.
fn first_weekday(year: i32, month: u32, weekday: Weekday) -> NaiveDate {
    let mut date = NaiveDate::from_ymd_opt(year, month, 1).unwrap();
    while date.weekday() != weekday {
        date = date.succ_opt().unwrap();
    }
    date
}

#[test]
fn first_tuesday_at_two_in_new_york_for_twelve_months() {
    let r = rule("FREQ=MONTHLY;BYDAY=1TU", local(2025, 11, 4, 2, 0), New_York);
    let got = r.upcoming(utc(2026, 1, 10, 0, 0), 12);
    let mut expected = Vec::new();
    for i in 0..12u32 {
        let (year, month) = (2026 + ((i + 1) / 12) as i32, (i + 1) % 12 + 1);
        let date = first_weekday(year, month, Weekday::Tue);
        let wall = date.and_hms_opt(2, 0, 0).unwrap();
        expected.push(New_York.from_local_datetime(&wall).single().unwrap());
    }
    assert_eq!(got, expected);
    // The wall-clock hour stays 02:00 on both sides of the DST changes.
    assert!(got.iter().all(|t| t.hour() == 2 && t.minute() == 0));
    let offsets: std::collections::BTreeSet<i64> = got
        .iter()
        .map(|t| (t.naive_local() - t.naive_utc()).num_hours())
        .collect();
    assert_eq!(offsets, [-5, -4].into_iter().collect());
}

#[test]
fn first_sunday_quarterly_in_utc_for_two_years() {
    let after = utc(2025, 12, 31, 0, 0);
    let mut expected = Vec::new();
    for year in [2026, 2027] {
        for month in [1, 4, 7, 10] {
            let date = first_weekday(year, month, Weekday::Sun);
            expected.push(date.and_hms_opt(0, 0, 0).unwrap().and_utc());
        }
    }
    let start = local(2026, 1, 4, 0, 0);
    for text in [
        "FREQ=MONTHLY;INTERVAL=3;BYDAY=1SU",
        "FREQ=MONTHLY;BYMONTH=1,4,7,10;BYDAY=1SU",
        "RRULE:FREQ=YEARLY;BYMONTH=1,4,7,10;BYDAY=1SU",
        "freq=monthly;interval=3;byday=+1su",
    ] {
        assert_eq!(
            instants(&rule(text, start, Tz::UTC), after, 8),
            expected,
            "{text}"
        );
    }
}

#[test]
fn exdates_are_skipped() {
    let start = local(2026, 1, 5, 22, 0); // a Monday
    let skipped = local(2026, 1, 19, 22, 0);
    let r = RecurrenceRule::parse("FREQ=WEEKLY", start, Berlin, &[skipped]).unwrap();
    let got: Vec<_> = r
        .upcoming(utc(2026, 1, 1, 0, 0), 3)
        .iter()
        .map(|t| t.naive_local())
        .collect();
    assert_eq!(
        got,
        vec![start, local(2026, 1, 12, 22, 0), local(2026, 1, 26, 22, 0)]
    );
    assert_eq!(
        r.previous_before(utc(2026, 1, 26, 0, 0)),
        Some(utc(2026, 1, 12, 21, 0))
    );
}

#[test]
fn count_and_until_end_the_rule() {
    let start = local(2026, 1, 1, 9, 0);
    let r = rule("FREQ=DAILY;COUNT=3", start, Tz::UTC);
    assert_eq!(r.upcoming(utc(2025, 1, 1, 0, 0), 10).len(), 3);
    assert_eq!(r.next_after(utc(2026, 1, 3, 9, 0)), None);
    assert_eq!(
        r.previous_before(utc(2027, 1, 1, 0, 0)),
        Some(utc(2026, 1, 3, 9, 0))
    );
    let r = rule("FREQ=DAILY;UNTIL=20260105T090000Z", start, Tz::UTC);
    assert_eq!(r.upcoming(utc(2025, 1, 1, 0, 0), 10).len(), 5);
    let r = rule("FREQ=DAILY;UNTIL=20260105", start, Tz::UTC);
    assert_eq!(r.upcoming(utc(2025, 1, 1, 0, 0), 10).len(), 5);
    assert_eq!(
        r.previous_before(utc(2027, 1, 1, 0, 0)),
        Some(utc(2026, 1, 5, 9, 0))
    );
}

#[test]
fn last_friday_and_last_weekday_of_the_month() {
    let start = local(2026, 1, 1, 18, 0);
    let last_friday = rule("FREQ=MONTHLY;BYDAY=-1FR", start, Tz::UTC);
    let last_workday = rule(
        "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
        start,
        Tz::UTC,
    );
    let fridays = last_friday.upcoming(utc(2026, 1, 1, 0, 0), 12);
    let workdays = last_workday.upcoming(utc(2026, 1, 1, 0, 0), 12);
    for month in 1..=12u32 {
        let next_first = if month == 12 {
            NaiveDate::from_ymd_opt(2027, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(2026, month + 1, 1)
        }
        .unwrap();
        let mut day = next_first.pred_opt().unwrap();
        while day.weekday() != Weekday::Fri {
            day = day.pred_opt().unwrap();
        }
        assert_eq!(fridays[month as usize - 1].date_naive(), day);
        let mut day = next_first.pred_opt().unwrap();
        while day.weekday().number_from_monday() > 5 {
            day = day.pred_opt().unwrap();
        }
        assert_eq!(workdays[month as usize - 1].date_naive(), day);
    }
}

#[test]
fn weekly_interval_counts_weeks_from_dtstart() {
    // DTSTART Wednesday 2026-01-07; the Monday of its week (01-05) is before DTSTART.
    let r = rule(
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE",
        local(2026, 1, 7, 8, 0),
        Tz::UTC,
    );
    let days: Vec<(u32, u32)> = r
        .upcoming(utc(2026, 1, 1, 0, 0), 5)
        .iter()
        .map(|t| (t.month(), t.day()))
        .collect();
    assert_eq!(days, vec![(1, 7), (1, 19), (1, 21), (2, 2), (2, 4)]);
}

#[test]
fn minutely_with_byhour_matches_brute_force() {
    let start = local(2026, 1, 1, 0, 0);
    let r = rule("FREQ=MINUTELY;INTERVAL=7;BYHOUR=9", start, Tz::UTC);
    let mut expected = Vec::new();
    let mut t = start;
    while expected.len() < 30 {
        if t.hour() == 9 {
            expected.push(t.and_utc());
        }
        t += chrono::TimeDelta::minutes(7);
    }
    assert_eq!(instants(&r, utc(2025, 12, 31, 0, 0), 30), expected);
    // Starting the search in the middle of the sequence finds the same occurrences.
    assert_eq!(instants(&r, expected[10], 5), expected[11..16].to_vec());

    // Day-level parts skip whole days: last day of the month, 01:xx, every 7 minutes.
    let r = rule(
        "FREQ=MINUTELY;INTERVAL=7;BYMONTHDAY=-1;BYHOUR=1",
        start,
        Tz::UTC,
    );
    let mut expected = Vec::new();
    let mut t = start;
    while expected.len() < 40 {
        let last_of_month = (t.date() + Days::new(1)).day() == 1;
        if t.hour() == 1 && last_of_month {
            expected.push(t.and_utc());
        }
        t += chrono::TimeDelta::minutes(7);
    }
    assert_eq!(instants(&r, utc(2025, 12, 31, 0, 0), 40), expected);
    assert_eq!(r.previous_before(expected[30]), Some(expected[29]));
}

#[test]
fn far_dtstart_does_not_change_results() {
    let recent = rule(
        "FREQ=DAILY;BYHOUR=2;BYMINUTE=0",
        local(2026, 1, 1, 0, 0),
        New_York,
    );
    let old = rule(
        "FREQ=DAILY;BYHOUR=2;BYMINUTE=0",
        local(2000, 1, 1, 0, 0),
        New_York,
    );
    let after = utc(2026, 6, 1, 12, 0);
    assert_eq!(old.upcoming(after, 20), recent.upcoming(after, 20));
    assert_eq!(old.previous_before(after), recent.previous_before(after));
}

#[test]
fn dst_gap_and_repeat_in_new_york_and_berlin() {
    let ny = rule("FREQ=DAILY", local(2026, 1, 1, 2, 30), New_York);
    assert_eq!(
        instants(&ny, utc(2026, 3, 7, 0, 0), 3),
        vec![
            utc(2026, 3, 7, 7, 30),
            utc(2026, 3, 8, 7, 0),
            utc(2026, 3, 9, 6, 30)
        ]
    );
    let ny_repeat = rule("FREQ=DAILY", local(2026, 1, 1, 1, 30), New_York);
    assert_eq!(
        instants(&ny_repeat, utc(2026, 10, 31, 12, 0), 2),
        vec![utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]
    );
    let berlin = rule("FREQ=WEEKLY;BYDAY=SU", local(2026, 1, 4, 2, 30), Berlin);
    assert_eq!(
        instants(&berlin, utc(2026, 3, 22, 12, 0), 2),
        vec![utc(2026, 3, 29, 1, 0), utc(2026, 4, 5, 0, 30)]
    );
    assert_eq!(
        instants(&berlin, utc(2026, 10, 18, 12, 0), 2),
        vec![utc(2026, 10, 25, 0, 30), utc(2026, 11, 1, 1, 30)]
    );
    // previous_before agrees around the changes.
    for r in [&ny, &ny_repeat, &berlin] {
        let got = instants(r, utc(2026, 3, 1, 0, 0), 300);
        for pair in got.windows(2) {
            assert_eq!(r.previous_before(pair[1]), Some(pair[0]));
        }
    }
}

#[test]
fn readable_errors() {
    let start = local(2026, 1, 1, 0, 0);
    let message = |text: &str| {
        RecurrenceRule::parse(text, start, Tz::UTC, &[])
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        message("FREQ=MONTHY"),
        "invalid RRULE: unknown FREQ value \"MONTHY\""
    );
    assert!(message("BYDAY=MO").contains("FREQ is required"));
    assert!(
        message("DTSTART:20260101T000000\nRRULE:FREQ=DAILY").contains("DTSTART is not allowed")
    );
    assert!(message("FREQ=DAILY;COUNT=2;UNTIL=20270101").contains("COUNT and UNTIL"));
    assert!(message("FREQ=WEEKLY;BYDAY=1TU").contains("only allowed with FREQ=MONTHLY"));
    assert!(message("FREQ=MONTHLY;BYDAY=6TU").contains("between -5 and 5"));
    assert!(message("FREQ=MONTHLY;BYDAY=XX").contains("BYDAY value \"XX\""));
    assert!(message("FREQ=MONTHLY;BYMONTH=2;BYMONTHDAY=30").contains("no occurrence"));
    assert!(message("FREQ=DAILY;BYHOUR=24").contains("an hour 0-23"));
    assert!(message("FREQ=DAILY;INTERVAL=0").contains("INTERVAL"));
    assert!(message("FREQ=DAILY;FREQ=WEEKLY").contains("more than once"));
    assert!(message("FREQ=DAILY;BYSETPOS=1").contains("BYSETPOS requires"));
    assert!(message("FREQ=DAILY;FOO=1").contains("unknown rule part \"FOO\""));
    assert!(message("FREQ=DAILY;BYWEEKNO=1").contains("not supported"));
    assert!(message("FREQ=DAILY;UNTIL=2026").contains("UNTIL value"));
    assert!(message("").contains("empty"));
}

#[test]
fn yearly_defaults_from_dtstart_and_leap_days() {
    let r = rule("FREQ=YEARLY", local(2024, 2, 29, 12, 0), Tz::UTC);
    let years: Vec<i32> = r
        .upcoming(utc(2024, 1, 1, 0, 0), 3)
        .iter()
        .map(|t| t.year())
        .collect();
    assert_eq!(years, vec![2024, 2028, 2032]);
    let min = r.min_period().unwrap();
    assert_eq!(min.as_secs(), 4 * 365 * 86_400 + 86_400);
    let monthly = rule(
        "FREQ=MONTHLY;BYDAY=1TU;BYHOUR=2",
        local(2026, 1, 1, 0, 0),
        New_York,
    );
    assert_eq!(monthly.min_period().unwrap().as_secs(), 28 * 86_400);
    let first_after = monthly.next_after(utc(2026, 1, 1, 0, 0)).unwrap();
    assert_eq!(first_after, utc(2026, 1, 6, 7, 0));
}

#[test]
fn ended_minutely_rule_looks_back_from_until() {
    let r = rule(
        "FREQ=MINUTELY;INTERVAL=5;UNTIL=20200101T000000Z",
        local(2019, 12, 31, 23, 0),
        Tz::UTC,
    );
    assert_eq!(
        r.previous_before(utc(2026, 1, 1, 0, 0)),
        Some(utc(2020, 1, 1, 0, 0))
    );
    assert_eq!(r.next_after(utc(2026, 1, 1, 0, 0)), None);
    assert_eq!(r.upcoming(utc(2019, 1, 1, 0, 0), 100).len(), 13);
}

#[test]
fn hourly_and_minutely_rules_across_dst_in_new_york() {
    let hourly = rule("FREQ=HOURLY", local(2026, 1, 1, 0, 0), New_York);
    // Fall back: 01:00 EDT (05:00Z) fires, the repeated 01:00 EST (06:00Z) does not.
    let fall = vec![
        utc(2026, 11, 1, 4, 0),
        utc(2026, 11, 1, 5, 0),
        utc(2026, 11, 1, 7, 0),
        utc(2026, 11, 1, 8, 0),
    ];
    // Spring forward: 02:00 does not exist and fires at 03:00 EDT, the same instant as 03:00.
    let spring = vec![
        utc(2026, 3, 8, 5, 0),
        utc(2026, 3, 8, 6, 0),
        utc(2026, 3, 8, 7, 0),
        utc(2026, 3, 8, 8, 0),
    ];
    for expected in [fall, spring] {
        assert_eq!(
            instants(&hourly, expected[0] - chrono::TimeDelta::seconds(1), 4),
            expected
        );
        for pair in expected.windows(2) {
            assert_eq!(hourly.next_after(pair[0]), Some(pair[1]));
            assert_eq!(hourly.previous_before(pair[1]), Some(pair[0]));
        }
    }
    let minutely = rule(
        "FREQ=MINUTELY;INTERVAL=20",
        local(2026, 1, 1, 0, 0),
        New_York,
    );
    // 01:00, 01:20, 01:40 EDT; then 02:00 EST (the repeated 01:xx are skipped).
    let expected = vec![
        utc(2026, 11, 1, 5, 0),
        utc(2026, 11, 1, 5, 20),
        utc(2026, 11, 1, 5, 40),
        utc(2026, 11, 1, 7, 0),
    ];
    assert_eq!(instants(&minutely, utc(2026, 11, 1, 4, 50), 4), expected);
    assert_eq!(
        minutely.next_after(utc(2026, 11, 1, 6, 30)),
        Some(utc(2026, 11, 1, 7, 0))
    );
    assert_eq!(
        minutely.previous_before(utc(2026, 11, 1, 6, 59)),
        Some(utc(2026, 11, 1, 5, 40))
    );
}
