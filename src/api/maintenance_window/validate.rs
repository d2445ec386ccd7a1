//! Semantic rules of a MaintenanceWindow: the calendar (RRULE with its start, cron, one-off),
//! time zone, durations against the recurrence period, selector, effects, tasks and notices.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{Effects, MaintenanceTask, MaintenanceWindow, Notices, WindowScheduleSpec};
use crate::api::backup_policy::validate::human;
use crate::api::common::{
    LabelSelector, check_alerting, check_duration, check_postgres_connection, parse_local_date_time,
};
use crate::api::validation::{Errors, FieldError, Validate};
use crate::schedule::{CronSchedule, RecurrenceRule, WindowSchedule, parse_time_zone};

impl Validate for MaintenanceWindow {
    fn validate(&self) -> Vec<FieldError> {
        let spec = &self.spec;
        let mut errors = Errors::new();
        let tz = errors.check("spec.timeZone", parse_time_zone(&spec.time_zone));
        window_schedule(&mut errors, &spec.schedule, tz.unwrap_or(Tz::UTC));
        if let Some(selector) = &spec.selector {
            check_selector(&mut errors, "spec.selector", selector);
        }
        check_effects(&mut errors, "spec.effects", &spec.effects);
        check_tasks(&mut errors, "spec.tasks", &spec.tasks);
        if let Some(notices) = &spec.notices {
            check_notices(&mut errors, "spec.notices", notices);
        }
        errors.into_vec()
    }
}

/// Builds the engine's [`WindowSchedule`] from the spec, recording every problem in `errors`.
/// `None` when the schedule is unusable. Used by validation and by `check` previews.
pub fn window_schedule(
    errors: &mut Errors,
    schedule: &WindowScheduleSpec,
    tz: Tz,
) -> Option<WindowSchedule> {
    let path = "spec.schedule";
    let forms = [
        schedule.rrule.is_some(),
        schedule.cron.is_some(),
        schedule.one_off.is_some(),
    ];
    if forms.iter().filter(|set| **set).count() != 1 {
        errors.push(path, "exactly one of rrule, cron or oneOff must be set");
    }
    let mut built = None;
    if let Some(rrule) = &schedule.rrule {
        let here = format!("{path}.rrule");
        let start = errors.check(
            &format!("{here}.start"),
            parse_local_date_time(&rrule.start),
        );
        let mut exdates = Vec::new();
        for (i, text) in rrule.exdates.iter().enumerate() {
            if let Some(date) =
                errors.check(&format!("{here}.exdates[{i}]"), parse_local_date_time(text))
            {
                exdates.push(date);
            }
        }
        let duration = check_duration(errors, &format!("{here}.duration"), Some(&rrule.duration));
        let rule = match start {
            Some(start) => errors.check(
                &format!("{here}.rule"),
                RecurrenceRule::parse(&rrule.rule, start, tz, &exdates),
            ),
            None => None,
        };
        if let (Some(rule), Some(duration)) = (rule, duration) {
            built = recurring(
                errors,
                &here,
                WindowSchedule::Recurring { rule, duration },
                duration,
            );
        }
    }
    if let Some(cron) = &schedule.cron {
        let here = format!("{path}.cron");
        let parsed = errors.check(
            &format!("{here}.expression"),
            CronSchedule::parse(&cron.expression, tz),
        );
        let duration = check_duration(errors, &format!("{here}.duration"), Some(&cron.duration));
        if let (Some(cron), Some(duration)) = (parsed, duration) {
            built = recurring(
                errors,
                &here,
                WindowSchedule::Cron { cron, duration },
                duration,
            );
        }
    }
    if let Some(one_off) = &schedule.one_off {
        let here = format!("{path}.oneOff");
        let start = errors.check(&format!("{here}.start"), rfc3339(&one_off.start));
        let end = errors.check(&format!("{here}.end"), rfc3339(&one_off.end));
        if let (Some(start), Some(end)) = (start, end) {
            built = errors.check(&format!("{here}.end"), WindowSchedule::one_off(start, end));
        }
    }
    if forms.iter().filter(|set| **set).count() == 1 {
        built
    } else {
        None
    }
}

/// A recurring window is valid when it has a positive duration shorter than the shortest time
/// between occurrences (otherwise it would never close).
fn recurring(
    errors: &mut Errors,
    path: &str,
    schedule: WindowSchedule,
    duration: std::time::Duration,
) -> Option<WindowSchedule> {
    if duration.is_zero() {
        errors.push(format!("{path}.duration"), "must be longer than zero");
        return None;
    }
    if let Some(period) = schedule.min_period()
        && duration >= period
    {
        errors.push(
            format!("{path}.duration"),
            format!(
                "{} is not shorter than the {} between occurrences: the window would never close",
                human(duration),
                human(period)
            ),
        );
        return None;
    }
    Some(schedule)
}

fn rfc3339(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            format!(
                "must be an RFC 3339 time with offset such as 2026-03-14T22:00:00Z, got {text:?}"
            )
        })
}

/// Checks the parts of a label selector the API server would reject at use.
pub(crate) fn check_selector(errors: &mut Errors, path: &str, selector: &LabelSelector) {
    for (i, requirement) in selector.match_expressions.iter().flatten().enumerate() {
        let here = format!("{path}.matchExpressions[{i}]");
        let values = requirement.values.as_ref().map_or(0, Vec::len);
        match requirement.operator.as_str() {
            "In" | "NotIn" if values == 0 => errors.push(
                format!("{here}.values"),
                format!("operator {} needs at least one value", requirement.operator),
            ),
            "Exists" | "DoesNotExist" if values > 0 => errors.push(
                format!("{here}.values"),
                format!("operator {} takes no values", requirement.operator),
            ),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => errors.push(
                format!("{here}.operator"),
                format!("unknown operator {other:?} (In, NotIn, Exists or DoesNotExist)"),
            ),
        }
        if requirement.key.is_empty() {
            errors.push(format!("{here}.key"), "must not be empty");
        }
    }
}

fn check_effects(errors: &mut Errors, path: &str, effects: &Effects) {
    let mut keys = BTreeSet::new();
    for (i, set) in effects.config_map_set.iter().enumerate() {
        let key = (&set.config_map_key_ref.name, &set.config_map_key_ref.key);
        if !keys.insert(key) {
            errors.push(
                format!("{path}.configMapSet[{i}]"),
                format!(
                    "ConfigMap {} key {} is set twice",
                    set.config_map_key_ref.name, set.config_map_key_ref.key
                ),
            );
        }
    }
    let mut workloads = BTreeSet::new();
    for (i, scale) in effects.scale.iter().enumerate() {
        let here = format!("{path}.scale[{i}]");
        if scale.replicas < 0 {
            errors.push(format!("{here}.replicas"), "must not be negative");
        }
        if !workloads.insert((
            format!("{:?}", scale.workload_ref.kind),
            &scale.workload_ref.name,
        )) {
            errors.push(
                &here,
                format!(
                    "{:?} {} is scaled twice",
                    scale.workload_ref.kind, scale.workload_ref.name
                ),
            );
        }
    }
}

fn check_tasks(errors: &mut Errors, path: &str, tasks: &[MaintenanceTask]) {
    let mut names = BTreeSet::new();
    for (i, task) in tasks.iter().enumerate() {
        let here = format!("{path}[{i}]");
        if !names.insert(task.name.as_str()) {
            errors.push(
                format!("{here}.name"),
                format!("duplicate task name {:?}", task.name),
            );
        }
        if task.sql.is_some() == task.job_template.is_some() {
            errors.push(&here, "exactly one of sql or jobTemplate must be set");
        }
        if let Some(sql) = &task.sql {
            check_postgres_connection(errors, &format!("{here}.sql.connection"), &sql.connection);
            if sql.statements.is_empty() {
                errors.push(
                    format!("{here}.sql.statements"),
                    "needs at least one statement",
                );
            }
            for (j, statement) in sql.statements.iter().enumerate() {
                if statement.trim().is_empty() {
                    errors.push(format!("{here}.sql.statements[{j}]"), "must not be empty");
                }
            }
            check_duration(
                errors,
                &format!("{here}.sql.statementTimeout"),
                sql.statement_timeout.as_ref(),
            );
        }
        if let Some(template) = &task.job_template {
            let containers = template
                .spec
                .as_ref()
                .and_then(|s| s.template.spec.as_ref())
                .map_or(0, |p| p.containers.len());
            if containers == 0 {
                errors.push(
                    format!("{here}.jobTemplate.spec.template.spec.containers"),
                    "needs at least one container",
                );
            }
        }
        check_duration(errors, &format!("{here}.timeout"), task.timeout.as_ref());
    }
}

fn check_notices(errors: &mut Errors, path: &str, notices: &Notices) {
    let mut seen = BTreeSet::new();
    for (i, advance) in notices.advance.iter().enumerate() {
        let here = format!("{path}.advance[{i}]");
        if let Some(value) = check_duration(errors, &here, Some(advance)) {
            if value.is_zero() {
                errors.push(
                    &here,
                    "must be longer than zero (use atOpen for a notice at opening)",
                );
            }
            if !seen.insert(value) {
                errors.push(&here, format!("duplicate advance notice {advance}"));
            }
        }
    }
    let sends = !notices.advance.is_empty() || notices.at_open || notices.at_close;
    if sends && notices.alerting.channels.is_empty() {
        errors.push(
            format!("{path}.alerting.channels"),
            "notices are enabled but no channel is configured",
        );
    }
    check_alerting(errors, &format!("{path}.alerting"), &notices.alerting);
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
apiVersion: watchkeeper.dev/v1alpha1
kind: MaintenanceWindow
metadata: { name: monthly }
spec:
  timeZone: UTC
  schedule:
    rrule: { rule: "FREQ=MONTHLY;BYDAY=1TU", start: "2026-01-06T02:00:00", duration: 2h }
  selector: { matchLabels: { app: assistant } }
  effects:
    suppressAlerts: true
    configMapSet:
      - configMapKeyRef: { name: app-config, key: READ_ONLY_MODE }
        value: "true"
    scale:
      - workloadRef: { kind: Deployment, name: worker }
        replicas: 0
  tasks:
    - name: vacuum
      sql:
        connection: { uriSecretRef: { name: db, key: uri } }
        statements: ["VACUUM ANALYZE"]
        statementTimeout: 30m
  notices:
    advance: [7d]
    alerting:
      channels:
        - name: ops
          slack: { webhookUrlSecretRef: { name: slack, key: url } }
"#;

    fn good() -> MaintenanceWindow {
        serde_yaml::from_str(GOOD).expect("test manifest parses")
    }

    fn paths(window: &MaintenanceWindow) -> Vec<String> {
        window.validate().into_iter().map(|e| e.path).collect()
    }

    fn rrule(window: &mut MaintenanceWindow) -> &mut super::super::RecurringWindow {
        window
            .spec
            .schedule
            .rrule
            .as_mut()
            .expect("GOOD has an rrule")
    }

    #[test]
    fn good_window_passes() {
        assert_eq!(good().validate(), vec![]);
    }

    #[test]
    fn unknown_time_zone() {
        let mut w = good();
        w.spec.time_zone = "Europe/Atlantis".into();
        assert_eq!(paths(&w), ["spec.timeZone"]);
    }

    #[test]
    fn bad_rrule_start_and_exdates() {
        let mut w = good();
        rrule(&mut w).rule = "FREQ=FORTNIGHTLY".into();
        assert_eq!(paths(&w), ["spec.schedule.rrule.rule"]);
        let mut w = good();
        rrule(&mut w).start = "first tuesday".into();
        rrule(&mut w).exdates = vec!["2026-02-03T02:00:00".into(), "2026-13-01".into()];
        assert_eq!(
            paths(&w),
            [
                "spec.schedule.rrule.start",
                "spec.schedule.rrule.exdates[1]"
            ]
        );
    }

    #[test]
    fn duration_must_be_shorter_than_period() {
        let mut w = good();
        rrule(&mut w).rule = "FREQ=DAILY".into();
        rrule(&mut w).duration = crate::api::common::Duration::new("25h");
        assert_eq!(paths(&w), ["spec.schedule.rrule.duration"]);
        rrule(&mut w).duration = crate::api::common::Duration::new("0s");
        assert_eq!(paths(&w), ["spec.schedule.rrule.duration"]);
        rrule(&mut w).duration = crate::api::common::Duration::new("two hours");
        assert_eq!(paths(&w), ["spec.schedule.rrule.duration"]);
    }

    #[test]
    fn schedule_one_of() {
        let mut w = good();
        w.spec.schedule.cron = Some(super::super::CronWindow {
            expression: "0 2 * * 6".into(),
            duration: crate::api::common::Duration::new("2h"),
        });
        assert_eq!(paths(&w), ["spec.schedule"]);
        w.spec.schedule = Default::default();
        assert_eq!(paths(&w), ["spec.schedule"]);
    }

    #[test]
    fn cron_window() {
        let mut w = good();
        w.spec.schedule = WindowScheduleSpec {
            cron: Some(super::super::CronWindow {
                expression: "0 2 * * 6".into(),
                duration: crate::api::common::Duration::new("8d"),
            }),
            ..Default::default()
        };
        assert_eq!(paths(&w), ["spec.schedule.cron.duration"]);
        if let Some(c) = w.spec.schedule.cron.as_mut() {
            c.expression = "0 2 * *".into();
        }
        assert_eq!(paths(&w), ["spec.schedule.cron.expression"]);
    }

    #[test]
    fn one_off_window() {
        let mut w = good();
        w.spec.schedule = WindowScheduleSpec {
            one_off: Some(super::super::OneOffWindow {
                start: "2026-03-14T22:00:00Z".into(),
                end: "2026-03-14T23:00:00Z".into(),
            }),
            ..Default::default()
        };
        assert_eq!(paths(&w), Vec::<String>::new());
        if let Some(o) = w.spec.schedule.one_off.as_mut() {
            o.end = "2026-03-14T21:00:00Z".into();
        }
        assert_eq!(paths(&w), ["spec.schedule.oneOff.end"]);
        if let Some(o) = w.spec.schedule.one_off.as_mut() {
            o.start = "2026-03-14 22:00".into();
        }
        assert_eq!(paths(&w), ["spec.schedule.oneOff.start"]);
    }

    #[test]
    fn selector_effects_tasks() {
        let mut w = good();
        w.spec.selector = Some(
            serde_yaml::from_str("matchExpressions: [{key: app, operator: In}]")
                .expect("selector parses"),
        );
        let dup = w.spec.effects.config_map_set[0].clone();
        w.spec.effects.config_map_set.push(dup);
        w.spec.effects.scale[0].replicas = -1;
        let mut task = w.spec.tasks[0].clone();
        task.sql = None;
        w.spec.tasks.push(task);
        assert_eq!(
            paths(&w),
            [
                "spec.selector.matchExpressions[0].values",
                "spec.effects.configMapSet[1]",
                "spec.effects.scale[0].replicas",
                "spec.tasks[1].name",
                "spec.tasks[1]",
            ]
        );
    }

    #[test]
    fn sql_task_needs_statements_and_connection() {
        let mut w = good();
        if let Some(sql) = w.spec.tasks[0].sql.as_mut() {
            sql.statements.clear();
            sql.connection.host = Some("db".into());
            sql.statement_timeout = Some(crate::api::common::Duration::new("30 minutes"));
        }
        assert_eq!(
            paths(&w),
            [
                "spec.tasks[0].sql.connection.host",
                "spec.tasks[0].sql.statements",
                "spec.tasks[0].sql.statementTimeout",
            ]
        );
    }

    #[test]
    fn notices() {
        let mut w = good();
        if let Some(n) = w.spec.notices.as_mut() {
            n.advance.push(crate::api::common::Duration::new("168h"));
            n.advance.push(crate::api::common::Duration::new("7 days"));
            n.alerting.channels.clear();
        }
        assert_eq!(
            paths(&w),
            [
                "spec.notices.advance[1]",
                "spec.notices.advance[2]",
                "spec.notices.alerting.channels"
            ]
        );
    }
}
