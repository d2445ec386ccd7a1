//! The maintenance calendar every other kind consults: which MaintenanceWindows cover a
//! resource now or in a time range, and with which effects.
//!
//! Filled by the MaintenanceWindow reconciler ([`MaintenanceIndex::upsert`] for each valid,
//! unsuspended window; [`MaintenanceIndex::remove`] when it becomes invalid, suspended or is
//! deleted); read by the HealthMonitor, CronJobSpec, BackupPolicy and FailoverPlan reconcilers
//! and the monitor runtime. Answers come from the calendar engine
//! ([`crate::schedule::WindowSchedule`]), so they are right for any instant without waiting
//! for the reconciler to have opened the window.

use std::collections::BTreeMap;
use std::sync::{PoisonError, RwLock};

use chrono::{DateTime, Utc};

use super::selector;
use crate::api::common::LabelSelector;
use crate::api::maintenance_window::Effects as SpecEffects;
use crate::schedule::{Window, WindowSchedule};

/// Most windows [`MaintenanceIndex::windows_between`] returns per MaintenanceWindow.
pub const MAX_WINDOWS_BETWEEN: usize = 1000;

/// The effects of a window on the watchkeeper resources its selector picks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// HealthMonitors send no alerts (health `Suppressed`).
    pub suppress_alerts: bool,
    /// HealthMonitors leave the window out of uptime and error-rate statistics.
    pub exclude_from_statistics: bool,
    /// CronJobSpecs are suspended; their due times inside the window are excused.
    pub suspend_jobs: bool,
    /// BackupPolicies take no scheduled backups or verifications.
    pub pause_backups: bool,
    /// FailoverPlans do not trigger automatically.
    pub block_failover: bool,
}

impl Effects {
    /// The selector-based effects of a spec.
    pub fn from_spec(spec: &SpecEffects) -> Self {
        Self {
            suppress_alerts: spec.suppress_alerts,
            exclude_from_statistics: spec.exclude_from_statistics,
            suspend_jobs: spec.suspend_cron_jobs,
            pause_backups: spec.pause_backups,
            block_failover: spec.block_failover,
        }
    }

    /// Only the effects that concern `kind` (`HealthMonitor`, `CronJobSpec`, `BackupPolicy`,
    /// `FailoverPlan`); any other kind keeps them all.
    pub fn for_kind(self, kind: &str) -> Self {
        let none = Self::default();
        match kind {
            "HealthMonitor" => Self {
                suppress_alerts: self.suppress_alerts,
                exclude_from_statistics: self.exclude_from_statistics,
                ..none
            },
            "CronJobSpec" => Self {
                suspend_jobs: self.suspend_jobs,
                ..none
            },
            "BackupPolicy" => Self {
                pause_backups: self.pause_backups,
                ..none
            },
            "FailoverPlan" => Self {
                block_failover: self.block_failover,
                ..none
            },
            _ => self,
        }
    }

    /// Whether any effect is on.
    pub fn any(self) -> bool {
        self != Self::default()
    }
}

/// One window of one MaintenanceWindow covering a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coverage {
    /// The MaintenanceWindow, `namespace/name`.
    pub window: String,
    /// When the window opens (for an open merged window: its real start).
    pub start: DateTime<Utc>,
    /// When it closes (earlier than scheduled when it was closed early).
    pub end: DateTime<Utc>,
    /// Its effects on the resource's kind.
    pub effects: Effects,
}

/// What the index knows about one valid MaintenanceWindow.
#[derive(Clone, Debug)]
pub struct IndexedWindow {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// `spec.description`, for feeds.
    pub description: Option<String>,
    /// The schedule in one line (as `status.schedule`).
    pub schedule_text: String,
    /// When windows open and close.
    pub schedule: WindowSchedule,
    /// Which watchkeeper resources it affects.
    pub selector: Option<LabelSelector>,
    /// What it does to them.
    pub effects: Effects,
    /// A window that was closed before its scheduled end (`CloseEarlyAndRestore`): its start
    /// and the instant it closed. Coverage of that window ends there.
    pub closed_early: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

impl IndexedWindow {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// A window with an early close applied; `None` when it closed at its start.
    fn trimmed(&self, window: Window) -> Option<Window> {
        match self.closed_early {
            Some((start, closed)) if start == window.start => {
                (closed > window.start).then_some(Window {
                    start: window.start,
                    end: closed.min(window.end),
                })
            }
            _ => Some(window),
        }
    }

    /// Windows (merged, trimmed) that overlap `[from, to)`, in order.
    pub fn windows_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Window> {
        let mut out = Vec::new();
        let mut after = from;
        'outer: while out.len() < MAX_WINDOWS_BETWEEN {
            let batch = self.schedule.next_windows(after, 16);
            let Some(last) = batch.last().copied() else {
                break;
            };
            for window in batch {
                if window.start >= to {
                    break 'outer;
                }
                if let Some(window) = self.trimmed(window).filter(|w| w.end > from)
                    && out.last() != Some(&window)
                {
                    out.push(window);
                }
            }
            if last.end <= after {
                break;
            }
            after = last.end;
        }
        out
    }

    /// The (merged, trimmed) window open at `at`.
    pub fn open_at(&self, at: DateTime<Utc>) -> Option<Window> {
        let window = self.schedule.open_at(at)?;
        self.trimmed(window).filter(|w| w.start <= at && at < w.end)
    }
}

/// Every valid MaintenanceWindow of this controller process, by `namespace/name`.
#[derive(Debug, Default)]
pub struct MaintenanceIndex {
    windows: RwLock<BTreeMap<String, IndexedWindow>>,
}

impl MaintenanceIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a window.
    pub fn upsert(&self, window: IndexedWindow) {
        self.windows
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(window.key(), window);
    }

    /// Forgets a window (invalid, suspended or deleted); returns whether it was known.
    pub fn remove(&self, namespace: &str, name: &str) -> bool {
        self.windows
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&format!("{namespace}/{name}"))
            .is_some()
    }

    /// Keys (`namespace/name`) of the known windows.
    pub fn keys(&self) -> Vec<String> {
        self.windows
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }

    /// Copies of the known windows, optionally of one namespace (for feeds).
    pub fn snapshot(&self, namespace: Option<&str>) -> Vec<IndexedWindow> {
        self.windows
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|w| namespace.is_none_or(|ns| w.namespace == ns))
            .cloned()
            .collect()
    }

    /// Windows open at `at` that cover a resource of `kind` with `labels` in `namespace`, with
    /// the effects that concern that kind (windows with none are left out), by window key.
    pub fn covering(
        &self,
        namespace: &str,
        kind: &str,
        labels: &BTreeMap<String, String>,
        at: DateTime<Utc>,
    ) -> Vec<Coverage> {
        self.select(namespace, kind, labels, |w| {
            w.open_at(at).into_iter().collect()
        })
    }

    /// Windows overlapping `[from, to)` that cover the resource (as [`Self::covering`]),
    /// ordered by start.
    pub fn windows_between(
        &self,
        namespace: &str,
        kind: &str,
        labels: &BTreeMap<String, String>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<Coverage> {
        let mut out = self.select(namespace, kind, labels, |w| w.windows_between(from, to));
        out.sort_by(|a, b| (a.start, a.end, &a.window).cmp(&(b.start, b.end, &b.window)));
        out
    }

    fn select(
        &self,
        namespace: &str,
        kind: &str,
        labels: &BTreeMap<String, String>,
        windows_of: impl Fn(&IndexedWindow) -> Vec<Window>,
    ) -> Vec<Coverage> {
        let windows = self.windows.read().unwrap_or_else(PoisonError::into_inner);
        let mut out = Vec::new();
        for entry in windows.values() {
            let effects = entry.effects.for_kind(kind);
            if entry.namespace != namespace
                || !effects.any()
                || !selector::matches(entry.selector.as_ref(), labels)
            {
                continue;
            }
            out.extend(windows_of(entry).into_iter().map(|w| Coverage {
                window: entry.key(),
                start: w.start,
                end: w.end,
                effects,
            }));
        }
        out
    }
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
