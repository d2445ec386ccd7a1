//! `agent backup`: `pg_dump` streamed into the destination, hashed (and optionally encrypted)
//! on the way, the manifest written last, then retention.
//!
//! Order of a run, each step failing the run with a message naming what went wrong:
//! 1. open the destination and list the prefix (a missing bucket or unwritable directory fails
//!    here, before any dump);
//! 2. compare the server's major version with `pg_dump`'s (an older `pg_dump` refuses newer
//!    servers; we say so first and clearly);
//! 3. stream `pg_dump`'s stdout through SHA-256 (and age) into a multipart upload: memory is
//!    bounded by the part size times the upload concurrency, nothing touches local disk;
//! 4. if `pg_dump` exits non-zero or the upload fails, the upload is aborted and no manifest is
//!    written: nothing of this run counts;
//! 5. write `<id>.manifest.json`: from now on the backup exists;
//! 6. prune (see [`super::prune`]) and take the inventory.

use std::process::Stdio;

use bytes::Bytes;
use chrono::Utc;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::config::{AgentConfig, DumpConfig, DumpFormatConfig, secret_from_env};
use super::crypto::Encrypting;
use super::manifest::{MANIFEST_FORMAT, Manifest, dump_name, new_id};
use super::pg::{Conn, Tools, stderr_tail};
use super::prune::prune;
use super::report::{BackupReport, Outcome};
use super::store::{Destination, StoreError, Upload};

/// Bytes read from `pg_dump` at a time.
const READ_CHUNK: usize = 256 * 1024;

/// Why a backup failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Configuration, a secret, or a tool.
    #[error(transparent)]
    Pg(#[from] super::pg::PgError),
    /// The destination.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Config or secret.
    #[error(transparent)]
    Config(#[from] super::config::ConfigError),
    /// Encryption.
    #[error(transparent)]
    Crypto(#[from] super::crypto::CryptoError),
    /// `pg_dump` is older than the server.
    #[error(
        "PostgreSQL server {server} is newer than pg_dump {pg_dump}: pg_dump must be at least as new as the server (use an agent image with pg_dump {server_major} or newer, e.g. via source.image)"
    )]
    VersionMismatch {
        /// Server version.
        server: String,
        /// Server major.
        server_major: u32,
        /// pg_dump version.
        pg_dump: String,
    },
    /// `pg_dump` failed.
    #[error("pg_dump of database {database} failed: {message}")]
    Dump {
        /// Database.
        database: String,
        /// The end of its stderr.
        message: String,
    },
}

/// `pg_dump` arguments for `dump` (connection parameters come from the environment).
pub fn pg_dump_args(dump: &DumpConfig) -> Vec<String> {
    let mut args = vec![match dump.format {
        DumpFormatConfig::Custom => "--format=custom".to_string(),
        DumpFormatConfig::Plain => "--format=plain".to_string(),
    }];
    let lists = [
        ("--schema", &dump.schemas),
        ("--exclude-schema", &dump.exclude_schemas),
        ("--table", &dump.tables),
        ("--exclude-table", &dump.exclude_tables),
        ("--exclude-table-data", &dump.exclude_table_data),
    ];
    for (flag, values) in lists {
        args.extend(values.iter().map(|v| format!("{flag}={v}")));
    }
    if let Some(level) = dump.compression_level {
        args.push(format!("--compress={level}"));
    }
    if dump.no_owner {
        args.push("--no-owner".to_string());
    }
    args
}

/// Name of the dump format in manifests.
pub fn format_name(format: DumpFormatConfig) -> &'static str {
    match format {
        DumpFormatConfig::Custom => "custom",
        DumpFormatConfig::Plain => "plain",
    }
}

/// Runs one backup and its prune; never panics, always returns a report.
pub async fn run_backup(config: &AgentConfig) -> BackupReport {
    let started_at = Utc::now();
    let id = new_id(started_at);
    let mut report = BackupReport {
        outcome: Outcome::Failed,
        id: None,
        started_at,
        finished_at: started_at,
        size_bytes: None,
        sha256: None,
        encrypted: config.encryption.is_some(),
        message: String::new(),
        pruned: Vec::new(),
        pruned_omitted: 0,
        kept: 0,
        prune_error: None,
        inventory: None,
    };
    match backup(config, &id).await {
        Ok((manifest, destination)) => {
            report.outcome = Outcome::Succeeded;
            report.id = Some(manifest.id.clone());
            report.size_bytes = Some(manifest.size_bytes);
            report.sha256 = Some(manifest.sha256.clone());
            report.message = format!(
                "stored backup {} of database {} ({} bytes{}) in {}",
                manifest.id,
                manifest.database,
                manifest.size_bytes,
                if manifest.encryption.is_some() {
                    ", encrypted"
                } else {
                    ""
                },
                destination.display()
            );
            match prune(&destination, config, Utc::now()).await {
                Ok(result) => {
                    report.pruned = result.pruned;
                    report.kept = result.kept;
                    report.inventory = Some(result.inventory);
                }
                Err(e) => report.prune_error = Some(e.to_string()),
            }
        }
        Err(e) => {
            report.message = format!("backup failed: {e}");
        }
    }
    report.finished_at = Utc::now();
    report
}

async fn backup(config: &AgentConfig, id: &str) -> Result<(Manifest, Destination), BackupError> {
    let tools = Tools::new(config.pg_bin_dir.as_deref());
    let conn = Conn::resolve(
        &config.source.connection,
        "source.connection",
        &std::env::temp_dir(),
    )?;
    let passphrase = match &config.encryption {
        Some(e) => Some(secret_from_env(
            "encryption.passphraseEnv",
            &e.passphrase_env,
        )?),
        None => None,
    };
    let destination = Destination::open(&config.destination)?;
    // Fails early for a missing bucket, bad credentials or an unreadable directory.
    destination.list_names().await?;

    let (dump_major, dump_version) = tools.tool_version("pg_dump").await?;
    let (server_major, server_version) = tools.server_version(&conn).await?;
    if server_major > dump_major {
        return Err(BackupError::VersionMismatch {
            server: server_version,
            server_major,
            pg_dump: dump_version,
        });
    }

    let started_at = Utc::now();
    let object = dump_name(id, passphrase.is_some());
    let mut cmd = tools.command("pg_dump", &conn);
    cmd.args(pg_dump_args(&config.source.dump))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| super::pg::PgError::Spawn {
        tool: tools.path("pg_dump").display().to_string(),
        source,
    })?;
    let stderr = child.stderr.take().map(|mut s| {
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf).await;
            buf
        })
    });
    let Some(stdout) = child.stdout.take() else {
        return Err(BackupError::Dump {
            database: conn.database.clone(),
            message: "no stdout pipe".to_string(),
        });
    };
    let mut upload = destination.start_upload(&object).await?;
    tracing::info!(object = %object, destination = %destination.display(), "streaming pg_dump");
    let streamed = stream_into(stdout, passphrase.as_deref(), &mut upload)
        .await
        .map_err(|e| match e {
            BackupError::Dump { message, .. } => BackupError::Dump {
                database: conn.database.clone(),
                message,
            },
            other => other,
        });
    let status = match &streamed {
        // pg_dump has closed its stdout: wait for its exit status.
        Ok(_) => child.wait().await.ok(),
        Err(_) => {
            let _ = child.kill().await;
            None
        }
    };
    let stderr = match stderr {
        Some(task) => task.await.unwrap_or_default(),
        None => Vec::new(),
    };
    let (size, sha256) = match streamed {
        Ok(done) if status.is_some_and(|s| s.success()) => done,
        Ok(_) => {
            upload.abort().await;
            return Err(BackupError::Dump {
                database: conn.database.clone(),
                message: stderr_tail(&stderr),
            });
        }
        Err(e) => {
            upload.abort().await;
            return Err(e);
        }
    };
    upload.finish().await?;

    let manifest = Manifest {
        format: MANIFEST_FORMAT.to_string(),
        id: id.to_string(),
        policy: config.policy.clone(),
        database: conn.database.clone(),
        server_version,
        pg_dump_version: dump_version,
        dump_format: format_name(config.source.dump.format).to_string(),
        object,
        started_at,
        completed_at: Utc::now(),
        size_bytes: size,
        sha256,
        encryption: passphrase
            .as_deref()
            .map(|p| super::crypto::scheme(p).to_string()),
        compression_level: config.source.dump.compression_level,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    destination
        .put_bytes(&manifest.manifest_name(), Bytes::from(manifest.to_json()))
        .await?;
    Ok((manifest, destination))
}

/// Copies `input` into `upload`, encrypting when a passphrase is given; returns the stored size
/// and hex SHA-256.
async fn stream_into<R: AsyncRead + Unpin>(
    mut input: R,
    passphrase: Option<&str>,
    upload: &mut Upload,
) -> Result<(u64, String), BackupError> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut encrypting = passphrase.map(Encrypting::new).transpose()?;
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = input.read(&mut buf).await.map_err(|e| BackupError::Dump {
            database: String::new(),
            message: format!("reading pg_dump output: {e}"),
        })?;
        let out = match (&mut encrypting, n) {
            (_, 0) => break,
            (Some(enc), _) => {
                enc.write(&buf[..n])?;
                Bytes::from(enc.take())
            }
            (None, _) => Bytes::copy_from_slice(&buf[..n]),
        };
        if !out.is_empty() {
            hasher.update(&out);
            size += out.len() as u64;
            upload.write(out).await?;
        }
    }
    if let Some(enc) = encrypting {
        let out = Bytes::from(enc.finish()?);
        hasher.update(&out);
        size += out.len() as u64;
        upload.write(out).await?;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_arguments_follow_the_options() {
        let dump = DumpConfig {
            schemas: vec!["public".into()],
            exclude_schemas: vec!["audit".into()],
            tables: vec!["public.users".into()],
            exclude_tables: vec!["public.cache_*".into()],
            exclude_table_data: vec!["public.events".into()],
            compression_level: Some(0),
            no_owner: true,
            ..DumpConfig::default()
        };
        assert_eq!(
            pg_dump_args(&dump),
            [
                "--format=custom",
                "--schema=public",
                "--exclude-schema=audit",
                "--table=public.users",
                "--exclude-table=public.cache_*",
                "--exclude-table-data=public.events",
                "--compress=0",
                "--no-owner"
            ]
        );
        let plain = DumpConfig {
            format: DumpFormatConfig::Plain,
            ..DumpConfig::default()
        };
        assert_eq!(pg_dump_args(&plain), ["--format=plain"]);
    }
}
