//! MaintenanceWindows in embedded mode: the calendar of the windows in the manifests, built
//! into the controller's [`MaintenanceIndex`] so both modes answer "which windows cover this
//! resource" the same way, and the same feeds ([`ics`]) served as `/maintenance.ics` and
//! `/maintenance.json`.
//!
//! Honoured here: `suspendCronJobs` (due times inside an open window are not run and are
//! excused from Late/Missed) and `suppressAlerts` (a CronJobSpec's alert rounds are muted while
//! open) on HTTP-trigger CronJobSpecs. Everything else a window can do needs a cluster or the
//! monitor runtime and is listed as not applied at start.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::RunError;
use crate::api::maintenance_window::MaintenanceWindow;
use crate::api::maintenance_window::validate::window_schedule;
use crate::api::validation::Errors;
use crate::check::report::ErrorLine;
use crate::controller::maintenance::ics::{self, FeedEntry};
use crate::controller::maintenance::index::{Effects, IndexedWindow, MaintenanceIndex};
use crate::controller::maintenance::plan::schedule_text;
use crate::schedule::{Window, parse_time_zone};

/// Kind asked of the index so that it keeps every effect; run mode picks the ones it honours.
const ALL_EFFECTS_KIND: &str = "CronJobSpec/all-effects";

/// The windows of one `watchkeeper run`.
#[derive(Debug, Default)]
pub struct Calendar {
    index: MaintenanceIndex,
}

/// One open window, as `/status` and the table show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenWindow {
    /// The MaintenanceWindow, `namespace/name`.
    pub window: String,
    /// When it opened.
    pub start: DateTime<Utc>,
    /// When it closes.
    pub end: DateTime<Utc>,
    /// Its effects (`suspendCronJobs`, …).
    pub effects: Vec<&'static str>,
}

/// What the calendar means for one CronJobSpec at one instant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobMaintenance {
    /// The open window suspending the job, `namespace/name`.
    pub suspended_by: Option<String>,
    /// The open window muting its alerts, `namespace/name`.
    pub muted_by: Option<String>,
}

impl Calendar {
    /// A calendar of `windows` (validated manifests). `origin` is each window's `FILE:LINE`.
    pub fn new(windows: &[(String, MaintenanceWindow)]) -> Result<Self, RunError> {
        let calendar = Self::default();
        for (origin, window) in windows {
            // A suspended window is left out, as the controller leaves it out of its index.
            if !window.spec.suspend {
                calendar.index.upsert(indexed(origin, window)?);
            }
        }
        Ok(calendar)
    }

    /// Whether there are no windows.
    pub fn is_empty(&self) -> bool {
        self.index.keys().is_empty()
    }

    /// The suspend and mute windows open at `at` for a job.
    pub fn job_at(
        &self,
        namespace: &str,
        labels: &BTreeMap<String, String>,
        at: DateTime<Utc>,
    ) -> JobMaintenance {
        let covering = self.index.covering(namespace, ALL_EFFECTS_KIND, labels, at);
        let pick = |on: fn(&Effects) -> bool| {
            covering
                .iter()
                .filter(|c| on(&c.effects))
                .max_by_key(|c| c.end)
                .map(|c| c.window.clone())
        };
        JobMaintenance {
            suspended_by: pick(|e| e.suspend_jobs),
            muted_by: pick(|e| e.suppress_alerts),
        }
    }

    /// The windows suspending a job that overlap `[from, to)`: its excused time.
    pub fn job_excused(
        &self,
        namespace: &str,
        labels: &BTreeMap<String, String>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<Window> {
        self.index
            .windows_between(namespace, ALL_EFFECTS_KIND, labels, from, to)
            .into_iter()
            .filter(|c| c.effects.suspend_jobs)
            .map(|c| Window {
                start: c.start,
                end: c.end,
            })
            .collect()
    }

    /// Every window open at `at`, by key.
    pub fn open_at(&self, at: DateTime<Utc>) -> Vec<OpenWindow> {
        self.index
            .snapshot(None)
            .iter()
            .filter_map(|w| {
                w.open_at(at).map(|open| OpenWindow {
                    window: w.key(),
                    start: open.start,
                    end: open.end,
                    effects: effect_names(w.effects),
                })
            })
            .collect()
    }

    /// The feed entries (as the controller's feeds), optionally of one namespace.
    pub fn upcoming(&self, namespace: Option<&str>, now: DateTime<Utc>) -> Vec<FeedEntry> {
        ics::upcoming(&self.index.snapshot(namespace), now)
    }
}

fn effect_names(effects: Effects) -> Vec<&'static str> {
    [
        (effects.suppress_alerts, "suppressAlerts"),
        (effects.exclude_from_statistics, "excludeFromStatistics"),
        (effects.suspend_jobs, "suspendCronJobs"),
        (effects.pause_backups, "pauseBackups"),
        (effects.block_failover, "blockFailover"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect()
}

/// What a window asks that embedded mode does not do, one note each (printed at start).
pub fn not_applied(origin: &str, window: &MaintenanceWindow) -> Vec<String> {
    let spec = &window.spec;
    let effects = &spec.effects;
    let name = window.metadata.name.clone().unwrap_or_default();
    let mut parts = Vec::new();
    if effects.suppress_alerts {
        parts.push("suppressAlerts on HealthMonitors");
    }
    for (on, what) in [
        (effects.exclude_from_statistics, "excludeFromStatistics"),
        (effects.pause_backups, "pauseBackups"),
        (effects.backup_before_open, "backupBeforeOpen"),
        (effects.block_failover, "blockFailover"),
        (!effects.config_map_set.is_empty(), "configMapSet"),
        (!effects.scale.is_empty(), "scale"),
        (!spec.tasks.is_empty(), "tasks"),
        (spec.notices.is_some(), "notices"),
    ] {
        if on {
            parts.push(what);
        }
    }
    if parts.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "{origin} MaintenanceWindow/{name}: {} not applied in embedded mode (suspendCronJobs and suppressAlerts on CronJobSpecs are)",
        parts.join(", ")
    )]
}

/// The index entry of a validated window.
fn indexed(origin: &str, window: &MaintenanceWindow) -> Result<IndexedWindow, RunError> {
    let spec = &window.spec;
    let name = window.metadata.name.clone().unwrap_or_default();
    let refuse = |path: &str, message: String| {
        let (file, line) = origin.rsplit_once(':').unwrap_or((origin, "0"));
        RunError::Invalid(vec![ErrorLine {
            file: file.to_string(),
            line: line.parse().unwrap_or(0),
            kind: Some("MaintenanceWindow".to_string()),
            name: Some(name.clone()),
            path: path.to_string(),
            message,
        }])
    };
    let tz =
        parse_time_zone(&spec.time_zone).map_err(|e| refuse("spec.timeZone", e.to_string()))?;
    let mut errors = Errors::new();
    let schedule = window_schedule(&mut errors, &spec.schedule, tz);
    let problems = errors.into_vec();
    let Some(schedule) = schedule.filter(|_| problems.is_empty()) else {
        let message = problems
            .first()
            .map_or_else(|| "unusable schedule".to_string(), ToString::to_string);
        return Err(refuse("spec.schedule", message));
    };
    let effects = Effects::from_spec(&spec.effects);
    Ok(IndexedWindow {
        namespace: window
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string()),
        name,
        description: spec.description.clone(),
        schedule_text: schedule_text(spec),
        schedule,
        selector: spec.selector.clone(),
        effects,
        closed_early: None,
    })
}

/// The feeds' text.
pub fn feed_ics(calendar: &Calendar, namespace: Option<&str>, now: DateTime<Utc>) -> String {
    ics::to_ics(&calendar.upcoming(namespace, now), now)
}

/// The JSON feed.
pub fn feed_json(
    calendar: &Calendar,
    namespace: Option<&str>,
    now: DateTime<Utc>,
) -> serde_json::Value {
    ics::to_json(&calendar.upcoming(namespace, now), now)
}

/// Shared by the runtime and the server.
pub type SharedCalendar = Arc<Calendar>;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn window(yaml: &str) -> (String, MaintenanceWindow) {
        ("m.yaml:1".to_string(), serde_yaml::from_str(yaml).unwrap())
    }

    const WEEKLY: &str = r#"
apiVersion: watchkeeper.dev/v1alpha1
kind: MaintenanceWindow
metadata: {name: weekly, namespace: shop}
spec:
  schedule: {rrule: {rule: "FREQ=WEEKLY;BYDAY=SA", start: "2026-01-03T04:00:00", duration: 1h}}
  selector: {matchLabels: {app: web}}
  effects: {suspendCronJobs: true, suppressAlerts: true, pauseBackups: true}
"#;

    #[test]
    fn calendar_answers_for_selected_jobs_and_lists_what_is_not_applied() {
        let found = window(WEEKLY);
        let calendar = Calendar::new(std::slice::from_ref(&found)).unwrap();
        let web = BTreeMap::from([("app".to_string(), "web".to_string())]);
        let inside = Utc.with_ymd_and_hms(2026, 1, 10, 4, 30, 0).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 1, 10, 5, 0, 0).unwrap();
        let both = JobMaintenance {
            suspended_by: Some("shop/weekly".into()),
            muted_by: Some("shop/weekly".into()),
        };
        assert_eq!(calendar.job_at("shop", &web, inside), both);
        assert_eq!(
            calendar.job_at("shop", &web, after),
            JobMaintenance::default()
        );
        assert_eq!(
            calendar.job_at("shop", &BTreeMap::new(), inside),
            JobMaintenance::default()
        );
        assert_eq!(
            calendar.job_at("other", &web, inside),
            JobMaintenance::default()
        );
        let excused = calendar.job_excused("shop", &web, inside, after);
        assert_eq!(excused.len(), 1);
        assert_eq!(excused[0].end, after);
        assert_eq!(calendar.open_at(inside)[0].window, "shop/weekly");
        let notes = not_applied(&found.0, &found.1);
        assert_eq!(
            notes,
            [
                "m.yaml:1 MaintenanceWindow/weekly: suppressAlerts on HealthMonitors, pauseBackups not applied in embedded mode (suspendCronJobs and suppressAlerts on CronJobSpecs are)"
            ]
        );
        // A suspended window is left out of the calendar and the feeds.
        let suspended = window(&format!("{WEEKLY}  suspend: true\n"));
        let calendar = Calendar::new(&[suspended]).unwrap();
        assert!(calendar.is_empty());
        assert!(calendar.upcoming(None, inside).is_empty());
    }
}
