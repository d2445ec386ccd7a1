//! From a BackupPolicy spec to the agent's [`AgentConfig`] and the secret environment
//! variables its pod needs. Pure.
//!
//! The config holds no secret values: every secret-bearing field names an environment
//! variable, and [`SecretEnv`] says which Secret key fills it (by `valueFrom.secretKeyRef`)
//! and which spec field asked for it, so a missing Secret is reported at that field.

use crate::api::backup_policy::{BackupDestination, BackupPolicySpec, DumpFormat};
use crate::api::common::{Duration, PostgresConnection, SecretKeyRef};
use crate::backup::config::{
    AgentConfig, ConnectionConfig, DestinationConfig, DumpConfig, DumpFormatConfig,
    EncryptionConfig, RetentionConfig, SqlCheckConfig, VerificationConfig,
};

/// Where a PersistentVolumeClaim destination is mounted in the agent's container.
pub const PVC_MOUNT_PATH: &str = "/backup";

/// One environment variable filled from a Secret key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretEnv {
    /// The variable's name, as the config names it.
    pub env: String,
    /// The spec field holding the reference, e.g. `spec.source.connection.uriSecretRef`.
    pub field: String,
    /// The Secret key.
    pub secret: SecretKeyRef,
}

/// Why a spec cannot become an agent configuration (normally caught by validation first).
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    /// The offending spec field.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// The agent configuration of `spec` (policy `namespace/name`) and its secret variables.
pub fn agent_config(
    policy: &str,
    spec: &BackupPolicySpec,
) -> Result<(AgentConfig, Vec<SecretEnv>), ConfigError> {
    let mut secrets = Vec::new();
    let source_connection = connection(
        &mut secrets,
        "spec.source.connection",
        "WATCHKEEPER_SOURCE",
        &spec.source.connection,
    );
    let destination = destination(&mut secrets, &spec.destination)?;
    let encryption = spec.encryption.as_ref().map(|e| {
        let env = secret_env(
            &mut secrets,
            "spec.encryption.keySecretRef",
            "WATCHKEEPER_ENCRYPTION_PASSPHRASE",
            &e.key_secret_ref,
        );
        EncryptionConfig {
            passphrase_env: env,
        }
    });
    let r = &spec.retention;
    let retention = RetentionConfig {
        keep_last: r.keep_last,
        daily: r.daily,
        weekly: r.weekly,
        monthly: r.monthly,
        yearly: r.yearly,
        min_age_seconds: seconds("spec.retention.minAge", r.min_age.as_ref())?.unwrap_or(0),
    };
    let rto_seconds = seconds(
        "spec.objectives.rto",
        spec.objectives.as_ref().and_then(|o| o.rto.as_ref()),
    )?;
    let verification = match &spec.verification {
        None => None,
        Some(v) => Some(VerificationConfig {
            scratch_connection: v.scratch_database.connection.as_ref().map(|c| {
                connection(
                    &mut secrets,
                    "spec.verification.scratchDatabase.connection",
                    "WATCHKEEPER_SCRATCH",
                    c,
                )
            }),
            scratch_prefix: v.scratch_database.name_prefix.clone(),
            keep_on_failure: v.scratch_database.keep_on_failure,
            sql_checks: v
                .sql_checks
                .iter()
                .map(|c| SqlCheckConfig {
                    name: c.name.clone(),
                    query: c.query.clone(),
                    expect: c.expect.clone(),
                    min_rows: c.min_rows,
                })
                .collect(),
            rto_seconds,
            timeout_seconds: seconds("spec.verification.timeout", v.timeout.as_ref())?,
        }),
    };
    let p = &spec.source.pg_dump;
    let config = AgentConfig {
        policy: policy.to_string(),
        source: crate::backup::config::SourceConfig {
            connection: source_connection,
            dump: DumpConfig {
                format: match p.format {
                    DumpFormat::Custom => DumpFormatConfig::Custom,
                    DumpFormat::Plain => DumpFormatConfig::Plain,
                },
                schemas: p.schemas.clone(),
                exclude_schemas: p.exclude_schemas.clone(),
                tables: p.tables.clone(),
                exclude_tables: p.exclude_tables.clone(),
                exclude_table_data: p.exclude_table_data.clone(),
                compression_level: p.compression_level,
                jobs: p.jobs,
                no_owner: p.no_owner,
            },
        },
        destination,
        encryption,
        retention: Some(retention),
        verification,
        time_zone: spec.time_zone.clone(),
        pg_bin_dir: None,
    };
    Ok((config, secrets))
}

fn secret_env(
    secrets: &mut Vec<SecretEnv>,
    field: &str,
    env: &str,
    secret: &SecretKeyRef,
) -> String {
    secrets.push(SecretEnv {
        env: env.to_string(),
        field: field.to_string(),
        secret: secret.clone(),
    });
    env.to_string()
}

fn connection(
    secrets: &mut Vec<SecretEnv>,
    path: &str,
    prefix: &str,
    c: &PostgresConnection,
) -> ConnectionConfig {
    let mut env = |suffix: &str, name: &str, secret: &Option<SecretKeyRef>| {
        secret.as_ref().map(|s| {
            secret_env(
                secrets,
                &format!("{path}.{name}"),
                &format!("{prefix}_{suffix}"),
                s,
            )
        })
    };
    ConnectionConfig {
        uri_env: env("URI", "uriSecretRef", &c.uri_secret_ref),
        password_env: env("PASSWORD", "passwordSecretRef", &c.password_secret_ref),
        ca_cert_env: env("CA_CERT", "caCertSecretRef", &c.ca_cert_secret_ref),
        host: c.host.clone(),
        port: c.port,
        database: c.database.clone(),
        user: c.user.clone(),
        sslmode: c.ssl_mode.map(|m| m.as_libpq().to_string()),
    }
}

fn destination(
    secrets: &mut Vec<SecretEnv>,
    d: &BackupDestination,
) -> Result<DestinationConfig, ConfigError> {
    let mut env = |field: &str, name: &str, secret: &Option<SecretKeyRef>| {
        secret
            .as_ref()
            .map(|s| secret_env(secrets, &format!("spec.destination.{field}"), name, s))
    };
    let prefix = |p: &Option<String>| p.clone().unwrap_or_default();
    match (&d.s3, &d.gcs, &d.azure_blob, &d.pvc) {
        (Some(s3), None, None, None) => Ok(DestinationConfig::S3 {
            bucket: s3.bucket.clone(),
            prefix: prefix(&s3.prefix),
            endpoint: s3.endpoint.clone(),
            region: s3.region.clone(),
            force_path_style: s3.force_path_style,
            access_key_id_env: env(
                "s3.accessKeyIdSecretRef",
                "WATCHKEEPER_S3_ACCESS_KEY_ID",
                &s3.access_key_id_secret_ref,
            ),
            secret_access_key_env: env(
                "s3.secretAccessKeySecretRef",
                "WATCHKEEPER_S3_SECRET_ACCESS_KEY",
                &s3.secret_access_key_secret_ref,
            ),
        }),
        (None, Some(gcs), None, None) => Ok(DestinationConfig::Gcs {
            bucket: gcs.bucket.clone(),
            prefix: prefix(&gcs.prefix),
            service_account_key_env: env(
                "gcs.serviceAccountKeySecretRef",
                "WATCHKEEPER_GCS_SERVICE_ACCOUNT_KEY",
                &gcs.service_account_key_secret_ref,
            ),
        }),
        (None, None, Some(azure), None) => Ok(DestinationConfig::AzureBlob {
            account: azure.account.clone(),
            container: azure.container.clone(),
            prefix: prefix(&azure.prefix),
            account_key_env: env(
                "azureBlob.accountKeySecretRef",
                "WATCHKEEPER_AZURE_ACCOUNT_KEY",
                &azure.account_key_secret_ref,
            ),
            endpoint: azure.endpoint.clone(),
        }),
        (None, None, None, Some(pvc)) => Ok(DestinationConfig::Filesystem {
            path: PVC_MOUNT_PATH.to_string(),
            prefix: prefix(&pvc.path),
        }),
        _ => Err(ConfigError {
            field: "spec.destination".to_string(),
            message: "exactly one of s3, gcs, azureBlob or pvc must be set".to_string(),
        }),
    }
}

/// Whole seconds of an optional duration field, rounded up.
fn seconds(field: &str, duration: Option<&Duration>) -> Result<Option<u64>, ConfigError> {
    let Some(duration) = duration else {
        return Ok(None);
    };
    let parsed = duration.parse().map_err(|e| ConfigError {
        field: field.to_string(),
        message: e.to_string(),
    })?;
    Ok(Some(
        parsed.as_secs() + u64::from(parsed.subsec_nanos() > 0),
    ))
}
