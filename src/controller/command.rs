//! `watchkeeper controller`: options and start-up (client, logs, endpoints, signals).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::ArgAction;
use clap::builder::BoolishValueParser;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tracing::{error, info};

use super::{ControllerConfig, LeaseSettings, Operator, ReconcileSettings, shutdown};
use crate::api::common::parse_duration;
use crate::telemetry::{self, LogFormat};

/// Options of `watchkeeper controller`.
#[derive(Debug, clap::Args)]
pub struct ControllerArgs {
    /// Kubeconfig file. Without it the usual inference applies: the KUBECONFIG environment
    /// variable, then ~/.kube/config, then the in-cluster service account.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use (default: the current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Watch only this namespace (least-privilege installs); by default all namespaces.
    #[arg(
        long,
        short = 'n',
        env = "WATCHKEEPER_NAMESPACE",
        value_name = "NAMESPACE"
    )]
    pub namespace: Option<String>,
    /// Address of the /metrics, /healthz and /readyz endpoints.
    #[arg(long, default_value = "0.0.0.0:8080", value_name = "ADDR")]
    pub metrics_addr: SocketAddr,
    /// Log format: human-readable text, or JSON lines. Level filter from RUST_LOG.
    #[arg(
        long,
        value_enum,
        default_value = "text",
        env = "WATCHKEEPER_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    /// Leader election through a Lease, so only one replica reconciles (on|off). Turn it off
    /// only for a single replica or local development.
    #[arg(long, default_value = "on", value_name = "on|off", action = ArgAction::Set,
          value_parser = BoolishValueParser::new(), hide_possible_values = true)]
    pub leader_election: bool,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "watchkeeper-controller", value_name = "NAME")]
    pub lease_name: String,
    /// Namespace of the Lease. Default: POD_NAMESPACE (set by the Helm chart), else
    /// --namespace, else the kubeconfig's namespace.
    #[arg(long, env = "POD_NAMESPACE", value_name = "NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// This replica's identity in the Lease and in Events. Default: POD_NAME, else HOSTNAME,
    /// else `watchkeeper-<pid>`.
    #[arg(long, env = "POD_NAME", value_name = "NAME")]
    pub identity: Option<String>,
    /// How long a Lease stays valid without renewal.
    #[arg(long, default_value = "15s", value_parser = duration_arg, value_name = "DURATION")]
    pub lease_duration: Duration,
    /// The leader stops reconciling when it has not renewed the Lease for this long.
    #[arg(long, default_value = "10s", value_parser = duration_arg, value_name = "DURATION")]
    pub renew_deadline: Duration,
    /// Pause between attempts to acquire or renew the Lease.
    #[arg(long, default_value = "2s", value_parser = duration_arg, value_name = "DURATION")]
    pub retry_period: Duration,
    /// Every object is reconciled again after this long even without changes.
    #[arg(long, default_value = "10m", value_parser = duration_arg, value_name = "DURATION")]
    pub resync: Duration,
    /// Image of the containers watchkeeper puts in Jobs (`watchkeeper agent …`, e.g. CronJobSpec
    /// HTTP triggers): the operator's own image. Default: the published image of this version.
    #[arg(long, env = "WATCHKEEPER_AGENT_IMAGE", value_name = "IMAGE")]
    pub agent_image: Option<String>,
}

fn duration_arg(text: &str) -> Result<Duration, String> {
    parse_duration(text).map_err(|e| e.to_string())
}

/// Errors of start-up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kubeconfig could not be read.
    #[error("reading kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// No usable configuration was found.
    #[error("no Kubernetes configuration (KUBECONFIG, ~/.kube/config or in-cluster): {0}")]
    Infer(#[from] kube::config::InferConfigError),
    /// The kubeconfig does not yield a usable client configuration.
    #[error("kubeconfig: {0}")]
    Config(#[from] kube::config::KubeconfigError),
    /// The client could not be built.
    #[error("building the Kubernetes client: {0}")]
    Client(#[from] kube::Error),
    /// The async runtime could not start.
    #[error("starting the async runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// The controller stopped with an error.
    #[error(transparent)]
    Controller(#[from] super::Error),
}

/// Runs `watchkeeper controller` to completion (SIGTERM / SIGINT).
pub fn run(args: ControllerArgs) -> ExitCode {
    telemetry::init(args.log_format);
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::from)
        .and_then(|runtime| runtime.block_on(run_async(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            error!(error = %err, "controller failed");
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run_async(args: ControllerArgs) -> Result<(), Error> {
    let config = load_config(&args).await?;
    let default_namespace = config.default_namespace.clone();
    let client = Client::try_from(config)?;
    let identity = args.identity.clone().unwrap_or_else(default_identity);
    let leader_election = args.leader_election.then(|| {
        let namespace = args
            .lease_namespace
            .clone()
            .or_else(|| args.namespace.clone())
            .unwrap_or(default_namespace);
        LeaseSettings {
            lease_duration: args.lease_duration,
            renew_deadline: args.renew_deadline,
            retry_period: args.retry_period,
            ..LeaseSettings::new(&args.lease_name, namespace, &identity)
        }
    });
    let mut operator = Operator::new(
        client,
        ControllerConfig {
            namespace: args.namespace.clone(),
            identity: identity.clone(),
            leader_election,
            settings: ReconcileSettings {
                resync: args.resync,
                ..ReconcileSettings::default()
            },
        },
    );
    if let Some(image) = &args.agent_image {
        operator = operator.with_agent_image(image.clone());
    }
    let stop = shutdown::on_signals();
    let (_, server) = operator.serve(args.metrics_addr, stop.clone()).await?;
    info!(%identity, version = env!("CARGO_PKG_VERSION"), "watchkeeper controller starting");
    operator.run(stop.clone()).await?;
    stop.cancel();
    let _ = server.await;
    info!("stopped");
    Ok(())
}

async fn load_config(args: &ControllerArgs) -> Result<Config, Error> {
    let options = KubeConfigOptions {
        context: args.context.clone(),
        ..KubeConfigOptions::default()
    };
    match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path).map_err(|source| Error::Kubeconfig {
                path: path.clone(),
                source,
            })?;
            Ok(Config::from_custom_kubeconfig(kubeconfig, &options).await?)
        }
        None if args.context.is_some() => Ok(Config::from_kubeconfig(&options).await?),
        None => Ok(Config::infer().await?),
    }
}

fn default_identity() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("watchkeeper-{}", std::process::id()))
}
