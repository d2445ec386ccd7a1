//! RFC 5545 recurrence rules (RRULE) with a local DTSTART in an IANA time zone and EXDATEs.

use std::collections::BTreeSet;

use std::ops::ControlFlow;

use chrono::{
    DateTime, Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike, Utc,
    Weekday,
};
use chrono_tz::Tz;

use super::{ScheduleError, local_slack, resolve_local};

/// How far searches look for the next or previous occurrence.
const HORIZON_DAYS: u64 = 10 * 366;

fn month_index(date: NaiveDate) -> i64 {
    i64::from(date.year()) * 12 + i64::from(date.month0())
}

fn week_start(date: NaiveDate, wkst: Weekday) -> NaiveDate {
    let back = (7 + date.weekday().num_days_from_monday() - wkst.num_days_from_monday()) % 7;
    date - TimeDelta::days(i64::from(back))
}

fn add_days(date: NaiveDate, days: i64) -> Option<NaiveDate> {
    date.checked_add_signed(TimeDelta::try_days(days)?)
}

/// `t` truncated to a multiple of `seconds` within its day (3600: the hour, 60: the minute).
fn truncate(t: NaiveDateTime, seconds: u32) -> NaiveDateTime {
    let secs = t.num_seconds_from_midnight() / seconds * seconds;
    t.date()
        .and_time(NaiveTime::from_num_seconds_from_midnight_opt(secs, 0).unwrap_or(NaiveTime::MIN))
}

pub(crate) fn days_in_month(date: NaiveDate) -> u32 {
    let (year, month) = if date.month() == 12 {
        (date.year() + 1, 1)
    } else {
        (date.year(), date.month() + 1)
    };
    NaiveDate::from_ymd_opt(year, month, 1)
        .and_then(|first| first.pred_opt())
        .map_or(31, |last| last.day())
}

fn days_in_year(year: i32) -> u32 {
    if NaiveDate::from_ymd_opt(year, 2, 29).is_some() {
        366
    } else {
        365
    }
}

/// Recurrence frequency (`FREQ`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Freq {
    Minutely,
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

/// The end of a rule (`UNTIL`), inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Until {
    /// `UNTIL=20261231T235959Z`: an instant.
    Instant(DateTime<Utc>),
    /// `UNTIL=20261231T235959` or `UNTIL=20261231`: a local time of the rule's zone.
    Local(NaiveDateTime),
}

/// A parsed RFC 5545 recurrence rule anchored at a local DTSTART in a time zone, minus EXDATEs.
///
/// Supported parts: `FREQ` (`YEARLY`, `MONTHLY`, `WEEKLY`, `DAILY`, `HOURLY`, `MINUTELY`),
/// `INTERVAL`, `COUNT`, `UNTIL`, `BYMONTH`, `BYMONTHDAY`, `BYDAY` (with ordinals such as `1TU`
/// and `-1FR` for `MONTHLY` and `YEARLY`), `BYHOUR`, `BYMINUTE`, `BYSECOND`, `BYSETPOS` and
/// `WKST`. Occurrences are wall-clock times in the zone (02:00 stays 02:00 across daylight saving
/// changes); see the [module documentation](super) for gaps and repeated hours.
///
/// HOURLY and MINUTELY rules also step through wall-clock time, so in a repeated hour they fire
/// once and in a skipped hour once at the transition.
///
/// As in python-dateutil and the libraries ported from it, DTSTART is the first occurrence only
/// if it matches the rule (it is not added otherwise), and the first week of a WEEKLY rule
/// starts at DTSTART rather than at WKST (which matters only for BYSETPOS). Searches look at
/// most ten years ahead (or back), and rules that can never produce an occurrence are rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecurrenceRule {
    pub(crate) text: String,
    pub(crate) freq: Freq,
    pub(crate) interval: u32,
    pub(crate) count: Option<u32>,
    pub(crate) until: Option<Until>,
    pub(crate) by_month: Vec<u32>,
    pub(crate) by_month_day: Vec<i32>,
    pub(crate) by_day: Vec<(Option<i32>, Weekday)>,
    pub(crate) by_hour: Vec<u32>,
    pub(crate) by_minute: Vec<u32>,
    pub(crate) by_second: Vec<u32>,
    pub(crate) by_set_pos: Vec<i32>,
    pub(crate) wkst: Weekday,
    pub(crate) dtstart: NaiveDateTime,
    pub(crate) tz: Tz,
    pub(crate) exdates: BTreeSet<NaiveDateTime>,
}

fn invalid(message: impl Into<String>) -> ScheduleError {
    ScheduleError::InvalidRRule(message.into())
}

fn parse_weekday(text: &str) -> Option<Weekday> {
    Some(match text {
        "MO" => Weekday::Mon,
        "TU" => Weekday::Tue,
        "WE" => Weekday::Wed,
        "TH" => Weekday::Thu,
        "FR" => Weekday::Fri,
        "SA" => Weekday::Sat,
        "SU" => Weekday::Sun,
        _ => return None,
    })
}

fn parse_list<T>(
    name: &str,
    value: &str,
    mut item: impl FnMut(&str) -> Option<T>,
    expected: &str,
) -> Result<Vec<T>, ScheduleError> {
    if value.is_empty() {
        return Err(invalid(format!("{name} has no value")));
    }
    value
        .split(',')
        .map(|part| {
            item(part).ok_or_else(|| invalid(format!("{name} value {part:?} is not {expected}")))
        })
        .collect()
}

fn parse_unsigned(text: &str, min: u32, max: u32) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|v| (min..=max).contains(v))
}

fn parse_signed(text: &str, max: i32) -> Option<i32> {
    let (sign, digits) = match text.as_bytes().first() {
        Some(b'-') => (-1, &text[1..]),
        Some(b'+') => (1, &text[1..]),
        _ => (1, text),
    };
    let magnitude = parse_unsigned(digits, 1, max as u32)? as i32;
    Some(sign * magnitude)
}

fn parse_until(text: &str) -> Option<Until> {
    if let Some(local) = text.strip_suffix('Z') {
        let naive = NaiveDateTime::parse_from_str(local, "%Y%m%dT%H%M%S").ok()?;
        return Some(Until::Instant(naive.and_utc()));
    }
    if text.len() == 8 {
        let date = NaiveDate::parse_from_str(text, "%Y%m%d").ok()?;
        return Some(Until::Local(date.and_hms_opt(23, 59, 59)?));
    }
    NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%M%S")
        .ok()
        .map(Until::Local)
}

impl RecurrenceRule {
    /// Parses an RRULE value (`FREQ=MONTHLY;BYDAY=1TU`, optionally prefixed with `RRULE:`)
    /// anchored at `dtstart`, a wall-clock time in `tz`. Occurrences whose local time equals one
    /// of `exdates` are excluded.
    ///
    /// DTSTART, EXDATE and RDATE inside the rule text are rejected: they have their own fields.
    pub fn parse(
        rrule: &str,
        dtstart: NaiveDateTime,
        tz: Tz,
        exdates: &[NaiveDateTime],
    ) -> Result<Self, ScheduleError> {
        let text = rrule.trim();
        let upper = text.to_ascii_uppercase();
        for property in ["DTSTART", "EXDATE", "RDATE"] {
            if upper.contains(property) {
                return Err(invalid(format!(
                    "{property} is not allowed inside the rule; give it in its own field"
                )));
            }
        }
        if text.contains('\n') {
            return Err(invalid("the rule must be a single RRULE line"));
        }
        let body = if upper.starts_with("RRULE:") {
            &text[6..]
        } else {
            text
        };
        if body.is_empty() {
            return Err(invalid("the rule is empty"));
        }
        let mut rule = RecurrenceRule {
            text: body.to_string(),
            freq: Freq::Daily,
            interval: 1,
            count: None,
            until: None,
            by_month: Vec::new(),
            by_month_day: Vec::new(),
            by_day: Vec::new(),
            by_hour: Vec::new(),
            by_minute: Vec::new(),
            by_second: Vec::new(),
            by_set_pos: Vec::new(),
            wkst: Weekday::Mon,
            dtstart: dtstart.with_nanosecond(0).unwrap_or(dtstart),
            tz,
            exdates: exdates.iter().copied().collect(),
        };
        let mut seen: Vec<String> = Vec::new();
        let mut freq = None;
        for part in body.split(';') {
            let Some((key, value)) = part.split_once('=') else {
                return Err(invalid(format!(
                    "part {part:?} is not of the form NAME=VALUE"
                )));
            };
            let key = key.trim().to_ascii_uppercase();
            let value = value.trim().to_ascii_uppercase();
            if seen.contains(&key) {
                return Err(invalid(format!("{key} is given more than once")));
            }
            seen.push(key.clone());
            match key.as_str() {
                "FREQ" => {
                    freq = Some(match value.as_str() {
                        "YEARLY" => Freq::Yearly,
                        "MONTHLY" => Freq::Monthly,
                        "WEEKLY" => Freq::Weekly,
                        "DAILY" => Freq::Daily,
                        "HOURLY" => Freq::Hourly,
                        "MINUTELY" => Freq::Minutely,
                        "SECONDLY" => {
                            return Err(invalid(
                                "FREQ=SECONDLY is not supported; the finest frequency is MINUTELY",
                            ));
                        }
                        _ => return Err(invalid(format!("unknown FREQ value {value:?}"))),
                    })
                }
                "INTERVAL" => {
                    rule.interval = parse_unsigned(&value, 1, 100_000).ok_or_else(|| {
                        invalid(format!("INTERVAL value {value:?} is not a positive integer"))
                    })?
                }
                "COUNT" => {
                    rule.count = Some(parse_unsigned(&value, 1, 1_000_000).ok_or_else(|| {
                        invalid(format!("COUNT value {value:?} is not a positive integer"))
                    })?)
                }
                "UNTIL" => {
                    rule.until = Some(parse_until(&value).ok_or_else(|| {
                        invalid(format!(
                            "UNTIL value {value:?} is not a date (YYYYMMDD) or date-time (YYYYMMDDTHHMMSS[Z])"
                        ))
                    })?)
                }
                "BYMONTH" => {
                    rule.by_month = parse_list(
                        "BYMONTH",
                        &value,
                        |v| parse_unsigned(v, 1, 12),
                        "a month number 1-12",
                    )?
                }
                "BYMONTHDAY" => {
                    rule.by_month_day = parse_list(
                        "BYMONTHDAY",
                        &value,
                        |v| parse_signed(v, 31),
                        "a day of month 1 to 31 or -31 to -1",
                    )?
                }
                "BYDAY" => {
                    rule.by_day = parse_list(
                        "BYDAY",
                        &value,
                        |v| {
                            let split = v.len().checked_sub(2)?;
                            let day = parse_weekday(v.get(split..)?)?;
                            let ordinal = v.get(..split)?;
                            if ordinal.is_empty() {
                                Some((None, day))
                            } else {
                                Some((Some(parse_signed(ordinal, 53)?), day))
                            }
                        },
                        "a weekday (MO, TU, WE, TH, FR, SA, SU) with an optional ordinal such as 1TU or -1FR",
                    )?
                }
                "BYHOUR" => {
                    rule.by_hour = parse_list(
                        "BYHOUR",
                        &value,
                        |v| parse_unsigned(v, 0, 23),
                        "an hour 0-23",
                    )?
                }
                "BYMINUTE" => {
                    rule.by_minute = parse_list(
                        "BYMINUTE",
                        &value,
                        |v| parse_unsigned(v, 0, 59),
                        "a minute 0-59",
                    )?
                }
                "BYSECOND" => {
                    rule.by_second = parse_list(
                        "BYSECOND",
                        &value,
                        |v| parse_unsigned(v, 0, 59),
                        "a second 0-59",
                    )?
                }
                "BYSETPOS" => {
                    rule.by_set_pos = parse_list(
                        "BYSETPOS",
                        &value,
                        |v| parse_signed(v, 366),
                        "a position 1 to 366 or -366 to -1",
                    )?
                }
                "WKST" => {
                    rule.wkst = parse_weekday(&value).ok_or_else(|| {
                        invalid(format!("WKST value {value:?} is not a weekday (MO-SU)"))
                    })?
                }
                "BYYEARDAY" | "BYWEEKNO" => {
                    return Err(invalid(format!("{key} is not supported")));
                }
                _ => return Err(invalid(format!("unknown rule part {key:?}"))),
            }
        }
        rule.freq = freq.ok_or_else(|| invalid("FREQ is required"))?;
        if rule.count.is_some() && rule.until.is_some() {
            return Err(invalid("COUNT and UNTIL cannot both be given"));
        }
        if rule.freq == Freq::Weekly && !rule.by_month_day.is_empty() {
            return Err(invalid("BYMONTHDAY cannot be used with FREQ=WEEKLY"));
        }
        if rule.by_day.iter().any(|(ordinal, _)| ordinal.is_some()) {
            match rule.freq {
                Freq::Monthly => {
                    if rule
                        .by_day
                        .iter()
                        .any(|(ordinal, _)| ordinal.is_some_and(|n| n.abs() > 5))
                    {
                        return Err(invalid(
                            "BYDAY ordinals must be between -5 and 5 with FREQ=MONTHLY",
                        ));
                    }
                }
                Freq::Yearly => {}
                _ => {
                    return Err(invalid(
                        "BYDAY ordinals such as 1TU are only allowed with FREQ=MONTHLY or FREQ=YEARLY",
                    ));
                }
            }
        }
        if !rule.by_set_pos.is_empty()
            && rule.by_month.is_empty()
            && rule.by_month_day.is_empty()
            && rule.by_day.is_empty()
            && rule.by_hour.is_empty()
            && rule.by_minute.is_empty()
            && rule.by_second.is_empty()
        {
            return Err(invalid("BYSETPOS requires another BYxxx part"));
        }
        rule.apply_defaults();
        let first = resolve_local(tz, rule.dtstart)
            .and_then(|start| rule.next_occurrence(start - TimeDelta::seconds(1), false));
        if first.is_none() {
            return Err(invalid(
                "the rule produces no occurrence after DTSTART (check BYMONTH/BYMONTHDAY/BYDAY combinations and UNTIL)",
            ));
        }
        Ok(rule)
    }

    /// Fills in what the rule leaves implicit from DTSTART (RFC 5545 §3.3.10): the time of day
    /// for DAILY and coarser rules, the day of month for MONTHLY and YEARLY, the month for
    /// YEARLY, the weekday for WEEKLY. Sorts and deduplicates every list.
    fn apply_defaults(&mut self) {
        let start = self.dtstart;
        if self.by_month_day.is_empty() && self.by_day.is_empty() {
            match self.freq {
                Freq::Yearly => {
                    if self.by_month.is_empty() {
                        self.by_month.push(start.month());
                    }
                    self.by_month_day.push(start.day() as i32);
                }
                Freq::Monthly => self.by_month_day.push(start.day() as i32),
                Freq::Weekly => self.by_day.push((None, start.weekday())),
                _ => {}
            }
        }
        if self.by_hour.is_empty() && self.freq >= Freq::Daily {
            self.by_hour.push(start.hour());
        }
        if self.by_minute.is_empty() && self.freq >= Freq::Hourly {
            self.by_minute.push(start.minute());
        }
        if self.by_second.is_empty() {
            self.by_second.push(start.second());
        }
        for list in [
            &mut self.by_month,
            &mut self.by_hour,
            &mut self.by_minute,
            &mut self.by_second,
        ] {
            list.sort_unstable();
            list.dedup();
        }
        self.by_month_day.sort_unstable();
        self.by_month_day.dedup();
        self.by_set_pos.sort_unstable();
        self.by_set_pos.dedup();
        self.by_day.dedup();
    }

    /// The rule text as given (without an `RRULE:` prefix).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The time zone occurrences are computed in.
    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    /// The first occurrence strictly after `after`, or `None` when the rule has ended (or has
    /// no occurrence within ten years).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.next_occurrence(after, true)
    }

    /// The last occurrence strictly before `before`, or `None` if there is none (within ten
    /// years before `before`).
    pub fn previous_before(&self, before: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = before.with_timezone(&self.tz).naive_local();
        let horizon = local.checked_sub_days(Days::new(HORIZON_DAYS))?;
        if self.count.is_some() {
            // COUNT needs every occurrence from DTSTART to know which ones exist.
            let mut last = None;
            let mut remaining = self.count.unwrap_or(0);
            let far = local.checked_add_days(Days::new(2))?;
            self.walk_forward(0, far, |local_time| {
                if remaining == 0 {
                    return ControlFlow::Break(());
                }
                remaining -= 1;
                if self.exdates.contains(&local_time) {
                    return ControlFlow::Continue(());
                }
                match resolve_local(self.tz, local_time) {
                    Some(t) if t < before => {
                        last = Some(t);
                        ControlFlow::Continue(())
                    }
                    _ => ControlFlow::Break(()),
                }
            });
            return last;
        }
        // Occurrences after UNTIL do not exist: start the backward walk there if it is earlier.
        let until_local = match self.until {
            None => None,
            Some(Until::Local(until)) => Some(until),
            Some(Until::Instant(until)) => Some(until.with_timezone(&self.tz).naive_local()),
        };
        let start = match until_local {
            Some(until) if until < local => until.checked_add_signed(TimeDelta::hours(26))?,
            _ => local.checked_add_signed(self.slack(before))?,
        };
        let period = self.align_down(self.period_of(start));
        let mut found = None;
        self.walk_backward(period, horizon, |local_time| {
            if self.exdates.contains(&local_time) {
                return ControlFlow::Continue(());
            }
            let Some(t) = resolve_local(self.tz, local_time) else {
                return ControlFlow::Continue(());
            };
            if t >= before || self.beyond_until(local_time, t) {
                return ControlFlow::Continue(());
            }
            found = Some(t);
            ControlFlow::Break(())
        });
        found
    }

    fn next_occurrence(&self, after: DateTime<Utc>, honour_exdates: bool) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.tz).naive_local();
        let horizon = local
            .max(self.dtstart)
            .checked_add_days(Days::new(HORIZON_DAYS))?;
        let first_period = if self.count.is_some() {
            0
        } else {
            // Around a daylight saving change an occurrence after `after` can have an earlier
            // local time than `after` (an hour repeated, an offset jump), so start early.
            let early = local.checked_sub_signed(self.slack(after))?;
            self.align_down(self.period_of(early))
        };
        let mut remaining = self.count.unwrap_or(u32::MAX);
        let mut found = None;
        self.walk_forward(first_period, horizon, |local_time| {
            if remaining == 0 {
                return ControlFlow::Break(());
            }
            remaining -= 1;
            if honour_exdates && self.exdates.contains(&local_time) {
                return ControlFlow::Continue(());
            }
            let Some(t) = resolve_local(self.tz, local_time) else {
                return ControlFlow::Continue(());
            };
            if self.beyond_until(local_time, t) {
                return ControlFlow::Break(());
            }
            if t > after {
                found = Some(t);
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
        found
    }

    /// How far before (or after) the local time of `t` a search must start. Two days for daily
    /// and coarser rules, where that costs a period or two; for hourly and minutely rules the
    /// zone's offsets are checked so that the usual case starts at `t`.
    fn slack(&self, t: DateTime<Utc>) -> TimeDelta {
        if self.freq >= Freq::Daily {
            TimeDelta::days(2)
        } else {
            local_slack(self.tz, t)
        }
    }

    fn beyond_until(&self, local_time: NaiveDateTime, instant: DateTime<Utc>) -> bool {
        match self.until {
            None => false,
            Some(Until::Local(until)) => local_time > until,
            Some(Until::Instant(until)) => instant > until,
        }
    }

    /// Index of the period (year, month, week, day, hour or minute, by FREQ) containing `t`,
    /// counted from the period of DTSTART.
    fn period_of(&self, t: NaiveDateTime) -> i64 {
        let start = self.dtstart;
        match self.freq {
            Freq::Yearly => i64::from(t.year() - start.year()),
            Freq::Monthly => month_index(t.date()) - month_index(start.date()),
            Freq::Weekly => (t.date() - week_start(start.date(), self.wkst))
                .num_days()
                .div_euclid(7),
            Freq::Daily => (t.date() - start.date()).num_days(),
            Freq::Hourly => (t - truncate(start, 3600)).num_seconds().div_euclid(3600),
            Freq::Minutely => (t - truncate(start, 60)).num_seconds().div_euclid(60),
        }
    }

    /// First local time of period `p`.
    fn period_start(&self, p: i64) -> Option<NaiveDateTime> {
        let start = self.dtstart;
        let date = match self.freq {
            Freq::Yearly => NaiveDate::from_ymd_opt(start.year() + i32::try_from(p).ok()?, 1, 1)?,
            Freq::Monthly => {
                let index = month_index(start.date()) + p;
                let year = i32::try_from(index.div_euclid(12)).ok()?;
                NaiveDate::from_ymd_opt(year, index.rem_euclid(12) as u32 + 1, 1)?
            }
            Freq::Weekly => add_days(week_start(start.date(), self.wkst), p.checked_mul(7)?)?,
            Freq::Daily => add_days(start.date(), p)?,
            Freq::Hourly => {
                return truncate(start, 3600).checked_add_signed(TimeDelta::try_hours(p)?);
            }
            Freq::Minutely => {
                return truncate(start, 60).checked_add_signed(TimeDelta::try_minutes(p)?);
            }
        };
        Some(date.and_time(NaiveTime::MIN))
    }

    fn align_down(&self, p: i64) -> i64 {
        let interval = i64::from(self.interval);
        (p.div_euclid(interval) * interval).max(0)
    }

    fn align_up(&self, p: i64) -> i64 {
        let interval = i64::from(self.interval);
        p.div_euclid(interval) * interval
            + if p.rem_euclid(interval) == 0 {
                0
            } else {
                interval
            }
    }

    /// Whether `date` passes the day-level parts (BYMONTH, BYMONTHDAY, BYDAY). For YEARLY and
    /// MONTHLY these parts expand the period to the matching days, which is the same as
    /// filtering every day of the period.
    fn day_matches(&self, date: NaiveDate) -> bool {
        if !self.by_month.is_empty() && !self.by_month.contains(&date.month()) {
            return false;
        }
        if !self.by_month_day.is_empty() {
            let length = days_in_month(date) as i32;
            let day = date.day() as i32;
            if !self
                .by_month_day
                .iter()
                .any(|&d| d == day || (d < 0 && length + d + 1 == day))
            {
                return false;
            }
        }
        if !self.by_day.is_empty() {
            let weekday = date.weekday();
            // Ordinals count within the month for MONTHLY (and YEARLY with BYMONTH), otherwise
            // within the year.
            let (position, length) = if self.freq == Freq::Yearly && self.by_month.is_empty() {
                (date.ordinal() as i32, days_in_year(date.year()) as i32)
            } else {
                (date.day() as i32, days_in_month(date) as i32)
            };
            let matches = self.by_day.iter().any(|&(ordinal, day)| {
                day == weekday
                    && match ordinal {
                        None => true,
                        Some(n) if n > 0 => (position - 1) / 7 + 1 == n,
                        Some(n) => (length - position) / 7 + 1 == -n,
                    }
            });
            if !matches {
                return false;
            }
        }
        true
    }

    /// The occurrences of period `p` (BYSETPOS applied, not before DTSTART), ascending.
    fn candidates(&self, p: i64, out: &mut Vec<NaiveDateTime>) {
        out.clear();
        let (Some(start), Some(end)) = (self.period_start(p), self.period_start(p + 1)) else {
            return;
        };
        match self.freq {
            Freq::Hourly | Freq::Minutely => {
                if !self.day_matches(start.date())
                    || !(self.by_hour.is_empty() || self.by_hour.contains(&start.hour()))
                {
                    return;
                }
                let minutes: &[u32] = if self.freq == Freq::Hourly {
                    &self.by_minute
                } else if self.by_minute.is_empty() || self.by_minute.contains(&start.minute()) {
                    &[]
                } else {
                    return;
                };
                let minutes: Vec<u32> = if minutes.is_empty() {
                    vec![start.minute()]
                } else {
                    minutes.to_vec()
                };
                for &minute in &minutes {
                    for &second in &self.by_second {
                        if let Some(t) = start
                            .with_minute(minute)
                            .and_then(|t| t.with_second(second))
                        {
                            out.push(t);
                        }
                    }
                }
            }
            _ => {
                // As in python-dateutil (and the libraries ported from it), the first week of a
                // WEEKLY rule starts at DTSTART rather than at WKST; this only matters for
                // BYSETPOS.
                let mut date = if self.freq == Freq::Weekly && p == 0 {
                    self.dtstart.date()
                } else {
                    start.date()
                };
                while date < end.date() {
                    if self.day_matches(date) {
                        for &hour in &self.by_hour {
                            for &minute in &self.by_minute {
                                for &second in &self.by_second {
                                    if let Some(time) =
                                        NaiveTime::from_hms_opt(hour, minute, second)
                                    {
                                        out.push(date.and_time(time));
                                    }
                                }
                            }
                        }
                    }
                    let Some(next) = date.succ_opt() else { break };
                    date = next;
                }
            }
        }
        if !self.by_set_pos.is_empty() {
            let all = std::mem::take(out);
            let len = all.len() as i32;
            for &position in &self.by_set_pos {
                let index = if position > 0 {
                    position - 1
                } else {
                    len + position
                };
                if (0..len).contains(&index) {
                    out.push(all[index as usize]);
                }
            }
            out.sort_unstable();
            out.dedup();
        }
        out.retain(|t| *t >= self.dtstart);
    }

    /// For sub-daily frequencies, the first period after `p` that can match, skipping whole
    /// days (and hours) that the day- and hour-level parts exclude.
    fn skip_forward(&self, p: i64) -> i64 {
        if !matches!(self.freq, Freq::Hourly | Freq::Minutely) {
            return p + i64::from(self.interval);
        }
        let next = p + i64::from(self.interval);
        let Some(start) = self.period_start(next) else {
            return next;
        };
        let jump_to = if !self.day_matches(start.date()) {
            start.date().succ_opt().map(|d| d.and_time(NaiveTime::MIN))
        } else if !(self.by_hour.is_empty() || self.by_hour.contains(&start.hour())) {
            Some(truncate(start, 3600) + TimeDelta::hours(1))
        } else {
            None
        };
        match jump_to {
            Some(t) => self.align_up(self.period_of(t)).max(next),
            None => next,
        }
    }

    /// Like [`Self::skip_forward`], walking back in time.
    fn skip_backward(&self, p: i64) -> i64 {
        let previous = p - i64::from(self.interval);
        if !matches!(self.freq, Freq::Hourly | Freq::Minutely) {
            return previous;
        }
        let Some(start) = self.period_start(previous) else {
            return previous;
        };
        let jump_to = if !self.day_matches(start.date()) {
            Some(start.date().and_time(NaiveTime::MIN) - TimeDelta::seconds(1))
        } else if !(self.by_hour.is_empty() || self.by_hour.contains(&start.hour())) {
            Some(truncate(start, 3600) - TimeDelta::seconds(1))
        } else {
            None
        };
        match jump_to {
            Some(t) => {
                let interval = i64::from(self.interval);
                (self.period_of(t).div_euclid(interval) * interval).min(previous)
            }
            None => previous,
        }
    }

    /// Calls `f` with every occurrence (before EXDATE, COUNT and UNTIL) from period `p` on, in
    /// order, until `f` breaks or the periods start after `horizon`.
    fn walk_forward(
        &self,
        mut p: i64,
        horizon: NaiveDateTime,
        mut f: impl FnMut(NaiveDateTime) -> ControlFlow<()>,
    ) {
        let mut buffer = Vec::new();
        loop {
            match self.period_start(p) {
                Some(start) if start <= horizon => {}
                _ => return,
            }
            self.candidates(p, &mut buffer);
            for &t in &buffer {
                if f(t).is_break() {
                    return;
                }
            }
            p = self.skip_forward(p);
        }
    }

    /// Calls `f` with every occurrence from period `p` back to DTSTART, newest first, until `f`
    /// breaks or the periods end before `horizon`.
    fn walk_backward(
        &self,
        mut p: i64,
        horizon: NaiveDateTime,
        mut f: impl FnMut(NaiveDateTime) -> ControlFlow<()>,
    ) {
        let mut buffer = Vec::new();
        while p >= 0 {
            match self.period_start(p + 1) {
                Some(end) if end >= horizon => {}
                _ => return,
            }
            self.candidates(p, &mut buffer);
            for &t in buffer.iter().rev() {
                if f(t).is_break() {
                    return;
                }
            }
            p = self.skip_backward(p);
        }
    }

    /// Shortest nominal (wall-clock) time between two consecutive occurrences, sampled over up
    /// to 2,000 occurrences or ten years from DTSTART (EXDATEs ignored). `None` when the rule
    /// has a single occurrence. See [`super::CronSchedule::min_period`].
    pub fn min_period(&self) -> Option<std::time::Duration> {
        let horizon = self.dtstart.checked_add_days(Days::new(HORIZON_DAYS))?;
        let mut previous: Option<NaiveDateTime> = None;
        let mut shortest: Option<TimeDelta> = None;
        let mut remaining = self.count.unwrap_or(u32::MAX);
        let mut samples = 0;
        self.walk_forward(0, horizon, |local_time| {
            if remaining == 0 || samples >= 2_000 {
                return ControlFlow::Break(());
            }
            if resolve_local(self.tz, local_time).is_none_or(|t| self.beyond_until(local_time, t)) {
                return ControlFlow::Break(());
            }
            remaining -= 1;
            samples += 1;
            if let Some(before) = previous {
                let gap = local_time - before;
                shortest = Some(shortest.map_or(gap, |s| s.min(gap)));
            }
            previous = Some(local_time);
            ControlFlow::Continue(())
        });
        shortest.and_then(|s| s.to_std().ok())
    }

    /// The next `n` occurrences strictly after `after`, in the rule's time zone.
    pub fn upcoming(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Tz>> {
        let mut out = Vec::with_capacity(n);
        let mut cursor = after;
        while out.len() < n {
            match self.next_after(cursor) {
                Some(t) => {
                    out.push(t.with_timezone(&self.tz));
                    cursor = t;
                }
                None => break,
            }
        }
        out
    }
}
