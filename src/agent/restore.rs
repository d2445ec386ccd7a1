//! `watchkeeper agent restore`: for people. Restores a named or the newest complete backup
//! into a target database on the source server (see [`crate::backup::restore`]), creating it
//! when missing and refusing a non-empty one without `--force`. Exit status as for
//! `agent backup` (0, 1, 2, 3).

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::Utc;

use super::backup::{EXIT_FAILED, EXIT_INVALID_CONFIG, emit, init_logging, load_config, runtime};
use crate::backup::report::{AgentReport, Outcome, RestoreReport};

/// Arguments of `watchkeeper agent restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// Backup id to restore; the newest complete backup when unset.
    #[arg(long, value_name = "ID")]
    pub backup: Option<String>,
    /// Database to restore into, on the server of `source.connection`. Created when missing.
    #[arg(long, value_name = "NAME")]
    pub target_database: String,
    /// Restore into a database that already holds tables: objects in the dump are dropped and
    /// re-created (`pg_restore --clean --if-exists`); other objects stay.
    #[arg(long)]
    pub force: bool,
    /// File the report JSON is written to.
    #[arg(long, value_name = "FILE", default_value = "/dev/termination-log")]
    pub termination_log: PathBuf,
}

/// `watchkeeper agent restore`.
pub fn run(args: RestoreArgs) -> ExitCode {
    init_logging();
    let failed = |message: String| {
        let now = Utc::now();
        RestoreReport {
            outcome: Outcome::Failed,
            backup_id: None,
            target_database: args.target_database.clone(),
            started_at: now,
            finished_at: now,
            restore_seconds: None,
            message,
        }
    };
    let (report, code) = match load_config() {
        Err(message) => (failed(message), EXIT_INVALID_CONFIG),
        Ok(config) => match runtime() {
            Err(message) => (failed(message), EXIT_FAILED),
            Ok(rt) => {
                let report = rt.block_on(crate::backup::restore::run_restore(
                    &config,
                    args.backup.as_deref(),
                    &args.target_database,
                    args.force,
                ));
                let code = if report.outcome == Outcome::Succeeded {
                    0
                } else {
                    EXIT_FAILED
                };
                (report, code)
            }
        },
    };
    if report.outcome == Outcome::Failed {
        eprintln!("error: {}", report.message);
    }
    emit(&args.termination_log, &AgentReport::Restore(report));
    ExitCode::from(code)
}
