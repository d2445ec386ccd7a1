//! `agent verify`: proves a backup restorable. Picks the newest (or a named) complete backup,
//! checks the stored object's SHA-256 against its manifest first, restores it into a fresh
//! scratch database, runs the policy's SQL checks read-only, compares the restore time with the
//! RTO, and drops the scratch database (kept on failure when asked). Scratch databases left by
//! an interrupted run (same prefix) are dropped first.

use std::time::{Duration, Instant};

use chrono::Utc;

use super::config::{AgentConfig, SqlCheckConfig, secret_from_env};
use super::pg::{Conn, PgError, Tools, quote_ident};
use super::report::{CheckResult, Outcome, VerifyReport};
use super::restore::{RestoreError, check_checksum, pick, restore_into};
use super::store::Destination;

/// Why a verification could not run to the end (failed checks are not errors: they are
/// reported per check).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// No `verification` section.
    #[error("agent verify: the configuration has no verification section")]
    NotConfigured,
    /// Restore, checksum, store or tool problem.
    #[error(transparent)]
    Restore(#[from] RestoreError),
    /// A PostgreSQL tool.
    #[error(transparent)]
    Pg(#[from] PgError),
    /// The whole run took longer than `timeoutSeconds`.
    #[error("verification did not finish within {0} s")]
    Timeout(u64),
}

/// Runs one verification; never panics, always returns a report.
pub async fn run_verify(config: &AgentConfig, id: Option<&str>) -> VerifyReport {
    let started_at = Utc::now();
    let mut report = VerifyReport {
        outcome: Outcome::Failed,
        backup_id: None,
        backup_completed_at: None,
        started_at,
        finished_at: started_at,
        sha256_ok: None,
        restore_seconds: None,
        rto_met: None,
        checks: Vec::new(),
        message: String::new(),
    };
    let timeout = config
        .verification
        .as_ref()
        .and_then(|v| v.timeout_seconds)
        .unwrap_or(u64::from(u32::MAX));
    let run = verify(config, id, &mut report);
    let result = match tokio::time::timeout(Duration::from_secs(timeout), run).await {
        Ok(result) => result,
        Err(_) => Err(VerifyError::Timeout(timeout)),
    };
    match result {
        Ok(()) => {
            let failed: Vec<&str> = report
                .checks
                .iter()
                .filter(|c| !c.ok)
                .map(|c| c.name.as_str())
                .collect();
            let seconds = report.restore_seconds.unwrap_or_default();
            let id = report.backup_id.clone().unwrap_or_default();
            if !failed.is_empty() {
                report.message = format!(
                    "backup {id} restored in {seconds:.1} s but check(s) failed: {}",
                    failed.join(", ")
                );
            } else if report.rto_met == Some(false) {
                report.message = format!(
                    "backup {id} restored and checked, but the restore took {seconds:.1} s, over the RTO"
                );
            } else {
                report.outcome = Outcome::Succeeded;
                report.message = format!(
                    "backup {id} verified: checksum ok, restored in {seconds:.1} s, {} check(s) passed",
                    report.checks.len()
                );
            }
        }
        Err(e) => report.message = format!("verification failed: {e}"),
    }
    report.finished_at = Utc::now();
    report
}

async fn verify(
    config: &AgentConfig,
    id: Option<&str>,
    report: &mut VerifyReport,
) -> Result<(), VerifyError> {
    let verification = config
        .verification
        .as_ref()
        .ok_or(VerifyError::NotConfigured)?;
    let tools = Tools::new(config.pg_bin_dir.as_deref());
    let tmp = std::env::temp_dir();
    let admin = match &verification.scratch_connection {
        Some(c) => Conn::resolve(c, "verification.scratchConnection", &tmp),
        None => Conn::resolve(&config.source.connection, "source.connection", &tmp),
    }
    .map_err(RestoreError::from)?;
    let passphrase = match &config.encryption {
        Some(e) => Some(
            secret_from_env("encryption.passphraseEnv", &e.passphrase_env)
                .map_err(RestoreError::from)?,
        ),
        None => None,
    };
    let destination = Destination::open(&config.destination).map_err(RestoreError::from)?;
    let manifests = destination
        .list_manifests(Some(&config.policy))
        .await
        .map_err(RestoreError::from)?;
    let manifest = pick(&manifests, id)?;
    report.backup_id = Some(manifest.id.clone());
    report.backup_completed_at = Some(manifest.completed_at);
    match check_checksum(&destination, manifest).await {
        Ok(()) => report.sha256_ok = Some(true),
        Err(e) => {
            if matches!(e, RestoreError::Checksum { .. }) {
                report.sha256_ok = Some(false);
            }
            return Err(e.into());
        }
    }

    // Scratch names carry a hash of the policy, so leftovers are dropped per policy: two
    // policies verifying on one server at once never drop each other's scratch database.
    let own_prefix = policy_prefix(&verification.scratch_prefix, &config.policy);
    drop_leftovers(&tools, &admin, &own_prefix).await?;
    let scratch = scratch_name(&own_prefix, &manifest.id);
    tools
        .query(
            &admin,
            &format!("CREATE DATABASE {}", quote_ident(&scratch)),
            false,
        )
        .await?;
    let scratch_conn = admin.with_database(&scratch);
    let start = Instant::now();
    let restored = restore_into(
        &destination,
        manifest,
        &scratch_conn,
        &tools,
        &config.source.dump,
        passphrase.as_deref(),
        false,
    )
    .await;
    let seconds = start.elapsed().as_secs_f64();
    let outcome = match restored {
        Ok(()) => {
            report.restore_seconds = Some(seconds);
            report.rto_met = verification.rto_seconds.map(|rto| seconds <= rto as f64);
            for check in &verification.sql_checks {
                report
                    .checks
                    .push(run_check(&tools, &scratch_conn, check).await);
            }
            Ok(())
        }
        Err(e) => Err(VerifyError::from(e)),
    };
    let passed =
        outcome.is_ok() && report.checks.iter().all(|c| c.ok) && report.rto_met != Some(false);
    if passed || !verification.keep_on_failure {
        drop_database(&tools, &admin, &scratch).await?;
    } else {
        tracing::warn!(database = %scratch, "verification failed; scratch database kept (keepOnFailure)");
    }
    outcome
}

/// `<prefix><8 hex of sha256(policy)>_`: the part of scratch names that is the same for
/// every run of one policy.
fn policy_prefix(prefix: &str, policy: &str) -> String {
    use sha2::{Digest, Sha256};
    let hash = hex::encode(Sha256::digest(policy.as_bytes()));
    format!("{prefix}{}_", &hash[..8])
}

/// `<policy prefix><id digits>_<4 hex>`, at most 63 bytes, lower case (valid unquoted too).
fn scratch_name(prefix: &str, id: &str) -> String {
    let digits: String = id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let salt = Utc::now().timestamp_subsec_nanos() & 0xffff;
    let mut name = format!("{prefix}{digits}");
    name.truncate(63 - 5);
    format!("{name}_{salt:04x}")
}

async fn drop_database(tools: &Tools, admin: &Conn, name: &str) -> Result<(), PgError> {
    tools
        .query(
            admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name)),
            false,
        )
        .await
        .map(|_| ())
}

/// Drops databases named `<prefix>…` left behind by an interrupted run.
async fn drop_leftovers(tools: &Tools, admin: &Conn, prefix: &str) -> Result<(), PgError> {
    let rows = tools
        .query(
            admin,
            &format!(
                "SELECT datname FROM pg_database WHERE left(datname, {}) = '{}'",
                prefix.chars().count(),
                prefix.replace('\'', "''")
            ),
            true,
        )
        .await?;
    for row in rows {
        if let Some(name) = row.first().filter(|n| n.starts_with(prefix)) {
            tracing::info!(database = %name, "dropping a scratch database left by an earlier run");
            drop_database(tools, admin, name).await?;
        }
    }
    Ok(())
}

/// Runs one check read-only.
async fn run_check(tools: &Tools, conn: &Conn, check: &SqlCheckConfig) -> CheckResult {
    let result = match (&check.expect, check.min_rows) {
        (Some(expect), _) => match tools.query(conn, &check.query, true).await {
            Ok(rows) => {
                let got = rows.first().and_then(|r| r.first()).cloned();
                match got {
                    Some(got) if &got == expect => Ok(format!("got {got:?}")),
                    Some(got) => Err(format!("expected {expect:?}, got {got:?}")),
                    None => Err(format!("expected {expect:?}, got no rows")),
                }
            }
            Err(e) => Err(e.to_string()),
        },
        (None, Some(min)) => {
            let sql = format!(
                "SELECT count(*) FROM ({}) AS watchkeeper_check",
                check.query.trim().trim_end_matches(';')
            );
            match tools.query(conn, &sql, true).await {
                Ok(rows) => {
                    let n: u64 = rows
                        .first()
                        .and_then(|r| r.first())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    if n >= min {
                        Ok(format!("{n} row(s), at least {min} required"))
                    } else {
                        Err(format!("{n} row(s), at least {min} required"))
                    }
                }
                Err(e) => Err(e.to_string()),
            }
        }
        (None, None) => Err("neither expect nor minRows is set".to_string()),
    };
    match result {
        Ok(message) => CheckResult {
            name: check.name.clone(),
            ok: true,
            message,
        },
        Err(message) => CheckResult {
            name: check.name.clone(),
            ok: false,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_names_are_short_and_prefixed() {
        let own = policy_prefix("watchkeeper_verify_", "prod/db-daily");
        assert_eq!(own.len(), "watchkeeper_verify_".len() + 9);
        assert_ne!(own, policy_prefix("watchkeeper_verify_", "prod/other"));
        let name = scratch_name(&own, "20260106T030000Z-3f2a");
        assert!(
            name.starts_with(&format!("{own}20260106t030000z3f2a_")),
            "{name}"
        );
        assert!(name.len() <= 63);
        let long = scratch_name(&policy_prefix(&"p".repeat(40), "x"), &"9".repeat(60));
        assert!(long.len() <= 63, "{}", long.len());
    }
}
