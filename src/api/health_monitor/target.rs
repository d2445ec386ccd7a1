//! Where a probe goes and how the HTTP request is made.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::common::{ConfigMapKeyRef, HttpHeader, HttpMethod, LocalObjectRef, SecretKeyRef};

/// What is probed. Exactly one of `url`, `service` and `tcp` is set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "[has(self.url), has(self.service), has(self.tcp)].filter(x, x).size() == 1",
    "message": "exactly one of url, service or tcp must be set"
}]))]
pub struct ProbeTarget {
    /// Absolute http(s) URL, e.g. `https://app.example.com/api/health`. For endpoints outside
    /// the cluster or behind an Ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://[^\s/$.?#][^\s]*$"), length(max = 2048))]
    pub url: Option<String>,
    /// A Service in the monitor's namespace, probed over HTTP(S) at its cluster DNS name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceTarget>,
    /// A TCP connect probe: up when a connection to host:port opens within the timeout. For
    /// databases, caches and other non-HTTP dependencies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpTarget>,
}

/// An HTTP(S) endpoint of a Service in the monitor's namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceTarget {
    /// Name of the Service.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Service port number.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Request path, with query if any. Defaults to `/`.
    #[serde(default = "default_path")]
    #[schemars(regex(pattern = r"^/[^\s]*$"), length(max = 2048))]
    pub path: String,
    /// `http` or `https`. Defaults to `http`, what Services usually serve inside the cluster.
    #[serde(default)]
    pub scheme: Scheme,
}

fn default_path() -> String {
    "/".to_string()
}

/// URL scheme of a Service target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Plain HTTP.
    #[default]
    Http,
    /// HTTP over TLS.
    Https,
}

/// A host and port to open a TCP connection to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpTarget {
    /// DNS name or IP address, e.g. `db.example.com` or `postgres.prod.svc`.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[A-Za-z0-9.:\[\]-]+$"))]
    pub host: String,
    /// Port number.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
}

/// How an HTTP probe request is made.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRequest {
    /// HTTP method. Defaults to GET.
    #[serde(default)]
    pub method: HttpMethod,
    /// Request headers; credential headers (`Authorization`, …) only through
    /// `valueFrom.secretKeyRef`, resolved at probe time and never logged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub headers: Vec<HttpHeader>,
    /// Request body, e.g. a JSON document for a POST health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub body: Option<String>,
    /// TLS settings for https targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsOptions>,
    /// Whether and how far redirects are followed. Defaults to following up to 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirects: Option<RedirectPolicy>,
}

/// TLS settings. Certificates are verified against the system roots (plus `caBundle`) unless
/// `insecureSkipVerify` is set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!(has(self.insecureSkipVerify) && self.insecureSkipVerify && has(self.caBundle))",
    "message": "caBundle has no effect with insecureSkipVerify",
    "fieldPath": ".caBundle"
}]))]
pub struct TlsOptions {
    /// Extra PEM CA certificates to trust, e.g. a private CA for in-cluster endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<CaBundleSource>,
    /// Accept any certificate. Off by default and meant for test environments only: it hides
    /// exactly the failures a probe should catch.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Name to send as SNI and verify the certificate against, when it differs from the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub server_name: Option<String>,
    /// A `kubernetes.io/tls` Secret (`tls.crt`, `tls.key`) presented as client certificate,
    /// for endpoints that require mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate_secret_ref: Option<LocalObjectRef>,
}

/// Where a PEM CA bundle is read from: exactly one of a ConfigMap key or a Secret key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.configMapKeyRef) != has(self.secretKeyRef)",
    "message": "exactly one of configMapKeyRef or secretKeyRef must be set"
}]))]
pub struct CaBundleSource {
    /// A ConfigMap key holding the PEM bundle (CA certificates are not secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_key_ref: Option<ConfigMapKeyRef>,
    /// A Secret key holding the PEM bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeyRef>,
}

/// Redirect handling.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedirectPolicy {
    /// Follow 3xx redirects. When false, the redirect response itself is checked (so list 3xx
    /// in `checks.statusCodes`). Defaults to true.
    #[serde(default = "default_true")]
    pub follow: bool,
    /// Most redirects followed before the probe fails. Defaults to 10.
    #[serde(default = "default_redirect_limit")]
    #[schemars(range(min = 1, max = 20))]
    pub limit: u32,
}

fn default_true() -> bool {
    true
}

fn default_redirect_limit() -> u32 {
    10
}
