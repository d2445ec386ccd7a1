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

use crate::api::{
    BackupPolicy, FailoverPlan, MaintenanceWindow,
    common::{LabelSelector, parse_local_date_time},
    failover_plan::Drills,
    maintenance_window,
    validation::Errors,
};
use crate::backup::retention::{self, BackupRecord, KeepReason, RetentionPolicy};
use crate::schedule::{CronSchedule, DstRule, RecurrenceRule, parse_time_zone};

/// Days of daily backups in the retention preview's sample history: long enough for yearly
/// rules to show.
const SAMPLE_DAYS: u32 = 400;

/// What a resource means, section by section; empty sections are left out.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Preview {
    /// What a HealthMonitor probes and when it alerts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitor: Option<MonitorPreview>,
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

/// A health monitor in a few lines.
#[derive(Debug, Clone, Serialize)]
pub struct MonitorPreview {
    /// What is probed and how often.
    pub probe: String,
    /// One line per threshold: metric, window, direction, levels.
    pub thresholds: Vec<String>,
    /// Alert channel names (empty: health is tracked in status only).
    pub channels: Vec<String>,
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
            && self.monitor.is_none()
            && self.windows.is_none()
            && self.plan.is_none()
            && self.retention.is_none()
            && self.notes.is_empty()
    }

    /// Indented text lines for the report.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if let Some(monitor) = &self.monitor {
            let _ = writeln!(out, "  {}", monitor.probe);
            for threshold in &monitor.thresholds {
                let _ = writeln!(out, "  threshold {threshold}");
            }
            if monitor.channels.is_empty() {
                let _ = writeln!(out, "  alerts: none (status only)");
            } else {
                let _ = writeln!(out, "  alerts to: {}", monitor.channels.join(", "));
            }
        }
        for schedule in &self.schedules {
            schedule_text(&mut out, schedule, "  ");
        }
        if let Some(windows) = &self.windows {
            let _ = writeln!(out, "  next windows ({}):", windows.time_zone);
            if windows.next.is_empty() {
                let _ = writeln!(out, "    none after the reference time");
            }
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
        if let Some(retries) = step.retries.filter(|r| *r > 0) {
            let _ = write!(line, ", retries {retries}");
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
        "HealthMonitor" => preview.monitor = Some(monitor_preview(spec)),
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
        "FailoverPlan" => match plan_preview(value, options) {
            Ok((plan, notes)) => {
                preview.notes.extend(notes);
                preview.plan = Some(plan);
            }
            Err(note) => preview.notes.push(note),
        },
        "MaintenanceWindow" => match windows_preview(value, options) {
            Ok(windows) => preview.windows = Some(windows),
            Err(note) => preview.notes.push(note),
        },
        _ => {}
    }
    if kind == "BackupPolicy" {
        match retention_preview(value, options.now) {
            Ok(retention) => preview.retention = Some(retention),
            Err(note) => preview.notes.push(note),
        }
    }
    if spec.get("suspend").and_then(Value::as_bool) == Some(true) {
        preview
            .notes
            .push("spec.suspend is true: nothing runs until it is cleared".into());
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
    // CronJobSpec and BackupPolicy schedules become batch/v1 CronJobs: preview what
    // Kubernetes will run, including its daylight-saving behaviour.
    match cron_preview(path, expression, zone, DstRule::Kubernetes, options) {
        Ok(schedule) => preview.schedules.push(schedule),
        Err(note) => preview.notes.push(format!("{path}: {note}")),
    }
}

fn cron_preview(
    path: &str,
    expression: &str,
    zone: &str,
    dst: DstRule,
    options: PreviewOptions,
) -> Result<SchedulePreview, String> {
    let tz = parse_time_zone(zone).map_err(|e| e.to_string())?;
    let cron = CronSchedule::parse(expression, tz)
        .map_err(|e| e.to_string())?
        .with_dst_rule(dst);
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

fn windows_preview(value: &Value, options: PreviewOptions) -> Result<WindowsPreview, String> {
    let window: MaintenanceWindow = serde_json::from_value(value.clone())
        .map_err(|e| format!("cannot read the window: {e}"))?;
    let spec = &window.spec;
    let tz = parse_time_zone(&spec.time_zone).map_err(|e| format!("spec.timeZone: {e}"))?;
    // The same translation validation uses; validation passed, so an error here is only a note.
    let mut errors = Errors::new();
    let schedule = maintenance_window::validate::window_schedule(&mut errors, &spec.schedule, tz)
        .ok_or_else(|| {
        let messages: Vec<String> = errors.into_vec().iter().map(|e| e.to_string()).collect();
        messages.join("; ")
    })?;
    let next = schedule
        .next_windows(options.now, options.count)
        .iter()
        .map(|w| WindowPreview {
            start: stamp(&w.start.with_timezone(&tz)),
            end: stamp(&w.end.with_timezone(&tz)),
        })
        .collect();
    let scope = match &spec.selector {
        Some(selector) => format!("resources matching {}", describe_selector(selector)),
        None => "every watchkeeper resource in the namespace".to_string(),
    };
    let effects = &spec.effects;
    let mut affects = Vec::new();
    let mut kind_line = |kind: &str, what: Vec<&str>| {
        if !what.is_empty() {
            affects.push(format!("{kind} ({scope}): {}", what.join(", ")));
        }
    };
    kind_line(
        "HealthMonitor",
        [
            (effects.suppress_alerts, "alerts suppressed"),
            (
                effects.exclude_from_statistics,
                "excluded from uptime statistics",
            ),
        ]
        .into_iter()
        .filter_map(|(on, what)| on.then_some(what))
        .collect(),
    );
    kind_line(
        "CronJobSpec",
        [(effects.suspend_cron_jobs, "suspended")]
            .into_iter()
            .filter_map(|(on, what)| on.then_some(what))
            .collect(),
    );
    kind_line(
        "BackupPolicy",
        [
            (effects.pause_backups, "scheduled backups paused"),
            (effects.backup_before_open, "backup taken before opening"),
        ]
        .into_iter()
        .filter_map(|(on, what)| on.then_some(what))
        .collect(),
    );
    kind_line(
        "FailoverPlan",
        [(effects.block_failover, "automatic failover blocked")]
            .into_iter()
            .filter_map(|(on, what)| on.then_some(what))
            .collect(),
    );
    for set in &effects.config_map_set {
        affects.push(format!(
            "ConfigMap {}: key {} set to {:?} while open, then restored",
            set.config_map_key_ref.name, set.config_map_key_ref.key, set.value
        ));
    }
    for scale in &effects.scale {
        affects.push(format!(
            "{:?} {}: scaled to {} replica(s) while open, then restored",
            scale.workload_ref.kind, scale.workload_ref.name, scale.replicas
        ));
    }
    if affects.is_empty() {
        affects.push("nothing (no effects set)".into());
    }
    Ok(WindowsPreview {
        time_zone: spec.time_zone.clone(),
        next,
        affects,
    })
}

/// Target, cadence, thresholds and channels of a HealthMonitor spec (JSON, already validated).
fn monitor_preview(spec: &Value) -> MonitorPreview {
    let text_at = |pointer: &str| spec.pointer(pointer).and_then(Value::as_str);
    let target = if let Some(url) = text_at("/target/url") {
        url.to_string()
    } else if let Some(service) = text_at("/target/service/name") {
        format!(
            "Service {service} port {} {}",
            spec.pointer("/target/service/port").unwrap_or(&Value::Null),
            text_at("/target/service/path").unwrap_or("/")
        )
    } else if let Some(host) = text_at("/target/tcp/host") {
        format!(
            "TCP {host}:{}",
            spec.pointer("/target/tcp/port").unwrap_or(&Value::Null)
        )
    } else {
        "the target".to_string()
    };
    let mut probe = format!("probes {target}");
    if let Some(interval) = text_at("/interval") {
        let _ = write!(probe, " every {interval}");
    }
    if let Some(timeout) = text_at("/timeout") {
        let _ = write!(probe, " (timeout {timeout})");
    }
    let thresholds = spec
        .get("thresholds")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|t| {
            let field = |name: &str| {
                t.get(name)
                    .map(|v| v.as_str().map_or(v.to_string(), str::to_string))
            };
            let mut line = format!(
                "{}: {}",
                field("name").unwrap_or_else(|| "?".into()),
                field("metric").unwrap_or_else(|| "?".into())
            );
            if let Some(component) = field("component") {
                let _ = write!(line, " of {component}");
            }
            if let Some(window) = field("window") {
                let _ = write!(line, " over {window}");
            }
            if let Some(direction) = field("direction") {
                let _ = write!(line, " {}", direction.to_lowercase());
            }
            let levels: Vec<String> = ["warning", "critical"]
                .iter()
                .filter_map(|level| field(level).map(|v| format!("{level} {v}")))
                .collect();
            if !levels.is_empty() {
                let _ = write!(line, ": {}", levels.join(", "));
            }
            line
        })
        .collect();
    let channels = spec
        .pointer("/alerting/channels")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    MonitorPreview {
        probe,
        thresholds,
        channels,
    }
}

/// The failover plan in order, with notes for drill schedules that cannot be previewed.
fn plan_preview(
    value: &Value,
    options: PreviewOptions,
) -> Result<(PlanPreview, Vec<String>), String> {
    let plan: FailoverPlan =
        serde_json::from_value(value.clone()).map_err(|e| format!("cannot read the plan: {e}"))?;
    // Work on the defaulted spec as JSON so every action reads the same way.
    let spec = serde_json::to_value(&plan.spec).map_err(|e| e.to_string())?;
    let region = |field: &str| {
        let name = spec
            .pointer(&format!("/{field}/name"))
            .and_then(Value::as_str)
            .unwrap_or("?");
        match spec
            .pointer(&format!("/{field}/healthMonitorRef/name"))
            .and_then(Value::as_str)
        {
            Some(monitor) => format!("{name} (HealthMonitor {monitor})"),
            None => name.to_string(),
        }
    };
    let mut summary = format!("{} → {}", region("primary"), region("secondary"));
    if let Some(mode) = spec.pointer("/trigger/mode").and_then(Value::as_str) {
        let _ = write!(summary, "; trigger {}", mode.to_lowercase());
        if let Some(after) = spec
            .pointer("/trigger/after")
            .and_then(Value::as_str)
            .filter(|_| mode.eq_ignore_ascii_case("automatic"))
        {
            let _ = write!(summary, " after {after} down");
        }
    }
    if let Some(rto) = spec.pointer("/objectives/rto").and_then(Value::as_str) {
        let _ = write!(summary, "; RTO {rto}");
    }
    let steps_at = |pointer: &str| -> Vec<StepPreview> {
        spec.pointer(pointer)
            .and_then(Value::as_array)
            .map(|steps| steps.iter().map(step_preview).collect())
            .unwrap_or_default()
    };
    let mut notes = Vec::new();
    let mut drills = Vec::new();
    if let Some(drill) = plan.spec.drills.as_ref() {
        match drill_preview(drill, options) {
            Ok(schedule) => drills.push(schedule),
            Err(note) => notes.push(format!("spec.drills.schedule: {note}")),
        }
    }
    Ok((
        PlanPreview {
            summary,
            steps: steps_at("/steps"),
            failback: steps_at("/failback/steps"),
            drills,
        },
        notes,
    ))
}

/// Next drills, from a cron expression or an RRULE.
fn drill_preview(drill: &Drills, options: PreviewOptions) -> Result<SchedulePreview, String> {
    let zone = drill.time_zone.as_str();
    let tz = parse_time_zone(zone).map_err(|e| e.to_string())?;
    if let Some(cron) = &drill.schedule.cron {
        return cron_preview(
            "spec.drills.schedule.cron",
            cron,
            zone,
            DstRule::Vixie,
            options,
        );
    }
    let Some(rrule) = &drill.schedule.rrule else {
        return Err("no drill schedule form is set".into());
    };
    let start = parse_local_date_time(&rrule.start)?;
    let exdates = rrule
        .exdates
        .iter()
        .map(|d| parse_local_date_time(d))
        .collect::<Result<Vec<_>, _>>()?;
    let rule =
        RecurrenceRule::parse(&rrule.rule, start, tz, &exdates).map_err(|e| e.to_string())?;
    Ok(SchedulePreview {
        field: "spec.drills.schedule.rrule".into(),
        expression: rrule.rule.clone(),
        time_zone: zone.to_string(),
        next: rule
            .upcoming(options.now, options.count)
            .iter()
            .map(stamp)
            .collect(),
    })
}

/// One step: its name, a few words on its action, timeout and retries.
fn step_preview(step: &Value) -> StepPreview {
    let field = |pointer: &str| step.pointer(pointer).and_then(Value::as_str);
    let object = |pointer: &str| {
        let kind = field(&format!("{pointer}/kind")).unwrap_or("object");
        let name = field(&format!("{pointer}/name")).unwrap_or("?");
        format!("{kind}/{name}")
    };
    let http = |pointer: &str| {
        format!(
            "{} {}",
            field(&format!("{pointer}/method")).unwrap_or("POST"),
            field(&format!("{pointer}/url")).unwrap_or("?")
        )
    };
    let mut actions = Vec::new();
    if step.get("fence").is_some() {
        actions.push(if step.pointer("/fence/scaleToZero").is_some() {
            format!("fence: scale {} to 0", object("/fence/scaleToZero"))
        } else if step.pointer("/fence/configMapSet").is_some() {
            format!(
                "fence: set ConfigMap {} key {} to {:?}",
                field("/fence/configMapSet/configMapKeyRef/name").unwrap_or("?"),
                field("/fence/configMapSet/configMapKeyRef/key").unwrap_or("?"),
                field("/fence/configMapSet/value").unwrap_or("")
            )
        } else {
            format!("fence: {}", http("/fence/webhook"))
        });
    }
    if step.get("restoreBackup").is_some() {
        let which = field("/restoreBackup/backupId")
            .map_or("newest verified backup".to_string(), |id| {
                format!("backup {id}")
            });
        actions.push(format!(
            "restore {which} of BackupPolicy {}",
            field("/restoreBackup/backupPolicyRef/name").unwrap_or("?")
        ));
    }
    if let Some(statements) = step.pointer("/sql/statements").and_then(Value::as_array) {
        let first = statements.first().and_then(Value::as_str).unwrap_or("");
        let mut text = format!("SQL {first:?}");
        if statements.len() > 1 {
            let _ = write!(text, " and {} more", statements.len() - 1);
        }
        if let Some(expect) = field("/sql/expect") {
            let _ = write!(text, ", expect {expect:?}");
        }
        actions.push(text);
    }
    if step.get("kubernetesScale").is_some() {
        actions.push(format!(
            "scale {} to {}",
            object("/kubernetesScale/workloadRef"),
            step.pointer("/kubernetesScale/replicas")
                .unwrap_or(&Value::Null)
        ));
    }
    if step.get("kubernetesRollback").is_some() {
        actions.push(format!(
            "roll back {} to its previous revision",
            object("/kubernetesRollback/workloadRef")
        ));
    }
    if step.get("kubernetesPatch").is_some() {
        actions.push(format!("merge-patch {}", object("/kubernetesPatch/target")));
    }
    if step.get("dnsSwitch").is_some() {
        actions.push(
            if let Some(name) = field("/dnsSwitch/cloudflare/recordName") {
                format!(
                    "point DNS {name} at {}",
                    field("/dnsSwitch/cloudflare/content").unwrap_or("?")
                )
            } else if step.pointer("/dnsSwitch/webhook").is_some() {
                format!("switch DNS: {}", http("/dnsSwitch/webhook"))
            } else {
                "switch DNS".to_string()
            },
        );
    }
    if step.get("http").is_some() {
        actions.push(http("/http"));
    }
    if step.get("verify").is_some() {
        let monitor = field("/verify/healthMonitorRef/name").unwrap_or("the secondary's monitor");
        actions.push(format!("wait until HealthMonitor {monitor} is healthy"));
    }
    if step.get("notify").is_some() {
        actions.push("notify the plan's alert channels".to_string());
    }
    if actions.is_empty() {
        // An action this preview does not know yet: name it by its field.
        let common = ["name", "timeout", "retries", "backoff", "continueOnError"];
        let keys: Vec<&str> = step
            .as_object()
            .map(|m| {
                m.keys()
                    .map(String::as_str)
                    .filter(|k| !common.contains(k))
                    .collect()
            })
            .unwrap_or_default();
        actions.push(if keys.is_empty() {
            "no action".to_string()
        } else {
            keys.join(", ")
        });
    }
    StepPreview {
        name: field("/name").unwrap_or("?").to_string(),
        action: actions.join("; "),
        timeout: field("/timeout").map(str::to_string),
        retries: step.get("retries").and_then(Value::as_u64),
    }
}

/// `app=api, tier in (db)` style text of a label selector.
fn describe_selector(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for expression in selector.match_expressions.iter().flatten() {
        let values = expression.values.as_deref().unwrap_or_default().join(", ");
        parts.push(format!(
            "{} {} ({values})",
            expression.key, expression.operator
        ));
    }
    if parts.is_empty() {
        "any labels".into()
    } else {
        parts.join(", ")
    }
}

fn retention_preview(value: &Value, now: DateTime<Utc>) -> Result<RetentionPreview, String> {
    let policy: BackupPolicy = serde_json::from_value(value.clone())
        .map_err(|e| format!("cannot read the policy: {e}"))?;
    let spec = &policy.spec;
    let tz = parse_time_zone(&spec.time_zone).map_err(|e| format!("spec.timeZone: {e}"))?;
    let retention = &spec.retention;
    let rules = RetentionPolicy {
        keep_last: retention.keep_last,
        daily: retention.daily,
        weekly: retention.weekly,
        monthly: retention.monthly,
        yearly: retention.yearly,
        min_age: match &retention.min_age {
            Some(age) => age
                .parse()
                .map_err(|e| format!("spec.retention.minAge: {e}"))?,
            None => std::time::Duration::ZERO,
        },
    };
    Ok(retention_for(&rules, tz, &spec.schedule, now))
}

/// Runs the retention engine over a sample history of daily backups taken at the hour
/// `schedule` fires next (in UTC).
fn retention_for(
    rules: &RetentionPolicy,
    tz: Tz,
    schedule: &str,
    now: DateTime<Utc>,
) -> RetentionPreview {
    let hour = CronSchedule::parse(schedule, tz)
        .ok()
        .and_then(|cron| cron.next_after(now))
        .map_or(0, |t| chrono::Timelike::hour(&t));
    let history = retention::sample_daily_history(now, SAMPLE_DAYS, hour);
    let decision = retention::plan(rules, tz, &history, now);
    let local_date = |id: &str| {
        history
            .iter()
            .find(|b: &&BackupRecord| b.id == id)
            .map(|b| {
                b.completed_at
                    .with_timezone(&tz)
                    .format("%Y-%m-%d")
                    .to_string()
            })
            .unwrap_or_else(|| id.to_string())
    };
    let reasons = [
        KeepReason::Newest,
        KeepReason::NewestSuccessful,
        KeepReason::Last,
        KeepReason::Daily,
        KeepReason::Weekly,
        KeepReason::Monthly,
        KeepReason::Yearly,
        KeepReason::TooYoung,
    ];
    let kept = reasons
        .iter()
        .filter_map(|reason| {
            let dates: Vec<String> = decision
                .keep
                .iter()
                .filter(|(_, why)| why.contains(reason))
                .map(|(id, _)| local_date(id))
                .collect();
            (!dates.is_empty()).then(|| KeptGroup {
                reason: reason.to_string(),
                dates,
            })
        })
        .collect();
    RetentionPreview {
        sample: format!(
            "{SAMPLE_DAYS} daily backups at {hour:02}:00 UTC up to {}",
            now.format("%Y-%m-%d")
        ),
        kept,
        kept_count: decision.keep.len(),
        deleted_count: decision.delete.len(),
    }
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
    fn cron_job_schedules_preview_what_kubernetes_runs_on_dst_days() {
        // 02:30 does not exist in New York on 2026-03-08: Kubernetes' CronJob controller skips
        // that day's run instead of firing at the transition.
        let value = json!({ "spec": { "schedule": "30 2 * * *", "timeZone": "America/New_York" } });
        let spring = preview("CronJobSpec", &value, at("2026-03-06T12:00:00Z")).unwrap_or_default();
        assert_eq!(
            spring.schedules[0].next[..3],
            [
                "2026-03-07T02:30:00-05:00",
                "2026-03-09T02:30:00-04:00",
                "2026-03-10T02:30:00-04:00",
            ]
        );
        // 01:30 happens twice on 2026-11-01: Kubernetes runs it at both instants.
        let value = json!({ "spec": { "schedule": "30 1 * * *", "timeZone": "America/New_York" } });
        let autumn =
            preview("BackupPolicy", &value, at("2026-10-31T12:00:00Z")).unwrap_or_default();
        assert_eq!(
            autumn.schedules[0].next[..3],
            [
                "2026-11-01T01:30:00-04:00",
                "2026-11-01T01:30:00-05:00",
                "2026-11-02T01:30:00-05:00",
            ]
        );
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
    fn retention_keeps_seven_daily_four_weekly_three_monthly() {
        let rules = RetentionPolicy {
            keep_last: 0,
            daily: 7,
            weekly: 4,
            monthly: 3,
            yearly: 0,
            min_age: std::time::Duration::ZERO,
        };
        let tz = parse_time_zone("UTC").unwrap_or(Tz::UTC);
        let now = at("2026-06-15T12:00:00Z").now;
        let preview = retention_for(&rules, tz, "0 2 * * *", now);
        assert_eq!(
            preview.kept_count + preview.deleted_count,
            SAMPLE_DAYS as usize
        );
        let group = |reason: &str| {
            preview
                .kept
                .iter()
                .find(|g| g.reason == reason)
                .map(|g| g.dates.clone())
                .unwrap_or_default()
        };
        let daily = group("daily");
        assert_eq!(daily.len(), 7);
        assert_eq!(daily[0], "2026-06-15");
        assert_eq!(daily[6], "2026-06-09");
        assert_eq!(group("weekly").len(), 4);
        assert_eq!(group("monthly"), ["2026-06-15", "2026-05-31", "2026-04-30"]);
        // Distinct backups: June 9-15 (daily; Monday the 15th and Sunday the 14th also
        // weekly), Sundays June 7 and May 31 (weekly; May 31 also monthly), April 30 (monthly).
        assert_eq!(preview.kept_count, 7 + 2 + 1);
        assert!(preview.sample.contains("at 02:00 UTC"));
        let text = Preview {
            retention: Some(preview),
            ..Preview::default()
        }
        .to_text();
        assert!(text.contains("daily (7): 2026-06-15, 2026-06-14"), "{text}");
    }

    #[test]
    fn steps_are_summarised_by_action() {
        let fence = step_preview(&json!({
            "name": "fence-primary", "timeout": "2m", "retries": 1,
            "fence": { "scaleToZero": { "kind": "Deployment", "name": "api-east" } },
        }));
        assert_eq!(fence.name, "fence-primary");
        assert_eq!(fence.action, "fence: scale Deployment/api-east to 0");
        assert_eq!(fence.timeout.as_deref(), Some("2m"));
        assert_eq!(fence.retries, Some(1));
        let promote = step_preview(&json!({
            "name": "promote", "timeout": "5m", "retries": 0,
            "sql": { "statements": ["SELECT pg_promote()"], "expect": "t" },
        }));
        assert_eq!(promote.action, "SQL \"SELECT pg_promote()\", expect \"t\"");
        let dns = step_preview(&json!({
            "name": "dns", "dnsSwitch": { "cloudflare": { "recordName": "app.example.com", "content": "west.example.net" } },
        }));
        assert_eq!(dns.action, "point DNS app.example.com at west.example.net");
        let text = Preview {
            plan: Some(PlanPreview {
                summary: "us-east → us-west".into(),
                steps: vec![fence, promote],
                failback: vec![dns],
                drills: Vec::new(),
            }),
            ..Preview::default()
        }
        .to_text();
        assert!(
            text.contains(
                "    1. fence-primary: fence: scale Deployment/api-east to 0, timeout 2m, retries 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("  failback steps:\n    1. dns: point DNS"),
            "{text}"
        );
    }

    #[test]
    fn health_monitors_show_probe_thresholds_and_channels() {
        let value = json!({ "spec": {
            "target": { "url": "https://app.example.com/health" },
            "interval": "30s", "timeout": "5s",
            "thresholds": [{ "name": "uptime", "metric": "Uptime", "window": "24h",
                             "direction": "Below", "warning": 99.5, "critical": 99 }],
            "alerting": { "channels": [{ "name": "slack" }] },
        } });
        let text = preview("HealthMonitor", &value, at("2026-06-15T00:00:00Z"))
            .unwrap_or_default()
            .to_text();
        assert_eq!(
            text,
            "  probes https://app.example.com/health every 30s (timeout 5s)\n  \
             threshold uptime: Uptime over 24h below: warning 99.5, critical 99\n  \
             alerts to: slack\n"
        );
    }

    #[test]
    fn suspended_resources_say_so() {
        let value = json!({ "spec": { "schedule": "0 2 * * *", "suspend": true } });
        let preview =
            preview("CronJobSpec", &value, at("2026-06-15T00:00:00Z")).unwrap_or_default();
        assert_eq!(preview.schedules.len(), 1);
        assert_eq!(
            preview.notes,
            ["spec.suspend is true: nothing runs until it is cleared"]
        );
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
