//! Agent commands: small programs the operator runs inside its own image as the containers of
//! the Jobs it owns (for example the HTTP trigger of a CronJobSpec), so a scheduled HTTP call
//! needs no extra image such as curl.

use std::process::ExitCode;

use clap::Subcommand;

pub mod backup;
pub mod restore;
pub mod trigger;
pub mod verify;

pub use trigger::{
    BEARER_TOKEN_ENV, Outcome, TriggerArgs, TriggerConfig, TriggerError, TriggerResult,
};

/// `watchkeeper agent ...` subcommands.
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Make one HTTP call (with retries) and report the result: one run of a CronJobSpec's
    /// `httpTrigger`.
    ///
    /// The bearer token is read only from the `WATCHKEEPER_BEARER_TOKEN` environment variable
    /// (mounted from a Secret), never from arguments, and never printed. The result (outcome,
    /// status code, latency, attempts, the first 256 bytes of the body) is printed as JSON and
    /// written to --termination-log so Kubernetes shows it as the container's termination
    /// message. Exit status: 0 success; 1 invalid arguments; 2
    /// unparsable command line (no result written); 3 unexpected HTTP status; 4
    /// timeout; 5 connection error; 6 other request error.
    Trigger(TriggerArgs),
    /// Take one BackupPolicy backup: pg_dump streamed (hashed, optionally encrypted) into the
    /// destination, manifest written last, then retention.
    ///
    /// Configuration comes from WATCHKEEPER_AGENT_CONFIG (JSON, no secret values; secrets in
    /// the env vars it names). The report JSON is the last stdout line and is written to
    /// --termination-log. Exit status: 0 stored; 1 invalid configuration; 2 unparsable command
    /// line; 3 failed (nothing stored that counts); 4 stored but pruning failed.
    Backup(backup::BackupArgs),
    /// Prove a backup restorable: checksum, restore into a scratch database, SQL checks, RTO.
    ///
    /// Configuration and report as for `agent backup`. Exit status: 0 verified; 1 invalid
    /// configuration; 2 unparsable command line; 3 verification failed.
    Verify(verify::VerifyArgs),
    /// Restore a named or the newest backup into a target database; refuses a non-empty target
    /// without --force.
    ///
    /// Configuration and report as for `agent backup`. Exit status: 0 restored; 1 invalid
    /// configuration; 2 unparsable command line; 3 restore failed.
    Restore(restore::RestoreArgs),
}

/// Runs an agent subcommand and returns its exit status.
pub fn run(command: AgentCommand) -> ExitCode {
    match command {
        AgentCommand::Trigger(args) => trigger::run(args),
        AgentCommand::Backup(args) => backup::run(args),
        AgentCommand::Verify(args) => verify::run(args),
        AgentCommand::Restore(args) => restore::run(args),
    }
}
