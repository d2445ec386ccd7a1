//! Sinks: the wire formats of the five channel kinds and the shared HTTP plumbing.
//!
//! Each sink module has a pure `payload` function (unit-testable, documented in
//! `docs/alerting.md`) and an async `send` that delivers it. Credentials (webhook URLs, routing
//! keys, tokens, passwords) never appear in errors or logs.

pub mod alertmanager;
pub mod email;
pub mod pagerduty;
pub mod slack;
pub mod webhook;

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use super::{Channel, Notification, SinkConfig, SinkError};

/// Time allowed for one delivery (connect, send, answer).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// How much of an error response body is kept in the error message.
const ERROR_BODY_CHARS: usize = 300;

/// Delivers notifications to channels. Holds one HTTP client (connection reuse across
/// channels and rounds); e-mail opens one SMTP connection per message. Build it once per
/// process and clone it into each engine (clones share the client).
#[derive(Clone, Debug)]
pub struct Sinks {
    http: reqwest::Client,
}

impl Sinks {
    /// Builds the HTTP client, trusting the system's root certificates.
    pub fn new() -> Result<Self, SinkError> {
        let mut builder = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            // Receivers answer; they do not redirect. Following a redirect could carry
            // credential headers (webhook extras) to another host, so a 3xx is a failure.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("watchkeeper/", env!("CARGO_PKG_VERSION")));
        // Certificates the system cannot parse are skipped; a system with no roots can still
        // reach plain-HTTP receivers (in-cluster Alertmanager, test receivers).
        for cert in rustls_native_certs::load_native_certs().certs {
            if let Ok(cert) = reqwest::Certificate::from_der(cert.as_ref()) {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| SinkError::Config {
            channel: String::new(),
            sink: "http",
            message: format!("cannot build the HTTP client: {}", error_chain(&e)),
        })?;
        Ok(Self { http })
    }

    /// Sends one notification to its channel; `Ok` only when the receiver accepted it.
    pub async fn send(&self, channel: &Channel, n: &Notification) -> Result<(), SinkError> {
        match &channel.sink {
            SinkConfig::Alertmanager(c) => {
                alertmanager::send(&self.http, &channel.name, c, n).await
            }
            SinkConfig::Slack(c) => slack::send(&self.http, &channel.name, c, n).await,
            SinkConfig::PagerDuty(c) => pagerduty::send(&self.http, &channel.name, c, n).await,
            SinkConfig::Webhook(c) => webhook::send(&self.http, &channel.name, c, n).await,
            SinkConfig::Email(c) => email::send(&channel.name, c, n).await,
        }
    }
}

/// One JSON POST: what a sink wants sent and which answer counts as accepted.
pub(crate) struct JsonPost<'a> {
    pub channel: &'a str,
    pub sink: &'static str,
    pub url: String,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
    pub bearer: Option<&'a str>,
}

/// POSTs a JSON body; any 2xx answer is an acceptance.
pub(crate) async fn post_json(http: &reqwest::Client, post: JsonPost<'_>) -> Result<(), SinkError> {
    let config_error = |message: String| SinkError::Config {
        channel: post.channel.to_string(),
        sink: post.sink,
        message,
    };
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in &post.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| config_error(format!("invalid header name {name:?}")))?;
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| config_error(format!("invalid value for header {name}")))?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    let mut request = http.post(&post.url).headers(headers).body(post.body);
    if let Some(token) = post.bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| SinkError::Transport {
        channel: post.channel.to_string(),
        sink: post.sink,
        message: error_chain(&e.without_url()),
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    Err(SinkError::Status {
        channel: post.channel.to_string(),
        sink: post.sink,
        status: status.as_u16(),
        body: body.chars().take(ERROR_BODY_CHARS).collect(),
    })
}

/// An error and its sources on one line (reqwest's top-level message alone says little).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// RFC 3339 with second precision and `Z`, the form all receivers accept.
pub(crate) fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Cuts a string to at most `max` characters, marking the cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}
