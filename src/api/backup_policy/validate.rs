//! Semantic rules of a BackupPolicy that the CRD schema cannot express (or that `check` must
//! report without a CEL engine): cron and time zones, one-of members, retention, objectives.

use std::{collections::BTreeSet, time::Duration as StdDuration};

use chrono::Utc;
use chrono_tz::Tz;

use super::{BackupDestination, BackupPolicy, DumpFormat, PgDumpOptions, RetentionSpec};
use crate::api::common::{check_alerting, check_duration, check_postgres_connection};
use crate::api::validation::{Errors, FieldError, Validate};
use crate::schedule::{CronSchedule, parse_time_zone};

impl Validate for BackupPolicy {
    fn validate(&self) -> Vec<FieldError> {
        let spec = &self.spec;
        let mut errors = Errors::new();

        let tz = errors.check("spec.timeZone", parse_time_zone(&spec.time_zone));
        let schedule = errors.check(
            "spec.schedule",
            CronSchedule::parse(&spec.schedule, tz.unwrap_or(Tz::UTC)),
        );

        check_postgres_connection(
            &mut errors,
            "spec.source.connection",
            &spec.source.connection,
        );
        check_pg_dump(&mut errors, "spec.source.pgDump", &spec.source.pg_dump);
        check_destination(&mut errors, "spec.destination", &spec.destination);
        check_retention(&mut errors, "spec.retention", &spec.retention);

        if let Some(objectives) = &spec.objectives {
            let rpo = check_duration(&mut errors, "spec.objectives.rpo", objectives.rpo.as_ref());
            let rto = check_duration(&mut errors, "spec.objectives.rto", objectives.rto.as_ref());
            for (path, value) in [("spec.objectives.rpo", rpo), ("spec.objectives.rto", rto)] {
                if value == Some(StdDuration::ZERO) {
                    errors.push(path, "must be longer than zero");
                }
            }
            if let (Some(rpo), Some(schedule)) = (rpo, &schedule)
                && !rpo.is_zero()
                && let Some(gap) = longest_gap(schedule)
                && gap > rpo
            {
                errors.push(
                    "spec.objectives.rpo",
                    format!(
                        "schedule {:?} leaves up to {} between backups, longer than the rpo {}: the objective could never be met",
                        spec.schedule,
                        human(gap),
                        human(rpo)
                    ),
                );
            }
        }

        if let Some(verification) = &spec.verification {
            let vtz = match &verification.time_zone {
                Some(zone) => errors.check("spec.verification.timeZone", parse_time_zone(zone)),
                None => tz,
            };
            errors.check(
                "spec.verification.schedule",
                CronSchedule::parse(&verification.schedule, vtz.unwrap_or(Tz::UTC)),
            );
            if let Some(connection) = &verification.scratch_database.connection {
                check_postgres_connection(
                    &mut errors,
                    "spec.verification.scratchDatabase.connection",
                    connection,
                );
            }
            let prefix = &verification.scratch_database.name_prefix;
            let prefix_ok = prefix
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
                && prefix
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && prefix.len() <= 40;
            if !prefix_ok {
                errors.push(
                    "spec.verification.scratchDatabase.namePrefix",
                    "must be at most 40 lower-case letters, digits and underscores, not starting with a digit",
                );
            }
            let mut names = BTreeSet::new();
            for (i, check) in verification.sql_checks.iter().enumerate() {
                let here = format!("spec.verification.sqlChecks[{i}]");
                if !names.insert(check.name.as_str()) {
                    errors.push(
                        format!("{here}.name"),
                        format!("duplicate check name {:?}", check.name),
                    );
                }
                if check.expect.is_some() == check.min_rows.is_some() {
                    errors.push(&here, "exactly one of expect or minRows must be set");
                }
                if check.query.trim().is_empty() {
                    errors.push(format!("{here}.query"), "must not be empty");
                }
            }
            check_duration(
                &mut errors,
                "spec.verification.timeout",
                verification.timeout.as_ref(),
            );
        }

        if let Some(alerting) = &spec.alerting {
            check_alerting(&mut errors, "spec.alerting", alerting);
        }
        errors.into_vec()
    }
}

fn check_pg_dump(errors: &mut Errors, path: &str, options: &PgDumpOptions) {
    if let Some(level) = options.compression_level
        && level > 9
    {
        errors.push(
            format!("{path}.compressionLevel"),
            format!("must be between 0 and 9 (got {level})"),
        );
    }
    match options.jobs {
        Some(0) => errors.push(format!("{path}.jobs"), "must be at least 1"),
        Some(jobs) if jobs > 1 && options.format == DumpFormat::Plain => errors.push(
            format!("{path}.jobs"),
            "parallel restore needs the Custom format (a Plain dump is replayed by one psql)",
        ),
        _ => {}
    }
    let lists = [
        ("schemas", &options.schemas),
        ("excludeSchemas", &options.exclude_schemas),
        ("tables", &options.tables),
        ("excludeTables", &options.exclude_tables),
        ("excludeTableData", &options.exclude_table_data),
    ];
    for (name, list) in lists {
        for (i, pattern) in list.iter().enumerate() {
            if pattern.trim().is_empty() {
                errors.push(format!("{path}.{name}[{i}]"), "must not be empty");
            }
        }
    }
    for (i, schema) in options.exclude_schemas.iter().enumerate() {
        if options.schemas.contains(schema) {
            errors.push(
                format!("{path}.excludeSchemas[{i}]"),
                format!("schema {schema:?} is both included and excluded"),
            );
        }
    }
    for (i, table) in options.exclude_tables.iter().enumerate() {
        if options.tables.contains(table) {
            errors.push(
                format!("{path}.excludeTables[{i}]"),
                format!("table {table:?} is both included and excluded"),
            );
        }
    }
}

fn check_destination(errors: &mut Errors, path: &str, destination: &BackupDestination) {
    let set = [
        destination.s3.is_some(),
        destination.gcs.is_some(),
        destination.azure_blob.is_some(),
        destination.pvc.is_some(),
    ];
    if set.iter().filter(|s| **s).count() != 1 {
        errors.push(path, "exactly one of s3, gcs, azureBlob or pvc must be set");
    }
    if let Some(s3) = &destination.s3 {
        if s3.access_key_id_secret_ref.is_some() != s3.secret_access_key_secret_ref.is_some() {
            errors.push(
                format!("{path}.s3"),
                "accessKeyIdSecretRef and secretAccessKeySecretRef are set together (or neither, for workload identity)",
            );
        }
        check_prefix(errors, &format!("{path}.s3.prefix"), s3.prefix.as_deref());
    }
    if let Some(gcs) = &destination.gcs {
        check_prefix(errors, &format!("{path}.gcs.prefix"), gcs.prefix.as_deref());
    }
    if let Some(azure) = &destination.azure_blob {
        check_prefix(
            errors,
            &format!("{path}.azureBlob.prefix"),
            azure.prefix.as_deref(),
        );
    }
    if let Some(pvc) = &destination.pvc {
        check_prefix(errors, &format!("{path}.pvc.path"), pvc.path.as_deref());
    }
}

/// Prefixes and paths are relative and stay inside the policy's area: no leading `/`, no `..`.
fn check_prefix(errors: &mut Errors, path: &str, prefix: Option<&str>) {
    let Some(prefix) = prefix else { return };
    if prefix.starts_with('/') {
        errors.push(path, "must be relative (no leading /)");
    }
    if prefix.split('/').any(|segment| segment == "..") {
        errors.push(path, "must not contain .. segments");
    }
}

/// Upper bounds of the retention counts; beyond them a policy is almost surely a typo.
const MAX_COUNT: u32 = 1000;
const MAX_YEARLY: u32 = 100;

fn check_retention(errors: &mut Errors, path: &str, retention: &RetentionSpec) {
    let counts = [
        ("keepLast", retention.keep_last, MAX_COUNT),
        ("daily", retention.daily, MAX_COUNT),
        ("weekly", retention.weekly, MAX_COUNT),
        ("monthly", retention.monthly, MAX_COUNT),
        ("yearly", retention.yearly, MAX_YEARLY),
    ];
    for (name, value, max) in counts {
        if value > max {
            errors.push(
                format!("{path}.{name}"),
                format!("must be at most {max} (got {value})"),
            );
        }
    }
    if counts.iter().all(|(_, value, _)| *value == 0) {
        errors.push(
            path,
            "at least one of keepLast, daily, weekly, monthly or yearly must be above 0",
        );
    }
    check_duration(
        errors,
        &format!("{path}.minAge"),
        retention.min_age.as_ref(),
    );
}

/// The longest time between two consecutive runs over the next year (sampled), or `None` when
/// the schedule fires fewer than twice.
fn longest_gap(schedule: &CronSchedule) -> Option<StdDuration> {
    let mut previous = schedule.next_after(Utc::now())?;
    let horizon = previous + chrono::Duration::days(400);
    let mut longest: Option<StdDuration> = None;
    // Bounded: at most 2000 runs are looked at, enough for an hourly schedule over 80 days; a
    // schedule that fires more often than hourly has no long gaps to find.
    for _ in 0..2000 {
        let Some(next) = schedule.next_after(previous) else {
            break;
        };
        let gap = (next - previous).to_std().ok()?;
        longest = Some(longest.map_or(gap, |l| l.max(gap)));
        if next > horizon {
            break;
        }
        previous = next;
    }
    longest
}

/// `90000s` as `25h`, `86400s` as `24h`, `604800s` as `7d`, `90s` as `1m30s`, for messages.
pub(crate) fn human(duration: StdDuration) -> String {
    let secs = duration.as_secs();
    if secs >= 2 * 86400 && secs % 86400 == 0 {
        return format!("{}d", secs / 86400);
    }
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
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
}
