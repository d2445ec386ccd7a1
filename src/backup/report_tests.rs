//! Agent reports: JSON round trips and the termination-message size limit.

use chrono::TimeZone;

use super::*;

fn t(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 6, hour, 0, 0).unwrap()
}

fn backup() -> BackupReport {
    BackupReport {
        outcome: Outcome::Succeeded,
        id: Some("20260106T030000Z".to_string()),
        started_at: t(3),
        finished_at: t(4),
        size_bytes: Some(1234),
        sha256: Some("ab".repeat(32)),
        encrypted: true,
        message: "stored".to_string(),
        pruned: vec!["20251201T030000Z".to_string()],
        pruned_omitted: 0,
        kept: 14,
        prune_error: None,
        inventory: Some(Inventory {
            count: 14,
            total_bytes: 99,
            oldest: Some(t(1)),
            newest: Some(t(4)),
        }),
    }
}

#[test]
fn every_kind_round_trips() {
    let reports = [
        AgentReport::Backup(backup()),
        AgentReport::Verify(VerifyReport {
            outcome: Outcome::Failed,
            backup_id: Some("x".to_string()),
            backup_completed_at: Some(t(3)),
            started_at: t(5),
            finished_at: t(6),
            sha256_ok: Some(true),
            restore_seconds: Some(12.5),
            rto_met: Some(true),
            checks: vec![CheckResult {
                name: "users".to_string(),
                ok: false,
                message: "expected \"t\", got \"f\"".to_string(),
            }],
            message: "check users failed".to_string(),
        }),
        AgentReport::Restore(RestoreReport {
            outcome: Outcome::Succeeded,
            backup_id: Some("x".to_string()),
            target_database: "app_copy".to_string(),
            started_at: t(5),
            finished_at: t(6),
            restore_seconds: Some(3.0),
            message: "restored".to_string(),
        }),
    ];
    for report in reports {
        let json = report.to_termination_json();
        assert!(!json.contains('\n'));
        assert_eq!(AgentReport::from_json(&json).unwrap(), report);
    }
    let json = AgentReport::Backup(backup()).to_termination_json();
    assert!(json.starts_with("{\"kind\":\"Backup\""), "{json}");
    assert!(json.contains("\"outcome\":\"Succeeded\""), "{json}");
    assert!(json.contains("\"sizeBytes\":1234"), "{json}");
}

#[test]
fn a_long_prune_list_is_shortened_to_fit_and_counted() {
    let mut report = backup();
    report.pruned = (0..500).map(|i| format!("2024{i:04}T030000Z")).collect();
    report.message = "é".repeat(2000);
    let json = AgentReport::Backup(report).to_termination_json();
    assert!(json.len() <= TERMINATION_MESSAGE_LIMIT, "{}", json.len());
    let AgentReport::Backup(back) = AgentReport::from_json(&json).unwrap() else {
        panic!("not a backup report");
    };
    assert!(back.pruned_omitted > 0);
    assert_eq!(back.pruned.len() + back.pruned_omitted as usize, 500);
    assert!(back.message.ends_with("...") && back.message.len() <= 1024);
}

#[test]
fn many_long_checks_fit() {
    let report = AgentReport::Verify(VerifyReport {
        outcome: Outcome::Failed,
        backup_id: None,
        backup_completed_at: None,
        started_at: t(1),
        finished_at: t(2),
        sha256_ok: None,
        restore_seconds: None,
        rto_met: None,
        checks: (0..50)
            .map(|i| CheckResult {
                name: format!("check-{i}-{}", "x".repeat(50)),
                ok: false,
                message: "y".repeat(500),
            })
            .collect(),
        message: "m".repeat(5000),
    });
    let json = report.to_termination_json();
    assert!(json.len() <= TERMINATION_MESSAGE_LIMIT, "{}", json.len());
    assert!(AgentReport::from_json(&json).is_ok());
}
