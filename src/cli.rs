//! Command-line interface: argument parsing and dispatch only.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

use crate::crdgen;

/// watchkeeper keeps an operations guide true: health monitors, scheduled jobs, backups,
/// maintenance windows and failover plans, declared as Kubernetes resources.
#[derive(Debug, Parser)]
#[command(name = "watchkeeper", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the CustomResourceDefinitions generated from the API types.
    ///
    /// With no options, prints every CRD as one multi-document YAML stream, ready for
    /// `kubectl apply -f -`. `crds/` in the repository is `--out-dir crds` of this command.
    Crdgen(CrdgenArgs),
    /// Print the version of this binary.
    Version,
}

#[derive(Debug, clap::Args)]
pub struct CrdgenArgs {
    /// Only this kind (HealthMonitor, CronJobSpec, BackupPolicy, MaintenanceWindow, FailoverPlan,
    /// or a short name: hm, cjs, bp, mw, fp).
    #[arg(long)]
    pub kind: Option<String>,
    /// Write one file per CRD into this directory instead of printing.
    #[arg(long, value_name = "DIR", conflicts_with = "check")]
    pub out_dir: Option<PathBuf>,
    /// Exit with status 1 if the files in DIR differ from what would be generated (CI drift check).
    #[arg(long, value_name = "DIR")]
    pub check: Option<PathBuf>,
}

/// Runs the parsed command; errors are printed to stderr and turned into exit status 1.
pub fn run(cli: Cli) -> ExitCode {
    let result: Result<(), Box<dyn std::error::Error>> = match cli.command {
        Command::Crdgen(args) => run_crdgen(args),
        Command::Version => {
            println!("watchkeeper {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run_crdgen(args: CrdgenArgs) -> Result<(), Box<dyn std::error::Error>> {
    let crds = crdgen::select(args.kind.as_deref())?;
    if let Some(dir) = args.out_dir {
        crdgen::write_dir(&dir, &crds)?;
    } else if let Some(dir) = args.check {
        crdgen::check_dir(&dir, &crds)?;
    } else {
        for crd in &crds {
            print!("{}", crdgen::render(crd)?);
        }
    }
    Ok(())
}
