//! Structured logs through `tracing`: human-readable text, or one JSON object per line for log
//! pipelines. The level filter comes from `RUST_LOG` (default `info`, with kube's own chatter at
//! `warn`).
//!
//! Secret values never reach a log line: resources only reference Secrets, and the controller
//! never reads or formats Secret data.

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message` and the event's
    /// fields (`kind`, `namespace`, `name`, …) at the top level.
    Json,
}

/// Default filter when `RUST_LOG` is unset.
pub const DEFAULT_FILTER: &str = "info,kube=warn,kube_runtime=warn,tower=warn,hyper=warn";

/// Installs the global subscriber writing to stderr. Calling it twice is harmless (the second
/// call keeps the first subscriber).
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}
