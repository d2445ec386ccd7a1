//! Grandfather-father-son retention, as restic `forget`, borg `prune` and K8up define it.
//!
//! Rules, each applied independently to the backups sorted newest first (a backup kept by
//! several rules lists every reason):
//!
//! - **Newest**: the newest backup is always kept, even if it failed, so the latest attempt stays
//!   available for diagnosis.
//! - **NewestSuccessful**: the newest successful backup is always kept, whatever the policy says,
//!   so a policy of all zeros can never delete the only restorable backup.
//! - **Last**: the newest `keep_last` successful backups.
//! - **Daily / Weekly / Monthly / Yearly**: for each of the most recent N distinct calendar
//!   periods *that contain a successful backup* (days, ISO 8601 weeks, months, years, in the
//!   policy's time zone), the newest successful backup of that period. Periods without backups
//!   do not use up the count, as in restic: after a two-week outage `daily: 7` still keeps seven
//!   backups.
//! - **TooYoung**: nothing that completed less than `min_age` before `now` is deleted (including
//!   backups whose completion time is after `now`, e.g. from clock skew).
//!
//! Only successful backups count toward `keep_last` and the period buckets; failed backups are
//! deleted once they are older than `min_age`, unless they are the newest backup.
//!
//! The plan is idempotent (planning again on the kept backups deletes nothing more at the same
//! `now`) and monotonic (raising any count never deletes more); property tests check both.

use std::time::Duration;

use chrono::{DateTime, Datelike, Days, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// How many backups to keep; see the [module documentation](self) for the exact rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Keep the newest N successful backups.
    pub keep_last: u32,
    /// Keep the newest successful backup of each of the N most recent days that have one.
    pub daily: u32,
    /// Keep the newest successful backup of each of the N most recent ISO weeks that have one.
    pub weekly: u32,
    /// Keep the newest successful backup of each of the N most recent months that have one.
    pub monthly: u32,
    /// Keep the newest successful backup of each of the N most recent years that have one.
    pub yearly: u32,
    /// Never delete a backup younger than this, whatever the counts say.
    pub min_age: Duration,
}

/// One backup as the retention engine sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupRecord {
    /// Identifier used to delete the backup (snapshot ID, object name).
    pub id: String,
    /// When the backup finished.
    pub completed_at: DateTime<Utc>,
    /// Whether the backup completed and can be restored.
    pub successful: bool,
}

/// Why a backup is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeepReason {
    /// The newest backup, successful or not.
    Newest,
    /// The newest successful backup.
    NewestSuccessful,
    /// Among the newest `keep_last` successful backups.
    Last,
    /// Newest successful backup of one of the `daily` most recent days.
    Daily,
    /// Newest successful backup of one of the `weekly` most recent ISO weeks.
    Weekly,
    /// Newest successful backup of one of the `monthly` most recent months.
    Monthly,
    /// Newest successful backup of one of the `yearly` most recent years.
    Yearly,
    /// Younger than `min_age`.
    TooYoung,
}

impl std::fmt::Display for KeepReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeepReason::Newest => "newest",
            KeepReason::NewestSuccessful => "newest successful",
            KeepReason::Last => "last",
            KeepReason::Daily => "daily",
            KeepReason::Weekly => "weekly",
            KeepReason::Monthly => "monthly",
            KeepReason::Yearly => "yearly",
            KeepReason::TooYoung => "younger than minAge",
        })
    }
}

/// What to keep (with every reason) and what to delete, both newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionDecision {
    /// Backups to keep and why.
    pub keep: Vec<(String, Vec<KeepReason>)>,
    /// Backups to delete.
    pub delete: Vec<String>,
}

/// Calendar period a backup falls into, in the policy's time zone.
fn period_key(reason: KeepReason, t: DateTime<Tz>) -> (i32, u32) {
    match reason {
        KeepReason::Daily => (t.year(), t.ordinal()),
        KeepReason::Weekly => {
            let week = t.iso_week();
            (week.year(), week.week())
        }
        KeepReason::Monthly => (t.year(), t.month()),
        _ => (t.year(), 0),
    }
}

/// Decides which of `backups` to keep under `policy` at `now`, with periods computed in `tz`.
/// Every input backup appears exactly once, in `keep` or in `delete`.
pub fn plan(
    policy: &RetentionPolicy,
    tz: Tz,
    backups: &[BackupRecord],
    now: DateTime<Utc>,
) -> RetentionDecision {
    let mut order: Vec<usize> = (0..backups.len()).collect();
    // Newest first; ties broken by id so the plan does not depend on the listing order.
    order.sort_by(|&a, &b| {
        backups[b]
            .completed_at
            .cmp(&backups[a].completed_at)
            .then_with(|| backups[b].id.cmp(&backups[a].id))
    });
    let mut reasons: Vec<Vec<KeepReason>> = vec![Vec::new(); backups.len()];
    if let Some(&newest) = order.first() {
        reasons[newest].push(KeepReason::Newest);
    }
    let successful: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| backups[i].successful)
        .collect();
    if let Some(&newest) = successful.first() {
        reasons[newest].push(KeepReason::NewestSuccessful);
    }
    for &i in successful.iter().take(policy.keep_last as usize) {
        reasons[i].push(KeepReason::Last);
    }
    for (reason, count) in [
        (KeepReason::Daily, policy.daily),
        (KeepReason::Weekly, policy.weekly),
        (KeepReason::Monthly, policy.monthly),
        (KeepReason::Yearly, policy.yearly),
    ] {
        let mut last_key = None;
        let mut kept = 0;
        for &i in &successful {
            if kept >= count {
                break;
            }
            let key = period_key(reason, backups[i].completed_at.with_timezone(&tz));
            if last_key != Some(key) {
                // The first backup seen of a period is its newest, since the list is sorted.
                last_key = Some(key);
                reasons[i].push(reason);
                kept += 1;
            }
        }
    }
    let min_age = TimeDelta::from_std(policy.min_age).unwrap_or(TimeDelta::MAX);
    for &i in &order {
        if now.signed_duration_since(backups[i].completed_at) < min_age {
            reasons[i].push(KeepReason::TooYoung);
        }
    }
    let mut decision = RetentionDecision::default();
    for &i in &order {
        let id = backups[i].id.clone();
        if reasons[i].is_empty() {
            decision.delete.push(id);
        } else {
            let mut why = std::mem::take(&mut reasons[i]);
            why.sort_unstable();
            decision.keep.push((id, why));
        }
    }
    decision
}

/// A history of one successful backup a day at `at_hour_utc`:00 UTC for the `days` days up to
/// `now` (the newest is today's if that hour has passed, otherwise yesterday's), oldest first.
/// `watchkeeper check` uses it to preview what a policy would keep.
pub fn sample_daily_history(now: DateTime<Utc>, days: u32, at_hour_utc: u32) -> Vec<BackupRecord> {
    let hour = at_hour_utc.min(23);
    let today = now.date_naive();
    let newest_day = match today
        .and_hms_opt(hour, 0, 0)
        .map(|t| Utc.from_utc_datetime(&t))
    {
        Some(t) if t <= now => today,
        _ => today.pred_opt().unwrap_or(today),
    };
    (0..days)
        .rev()
        .filter_map(|back| {
            let day = newest_day.checked_sub_days(Days::new(u64::from(back)))?;
            let completed_at = Utc.from_utc_datetime(&day.and_hms_opt(hour, 0, 0)?);
            Some(BackupRecord {
                id: format!("backup-{}", completed_at.format("%Y%m%d-%H%M")),
                completed_at,
                successful: true,
            })
        })
        .collect()
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod tests;
