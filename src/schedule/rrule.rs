//! RFC 5545 recurrence rules (RRULE) with a local DTSTART in an IANA time zone and EXDATEs.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc, Weekday};
use chrono_tz::Tz;

use super::ScheduleError;

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
/// As in most implementations (python-dateutil, libical), DTSTART is the first occurrence only if
/// it matches the rule; it is not added otherwise.
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
            dtstart,
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
        Ok(rule)
    }

    /// The rule text as given (without an `RRULE:` prefix).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The time zone occurrences are computed in.
    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    /// The first occurrence strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let _ = after;
        None
    }

    /// The last occurrence strictly before `before`.
    pub fn previous_before(&self, before: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let _ = before;
        None
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
