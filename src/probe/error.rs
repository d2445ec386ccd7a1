//! Errors in what a probe was asked to do (as opposed to what it found, which goes into
//! [`super::ProbeOutcome`]).

use super::json_path::JsonPathError;

/// A probe specification that cannot be run. Messages name the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// A JSONPath of an assertion or component does not parse.
    #[error("{field}: {source}")]
    JsonPath {
        /// Which field held the path.
        field: String,
        /// Parser error.
        source: JsonPathError,
    },
    /// A `matches` assertion's regular expression does not compile.
    #[error("{field}: invalid regular expression: {source}")]
    Regex {
        /// Which field held the expression.
        field: String,
        /// Compiler error.
        source: regex::Error,
    },
    /// An assertion is missing its value, has one it must not, or `<`/`>` got no number.
    #[error("{field}: {message}")]
    Assertion {
        /// Which assertion.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// TLS settings that cannot be used: unreadable PEM, a key without a certificate, …
    #[error("TLS settings: {0}")]
    Tls(String),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
    /// A method or header that is not valid HTTP.
    #[error("request: {0}")]
    Request(String),
}
