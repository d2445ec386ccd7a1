//! Previews: what a valid resource means, computed with the controller's engines (schedule,
//! windows, retention), so a reviewer sees "runs next Tuesday 02:00 EST" rather than a cron
//! string.
//!
//! Previews read the manifest as JSON with the field names of the API (after validation passed,
//! so the fields have the right types); a resource whose preview cannot be computed gets a note
//! instead of a section.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::Value;

use crate::schedule::{CronSchedule, parse_time_zone};

/// What a resource means, section by section; empty sections are left out.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Preview {
    /// The next fire times of every schedule of the resource.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<SchedulePreview>,
    /// Maintenance windows: the next ones and what they affect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub windows: Option<WindowsPreview>,
    /// Failover plan: the ordered steps and the failback steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanPreview>,
    /// Which backups the retention policy keeps for a sample history.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionPreview>,
    /// Things that could not be previewed, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The next fire times of one schedule.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SchedulePreview {
    /// Field holding the schedule, e.g. `spec.verification.schedule`.
    pub field: String,
    /// The expression as written.
    pub expression: String,
    /// IANA time zone the expression is read in.
    pub time_zone: String,
    /// Next fire times, RFC 3339 with the zone's UTC offset at that time.
    pub next: Vec<String>,
}

/// Upcoming maintenance windows.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowsPreview {
    /// IANA time zone the windows are shown in.
    pub time_zone: String,
    /// The next windows (merged where they overlap).
    pub next: Vec<WindowPreview>,
    /// What the window's selector affects, one line per kind.
    pub affects: Vec<String>,
}

/// One window, RFC 3339 with offsets.
#[derive(Debug, Clone, Serialize)]
pub struct WindowPreview {
    /// When the window opens.
    pub start: String,
    /// When it closes.
    pub end: String,
}

/// A failover plan in execution order.
#[derive(Debug, Clone, Serialize)]
pub struct PlanPreview {
    /// Summary line: regions and objectives.
    pub summary: String,
    /// Failover steps in order.
    pub steps: Vec<StepPreview>,
    /// Failback steps in order.
    pub failback: Vec<StepPreview>,
    /// Scheduled drills.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drills: Vec<SchedulePreview>,
}

/// One step of a plan.
#[derive(Debug, Clone, Serialize)]
pub struct StepPreview {
    /// Step name.
    pub name: String,
    /// What the step does, in a few words.
    pub action: String,
    /// Upper bound of the step, as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Retries after a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
}

/// Backups kept for a sample history of daily backups.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetentionPreview {
    /// The sample history, in words.
    pub sample: String,
    /// Kept backups by reason (a backup kept for two reasons appears under both).
    pub kept: Vec<KeptGroup>,
    /// Number of backups kept.
    pub kept_count: usize,
    /// Number of backups deleted.
    pub deleted_count: usize,
}

/// Backups kept for one reason.
#[derive(Debug, Clone, Serialize)]
pub struct KeptGroup {
    /// Why they are kept (`daily`, `weekly`, ...).
    pub reason: String,
    /// Local dates of the kept backups, newest first.
    pub dates: Vec<String>,
}

impl Preview {
    fn is_empty(&self) -> bool {
        self.schedules.is_empty()
            && self.windows.is_none()
            && self.plan.is_none()
            && self.retention.is_none()
            && self.notes.is_empty()
    }

    /// Indented text lines for the report.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for schedule in &self.schedules {
            schedule_text(&mut out, schedule, "  ");
        }
        if let Some(windows) = &self.windows {
            let _ = writeln!(out, "  next windows ({}):", windows.time_zone);
            for window in &windows.next {
                let _ = writeln!(out, "    {} – {}", human(&window.start), human(&window.end));
            }
            for line in &windows.affects {
                let _ = writeln!(out, "  affects: {line}");
            }
        }
        if let Some(plan) = &self.plan {
            let _ = writeln!(out, "  {}", plan.summary);
            steps_text(&mut out, "failover steps", &plan.steps);
            steps_text(&mut out, "failback steps", &plan.failback);
            for drill in &plan.drills {
                schedule_text(&mut out, drill, "  ");
            }
        }
        if let Some(retention) = &self.retention {
            let _ = writeln!(
                out,
                "  retention for {}: keeps {}, deletes {}",
                retention.sample, retention.kept_count, retention.deleted_count
            );
            for group in &retention.kept {
                let _ = writeln!(
                    out,
                    "    {} ({}): {}",
                    group.reason,
                    group.dates.len(),
                    group.dates.join(", ")
                );
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "  note: {note}");
        }
        out
    }
}

fn schedule_text(out: &mut String, schedule: &SchedulePreview, indent: &str) {
    let _ = writeln!(
        out,
        "{indent}{} {:?} ({}) next runs:",
        schedule.field, schedule.expression, schedule.time_zone
    );
    for time in &schedule.next {
        let _ = writeln!(out, "{indent}  {}", human(time));
    }
}

fn steps_text(out: &mut String, title: &str, steps: &[StepPreview]) {
    if steps.is_empty() {
        return;
    }
    let _ = writeln!(out, "  {title}:");
    for (index, step) in steps.iter().enumerate() {
        let mut line = format!("    {}. {}: {}", index + 1, step.name, step.action);
        if let Some(timeout) = &step.timeout {
            let _ = write!(line, ", timeout {timeout}");
        }
        if let Some(retries) = step.retries {
            let _ = write!(line, ", {retries} retries");
        }
        let _ = writeln!(out, "{line}");
    }
}

/// `2026-02-03T02:00:00-05:00` as `Tue 2026-02-03 02:00 -05:00`.
fn human(rfc3339: &str) -> String {
    match DateTime::parse_from_rfc3339(rfc3339) {
        Ok(time) => time.format("%a %Y-%m-%d %H:%M %:z").to_string(),
        Err(_) => rfc3339.to_string(),
    }
}

/// RFC 3339 with the zone's offset, seconds precision.
fn stamp(time: &DateTime<Tz>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// Settings of previews.
#[derive(Debug, Clone, Copy)]
pub struct PreviewOptions {
    /// Reference time.
    pub now: DateTime<Utc>,
    /// How many fire times and windows to show.
    pub count: usize,
}

/// The preview of a valid watchkeeper resource, or `None` when its kind has nothing to show.
pub fn preview(kind: &str, value: &Value, options: PreviewOptions) -> Option<Preview> {
    let mut preview = Preview::default();
    let spec = value.get("spec").unwrap_or(&Value::Null);
    match kind {
        "CronJobSpec" => {
            let zone = text(spec, "timeZone").unwrap_or("UTC");
            push_schedule(
                &mut preview,
                spec,
                "schedule",
                "spec.schedule",
                zone,
                options,
            );
        }
        "BackupPolicy" => {
            let zone = text(spec, "timeZone").unwrap_or("UTC");
            push_schedule(
                &mut preview,
                spec,
                "schedule",
                "spec.schedule",
                zone,
                options,
            );
            if let Some(verification) = spec.get("verification").filter(|v| v.is_object()) {
                let zone = text(verification, "timeZone").unwrap_or(zone);
                push_schedule(
                    &mut preview,
                    verification,
                    "schedule",
                    "spec.verification.schedule",
                    zone,
                    options,
                );
            }
        }
        _ => {}
    }
    (!preview.is_empty()).then_some(preview)
}

fn text<'v>(value: &'v Value, field: &str) -> Option<&'v str> {
    value.get(field).and_then(Value::as_str)
}

/// Adds the next fire times of the cron expression at `value.field`, or a note when it cannot be
/// evaluated.
fn push_schedule(
    preview: &mut Preview,
    value: &Value,
    field: &str,
    path: &str,
    zone: &str,
    options: PreviewOptions,
) {
    let Some(expression) = text(value, field) else {
        return;
    };
    match cron_preview(path, expression, zone, options) {
        Ok(schedule) => preview.schedules.push(schedule),
        Err(note) => preview.notes.push(format!("{path}: {note}")),
    }
}

fn cron_preview(
    path: &str,
    expression: &str,
    zone: &str,
    options: PreviewOptions,
) -> Result<SchedulePreview, String> {
    let tz = parse_time_zone(zone).map_err(|e| e.to_string())?;
    let cron = CronSchedule::parse(expression, tz).map_err(|e| e.to_string())?;
    Ok(SchedulePreview {
        field: path.to_string(),
        expression: expression.to_string(),
        time_zone: zone.to_string(),
        next: cron
            .upcoming(options.now, options.count)
            .iter()
            .map(stamp)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(text: &str) -> PreviewOptions {
        PreviewOptions {
            now: DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default(),
            count: 5,
        }
    }

    #[test]
    fn cron_schedules_are_shown_in_their_zone_across_a_dst_change() {
        let value = json!({ "spec": { "schedule": "30 1 * * *", "timeZone": "Europe/Berlin" } });
        let preview =
            preview("CronJobSpec", &value, at("2026-10-23T12:00:00Z")).unwrap_or_default();
        assert_eq!(
            preview.schedules[0].next,
            [
                "2026-10-24T01:30:00+02:00",
                "2026-10-25T01:30:00+02:00",
                "2026-10-26T01:30:00+01:00",
                "2026-10-27T01:30:00+01:00",
                "2026-10-28T01:30:00+01:00",
            ]
        );
        assert!(preview.to_text().contains("Mon 2026-10-26 01:30 +01:00"));
    }

    #[test]
    fn backup_policies_preview_backup_and_verification_schedules() {
        let value = json!({ "spec": {
            "schedule": "0 2 * * *", "timeZone": "UTC",
            "verification": { "schedule": "0 5 * * 0", "timeZone": "America/New_York" },
        } });
        let preview =
            preview("BackupPolicy", &value, at("2026-06-15T00:00:00Z")).unwrap_or_default();
        let fields: Vec<&str> = preview.schedules.iter().map(|s| s.field.as_str()).collect();
        assert_eq!(fields, ["spec.schedule", "spec.verification.schedule"]);
        assert_eq!(preview.schedules[1].next[0], "2026-06-21T05:00:00-04:00");
    }

    #[test]
    fn unusable_schedules_become_notes() {
        let value = json!({ "spec": { "schedule": "0 2 * * *", "timeZone": "Mars/Olympus" } });
        let preview =
            preview("CronJobSpec", &value, at("2026-06-15T00:00:00Z")).unwrap_or_default();
        assert!(preview.schedules.is_empty());
        assert!(preview.notes[0].starts_with("spec.schedule: unknown time zone"));
    }
}
