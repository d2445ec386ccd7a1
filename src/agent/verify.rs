//! `watchkeeper agent verify`: one run of a BackupPolicy's verification Job (see
//! [`crate::backup::verify`]). Exit status as for `agent backup` (0, 1, 2, 3).

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::Utc;

use super::backup::{EXIT_FAILED, EXIT_INVALID_CONFIG, emit, init_logging, load_config, runtime};
use crate::backup::report::{AgentReport, Outcome, VerifyReport};

/// Arguments of `watchkeeper agent verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Verify this backup id instead of the newest complete one.
    #[arg(long, value_name = "ID")]
    pub backup: Option<String>,
    /// File the report JSON is written to (Kubernetes reads it as the termination message).
    #[arg(long, value_name = "FILE", default_value = "/dev/termination-log")]
    pub termination_log: PathBuf,
}

/// `watchkeeper agent verify`.
pub fn run(args: VerifyArgs) -> ExitCode {
    init_logging();
    let failed = |message: String| {
        let now = Utc::now();
        VerifyReport {
            outcome: Outcome::Failed,
            backup_id: None,
            backup_completed_at: None,
            started_at: now,
            finished_at: now,
            sha256_ok: None,
            restore_seconds: None,
            rto_met: None,
            checks: Vec::new(),
            message,
        }
    };
    let (report, code) = match load_config() {
        Err(message) => (failed(message), EXIT_INVALID_CONFIG),
        Ok(config) => match runtime() {
            Err(message) => (failed(message), EXIT_FAILED),
            Ok(rt) => {
                let report = rt.block_on(crate::backup::verify::run_verify(
                    &config,
                    args.backup.as_deref(),
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
    emit(&args.termination_log, &AgentReport::Verify(report));
    ExitCode::from(code)
}
