use chrono::TimeZone;
use chrono_tz::Tz;

use super::*;
use crate::schedule::CronSchedule;

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 3, h, m, 0).unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Daily 02:00–04:00 UTC.
fn nightly() -> WindowSchedule {
    WindowSchedule::Cron {
        cron: CronSchedule::parse("0 2 * * *", Tz::UTC).unwrap(),
        duration: std::time::Duration::from_secs(2 * 3600),
    }
}

fn window(
    name: &str,
    schedule: WindowSchedule,
    selector: Option<LabelSelector>,
    effects: Effects,
) -> IndexedWindow {
    IndexedWindow {
        namespace: "ops".into(),
        name: name.into(),
        description: None,
        schedule_text: String::new(),
        schedule,
        selector,
        effects,
        closed_early: None,
    }
}

fn app_selector(app: &str) -> Option<LabelSelector> {
    Some(LabelSelector {
        match_labels: Some(labels(&[("app", app)])),
        ..LabelSelector::default()
    })
}

const ALERTS: Effects = Effects {
    suppress_alerts: true,
    exclude_from_statistics: false,
    suspend_jobs: false,
    pause_backups: false,
    block_failover: false,
};

#[test]
fn covers_only_selected_resources_in_its_namespace_while_open() {
    let index = MaintenanceIndex::new();
    index.upsert(window("nightly", nightly(), app_selector("api"), ALERTS));
    let api = labels(&[("app", "api")]);
    let covered = index.covering("ops", "HealthMonitor", &api, at(2, 30));
    assert_eq!(
        covered,
        [Coverage {
            window: "ops/nightly".into(),
            start: at(2, 0),
            end: at(4, 0),
            effects: ALERTS,
        }]
    );
    assert!(
        index
            .covering("ops", "HealthMonitor", &api, at(4, 0))
            .is_empty(),
        "end is exclusive"
    );
    assert!(
        index
            .covering("ops", "HealthMonitor", &api, at(1, 59))
            .is_empty()
    );
    assert!(
        index
            .covering(
                "ops",
                "HealthMonitor",
                &labels(&[("app", "web")]),
                at(2, 30)
            )
            .is_empty()
    );
    assert!(
        index
            .covering("other", "HealthMonitor", &api, at(2, 30))
            .is_empty()
    );
}

#[test]
fn effects_are_narrowed_to_the_kind() {
    let index = MaintenanceIndex::new();
    let all = Effects {
        suppress_alerts: true,
        exclude_from_statistics: true,
        suspend_jobs: true,
        pause_backups: true,
        block_failover: true,
    };
    index.upsert(window("all", nightly(), None, all));
    let none = labels(&[]);
    let effects = |kind: &str| {
        index
            .covering("ops", kind, &none, at(3, 0))
            .into_iter()
            .map(|c| c.effects)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        effects("HealthMonitor"),
        [Effects {
            suppress_alerts: true,
            exclude_from_statistics: true,
            ..Effects::default()
        }]
    );
    assert_eq!(
        effects("CronJobSpec"),
        [Effects {
            suspend_jobs: true,
            ..Effects::default()
        }]
    );
    assert_eq!(
        effects("BackupPolicy"),
        [Effects {
            pause_backups: true,
            ..Effects::default()
        }]
    );
    assert_eq!(
        effects("FailoverPlan"),
        [Effects {
            block_failover: true,
            ..Effects::default()
        }]
    );

    // A window whose effects do not concern a kind does not cover it.
    let index = MaintenanceIndex::new();
    index.upsert(window("alerts", nightly(), None, ALERTS));
    assert!(
        index
            .covering("ops", "CronJobSpec", &none, at(3, 0))
            .is_empty()
    );
    assert_eq!(
        index
            .covering("ops", "HealthMonitor", &none, at(3, 0))
            .len(),
        1
    );
}

#[test]
fn overlapping_windows_are_each_reported() {
    let index = MaintenanceIndex::new();
    index.upsert(window("nightly", nightly(), None, ALERTS));
    let emergency = WindowSchedule::one_off(at(3, 0), at(5, 0)).unwrap();
    let jobs = Effects {
        suspend_jobs: true,
        ..ALERTS
    };
    index.upsert(window("emergency", emergency, None, jobs));
    let none = labels(&[]);
    let names = |t| {
        index
            .covering("ops", "HealthMonitor", &none, t)
            .into_iter()
            .map(|c| c.window)
            .collect::<Vec<_>>()
    };
    assert_eq!(names(at(2, 30)), ["ops/nightly"]);
    assert_eq!(names(at(3, 30)), ["ops/emergency", "ops/nightly"]);
    assert_eq!(names(at(4, 30)), ["ops/emergency"]);
    assert!(names(at(5, 0)).is_empty());

    let between = index.windows_between(
        "ops",
        "HealthMonitor",
        &none,
        at(0, 0),
        at(0, 0) + chrono::TimeDelta::days(2),
    );
    let spans: Vec<_> = between
        .iter()
        .map(|c| (c.window.as_str(), c.start, c.end))
        .collect();
    assert_eq!(
        spans,
        [
            ("ops/nightly", at(2, 0), at(4, 0)),
            ("ops/emergency", at(3, 0), at(5, 0)),
            (
                "ops/nightly",
                at(2, 0) + chrono::TimeDelta::days(1),
                at(4, 0) + chrono::TimeDelta::days(1)
            ),
        ]
    );
}

#[test]
fn windows_between_includes_a_window_open_at_from_and_stops_at_to() {
    let entry = window("nightly", nightly(), None, ALERTS);
    let day = chrono::TimeDelta::days(1);
    let found = entry.windows_between(at(3, 0), at(2, 0) + day * 3);
    assert_eq!(found.len(), 3, "{found:?}");
    assert_eq!(
        found[0],
        Window {
            start: at(2, 0),
            end: at(4, 0)
        }
    );
    assert_eq!(found[2].start, at(2, 0) + day * 2);
    // `to` is exclusive: a window starting exactly there is not included.
    assert_eq!(entry.windows_between(at(4, 0), at(2, 0) + day).len(), 0);
}

#[test]
fn a_removed_window_covers_nothing() {
    let index = MaintenanceIndex::new();
    index.upsert(window("nightly", nightly(), None, ALERTS));
    let none = labels(&[]);
    assert_eq!(
        index
            .covering("ops", "HealthMonitor", &none, at(3, 0))
            .len(),
        1
    );
    assert!(index.remove("ops", "nightly"));
    assert!(!index.remove("ops", "nightly"));
    assert!(
        index
            .covering("ops", "HealthMonitor", &none, at(3, 0))
            .is_empty()
    );
    assert!(
        index
            .windows_between("ops", "HealthMonitor", &none, at(0, 0), at(23, 0))
            .is_empty()
    );
}

#[test]
fn a_window_closed_early_stops_covering_at_the_close() {
    let index = MaintenanceIndex::new();
    let mut entry = window("nightly", nightly(), None, ALERTS);
    entry.closed_early = Some((at(2, 0), at(2, 20)));
    index.upsert(entry);
    let none = labels(&[]);
    assert_eq!(
        index
            .covering("ops", "HealthMonitor", &none, at(2, 10))
            .len(),
        1
    );
    assert!(
        index
            .covering("ops", "HealthMonitor", &none, at(2, 30))
            .is_empty()
    );
    let between = index.windows_between("ops", "HealthMonitor", &none, at(0, 0), at(12, 0));
    assert_eq!(between[0].end, at(2, 20));
    // The next night is not affected.
    let next = at(2, 30) + chrono::TimeDelta::days(1);
    assert_eq!(index.covering("ops", "HealthMonitor", &none, next).len(), 1);
}
