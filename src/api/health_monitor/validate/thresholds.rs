//! Rules about thresholds and the remediations they trigger.

use std::collections::{BTreeMap, BTreeSet};

use super::ComponentKinds;
use crate::api::health_monitor::{
    Direction, HealthMonitorSpec, Remediation, Threshold, ThresholdMetric, TriggerLevel,
};
use crate::api::validation::Errors;

/// Validates thresholds and returns each name with whether it has a warning level.
pub(super) fn validate_thresholds(
    errors: &mut Errors,
    spec: &HealthMonitorSpec,
    components: &ComponentKinds,
) -> BTreeMap<String, bool> {
    let mut names = BTreeMap::new();
    for (i, threshold) in spec.thresholds.iter().enumerate() {
        let path = format!("spec.thresholds[{i}]");
        if names
            .insert(threshold.name.clone(), threshold.warning.is_some())
            .is_some()
        {
            errors.push(
                format!("{path}.name"),
                format!("duplicate threshold name {:?}", threshold.name),
            );
        }
        validate_threshold(errors, &path, spec, threshold, components);
    }
    names
}

fn validate_threshold(
    errors: &mut Errors,
    path: &str,
    spec: &HealthMonitorSpec,
    threshold: &Threshold,
    components: &ComponentKinds,
) {
    if errors
        .check(&format!("{path}.window"), threshold.window.parse())
        .is_some()
        && !spec.windows.contains(&threshold.window)
    {
        errors.push(
            format!("{path}.window"),
            format!(
                "{} is not one of spec.windows ({})",
                threshold.window,
                spec.windows
                    .iter()
                    .map(|w| w.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }

    let metric = threshold.metric;
    match (&threshold.component, metric.is_component()) {
        (None, true) => errors.push(
            format!("{path}.component"),
            format!("{metric:?} needs the name of a component"),
        ),
        (Some(_), false) => errors.push(
            format!("{path}.component"),
            format!("{metric:?} is not about a component; remove component"),
        ),
        (Some(name), true) => match components.get(name) {
            None => errors.push(
                format!("{path}.component"),
                format!("no component named {name:?} in spec.components"),
            ),
            Some((_, false)) if metric == ThresholdMetric::ComponentValue => errors.push(
                format!("{path}.component"),
                format!("component {name:?} has no valuePath to read a value from"),
            ),
            Some((false, _)) if metric != ThresholdMetric::ComponentValue => errors.push(
                format!("{path}.component"),
                format!("component {name:?} has no jsonPath to judge availability by"),
            ),
            _ => {}
        },
        (None, false) => {}
    }

    if let Some(natural) = metric.natural_direction()
        && natural != threshold.direction
    {
        errors.push(
            format!("{path}.direction"),
            format!("{metric:?} thresholds fire {natural:?} their level"),
        );
    }

    for (field, level) in [
        ("warning", threshold.warning),
        ("critical", threshold.critical),
    ] {
        let Some(level) = level else { continue };
        if !level.is_finite() || level < 0.0 {
            errors.push(format!("{path}.{field}"), "must be a number of 0 or more");
        } else if metric.is_percentage() && level > 100.0 {
            errors.push(
                format!("{path}.{field}"),
                format!("{metric:?} is a percentage; {level} is above 100"),
            );
        }
    }
    match (threshold.warning, threshold.critical) {
        (None, None) => errors.push(path, "set warning, critical or both"),
        (Some(warning), Some(critical)) if !threshold.breaches(critical, warning) => {
            errors.push(
                format!("{path}.critical"),
                format!(
                    "warning ({warning}) must be milder than critical ({critical}): for a {:?} threshold the critical level lies {} the warning level",
                    threshold.direction,
                    match threshold.direction {
                        Direction::Above => "above",
                        Direction::Below => "below",
                    }
                ),
            );
        }
        _ => {}
    }
    if threshold.min_samples == 0 {
        errors.push(format!("{path}.minSamples"), "must be at least 1");
    }
}

pub(super) fn validate_remediations(
    errors: &mut Errors,
    remediations: &[Remediation],
    thresholds: &BTreeMap<String, bool>,
) {
    let mut names = BTreeSet::new();
    for (i, remediation) in remediations.iter().enumerate() {
        let path = format!("spec.remediations[{i}]");
        if !names.insert(remediation.name.as_str()) {
            errors.push(
                format!("{path}.name"),
                format!("duplicate remediation name {:?}", remediation.name),
            );
        }
        let actions = [
            remediation.rollback.is_some(),
            remediation.scale.is_some(),
            remediation.set_config_map_key.is_some(),
            remediation.failover.is_some(),
        ];
        if actions.iter().filter(|a| **a).count() != 1 {
            errors.push(
                &path,
                "exactly one of rollback, scale, setConfigMapKey or failover must be set",
            );
        }
        let when = &remediation.when;
        match (&when.threshold, &when.health) {
            (Some(_), Some(_)) | (None, None) => errors.push(
                format!("{path}.when"),
                "exactly one of threshold or health must be set",
            ),
            (Some(name), None) => match thresholds.get(name) {
                None => errors.push(
                    format!("{path}.when.threshold"),
                    format!("no threshold named {name:?} in spec.thresholds"),
                ),
                Some(false) if when.level == TriggerLevel::Warning => errors.push(
                    format!("{path}.when.level"),
                    format!("threshold {name:?} has no warning level"),
                ),
                _ => {}
            },
            (None, Some(_)) => {}
        }
        if let Some(scale) = &remediation.scale
            && scale.replicas < 0
        {
            errors.push(format!("{path}.scale.replicas"), "must not be negative");
        }
        errors.check(&format!("{path}.cooldown"), remediation.cooldown.parse());
        if remediation.max_attempts == 0 {
            errors.push(format!("{path}.maxAttempts"), "must be at least 1");
        }
    }
}
