use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;
use crate::api::common::LabelSelector;
use crate::controller::maintenance::{Effects, IndexedWindow};
use crate::schedule::WindowSchedule;

fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 3, hour, minute, 0)
        .single()
        .expect("valid instant")
}

fn coverage(start: DateTime<Utc>, end: DateTime<Utc>, pause: bool, mute: bool) -> Coverage {
    Coverage {
        window: "ns/mw".into(),
        start,
        end,
        effects: Effects {
            pause_backups: pause,
            suppress_alerts: mute,
            ..Effects::default()
        },
    }
}

#[test]
fn open_pause_window_suspends_and_names_the_window() {
    let windows = [coverage(at(2, 0), at(4, 0), true, false)];
    let m = decide(&windows, None, at(3, 0));
    assert!(desired_suspend(false, &m));
    assert_eq!(m.next_change, Some(at(4, 0)));
    let c = paused_condition(false, &m);
    assert_eq!(c.status, ConditionStatus::True);
    assert_eq!(c.reason, REASON_MAINTENANCE_WINDOW);
    assert!(c.message.contains("ns/mw"), "{}", c.message);
    assert!(c.message.contains(&at(4, 0).to_rfc3339()), "{}", c.message);
}

#[test]
fn before_and_after_the_window_nothing_is_suspended() {
    let windows = [coverage(at(2, 0), at(4, 0), true, false)];
    let before = decide(&windows, None, at(1, 0));
    assert!(!desired_suspend(false, &before));
    assert_eq!(before.next_change, Some(at(2, 0)));
    let after = decide(&windows, None, at(4, 0));
    assert!(!desired_suspend(false, &after));
    assert_eq!(
        paused_condition(false, &after).status,
        ConditionStatus::False
    );
}

#[test]
fn user_suspend_wins_outside_windows() {
    let m = decide(&[], None, at(3, 0));
    assert!(desired_suspend(true, &m));
    assert_eq!(paused_condition(true, &m).reason, REASON_SUSPENDED);
}

#[test]
fn a_window_without_pause_does_not_suspend_but_may_mute() {
    let windows = [coverage(at(2, 0), at(4, 0), false, true)];
    let m = decide(&windows, Some(Duration::hours(24)), at(3, 0));
    assert!(!desired_suspend(false, &m));
    assert!(m.suppress.is_some());
    assert_eq!(m.rpo_grace_until, None);
}

#[test]
fn rpo_alert_is_withheld_for_one_rpo_after_a_pause() {
    let windows = [coverage(at(2, 0), at(4, 0), true, false)];
    let rpo = Some(Duration::hours(1));
    let during = decide(&windows, rpo, at(3, 0));
    assert_eq!(during.rpo_grace_until, Some(at(5, 0)));
    let soon_after = decide(&windows, rpo, at(4, 30));
    assert_eq!(soon_after.rpo_grace_until, Some(at(5, 0)));
    assert_eq!(soon_after.next_change, Some(at(5, 0)));
    let later = decide(&windows, rpo, at(5, 0));
    assert_eq!(later.rpo_grace_until, None);
}

#[test]
fn overlapping_pauses_hold_until_the_last_closes() {
    let windows = [
        coverage(at(2, 0), at(3, 0), true, false),
        coverage(at(2, 30), at(5, 0), true, false),
    ];
    let m = decide(&windows, None, at(2, 45));
    assert_eq!(m.pause.map(|c| c.end), Some(at(5, 0)));
    assert_eq!(m.next_change, Some(at(3, 0)));
}

#[test]
fn observe_honours_the_selector_and_namespace() {
    let index = MaintenanceIndex::new();
    let start = Utc::now() - Duration::minutes(1);
    let end = start + Duration::hours(1);
    let schedule = WindowSchedule::one_off(start, end).expect("valid one-off window");
    index.upsert(IndexedWindow {
        namespace: "ns".into(),
        name: "mw".into(),
        description: None,
        schedule_text: String::new(),
        schedule,
        selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([("tier".into(), "db".into())])),
            match_expressions: None,
        }),
        effects: Effects {
            pause_backups: true,
            suppress_alerts: true,
            ..Effects::default()
        },
        closed_early: None,
    });
    let db = BTreeMap::from([("tier".to_string(), "db".to_string())]);
    let web = BTreeMap::from([("tier".to_string(), "web".to_string())]);
    let now = Utc::now();
    let selected = observe(&index, "ns", &db, None, now);
    assert!(desired_suspend(false, &selected));
    assert!(
        selected.suppress.is_some(),
        "suppressAlerts reaches policies"
    );
    assert!(!desired_suspend(
        false,
        &observe(&index, "ns", &web, None, now)
    ));
    assert!(!desired_suspend(
        false,
        &observe(&index, "other", &db, None, now)
    ));
}
