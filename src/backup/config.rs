//! What `watchkeeper agent backup|verify|restore` reads: one JSON document in the environment
//! variable [`AGENT_CONFIG_ENV`], written by the BackupPolicy controller into the Job's pod.
//!
//! The document holds no secret values. Every secret-bearing field is a `…Env` field naming
//! another environment variable, which the controller fills with `valueFrom.secretKeyRef`; the
//! agent reads it with [`secret_from_env`] at the moment it needs it and never logs or reports it.

use serde::{Deserialize, Serialize};

/// Environment variable holding the [`AgentConfig`] JSON.
pub const AGENT_CONFIG_ENV: &str = "WATCHKEEPER_AGENT_CONFIG";

/// Everything one agent run needs, apart from secret values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentConfig {
    /// `namespace/name` of the BackupPolicy; recorded in every manifest so a listing can tell
    /// its own backups from another policy's sharing the prefix.
    pub policy: String,
    /// The database dumped (backup) and its dump options.
    pub source: SourceConfig,
    /// Where backups are stored.
    pub destination: DestinationConfig,
    /// Client-side encryption; unset stores dumps as `pg_dump` wrote them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionConfig>,
    /// Retention applied after a successful backup; unset means nothing is pruned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionConfig>,
    /// Test restores (`agent verify`); unset makes `agent verify` fail with a clear error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationConfig>,
    /// IANA time zone of the retention periods (days, weeks, months, years).
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Directory holding `pg_dump`, `pg_restore` and `psql`; the `PATH` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pg_bin_dir: Option<String>,
}

fn default_time_zone() -> String {
    "UTC".to_string()
}

/// How to reach one PostgreSQL database. Either `uriEnv` alone, or `host` + `database` + `user`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionConfig {
    /// Env var holding a complete `postgres://` URI (from `uriSecretRef`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri_env: Option<String>,
    /// Server host name or address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Server port; 5432 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Database name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Role to connect as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Env var holding the role's password (passed to libpq tools as `PGPASSWORD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// libpq `sslmode` (`disable`, `allow`, `prefer`, `require`, `verify-ca`, `verify-full`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sslmode: Option<String>,
    /// Env var holding a PEM CA bundle for `verify-ca`/`verify-full` (written to a private
    /// temporary file and passed as `PGSSLROOTCERT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert_env: Option<String>,
}

/// The source database and how `pg_dump` runs against it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceConfig {
    /// The database to dump.
    pub connection: ConnectionConfig,
    /// `pg_dump` options.
    #[serde(default)]
    pub dump: DumpConfig,
}

/// `pg_dump` output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DumpFormatConfig {
    /// `-Fc`, restored with `pg_restore`.
    #[default]
    Custom,
    /// `-Fp`, a SQL script restored with `psql`.
    Plain,
}

/// `pg_dump` include/exclude and compression options (see `PgDumpOptions` in the API).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DumpConfig {
    /// Output format.
    #[serde(default)]
    pub format: DumpFormatConfig,
    /// `--schema` patterns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schemas: Vec<String>,
    /// `--exclude-schema` patterns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_schemas: Vec<String>,
    /// `--table` patterns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<String>,
    /// `--exclude-table` patterns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_tables: Vec<String>,
    /// `--exclude-table-data` patterns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_table_data: Vec<String>,
    /// `--compress` level 0–9; pg_dump's default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression_level: Option<u8>,
    /// `pg_restore --jobs` when verifying or restoring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<u32>,
    /// `--no-owner` on dump and restore.
    #[serde(default)]
    pub no_owner: bool,
}

/// Where backups live. Objects of a policy are all under `prefix`; nothing outside it is read,
/// written or deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "kind",
    deny_unknown_fields
)]
pub enum DestinationConfig {
    /// An S3-compatible bucket.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix (no leading `/`); the bucket root when empty.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        prefix: String,
        /// Endpoint URL for non-AWS services; AWS when unset.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        endpoint: Option<String>,
        /// Region; `us-east-1` when unset.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
        /// Path-style addressing (`endpoint/bucket`).
        #[serde(default)]
        force_path_style: bool,
        /// Env var holding the access key id; with `secretAccessKeyEnv`, or neither for the
        /// pod's workload identity.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        access_key_id_env: Option<String>,
        /// Env var holding the secret access key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret_access_key_env: Option<String>,
    },
    /// A Google Cloud Storage bucket.
    Gcs {
        /// Bucket name.
        bucket: String,
        /// Object name prefix.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        prefix: String,
        /// Env var holding a service account JSON key; workload identity when unset.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service_account_key_env: Option<String>,
    },
    /// An Azure Blob Storage container.
    AzureBlob {
        /// Storage account name.
        account: String,
        /// Container name.
        container: String,
        /// Blob name prefix.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        prefix: String,
        /// Env var holding the account key; workload identity when unset.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account_key_env: Option<String>,
        /// Endpoint override (e.g. Azurite).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        endpoint: Option<String>,
    },
    /// A directory in the agent's file system (a mounted PersistentVolumeClaim).
    Filesystem {
        /// Absolute directory path inside the container; created if missing.
        path: String,
        /// Sub-directory prefix inside `path`.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        prefix: String,
    },
}

impl DestinationConfig {
    /// The key prefix of this policy's objects, without leading or trailing `/`.
    pub fn prefix(&self) -> &str {
        let prefix = match self {
            DestinationConfig::S3 { prefix, .. }
            | DestinationConfig::Gcs { prefix, .. }
            | DestinationConfig::AzureBlob { prefix, .. }
            | DestinationConfig::Filesystem { prefix, .. } => prefix,
        };
        prefix.trim_matches('/')
    }
}

/// Client-side encryption (age, passphrase recipient: scrypt-derived key, ChaCha20-Poly1305
/// in 64 KiB chunks).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EncryptionConfig {
    /// Env var holding the passphrase (from `encryption.keySecretRef`).
    pub passphrase_env: String,
}

/// Retention counts (see [`crate::backup::retention`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetentionConfig {
    /// Keep the newest N successful backups.
    #[serde(default)]
    pub keep_last: u32,
    /// Daily buckets.
    #[serde(default)]
    pub daily: u32,
    /// ISO-week buckets.
    #[serde(default)]
    pub weekly: u32,
    /// Month buckets.
    #[serde(default)]
    pub monthly: u32,
    /// Year buckets.
    #[serde(default)]
    pub yearly: u32,
    /// Never delete a backup younger than this many seconds.
    #[serde(default)]
    pub min_age_seconds: u64,
}

impl RetentionConfig {
    /// The retention engine's policy.
    pub fn policy(&self) -> crate::backup::RetentionPolicy {
        crate::backup::RetentionPolicy {
            keep_last: self.keep_last,
            daily: self.daily,
            weekly: self.weekly,
            monthly: self.monthly,
            yearly: self.yearly,
            min_age: std::time::Duration::from_secs(self.min_age_seconds),
        }
    }
}

/// Test restores.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerificationConfig {
    /// Server where scratch databases are created; its `database` is the one connected to for
    /// `CREATE DATABASE`/`DROP DATABASE`. The source server when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scratch_connection: Option<ConnectionConfig>,
    /// Prefix of scratch database names; leftovers with this prefix are dropped.
    #[serde(default = "default_scratch_prefix")]
    pub scratch_prefix: String,
    /// Keep the scratch database after a failed verification.
    #[serde(default)]
    pub keep_on_failure: bool,
    /// SQL checks on the restored database.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sql_checks: Vec<SqlCheckConfig>,
    /// Recovery time objective in seconds: a slower restore fails the verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_seconds: Option<u64>,
    /// Upper bound of a verification run in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
}

fn default_scratch_prefix() -> String {
    "watchkeeper_verify_".to_string()
}

/// One SQL check: exactly one of `expect` and `minRows`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SqlCheckConfig {
    /// Name shown in the report.
    pub name: String,
    /// Read-only query.
    pub query: String,
    /// Exact text of the first column of the first row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
    /// Least number of rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_rows: Option<u64>,
}

/// Problems reading the configuration or a secret it names.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config variable is not set.
    #[error(
        "agent: environment variable {AGENT_CONFIG_ENV} is not set (the BackupPolicy controller sets it)"
    )]
    Missing,
    /// The config is not valid JSON of the expected shape.
    #[error("agent: {AGENT_CONFIG_ENV} is not a valid agent configuration: {0}")]
    Parse(String),
    /// A named secret variable is unset or empty.
    #[error("agent: {field}: environment variable {env} is not set or empty")]
    SecretMissing {
        /// Config field naming the variable.
        field: &'static str,
        /// The variable.
        env: String,
    },
    /// A field is inconsistent (e.g. neither `uriEnv` nor `host`).
    #[error("agent: {field}: {message}")]
    Invalid {
        /// Config field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl AgentConfig {
    /// Parses a configuration document.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let config: AgentConfig =
            serde_json::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.check()?;
        Ok(config)
    }

    /// Reads the configuration from [`AGENT_CONFIG_ENV`].
    pub fn from_env() -> Result<Self, ConfigError> {
        let text = std::env::var(AGENT_CONFIG_ENV).map_err(|_| ConfigError::Missing)?;
        Self::from_json(&text)
    }

    /// The configuration as JSON (what the controller puts into [`AGENT_CONFIG_ENV`]).
    pub fn to_json(&self) -> String {
        // Serializing plain structs of strings and numbers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Checks what serde cannot: connection shape, time zone, secret pairs.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.source.connection.check("source.connection")?;
        if let Some(verification) = &self.verification {
            if let Some(connection) = &verification.scratch_connection {
                connection.check("verification.scratchConnection")?;
            }
            for check in &verification.sql_checks {
                if check.expect.is_some() == check.min_rows.is_some() {
                    return Err(ConfigError::Invalid {
                        field: "verification.sqlChecks",
                        message: format!(
                            "check {:?}: exactly one of expect or minRows must be set",
                            check.name
                        ),
                    });
                }
            }
        }
        if self.time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(ConfigError::Invalid {
                field: "timeZone",
                message: format!("{:?} is not an IANA time zone", self.time_zone),
            });
        }
        if let DestinationConfig::S3 {
            access_key_id_env,
            secret_access_key_env,
            ..
        } = &self.destination
            && access_key_id_env.is_some() != secret_access_key_env.is_some()
        {
            return Err(ConfigError::Invalid {
                field: "destination.accessKeyIdEnv",
                message: "accessKeyIdEnv and secretAccessKeyEnv are set together or not at all"
                    .to_string(),
            });
        }
        Ok(())
    }
}

impl ConnectionConfig {
    fn check(&self, field: &'static str) -> Result<(), ConfigError> {
        let parts = self.host.is_some() || self.database.is_some() || self.user.is_some();
        match (&self.uri_env, parts) {
            (Some(_), true) => Err(ConfigError::Invalid {
                field,
                message: "uriEnv excludes host, database and user".to_string(),
            }),
            (None, _) if self.host.is_none() || self.database.is_none() || self.user.is_none() => {
                Err(ConfigError::Invalid {
                    field,
                    message: "host, database and user are required unless uriEnv is set"
                        .to_string(),
                })
            }
            _ => Ok(()),
        }
    }

    /// The database name, when known without reading the URI.
    pub fn database_name(&self) -> Option<&str> {
        self.database.as_deref()
    }
}

/// Reads the secret value in the environment variable `env`, named by config field `field`.
pub fn secret_from_env(field: &'static str, env: &str) -> Result<String, ConfigError> {
    match std::env::var(env) {
        Ok(value) if !value.is_empty() => Ok(value),
        _ => Err(ConfigError::SecretMissing {
            field,
            env: env.to_string(),
        }),
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
