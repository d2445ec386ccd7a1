//! The generated MaintenanceWindow schema (OpenAPI constraints and CEL rules) run through the
//! same validator `check` and the test API server use.

use super::MaintenanceWindow;
use super::validate::tests::GOOD;
use crate::api::schema_test_support::{self as support, yaml};

fn errors(edit: impl FnOnce(&mut serde_yaml::Value)) -> Vec<String> {
    support::schema_errors::<MaintenanceWindow>(GOOD, edit)
}

#[track_caller]
fn rejects_at(path: &str, edit: impl FnOnce(&mut serde_yaml::Value)) {
    support::rejects_at::<MaintenanceWindow>(GOOD, path, edit);
}

#[test]
fn good_window_passes_the_schema() {
    assert_eq!(errors(|_| {}), Vec::<String>::new());
}

#[test]
fn one_schedule_form() {
    rejects_at("spec.schedule", |s| {
        s["schedule"]["cron"] = yaml("{expression: '0 2 * * 6', duration: 2h}")
    });
    rejects_at("spec.schedule", |s| s["schedule"] = yaml("{}"));
}

#[test]
fn rrule_needs_start() {
    rejects_at("spec.schedule.rrule.start", |s| {
        if let Some(m) = s["schedule"]["rrule"].as_mapping_mut() {
            m.remove("start");
        }
    });
}

#[test]
fn one_off_ends_after_start() {
    let one_off = "{oneOff: {start: '2026-03-14T22:00:00Z', end: '2026-03-14T21:00:00Z'}}";
    rejects_at("spec.schedule.oneOff.end", |s| {
        s["schedule"] = yaml(one_off)
    });
    let fine = "{oneOff: {start: '2026-03-14T22:00:00Z', end: '2026-03-14T23:00:00+01:00'}}";
    // 23:00+01:00 is 22:00Z: not after the start either.
    rejects_at("spec.schedule.oneOff.end", |s| s["schedule"] = yaml(fine));
    let later = "{oneOff: {start: '2026-03-14T22:00:00Z', end: '2026-03-15T00:30:00+01:00'}}";
    assert_eq!(
        errors(|s| s["schedule"] = yaml(later)),
        Vec::<String>::new()
    );
}

#[test]
fn tasks_have_one_form_and_unique_names() {
    rejects_at("spec.tasks[0]", |s| {
        if let Some(m) = s["tasks"][0].as_mapping_mut() {
            m.remove("sql");
        }
    });
    rejects_at("spec.tasks", |s| {
        let copy = s["tasks"][0].clone();
        if let Some(list) = s["tasks"].as_sequence_mut() {
            list.push(copy);
        }
    });
}

#[test]
fn bad_enum_and_negative_replicas() {
    rejects_at("spec.failurePolicy", |s| {
        s["failurePolicy"] = yaml("Rollback")
    });
    rejects_at("spec.effects.scale[0].replicas", |s| {
        s["effects"]["scale"][0]["replicas"] = yaml("-1")
    });
}

#[test]
fn crd_fits_a_client_side_apply() {
    support::assert_crd_fits_a_client_side_apply::<MaintenanceWindow>();
}
