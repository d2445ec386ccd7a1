//! Time windows: recurring (RRULE or cron start plus a duration) or one-off, with merging of
//! overlapping occurrences.

use chrono::{DateTime, Utc};

use super::{CronSchedule, RecurrenceRule};

/// A half-open time interval `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    /// First instant inside the window.
    pub start: DateTime<Utc>,
    /// First instant after the window.
    pub end: DateTime<Utc>,
}

/// When a window opens and how long it stays open.
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

impl WindowSchedule {
    /// Up to `n` windows that end after `after`, in order, overlapping or adjacent ones merged.
    pub fn next_windows(&self, after: DateTime<Utc>, n: usize) -> Vec<Window> {
        let _ = (after, n);
        Vec::new()
    }

    /// The (merged) window open at `t`, if any.
    pub fn open_at(&self, t: DateTime<Utc>) -> Option<Window> {
        let _ = t;
        None
    }

    /// The most recent (merged) window that closed at or before `before`.
    pub fn previous(&self, before: DateTime<Utc>) -> Option<Window> {
        let _ = before;
        None
    }
}
