use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    watchkeeper::cli::run(watchkeeper::cli::Cli::parse())
}
