//! Semantic rules of a FailoverPlan: distinct regions, quorum, unique step names, one action per
//! step, split-brain ordering, DNS record content, credentials by reference, drill calendars.

use std::collections::BTreeSet;

use chrono_tz::Tz;

use super::{Drills, FailoverPlan, FailoverPlanSpec, Region, Step, TriggerMode};
use crate::api::common::{
    check_alerting, check_duration, check_postgres_connection, check_rrule_dates,
    check_sql_statements,
};
use crate::api::validation::{Errors, FieldError, Validate};
use crate::schedule::{CronSchedule, RecurrenceRule, parse_time_zone};
use network::{check_dns, check_http};

impl Validate for FailoverPlan {
    fn validate(&self) -> Vec<FieldError> {
        let spec = &self.spec;
        let mut errors = Errors::new();
        check_region(&mut errors, "spec.primary", &spec.primary);
        check_region(&mut errors, "spec.secondary", &spec.secondary);
        if spec.secondary.name == spec.primary.name {
            errors.push(
                "spec.secondary.name",
                format!(
                    "secondary region must differ from primary (both are {:?})",
                    spec.primary.name
                ),
            );
        }
        if spec.trigger.mode == TriggerMode::Automatic
            && spec.secondary.health_monitor_ref.name == spec.primary.health_monitor_ref.name
        {
            errors.push(
                "spec.secondary.healthMonitorRef",
                "an automatic trigger needs the primary down while the secondary is healthy, so each region needs its own HealthMonitor (both name the same one)",
            );
        }

        let trigger = &spec.trigger;
        check_duration(&mut errors, "spec.trigger.after", Some(&trigger.after));
        check_duration(
            &mut errors,
            "spec.trigger.cooldown",
            Some(&trigger.cooldown),
        );
        if let Some(quorum) = trigger.quorum {
            let monitors = 1 + spec.primary.extra_monitors.len() as u32;
            if quorum == 0 || quorum > monitors {
                errors.push(
                    "spec.trigger.quorum",
                    format!(
                        "must be between 1 and the primary's {monitors} monitor(s) (healthMonitorRef plus extraMonitors)"
                    ),
                );
            }
        }
        if let Some(policy) = &trigger.backup_policy_ref
            && policy.name.is_empty()
        {
            errors.push("spec.trigger.backupPolicyRef.name", "must not be empty");
        }

        if spec.steps.is_empty() {
            errors.push("spec.steps", "needs at least one step");
        }
        check_steps(&mut errors, "spec.steps", &spec.steps, spec);
        if let Some(failback) = &spec.failback {
            if failback.steps.is_empty() {
                errors.push("spec.failback.steps", "needs at least one step");
            }
            check_steps(&mut errors, "spec.failback.steps", &failback.steps, spec);
        }
        if let Some(drills) = &spec.drills {
            check_drills(&mut errors, "spec.drills", drills);
        }
        if let Some(objectives) = &spec.objectives
            && let Some(rto) =
                check_duration(&mut errors, "spec.objectives.rto", objectives.rto.as_ref())
            && rto.is_zero()
        {
            errors.push("spec.objectives.rto", "must be longer than zero");
        }
        if let Some(alerting) = &spec.alerting {
            check_alerting(&mut errors, "spec.alerting", alerting);
        }
        errors.into_vec()
    }
}

fn check_region(errors: &mut Errors, path: &str, region: &Region) {
    if region.health_monitor_ref.name.is_empty() {
        errors.push(format!("{path}.healthMonitorRef.name"), "must not be empty");
    }
    let mut seen = BTreeSet::from([region.health_monitor_ref.name.as_str()]);
    for (i, monitor) in region.extra_monitors.iter().enumerate() {
        if !seen.insert(monitor.name.as_str()) {
            errors.push(
                format!("{path}.extraMonitors[{i}]"),
                format!("HealthMonitor {:?} is listed twice", monitor.name),
            );
        }
    }
}

/// Step rules shared by the failover and failback procedures.
fn check_steps(errors: &mut Errors, path: &str, steps: &[Step], spec: &FailoverPlanSpec) {
    let mut names = BTreeSet::new();
    let mut first_fence = None;
    for (i, step) in steps.iter().enumerate() {
        let here = format!("{path}[{i}]");
        if !names.insert(step.name.as_str()) {
            errors.push(
                format!("{here}.name"),
                format!("duplicate step name {:?}", step.name),
            );
        }
        let actions = step.actions();
        if actions.len() != 1 {
            errors.push(
                &here,
                if actions.is_empty() {
                    "exactly one action must be set (fence, restoreBackup, sql, kubernetesScale, kubernetesPatch, kubernetesRollback, dnsSwitch, http, verify or notify); none is".to_string()
                } else {
                    format!("exactly one action must be set; found {}", actions.join(", "))
                },
            );
        }
        if let Some(timeout) =
            check_duration(errors, &format!("{here}.timeout"), Some(&step.timeout))
            && timeout.is_zero()
        {
            errors.push(format!("{here}.timeout"), "must be longer than zero");
        }
        check_duration(errors, &format!("{here}.backoff"), Some(&step.backoff));
        if step.retries > 10 {
            errors.push(format!("{here}.retries"), "must be at most 10");
        }

        if let Some(fence) = &step.fence {
            first_fence.get_or_insert(i);
            let set = [
                fence.scale_to_zero.is_some(),
                fence.config_map_set.is_some(),
                fence.webhook.is_some(),
            ];
            if set.iter().filter(|s| **s).count() != 1 {
                errors.push(
                    format!("{here}.fence"),
                    "exactly one of scaleToZero, configMapSet or webhook must be set",
                );
            }
            if let Some(webhook) = &fence.webhook {
                check_http(errors, &format!("{here}.fence.webhook"), webhook);
            }
        }
        if let Some(restore) = &step.restore_backup {
            check_postgres_connection(
                errors,
                &format!("{here}.restoreBackup.targetDatabase"),
                &restore.target_database,
            );
            promotion_after_fence(errors, &here, "restoreBackup", first_fence, steps);
        }
        if let Some(sql) = &step.sql {
            check_sql_statements(
                errors,
                &format!("{here}.sql"),
                &sql.connection,
                &sql.statements,
                sql.statement_timeout.as_ref(),
            );
            if sql
                .statements
                .iter()
                .any(|s| s.to_ascii_lowercase().contains("pg_promote"))
            {
                promotion_after_fence(errors, &here, "sql", first_fence, steps);
            }
        }
        if let Some(scale) = &step.kubernetes_scale
            && scale.replicas < 0
        {
            errors.push(
                format!("{here}.kubernetesScale.replicas"),
                "must not be negative",
            );
        }
        if let Some(patch) = &step.kubernetes_patch {
            let target = &patch.target;
            for (field, value) in [
                ("apiVersion", &target.api_version),
                ("kind", &target.kind),
                ("name", &target.name),
            ] {
                if value.is_empty() {
                    errors.push(
                        format!("{here}.kubernetesPatch.target.{field}"),
                        "must not be empty",
                    );
                }
            }
            if target.kind == "Secret" {
                errors.push(
                    format!("{here}.kubernetesPatch.target.kind"),
                    "Secrets are never patched from a plan (their values would live in the plan); patch the object that references the Secret instead",
                );
            }
            if patch.merge_patch.is_empty() {
                errors.push(
                    format!("{here}.kubernetesPatch.mergePatch"),
                    "must not be empty",
                );
            }
        }
        if let Some(rollback) = &step.kubernetes_rollback
            && rollback.to_revision.is_some_and(|r| r < 1)
        {
            errors.push(
                format!("{here}.kubernetesRollback.toRevision"),
                "must be at least 1",
            );
        }
        if let Some(dns) = &step.dns_switch {
            check_dns(errors, &format!("{here}.dnsSwitch"), dns);
        }
        if let Some(http) = &step.http {
            check_http(errors, &format!("{here}.http"), http);
        }
        if let Some(verify) = &step.verify {
            if verify.consecutive_healthy == 0 {
                errors.push(
                    format!("{here}.verify.consecutiveHealthy"),
                    "must be at least 1",
                );
            }
            if let Some(monitor) = &verify.health_monitor_ref
                && monitor.name.is_empty()
            {
                errors.push(
                    format!("{here}.verify.healthMonitorRef.name"),
                    "must not be empty",
                );
            }
        }
        if let Some(notify) = &step.notify {
            if notify.message.trim().is_empty() {
                errors.push(format!("{here}.notify.message"), "must not be empty");
            }
            if spec.alerting.as_ref().is_none_or(|a| a.channels.is_empty()) {
                errors.push(
                    format!("{here}.notify"),
                    "notify steps send through spec.alerting, which has no channels",
                );
            }
        }
    }
}

/// Split-brain guard: when the procedure fences the primary, it does so before promoting or
/// restoring into the secondary.
fn promotion_after_fence(
    errors: &mut Errors,
    here: &str,
    action: &str,
    first_fence: Option<usize>,
    steps: &[Step],
) {
    if first_fence.is_none()
        && let Some(fence) = steps.iter().position(|s| s.fence.is_some())
    {
        errors.push(
            here,
            format!(
                "{action} promotes the secondary before the primary is fenced (step {:?}); move the fence step first",
                steps[fence].name
            ),
        );
    }
}

fn check_drills(errors: &mut Errors, path: &str, drills: &Drills) {
    let tz = errors.check(
        &format!("{path}.timeZone"),
        parse_time_zone(&drills.time_zone),
    );
    let tz = tz.unwrap_or(Tz::UTC);
    let schedule = &drills.schedule;
    if schedule.cron.is_some() == schedule.rrule.is_some() {
        errors.push(
            format!("{path}.schedule"),
            "exactly one of cron or rrule must be set",
        );
    }
    if let Some(cron) = &schedule.cron {
        errors.check(
            &format!("{path}.schedule.cron"),
            CronSchedule::parse(cron, tz),
        );
    }
    if let Some(rrule) = &schedule.rrule {
        let here = format!("{path}.schedule.rrule");
        if let Some((start, exdates)) =
            check_rrule_dates(errors, &here, &rrule.start, &rrule.exdates)
        {
            errors.check(
                &format!("{here}.rule"),
                RecurrenceRule::parse(&rrule.rule, start, tz, &exdates),
            );
        }
    }
    check_duration(
        errors,
        &format!("{path}.rtoObjective"),
        drills.rto_objective.as_ref(),
    );
}

mod network;

#[cfg(test)]
pub(super) mod tests;
