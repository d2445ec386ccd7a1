//! Tests of the BackupPolicy rules: a good spec passes, each rule fails at its path.

use super::*;

pub(crate) const GOOD: &str = r#"
apiVersion: watchkeeper.dev/v1alpha1
kind: BackupPolicy
metadata: { name: daily }
spec:
  schedule: "0 3 * * *"
  timeZone: UTC
  source:
    connection:
      host: db.example.com
      database: postgres
      user: postgres
      passwordSecretRef: { name: db, key: password }
      sslMode: Require
    pgDump: { format: Custom, compressionLevel: 6, jobs: 2 }
  destination:
    s3:
      bucket: backups
      prefix: postgres/production/
      accessKeyIdSecretRef: { name: s3, key: id }
      secretAccessKeySecretRef: { name: s3, key: secret }
  retention: { daily: 7, weekly: 4, monthly: 3 }
  objectives: { rpo: 24h, rto: 1h }
  verification:
    schedule: "0 5 * * 0"
    sqlChecks:
      - { name: users, query: "SELECT count(*) FROM users", minRows: 1 }
      - { name: ok, query: "SELECT true", expect: t }
"#;

fn good() -> BackupPolicy {
    serde_yaml::from_str(GOOD).expect("test manifest parses")
}

fn paths(policy: &BackupPolicy) -> Vec<String> {
    policy.validate().into_iter().map(|e| e.path).collect()
}

#[test]
fn good_policy_passes() {
    assert_eq!(good().validate(), vec![]);
}

#[test]
fn bad_schedule_and_time_zone() {
    let mut p = good();
    p.spec.schedule = "0 25 * * *".into();
    p.spec.time_zone = "Mars/Olympus".into();
    assert_eq!(paths(&p), ["spec.timeZone", "spec.schedule"]);
}

#[test]
fn connection_uri_excludes_parts() {
    let mut p = good();
    p.spec.source.connection.uri_secret_ref = Some(crate::api::common::SecretKeyRef {
        name: "db".into(),
        key: "uri".into(),
    });
    let found = paths(&p);
    assert!(found.contains(&"spec.source.connection.host".to_string()));
    assert!(found.contains(&"spec.source.connection.passwordSecretRef".to_string()));
    p.spec.source.connection = Default::default();
    assert_eq!(
        paths(&p),
        [
            "spec.source.connection.host",
            "spec.source.connection.database",
            "spec.source.connection.user"
        ]
    );
}

#[test]
fn dump_options() {
    let mut p = good();
    p.spec.source.pg_dump.compression_level = Some(12);
    p.spec.source.pg_dump.format = DumpFormat::Plain;
    assert_eq!(
        paths(&p),
        [
            "spec.source.pgDump.compressionLevel",
            "spec.source.pgDump.jobs"
        ]
    );
}

#[test]
fn destination_one_of() {
    let mut p = good();
    p.spec.destination.pvc = Some(super::super::PvcDestination {
        claim_name: "backups".into(),
        path: Some("../etc".into()),
    });
    assert_eq!(paths(&p), ["spec.destination", "spec.destination.pvc.path"]);
    p.spec.destination = Default::default();
    assert_eq!(paths(&p), ["spec.destination"]);
}

#[test]
fn s3_keys_come_in_pairs() {
    let mut p = good();
    if let Some(s3) = p.spec.destination.s3.as_mut() {
        s3.secret_access_key_secret_ref = None;
        s3.prefix = Some("/abs".into());
    }
    assert_eq!(
        paths(&p),
        ["spec.destination.s3", "spec.destination.s3.prefix"]
    );
}

#[test]
fn retention_needs_a_positive_count() {
    let mut p = good();
    p.spec.retention = RetentionSpec::default();
    assert_eq!(paths(&p), ["spec.retention"]);
    p.spec.retention.daily = 5000;
    p.spec.retention.min_age = Some(crate::api::common::Duration::new("1 day"));
    assert_eq!(paths(&p), ["spec.retention.daily", "spec.retention.minAge"]);
}

#[test]
fn rpo_shorter_than_schedule_gap_is_rejected() {
    let mut p = good();
    if let Some(o) = p.spec.objectives.as_mut() {
        o.rpo = Some(crate::api::common::Duration::new("12h"));
    }
    assert_eq!(paths(&p), ["spec.objectives.rpo"]);
    // Weekly backups against a one-week RPO are fine; the daily 24h case is covered by GOOD.
    p.spec.schedule = "0 3 * * 0".into();
    if let Some(o) = p.spec.objectives.as_mut() {
        o.rpo = Some(crate::api::common::Duration::new("7d"));
    }
    assert_eq!(paths(&p), Vec::<String>::new());
}

#[test]
fn bad_durations() {
    let mut p = good();
    if let Some(o) = p.spec.objectives.as_mut() {
        o.rto = Some(crate::api::common::Duration::new("an hour"));
        o.rpo = Some(crate::api::common::Duration::new("0s"));
    }
    assert_eq!(paths(&p), ["spec.objectives.rto", "spec.objectives.rpo"]);
}

#[test]
fn verification_rules() {
    let mut p = good();
    if let Some(v) = p.spec.verification.as_mut() {
        v.schedule = "weekly".into();
        v.time_zone = Some("Nowhere/City".into());
        v.sql_checks[1].name = "users".into();
        v.sql_checks[0].expect = Some("1".into());
        v.scratch_database.name_prefix = "9bad-prefix".into();
    }
    assert_eq!(
        paths(&p),
        [
            "spec.verification.timeZone",
            "spec.verification.schedule",
            "spec.verification.scratchDatabase.namePrefix",
            "spec.verification.sqlChecks[0]",
            "spec.verification.sqlChecks[1].name",
        ]
    );
}

#[test]
fn alerting_is_checked() {
    let mut p = good();
    p.spec.alerting = Some(crate::api::common::AlertingSpec {
        routes: vec![crate::api::common::AlertRoute {
            severities: vec![],
            channels: vec!["missing".into()],
        }],
        ..Default::default()
    });
    assert_eq!(paths(&p), ["spec.alerting.routes[0].channels[0]"]);
}

#[test]
fn human_durations() {
    assert_eq!(human(StdDuration::from_secs(90000)), "25h");
    assert_eq!(human(StdDuration::from_secs(90)), "1m30s");
    assert_eq!(human(StdDuration::ZERO), "0s");
    assert_eq!(human(StdDuration::from_secs(86400)), "24h");
    assert_eq!(human(StdDuration::from_secs(7 * 86400)), "7d");
}
