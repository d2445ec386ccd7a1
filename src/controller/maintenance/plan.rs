//! Pure decisions of the MaintenanceWindow lifecycle: the schedule in one line, which
//! ConfigMap and workload effects a spec wants, which notices are due, deterministic Job
//! names, and when to look again. No I/O; unit-tested.

use chrono::{DateTime, TimeDelta, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::common::WorkloadKind;
use crate::api::maintenance_window::{
    AppliedEffect, EffectKind, MaintenanceWindowSpec, NoticeKind, NoticeRecord,
};
use crate::schedule::Window;

/// A Kubernetes `Time` (second precision when stored) from a chrono time.
pub fn k8s_time(at: DateTime<Utc>) -> Time {
    crate::monitor::status::time(at)
}

/// A chrono time from a Kubernetes `Time`.
pub fn chrono_time(time: &Time) -> DateTime<Utc> {
    crate::monitor::status::chrono_time(time)
}

/// Whether two instants are the same second (status stores times to the second).
pub fn same_second(a: DateTime<Utc>, b: DateTime<Utc>) -> bool {
    a.timestamp() == b.timestamp()
}

/// The schedule in one line, as `status.schedule` and feeds show it.
pub fn schedule_text(spec: &MaintenanceWindowSpec) -> String {
    let zone = &spec.time_zone;
    let schedule = &spec.schedule;
    if let Some(rrule) = &schedule.rrule {
        format!(
            "{} from {} for {} ({zone})",
            rrule.rule.trim_start_matches("RRULE:"),
            rrule.start,
            rrule.duration
        )
    } else if let Some(cron) = &schedule.cron {
        format!("{} for {} ({zone})", cron.expression, cron.duration)
    } else if let Some(once) = &schedule.one_off {
        format!("once {} to {}", once.start, once.end)
    } else {
        String::new()
    }
}

/// A ConfigMap key or workload the spec wants changed while open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wanted {
    /// Set `key` of ConfigMap `name` to `value`.
    ConfigMap {
        /// The ConfigMap.
        name: String,
        /// The key.
        key: String,
        /// The value while open.
        value: String,
    },
    /// Scale a workload to `replicas`.
    Scale {
        /// Deployment or StatefulSet.
        kind: WorkloadKind,
        /// Its name.
        name: String,
        /// Replicas while open.
        replicas: i32,
    },
}

impl Wanted {
    /// Whether `record` is this effect's record (same target; the value may differ).
    pub fn is_recorded_by(&self, record: &AppliedEffect) -> bool {
        match self {
            Wanted::ConfigMap { name, key, .. } => {
                record.kind == EffectKind::ConfigMapSet
                    && record.target_name == *name
                    && record.key.as_deref() == Some(key)
            }
            Wanted::Scale { kind, name, .. } => {
                record.kind == EffectKind::Scale
                    && record.target_kind == workload_kind_name(*kind)
                    && record.target_name == *name
            }
        }
    }

    /// What it changes, for messages.
    pub fn describe(&self) -> String {
        match self {
            Wanted::ConfigMap { name, key, .. } => format!("ConfigMap {name} key {key}"),
            Wanted::Scale { kind, name, .. } => format!("{} {name}", workload_kind_name(*kind)),
        }
    }
}

/// `Deployment` or `StatefulSet`.
pub fn workload_kind_name(kind: WorkloadKind) -> &'static str {
    match kind {
        WorkloadKind::Deployment => "Deployment",
        WorkloadKind::StatefulSet => "StatefulSet",
    }
}

/// The ConfigMap and workload effects of a spec, in spec order.
pub fn wanted_effects(spec: &MaintenanceWindowSpec) -> Vec<Wanted> {
    let effects = &spec.effects;
    let maps = effects.config_map_set.iter().map(|set| Wanted::ConfigMap {
        name: set.config_map_key_ref.name.clone(),
        key: set.config_map_key_ref.key.clone(),
        value: set.value.clone(),
    });
    let scales = effects.scale.iter().map(|scale| Wanted::Scale {
        kind: scale.workload_ref.kind,
        name: scale.workload_ref.name.clone(),
        replicas: scale.replicas,
    });
    maps.chain(scales).collect()
}

/// An advance notice that is due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueNotice {
    /// The window it announces.
    pub window: Window,
    /// The `notices.advance` entry as written, e.g. `7d`.
    pub advance: String,
}

/// Advance notices due at `now` for the next window that has not started (one per
/// `notices.advance` entry whose time has come and that was not sent), and the next instant
/// another one falls due. A window announced late (created after its notice time) is announced
/// at once; a window that has started gets no advance notice.
pub fn advance_notices(
    spec: &MaintenanceWindowSpec,
    upcoming: Option<Window>,
    sent: &[NoticeRecord],
    now: DateTime<Utc>,
) -> (Vec<DueNotice>, Option<DateTime<Utc>>) {
    let (Some(notices), Some(window)) = (&spec.notices, upcoming) else {
        return (Vec::new(), None);
    };
    if window.start <= now {
        return (Vec::new(), None);
    }
    let mut due = Vec::new();
    let mut next: Option<DateTime<Utc>> = None;
    for advance in &notices.advance {
        let Ok(ahead) = advance.parse() else { continue };
        let Ok(ahead) = TimeDelta::from_std(ahead) else {
            continue;
        };
        let at = window.start - ahead;
        let already = sent.iter().any(|r| {
            r.kind == NoticeKind::Advance
                && same_second(chrono_time(&r.window_start), window.start)
                && r.advance.as_deref() == Some(advance.0.as_str())
        });
        if already {
            continue;
        }
        if at <= now {
            due.push(DueNotice {
                window,
                advance: advance.0.clone(),
            });
        } else {
            next = Some(next.map_or(at, |n| n.min(at)));
        }
    }
    (due, next)
}

/// Whether a notice of `kind` for the window starting at `start` was sent.
pub fn notice_sent(sent: &[NoticeRecord], kind: NoticeKind, start: DateTime<Utc>) -> bool {
    sent.iter()
        .any(|r| r.kind == kind && same_second(chrono_time(&r.window_start), start))
}

/// Keeps only notice records of windows starting at or after `keep_from` (older windows'
/// records are no longer needed to avoid repeats), so status does not grow.
pub fn prune_notices(sent: &mut Vec<NoticeRecord>, keep_from: DateTime<Utc>) {
    sent.retain(|r| chrono_time(&r.window_start).timestamp() >= keep_from.timestamp());
}

/// The Job of one task in one window: `<window>-<task>-<start unix seconds>`, shortened with
/// a hash when longer than 63 characters. Deterministic, so a restarted controller finds the
/// Job it created instead of creating a second one.
pub fn job_name(window: &str, task: &str, start: DateTime<Utc>) -> String {
    let full = format!("{window}-{task}-{}", start.timestamp());
    if full.len() <= 63 {
        return full;
    }
    let hash = full.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let head: String = full.chars().take(46).collect();
    format!("{}-{hash:016x}", head.trim_end_matches('-'))
}

/// When to reconcile again: the earliest of the given instants after `now` (a little after,
/// so the boundary has passed), as a delay; `None` when there is none.
pub fn wake_after(now: DateTime<Utc>, at: &[Option<DateTime<Utc>>]) -> Option<std::time::Duration> {
    let next = at.iter().flatten().filter(|t| **t > now).min()?;
    let delay = (*next - now + TimeDelta::milliseconds(20)).to_std().ok()?;
    Some(delay)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
