//! Restoring a backup: the stored object's SHA-256 is checked first (a full read), then the
//! object is streamed again through decryption into `pg_restore` (custom format) or `psql`
//! (plain), hashed once more on the way. `agent restore` restores into a target database and
//! refuses a non-empty one unless forced.

use std::io::{Read, Write};
use std::process::Stdio;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Instant;

use bytes::Bytes;
use chrono::Utc;
use tokio::io::AsyncReadExt;

use super::config::{AgentConfig, DumpConfig, secret_from_env};
use super::crypto::decrypting;
use super::manifest::Manifest;
use super::pg::{Conn, PgError, Tools, quote_ident, stderr_tail};
use super::report::{Outcome, RestoreReport};
use super::store::{Destination, StoreError};

/// Why a restore failed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// Config or secret.
    #[error(transparent)]
    Config(#[from] super::config::ConfigError),
    /// The destination.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A PostgreSQL tool.
    #[error(transparent)]
    Pg(#[from] PgError),
    /// No complete backup (or not the named one) under the prefix.
    #[error("{0}")]
    NotFound(String),
    /// The stored object does not match its manifest.
    #[error(
        "backup {id}: stored object {object} fails its checksum (manifest sha256 {expected}, {expected_size} bytes; stored sha256 {actual}, {actual_size} bytes): not restored"
    )]
    Checksum {
        /// Backup id.
        id: String,
        /// Object name.
        object: String,
        /// From the manifest.
        expected: String,
        /// From the manifest.
        expected_size: u64,
        /// Computed.
        actual: String,
        /// Computed.
        actual_size: u64,
    },
    /// Encrypted but no passphrase configured.
    #[error("backup {0} is encrypted but the agent has no encryption.passphraseEnv configured")]
    NoPassphrase(String),
    /// The target holds data and `--force` was not given.
    #[error(
        "target database {0} is not empty (it has tables, views or sequences outside the system schemas): pass --force to restore over it (objects in the dump are dropped and re-created)"
    )]
    NotEmpty(String),
    /// `pg_restore`/`psql` or the decryption failed.
    #[error("restore of backup {id} into {database} failed: {message}")]
    Restore {
        /// Backup id.
        id: String,
        /// Target database.
        database: String,
        /// Why.
        message: String,
    },
}

/// The named backup, or the newest.
pub fn pick<'a>(manifests: &'a [Manifest], id: Option<&str>) -> Result<&'a Manifest, RestoreError> {
    match id {
        Some(id) => manifests
            .iter()
            .find(|m| m.id == id)
            .ok_or_else(|| RestoreError::NotFound(format!("no complete backup with id {id}"))),
        None => manifests
            .iter()
            .max_by(|a, b| a.completed_at.cmp(&b.completed_at).then(a.id.cmp(&b.id)))
            .ok_or_else(|| RestoreError::NotFound("no complete backup found".to_string())),
    }
}

/// Reads the whole stored object and compares size and SHA-256 with the manifest.
pub async fn check_checksum(
    destination: &Destination,
    manifest: &Manifest,
) -> Result<(), RestoreError> {
    let (size, sha) = destination.stream(&manifest.object, |_| true).await?;
    if size != manifest.size_bytes || sha != manifest.sha256 {
        return Err(RestoreError::Checksum {
            id: manifest.id.clone(),
            object: manifest.object.clone(),
            expected: manifest.sha256.clone(),
            expected_size: manifest.size_bytes,
            actual: sha,
            actual_size: size,
        });
    }
    Ok(())
}

/// A blocking `Read` over chunks sent from the async download.
struct ChannelReader {
    rx: Receiver<Bytes>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.recv() {
                Ok(chunk) => self.current = chunk,
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// Streams `manifest`'s object (checksum NOT re-checked first: call [`check_checksum`]) into
/// database `conn`. `clean` drops objects of the dump before re-creating them.
pub async fn restore_into(
    destination: &Destination,
    manifest: &Manifest,
    conn: &Conn,
    tools: &Tools,
    dump: &DumpConfig,
    passphrase: Option<&str>,
    clean: bool,
) -> Result<(), RestoreError> {
    let failed = |message: String| RestoreError::Restore {
        id: manifest.id.clone(),
        database: conn.database.clone(),
        message,
    };
    if manifest.encryption.is_some() && passphrase.is_none() {
        return Err(RestoreError::NoPassphrase(manifest.id.clone()));
    }
    let plain = manifest.dump_format == "plain";
    let jobs = dump.jobs.unwrap_or(1).max(1);
    // pg_restore reads stdin with one job only; more jobs need a seekable local copy.
    let spool = (!plain && jobs > 1).then(|| {
        std::env::temp_dir().join(format!(
            "watchkeeper-restore-{}-{}.dump",
            std::process::id(),
            Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ))
    });
    let mut cmd = if plain {
        let mut cmd = tools.command("psql", conn);
        cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"]);
        cmd
    } else {
        let mut cmd = tools.command("pg_restore", conn);
        cmd.args(["--exit-on-error", "-d", &conn.database]);
        if dump.no_owner {
            cmd.arg("--no-owner");
        }
        if clean {
            cmd.args(["--clean", "--if-exists"]);
        }
        if let Some(path) = &spool {
            cmd.arg(format!("--jobs={jobs}")).arg(path);
        }
        cmd
    };
    let (tx, rx): (SyncSender<Bytes>, Receiver<Bytes>) = sync_channel(8);
    let passphrase_owned = passphrase.map(str::to_string);
    let mut child = None;
    let mut stderr_task = None;
    let sink: Box<dyn Write + Send> = match &spool {
        Some(path) => {
            use std::os::unix::fs::OpenOptionsExt;
            // The decrypted dump: readable by this user only, removed after the restore.
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| failed(format!("cannot create {}: {e}", path.display())))?;
            Box::new(file)
        }
        None => {
            cmd.stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let mut spawned = cmd.spawn().map_err(|source| PgError::Spawn {
                tool: if plain { "psql" } else { "pg_restore" }.to_string(),
                source,
            })?;
            let stdin = spawned
                .stdin
                .take()
                .ok_or_else(|| failed("no stdin pipe".to_string()))?;
            stderr_task = spawned.stderr.take().map(read_all);
            child = Some(spawned);
            let handle = tokio::runtime::Handle::current();
            Box::new(BlockingAsyncWriter {
                handle,
                inner: stdin,
            })
        }
    };
    let writer = tokio::task::spawn_blocking(move || -> Result<(), String> {
        let reader = ChannelReader {
            rx,
            current: Bytes::new(),
        };
        let mut sink = sink;
        let result = match passphrase_owned {
            Some(p) => {
                let mut plain_reader = decrypting(reader, &p).map_err(|e| e.to_string())?;
                std::io::copy(&mut plain_reader, &mut sink)
            }
            None => {
                let mut reader = reader;
                std::io::copy(&mut reader, &mut sink)
            }
        };
        result.map(|_| ()).map_err(|e| e.to_string())?;
        sink.flush().map_err(|e| e.to_string())
    });
    let downloaded = destination
        .stream(&manifest.object, |chunk| tx.send(chunk).is_ok())
        .await;
    drop(tx);
    let written = writer
        .await
        .map_err(|e| failed(format!("restore thread: {e}")))?;
    let cleanup = |spool: &Option<std::path::PathBuf>| {
        if let Some(path) = spool {
            let _ = std::fs::remove_file(path);
        }
    };
    let (size, sha) = match downloaded {
        Ok(v) => v,
        Err(e) => {
            cleanup(&spool);
            return Err(e.into());
        }
    };
    if let Err(message) = written {
        cleanup(&spool);
        let mut message = message;
        if let Some(mut child) = child {
            // The tool's own error explains a broken pipe better than the pipe does.
            let _ = child.wait().await;
            if let Some(task) = stderr_task {
                let stderr = task.await.unwrap_or_default();
                message = format!("{message}; {}", stderr_tail(&stderr));
            }
        }
        return Err(failed(message));
    }
    if size != manifest.size_bytes || sha != manifest.sha256 {
        cleanup(&spool);
        return Err(failed(
            "the object changed while it was restored (checksum differs)".to_string(),
        ));
    }
    let mut child = match child {
        Some(child) => child,
        None => {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let spawned = cmd.spawn().map_err(|source| PgError::Spawn {
                tool: "pg_restore".to_string(),
                source,
            });
            match spawned {
                Ok(mut c) => {
                    stderr_task = c.stderr.take().map(read_all);
                    c
                }
                Err(e) => {
                    cleanup(&spool);
                    return Err(e.into());
                }
            }
        }
    };
    let status = child.wait().await;
    let stderr = match stderr_task {
        Some(task) => task.await.unwrap_or_default(),
        None => Vec::new(),
    };
    cleanup(&spool);
    match status {
        Ok(s) if s.success() => Ok(()),
        _ => Err(failed(stderr_tail(&stderr))),
    }
}

/// Reads a child's stderr to the end in the background (so a chatty tool never blocks).
fn read_all(mut stderr: tokio::process::ChildStderr) -> tokio::task::JoinHandle<Vec<u8>> {
    tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf).await;
        buf
    })
}

/// A blocking `Write` over tokio's child stdin (used from the restore thread).
struct BlockingAsyncWriter {
    handle: tokio::runtime::Handle,
    inner: tokio::process::ChildStdin,
}

impl Write for BlockingAsyncWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use tokio::io::AsyncWriteExt;
        self.handle.block_on(self.inner.write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        self.handle.block_on(self.inner.flush())
    }
}

/// Whether `conn`'s database holds user relations (tables, views, sequences, …).
pub async fn is_empty(tools: &Tools, conn: &Conn) -> Result<bool, PgError> {
    let rows = tools
        .query(
            conn,
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'",
            true,
        )
        .await?;
    Ok(rows.first().and_then(|r| r.first()).map(String::as_str) == Some("0"))
}

/// Whether database `name` exists on `admin`'s server.
pub async fn database_exists(tools: &Tools, admin: &Conn, name: &str) -> Result<bool, PgError> {
    let rows = tools
        .query(
            admin,
            &format!(
                "SELECT 1 FROM pg_database WHERE datname = '{}'",
                name.replace('\'', "''")
            ),
            true,
        )
        .await?;
    Ok(!rows.is_empty())
}

/// `agent restore`: restores backup `id` (newest when unset) into database `target` on the
/// source server, creating it when missing and refusing a non-empty one unless `force`.
pub async fn run_restore(
    config: &AgentConfig,
    id: Option<&str>,
    target: &str,
    force: bool,
) -> RestoreReport {
    let started_at = Utc::now();
    let mut report = RestoreReport {
        outcome: Outcome::Failed,
        backup_id: None,
        target_database: target.to_string(),
        started_at,
        finished_at: started_at,
        restore_seconds: None,
        message: String::new(),
    };
    match restore(config, id, target, force, &mut report).await {
        Ok(()) => report.outcome = Outcome::Succeeded,
        Err(e) => report.message = format!("restore failed: {e}"),
    }
    report.finished_at = Utc::now();
    report
}

async fn restore(
    config: &AgentConfig,
    id: Option<&str>,
    target: &str,
    force: bool,
    report: &mut RestoreReport,
) -> Result<(), RestoreError> {
    let tools = Tools::new(config.pg_bin_dir.as_deref());
    let source = Conn::resolve(
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
    let manifests = destination.list_manifests(Some(&config.policy)).await?;
    let manifest = pick(&manifests, id)?;
    report.backup_id = Some(manifest.id.clone());
    check_checksum(&destination, manifest).await?;
    let target_conn = source.with_database(target);
    if database_exists(&tools, &source, target).await? {
        if !is_empty(&tools, &target_conn).await? && !force {
            return Err(RestoreError::NotEmpty(target.to_string()));
        }
    } else {
        tools
            .query(
                &source,
                &format!("CREATE DATABASE {}", quote_ident(target)),
                false,
            )
            .await?;
    }
    let start = Instant::now();
    restore_into(
        &destination,
        manifest,
        &target_conn,
        &tools,
        &config.source.dump,
        passphrase.as_deref(),
        force,
    )
    .await?;
    let seconds = start.elapsed().as_secs_f64();
    report.restore_seconds = Some(seconds);
    report.message = format!(
        "restored backup {} (completed {}) into database {target} in {seconds:.1} s",
        manifest.id,
        manifest.completed_at.to_rfc3339()
    );
    Ok(())
}
