//! The generic HTTP step (a provider's deploy or rollback API, a fencing or DNS webhook):
//! one request, success when the status is one of the expected ones. Every request carries
//! the try's idempotency key as `Idempotency-Key`, so a receiver that honours it (as payment
//! and hosting APIs do) performs a try repeated after a crash once.

use reqwest::{Client, Method, StatusCode};

use crate::api::common::{HttpMethod, status_code_matches};

use super::action::HttpCall;
use super::error::FailoverError;
use super::machine::{StepFailure, StepRun};

/// The header carrying the try's key.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";

/// Most characters of a response body kept in a failure message.
const BODY_CHARS: usize = 200;

/// The HTTP client every step shares: system roots, no redirects (a redirect could carry
/// credential headers elsewhere, and a 3xx is not an API's answer), no proxy from the
/// environment (steps talk to the endpoints they name).
pub fn client() -> Result<Client, FailoverError> {
    let tls =
        crate::probe::tls::client_config(&crate::probe::TlsConfig::default()).map_err(|e| {
            FailoverError::Executor {
                step: String::new(),
                message: format!("cannot build the TLS configuration: {e}"),
            }
        })?;
    Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("watchkeeper/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| FailoverError::Executor {
            step: String::new(),
            message: format!("cannot build the HTTP client: {e}"),
        })
}

/// The reqwest method for an API method.
pub fn method(method: HttpMethod) -> Method {
    match method {
        HttpMethod::Get => Method::GET,
        HttpMethod::Head => Method::HEAD,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Delete => Method::DELETE,
        HttpMethod::Options => Method::OPTIONS,
    }
}

/// Whether a failed request may succeed when tried again.
pub fn retryable_status(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}

/// The error and its causes on one line (reqwest hides the useful part in the source).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Runs one try. A dry run checks the URL and sends nothing (a request to a deploy API is
/// not safe to rehearse).
pub async fn call(client: &Client, call: &HttpCall, run: &StepRun) -> Result<String, StepFailure> {
    let method = method(call.method);
    let url = reqwest::Url::parse(&call.url)
        .map_err(|e| StepFailure::permanent(format!("URL {:?} is not valid: {e}", call.url)))?;
    if run.dry_run {
        return Ok(format!("dry run: would send {method} {url}"));
    }
    let mut request = client
        .request(method.clone(), url.clone())
        .timeout(run.timeout);
    for (name, value, _) in &call.headers {
        request = request.header(name, value);
    }
    if !call
        .headers
        .iter()
        .any(|(name, _, _)| name.eq_ignore_ascii_case(IDEMPOTENCY_KEY_HEADER))
    {
        request = request.header(IDEMPOTENCY_KEY_HEADER, run.key.to_string());
    }
    if let Some(body) = &call.body {
        request = request.body(body.clone());
    }
    let response = request
        .send()
        .await
        .map_err(|e| StepFailure::transient(format!("{method} {url}: {}", error_chain(&e))))?;
    let status = response.status();
    let accepted = if call.expected_status.is_empty() {
        status.is_success()
    } else {
        call.expected_status
            .iter()
            .any(|entry| status_code_matches(entry, status.as_u16()))
    };
    if accepted {
        return Ok(format!("{method} {url}: {status}"));
    }
    let body = response.text().await.unwrap_or_default();
    let snippet: String = body.chars().take(BODY_CHARS).collect();
    let message = format!("{method} {url}: unexpected status {status}: {snippet}");
    Err(if retryable_status(status) {
        StepFailure::transient(message)
    } else {
        StepFailure::permanent(message)
    })
}
