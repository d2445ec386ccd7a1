//! Tests of the MaintenanceWindow rules: a good spec passes, each rule fails at its path.

use super::*;

pub(crate) const GOOD: &str = r#"
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
