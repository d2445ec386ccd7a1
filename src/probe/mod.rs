//! Probe engine: runs one HTTP(S) or TCP probe and judges it, with no Kubernetes types.
//!
//! The controller (or `watchkeeper run`) converts a HealthMonitor into a [`ProbeSpec`] (secrets
//! already resolved, JSONPaths and regular expressions already compiled) and calls
//! [`Prober::probe`], which never fails: every problem, from a refused connection to a body that
//! is not JSON, becomes a clear string in the [`ProbeOutcome`].

pub mod checks;
pub mod components;
mod error;
pub mod health;
mod http;
pub mod json_path;
pub mod scheduler;
mod spec;
pub mod stats;
mod tcp;
pub mod tls;

#[cfg(test)]
mod tests;

pub use checks::{JsonAssertion, JsonOperator, status_code_matches};
pub use components::ComponentSpec;
pub use error::ProbeError;
pub use http::Prober;
pub use spec::*;
