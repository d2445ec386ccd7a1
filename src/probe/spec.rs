//! What a probe is asked to do ([`ProbeSpec`]) and what it found ([`ProbeOutcome`]).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::checks::JsonAssertion;
use super::components::ComponentSpec;

/// Default cap on how much of a response body is read: health endpoints answer in kilobytes,
/// and a runaway endpoint must not take the operator's memory with it.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Default number of redirects followed, as browsers and curl `-L` do.
pub const DEFAULT_REDIRECT_LIMIT: u32 = 10;

/// One probe: where, how long it may take, what makes it up, and what to read from the body.
#[derive(Clone, Debug)]
pub struct ProbeSpec {
    /// What is probed.
    pub target: Target,
    /// The whole probe (connect, TLS, request, body) must finish within this time.
    pub timeout: Duration,
    /// Checks that must all pass for the probe to be up.
    pub checks: Checks,
    /// Components read from the JSON body, each with its own up/down (HTTP only).
    pub components: Vec<ComponentSpec>,
}

/// What is probed.
#[derive(Clone, Debug)]
pub enum Target {
    /// An HTTP(S) request.
    Http(HttpTarget),
    /// A TCP connect: up when a connection opens within the timeout.
    Tcp {
        /// DNS name or IP address (IPv6 with or without brackets).
        host: String,
        /// Port number.
        port: u16,
    },
}

/// An HTTP(S) request, with every secret already resolved by the caller.
#[derive(Clone, Debug)]
pub struct HttpTarget {
    /// Absolute `http://` or `https://` URL.
    pub url: String,
    /// Method name (`GET`, `POST`, …).
    pub method: String,
    /// Header names and values. Values may be credentials: they are marked sensitive and never
    /// logged or put in outcomes.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Option<String>,
    /// TLS settings (https only).
    pub tls: TlsConfig,
    /// Redirect handling.
    pub redirects: RedirectConfig,
    /// Most body bytes read; past this the read stops. An error only when the body is needed
    /// (JSON checks or components), otherwise the rest is simply not read.
    pub max_body_bytes: usize,
}

impl HttpTarget {
    /// A GET of `url` with default TLS, redirect and body-size settings.
    pub fn get(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            method: "GET".to_string(),
            headers: Vec::new(),
            body: None,
            tls: TlsConfig::default(),
            redirects: RedirectConfig::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// TLS settings. Certificates are verified against the system roots plus `ca_bundle_pem`,
/// unless `insecure_skip_verify` is set. Probes with equal settings share one HTTP client and
/// so its connection pool.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TlsConfig {
    /// Extra CA certificates to trust (PEM, one or more).
    pub ca_bundle_pem: Option<String>,
    /// Client certificate chain (PEM) for mutual TLS; needs `client_key_pem`.
    pub client_cert_pem: Option<String>,
    /// Client private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub client_key_pem: Option<String>,
    /// Accept any server certificate. For test environments only; off by default.
    pub insecure_skip_verify: bool,
    /// Name the server certificate is verified against, when it differs from the URL host
    /// (the SNI sent is still the URL host).
    pub server_name: Option<String>,
}

/// Whether and how far redirects are followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RedirectConfig {
    /// Do not follow: the 3xx response itself is checked.
    None,
    /// Follow up to this many redirects; one more fails the probe.
    Follow(u32),
}

impl Default for RedirectConfig {
    fn default() -> Self {
        Self::Follow(DEFAULT_REDIRECT_LIMIT)
    }
}

/// Checks that make one probe up; every one set must pass.
#[derive(Clone, Debug)]
pub struct Checks {
    /// Accepted status codes: `200`, `2xx`, `200-299`. Empty accepts any. Ignored for TCP.
    pub status_codes: Vec<String>,
    /// A probe slower than this is down.
    pub max_latency: Option<Duration>,
    /// Assertions on the JSON body; a body that is not JSON fails them.
    pub json: Vec<JsonAssertion>,
    /// Fail when the server certificate expires within this time (https only).
    pub min_certificate_validity: Option<Duration>,
}

impl Default for Checks {
    fn default() -> Self {
        Self {
            status_codes: vec!["2xx".to_string()],
            max_latency: None,
            json: Vec::new(),
            min_certificate_validity: None,
        }
    }
}

/// The result of one probe. `up` is true when there was no error and no check failed.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeOutcome {
    /// When the probe started.
    pub at: DateTime<Utc>,
    /// Whether the probe passed.
    pub up: bool,
    /// HTTP status of the final response, if one arrived.
    pub status_code: Option<u16>,
    /// Time from start until the body was read (HTTP) or the connection opened (TCP); until
    /// the failure when there was an error.
    pub latency: Duration,
    /// Why no answer could be judged: connection refused, timeout, TLS failure, body too large…
    pub error: Option<String>,
    /// Checks that failed, each described with what was expected and what was found.
    pub failed_checks: Vec<String>,
    /// One entry per component of the spec, in spec order.
    pub components: Vec<ComponentOutcome>,
    /// Expiry of the server certificate (https only).
    pub cert_not_after: Option<DateTime<Utc>>,
}

/// A component's state in one probe.
#[derive(Clone, Debug, PartialEq)]
pub struct ComponentOutcome {
    /// Component name from the spec.
    pub name: String,
    /// Whether its state value is one of the healthy values (or, with only a value path, the
    /// number could be read).
    pub up: bool,
    /// Whether the component has a state path. When false it only carries a value, and `up`
    /// only says whether that value could be read.
    pub has_state: bool,
    /// The number read at the value path, if any.
    pub value: Option<f64>,
    /// The state value as text (strings unquoted), truncated, for status and alerts.
    pub raw: Option<String>,
}

impl From<&ProbeOutcome> for super::stats::Sample {
    /// The statistics engine's view of a probe; value-only components carry no up/down.
    fn from(outcome: &ProbeOutcome) -> Self {
        Self {
            at: outcome.at,
            up: outcome.up,
            latency: outcome.latency,
            components: outcome
                .components
                .iter()
                .map(|c| super::stats::ComponentSample {
                    name: c.name.clone(),
                    up: c.has_state.then_some(c.up),
                    value: c.value,
                })
                .collect(),
        }
    }
}
