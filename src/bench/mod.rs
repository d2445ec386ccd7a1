//! `watchkeeper bench`: measurements of the engines on this machine.
//!
//! - `bench probes`: thousands of monitors scheduled with the real [`crate::probe::Prober`]
//!   against local health endpoints; reports throughput, start lateness, memory and CPU
//!   (`docs/benchmarks.md` records a run).
//! - `bench serve` (hidden): the local health endpoints, run as a separate process so their
//!   CPU is not counted as the prober's.

pub mod probes;
pub mod procfs;
pub mod serve;

use std::process::ExitCode;

/// Arguments of `watchkeeper bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Which benchmark.
    #[command(subcommand)]
    pub command: BenchCommand,
}

/// The benchmarks.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Schedule N HTTP monitors against local health endpoints and measure the prober.
    ///
    /// Starts the endpoints in a child process (`watchkeeper bench serve`), schedules the
    /// monitors with the real probe engine and scheduler for the given duration, then prints
    /// achieved probes/s, start lateness p50/p99/max, failures, resident memory and CPU
    /// seconds (ours, and the endpoints' separately).
    Probes(probes::ProbesArgs),
    /// Serve local health endpoints (`/api/health`) for benchmarks; prints the addresses.
    #[command(hide = true)]
    Serve(serve::ServeArgs),
}

/// Errors of the benchmarks.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The async runtime could not start.
    #[error("starting the async runtime: {0}")]
    Runtime(std::io::Error),
    /// A health endpoint could not listen.
    #[error("bench serve: binding 127.0.0.1:{port}: {source}")]
    Bind {
        /// The port asked for (0: any).
        port: u16,
        /// Why.
        source: std::io::Error,
    },
    /// The endpoint process could not be started or did not report its addresses.
    #[error("bench probes: starting the endpoint process: {0}")]
    Servers(String),
    /// A setting of `bench probes` is unusable.
    #[error("bench probes: {0}")]
    Setup(String),
    /// /proc could not be read.
    #[error("reading {path}: {message}")]
    Proc {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

/// Runs `watchkeeper bench …`; errors are printed and give exit status 1.
pub fn run(args: BenchArgs) -> ExitCode {
    let result = match args.command {
        BenchCommand::Probes(args) => probes::run(args),
        BenchCommand::Serve(args) => serve::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
