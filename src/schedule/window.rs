//! Time windows: recurring (RRULE or cron start plus a duration) or one-off, with merging of
//! overlapping occurrences.

use chrono::{DateTime, TimeDelta, Utc};

use super::{CronSchedule, RecurrenceRule, ScheduleError};

/// A half-open time interval `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    /// First instant inside the window.
    pub start: DateTime<Utc>,
    /// First instant after the window.
    pub end: DateTime<Utc>,
}

/// When a window opens and how long it stays open.
// The agreed interface stores the rule inline; a schedule exists once per resource, so the size
// difference between variants costs nothing worth an indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WindowSchedule {
    /// A window opens at every occurrence of an RFC 5545 rule and stays open for `duration`.
    Recurring {
        /// When windows open.
        rule: RecurrenceRule,
        /// How long each window stays open.
        duration: std::time::Duration,
    },
    /// A window opens at every firing of a cron expression and stays open for `duration`.
    Cron {
        /// When windows open.
        cron: CronSchedule,
        /// How long each window stays open.
        duration: std::time::Duration,
    },
    /// A single window.
    OneOff {
        /// When the window opens.
        start: DateTime<Utc>,
        /// When the window closes.
        end: DateTime<Utc>,
    },
}

/// Upper bound on occurrences chained into one merged window; reached only by schedules whose
/// windows never close (duration at least the period), which validation rejects.
const MAX_MERGE: usize = 10_000;

impl WindowSchedule {
    /// Builds a one-off window, rejecting an empty or inverted interval.
    pub fn one_off(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, ScheduleError> {
        if end <= start {
            return Err(ScheduleError::InvalidWindow(format!(
                "the window ends ({end}) before or when it starts ({start})"
            )));
        }
        Ok(WindowSchedule::OneOff { start, end })
    }

    /// Shortest nominal (wall-clock) time between two window starts, or `None` for a one-off
    /// window or a rule with a single occurrence. A recurring window whose duration is at least
    /// this long would never close. See [`CronSchedule::min_period`].
    pub fn min_period(&self) -> Option<std::time::Duration> {
        match self {
            WindowSchedule::Recurring { rule, .. } => rule.min_period(),
            WindowSchedule::Cron { cron, .. } => cron.min_period(),
            WindowSchedule::OneOff { .. } => None,
        }
    }

    fn duration(&self) -> TimeDelta {
        match self {
            WindowSchedule::Recurring { duration, .. } | WindowSchedule::Cron { duration, .. } => {
                TimeDelta::from_std(*duration).unwrap_or(TimeDelta::MAX)
            }
            WindowSchedule::OneOff { start, end } => *end - *start,
        }
    }

    fn next_start_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            WindowSchedule::Recurring { rule, .. } => rule.next_after(t),
            WindowSchedule::Cron { cron, .. } => cron.next_after(t),
            WindowSchedule::OneOff { start, .. } => (*start > t).then_some(*start),
        }
    }

    fn previous_start_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            WindowSchedule::Recurring { rule, .. } => rule.previous_before(t),
            WindowSchedule::Cron { cron, .. } => cron.previous_before(t),
            WindowSchedule::OneOff { start, .. } => (*start < t).then_some(*start),
        }
    }

    fn end_of(&self, start: DateTime<Utc>) -> DateTime<Utc> {
        start
            .checked_add_signed(self.duration())
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// The merged window containing the occurrence starting at `start`: earlier occurrences
    /// whose windows reach `start` and later ones starting before the end are chained in.
    fn merged_around(&self, start: DateTime<Utc>) -> Window {
        let mut window = Window {
            start,
            end: self.end_of(start),
        };
        for _ in 0..MAX_MERGE {
            match self.previous_start_before(window.start) {
                Some(earlier) if self.end_of(earlier) >= window.start => window.start = earlier,
                _ => break,
            }
        }
        self.extend_forward(window, start)
    }

    /// Extends `window`, whose last chained occurrence started at `last`, with following
    /// occurrences that start before it ends (adjacent windows merge too).
    fn extend_forward(&self, mut window: Window, mut last: DateTime<Utc>) -> Window {
        for _ in 0..MAX_MERGE {
            match self.next_start_after(last) {
                Some(next) if next <= window.end => {
                    window.end = window.end.max(self.end_of(next));
                    last = next;
                }
                _ => break,
            }
        }
        window
    }

    /// Up to `n` windows that end after `after`, in order, overlapping or adjacent ones merged.
    /// A window open at `after` comes first, with its real (possibly earlier) start.
    pub fn next_windows(&self, after: DateTime<Utc>, n: usize) -> Vec<Window> {
        let mut out = Vec::with_capacity(n.min(64));
        if n == 0 {
            return out;
        }
        let from = after
            .checked_sub_signed(self.duration())
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let Some(first) = self.next_start_after(from) else {
            return out;
        };
        let mut window = self.merged_around(first);
        loop {
            out.push(window);
            if out.len() >= n {
                return out;
            }
            // The last occurrence chained into `window` starts before its end; the next window
            // is the first occurrence starting after the end.
            match self.next_start_after(window.end) {
                Some(next) => {
                    window = self.extend_forward(
                        Window {
                            start: next,
                            end: self.end_of(next),
                        },
                        next,
                    )
                }
                None => return out,
            }
        }
    }

    /// The (merged) window open at `t`, if any (`start <= t < end`).
    pub fn open_at(&self, t: DateTime<Utc>) -> Option<Window> {
        let latest = self.previous_start_before(t + TimeDelta::nanoseconds(1))?;
        if self.end_of(latest) <= t {
            return None;
        }
        Some(self.merged_around(latest))
    }

    /// The most recent (merged) window that closed at or before `before`.
    pub fn previous(&self, before: DateTime<Utc>) -> Option<Window> {
        let latest = self.previous_start_before(before)?;
        let window = self.merged_around(latest);
        if window.end <= before {
            return Some(window);
        }
        // The window around `latest` is still open at `before`: the one before it.
        let earlier = self.previous_start_before(window.start)?;
        Some(self.merged_around(earlier))
    }
}
