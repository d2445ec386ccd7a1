//! BackupPolicy: logical PostgreSQL backups on a schedule, kept by a GFS retention policy and
//! proven restorable by scheduled test restores.
//!
//! The spec lives here, the status in [`status`], the semantic rules in `validate`.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{AlertingSpec, DNS_LABEL_PATTERN, Duration, PostgresConnection};

mod destination;
pub mod status;
pub(crate) mod validate;

#[cfg(test)]
mod schema_tests;

pub use destination::*;
pub use status::*;

/// Annotation that asks for one backup now. Its value is a token (any string, e.g. a timestamp);
/// each new token runs exactly one extra backup, and the token handled last is recorded in
/// `status.lastBackupNowToken`, so re-applying the same manifest does not run it again.
pub const BACKUP_NOW_ANNOTATION: &str = "watchkeeper.dev/backup-now";

/// Time zone used when a resource does not name one.
pub(crate) fn default_time_zone() -> String {
    "UTC".to_string()
}

/// Logical PostgreSQL backups on a schedule, stored in object storage or on a volume, pruned
/// by grandfather-father-son retention, and regularly restored into a scratch database to prove
/// they work. Status reports the last backup, the inventory and whether RPO and RTO are met.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "watchkeeper.dev",
    version = "v1alpha1",
    kind = "BackupPolicy",
    namespaced,
    status = "BackupPolicyStatus",
    shortname = "bp",
    category = "watchkeeper",
    doc = "BackupPolicy takes logical PostgreSQL backups (pg_dump) on a schedule, stores them in object storage or on a volume, prunes them with grandfather-father-son retention that never deletes the newest good backup, and proves them restorable with scheduled test restores measured against the RTO.",
    printcolumn = r#"{"name":"Schedule","type":"string","jsonPath":".spec.schedule"}"#,
    printcolumn = r#"{"name":"Last Backup","type":"date","jsonPath":".status.lastBackup.completionTime"}"#,
    printcolumn = r#"{"name":"Size","type":"integer","jsonPath":".status.lastBackup.sizeBytes","description":"Size of the last backup in bytes"}"#,
    printcolumn = r#"{"name":"RPO Met","type":"string","jsonPath":".status.conditions[?(@.type==\"RPOMet\")].status"}"#,
    printcolumn = r#"{"name":"Verified","type":"string","jsonPath":".status.conditions[?(@.type==\"Verified\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupPolicySpec {
    /// When backups run: a 5-field cron expression as Kubernetes CronJobs accept it (or
    /// `@daily`, `@weekly`, …), in `timeZone`. The guides' `0 3 * * *` is daily at 03:00.
    #[schemars(length(min = 1, max = 128))]
    pub schedule: String,
    /// IANA time zone of `schedule` and of the daily/weekly/monthly/yearly retention buckets,
    /// e.g. `UTC` or `America/New_York`.
    #[serde(default = "default_time_zone")]
    #[schemars(length(min = 1, max = 64))]
    pub time_zone: String,
    /// The database to back up and how `pg_dump` runs against it.
    pub source: BackupSource,
    /// Where backups are stored. Exactly one kind of storage is set.
    pub destination: BackupDestination,
    /// Client-side encryption of every dump before it leaves the Job, with a key from a Secret.
    /// Unset means the dump is stored as `pg_dump` wrote it (rely on the storage's encryption).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<BackupEncryption>,
    /// Which backups are kept. Pruning runs after each successful backup, never deletes the
    /// newest successful backup and never touches objects this policy did not write.
    pub retention: RetentionSpec,
    /// Recovery objectives, reported as conditions: `RPOMet` compares the age of the newest
    /// verified backup with `rpo`; verification compares the restore time with `rto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objectives: Option<Objectives>,
    /// Scheduled test restores that prove backups work. Without it the `Verified` condition
    /// stays Unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationSpec>,
    /// Where failures, missed RPOs and failed verifications are reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerting: Option<AlertingSpec>,
    /// Stops scheduled backups and verifications (the CronJobs are suspended); existing backups
    /// are kept and not pruned. A `backup-now` annotation still runs.
    #[serde(default)]
    pub suspend: bool,
}

/// The database and the dump options.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupSource {
    /// How to connect; credentials only by Secret reference.
    pub connection: PostgresConnection,
    /// Options passed to `pg_dump` (and to `pg_restore` when verifying).
    #[serde(default)]
    pub pg_dump: PgDumpOptions,
    /// Container image of the backup Job; it must contain the watchkeeper agent and a
    /// `pg_dump` at least as new as the server (an older `pg_dump` refuses newer servers, and
    /// the agent checks the versions before dumping). Defaults to the operator's own image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,
}

/// Output format of `pg_dump`. Both stream to storage without a local copy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DumpFormat {
    /// `pg_dump -Fc`: compressed, restorable selectively and in parallel with `pg_restore`.
    /// The guides' format, and the default.
    #[default]
    Custom,
    /// `pg_dump -Fp`: a plain SQL script, restored with `psql` (no parallel restore).
    Plain,
}

/// What `pg_dump` includes and how it compresses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PgDumpOptions {
    /// Dump format; `Custom` (`-Fc`) when unset.
    #[serde(default)]
    pub format: DumpFormat,
    /// Only these schemas (`--schema`, patterns allowed). Empty means all schemas.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(length(min = 1, max = 255)))]
    pub schemas: Vec<String>,
    /// Schemas left out (`--exclude-schema`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(length(min = 1, max = 255)))]
    pub exclude_schemas: Vec<String>,
    /// Only these tables (`--table`, `schema.table`, patterns allowed). Empty means all tables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(length(min = 1, max = 255)))]
    pub tables: Vec<String>,
    /// Tables left out (`--exclude-table`), e.g. large caches that can be rebuilt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(length(min = 1, max = 255)))]
    pub exclude_tables: Vec<String>,
    /// Tables whose definition is kept but whose rows are left out (`--exclude-table-data`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(length(min = 1, max = 255)))]
    pub exclude_table_data: Vec<String>,
    /// Compression level 0 (none) to 9 (smallest) (`--compress`); pg_dump's default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 9))]
    pub compression_level: Option<u8>,
    /// Parallel jobs for `pg_restore` when verifying or restoring (`--jobs`). A dump that is
    /// streamed is written by one process: `pg_dump` runs in parallel only into a directory,
    /// which cannot be streamed. Needs the `Custom` format when above 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 64))]
    pub jobs: Option<u32>,
    /// Leave out ownership commands (`--no-owner`), so a dump restores as another role, as in
    /// a scratch database or another provider's project.
    #[serde(default)]
    pub no_owner: bool,
}

/// Grandfather-father-son retention. A backup is kept when any rule keeps it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "(has(self.keepLast) && self.keepLast > 0) || (has(self.daily) && self.daily > 0) || (has(self.weekly) && self.weekly > 0) || (has(self.monthly) && self.monthly > 0) || (has(self.yearly) && self.yearly > 0)",
    "message": "at least one of keepLast, daily, weekly, monthly or yearly must be above 0"
}]))]
pub struct RetentionSpec {
    /// Keep the newest N backups whatever their dates.
    #[serde(default)]
    #[schemars(range(min = 0, max = 1000))]
    pub keep_last: u32,
    /// Keep the newest backup of each of the last N days (in the policy's time zone).
    #[serde(default)]
    #[schemars(range(min = 0, max = 1000))]
    pub daily: u32,
    /// Keep the newest backup of each of the last N ISO weeks.
    #[serde(default)]
    #[schemars(range(min = 0, max = 1000))]
    pub weekly: u32,
    /// Keep the newest backup of each of the last N months.
    #[serde(default)]
    #[schemars(range(min = 0, max = 1000))]
    pub monthly: u32,
    /// Keep the newest backup of each of the last N years.
    #[serde(default)]
    #[schemars(range(min = 0, max = 100))]
    pub yearly: u32,
    /// Never delete a backup younger than this, whatever the counts say (guards against a
    /// burst of manual backups pushing out the scheduled ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_age: Option<Duration>,
}

/// Recovery objectives.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Objectives {
    /// Recovery point objective: the most data, in time, a restore may lose. `RPOMet` is True
    /// while the newest verified backup is younger than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo: Option<Duration>,
    /// Recovery time objective: how long a restore may take. Verification fails when the test
    /// restore takes longer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto: Option<Duration>,
}

/// Scheduled restore tests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerificationSpec {
    /// When to verify: a 5-field cron expression, e.g. `0 5 * * 0` (Sundays 05:00).
    #[schemars(length(min = 1, max = 128))]
    pub schedule: String,
    /// IANA time zone of `schedule`; the policy's `timeZone` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub time_zone: Option<String>,
    /// Where the newest backup is restored. The scratch database is created, checked and
    /// dropped on every run.
    #[serde(default)]
    pub scratch_database: ScratchDatabase,
    /// SQL checks run against the restored database; all must pass. With none, a restore that
    /// completes is a pass.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub sql_checks: Vec<SqlCheck>,
    /// Upper bound of one verification run (restore and checks) before it counts as failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

/// The server and name of the throw-away database a verification restores into.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScratchDatabase {
    /// A server where the role may `CREATE DATABASE` (a staging server, as the guides test
    /// restores in staging). The `database` of this connection is the one connected to for
    /// creating and dropping. Unset means the source server, which adds load to production.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<PostgresConnection>,
    /// Prefix of the scratch database's name; a unique suffix is added per run. Databases with
    /// this prefix left behind by an interrupted run are dropped by the next one.
    #[serde(default = "default_scratch_prefix")]
    #[schemars(length(min = 1, max = 40), regex(pattern = r"^[a-z_][a-z0-9_]*$"))]
    pub name_prefix: String,
    /// Keep the scratch database after a failed verification, for investigation.
    #[serde(default)]
    pub keep_on_failure: bool,
}

fn default_scratch_prefix() -> String {
    "watchkeeper_verify_".to_string()
}

impl Default for ScratchDatabase {
    fn default() -> Self {
        Self {
            connection: None,
            name_prefix: default_scratch_prefix(),
            keep_on_failure: false,
        }
    }
}

/// One SQL check on a restored database. Exactly one of `expect` and `minRows` is set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.expect) != has(self.minRows)",
    "message": "exactly one of expect or minRows must be set"
}]))]
pub struct SqlCheck {
    /// Name shown in status, e.g. `users-present`.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = DNS_LABEL_PATTERN)
    )]
    pub name: String,
    /// A read-only query, e.g. `SELECT count(*) > 0 FROM users`.
    #[schemars(length(min = 1, max = 8192))]
    pub query: String,
    /// The exact text of the first column of the first row, e.g. `t` for a boolean true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub expect: Option<String>,
    /// The least number of rows the query must return.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_rows: Option<u64>,
}

super::impl_has_conditions!(BackupPolicy);
