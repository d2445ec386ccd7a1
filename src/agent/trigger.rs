//! `watchkeeper agent trigger`: one run of a CronJobSpec's HTTP trigger.
//!
//! Sends one HTTP request, retrying with exponential backoff on connection errors, timeouts and
//! unexpected status codes, and reports the result as a short JSON document on stdout and in
//! the container's termination message (so the controller can read it from the Pod status).
//!
//! Exit status (see [`Outcome::exit_code`]):
//! - 0: a response with an expected status arrived;
//! - 1: invalid arguments (bad URL, method, header, status list, unreadable body file);
//! - 2: the command line could not be parsed (clap's usage error; no result is written);
//! - 3: the last attempt got a response with an unexpected status;
//! - 4: the last attempt timed out;
//! - 5: the last attempt could not connect (refused, DNS, TLS handshake);
//! - 6: the last attempt failed otherwise (e.g. the connection broke mid-body).
//!
//! The bearer token comes only from the [`BEARER_TOKEN_ENV`] environment variable; it is never
//! an argument, and it is replaced by `[REDACTED]` wherever it could be echoed (response body,
//! error messages).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use reqwest::{Client, Method, Url};
use serde::Serialize;

use crate::api::common::{STATUS_CODE_PATTERN, parse_duration, status_code_matches};

/// Environment variable holding the bearer token (the controller mounts it from the Secret
/// named by `httpTrigger.bearerTokenSecretRef`).
pub const BEARER_TOKEN_ENV: &str = "WATCHKEEPER_BEARER_TOKEN";

/// How many bytes of the response body the result keeps.
pub const BODY_PREFIX_BYTES: usize = 256;

/// Replaces the bearer token wherever it would be echoed.
const REDACTED: &str = "[REDACTED]";

/// Arguments of `watchkeeper agent trigger`. Every flag can also come from an environment
/// variable, so the controller can build the container from env alone.
#[derive(Debug, clap::Args)]
pub struct TriggerArgs {
    /// Absolute http(s) URL to call.
    #[arg(long, env = "WATCHKEEPER_TRIGGER_URL")]
    pub url: String,
    /// HTTP method (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS).
    #[arg(long, env = "WATCHKEEPER_TRIGGER_METHOD", default_value = "GET")]
    pub method: String,
    /// Extra request header as `Name: value`; repeat for several. Not for credentials: the
    /// bearer token comes from the WATCHKEEPER_BEARER_TOKEN environment variable.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Extra request header whose value is read from an environment variable (for credential
    /// headers mounted from a Secret), as `Name=ENV_VAR`; repeat for several. The value is
    /// redacted like the bearer token.
    #[arg(long = "header-from-env", value_name = "NAME=ENV_VAR")]
    pub headers_from_env: Vec<String>,
    /// Request body.
    #[arg(long, env = "WATCHKEEPER_TRIGGER_BODY", conflicts_with = "body_file")]
    pub body: Option<String>,
    /// Read the request body from this file.
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,
    /// Status codes that mean success: codes (200), classes (2xx) or ranges (200-299),
    /// comma-separated or repeated.
    #[arg(
        long,
        env = "WATCHKEEPER_TRIGGER_EXPECTED_STATUS",
        value_delimiter = ',',
        default_value = "2xx"
    )]
    pub expected_status: Vec<String>,
    /// Longest one attempt may take, from connecting to the end of the body (e.g. 30s).
    #[arg(long, env = "WATCHKEEPER_TRIGGER_TIMEOUT", default_value = "30s", value_parser = parse_flag_duration)]
    pub timeout: Duration,
    /// Further attempts after a failed one.
    #[arg(long, env = "WATCHKEEPER_TRIGGER_RETRIES", default_value_t = 0)]
    pub retries: u32,
    /// Wait before the first retry; doubled for each further retry.
    #[arg(long, env = "WATCHKEEPER_TRIGGER_BACKOFF", default_value = "10s", value_parser = parse_flag_duration)]
    pub backoff: Duration,
    /// Upper bound of the wait between retries.
    #[arg(long, env = "WATCHKEEPER_TRIGGER_MAX_BACKOFF", default_value = "5m", value_parser = parse_flag_duration)]
    pub max_backoff: Duration,
    /// File the result JSON is written to (Kubernetes reads it as the termination message).
    #[arg(long, value_name = "FILE", default_value = "/dev/termination-log")]
    pub termination_log: PathBuf,
}

fn parse_flag_duration(text: &str) -> Result<Duration, String> {
    parse_duration(text).map_err(|e| e.to_string())
}

/// Problems with the trigger's arguments or with reporting its result.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// `--url` is not an absolute http(s) URL.
    #[error("agent trigger: --url {url:?} is not an absolute http(s) URL: {reason}")]
    Url { url: String, reason: String },
    /// `--method` is not a known HTTP method.
    #[error(
        "agent trigger: --method {0:?} is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
    )]
    Method(String),
    /// A `--header` is not `Name: value` or has an invalid name or value.
    #[error("agent trigger: --header {header:?}: {reason}")]
    Header { header: String, reason: String },
    /// An `--expected-status` entry is malformed.
    #[error(
        "agent trigger: --expected-status {0:?} is not a code (200), class (2xx) or range (200-299)"
    )]
    ExpectedStatus(String),
    /// A `--header-from-env` is not `Name=ENV_VAR`, names an unset variable or holds an
    /// invalid value.
    #[error("agent trigger: --header-from-env {header:?}: {reason}")]
    HeaderFromEnv { header: String, reason: String },
    /// The bearer token cannot be sent as a header value.
    #[error("agent trigger: {BEARER_TOKEN_ENV} holds characters not allowed in a header")]
    Token,
    /// `--body-file` cannot be read.
    #[error("agent trigger: --body-file {path}: {source}")]
    BodyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The HTTP client cannot be built (TLS roots).
    #[error("agent trigger: cannot build the HTTP client: {0}")]
    Client(String),
    /// The termination message cannot be written.
    #[error("agent trigger: --termination-log {path}: {source}")]
    TerminationLog {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A validated trigger: what [`trigger`] sends. Its `Debug` output hides the token.
#[derive(Clone)]
pub struct TriggerConfig {
    /// Where the request goes.
    pub url: Url,
    /// The request method.
    pub method: Method,
    /// Extra headers, in order.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Request body, if any.
    pub body: Option<Vec<u8>>,
    /// Accepted status entries (codes, classes, ranges).
    pub expected_status: Vec<String>,
    /// Limit of one attempt.
    pub timeout: Duration,
    /// Further attempts after a failed one.
    pub retries: u32,
    /// Wait before the first retry.
    pub backoff: Duration,
    /// Upper bound of a wait between retries.
    pub max_backoff: Duration,
    /// Headers whose values are secrets (from `--header-from-env`); redacted like the token.
    pub secret_headers: Vec<(HeaderName, HeaderValue)>,
    /// Sent as `Authorization: Bearer <token>`; never printed.
    pub bearer_token: Option<String>,
}

impl std::fmt::Debug for TriggerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TriggerConfig")
            .field("url", &self.url.as_str())
            .field("method", &self.method)
            .field("headers", &self.headers.len())
            .field("secret_headers", &self.secret_headers.len())
            .field("expected_status", &self.expected_status)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| REDACTED),
            )
            .finish()
    }
}

impl TriggerConfig {
    /// Validates the arguments. `env` looks up environment variables: [`BEARER_TOKEN_ENV`]
    /// (unset or empty means no token) and the variables named by `--header-from-env`.
    pub fn from_args(
        args: &TriggerArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, TriggerError> {
        let bearer_token = env(BEARER_TOKEN_ENV);
        let url = Url::parse(&args.url).map_err(|e| TriggerError::Url {
            url: args.url.clone(),
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(TriggerError::Url {
                url: args.url.clone(),
                reason: format!("scheme {:?} is not http or https", url.scheme()),
            });
        }
        let method = parse_method(&args.method)?;
        let headers = args
            .headers
            .iter()
            .map(|h| parse_header(h))
            .collect::<Result<Vec<_>, _>>()?;
        let secret_headers = args
            .headers_from_env
            .iter()
            .map(|h| parse_header_from_env(h, &env))
            .collect::<Result<Vec<_>, _>>()?;
        let pattern = regex::Regex::new(STATUS_CODE_PATTERN)
            .map_err(|e| TriggerError::Client(e.to_string()))?;
        let mut expected_status = Vec::new();
        for entry in &args.expected_status {
            let entry = entry.trim();
            if !pattern.is_match(entry) {
                return Err(TriggerError::ExpectedStatus(entry.to_string()));
            }
            expected_status.push(entry.to_string());
        }
        let body = match (&args.body, &args.body_file) {
            (Some(text), _) => Some(text.clone().into_bytes()),
            (None, Some(path)) => {
                Some(
                    std::fs::read(path).map_err(|source| TriggerError::BodyFile {
                        path: path.clone(),
                        source,
                    })?,
                )
            }
            (None, None) => None,
        };
        let bearer_token = bearer_token.filter(|t| !t.is_empty());
        if let Some(token) = &bearer_token
            && HeaderValue::from_str(&format!("Bearer {token}")).is_err()
        {
            return Err(TriggerError::Token);
        }
        Ok(Self {
            url,
            method,
            headers,
            secret_headers,
            body,
            expected_status,
            timeout: args.timeout,
            retries: args.retries,
            backoff: args.backoff,
            max_backoff: args.max_backoff,
            bearer_token,
        })
    }

    /// Values that must never be shown: the token and the secret header values.
    fn secrets(&self) -> Vec<&str> {
        self.bearer_token
            .as_deref()
            .into_iter()
            .chain(
                self.secret_headers
                    .iter()
                    .filter_map(|(_, value)| value.to_str().ok()),
            )
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// Wait before retry number `retry` (1 for the first retry): `backoff * 2^(retry-1)`,
    /// capped at `max_backoff`.
    pub fn backoff_before(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }
}

fn parse_method(text: &str) -> Result<Method, TriggerError> {
    match text.trim().to_ascii_uppercase().as_str() {
        "GET" => Ok(Method::GET),
        "HEAD" => Ok(Method::HEAD),
        "POST" => Ok(Method::POST),
        "PUT" => Ok(Method::PUT),
        "PATCH" => Ok(Method::PATCH),
        "DELETE" => Ok(Method::DELETE),
        "OPTIONS" => Ok(Method::OPTIONS),
        _ => Err(TriggerError::Method(text.to_string())),
    }
}

fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), TriggerError> {
    let error = |reason: String| TriggerError::Header {
        header: text.to_string(),
        reason,
    };
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| error("expected `Name: value`".to_string()))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|e| error(format!("invalid name: {e}")))?;
    let value =
        HeaderValue::from_str(value.trim()).map_err(|e| error(format!("invalid value: {e}")))?;
    Ok((name, value))
}

fn parse_header_from_env(
    text: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(HeaderName, HeaderValue), TriggerError> {
    let error = |reason: String| TriggerError::HeaderFromEnv {
        header: text.to_string(),
        reason,
    };
    let (name, variable) = text
        .split_once('=')
        .ok_or_else(|| error("expected `Name=ENV_VAR`".to_string()))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|e| error(format!("invalid name: {e}")))?;
    let variable = variable.trim();
    let value = env(variable)
        .ok_or_else(|| error(format!("environment variable {variable} is not set")))?;
    // The value is a secret: say what is wrong without showing it.
    let mut value = HeaderValue::from_str(value.trim()).map_err(|_| {
        error(format!(
            "environment variable {variable} holds characters not allowed in a header"
        ))
    })?;
    value.set_sensitive(true);
    Ok((name, value))
}

/// How the trigger ended (the outcome of the last attempt).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// A response with an expected status arrived.
    Success,
    /// The arguments were invalid; nothing was sent.
    InvalidArguments,
    /// A response arrived with a status that is not expected.
    UnexpectedStatus,
    /// The attempt did not finish within the timeout.
    Timeout,
    /// No connection could be made (refused, DNS, TLS).
    ConnectionError,
    /// The request failed otherwise (e.g. the connection broke while reading the body).
    RequestError,
}

impl Outcome {
    /// The process exit status for this outcome (documented in the module docs).
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::InvalidArguments => 1,
            Outcome::UnexpectedStatus => 3,
            Outcome::Timeout => 4,
            Outcome::ConnectionError => 5,
            Outcome::RequestError => 6,
        }
    }
}

/// The short result printed and written to the termination message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerResult {
    /// How the trigger ended.
    pub outcome: Outcome,
    /// Status code of the last response, if one arrived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// Duration of the last attempt in milliseconds.
    pub latency_ms: u64,
    /// Attempts made (1 + retries used).
    pub attempts: u32,
    /// First 256 bytes of the last response body (lossy UTF-8, token redacted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Why the last attempt failed (token redacted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl TriggerResult {
    /// The result for arguments that could not be used; nothing was sent.
    pub fn invalid(error: &TriggerError, secrets: &[&str]) -> Self {
        Self {
            outcome: Outcome::InvalidArguments,
            status_code: None,
            latency_ms: 0,
            attempts: 0,
            body: None,
            error: Some(redact_str(&error.to_string(), secrets)),
        }
    }

    /// The result as one line of JSON.
    pub fn to_json(&self) -> String {
        // Serializing plain strings and numbers cannot fail; fall back to a fixed document.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"outcome":"requestError","error":"unserializable result"}"#.to_string()
        })
    }
}

/// Builds the HTTP client: system roots for https, none needed for plain http.
fn client(config: &TriggerConfig) -> Result<Client, TriggerError> {
    let builder = Client::builder()
        .redirect(reqwest::redirect::Policy::limited(5))
        .no_proxy()
        .user_agent(concat!("watchkeeper-agent/", env!("CARGO_PKG_VERSION")));
    let builder = if config.url.scheme() == "https" {
        let tls = crate::probe::tls::client_config(&crate::probe::TlsConfig::default())
            .map_err(|e| TriggerError::Client(e.to_string()))?;
        builder.use_preconfigured_tls(tls)
    } else {
        builder
    };
    builder
        .build()
        .map_err(|e| TriggerError::Client(e.to_string()))
}

/// Makes the call with retries and returns the result of the last attempt. Never panics;
/// the token never appears in the result. Each retry is announced on standard error.
pub async fn trigger(config: &TriggerConfig) -> TriggerResult {
    trigger_with(config, |attempt, result, wait| {
        eprintln!(
            "attempt {attempt} failed ({}); retrying in {} ms",
            result
                .error
                .as_deref()
                .or(result.status_code.map(|_| "unexpected status"))
                .unwrap_or("failed"),
            wait.as_millis()
        );
    })
    .await
}

/// [`trigger`] for callers that report retries their own way (`watchkeeper run`, whose terminal
/// is a redrawn table): `on_retry(attempt, failed result, wait before the next attempt)`.
pub async fn trigger_with(
    config: &TriggerConfig,
    on_retry: impl Fn(u32, &TriggerResult, Duration),
) -> TriggerResult {
    let secrets = config.secrets();
    let client = match client(config) {
        Ok(client) => client,
        Err(error) => {
            return TriggerResult {
                outcome: Outcome::RequestError,
                ..TriggerResult::invalid(&error, &secrets)
            };
        }
    };
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut result = attempt(&client, config).await;
        result.attempts = attempts;
        if result.outcome == Outcome::Success || attempts > config.retries {
            return result;
        }
        let wait = config.backoff_before(attempts);
        on_retry(attempts, &result, wait);
        tokio::time::sleep(wait).await;
    }
}

async fn attempt(client: &Client, config: &TriggerConfig) -> TriggerResult {
    let token = config.bearer_token.as_deref();
    let secrets = config.secrets();
    let mut request = client
        .request(config.method.clone(), config.url.clone())
        .timeout(config.timeout);
    for (name, value) in config.headers.iter().chain(&config.secret_headers) {
        request = request.header(name, value);
    }
    if let Some(token) = token
        && let Ok(mut value) = HeaderValue::from_str(&format!("Bearer {token}"))
    {
        value.set_sensitive(true);
        request = request.header(AUTHORIZATION, value);
    }
    if let Some(body) = &config.body {
        request = request.body(body.clone());
    }
    let started = Instant::now();
    let failed = |outcome: Outcome, error: &reqwest::Error, status: Option<u16>| TriggerResult {
        outcome,
        status_code: status,
        latency_ms: millis(started.elapsed()),
        attempts: 0,
        body: None,
        error: Some(redact_str(&describe(error, config.timeout), &secrets)),
    };
    let mut response = match request.send().await {
        Ok(response) => response,
        Err(error) => return failed(classify(&error), &error, None),
    };
    let status = response.status().as_u16();
    // Keep enough bytes that a secret starting inside the kept prefix is seen whole.
    let cap = BODY_PREFIX_BYTES + secrets.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(error) => return failed(classify(&error), &error, Some(status)),
        }
        if body.len() > cap {
            // Drain the rest so the timeout covers the whole response, but keep only the cap.
            body.truncate(cap);
        }
    }
    let latency_ms = millis(started.elapsed());
    let mut body = redact_bytes(&body, &secrets);
    body.truncate(BODY_PREFIX_BYTES);
    let expected = config
        .expected_status
        .iter()
        .any(|entry| status_code_matches(entry, status));
    TriggerResult {
        outcome: if expected {
            Outcome::Success
        } else {
            Outcome::UnexpectedStatus
        },
        status_code: Some(status),
        latency_ms,
        attempts: 0,
        body: Some(String::from_utf8_lossy(&body).into_owned()),
        error: (!expected).then(|| {
            format!(
                "status {status} is not one of the expected {}",
                config.expected_status.join(", ")
            )
        }),
    }
}

fn classify(error: &reqwest::Error) -> Outcome {
    if error.is_timeout() {
        Outcome::Timeout
    } else if error.is_connect() {
        Outcome::ConnectionError
    } else {
        Outcome::RequestError
    }
}

/// The error and its causes in one line (reqwest's top-level message alone says little).
fn describe(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!("no complete response within {} ms", timeout.as_millis());
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Replaces every occurrence of each (non-empty) secret in `bytes`.
fn redact_bytes(bytes: &[u8], secrets: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    'scan: while i < bytes.len() {
        for secret in secrets.iter().map(|s| s.as_bytes()) {
            if !secret.is_empty() && bytes[i..].starts_with(secret) {
                out.extend_from_slice(REDACTED.as_bytes());
                i += secret.len();
                continue 'scan;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn redact_str(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_string(), |text, secret| {
            text.replace(secret, REDACTED)
        })
}

/// Writes the result to the termination-message file.
pub fn write_termination_log(path: &Path, result: &TriggerResult) -> Result<(), TriggerError> {
    std::fs::write(path, result.to_json()).map_err(|source| TriggerError::TerminationLog {
        path: path.to_path_buf(),
        source,
    })
}

/// `watchkeeper agent trigger`: reads the token from the environment, runs the trigger, reports.
pub fn run(args: TriggerArgs) -> ExitCode {
    let token = std::env::var(BEARER_TOKEN_ENV).ok();
    let secrets: Vec<&str> = token.as_deref().into_iter().collect();
    let result = match TriggerConfig::from_args(&args, |name| std::env::var(name).ok()) {
        Ok(config) => match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(trigger(&config)),
            Err(error) => TriggerResult {
                outcome: Outcome::RequestError,
                ..TriggerResult::invalid(&TriggerError::Client(error.to_string()), &secrets)
            },
        },
        Err(error) => TriggerResult::invalid(&error, &secrets),
    };
    report(&args.termination_log, &result);
    ExitCode::from(result.outcome.exit_code())
}

/// Prints the result and writes the termination message (a failure to write it is reported on
/// stderr and does not change the exit status: the run itself is what the status describes).
fn report(termination_log: &Path, result: &TriggerResult) {
    println!("{}", result.to_json());
    if let Err(error) = write_termination_log(termination_log, result) {
        eprintln!("warning: {error}");
    }
}

#[cfg(test)]
mod tests;
