//! Schedule engine: cron expressions, RFC 5545 recurrence rules and time windows, evaluated in an
//! IANA time zone. Pure computation with no Kubernetes types, shared by `watchkeeper check`
//! (validation and previews) and the controllers (next run, open maintenance windows).
//!
//! # Local time and daylight saving time
//!
//! Cron expressions and recurrence rules describe *wall-clock* times in their time zone, so a job
//! at `0 2 * * *` in `America/New_York` runs at 02:00 local time in winter and in summer. Two
//! cases need a rule because the wall clock is not a one-to-one map to instants:
//!
//! - **Gap** (spring forward, e.g. 02:30 does not exist on the day clocks jump from 02:00 to
//!   03:00): the occurrence fires once, at the first instant that exists after the skipped local
//!   time — the moment of the transition (03:00 local). Several skipped times (`*/15 2 * * *`)
//!   collapse into that single firing. This follows ISC (Vixie) cron, whose manual says jobs in
//!   a skipped interval "will be run immediately", so a nightly backup is never silently lost.
//!   Note that the robfig/cron library behind the Kubernetes CronJob controller *skips* such
//!   runs instead (robfig/cron pull request 541 proposes the ISC behaviour); previews of a
//!   Kubernetes CronJob with a schedule inside a gap therefore differ on that one day.
//! - **Repeat** (fall back, e.g. 01:30 happens twice): the occurrence fires once, at the first
//!   (daylight-time) instant, so a daily job never runs twice.
//!
//! Both rules are implemented once, in [`resolve_local`], and used by every schedule kind.
//!
//! CronJobSpec schedules are run by the Kubernetes CronJob controller, which skips gap times and
//! fires repeated times twice; [`DstRule::Kubernetes`] reproduces that for them (see
//! `docs/decisions.md`).

mod cron;
mod rrule;
pub mod watch;
mod window;

pub use cron::{CronSchedule, DstRule};
pub use rrule::RecurrenceRule;
pub use window::{Window, WindowSchedule};

use chrono::{
    DateTime, Duration as ChronoDuration, LocalResult, NaiveDateTime, Offset as _, TimeDelta,
    TimeZone, Timelike as _, Utc,
};
use chrono_tz::Tz;

/// Why a schedule, recurrence rule, time zone or window could not be used. Messages are written
/// to read well after a field path, e.g. `spec.schedule: invalid cron expression "…": …`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The cron expression does not parse or can never fire.
    #[error("invalid cron expression {expr:?}: {reason}")]
    InvalidCron {
        /// The expression as given.
        expr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The RRULE does not parse, uses an unsupported part, or can never produce an occurrence.
    #[error("invalid RRULE: {0}")]
    InvalidRRule(String),
    /// The time zone is not an IANA time zone name known to this build.
    #[error(
        "unknown time zone {0:?}: use an IANA time zone name such as \"UTC\", \"Europe/Berlin\" or \"America/New_York\""
    )]
    UnknownTimeZone(String),
    /// A window is malformed (zero duration, end before start, ...).
    #[error("invalid window: {0}")]
    InvalidWindow(String),
}

/// Parses an IANA time zone name (`Europe/Berlin`, `UTC`). Names are case-sensitive as in the
/// tz database and in Kubernetes `CronJob.spec.timeZone`; abbreviations such as `CET` that are
/// not zone names, and POSIX strings like `EST5EDT,M3.2.0,M11.1.0`, are rejected.
pub fn parse_time_zone(name: &str) -> Result<Tz, ScheduleError> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed != name {
        return Err(ScheduleError::UnknownTimeZone(name.to_string()));
    }
    name.parse::<Tz>()
        .map_err(|_| ScheduleError::UnknownTimeZone(name.to_string()))
}

/// Maps a local wall-clock time in `tz` to the instant it denotes, applying the daylight saving
/// rules described in the [module documentation](self): a time in a gap maps to the first instant
/// after it (the transition), a repeated time maps to its first occurrence.
///
/// The mapping is monotonic (non-decreasing) in `local`, which the schedule searches rely on.
pub fn resolve_local(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => Some(a.min(b).with_timezone(&Utc)),
        LocalResult::None => {
            // Transitions in the tz database happen on whole minutes, so the first local minute
            // that exists after the skipped one is the transition instant. Gaps are at most a
            // day long (Pacific/Apia skipped 30 December 2011).
            let start = local
                .with_second(0)
                .and_then(|t| t.with_nanosecond(0))
                .unwrap_or(local);
            (1..=(26 * 60)).find_map(|minutes| {
                tz.from_local_datetime(&(start + ChronoDuration::minutes(minutes)))
                    .earliest()
                    .map(|t| t.with_timezone(&Utc))
            })
        }
    }
}

/// How far local wall-clock order can disagree with instant order near `t`: a minute when the
/// zone's UTC offset is the same at every sample 6 hours apart within 30 hours of `t` (the usual
/// case, letting searches start right at `t`), otherwise 26 hours, more than the largest shift
/// in the tz database (Pacific/Apia, 24 hours in 2011).
pub(crate) fn local_slack(tz: Tz, t: DateTime<Utc>) -> TimeDelta {
    let offset = |u: DateTime<Utc>| tz.offset_from_utc_datetime(&u.naive_utc()).fix();
    let here = offset(t);
    let steady = (-5..=5).all(|k| {
        t.checked_add_signed(TimeDelta::hours(6 * k))
            .is_some_and(|u| offset(u) == here)
    });
    if steady {
        TimeDelta::minutes(1)
    } else {
        TimeDelta::hours(26)
    }
}

#[cfg(test)]
mod tests;
