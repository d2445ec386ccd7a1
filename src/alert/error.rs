//! Errors of the alerting engine: configuration mistakes and failed sends.

/// A configuration the engine cannot route with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertConfigError {
    /// Two channels share a name, so routes and state would be ambiguous.
    #[error("alerting.channels: duplicate channel name {0:?}")]
    DuplicateChannel(String),
    /// A route names a channel that does not exist.
    #[error("alerting.routes[{route}].channels: no channel named {channel:?}")]
    UnknownChannel {
        /// Index of the route.
        route: usize,
        /// The missing name.
        channel: String,
    },
}

/// Why one notification could not be delivered. The engine keeps it unsent and retries it in
/// the next round. Messages never contain credentials (webhook URLs, keys, passwords).
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The request could not be made or answered (connection refused, timeout, TLS…).
    #[error("channel {channel:?} ({sink}): request failed: {message}")]
    Transport {
        /// Channel name.
        channel: String,
        /// Sink kind.
        sink: &'static str,
        /// What went wrong, without the URL (it can be a credential).
        message: String,
    },
    /// The receiver answered with a status that does not mean "accepted".
    #[error("channel {channel:?} ({sink}): receiver answered HTTP {status}: {body}")]
    Status {
        /// Channel name.
        channel: String,
        /// Sink kind.
        sink: &'static str,
        /// HTTP status code.
        status: u16,
        /// Start of the response body, for the operator to read.
        body: String,
    },
    /// The channel's configuration cannot produce a request (bad address, bad header…).
    #[error("channel {channel:?} ({sink}): {message}")]
    Config {
        /// Channel name.
        channel: String,
        /// Sink kind.
        sink: &'static str,
        /// What is wrong with the configuration.
        message: String,
    },
    /// The SMTP server refused or the connection failed.
    #[error("channel {channel:?} (email): SMTP: {message}")]
    Smtp {
        /// Channel name.
        channel: String,
        /// The SMTP error.
        message: String,
    },
    /// A route pointed at a channel that is not configured (configuration changed mid-round).
    #[error("channel {0:?} is not configured")]
    UnknownChannel(String),
}
