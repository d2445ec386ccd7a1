//! Bridge to the schedule engine: parses `spec.schedule` in the job's time zone and measures the
//! gaps between runs (for the dead-man's switch rule).

use std::time::Duration as StdDuration;

use chrono::Utc;

use crate::api::validation::Errors;
use crate::schedule::CronSchedule;

/// Runs looked at when measuring gaps: enough to cover a year of a monthly job and the DST
/// changes of a daily one.
const GAP_SAMPLE: usize = 400;

/// Parses the schedule in `tz` (UTC when the zone itself was invalid, so a bad zone does not
/// hide a bad expression), recording an error at `spec.schedule` when it is malformed.
pub(super) fn parse(
    errors: &mut Errors,
    expr: &str,
    tz: Option<chrono_tz::Tz>,
) -> Option<CronSchedule> {
    errors.check(
        "spec.schedule",
        CronSchedule::parse(expr, tz.unwrap_or(chrono_tz::UTC)),
    )
}

/// The longest gap between consecutive runs over the coming runs, or `None` when the schedule
/// fires fewer than twice (e.g. only on 29 February of some year).
pub(super) fn longest_gap(schedule: &CronSchedule) -> Option<StdDuration> {
    let runs = schedule.upcoming(Utc::now(), GAP_SAMPLE);
    runs.windows(2)
        .filter_map(|pair| pair[1].signed_duration_since(pair[0]).to_std().ok())
        .max()
}
