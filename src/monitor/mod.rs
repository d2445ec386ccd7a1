//! HealthMonitors run in-process: the adapter from the API's types to the engines' configs, and
//! the runtime that probes each monitor on schedule, keeps its statistics, evaluates its health,
//! raises and resolves its alerts, and exposes a status snapshot.
//!
//! Both the Kubernetes controller and the embedded `watchkeeper run` mode use this module; they
//! differ only in where Secrets come from ([`SecretResolver`]), where the alert state is kept
//! between restarts (status or a state file: both read [`MonitorEvent::AlertState`]), and
//! whether in-cluster Service names resolve ([`Environment`]).
//!
//! Alerts a monitor raises (de-duplication keys, stable across restarts):
//! - `down`: `failureThreshold` consecutive probes failed; severity `spec.severities.down`.
//! - `threshold/<name>`: a threshold at its warning or critical level; severity from the
//!   threshold's own `severities`, else `spec.severities.warning` / `.critical`. A change of
//!   level re-notifies with the new severity.

pub mod adapter;
pub mod metrics;
pub mod runtime;
pub mod status;

#[cfg(test)]
mod tests;

pub use adapter::{
    Environment, LevelSeverities, MonitorConfig, MonitorKey, SecretResolver, monitor_config,
};
pub use metrics::MonitorMetrics;
pub use runtime::{MonitorEvent, MonitorRuntime};
pub use status::MonitorStatus;

/// Why a monitor cannot be run. Messages name the field or Secret at fault, never a secret value.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// A spec field that cannot be turned into an engine setting.
    #[error("{field}: {message}")]
    Spec {
        /// Field path, e.g. `spec.windows[1]`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A setting this environment cannot honour (a Service target outside a cluster).
    #[error("{field}: not supported here: {message}")]
    Unsupported {
        /// Field path.
        field: String,
        /// Why, and what to use instead.
        message: String,
    },
    /// A JSONPath, regular expression or TLS setting the probe engine refused.
    #[error("{0}")]
    Probe(#[from] crate::probe::ProbeError),
    /// A Secret (or ConfigMap) value that could not be read.
    #[error("secret {name}/{key}: {message}")]
    Secret {
        /// Secret name.
        name: String,
        /// Key within the Secret.
        key: String,
        /// Why it could not be read (never the value).
        message: String,
    },
    /// Statistics windows the statistics engine refused.
    #[error("spec.windows: {0}")]
    Stats(#[from] crate::probe::stats::StatsError),
    /// A health policy the evaluator refused.
    #[error("spec.thresholds: {0}")]
    Health(#[from] crate::probe::health::HealthError),
    /// Alert routing the alert engine refused.
    #[error("spec.alerting: {0}")]
    Alerting(#[from] crate::alert::AlertConfigError),
    /// The probe scheduler refused the monitor (or could not be created).
    #[error("scheduler: {0}")]
    Scheduler(String),
    /// The alert sinks' HTTP client could not be built.
    #[error("alert sinks: {0}")]
    Sinks(#[from] crate::alert::SinkError),
}
