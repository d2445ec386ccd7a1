//! Five-field cron expressions as the Kubernetes CronJob controller accepts them.

use chrono::{
    DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset as _,
    TimeDelta, TimeZone as _, Utc,
};
use chrono_tz::Tz;

use super::{ScheduleError, resolve_local};

/// What a schedule does on the two days a year when local wall-clock time is not a one-to-one
/// map to instants (see the [module documentation](super)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DstRule {
    /// ISC (Vixie) cron: a skipped local time fires once at the transition; a repeated local
    /// time fires once, on its first pass. Used by maintenance windows and every schedule that
    /// watchkeeper itself decides on.
    #[default]
    Vixie,
    /// What the Kubernetes CronJob controller does (robfig/cron v3 inside
    /// kube-controller-manager): a skipped local time does not fire at all, and a repeated local
    /// time fires on *both* passes (kubernetes/kubernetes#121594). Used for CronJobSpecs, whose
    /// runs Kubernetes starts, so that lateness is judged against the runs it really makes.
    Kubernetes,
}

/// How many days a search walks before giving up. Nine years cover `0 0 29 2 *` across the
/// non-leap year 2100; expressions that never fire are rejected at parse time.
const SEARCH_DAYS: u64 = 9 * 366;

const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// A parsed cron schedule bound to a time zone.
///
/// Syntax is the standard five fields `minute hour day-of-month month day-of-week` with `*`,
/// lists (`1,15`), ranges (`1-5`), steps (`*/15`, `0-30/10`, `5/15` meaning `5-59/15`), month
/// names (`JAN`–`DEC`) and day names (`SUN`–`SAT`, Sunday is 0), `?` as a synonym of `*` in the
/// day fields, and the descriptors `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/
/// `@midnight` and `@hourly`. As in Vixie cron and Kubernetes, when both day-of-month and
/// day-of-week are restricted (neither is `*`), a day matches if *either* matches; following the
/// Kubernetes parser, a stepped star such as `*/2` counts as restricted.
///
/// Evaluation happens in local time of the zone; see the [module documentation](super) for
/// daylight saving time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronSchedule {
    expr: String,
    tz: Tz,
    minutes: u64,
    hours: u32,
    days_of_month: u32,
    months: u16,
    days_of_week: u8,
    dom_star: bool,
    dow_star: bool,
    dst: DstRule,
}

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    names_offset: u32,
    allow_question: bool,
}

const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
    names_offset: 0,
    allow_question: false,
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
    names_offset: 0,
    allow_question: false,
};
const DAY_OF_MONTH: Field = Field {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
    names_offset: 0,
    allow_question: true,
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &MONTH_NAMES,
    names_offset: 1,
    allow_question: false,
};
const DAY_OF_WEEK: Field = Field {
    name: "day-of-week",
    min: 0,
    max: 6,
    names: &DAY_NAMES,
    names_offset: 0,
    allow_question: true,
};

/// A parsed field: bit `n` set when value `n` matches, and whether it was a plain `*`.
struct Parsed {
    bits: u64,
    star: bool,
}

impl Field {
    fn value(&self, text: &str) -> Result<u32, String> {
        if let Some(index) = self
            .names
            .iter()
            .position(|name| name.eq_ignore_ascii_case(text))
        {
            return Ok(index as u32 + self.names_offset);
        }
        let value: u32 = text.parse().map_err(|_| {
            if self.names.is_empty() {
                format!("{} field: {text:?} is not a number", self.name)
            } else {
                format!(
                    "{} field: {text:?} is not a number or a name ({}-{})",
                    self.name,
                    self.names[0],
                    self.names[self.names.len() - 1]
                )
            }
        })?;
        if value < self.min || value > self.max {
            let hint = if self.name == "day-of-week" && value == 7 {
                " (use 0 for Sunday; Kubernetes does not accept 7)"
            } else {
                ""
            };
            return Err(format!(
                "{} field: value {value} is out of range {}-{}{hint}",
                self.name, self.min, self.max
            ));
        }
        Ok(value)
    }

    fn parse(&self, text: &str) -> Result<Parsed, String> {
        let mut bits = 0u64;
        let mut star = false;
        for part in text.split(',') {
            if part.is_empty() {
                return Err(format!(
                    "{} field: empty list element in {text:?}",
                    self.name
                ));
            }
            let (range, step) = match part.split_once('/') {
                Some((range, step)) => {
                    let step: u32 = step.parse().map_err(|_| {
                        format!("{} field: step {step:?} is not a number", self.name)
                    })?;
                    if step == 0 {
                        return Err(format!("{} field: step must be at least 1", self.name));
                    }
                    (range, Some(step))
                }
                None => (part, None),
            };
            let (start, end, is_star) = if range == "*" || (range == "?" && self.allow_question) {
                (self.min, self.max, true)
            } else if let Some((low, high)) = range.split_once('-') {
                let (low, high) = (self.value(low)?, self.value(high)?);
                if low > high {
                    return Err(format!(
                        "{} field: range {range:?} starts after it ends",
                        self.name
                    ));
                }
                (low, high, false)
            } else {
                let value = self.value(range)?;
                // `5/15` means `5-max/15`, as in the Kubernetes cron parser.
                (value, if step.is_some() { self.max } else { value }, false)
            };
            let step = step.unwrap_or(1);
            star |= is_star && step == 1;
            let mut value = start;
            while value <= end {
                bits |= 1 << value;
                value += step;
            }
        }
        Ok(Parsed { bits, star })
    }
}

impl CronSchedule {
    /// Parses a five-field cron expression (or a descriptor such as `@daily`) evaluated in `tz`.
    ///
    /// Rejected with an explanation: six- or seven-field forms with seconds or years, `TZ=` and
    /// `CRON_TZ=` prefixes (the time zone belongs in `spec.timeZone`), `@every`, out-of-range
    /// values, and expressions that can never fire such as `0 0 30 2 *`.
    pub fn parse(expr: &str, tz: Tz) -> Result<Self, ScheduleError> {
        let error = |reason: String| ScheduleError::InvalidCron {
            expr: expr.to_string(),
            reason,
        };
        let trimmed = expr.trim();
        if trimmed.is_empty() {
            return Err(error("the expression is empty".into()));
        }
        let upper = trimmed.to_ascii_uppercase();
        if upper.starts_with("TZ=") || upper.starts_with("CRON_TZ=") {
            return Err(error(
                "a time zone prefix is not allowed in the schedule; use spec.timeZone".into(),
            ));
        }
        let expanded = if let Some(descriptor) = trimmed.strip_prefix('@') {
            match descriptor.to_ascii_lowercase().as_str() {
                "yearly" | "annually" => "0 0 1 1 *",
                "monthly" => "0 0 1 * *",
                "weekly" => "0 0 * * 0",
                "daily" | "midnight" => "0 0 * * *",
                "hourly" => "0 * * * *",
                other if other.starts_with("every") => {
                    return Err(error(
                        "@every is not supported; write the interval as a cron expression such as \"*/15 * * * *\"".into(),
                    ));
                }
                _ => {
                    return Err(error(format!(
                        "unknown descriptor \"@{descriptor}\" (expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)"
                    )));
                }
            }
        } else {
            trimmed
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        match fields.len() {
            5 => {}
            6 | 7 => {
                return Err(error(format!(
                    "has {} fields; expected 5 (minute hour day-of-month month day-of-week) — seconds and years are not supported",
                    fields.len()
                )));
            }
            n => {
                return Err(error(format!(
                    "has {n} fields; expected 5 (minute hour day-of-month month day-of-week)"
                )));
            }
        }
        let minutes = MINUTE.parse(fields[0]).map_err(error)?;
        let hours = HOUR.parse(fields[1]).map_err(error)?;
        let dom = DAY_OF_MONTH.parse(fields[2]).map_err(error)?;
        let months = MONTH.parse(fields[3]).map_err(error)?;
        let dow = DAY_OF_WEEK.parse(fields[4]).map_err(error)?;
        let schedule = CronSchedule {
            expr: expr.to_string(),
            tz,
            minutes: minutes.bits,
            hours: hours.bits as u32,
            days_of_month: dom.bits as u32,
            months: months.bits as u16,
            days_of_week: dow.bits as u8,
            dom_star: dom.star,
            dow_star: dow.star,
            dst: DstRule::Vixie,
        };
        if !schedule.can_fire() {
            return Err(error(
                "it never fires: no selected month has the selected day of month".into(),
            ));
        }
        Ok(schedule)
    }

    /// The expression as it was given.
    pub fn expression(&self) -> &str {
        &self.expr
    }

    /// The time zone the expression is evaluated in.
    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    /// The same schedule with another daylight saving time rule (parsing gives
    /// [`DstRule::Vixie`]).
    pub fn with_dst_rule(mut self, rule: DstRule) -> Self {
        self.dst = rule;
        self
    }

    /// The daylight saving time rule in force.
    pub fn dst_rule(&self) -> DstRule {
        self.dst
    }

    /// Whether some day in some year matches (only day-of-month restrictions in short months can
    /// make a syntactically valid expression impossible).
    fn can_fire(&self) -> bool {
        if self.dom_star || !self.dow_star {
            // Any day of month, or the day-of-week alternative always exists.
            return true;
        }
        (1..=12u32).any(|month| {
            self.months & (1 << month) != 0
                && (1..=max_days_in_month(month)).any(|day| self.days_of_month & (1 << day) != 0)
        })
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        if self.months & (1 << date.month()) == 0 {
            return false;
        }
        let dom = self.days_of_month & (1 << date.day()) != 0;
        let dow = self.days_of_week & (1 << date.weekday().num_days_from_sunday()) != 0;
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    fn hours(&self) -> impl DoubleEndedIterator<Item = u32> + Clone + '_ {
        (0..24u32).filter(|h| self.hours & (1 << h) != 0)
    }

    fn minutes(&self) -> impl DoubleEndedIterator<Item = u32> + Clone + '_ {
        (0..60u32).filter(|m| self.minutes & (1 << m) != 0)
    }

    fn at(&self, date: NaiveDate, hour: u32, minute: u32) -> Option<DateTime<Utc>> {
        let time = NaiveTime::from_hms_opt(hour, minute, 0)?;
        resolve_local(self.tz, NaiveDateTime::new(date, time))
    }

    /// The first firing strictly after `after`, or `None` if there is none within nine years.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.dst == DstRule::Kubernetes {
            return self.next_after_kubernetes(after);
        }
        let local = after.with_timezone(&self.tz).naive_local().date();
        // Start two days early: a skipped local time of the previous day can map to an instant
        // after `after` (gaps are at most a day long).
        let mut date = local.checked_sub_days(Days::new(2))?;
        let last_hour = self.hours().next_back()?;
        let last_minute = self.minutes().next_back()?;
        for _ in 0..SEARCH_DAYS {
            if self.day_matches(date) && self.at(date, last_hour, last_minute)? > after {
                for hour in self.hours() {
                    if self.at(date, hour, last_minute)? <= after {
                        continue;
                    }
                    for minute in self.minutes() {
                        let t = self.at(date, hour, minute)?;
                        if t > after {
                            return Some(t);
                        }
                    }
                }
            }
            date = date.succ_opt()?;
        }
        None
    }

    /// The last firing strictly before `before`, or `None` if there is none within nine years.
    pub fn previous_before(&self, before: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.dst == DstRule::Kubernetes {
            return self.previous_before_kubernetes(before);
        }
        let local = before.with_timezone(&self.tz).naive_local().date();
        let mut date = local.checked_add_days(Days::new(2))?;
        let first_hour = self.hours().next()?;
        let first_minute = self.minutes().next()?;
        for _ in 0..SEARCH_DAYS {
            if self.day_matches(date) && self.at(date, first_hour, first_minute)? < before {
                for hour in self.hours().rev() {
                    if self.at(date, hour, first_minute)? >= before {
                        continue;
                    }
                    for minute in self.minutes().rev() {
                        let t = self.at(date, hour, minute)?;
                        if t < before {
                            return Some(t);
                        }
                    }
                }
            }
            date = date.pred_opt()?;
        }
        None
    }

    /// Shortest nominal (wall-clock) time between two consecutive firings, measured on local
    /// times before daylight saving adjustments (so `30 2 * * *` has a period of 24 hours even
    /// though one day a year its instants are 23.5 hours apart). Computed exactly over the
    /// matching days of nine years from 2024-01-01, which covers every month length and leap
    /// years. `None` if it fires at most once in that span. Used to reject windows that would
    /// never close.
    pub fn min_period(&self) -> Option<std::time::Duration> {
        self.periods().map(|(shortest, _)| shortest)
    }

    /// Longest nominal (wall-clock) time between two consecutive firings, computed like
    /// [`Self::min_period`]; for example 31 days for `0 0 1 * *` and four years for
    /// `0 0 29 2 *`. Used for dead-man's-switch deadlines.
    pub fn max_period(&self) -> Option<std::time::Duration> {
        self.periods().map(|(_, longest)| longest)
    }

    /// (shortest, longest) gap between consecutive firings. Every matching day has the same
    /// times of day, so gaps are either between two times of one day or from the last time of a
    /// matching day to the first time of the next one.
    fn periods(&self) -> Option<(std::time::Duration, std::time::Duration)> {
        let times: Vec<i64> = self
            .hours()
            .flat_map(|h| self.minutes().map(move |m| i64::from(h * 60 + m)))
            .collect();
        let (first, last) = (*times.first()?, *times.last()?);
        let mut gaps: Vec<i64> = times.windows(2).map(|pair| pair[1] - pair[0]).collect();
        let mut date = NaiveDate::from_ymd_opt(2024, 1, 1)?;
        let mut previous: Option<NaiveDate> = None;
        let (mut shortest_between, mut longest_between) = (i64::MAX, 0);
        for _ in 0..SEARCH_DAYS {
            if self.day_matches(date) {
                if let Some(before) = previous {
                    let gap = (date - before).num_days() * 1440 - last + first;
                    shortest_between = shortest_between.min(gap);
                    longest_between = longest_between.max(gap);
                }
                previous = Some(date);
            }
            date = date.succ_opt()?;
        }
        if longest_between > 0 {
            gaps.extend([shortest_between, longest_between]);
        }
        let minutes = |m: i64| std::time::Duration::from_secs(u64::try_from(m).unwrap_or(0) * 60);
        Some((minutes(*gaps.iter().min()?), minutes(*gaps.iter().max()?)))
    }

    /// The next `n` firings strictly after `after`, in the schedule's time zone.
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

/// [`DstRule::Kubernetes`] searches. On a day whose UTC offset does not change, local order is
/// instant order and every local time exists once, so the search walks local times in order
/// like the ISC one; on a transition day every matching local time is mapped to all the instants
/// it denotes (none in a gap, two in a repeat) and the best one is kept.
impl CronSchedule {
    /// Whether the UTC offset is the same from an hour before `date` starts until an hour after
    /// it ends (sampled every 6 hours: offsets never change and change back within 6 hours).
    fn steady_day(&self, date: NaiveDate) -> bool {
        let Some(start) = date
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc() - TimeDelta::hours(15))
        else {
            return false;
        };
        let offset = |u: DateTime<Utc>| self.tz.offset_from_utc_datetime(&u.naive_utc()).fix();
        let first = offset(start);
        (1..=9).all(|k| offset(start + TimeDelta::hours(6 * k)) == first)
    }

    /// Every instant `date hour:minute` denotes in the zone: none in a gap, two in a repeat.
    fn instants(&self, date: NaiveDate, hour: u32, minute: u32) -> [Option<DateTime<Utc>>; 2] {
        let Some(time) = NaiveTime::from_hms_opt(hour, minute, 0) else {
            return [None, None];
        };
        match self.tz.from_local_datetime(&NaiveDateTime::new(date, time)) {
            LocalResult::Single(t) => [Some(t.with_timezone(&Utc)), None],
            LocalResult::Ambiguous(a, b) => {
                [Some(a.with_timezone(&Utc)), Some(b.with_timezone(&Utc))]
            }
            LocalResult::None => [None, None],
        }
    }

    /// The first firing on a steady `date` after `after`: local order is instant order, so
    /// hours whose last minute is not after `after` are skipped whole.
    fn first_on_steady_day(&self, date: NaiveDate, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let last_minute = self.minutes().next_back()?;
        let single = |h: u32, m: u32| self.instants(date, h, m)[0];
        self.hours()
            .filter(|&h| single(h, last_minute).is_some_and(|t| t > after))
            .find_map(|h| {
                self.minutes()
                    .find_map(|m| single(h, m).filter(|t| *t > after))
            })
    }

    /// The last firing on a steady `date` before `before`.
    fn last_on_steady_day(&self, date: NaiveDate, before: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let first_minute = self.minutes().next()?;
        let single = |h: u32, m: u32| self.instants(date, h, m)[0];
        self.hours()
            .rev()
            .filter(|&h| single(h, first_minute).is_some_and(|t| t < before))
            .find_map(|h| {
                self.minutes()
                    .rev()
                    .find_map(|m| single(h, m).filter(|t| *t < before))
            })
    }

    /// All firings on `date` (transition days only; at most 2 × 1440).
    fn all_on(&self, date: NaiveDate) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        self.hours()
            .flat_map(move |h| self.minutes().map(move |m| (h, m)))
            .flat_map(move |(h, m)| self.instants(date, h, m))
            .flatten()
    }

    fn next_after_kubernetes(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.tz).naive_local().date();
        let mut date = local.checked_sub_days(Days::new(2))?;
        let mut found: Option<(DateTime<Utc>, NaiveDate)> = None;
        for _ in 0..SEARCH_DAYS {
            if let Some((best, on)) = found {
                // Later days cannot fire earlier (one spare day for shifts at midnight).
                if date > on.succ_opt()? {
                    return Some(best);
                }
            }
            if self.day_matches(date) {
                let candidate = if self.steady_day(date) {
                    self.first_on_steady_day(date, after)
                } else {
                    self.all_on(date).filter(|t| *t > after).min()
                };
                if let Some(t) = candidate
                    && found.is_none_or(|(best, _)| t < best)
                {
                    found = Some((t, found.map_or(date, |(_, on)| on)));
                }
            }
            date = date.succ_opt()?;
        }
        found.map(|(best, _)| best)
    }

    fn previous_before_kubernetes(&self, before: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = before.with_timezone(&self.tz).naive_local().date();
        let mut date = local.checked_add_days(Days::new(2))?;
        let mut found: Option<(DateTime<Utc>, NaiveDate)> = None;
        for _ in 0..SEARCH_DAYS {
            if let Some((best, on)) = found
                && date < on.pred_opt()?
            {
                return Some(best);
            }
            if self.day_matches(date) {
                let candidate = if self.steady_day(date) {
                    self.last_on_steady_day(date, before)
                } else {
                    self.all_on(date).filter(|t| *t < before).max()
                };
                if let Some(t) = candidate
                    && found.is_none_or(|(best, _)| t > best)
                {
                    found = Some((t, found.map_or(date, |(_, on)| on)));
                }
            }
            date = date.pred_opt()?;
        }
        found.map(|(best, _)| best)
    }
}

/// Longest length of a month in any year (February counts 29).
fn max_days_in_month(month: u32) -> u32 {
    match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}
