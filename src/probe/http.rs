//! The [`Prober`]: runs probes with shared HTTP clients (one per TLS and redirect
//! configuration, so connections are reused across probes of the same endpoint).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Method, Url};
use serde_json::Value;

use super::checks::status_code_matches;
use super::error::ProbeError;
use super::spec::{
    Checks, ComponentOutcome, HttpTarget, ProbeOutcome, ProbeSpec, RedirectConfig, Target,
    TlsConfig,
};
use super::tcp::{self, describe_io_error, format_duration};
use super::tls;

/// Runs probes. Cheap to share (`Arc<Prober>`); keeps one HTTP client per distinct TLS and
/// redirect configuration so keep-alive connections are reused between probes.
#[derive(Default)]
pub struct Prober {
    /// Clients by redirect policy, then TLS settings (looked up by reference: no copy of CA
    /// bundles per probe).
    clients: Mutex<HashMap<RedirectConfig, HashMap<TlsConfig, Client>>>,
    /// Name resolution for HTTP targets; `None` is the system resolver. Replaceable so that
    /// tests can exercise resolution failures without asking a real DNS server.
    resolver: Option<Arc<dyn reqwest::dns::Resolve>>,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober")
            .field("clients", &self.client_count())
            .finish()
    }
}

/// What one HTTP exchange produced before the checks are applied.
struct Exchange {
    status: u16,
    body: Vec<u8>,
    cert_not_after: Option<chrono::DateTime<Utc>>,
}

impl Prober {
    /// A prober with no clients yet; they are built on first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// A prober that resolves HTTP target host names with `resolver` instead of the system's.
    pub fn with_resolver(resolver: Arc<dyn reqwest::dns::Resolve>) -> Self {
        Self {
            resolver: Some(resolver),
            ..Self::default()
        }
    }

    /// How many HTTP clients (connection pools) exist: one per distinct redirect policy and,
    /// for https, TLS settings.
    pub fn client_count(&self) -> usize {
        self.clients
            .lock()
            .map(|c| c.values().map(HashMap::len).sum())
            .unwrap_or(0)
    }

    /// Runs one probe and judges it. Never fails and never panics on bad input: problems are
    /// reported in [`ProbeOutcome::error`] and [`ProbeOutcome::failed_checks`].
    pub async fn probe(&self, spec: &ProbeSpec) -> ProbeOutcome {
        let at = Utc::now();
        let mut outcome = ProbeOutcome {
            at,
            up: false,
            status_code: None,
            latency: Duration::ZERO,
            error: None,
            failed_checks: Vec::new(),
            components: Vec::new(),
            cert_not_after: None,
        };
        match &spec.target {
            Target::Tcp { host, port } => {
                let (latency, result) = tcp::connect(host, *port, spec.timeout).await;
                outcome.latency = latency;
                match result {
                    Ok(()) => check_latency(&spec.checks, latency, &mut outcome.failed_checks),
                    Err(error) => outcome.error = Some(error),
                }
            }
            Target::Http(target) => self.probe_http(spec, target, &mut outcome).await,
        }
        outcome.up = outcome.error.is_none() && outcome.failed_checks.is_empty();
        outcome
    }

    async fn probe_http(&self, spec: &ProbeSpec, target: &HttpTarget, outcome: &mut ProbeOutcome) {
        let needs_body = !spec.checks.json.is_empty() || !spec.components.is_empty();
        let unreadable = |spec: &ProbeSpec| -> Vec<ComponentOutcome> {
            spec.components.iter().map(|c| c.unreadable()).collect()
        };
        // Building (or looking up) the client is not the endpoint's latency: the first probe
        // of a configuration loads the system's root certificates, which can take longer than
        // a latency threshold. The clock starts once the request is ready to send.
        let prepared = self.prepare(target);
        let started = Instant::now();
        let exchange = match prepared {
            Ok((client, request)) => {
                // A timeout too large to add to now (Duration::MAX) means "no deadline".
                let now = tokio::time::Instant::now();
                let deadline = now
                    .checked_add(spec.timeout)
                    .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365 * 30));
                let run = exchange(client, request, target, spec.timeout, needs_body);
                match tokio::time::timeout_at(deadline, run).await {
                    Ok(result) => result,
                    Err(_) => Err(format!(
                        "timed out after {} ({})",
                        format_duration(spec.timeout),
                        where_to(&target.url)
                    )),
                }
            }
            Err(error) => Err(error.to_string()),
        };
        outcome.latency = started.elapsed();
        let exchange = match exchange {
            Ok(exchange) => exchange,
            Err(error) => {
                outcome.error = Some(error);
                outcome.components = unreadable(spec);
                return;
            }
        };
        outcome.status_code = Some(exchange.status);
        outcome.cert_not_after = exchange.cert_not_after;
        let failed = &mut outcome.failed_checks;
        let codes = &spec.checks.status_codes;
        if !codes.is_empty()
            && !codes
                .iter()
                .any(|c| status_code_matches(c, exchange.status))
        {
            failed.push(format!(
                "status {} is not one of {}",
                exchange.status,
                codes.join(", ")
            ));
        }
        check_latency(&spec.checks, outcome.latency, failed);
        if let Some(horizon) = spec.checks.min_certificate_validity {
            match exchange.cert_not_after {
                Some(not_after) => {
                    let left = not_after - Utc::now();
                    let horizon_chrono =
                        chrono::Duration::from_std(horizon).unwrap_or(chrono::Duration::MAX);
                    if left < horizon_chrono {
                        failed.push(format!(
                            "certificate expires at {} ({} left), within the {} horizon",
                            not_after.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                            format_duration(left.to_std().unwrap_or(Duration::ZERO)),
                            format_duration(horizon)
                        ));
                    }
                }
                None => failed.push(
                    "certificate expiry: no server certificate was read (not https?)".to_string(),
                ),
            }
        }
        if !needs_body {
            return;
        }
        match serde_json::from_slice::<Value>(&exchange.body) {
            Ok(document) => {
                for assertion in &spec.checks.json {
                    if let Err(message) = assertion.check(&document) {
                        failed.push(message);
                    }
                }
                outcome.components = spec
                    .components
                    .iter()
                    .map(|c| c.evaluate(&document))
                    .collect();
            }
            Err(error) => {
                if !spec.checks.json.is_empty() {
                    failed.push(format!(
                        "body is not JSON ({error}); {} JSON check(s) not evaluated",
                        spec.checks.json.len()
                    ));
                }
                outcome.components = unreadable(spec);
            }
        }
    }

    /// The shared client for `target` and the request to send.
    fn prepare(&self, target: &HttpTarget) -> Result<(Client, reqwest::Request), ProbeError> {
        let url = Url::parse(&target.url)
            .map_err(|e| ProbeError::Request(format!("invalid URL {:?}: {e}", target.url)))?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            other => {
                return Err(ProbeError::Request(format!(
                    "URL scheme {other:?} is not http or https"
                )));
            }
        };
        // Plain-http probes share one client per redirect policy whatever their TLS settings.
        let plain = TlsConfig::default();
        let tls = if https { &target.tls } else { &plain };
        let client = self.client(tls, target.redirects)?;
        let method = Method::from_bytes(target.method.trim().to_ascii_uppercase().as_bytes())
            .map_err(|_| ProbeError::Request(format!("invalid method {:?}", target.method)))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &target.headers {
            let header = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| ProbeError::Request(format!("invalid header name {name:?}")))?;
            // The value may be a credential: it is never put in a message.
            let mut value = HeaderValue::from_str(value).map_err(|_| {
                ProbeError::Request(format!(
                    "header {name:?} has a value that is not valid in HTTP (control characters?)"
                ))
            })?;
            value.set_sensitive(true);
            headers.append(header, value);
        }
        let mut builder = client.request(method, url).headers(headers);
        if let Some(body) = &target.body {
            builder = builder.body(body.clone());
        }
        let request = builder
            .build()
            .map_err(|e| ProbeError::Request(e.to_string()))?;
        Ok((client, request))
    }

    fn client(&self, tls: &TlsConfig, redirects: RedirectConfig) -> Result<Client, ProbeError> {
        let mut clients = self
            .clients
            .lock()
            .map_err(|_| ProbeError::Client("client cache poisoned".to_string()))?;
        let by_tls = clients.entry(redirects).or_default();
        if let Some(client) = by_tls.get(tls) {
            return Ok(client.clone());
        }
        let config = tls::client_config(tls)?;
        let policy = match redirects {
            RedirectConfig::None => reqwest::redirect::Policy::none(),
            RedirectConfig::Follow(limit) => {
                reqwest::redirect::Policy::limited(usize::try_from(limit).unwrap_or(usize::MAX))
            }
        };
        let mut builder = Client::builder();
        if let Some(resolver) = &self.resolver {
            builder = builder.dns_resolver(Arc::new(SharedResolver(Arc::clone(resolver))));
        }
        let client = builder
            .use_preconfigured_tls(config)
            .tls_info(true)
            .redirect(policy)
            .no_proxy()
            .user_agent(concat!("watchkeeper-probe/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| ProbeError::Client(e.to_string()))?;
        by_tls.insert(tls.clone(), client.clone());
        Ok(client)
    }
}

/// Hands a shared resolver to reqwest, whose builder wants a sized resolver type.
struct SharedResolver(Arc<dyn reqwest::dns::Resolve>);

impl reqwest::dns::Resolve for SharedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        self.0.resolve(name)
    }
}

/// Sends the request and reads the body up to the cap.
async fn exchange(
    client: Client,
    request: reqwest::Request,
    target: &HttpTarget,
    timeout: Duration,
    needs_body: bool,
) -> Result<Exchange, String> {
    let mut request = request;
    *request.timeout_mut() = Some(timeout);
    let mut response = client
        .execute(request)
        .await
        .map_err(|e| describe_error(&e, target, timeout))?;
    let status = response.status().as_u16();
    let cert_not_after = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .and_then(tls::certificate_not_after);
    let cap = target.max_body_bytes;
    let too_large = |size: String| {
        format!(
            "response body is larger than the {cap}-byte limit ({size}); raise the body limit or probe a smaller endpoint"
        )
    };
    if needs_body
        && let Some(length) = response.content_length()
        && length > cap as u64
    {
        return Err(too_large(format!("Content-Length {length}")));
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > cap {
                    if needs_body {
                        return Err(too_large("read stopped at the limit".to_string()));
                    }
                    // Only the status matters: stop reading, the connection is dropped.
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Err(describe_error(&e, target, timeout)),
        }
    }
    Ok(Exchange {
        status,
        body,
        cert_not_after,
    })
}

fn check_latency(checks: &Checks, latency: Duration, failed: &mut Vec<String>) {
    if let Some(max) = checks.max_latency
        && latency > max
    {
        failed.push(format!(
            "latency {} ms is above the maximum of {} ms",
            latency.as_millis(),
            max.as_millis()
        ));
    }
}

/// `host:port` of a URL, for messages (never the path or query, which may carry tokens).
fn where_to(url: &str) -> String {
    match Url::parse(url) {
        Ok(url) => format!(
            "{}:{}",
            url.host_str().unwrap_or("?"),
            url.port_or_known_default().unwrap_or(0)
        ),
        Err(_) => "invalid URL".to_string(),
    }
}

/// A reqwest error in words: timeout, refused, TLS failure, too many redirects, DNS.
fn describe_error(error: &reqwest::Error, target: &HttpTarget, timeout: Duration) -> String {
    let address = error
        .url()
        .map(|u| where_to(u.as_str()))
        .unwrap_or_else(|| where_to(&target.url));
    if error.is_timeout() {
        return format!("timed out after {} ({address})", format_duration(timeout));
    }
    if error.is_redirect() {
        return match target.redirects {
            RedirectConfig::Follow(limit) => {
                format!("too many redirects: more than {limit} (last at {address})")
            }
            RedirectConfig::None => format!("redirect error at {address}"),
        };
    }
    if let Some(tls_error) = find_in_chain::<rustls::Error>(error) {
        return format!("TLS handshake with {address} failed: {tls_error}");
    }
    if let Some(io) = find_in_chain::<std::io::Error>(error)
        && io.kind() != std::io::ErrorKind::Other
    {
        return describe_io_error(&address, io);
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let mut deepest = error.to_string();
    while let Some(current) = source {
        let text = current.to_string();
        if text.contains("dns error") || text.contains("failed to lookup address") {
            return format!("could not resolve {address}: {text}");
        }
        deepest = text;
        source = current.source();
    }
    if error.is_connect() {
        format!("could not connect to {address}: {deepest}")
    } else {
        format!("request to {address} failed: {deepest}")
    }
}

/// The first error of type `E` in `error`'s source chain, looking inside `io::Error`s too
/// (their `source()` skips the error they wrap).
fn find_in_chain<'a, E: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<E>() {
            return Some(found);
        }
        if let Some(inner) = error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            && let Some(found) = find_in_chain::<E>(inner)
        {
            return Some(found);
        }
        current = error.source();
    }
    None
}
