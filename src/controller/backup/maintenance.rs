//! What MaintenanceWindows do to one BackupPolicy, from the maintenance calendar
//! ([`MaintenanceIndex`]). Pure apart from reading the index.
//!
//! - `pauseBackups`: while a window covering the policy is open, its backup and verify
//!   CronJobs are applied with `suspend: true` (a `spec.suspend: true` of the user's still
//!   wins after the window); the `Paused` condition names the window and its end. A
//!   backup-now annotation is still honoured while paused: it is an explicit human request.
//! - `suppressAlerts`: while a window covering the policy is open, alert rounds are muted
//!   (de-duplication state still advances); an alert still firing after the window is sent
//!   then.
//! - RPO after a pause: the `rpo-missed` alert is withheld while paused and for one RPO after
//!   the window closes, so the backups the pause skipped do not page as soon as it ends when
//!   the next scheduled backup runs. `RPOMet` itself still tells the truth.
//!
//! The index scopes `suppressAlerts` to HealthMonitors; BackupPolicies ask it with
//! [`ALL_EFFECTS_KIND`] (which keeps every effect) and pick the two effects they honour.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use crate::controller::conditions::{ConditionStatus, DesiredCondition};
use crate::controller::maintenance::{Coverage, MaintenanceIndex};

/// The `Paused` condition type: whether a MaintenanceWindow holds the policy's CronJobs.
pub const PAUSED: &str = "Paused";
/// `Paused` reason while a window holds the CronJobs.
pub const REASON_MAINTENANCE_WINDOW: &str = "MaintenanceWindow";
/// `Paused` reason otherwise.
pub const REASON_NOT_PAUSED: &str = "NotPaused";
/// `Paused` reason when the user suspended the policy (`spec.suspend`).
pub const REASON_SUSPENDED: &str = "Suspended";

/// A kind name the index does not narrow, so every effect of a covering window comes back.
pub const ALL_EFFECTS_KIND: &str = "BackupPolicy/all-effects";

/// How far ahead window boundaries are looked for to requeue at.
pub const LOOKAHEAD: Duration = Duration::days(7);

/// What the maintenance calendar means for one policy at one instant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Maintenance {
    /// The open window pausing backups (the one closing last when several do).
    pub pause: Option<Coverage>,
    /// The open window suppressing alerts (the one closing last).
    pub suppress: Option<Coverage>,
    /// The `rpo-missed` alert is withheld until then (one RPO after a pause window closed).
    pub rpo_grace_until: Option<DateTime<Utc>>,
    /// The next instant at which any of the above changes, for a requeue.
    pub next_change: Option<DateTime<Utc>>,
}

/// Reads the calendar for a policy in `namespace` with `labels` at `now`.
pub fn observe(
    index: &MaintenanceIndex,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    rpo: Option<Duration>,
    now: DateTime<Utc>,
) -> Maintenance {
    let back = rpo.unwrap_or_else(Duration::zero);
    let windows = index.windows_between(
        namespace,
        ALL_EFFECTS_KIND,
        labels,
        now - back,
        now + LOOKAHEAD,
    );
    decide(&windows, rpo, now)
}

/// The pure part of [`observe`]: from the covering windows overlapping
/// `[now - rpo, now + LOOKAHEAD)`.
pub fn decide(windows: &[Coverage], rpo: Option<Duration>, now: DateTime<Utc>) -> Maintenance {
    let open = |c: &&Coverage| c.start <= now && now < c.end;
    let latest = |a: &&Coverage, b: &&Coverage| a.end.cmp(&b.end);
    let pause = windows
        .iter()
        .filter(open)
        .filter(|c| c.effects.pause_backups)
        .max_by(latest)
        .cloned();
    let suppress = windows
        .iter()
        .filter(open)
        .filter(|c| c.effects.suppress_alerts)
        .max_by(latest)
        .cloned();
    let rpo_grace_until = rpo.and_then(|rpo| {
        windows
            .iter()
            .filter(|c| c.effects.pause_backups && c.start <= now)
            .map(|c| c.end + rpo)
            .filter(|until| *until > now)
            .max()
    });
    let next_change = windows
        .iter()
        .filter(|c| c.effects.pause_backups || c.effects.suppress_alerts)
        .flat_map(|c| [c.start, c.end])
        .chain(rpo_grace_until)
        .filter(|t| *t > now)
        .min();
    Maintenance {
        pause,
        suppress,
        rpo_grace_until,
        next_change,
    }
}

/// Whether the owned CronJobs are applied suspended: the user's `spec.suspend`, or an open
/// pausing window.
pub fn desired_suspend(user_suspend: bool, maintenance: &Maintenance) -> bool {
    user_suspend || maintenance.pause.is_some()
}

/// The `Paused` condition.
pub fn paused_condition(user_suspend: bool, maintenance: &Maintenance) -> DesiredCondition {
    match (&maintenance.pause, user_suspend) {
        (Some(window), _) => DesiredCondition::new(
            PAUSED,
            ConditionStatus::True,
            REASON_MAINTENANCE_WINDOW,
            format!(
                "MaintenanceWindow {} pauses scheduled backups and verifications until {}{}",
                window.window,
                window.end.to_rfc3339(),
                if user_suspend {
                    " (spec.suspend is also true)"
                } else {
                    ""
                }
            ),
        ),
        (None, true) => DesiredCondition::new(
            PAUSED,
            ConditionStatus::True,
            REASON_SUSPENDED,
            "spec.suspend is true",
        ),
        (None, false) => DesiredCondition::new(
            PAUSED,
            ConditionStatus::False,
            REASON_NOT_PAUSED,
            "no MaintenanceWindow pauses this policy",
        ),
    }
}

#[cfg(test)]
#[path = "maintenance_tests.rs"]
mod tests;
