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
    if secs >= 2 * 86400 && secs.is_multiple_of(86400) {
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
pub(super) mod tests;
