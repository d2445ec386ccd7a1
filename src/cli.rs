//! Command-line interface: argument parsing and dispatch only.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

use crate::{check, crdgen, docs};

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
    /// Validate manifests offline and preview what they mean (for GitOps pipelines).
    ///
    /// Reads files, directories (recursively, `*.yaml` and `*.yml`) and `-` (standard input).
    /// Every watchkeeper document is checked against the CRD schema (types, enums, patterns,
    /// required fields, CEL rules; unknown fields are errors, as with
    /// `kubectl apply --validate=strict`) and against the same semantic rules the controller
    /// runs. Other documents (Deployments, Services, ...) are listed as skipped. Errors are
    /// printed one per line as `FILE:LINE kind/name: spec.path: message` and make the exit
    /// status 1. Valid resources get a preview: next fire times of every schedule in the
    /// resource's time zone, maintenance windows, the failover step plan, and which backups the
    /// retention policy keeps for a sample history.
    Check(CheckArgs),
    /// Run the operator: reconcile every watchkeeper resource in the cluster.
    ///
    /// Runs one controller per kind (HealthMonitor, CronJobSpec, BackupPolicy,
    /// MaintenanceWindow, FailoverPlan) that validates each resource and records the verdict in
    /// its status (`Ready` condition, `observedGeneration`) with a Kubernetes Event on every
    /// transition. With leader election (the default) only the replica holding the Lease acts;
    /// the others stand by. Serves Prometheus metrics on /metrics and probes on /healthz and
    /// /readyz. Stops cleanly on SIGTERM or SIGINT, releasing the Lease.
    Controller(crate::controller::command::ControllerArgs),
    /// Run the HealthMonitors of some manifests in this process, with no cluster.
    ///
    /// Manifests are validated as `check` does and refused on any error. Probes and alerts are
    /// real; a status table is shown in the terminal (one line per event when output is not a
    /// terminal), `GET /status` (JSON) and `GET /metrics` (Prometheus) are served on --listen,
    /// and alert state is kept in --state-dir so a restart does not re-send open alerts.
    /// Secrets come from `WATCHKEEPER_SECRET_<SECRET>_<KEY>` environment variables or
    /// --secrets-dir. `watchkeeper run --demo --duration 60s` shows the whole loop against a
    /// bundled target that degrades on a script.
    Run(crate::run::RunArgs),
    /// Measure the engines on this machine (`bench probes`: 10,000 monitors against local
    /// health endpoints; see docs/benchmarks.md).
    Bench(crate::bench::BenchArgs),
    /// Programs the operator runs inside the Jobs it owns (`agent trigger`: the HTTP call of
    /// a CronJobSpec's `httpTrigger`).
    #[command(subcommand)]
    Agent(crate::agent::AgentCommand),
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
    /// Print the API reference (Markdown: every field with type, default, constraints and
    /// description) instead of the CRDs; `docs/api.md` is this output.
    #[arg(long, conflicts_with_all = ["out_dir", "check", "check_docs"])]
    pub docs: bool,
    /// Exit with status 1 if FILE differs from the `--docs` output (CI drift check).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["out_dir", "check"])]
    pub check_docs: Option<PathBuf>,
}

/// Output formats of `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Error lines, skipped documents, previews and a summary, for people and CI logs.
    Text,
    /// One JSON object: documents (with previews), errors and summary, for machines.
    Json,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Files or directories to check; `-` reads standard input.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    pub output: OutputFormat,
    /// Reference time for previews, RFC 3339 (default: now). Fixing it makes output reproducible.
    #[arg(long, value_name = "RFC3339", value_parser = parse_now)]
    pub now: Option<chrono::DateTime<chrono::Utc>>,
    /// Only validate; print no previews.
    #[arg(long)]
    pub no_preview: bool,
    /// How many fire times and maintenance windows previews show.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub count: usize,
}

fn parse_now(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("{e} (expected RFC 3339, e.g. 2026-01-31T12:00:00Z)"))
}

/// Runs the parsed command; errors are printed to stderr and turned into exit status 1.
pub fn run(cli: Cli) -> ExitCode {
    let result: Result<(), Box<dyn std::error::Error>> = match cli.command {
        Command::Crdgen(args) => run_crdgen(args),
        Command::Check(args) => return run_check(args),
        Command::Controller(args) => return crate::controller::command::run(args),
        Command::Run(args) => return crate::run::run(args),
        Command::Bench(args) => return crate::bench::run(args),
        Command::Agent(command) => return crate::agent::run(command),
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
    if args.docs {
        print!("{}", docs::render(&crds));
    } else if let Some(file) = args.check_docs {
        docs::check_file(&file, &crds)?;
    } else if let Some(dir) = args.out_dir {
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

/// `check`: exit status 1 when any manifest has an error (or cannot be read).
fn run_check(args: CheckArgs) -> ExitCode {
    let options = check::Options {
        now: args.now.unwrap_or_else(chrono::Utc::now),
        previews: !args.no_preview,
        count: args.count,
    };
    let inputs = match check::collect_inputs(&args.paths) {
        Ok(inputs) => inputs,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let report = check::check(&inputs, options);
    match args.output {
        OutputFormat::Text => print!("{}", report.to_text(!args.no_preview)),
        OutputFormat::Json => match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(error) => {
                eprintln!("error: {}", check::CheckError::Json(error));
                return ExitCode::FAILURE;
            }
        },
    }
    if report.has_errors() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
