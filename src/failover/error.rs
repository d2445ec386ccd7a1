//! Errors of the failover engine.

/// What can go wrong in the engine itself (step failures are [`super::StepFailure`]s, kept in
/// the record, not errors).
#[derive(Debug, thiserror::Error)]
pub enum FailoverError {
    /// A spec field the engine cannot use (validation should have caught it).
    #[error("{path}: {message}")]
    Spec {
        /// Field path, e.g. `spec.steps[2].timeout`.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A Secret a step needs is missing.
    #[error("{path}: Secret {secret} has no key {key} (or does not exist)")]
    MissingSecret {
        /// Field path of the reference.
        path: String,
        /// Secret name.
        secret: String,
        /// Key.
        key: String,
    },
    /// An outcome that does not belong to the try in flight.
    #[error("outcome of step {index} try {try_number} not applied: {message}")]
    StaleOutcome {
        /// Step index reported.
        index: usize,
        /// Try reported.
        try_number: u32,
        /// Why it does not fit.
        message: String,
    },
    /// The record could not be loaded or saved.
    #[error("failover record store: {0}")]
    Store(String),
    /// The executor for a step is missing (a step the process cannot run).
    #[error("step {step}: {message}")]
    Executor {
        /// Step name.
        step: String,
        /// What is missing.
        message: String,
    },
}
