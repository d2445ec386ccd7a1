//! Semantic rules of a MaintenanceWindow: the calendar (RRULE with its start, cron, one-off),
//! time zone, durations against the recurrence period, selector, effects, tasks and notices.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{Effects, MaintenanceTask, MaintenanceWindow, Notices, WindowScheduleSpec};
use crate::api::backup_policy::validate::human;
use crate::api::common::{
    LabelSelector, check_alerting, check_duration, check_rrule_dates, check_sql_statements,
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
        let dates = check_rrule_dates(errors, &here, &rrule.start, &rrule.exdates);
        let duration = check_duration(errors, &format!("{here}.duration"), Some(&rrule.duration));
        let rule = match dates {
            Some((start, exdates)) => errors.check(
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
            check_sql_statements(
                errors,
                &format!("{here}.sql"),
                &sql.connection,
                &sql.statements,
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
pub(super) mod tests;
