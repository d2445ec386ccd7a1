//! The verdict: health, next run, missed starts.

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use super::{JobHealth, JobMemory, Problem, RunOutcome, WatchPolicy, WatchReport};
use crate::schedule::Window;

/// The Kubernetes CronJob controller's limit: with more missed start times than this since the
/// last schedule time (or within the starting deadline) it records the Warning event
/// `TooManyMissedTimes` ("too many missed start times … Set or decrease
/// .spec.startingDeadlineSeconds or check clock skew"). Controllers before Kubernetes 1.21 also
/// stopped scheduling the job at that point.
pub const TOO_MANY_MISSED_STARTS: u32 = 100;

/// Due times skipped over while looking for the first overdue one (all inside excused windows);
/// past this the search gives up rather than spin.
const MAX_EXCUSED_SKIPS: usize = 10_000;

fn delta(d: std::time::Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// A time in the job's zone for messages, e.g. `2026-03-08 03:00 EDT`.
fn local(tz: Tz, t: DateTime<Utc>) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string()
}

/// `5m`, `1h30m`, `45s` for messages.
fn human(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    let parts = [
        (secs / 3600, "h"),
        (secs % 3600 / 60, "m"),
        (secs % 60, "s"),
    ];
    let text: String = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if text.is_empty() { "0s".into() } else { text }
}

/// Sorted, merged copy of the excused windows.
fn merged(excused: &[Window]) -> Vec<Window> {
    let mut windows: Vec<Window> = excused
        .iter()
        .filter(|w| w.end > w.start)
        .copied()
        .collect();
    windows.sort();
    let mut out: Vec<Window> = Vec::with_capacity(windows.len());
    for w in windows {
        match out.last_mut() {
            Some(last) if w.start <= last.end => last.end = last.end.max(w.end),
            _ => out.push(w),
        }
    }
    out
}

fn excused_at(windows: &[Window], t: DateTime<Utc>) -> Option<&Window> {
    windows.iter().find(|w| w.start <= t && t < w.end)
}

/// Judges a job at `now`.
///
/// `watching_since` is when watching began (object creation or the first sight of it); no due
/// time before it is held against the job, and the dead-man's switch counts from the later of
/// it and the last success. Callers that resume a suspended job should pass the suspension as an
/// excused window (or restart `watching_since`), since its due times were not meant to run.
///
/// `excused`: time ranges (maintenance windows) whose due times and dead-man time do not count.
pub fn evaluate(
    policy: &WatchPolicy,
    memory: &JobMemory,
    watching_since: DateTime<Utc>,
    excused: &[Window],
    now: DateTime<Utc>,
) -> WatchReport {
    let schedule = &policy.schedule;
    let tz = schedule.time_zone();
    let windows = merged(excused);
    let missed_starts = missed_starts(policy, memory, watching_since, now);
    let mut report = WatchReport {
        health: JobHealth::Unknown,
        reason: "AwaitingFirstRun",
        message: String::new(),
        next_run: None,
        overdue_since: None,
        missed_starts,
        stuck: false,
        problems: Vec::new(),
    };
    if policy.suspended {
        report.health = JobHealth::Suspended;
        report.reason = "Suspended";
        report.message = "the job is suspended: no runs start and nothing is judged".into();
        return report;
    }
    report.next_run = schedule.next_after(now);
    report.stuck = missed_starts > TOO_MANY_MISSED_STARTS;

    if let Some(problem) = missed(policy, memory, watching_since, &windows, now, tz) {
        report.problems.push(problem);
    }
    let threshold = policy.failure_threshold.max(1);
    if memory.consecutive_failures >= threshold {
        let since = memory
            .failing_since
            .or(memory.last_failure_time)
            .unwrap_or(now);
        let last = memory
            .last_run
            .as_ref()
            .filter(|run| run.outcome == RunOutcome::Failed)
            .and_then(|run| run.message.as_deref())
            .map(|m| format!("; last: {m}"))
            .unwrap_or_default();
        report.problems.push(Problem {
            health: JobHealth::Failing,
            reason: "ConsecutiveFailures",
            message: format!(
                "{} consecutive run(s) failed (threshold {threshold}), the last at {}{last}",
                memory.consecutive_failures,
                memory
                    .last_failure_time
                    .map_or_else(|| "an unknown time".to_string(), |t| local(tz, t)),
            ),
            since,
        });
    }
    let overdue = overdue_since(policy, memory, watching_since, &windows, now);
    report.overdue_since = overdue;
    if report.stuck {
        report.problems.push(Problem {
            health: JobHealth::Late,
            reason: "TooManyMissedStarts",
            message: format!(
                "more than {TOO_MANY_MISSED_STARTS} start times were missed since {}: the Kubernetes CronJob controller reports \"too many missed start times\"; set or decrease startingDeadline, or check the controller and clock skew",
                local(
                    tz,
                    memory.last_schedule_time.unwrap_or(watching_since)
                )
            ),
            since: overdue.unwrap_or(now),
        });
    } else if let Some(due) = overdue {
        let running = memory
            .last_run
            .as_ref()
            .filter(|run| run.outcome == RunOutcome::Running)
            .map(|run| {
                format!(
                    " (run {} started {} is still running)",
                    run.name,
                    local(tz, run.started_at)
                )
            })
            .unwrap_or_default();
        report.problems.push(Problem {
            health: JobHealth::Late,
            reason: "RunLate",
            message: format!(
                "the run due at {} has not started within {}{running}",
                local(tz, due),
                human(policy.late_after)
            ),
            since: due + delta(policy.late_after),
        });
    }

    if let Some(first) = report.problems.first() {
        report.health = first.health;
        report.reason = first.reason;
        report.message = report
            .problems
            .iter()
            .map(|p| p.message.as_str())
            .collect::<Vec<_>>()
            .join("; ");
    } else if memory.last_run.is_some()
        || memory.last_schedule_time.is_some()
        || memory.watermark().is_some()
    {
        report.health = JobHealth::Healthy;
        report.reason = "OnSchedule";
        report.message = match memory.last_successful_time {
            Some(t) => format!("runs start on time; last success at {}", local(tz, t)),
            None => "runs start on time".to_string(),
        };
    } else {
        report.message = match report.next_run {
            Some(t) => format!("no run yet; the first is due at {}", local(tz, t)),
            None => "no run yet and the schedule does not fire again".to_string(),
        };
    }
    report
}

/// Due times in `(earliest, now]` where `earliest` is the last schedule time (or
/// `watching_since`), moved up to `now - starting_deadline` when that is later — what the
/// Kubernetes CronJob controller counts. Counted exactly (Kubernetes extrapolates from the first
/// two intervals, which agrees for regular schedules), capped at the limit + 1.
fn missed_starts(
    policy: &WatchPolicy,
    memory: &JobMemory,
    watching_since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> u32 {
    let mut earliest = memory.last_schedule_time.unwrap_or(watching_since);
    if let Some(deadline) = policy.starting_deadline {
        earliest = earliest.max(now - delta(deadline));
    }
    let mut count = 0;
    let mut cursor = earliest;
    while count <= TOO_MANY_MISSED_STARTS {
        match policy.schedule.next_after(cursor) {
            Some(t) if t <= now => {
                count += 1;
                cursor = t;
            }
            _ => break,
        }
    }
    count
}

/// The first due time after the last schedule time (and after `watching_since`), outside every
/// excused window, whose grace has passed without a start.
fn overdue_since(
    policy: &WatchPolicy,
    memory: &JobMemory,
    watching_since: DateTime<Utc>,
    windows: &[Window],
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let anchor = memory
        .last_schedule_time
        .map_or(watching_since, |t| t.max(watching_since));
    let limit = now - delta(policy.late_after);
    let mut cursor = anchor;
    for _ in 0..MAX_EXCUSED_SKIPS {
        let due = policy.schedule.next_after(cursor)?;
        if due > limit {
            return None;
        }
        match excused_at(windows, due) {
            // Jump past the window: its first instant after is `end`, which is not excused.
            Some(window) => cursor = window.end - TimeDelta::nanoseconds(1),
            None => return Some(due),
        }
    }
    None
}

/// Dead-man's switch: Missed when the counted (not excused) time since the later of
/// `watching_since` and the last success exceeds the switch.
fn missed(
    policy: &WatchPolicy,
    memory: &JobMemory,
    watching_since: DateTime<Utc>,
    windows: &[Window],
    now: DateTime<Utc>,
    tz: Tz,
) -> Option<Problem> {
    let switch = delta(policy.dead_mans_switch?);
    let from = memory
        .last_successful_time
        .map_or(watching_since, |t| t.max(watching_since));
    let since = deadline_after(from, switch, windows)?;
    if now <= since {
        return None;
    }
    let what = match memory.last_successful_time {
        Some(t) => format!("the last success was at {}", local(tz, t)),
        None => format!("no success since watching began at {}", local(tz, from)),
    };
    Some(Problem {
        health: JobHealth::Missed,
        reason: "NoRecentSuccess",
        message: format!(
            "no run succeeded within the dead-man's switch of {}: {what}",
            human(policy.dead_mans_switch.unwrap_or_default())
        ),
        since,
    })
}

/// The instant at which `budget` of counted time has passed since `from`, not counting time
/// inside `windows` (sorted, merged).
fn deadline_after(
    from: DateTime<Utc>,
    budget: TimeDelta,
    windows: &[Window],
) -> Option<DateTime<Utc>> {
    let mut cursor = from;
    let mut left = budget;
    for window in windows.iter().filter(|w| w.end > from) {
        let start = window.start.max(cursor);
        if start - cursor >= left {
            break;
        }
        left -= start - cursor;
        cursor = window.end;
    }
    cursor.checked_add_signed(left)
}
