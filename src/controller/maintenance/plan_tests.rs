use chrono::TimeZone;

use super::*;
use crate::api::MaintenanceWindow;

fn spec(yaml: &str) -> MaintenanceWindowSpec {
    let object: MaintenanceWindow = serde_yaml::from_str(yaml).unwrap();
    object.spec
}

fn monthly() -> MaintenanceWindowSpec {
    spec(
        r#"
apiVersion: watchkeeper.dev/v1alpha1
kind: MaintenanceWindow
metadata: {name: monthly, namespace: ops}
spec:
  timeZone: UTC
  schedule:
    rrule: {rule: "FREQ=MONTHLY;BYDAY=1TU", start: "2026-01-06T02:00:00", duration: 2h}
  effects:
    configMapSet:
      - configMapKeyRef: {name: app-config, key: READ_ONLY}
        value: "true"
    scale:
      - workloadRef: {kind: Deployment, name: worker}
        replicas: 0
  notices:
    advance: [7d, 1d]
    alerting:
      channels: [{name: ops, webhook: {url: "http://127.0.0.1:9/hook"}}]
"#,
    )
}

fn t(d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, d, h, 0, 0).unwrap()
}

#[test]
fn schedule_text_and_wanted_effects() {
    let spec = monthly();
    assert_eq!(
        schedule_text(&spec),
        "FREQ=MONTHLY;BYDAY=1TU from 2026-01-06T02:00:00 for 2h (UTC)"
    );
    let wanted = wanted_effects(&spec);
    assert_eq!(wanted.len(), 2);
    let record = AppliedEffect {
        kind: EffectKind::ConfigMapSet,
        target_kind: "ConfigMap".into(),
        target_name: "app-config".into(),
        key: Some("READ_ONLY".into()),
        previous_value: None,
        previously_absent: true,
        value: Some("true".into()),
        previous_replicas: None,
        replicas: None,
        previously_suspended: false,
        applied_time: None,
    };
    assert!(wanted[0].is_recorded_by(&record));
    assert!(!wanted[1].is_recorded_by(&record));
    let other_key = AppliedEffect {
        key: Some("OTHER".into()),
        ..record
    };
    assert!(!wanted[0].is_recorded_by(&other_key));
}

#[test]
fn advance_notices_fall_due_once_each() {
    let spec = monthly();
    let window = Window {
        start: t(3, 2),
        end: t(3, 4),
    };
    // Eight days ahead: nothing due, the 7d notice is next.
    let (due, next) = advance_notices(&spec, Some(window), &[], t(3, 2) - TimeDelta::days(8));
    assert!(due.is_empty());
    assert_eq!(next, Some(t(3, 2) - TimeDelta::days(7)));
    // Two days ahead: 7d due (late is better than never), 1d next.
    let now = t(3, 2) - TimeDelta::days(2);
    let (due, next) = advance_notices(&spec, Some(window), &[], now);
    assert_eq!(
        due.iter().map(|d| d.advance.as_str()).collect::<Vec<_>>(),
        ["7d"]
    );
    assert_eq!(next, Some(t(3, 2) - TimeDelta::days(1)));
    let sent = [NoticeRecord {
        window_start: k8s_time(window.start),
        kind: NoticeKind::Advance,
        advance: Some("7d".into()),
        time: k8s_time(now),
    }];
    let (due, _) = advance_notices(&spec, Some(window), &sent, now);
    assert!(due.is_empty(), "sent notices are not repeated");
    // Once the window started, no advance notice.
    let (due, next) = advance_notices(&spec, Some(window), &[], t(3, 2));
    assert!(due.is_empty() && next.is_none());
}

#[test]
fn job_names_are_deterministic_and_short() {
    let start = t(3, 2);
    assert_eq!(
        job_name("monthly", "vacuum", start),
        format!("monthly-vacuum-{}", start.timestamp())
    );
    let long = job_name(&"w".repeat(60), &"t".repeat(60), start);
    assert!(long.len() <= 63, "{long}");
    assert_eq!(long, job_name(&"w".repeat(60), &"t".repeat(60), start));
    assert_ne!(long, job_name(&"w".repeat(60), &"t".repeat(59), start));
}

#[test]
fn wake_picks_the_earliest_future_instant() {
    let now = t(3, 2);
    assert_eq!(wake_after(now, &[None, Some(now)]), None);
    let delay = wake_after(now, &[Some(t(3, 4)), Some(t(3, 3)), None]).unwrap();
    assert_eq!(delay, std::time::Duration::from_millis(3600 * 1000 + 20));
}
