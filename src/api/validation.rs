//! Semantic validation shared by `watchkeeper check` and the controller.
//!
//! The CRD schema (OpenAPI constraints and CEL rules) catches what the API server can check on
//! its own. What it cannot express — cron and RRULE syntax, IANA time zones, cross-field rules that
//! need parsing — lives in `validate()` implementations. Both `check` and every reconciler call the
//! same code, so a manifest that passes `check` in a GitOps pipeline is accepted by the operator.

use std::fmt;

/// One problem with one field of a resource, named by its path from the object root
/// (`spec.retention.daily`), in the form users read in `kubectl` errors.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// Dotted path with list indices, e.g. `spec.steps[2].timeout`.
    pub path: String,
    /// What is wrong, phrased so it can follow the path after a colon.
    pub message: String,
}

impl FieldError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Collects every error of a resource instead of stopping at the first, so users fix a manifest
/// in one round trip.
#[derive(Debug, Default)]
pub struct Errors(Vec<FieldError>);

impl Errors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(path, message));
    }

    /// Records the error of a fallible check, if any, at `path`.
    pub fn check<T, E: fmt::Display>(&mut self, path: &str, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.push(path, error.to_string());
                None
            }
        }
    }

    pub fn extend(&mut self, other: impl IntoIterator<Item = FieldError>) {
        self.0.extend(other);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<FieldError> {
        self.0
    }
}

/// Semantic validation of a resource's spec. Implemented by every kind; returns all errors.
pub trait Validate {
    /// Every problem found, each naming its field from the object root (`spec.…`).
    fn validate(&self) -> Vec<FieldError>;
}
