//! Agent commands: small programs the operator runs inside its own image as the containers of
//! the Jobs it owns (for example the HTTP trigger of a CronJobSpec), so a scheduled HTTP call
//! needs no extra image such as curl.

use std::process::ExitCode;

use clap::Subcommand;

pub mod trigger;

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
}

/// Runs an agent subcommand and returns its exit status.
pub fn run(command: AgentCommand) -> ExitCode {
    match command {
        AgentCommand::Trigger(args) => trigger::run(args),
    }
}
