//! `watchkeeper agent backup`: one run of a BackupPolicy's backup Job (see
//! [`crate::backup::dump`]), plus the reporting shared with `agent verify` and `agent restore`.
//!
//! Every backup agent command reads its configuration from `WATCHKEEPER_AGENT_CONFIG`, prints
//! the [`AgentReport`] JSON as its last stdout line and writes it to `--termination-log`.
//!
//! Exit status: 0 succeeded; 1 the configuration is missing or invalid (a Failed report is
//! still written); 2 unparsable command line (clap; no report); 3 the run failed (backup not
//! stored, verification failed, restore failed); 4 (backup only) the backup was stored but
//! pruning failed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::Utc;

use crate::backup::config::AgentConfig;
use crate::backup::report::{AgentReport, BackupReport, Outcome};

/// Exit status: the configuration is missing or invalid.
pub const EXIT_INVALID_CONFIG: u8 = 1;
/// Exit status: the run failed.
pub const EXIT_FAILED: u8 = 3;
/// Exit status: the backup is stored but pruning failed.
pub const EXIT_PRUNE_FAILED: u8 = 4;

/// Arguments of `watchkeeper agent backup`.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// File the report JSON is written to (Kubernetes reads it as the termination message).
    #[arg(long, value_name = "FILE", default_value = "/dev/termination-log")]
    pub termination_log: PathBuf,
}

/// Prints the report as the last stdout line and writes the termination message (a failure to
/// write it is a warning on stderr: the run itself is what the report describes).
pub(crate) fn emit(termination_log: &Path, report: &AgentReport) {
    let json = report.to_termination_json();
    println!("{json}");
    if let Err(error) = std::fs::write(termination_log, &json) {
        eprintln!(
            "warning: cannot write --termination-log {}: {error}",
            termination_log.display()
        );
    }
}

/// Logs to stderr (stdout is kept for the report).
pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WATCHKEEPER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Reads the configuration; on error returns the message for a Failed report.
pub(crate) fn load_config() -> Result<AgentConfig, String> {
    AgentConfig::from_env().map_err(|e| e.to_string())
}

/// A runtime for one agent run.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// `watchkeeper agent backup`.
pub fn run(args: BackupArgs) -> ExitCode {
    init_logging();
    let failed = |message: String| {
        let now = Utc::now();
        BackupReport {
            outcome: Outcome::Failed,
            id: None,
            started_at: now,
            finished_at: now,
            size_bytes: None,
            sha256: None,
            encrypted: false,
            message,
            pruned: Vec::new(),
            pruned_omitted: 0,
            kept: 0,
            prune_error: None,
            inventory: None,
        }
    };
    let (report, code) = match load_config() {
        Err(message) => (failed(message), EXIT_INVALID_CONFIG),
        Ok(config) => match runtime() {
            Err(message) => (failed(message), EXIT_FAILED),
            Ok(rt) => {
                let report = rt.block_on(crate::backup::dump::run_backup(&config));
                let code = match (report.outcome, &report.prune_error) {
                    (Outcome::Failed, _) => EXIT_FAILED,
                    (Outcome::Succeeded, Some(_)) => EXIT_PRUNE_FAILED,
                    (Outcome::Succeeded, None) => 0,
                };
                (report, code)
            }
        },
    };
    if report.outcome == Outcome::Failed {
        eprintln!("error: {}", report.message);
    }
    emit(&args.termination_log, &AgentReport::Backup(report));
    ExitCode::from(code)
}
