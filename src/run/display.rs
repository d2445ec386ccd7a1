//! What `watchkeeper run` shows in the terminal: a status table redrawn every second when
//! standard output is a terminal (with the latest events below it), otherwise one line per
//! event (health change, notification, alert received by the demo receiver).

use std::collections::VecDeque;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::jobs::{JobEvent, JobStatus};
use super::maintenance::OpenWindow;
use crate::api::health_monitor::{Health, ThresholdLevel};
use crate::monitor::{MonitorEvent, MonitorStatus};
use crate::schedule::watch::RunOutcome;

/// How many recent events the table keeps below it.
const RECENT: usize = 12;

/// One line describing an event, or `None` for events not worth a line (probes, state saves).
pub fn event_line(event: &MonitorEvent) -> Option<String> {
    let time = |at: DateTime<Utc>| at.format("%H:%M:%S").to_string();
    match event {
        MonitorEvent::HealthChanged { key, from, to, at } => {
            Some(format!("{} {key}: health {from:?} -> {to:?}", time(*at)))
        }
        MonitorEvent::Notified {
            key,
            kind,
            channel,
            alert,
            severity,
            ..
        } => Some(format!(
            "{} {key}: sent {} {severity} {alert} to {channel}",
            time(Utc::now()),
            kind.as_str()
        )),
        MonitorEvent::NotifyFailed {
            key,
            channel,
            error,
        } => Some(format!(
            "{} {key}: notification to {channel} failed (retried): {error}",
            time(Utc::now())
        )),
        MonitorEvent::Probed { .. } | MonitorEvent::AlertState { .. } => None,
    }
}

/// One line describing a job event.
pub fn job_event_line(event: &JobEvent) -> Option<String> {
    let time = |at: DateTime<Utc>| at.format("%H:%M:%S").to_string();
    Some(match event {
        JobEvent::RunStarted { key, run, at, .. } => {
            format!("{} {key}: run {run} started", time(*at))
        }
        JobEvent::RunFinished { key, run } => format!(
            "{} {key}: run {} {} ({})",
            time(run.finished_at.unwrap_or(run.started_at)),
            run.name,
            match run.outcome {
                RunOutcome::Succeeded => "succeeded",
                RunOutcome::Failed => "failed",
                RunOutcome::Running => "running",
            },
            run.message.as_deref().unwrap_or("-")
        ),
        JobEvent::RunSkipped { key, due, reason } => {
            format!(
                "{} {key}: run due {} skipped: {reason}",
                time(Utc::now()),
                time(*due)
            )
        }
        JobEvent::HealthChanged {
            key,
            from,
            to,
            reason,
            at,
        } => format!("{} {key}: health {from:?} -> {to:?} ({reason})", time(*at)),
        JobEvent::Notified {
            key,
            kind,
            channel,
            alert,
            severity,
        } => format!(
            "{} {key}: sent {} {severity} {alert} to {channel}",
            time(Utc::now()),
            kind.as_str()
        ),
        JobEvent::NotifyFailed {
            key,
            channel,
            error,
        } => format!(
            "{} {key}: notification to {channel} failed (retried): {error}",
            time(Utc::now())
        ),
    })
}

/// The recent-events list shown under the table.
#[derive(Debug, Default)]
pub struct Recent {
    lines: VecDeque<String>,
}

impl Recent {
    /// Adds a line, dropping the oldest past the limit.
    pub fn push(&mut self, line: String) {
        if self.lines.len() == RECENT {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }
}

fn health_text(health: Health) -> &'static str {
    match health {
        Health::Healthy => "Healthy",
        Health::Degraded => "Degraded",
        Health::Critical => "Critical",
        Health::Down => "Down",
        Health::Unknown => "Unknown",
        Health::Suppressed => "Suppressed",
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// The whole screen: header lines, one row per monitor, one per job, recent events.
pub fn render(
    header: &[String],
    statuses: &[MonitorStatus],
    jobs: &[JobStatus],
    open_windows: &[OpenWindow],
    recent: &Recent,
) -> String {
    let mut out = String::new();
    for line in header {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(
        out,
        "\n{:<28} {:<10} {:<26} {:>8} {:>8}  {:<34} OPEN ALERTS",
        "MONITOR", "HEALTH", "LAST PROBE", "UPTIME", "P95", "THRESHOLDS"
    );
    for s in statuses {
        let last = s.last_probe.as_ref().map_or_else(
            || "-".to_string(),
            |p| {
                let code = p
                    .status_code
                    .map_or_else(|| "---".to_string(), |c| c.to_string());
                let mut text = format!("{code} {:.0}ms", p.latency_ms);
                if let Some(error) = &p.error {
                    let _ = write!(text, " {error}");
                }
                truncate(&text, 26)
            },
        );
        let window = s.windows.first();
        let uptime = window
            .and_then(|w| w.uptime)
            .map_or_else(|| "-".to_string(), |u| format!("{u:.1}%"));
        let p95 = window
            .and_then(|w| w.p95_latency_ms)
            .map_or_else(|| "-".to_string(), |p| format!("{p:.0}ms"));
        let thresholds: Vec<String> = s
            .thresholds
            .iter()
            .filter(|t| t.level != ThresholdLevel::Ok)
            .map(|t| format!("{}={:?}", t.name, t.level))
            .collect();
        let thresholds = if thresholds.is_empty() {
            "ok".to_string()
        } else {
            thresholds.join(" ")
        };
        let alerts: Vec<String> = s
            .open_alerts
            .iter()
            .map(|a| format!("{}({})", a.key, a.severity))
            .collect();
        let _ = writeln!(
            out,
            "{:<28} {:<10} {:<26} {:>8} {:>8}  {:<34} {}",
            truncate(&format!("{}/{}", s.namespace, s.name), 28),
            health_text(s.health),
            last,
            uptime,
            p95,
            truncate(&thresholds, 34),
            if alerts.is_empty() {
                "-".to_string()
            } else {
                alerts.join(" ")
            }
        );
    }
    if !jobs.is_empty() {
        render_jobs(&mut out, jobs);
    }
    if !open_windows.is_empty() {
        render_windows(&mut out, open_windows);
    }
    if !recent.lines.is_empty() {
        let _ = writeln!(out, "\nRecent events:");
        for line in &recent.lines {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

fn render_windows(out: &mut String, open: &[OpenWindow]) {
    let _ = writeln!(
        out,
        "\n{:<28} {:<22} {:<22} EFFECTS",
        "MAINTENANCE WINDOW (OPEN)", "SINCE", "UNTIL"
    );
    for w in open {
        let _ = writeln!(
            out,
            "{:<28} {:<22} {:<22} {}",
            truncate(&w.window, 28),
            w.start.format("%Y-%m-%d %H:%M UTC"),
            w.end.format("%Y-%m-%d %H:%M UTC"),
            w.effects.join(" ")
        );
    }
}

fn render_jobs(out: &mut String, jobs: &[JobStatus]) {
    let _ = writeln!(
        out,
        "\n{:<28} {:<16} {:<10} {:<34} {:<22} OPEN ALERTS",
        "JOB", "SCHEDULE", "HEALTH", "LAST RUN", "NEXT RUN"
    );
    for j in jobs {
        let last = j.last_run.as_ref().map_or_else(
            || "-".to_string(),
            |run| {
                let outcome = match run.outcome {
                    RunOutcome::Succeeded => "ok",
                    RunOutcome::Failed => "FAILED",
                    RunOutcome::Running => "running",
                };
                format!(
                    "{} {outcome} {}",
                    run.started_at.format("%H:%M:%S"),
                    run.message.as_deref().unwrap_or("")
                )
            },
        );
        let next = j.next_run.map_or_else(
            || "-".to_string(),
            |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
        );
        let alerts: Vec<String> = j
            .open_alerts
            .iter()
            .map(|a| format!("{}({})", a.key, a.severity))
            .collect();
        // A job a window suspends says so instead of its health (which the window excuses).
        let health = if j.suspended_by_window.is_some() {
            "Maint."
        } else {
            j.health.as_str()
        };
        let alerts: Vec<String> = match &j.alerts_muted_by_window {
            Some(window) if !alerts.is_empty() => {
                vec![format!("{} (muted by {window})", alerts.join(" "))]
            }
            _ => alerts,
        };
        let _ = writeln!(
            out,
            "{:<28} {:<16} {:<10} {:<34} {:<22} {}",
            truncate(&format!("{}/{}", j.namespace, j.name), 28),
            truncate(&j.schedule, 16),
            health,
            truncate(&last, 34),
            next,
            if alerts.is_empty() {
                "-".to_string()
            } else {
                alerts.join(" ")
            }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_shows_jobs_with_last_run_next_run_and_alerts() {
        use crate::schedule::watch::{JobHealth, RunObservation, RunTrigger};
        let at = |m: u32| chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 5, 1, 10, m, 0).unwrap();
        let job = JobStatus {
            namespace: "shop".into(),
            name: "price-collection".into(),
            schedule: "0 * * * *".into(),
            time_zone: "UTC".into(),
            url: "http://127.0.0.1:1/api/cron".into(),
            health: JobHealth::Failing,
            reason: "ConsecutiveFailures".into(),
            message: String::new(),
            next_run: Some(at(0) + chrono::TimeDelta::hours(1)),
            last_schedule_time: Some(at(0)),
            last_successful_time: None,
            last_failure_time: Some(at(1)),
            consecutive_failures: 2,
            missed_starts: 0,
            stuck: false,
            last_run: Some(RunObservation {
                name: "price-collection-1".into(),
                trigger: RunTrigger::Scheduled,
                scheduled_for: Some(at(0)),
                started_at: at(0),
                finished_at: Some(at(1)),
                outcome: RunOutcome::Failed,
                status_code: Some(500),
                message: Some("HTTP 500 (unexpected status)".into()),
            }),
            runs_started: 2,
            runs_skipped: 0,
            open_alerts: vec![crate::alert::OpenAlertEntry {
                key: "job/failing".into(),
                severity: crate::alert::Severity::P2,
                since: at(1),
                last_notified: Some(at(1)),
                summary: None,
                channels: Vec::new(),
            }],
            notifications_sent: 1,
            last_alert_error: None,
            suspended_by_window: None,
            alerts_muted_by_window: None,
        };
        let text = render(
            &[],
            &[],
            std::slice::from_ref(&job),
            &[],
            &Recent::default(),
        );
        let row = text
            .lines()
            .find(|l| l.starts_with("shop/price-collection"))
            .unwrap_or_else(|| panic!("{text}"));
        for part in [
            "0 * * * *",
            "Failing",
            "10:00:00 FAILED HTTP 500",
            "2026-05-01 11:00 UTC",
            "job/failing(P2)",
        ] {
            assert!(row.contains(part), "{part:?} missing in {row:?}");
        }
        // Inside a window: the job says so, its alerts are shown muted, the window is listed.
        let inside = JobStatus {
            suspended_by_window: Some("shop/patching".into()),
            alerts_muted_by_window: Some("shop/patching".into()),
            ..job
        };
        let open = [OpenWindow {
            window: "shop/patching".into(),
            start: at(0),
            end: at(0) + chrono::TimeDelta::hours(2),
            effects: vec!["suppressAlerts", "suspendCronJobs"],
        }];
        let text = render(&[], &[], &[inside], &open, &Recent::default());
        let row = text
            .lines()
            .find(|l| l.starts_with("shop/price-collection"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(row.contains("Maint."), "{row}");
        assert!(
            row.contains("job/failing(P2) (muted by shop/patching)"),
            "{row}"
        );
        let window = text
            .lines()
            .find(|l| l.starts_with("shop/patching"))
            .unwrap_or_else(|| panic!("{text}"));
        for part in [
            "2026-05-01 10:00 UTC",
            "2026-05-01 12:00 UTC",
            "suspendCronJobs",
        ] {
            assert!(window.contains(part), "{part:?} missing in {window:?}");
        }
    }

    #[test]
    fn table_shows_health_thresholds_and_alerts() {
        let mut status = MonitorStatus::new("demo", "demo-app", "http://127.0.0.1:1/");
        status.health = Health::Critical;
        status
            .thresholds
            .push(crate::monitor::status::ThresholdState {
                name: "openai-errors".into(),
                level: ThresholdLevel::Critical,
                value: Some(20.0),
                since: None,
            });
        let mut recent = Recent::default();
        for i in 0..20 {
            recent.push(format!("event {i}"));
        }
        let text = render(&["watchkeeper run".into()], &[status], &[], &[], &recent);
        assert!(text.contains("demo/demo-app"), "{text}");
        assert!(text.contains("Critical"), "{text}");
        assert!(text.contains("openai-errors=Critical"), "{text}");
        assert!(
            text.contains("event 19") && !text.contains("event 7\n"),
            "{text}"
        );
    }
}
