//! The MaintenanceWindow reconcile: open and close windows on the calendar, apply and restore
//! the ConfigMap and workload effects, run the tasks, send the notices, and keep the index,
//! status, metrics and Events in line.
//!
//! Order at opening: status says open (with the window) → Event → opening notice → effects
//! (each recorded in status before it is changed) → tasks (each marked running before it is
//! started). Order at closing: every recorded effect restored (its record dropped after) →
//! status says closed → Event → closing notice. Every step is idempotent, so a restarted
//! controller continues where the last one stopped.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Client, Resource, ResourceExt};
use tracing::{info, warn};

use super::error::Error;
use super::index::{Effects, IndexedWindow};
use super::notices::{self, Notice};
use super::plan::{self, Wanted, chrono_time, k8s_time, same_second};
use super::state::MaintenanceWindows;
use super::tasks;
use crate::api::MaintenanceWindow;
use crate::api::maintenance_window::{
    ClosedWindow, MaintenanceWindowStatus, NEXT_WINDOWS, NoticeKind, NoticeRecord, TaskPhase,
    WindowPeriod, condition, validate::window_schedule,
};
use crate::api::validation::Errors;
use crate::controller::conditions::{self, ConditionStatus, DesiredCondition};
use crate::controller::context::Context;
use crate::schedule::{Window, parse_time_zone};

/// Finalizer held while a window has ConfigMap or workload changes to restore.
pub const FINALIZER: &str = "watchkeeper.dev/maintenance-window";

/// What the core needs back from a MaintenanceWindow reconcile.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Conditions beside `Ready` (`Selected`, `EffectsApplied`, `TasksSucceeded`).
    pub conditions: Vec<DesiredCondition>,
    /// Reconcile again after this long (next open/close boundary, notice, task poll).
    pub requeue: Option<Duration>,
}

/// Downcasts a reconciled object to a MaintenanceWindow.
pub fn as_window<K: std::any::Any>(object: &K) -> Option<&MaintenanceWindow> {
    (object as &dyn std::any::Any).downcast_ref::<MaintenanceWindow>()
}

impl MaintenanceWindows {
    /// Brings the cluster in line with `window`.
    pub async fn reconcile(
        &self,
        ctx: &Context,
        window: &MaintenanceWindow,
        valid: bool,
    ) -> Result<Outcome, Error> {
        let client = &ctx.client;
        let ns = window.namespace().unwrap_or_default();
        let name = window.name_any();
        let now = Utc::now();
        let mut status = self.load(client, &ns, &name).await?;
        let before = status.clone();
        let deleting = window.meta().deletion_timestamp.is_some();
        let mut run = Run {
            owner: self,
            ctx,
            window,
            ns: ns.clone(),
            name: name.clone(),
            effect_errors: Vec::new(),
        };

        if deleting || !valid || window.spec.suspend {
            self.index.remove(&ns, &name);
            if status.open || !status.applied_effects.is_empty() {
                let why = if deleting {
                    "the MaintenanceWindow is being deleted"
                } else if !valid {
                    "the spec is invalid"
                } else {
                    "the MaintenanceWindow is suspended"
                };
                run.close(&mut status, now, why).await?;
            }
            if status.open || !status.applied_effects.is_empty() {
                // Something could not be restored yet (see EffectsApplied): keep the finalizer
                // and the record, and try again.
                if status != before {
                    self.persist(client, &ns, &name, &status).await?;
                }
                return Ok(Outcome {
                    conditions: vec![run.effects_condition(&[])],
                    requeue: Some(ctx.settings.backoff_max),
                });
            }
            if deleting {
                run.remove_finalizer().await?;
                self.metrics.remove(&ns, &name);
                self.forget(&ns, &name);
                return Ok(Outcome::default());
            }
            status.current_window = None;
            status.next_windows.clear();
            status.schedule = Some(plan::schedule_text(&window.spec));
            let (reason, message) = if valid {
                ("Suspended", "spec.suspend is true: no window opens")
            } else {
                (
                    "SpecInvalid",
                    "No window opens: the spec is invalid (see Ready)",
                )
            };
            set_open_condition(&mut status, window, ConditionStatus::False, reason, message);
            if valid {
                self.metrics.set(&ns, &name, false, None);
            } else {
                self.metrics.remove(&ns, &name);
            }
            if status != before {
                self.persist(client, &ns, &name, &status).await?;
            }
            if status.applied_effects.is_empty() {
                run.remove_finalizer().await?;
            }
            return Ok(Outcome::default());
        }

        let entry = match indexed(window, &status) {
            Some(entry) => entry,
            None => return Ok(Outcome::default()),
        };
        self.index.upsert(entry.clone());
        let desired = entry.open_at(now);

        // Close a window that ended (or was replaced by another occurrence).
        if status.open {
            let current = status
                .current_window
                .as_ref()
                .map(|w| chrono_time(&w.start));
            let same = matches!((current, desired), (Some(c), Some(d)) if same_second(c, d.start));
            if !same {
                run.close(&mut status, now, "its scheduled end was reached")
                    .await?;
            }
        }
        // Open a window that started.
        if let Some(open) = desired
            && !status.open
        {
            run.open(&mut status, open, now).await?;
        }
        let wanted = plan::wanted_effects(&window.spec);
        let mut task_wake = None;
        if status.open {
            if !wanted.is_empty() {
                run.add_finalizer().await?;
            }
            run.apply_effects(&mut status, &wanted).await?;
            task_wake = run.advance_tasks(&mut status, now).await?;
        }
        // Restore what is recorded but no longer wanted (closed, or the spec changed).
        let keep: &[Wanted] = if status.open { &wanted } else { &[] };
        run.restore_unwanted(&mut status, keep).await?;

        // Calendar fields.
        let upcoming: Vec<Window> = entry
            .schedule
            .next_windows(now, NEXT_WINDOWS + 1)
            .into_iter()
            .filter(|w| w.start > now)
            .take(NEXT_WINDOWS)
            .collect();
        status.next_windows = upcoming.iter().map(period).collect();
        status.schedule = Some(entry.schedule_text.clone());
        let open_window = status
            .current_window
            .as_ref()
            .map(|w| (chrono_time(&w.start), chrono_time(&w.end)));
        match (status.open, open_window) {
            (true, Some((start, end))) => set_open_condition(
                &mut status,
                window,
                ConditionStatus::True,
                "WindowOpen",
                &format!("Open since {start} until {end}"),
            ),
            _ => {
                let message = upcoming.first().map_or_else(
                    || "No upcoming window".to_string(),
                    |w| format!("Closed; the next window opens at {}", w.start),
                );
                set_open_condition(
                    &mut status,
                    window,
                    ConditionStatus::False,
                    "Closed",
                    &message,
                );
            }
        }

        // Advance notices for the next window.
        let (due, notice_wake) = plan::advance_notices(
            &window.spec,
            upcoming.first().copied(),
            &status.notices_sent,
            now,
        );
        let mut notice_retry = None;
        for notice in due {
            let text = Notice {
                key: notice_key(
                    &ns,
                    &name,
                    notice.window.start,
                    &format!("advance-{}", notice.advance),
                ),
                summary: format!(
                    "Planned maintenance {ns}/{name} in {}: {} to {} (UTC)",
                    notice.advance, notice.window.start, notice.window.end
                ),
                details: details(window, notice.window),
            };
            if run.notify(&text, now).await {
                status.notices_sent.push(NoticeRecord {
                    window_start: k8s_time(notice.window.start),
                    kind: NoticeKind::Advance,
                    advance: Some(notice.advance.clone()),
                    time: k8s_time(now),
                });
            } else {
                notice_retry =
                    Some(now + TimeDelta::from_std(ctx.settings.backoff_max).unwrap_or_default());
            }
        }
        let keep_from = status
            .current_window
            .as_ref()
            .map(|w| chrono_time(&w.start))
            .or(status.last_window.as_ref().map(|w| chrono_time(&w.start)))
            .unwrap_or(now);
        plan::prune_notices(&mut status.notices_sent, keep_from);

        if status != before {
            self.persist(client, &ns, &name, &status).await?;
        }
        if status.applied_effects.is_empty() && (!status.open || wanted.is_empty()) {
            run.remove_finalizer().await?;
        }
        self.metrics
            .set(&ns, &name, status.open, upcoming.first().map(|w| w.start));

        let boundary = if status.open {
            open_window.map(|(_, end)| end)
        } else {
            upcoming.first().map(|w| w.start)
        };
        let retry_effects = (!run.effect_errors.is_empty())
            .then(|| now + TimeDelta::from_std(ctx.settings.backoff_max).unwrap_or_default());
        let requeue = plan::wake_after(
            now,
            &[
                boundary,
                notice_wake,
                notice_retry,
                task_wake,
                retry_effects,
            ],
        );
        let conditions = vec![
            run.selected_condition().await?,
            run.effects_condition(&wanted),
            tasks_condition(window, &status),
        ];
        Ok(Outcome {
            conditions,
            requeue,
        })
    }
}

/// The index entry of a valid window; `None` when its schedule does not build (validation
/// already reported it).
pub(super) fn indexed(
    window: &MaintenanceWindow,
    status: &MaintenanceWindowStatus,
) -> Option<IndexedWindow> {
    let spec = &window.spec;
    let tz = parse_time_zone(&spec.time_zone).ok()?;
    let mut errors = Errors::new();
    let schedule = window_schedule(&mut errors, &spec.schedule, tz)?;
    let closed_early = status
        .last_window
        .as_ref()
        .filter(|w| w.closed_early)
        .map(|w| (chrono_time(&w.start), chrono_time(&w.end)));
    Some(IndexedWindow {
        namespace: window.namespace().unwrap_or_default(),
        name: window.name_any(),
        description: spec.description.clone(),
        schedule_text: plan::schedule_text(spec),
        schedule,
        selector: spec.selector.clone(),
        effects: Effects::from_spec(&spec.effects),
        closed_early,
    })
}

fn period(window: &Window) -> WindowPeriod {
    WindowPeriod {
        start: k8s_time(window.start),
        end: k8s_time(window.end),
    }
}

fn notice_key(ns: &str, name: &str, start: DateTime<Utc>, what: &str) -> String {
    format!(
        "maintenance/{ns}/{name}/{}/{what}",
        start.format("%Y-%m-%dT%H:%M:%SZ")
    )
}

fn details(window: &MaintenanceWindow, period: Window) -> String {
    let mut text = format!(
        "MaintenanceWindow {}/{}: {} to {} (UTC).",
        window.namespace().unwrap_or_default(),
        window.name_any(),
        period.start,
        period.end
    );
    if let Some(description) = &window.spec.description {
        text.push_str(&format!("\n{description}"));
    }
    text
}

/// Sets the `Open` condition, which this module (not the core) owns.
fn set_open_condition(
    status: &mut MaintenanceWindowStatus,
    window: &MaintenanceWindow,
    value: ConditionStatus,
    reason: &str,
    message: &str,
) {
    let desired = DesiredCondition::new(condition::OPEN, value, reason, message);
    let merged = conditions::merge(
        &status.conditions,
        &[desired],
        window.meta().generation,
        k8s_openapi::jiff::Timestamp::now(),
    );
    status.conditions = merged.conditions;
}

fn tasks_condition(
    window: &MaintenanceWindow,
    status: &MaintenanceWindowStatus,
) -> DesiredCondition {
    if window.spec.tasks.is_empty() {
        return DesiredCondition::new(
            condition::TASKS_SUCCEEDED,
            ConditionStatus::True,
            "NoTasks",
            "The window has no tasks.",
        );
    }
    if let Some(failed) = status
        .task_results
        .iter()
        .find(|r| r.phase == TaskPhase::Failed)
    {
        return DesiredCondition::new(
            condition::TASKS_SUCCEEDED,
            ConditionStatus::False,
            "TaskFailed",
            format!(
                "Task {} of the window starting {} failed: {}",
                failed.name,
                chrono_time(&failed.window_start),
                failed.message.as_deref().unwrap_or("no message")
            ),
        );
    }
    let running = status
        .task_results
        .iter()
        .any(|r| matches!(r.phase, TaskPhase::Running | TaskPhase::Pending));
    if running {
        DesiredCondition::new(
            condition::TASKS_SUCCEEDED,
            ConditionStatus::True,
            "Running",
            "Tasks of the open window are running; none failed so far.",
        )
    } else {
        DesiredCondition::new(
            condition::TASKS_SUCCEEDED,
            ConditionStatus::True,
            "Succeeded",
            "No task of the current or last window failed.",
        )
    }
}

/// One reconcile's working set.
pub(super) struct Run<'a> {
    pub(super) owner: &'a MaintenanceWindows,
    pub(super) ctx: &'a Context,
    pub(super) window: &'a MaintenanceWindow,
    pub(super) ns: String,
    pub(super) name: String,
    pub(super) effect_errors: Vec<String>,
}

impl Run<'_> {
    pub(super) fn client(&self) -> &Client {
        &self.ctx.client
    }

    pub(super) async fn persist(&self, status: &MaintenanceWindowStatus) -> Result<(), Error> {
        self.owner
            .persist(self.client(), &self.ns, &self.name, status)
            .await
    }

    async fn open(
        &mut self,
        status: &mut MaintenanceWindowStatus,
        window: Window,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        status.open = true;
        status.current_window = Some(period(&window));
        let fresh = status
            .task_results
            .first()
            .is_some_and(|r| same_second(chrono_time(&r.window_start), window.start));
        if !fresh {
            status.task_results = tasks::pending(&self.window.spec.tasks, window.start);
        }
        set_open_condition(
            status,
            self.window,
            ConditionStatus::True,
            "WindowOpen",
            &format!("Open since {} until {}", window.start, window.end),
        );
        self.persist(status).await?;
        info!(window = %format!("{}/{}", self.ns, self.name), start = %window.start, end = %window.end, "maintenance window opened");
        self.event(
            "WindowOpened",
            "Open",
            format!(
                "Maintenance window open from {} until {}",
                window.start, window.end
            ),
        )
        .await;
        let at_open = self.window.spec.notices.as_ref().is_some_and(|n| n.at_open);
        if at_open && !plan::notice_sent(&status.notices_sent, NoticeKind::Open, window.start) {
            let notice = Notice {
                key: notice_key(&self.ns, &self.name, window.start, "open"),
                summary: format!(
                    "Maintenance {}/{} is open until {} (UTC)",
                    self.ns, self.name, window.end
                ),
                details: details(self.window, window),
            };
            if self.notify(&notice, now).await {
                status.notices_sent.push(NoticeRecord {
                    window_start: k8s_time(window.start),
                    kind: NoticeKind::Open,
                    advance: None,
                    time: k8s_time(now),
                });
                self.persist(status).await?;
            }
        }
        Ok(())
    }

    /// Restores every recorded effect, then records the window as closed.
    pub(super) async fn close(
        &mut self,
        status: &mut MaintenanceWindowStatus,
        now: DateTime<Utc>,
        why: &str,
    ) -> Result<(), Error> {
        self.restore_unwanted(status, &[]).await?;
        if !status.applied_effects.is_empty() {
            // Could not restore everything: stay open (effects in force) and retry.
            return Ok(());
        }
        let Some(current) = status.current_window.take() else {
            status.open = false;
            self.persist(status).await?;
            return Ok(());
        };
        let start = chrono_time(&current.start);
        let scheduled_end = chrono_time(&current.end);
        let closed_at = now.min(scheduled_end);
        let early = now < scheduled_end;
        status.open = false;
        status.last_window = Some(ClosedWindow {
            start: current.start.clone(),
            end: k8s_time(closed_at),
            closed_early: early,
        });
        for result in &mut status.task_results {
            if matches!(result.phase, TaskPhase::Pending | TaskPhase::Running) {
                result.phase = TaskPhase::Skipped;
                result.end_time = Some(k8s_time(now));
                result.message = Some(format!("the window closed before the task ended ({why})"));
            }
        }
        set_open_condition(
            status,
            self.window,
            ConditionStatus::False,
            "Closed",
            &format!("Closed at {closed_at}: {why}"),
        );
        self.persist(status).await?;
        info!(window = %format!("{}/{}", self.ns, self.name), %start, early, "maintenance window closed");
        self.event(
            "WindowClosed",
            "Close",
            format!("Maintenance window that opened at {start} closed at {closed_at}: {why}"),
        )
        .await;
        let at_close = self
            .window
            .spec
            .notices
            .as_ref()
            .is_some_and(|n| n.at_close);
        if at_close && !plan::notice_sent(&status.notices_sent, NoticeKind::Close, start) {
            let results: Vec<String> = status
                .task_results
                .iter()
                .map(|r| {
                    format!(
                        "{}: {:?}{}",
                        r.name,
                        r.phase,
                        r.message
                            .as_deref()
                            .map(|m| format!(" ({m})"))
                            .unwrap_or_default()
                    )
                })
                .collect();
            let mut details = details(
                self.window,
                Window {
                    start,
                    end: closed_at,
                },
            );
            if !results.is_empty() {
                details.push_str(&format!("\nTasks: {}", results.join("; ")));
            }
            let notice = Notice {
                key: notice_key(&self.ns, &self.name, start, "close"),
                summary: format!(
                    "Maintenance {}/{} closed at {closed_at} (UTC)",
                    self.ns, self.name
                ),
                details,
            };
            if self.notify(&notice, now).await {
                status.notices_sent.push(NoticeRecord {
                    window_start: k8s_time(start),
                    kind: NoticeKind::Close,
                    advance: None,
                    time: k8s_time(now),
                });
                self.persist(status).await?;
            }
        }
        Ok(())
    }

    /// Sends a notice; true when every routed channel accepted it (or there are none).
    pub(super) async fn notify(&self, notice: &Notice, now: DateTime<Utc>) -> bool {
        let Some(spec) = &self.window.spec.notices else {
            return true;
        };
        match notices::send(
            self.client(),
            &self.ns,
            &self.name,
            spec,
            notice,
            &self.owner.notice_state,
            now,
        )
        .await
        {
            Ok(()) => true,
            Err(message) => {
                warn!(window = %format!("{}/{}", self.ns, self.name), %message, "maintenance notice not delivered; retried");
                false
            }
        }
    }

    pub(super) async fn event(&self, reason: &str, action: &str, note: String) {
        self.event_typed(EventType::Normal, reason, action, note)
            .await;
    }

    pub(super) async fn event_typed(
        &self,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let recorder: &Recorder = &self.ctx.recorder;
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        if let Err(error) = recorder.publish(&event, &self.window.object_ref(&())).await {
            self.ctx.metrics.event_failed("MaintenanceWindow");
            warn!(%error, "publishing a MaintenanceWindow Event failed");
        }
    }
}
