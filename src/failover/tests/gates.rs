//! Every gate, alone.

use std::time::Duration;

use crate::failover::gates::{self, AutomaticGate, BackupObservation, Observations, RefusalReason};
use crate::failover::record::{AttemptKind, AttemptRecord, FailoverRecord, TriggerSource};
use crate::probe::health::Health;

use super::{at, calm, monitor, outage, plan};

fn automatic(obs: &Observations, record: &FailoverRecord, now_secs: i64) -> AutomaticGate {
    let p = plan();
    let down = gates::primary_down_since(&p, obs, record.primary_down_since, at(now_secs));
    gates::automatic_gate(&p, record, obs, down, at(now_secs))
}

fn refused(gate: AutomaticGate) -> RefusalReason {
    match gate {
        AutomaticGate::Refused { refusal, .. } => refusal.reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn the_automatic_trigger_waits_for_the_dwell_time() {
    let obs = outage(at(0));
    let record = FailoverRecord::default();
    assert_eq!(
        automatic(&obs, &record, 299),
        AutomaticGate::Dwelling { until: at(300) }
    );
    assert!(matches!(
        automatic(&obs, &record, 300),
        AutomaticGate::Fire { .. }
    ));
}

#[test]
fn critical_counts_as_down_but_degraded_and_unknown_do_not() {
    let p = plan();
    for (health, down) in [
        (Health::Critical, true),
        (Health::Down, true),
        (Health::Degraded, false),
        (Health::Unknown, false),
        (Health::Suppressed, false),
    ] {
        let obs = Observations {
            monitors: vec![monitor("app-ohio", health, Some(at(0)))],
            ..Observations::default()
        };
        assert_eq!(
            gates::primary_down_since(&p, &obs, None, at(10)).is_some(),
            down,
            "{health:?}"
        );
    }
}

#[test]
fn the_dwell_time_counts_from_the_persisted_down_since() {
    // The record remembers an earlier start than the monitor now reports (restart).
    let p = plan();
    let obs = outage(at(200));
    assert_eq!(
        gates::primary_down_since(&p, &obs, Some(at(0)), at(250)),
        Some(at(0))
    );
    // A monitor without `since` counts from now.
    let obs = Observations {
        monitors: vec![monitor("app-ohio", Health::Down, None)],
        ..Observations::default()
    };
    assert_eq!(
        gates::primary_down_since(&p, &obs, None, at(42)),
        Some(at(42))
    );
}

#[test]
fn manual_plans_never_fire_on_their_own() {
    let mut p = plan();
    p.trigger.automatic = false;
    let obs = outage(at(0));
    let down = gates::primary_down_since(&p, &obs, None, at(1000));
    assert_eq!(
        gates::automatic_gate(&p, &FailoverRecord::default(), &obs, down, at(1000)),
        AutomaticGate::NotWanted
    );
}

#[test]
fn a_quorum_needs_that_many_monitors_down_and_counts_from_the_quorum_th() {
    let mut p = plan();
    p.primary.monitors = vec!["a".into(), "b".into(), "c".into()];
    p.trigger.quorum = Some(2);
    let one = Observations {
        monitors: vec![
            monitor("a", Health::Down, Some(at(0))),
            monitor("b", Health::Healthy, None),
            monitor("c", Health::Healthy, None),
        ],
        ..Observations::default()
    };
    assert_eq!(gates::primary_down_since(&p, &one, None, at(600)), None);
    let two = Observations {
        monitors: vec![
            monitor("a", Health::Down, Some(at(0))),
            monitor("b", Health::Critical, Some(at(100))),
            monitor("c", Health::Healthy, None),
        ],
        ..Observations::default()
    };
    assert_eq!(
        gates::primary_down_since(&p, &two, None, at(600)),
        Some(at(100))
    );
    // Without a quorum every monitor must be down.
    p.trigger.quorum = None;
    assert_eq!(gates::primary_down_since(&p, &two, None, at(600)), None);
}

#[test]
fn a_secondary_that_is_not_healthy_refuses() {
    let mut obs = outage(at(0));
    obs.monitors[1].health = Health::Degraded;
    assert_eq!(
        refused(automatic(&obs, &FailoverRecord::default(), 400)),
        RefusalReason::SecondaryNotHealthy
    );
    // A secondary monitor that is not observed at all is Unknown, not Healthy.
    obs.monitors.truncate(1);
    assert_eq!(
        refused(automatic(&obs, &FailoverRecord::default(), 400)),
        RefusalReason::SecondaryNotHealthy
    );
}

#[test]
fn an_open_maintenance_window_blocks_the_automatic_trigger() {
    let mut obs = outage(at(0));
    obs.maintenance_windows = vec!["monthly-patching".into()];
    let gate = automatic(&obs, &FailoverRecord::default(), 400);
    match &gate {
        AutomaticGate::Refused { refusal, .. } => {
            assert_eq!(refusal.reason, RefusalReason::MaintenanceWindow);
            assert!(
                refusal.message.contains("monthly-patching"),
                "{}",
                refusal.message
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn cooldown_refuses_until_it_ends_and_says_when() {
    let obs = outage(at(0));
    let record = FailoverRecord {
        cooldown_until: Some(at(1000)),
        ..FailoverRecord::default()
    };
    match automatic(&obs, &record, 400) {
        AutomaticGate::Refused { refusal, retry_at } => {
            assert_eq!(refusal.reason, RefusalReason::Cooldown);
            assert_eq!(retry_at, Some(at(1000)));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        automatic(&obs, &record, 1000),
        AutomaticGate::Fire { .. }
    ));
}

#[test]
fn a_suspended_plan_refuses_the_automatic_trigger() {
    let mut p = plan();
    p.trigger.suspended = true;
    let obs = outage(at(0));
    let down = gates::primary_down_since(&p, &obs, None, at(400));
    match gates::automatic_gate(&p, &FailoverRecord::default(), &obs, down, at(400)) {
        AutomaticGate::Refused { refusal, .. } => {
            assert_eq!(refusal.reason, RefusalReason::Suspended)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_healthy_primary_is_not_a_reason_to_do_anything() {
    assert_eq!(
        automatic(&calm(), &FailoverRecord::default(), 10_000),
        AutomaticGate::NotWanted
    );
}

fn backup(age_secs: Option<i64>, rpo_secs: u64) -> Observations {
    Observations {
        backup: Some(BackupObservation {
            policy: "orders-db".into(),
            newest_verified: age_secs.map(|age| at(10_000 - age)),
            rpo: Duration::from_secs(rpo_secs),
        }),
        ..Observations::default()
    }
}

#[test]
fn the_backup_gate_refuses_stale_missing_and_unknown_backups() {
    let mut p = plan();
    p.trigger.backup_gate = true;
    let now = at(10_000);
    assert_eq!(
        gates::backup_gate(&p, &backup(Some(3600), 3600), now),
        Ok(())
    );
    let stale = gates::backup_gate(&p, &backup(Some(3601), 3600), now).expect_err("stale");
    assert_eq!(stale.reason, RefusalReason::StaleBackup);
    assert!(
        stale.message.contains("orders-db") && stale.message.contains("3601s"),
        "{}",
        stale.message
    );
    assert_eq!(
        gates::backup_gate(&p, &backup(None, 3600), now).map_err(|r| r.reason),
        Err(RefusalReason::NoVerifiedBackup)
    );
    assert_eq!(
        gates::backup_gate(&p, &Observations::default(), now).map_err(|r| r.reason),
        Err(RefusalReason::NoVerifiedBackup)
    );
    // allowStaleBackup, or no backup policy at all, turns the gate off.
    p.trigger.allow_stale_backup = true;
    assert_eq!(
        gates::backup_gate(&p, &backup(Some(99_999), 3600), now),
        Ok(())
    );
    p.trigger.allow_stale_backup = false;
    p.trigger.backup_gate = false;
    assert_eq!(gates::backup_gate(&p, &backup(None, 3600), now), Ok(()));
}

fn attempt(id: &str) -> AttemptRecord {
    AttemptRecord {
        id: id.into(),
        kind: AttemptKind::Failover,
        trigger: TriggerSource::Automatic,
        token: None,
        reason: None,
        dry_run: false,
        approved: false,
        start_time: at(0),
        end_time: None,
        result: None,
        steps: Vec::new(),
    }
}

#[test]
fn the_approval_gate_wants_an_approval_naming_the_attempt() {
    let mut p = plan();
    p.trigger.require_approval = true;
    let a = attempt("failover-1-x");
    let none = Observations::default();
    let refusal = gates::approval_gate(&p, &a, &none, at(0)).expect_err("needs approval");
    assert_eq!(refusal.reason, RefusalReason::ApprovalRequired);
    assert!(refusal.message.contains("failover-1-x"));
    let other = Observations {
        approval: Some("failover-0-old".into()),
        ..Observations::default()
    };
    assert!(gates::approval_gate(&p, &a, &other, at(0)).is_err());
    let this = Observations {
        approval: Some("failover-1-x".into()),
        ..Observations::default()
    };
    assert_eq!(gates::approval_gate(&p, &a, &this, at(0)), Ok(()));
}

#[test]
fn an_approval_accepts_a_stale_backup() {
    let mut p = plan();
    p.trigger.backup_gate = true;
    let a = attempt("failover-1-x");
    let mut obs = backup(Some(7200), 3600);
    assert_eq!(
        gates::approval_gate(&p, &a, &obs, at(10_000)).map_err(|r| r.reason),
        Err(RefusalReason::StaleBackup)
    );
    obs.approval = Some("failover-1-x".into());
    assert_eq!(gates::approval_gate(&p, &a, &obs, at(10_000)), Ok(()));
}

#[test]
fn reasons_serialize_as_their_camel_case_names() {
    for reason in [
        RefusalReason::Suspended,
        RefusalReason::MaintenanceWindow,
        RefusalReason::Cooldown,
        RefusalReason::SecondaryNotHealthy,
        RefusalReason::ApprovalRequired,
        RefusalReason::StaleBackup,
        RefusalReason::NoVerifiedBackup,
        RefusalReason::AttemptInProgress,
        RefusalReason::AlreadyFailedOver,
        RefusalReason::NotFailedOver,
        RefusalReason::NoFailbackProcedure,
        RefusalReason::NotInStandby,
    ] {
        let json = serde_json::to_string(&reason).expect("serializes");
        assert_eq!(json, format!("\"{}\"", reason.as_str()));
        assert!(
            reason
                .as_str()
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_uppercase())
        );
    }
}
