//! Errors of the MaintenanceWindow controller.

/// Why a MaintenanceWindow step failed. API failures are retried with backoff; a missing
/// target is reported in the `EffectsApplied` condition and retried later.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("{verb} {kind} {namespace}/{name}: {source}")]
    Api {
        /// What was attempted (`get`, `patch`, …).
        verb: &'static str,
        /// Kind of the object.
        kind: &'static str,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The API error.
        #[source]
        source: Box<kube::Error>,
    },
    /// A ConfigMap or workload named in `spec.effects` does not exist.
    #[error("{kind} {namespace}/{name} does not exist")]
    Missing {
        /// Kind of the object.
        kind: &'static str,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// A ConfigMap is immutable, so its key cannot be set.
    #[error("ConfigMap {namespace}/{name} is immutable; key {key} cannot be set")]
    Immutable {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The key.
        key: String,
    },
}

impl Error {
    /// Wraps a kube error; a 404 becomes [`Error::Missing`].
    pub fn api(
        verb: &'static str,
        kind: &'static str,
        namespace: &str,
        name: &str,
        source: kube::Error,
    ) -> Self {
        if matches!(&source, kube::Error::Api(s) if s.code == 404) {
            return Self::Missing {
                kind,
                namespace: namespace.to_string(),
                name: name.to_string(),
            };
        }
        Self::Api {
            verb,
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
            source: Box::new(source),
        }
    }

    /// Short class for the reconcile error metric.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Api { source, .. } => match source.as_ref() {
                kube::Error::Api(s) if s.code == 409 => "conflict",
                kube::Error::Api(_) => "api",
                _ => "transport",
            },
            Self::Missing { .. } => "missing_target",
            Self::Immutable { .. } => "immutable",
        }
    }
}
