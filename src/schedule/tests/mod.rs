//! Tests of the schedule engine. Expected values are computed independently of the engine
//! (walking calendar days, fixed instants checked by hand against the tz database).

mod cron_tests;
mod differential;
mod rrule_tests;
mod window_tests;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

pub(super) fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

pub(super) fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, mo, d)
        .unwrap()
        .and_hms_opt(h, mi, 0)
        .unwrap()
}
