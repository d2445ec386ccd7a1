//! Step actions with their Secrets resolved, and the executor traits.
//!
//! Steps the engine runs itself (HTTP calls and webhooks, Cloudflare DNS, SQL) are resolved
//! into [`StepAction::Http`], [`StepAction::Cloudflare`] and [`StepAction::Sql`]; steps that
//! need a cluster (fence by scaling or ConfigMap flag, restore Job, scale, patch, rollback,
//! DNSEndpoint, verify, notify) stay as the API step and go to a
//! [`ClusterExecutor`] the controller (or the embedded mode) implements.

use std::fmt;
use std::future::Future;

use crate::api::common::{HttpHeader, HttpMethod, SecretKeyRef};
use crate::api::failover_plan::{DnsRecordType, FailoverPlanSpec, HttpAction, SqlAction, Step};

use super::error::FailoverError;
use super::machine::{StepFailure, StepRun};
use super::record::AttemptKind;
use super::sql::{SqlCall, SqlTarget};

/// Cloudflare's API base when a record sets no `apiUrl`.
pub const CLOUDFLARE_API: &str = "https://api.cloudflare.com/client/v4";

/// Reads Secret values for resolution. The controller reads Secrets of the plan's namespace;
/// the embedded mode its own files. Values are never logged.
pub trait SecretSource {
    /// The value of one key, `None` when the Secret or the key is missing.
    fn secret(&self, reference: &SecretKeyRef) -> Option<String>;
}

impl<F: Fn(&SecretKeyRef) -> Option<String>> SecretSource for F {
    fn secret(&self, reference: &SecretKeyRef) -> Option<String> {
        self(reference)
    }
}

/// An HTTP request with header values resolved.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpCall {
    /// Absolute URL.
    pub url: String,
    /// Method.
    pub method: HttpMethod,
    /// Headers; the flag marks values read from Secrets (redacted in `Debug`).
    pub headers: Vec<(String, String, bool)>,
    /// Body.
    pub body: Option<String>,
    /// Accepted statuses (codes, classes, ranges); any 2xx when empty.
    pub expected_status: Vec<String>,
}

impl fmt::Debug for HttpCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v, secret)| (n.as_str(), if *secret { "<redacted>" } else { v.as_str() }))
            .collect();
        f.debug_struct("HttpCall")
            .field("url", &self.url)
            .field("method", &self.method)
            .field("headers", &headers)
            .field("expected_status", &self.expected_status)
            .finish_non_exhaustive()
    }
}

/// A Cloudflare DNS record switch with its API token resolved.
#[derive(Clone, PartialEq, Eq)]
pub struct CloudflareSwitch {
    /// API base, e.g. `https://api.cloudflare.com/client/v4`.
    pub api_url: String,
    /// Zone id.
    pub zone_id: String,
    /// Full record name.
    pub record_name: String,
    /// Record type.
    pub record_type: DnsRecordType,
    /// The content the record must have.
    pub content: String,
    /// TTL (1 = automatic).
    pub ttl: u32,
    /// Proxied through Cloudflare.
    pub proxied: bool,
    /// API token (bearer); redacted in `Debug`.
    pub token: String,
}

impl fmt::Debug for CloudflareSwitch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudflareSwitch")
            .field("api_url", &self.api_url)
            .field("zone_id", &self.zone_id)
            .field("record_name", &self.record_name)
            .field("record_type", &self.record_type)
            .field("content", &self.content)
            .field("ttl", &self.ttl)
            .field("proxied", &self.proxied)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// What one step does, ready to run.
#[derive(Clone, Debug, PartialEq)]
pub enum StepAction {
    /// An HTTP call (a provider API, a fencing or DNS webhook).
    Http(HttpCall),
    /// A Cloudflare DNS switch.
    Cloudflare(CloudflareSwitch),
    /// SQL against a PostgreSQL server.
    Sql(SqlCall),
    /// A step the [`ClusterExecutor`] runs.
    Cluster(Box<Step>),
}

/// The actions of both procedures, index for index with the plan's steps.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResolvedPlan {
    /// Failover (and drill) steps.
    pub steps: Vec<StepAction>,
    /// Failback steps.
    pub failback_steps: Vec<StepAction>,
}

impl ResolvedPlan {
    /// Resolves every step, reporting every missing Secret (not only the first), so a plan
    /// with bad references is refused before anything runs.
    pub fn resolve(
        spec: &FailoverPlanSpec,
        secrets: &dyn SecretSource,
    ) -> Result<Self, Vec<FailoverError>> {
        let mut errors = Vec::new();
        let steps = resolve_steps("spec.steps", &spec.steps, secrets, &mut errors);
        let failback_steps = match &spec.failback {
            Some(failback) => {
                resolve_steps("spec.failback.steps", &failback.steps, secrets, &mut errors)
            }
            None => Vec::new(),
        };
        if errors.is_empty() {
            Ok(Self {
                steps,
                failback_steps,
            })
        } else {
            Err(errors)
        }
    }

    /// The action of a step of an attempt.
    pub fn action(&self, kind: AttemptKind, index: usize) -> Option<&StepAction> {
        match kind {
            AttemptKind::Failover | AttemptKind::Drill => self.steps.get(index),
            AttemptKind::Failback => self.failback_steps.get(index),
        }
    }
}

fn resolve_steps(
    path: &str,
    steps: &[Step],
    secrets: &dyn SecretSource,
    errors: &mut Vec<FailoverError>,
) -> Vec<StepAction> {
    steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let here = format!("{path}[{i}]");
            let webhook = step
                .fence
                .as_ref()
                .and_then(|f| f.webhook.as_ref().map(|w| (w, "fence.webhook")))
                .or_else(|| {
                    step.dns_switch
                        .as_ref()
                        .and_then(|d| d.webhook.as_ref().map(|w| (w, "dnsSwitch.webhook")))
                })
                .or_else(|| step.http.as_ref().map(|h| (h, "http")));
            if let Some((action, member)) = webhook {
                return StepAction::Http(http_call(
                    &format!("{here}.{member}"),
                    action,
                    secrets,
                    errors,
                ));
            }
            if let Some(cf) = step.dns_switch.as_ref().and_then(|d| d.cloudflare.as_ref()) {
                let token = secret(
                    &format!("{here}.dnsSwitch.cloudflare.apiTokenSecretRef"),
                    &cf.api_token_secret_ref,
                    secrets,
                    errors,
                );
                return StepAction::Cloudflare(CloudflareSwitch {
                    api_url: cf
                        .api_url
                        .clone()
                        .unwrap_or_else(|| CLOUDFLARE_API.to_string()),
                    zone_id: cf.zone_id.clone(),
                    record_name: cf.record_name.clone(),
                    record_type: cf.record_type,
                    content: cf.content.clone(),
                    ttl: cf.ttl,
                    proxied: cf.proxied,
                    token,
                });
            }
            if let Some(sql) = &step.sql {
                return StepAction::Sql(sql_call(&format!("{here}.sql"), sql, secrets, errors));
            }
            StepAction::Cluster(Box::new(step.clone()))
        })
        .collect()
}

fn secret(
    path: &str,
    reference: &SecretKeyRef,
    secrets: &dyn SecretSource,
    errors: &mut Vec<FailoverError>,
) -> String {
    secrets.secret(reference).unwrap_or_else(|| {
        errors.push(FailoverError::MissingSecret {
            path: path.to_string(),
            secret: reference.name.clone(),
            key: reference.key.clone(),
        });
        String::new()
    })
}

fn sql_call(
    path: &str,
    sql: &SqlAction,
    secrets: &dyn SecretSource,
    errors: &mut Vec<FailoverError>,
) -> SqlCall {
    let c = &sql.connection;
    let target = match &c.uri_secret_ref {
        Some(uri) => SqlTarget::Uri(secret(
            &format!("{path}.connection.uriSecretRef"),
            uri,
            secrets,
            errors,
        )),
        None => SqlTarget::Parts {
            host: c.host.clone().unwrap_or_default(),
            port: c.port.unwrap_or(5432),
            database: c.database.clone().unwrap_or_default(),
            user: c.user.clone().unwrap_or_default(),
            password: c.password_secret_ref.as_ref().map(|p| {
                secret(
                    &format!("{path}.connection.passwordSecretRef"),
                    p,
                    secrets,
                    errors,
                )
            }),
        },
    };
    let statement_timeout = sql.statement_timeout.as_ref().and_then(|t| {
        t.parse()
            .map_err(|e| {
                errors.push(FailoverError::Spec {
                    path: format!("{path}.statementTimeout"),
                    message: e.to_string(),
                })
            })
            .ok()
    });
    SqlCall {
        target,
        ssl_mode: c.ssl_mode.unwrap_or_default(),
        statements: sql.statements.clone(),
        expect: sql.expect.clone(),
        statement_timeout,
    }
}

fn http_call(
    path: &str,
    action: &HttpAction,
    secrets: &dyn SecretSource,
    errors: &mut Vec<FailoverError>,
) -> HttpCall {
    let headers = action
        .headers
        .iter()
        .enumerate()
        .map(
            |(
                j,
                HttpHeader {
                    name,
                    value,
                    value_from,
                },
            )| match (value, value_from) {
                (Some(value), _) => (name.clone(), value.clone(), false),
                (None, Some(from)) => {
                    let value = secret(
                        &format!("{path}.headers[{j}].valueFrom.secretKeyRef"),
                        &from.secret_key_ref,
                        secrets,
                        errors,
                    );
                    (name.clone(), value, true)
                }
                (None, None) => (name.clone(), String::new(), false),
            },
        )
        .collect();
    HttpCall {
        url: action.url.clone(),
        method: action.method,
        headers,
        body: action.body.clone(),
        expected_status: action.expected_status.clone(),
    }
}

/// Runs one try of a step. The driver bounds it by the step's timeout; the implementation
/// must pass `run.key` on so a try repeated after a crash has its effect once.
pub trait Executor: Send + Sync {
    /// Runs the try; `Ok` carries a short result message for status.
    fn execute(&self, run: &StepRun) -> impl Future<Output = Result<String, StepFailure>> + Send;
}

/// Runs the steps that need a cluster (or, in the embedded mode, the local runtime).
pub trait ClusterExecutor: Send + Sync {
    /// Runs one try of `step` under `run.key`.
    fn execute(
        &self,
        run: &StepRun,
        step: &Step,
    ) -> impl Future<Output = Result<String, StepFailure>> + Send;
}

/// A [`ClusterExecutor`] for processes without a cluster: every such step fails at once,
/// naming what is missing (never silently skipped).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoCluster;

impl ClusterExecutor for NoCluster {
    async fn execute(&self, run: &StepRun, step: &Step) -> Result<String, StepFailure> {
        Err(StepFailure::permanent(format!(
            "step {} ({}) needs a Kubernetes cluster; this process has none",
            run.name,
            step.actions().join(", ")
        )))
    }
}

/// The engine's executor: HTTP, Cloudflare and SQL steps itself, the rest through `C`.
#[derive(Clone, Debug)]
pub struct StepExecutor<C> {
    plan: ResolvedPlan,
    http: reqwest::Client,
    cluster: C,
}

impl<C: ClusterExecutor> StepExecutor<C> {
    /// An executor for a resolved plan; `http` is shared by all steps (see
    /// [`super::http::client`]).
    pub fn new(plan: ResolvedPlan, http: reqwest::Client, cluster: C) -> Self {
        Self {
            plan,
            http,
            cluster,
        }
    }
}

impl<C: ClusterExecutor> Executor for StepExecutor<C> {
    async fn execute(&self, run: &StepRun) -> Result<String, StepFailure> {
        match self.plan.action(run.attempt_kind, run.index) {
            Some(StepAction::Http(call)) => super::http::call(&self.http, call, run).await,
            Some(StepAction::Cloudflare(switch)) => {
                super::cloudflare::switch(&self.http, switch, run).await
            }
            Some(StepAction::Sql(call)) => super::sql::execute(call, run).await,
            Some(StepAction::Cluster(step)) => self.cluster.execute(run, step).await,
            None => Err(StepFailure::permanent(format!(
                "step {} (index {}) has no resolved action; the plan changed since it was resolved",
                run.name, run.index
            ))),
        }
    }
}
