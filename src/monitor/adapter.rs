//! From the API's `HealthMonitorSpec` to the engines' configurations: the probe
//! ([`ProbeSpec`]), the health policy ([`HealthPolicy`]), alert severities and alerting
//! ([`AlertingConfig`]), with every Secret resolved through a [`SecretResolver`].

use std::time::Duration;

use crate::alert::{
    AlertingConfig, AlertmanagerConfig, Channel, EmailConfig, PagerDutyConfig, Route, Severity,
    SinkConfig, SlackConfig, SmtpTls, WebhookConfig,
};
use crate::api::common::{self, AlertingSpec, HttpHeader, HttpMethod, SecretKeyRef};
use crate::api::health_monitor::{
    self as hm, CaBundleSource, HealthMonitorSpec, ProbeTarget, Scheme, ThresholdMetric,
};
use crate::probe::health::{Direction, HealthPolicy, Hysteresis, Metric, ThresholdRule};
use crate::probe::{
    Checks, ComponentSpec, HttpTarget, JsonAssertion, JsonOperator, ProbeSpec, RedirectConfig,
    Target, TlsConfig,
};

use super::MonitorError;

/// Where Secret (and ConfigMap) values come from: Kubernetes Secrets in the controller,
/// environment variables or files in `watchkeeper run`. Values are credentials: resolvers must
/// not log them, and errors name only the Secret and key.
pub trait SecretResolver: Send + Sync {
    /// The value of `key` in Secret `name` (in the monitor's namespace).
    fn get(&self, name: &str, key: &str) -> Result<String, MonitorError>;

    /// The value of `key` in ConfigMap `name`. By default ConfigMaps are not available (run
    /// mode); the controller overrides it.
    fn config_map(&self, name: &str, key: &str) -> Result<String, MonitorError> {
        Err(MonitorError::Secret {
            name: name.to_string(),
            key: key.to_string(),
            message: "ConfigMaps cannot be read in this mode".to_string(),
        })
    }
}

/// Where the monitor lives, for service targets, alert labels and sources.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MonitorKey {
    /// Namespace (`default` in run mode unless the manifest sets one).
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

impl std::fmt::Display for MonitorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Whether the caller can reach in-cluster Service DNS names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    /// Inside a cluster: `service` targets become `http://name.namespace.svc:port/path`.
    Cluster,
    /// Outside any cluster (`watchkeeper run`): only `url` and `tcp` targets can be probed.
    Embedded,
}

/// Alert severities of one threshold at its two levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelSeverities {
    /// At the warning level.
    pub warning: Severity,
    /// At the critical level.
    pub critical: Severity,
}

/// Everything the runtime needs to run one monitor, with no Kubernetes types left.
#[derive(Clone, Debug)]
pub struct MonitorConfig {
    /// The probe (secrets resolved, paths compiled).
    pub probe: ProbeSpec,
    /// Time between the starts of two probes.
    pub interval: Duration,
    /// Rolling windows, in spec order.
    pub windows: Vec<Duration>,
    /// The windows as written in the spec (`5m`), same order, for status.
    pub window_names: Vec<String>,
    /// How probe results become health.
    pub policy: HealthPolicy,
    /// Severity of the `down` alert.
    pub down_severity: Severity,
    /// Severities of each threshold, in policy order.
    pub threshold_severities: Vec<LevelSeverities>,
    /// Where alerts go; `None` means health is tracked but nobody is notified.
    pub alerting: Option<AlertingConfig>,
    /// The target as text, for status and alerts.
    pub target_display: String,
}

impl MonitorConfig {
    /// A copy with every duration divided by `factor` (interval, timeout, windows, maximum
    /// latency) and latency threshold levels divided too, so a scripted scenario (the demo)
    /// can run on a compressed timeline in tests. `factor` below 1 is taken as 1.
    pub fn compressed(&self, factor: u32) -> Self {
        let factor = factor.max(1);
        let mut config = self.clone();
        config.interval /= factor;
        config.probe.timeout /= factor;
        if let Some(max) = &mut config.probe.checks.max_latency {
            *max /= factor;
        }
        for window in &mut config.windows {
            *window /= factor;
        }
        for rule in &mut config.policy.thresholds {
            rule.window /= factor;
            if matches!(
                rule.metric,
                Metric::LatencyMean | Metric::LatencyP95 | Metric::LatencyP99
            ) {
                rule.warning = rule.warning.map(|w| w / f64::from(factor));
                rule.critical = rule.critical.map(|c| c / f64::from(factor));
            }
        }
        config
    }
}

/// Converts a HealthMonitor's spec into the engines' configuration.
pub fn monitor_config(
    key: &MonitorKey,
    spec: &HealthMonitorSpec,
    environment: Environment,
    secrets: &dyn SecretResolver,
) -> Result<MonitorConfig, MonitorError> {
    let interval = duration("spec.interval", &spec.interval)?;
    let windows = spec
        .windows
        .iter()
        .enumerate()
        .map(|(i, w)| duration(&format!("spec.windows[{i}]"), w))
        .collect::<Result<Vec<_>, _>>()?;
    let probe = probe_spec(key, spec, environment, secrets)?;
    let policy = health_policy(spec)?;
    let threshold_severities = spec
        .thresholds
        .iter()
        .map(|t| {
            let own = t.severities.clone().unwrap_or_default();
            LevelSeverities {
                warning: severity(own.warning.unwrap_or(spec.severities.warning)),
                critical: severity(own.critical.unwrap_or(spec.severities.critical)),
            }
        })
        .collect();
    let alerting = spec
        .alerting
        .as_ref()
        .map(|a| alerting_config(a, secrets))
        .transpose()?;
    let target_display = match environment {
        Environment::Cluster => match &probe.target {
            Target::Http(http) => http.url.clone(),
            Target::Tcp { .. } => spec.target_display(),
        },
        Environment::Embedded => spec.target_display(),
    };
    Ok(MonitorConfig {
        probe,
        interval,
        windows,
        window_names: spec
            .windows
            .iter()
            .map(|w| w.as_str().to_string())
            .collect(),
        policy,
        down_severity: severity(spec.severities.down),
        threshold_severities,
        alerting,
        target_display,
    })
}

fn duration(field: &str, value: &common::Duration) -> Result<Duration, MonitorError> {
    value.parse().map_err(|e| MonitorError::Spec {
        field: field.to_string(),
        message: e.to_string(),
    })
}

/// The API's severity as the alert engine's.
pub fn severity(value: common::Severity) -> Severity {
    match value {
        common::Severity::P0 => Severity::P0,
        common::Severity::P1 => Severity::P1,
        common::Severity::P2 => Severity::P2,
        common::Severity::P3 => Severity::P3,
    }
}

/// The probe: target, request, checks and components.
pub fn probe_spec(
    key: &MonitorKey,
    spec: &HealthMonitorSpec,
    environment: Environment,
    secrets: &dyn SecretResolver,
) -> Result<ProbeSpec, MonitorError> {
    let target = target(key, &spec.target, environment)?;
    let target = match target {
        Endpoint::Url(url) => Target::Http(http_target(url, spec.request.as_ref(), secrets)?),
        Endpoint::Tcp { host, port } => Target::Tcp { host, port },
    };
    let checks = &spec.checks;
    let json = checks
        .json
        .iter()
        .enumerate()
        .map(|(i, a)| {
            JsonAssertion::new(
                &format!("spec.checks.json[{i}]"),
                &a.path,
                json_operator(a.operator),
                a.value.as_deref(),
                &a.values,
            )
            .map_err(MonitorError::Probe)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let components = spec
        .components
        .iter()
        .enumerate()
        .map(|(i, c)| {
            ComponentSpec::new(
                &format!("spec.components[{i}]"),
                &c.name,
                c.json_path.as_deref(),
                &c.healthy_values,
                c.value_path.as_deref(),
            )
            .map_err(MonitorError::Probe)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ProbeSpec {
        target,
        timeout: duration("spec.timeout", &spec.timeout)?,
        checks: Checks {
            status_codes: checks.status_codes.clone(),
            max_latency: checks
                .max_latency
                .as_ref()
                .map(|d| duration("spec.checks.maxLatency", d))
                .transpose()?,
            json,
            min_certificate_validity: checks
                .min_certificate_validity
                .as_ref()
                .map(|d| duration("spec.checks.minCertificateValidity", d))
                .transpose()?,
        },
        components,
    })
}

enum Endpoint {
    Url(String),
    Tcp { host: String, port: u16 },
}

fn target(
    key: &MonitorKey,
    target: &ProbeTarget,
    environment: Environment,
) -> Result<Endpoint, MonitorError> {
    let port = |field: &str, port: i32| {
        u16::try_from(port)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| MonitorError::Spec {
                field: field.to_string(),
                message: format!("port {port} is not between 1 and 65535"),
            })
    };
    if let Some(url) = &target.url {
        return Ok(Endpoint::Url(url.clone()));
    }
    if let Some(service) = &target.service {
        if environment == Environment::Embedded {
            return Err(MonitorError::Unsupported {
                field: "spec.target.service".to_string(),
                message: "a Service target needs a cluster; use target.url outside one".to_string(),
            });
        }
        let scheme = match service.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        let port = port("spec.target.service.port", service.port)?;
        return Ok(Endpoint::Url(format!(
            "{scheme}://{}.{}.svc:{port}{}",
            service.name, key.namespace, service.path
        )));
    }
    if let Some(tcp) = &target.tcp {
        return Ok(Endpoint::Tcp {
            host: tcp.host.clone(),
            port: port("spec.target.tcp.port", tcp.port)?,
        });
    }
    Err(MonitorError::Spec {
        field: "spec.target".to_string(),
        message: "exactly one of url, service or tcp must be set".to_string(),
    })
}

fn http_target(
    url: String,
    request: Option<&hm::HttpRequest>,
    secrets: &dyn SecretResolver,
) -> Result<HttpTarget, MonitorError> {
    let mut http = HttpTarget::get(url);
    let Some(request) = request else {
        return Ok(http);
    };
    http.method = method(request.method).to_string();
    http.headers = headers("spec.request.headers", &request.headers, secrets)?;
    http.body = request.body.clone();
    if let Some(redirects) = &request.redirects {
        http.redirects = if redirects.follow {
            RedirectConfig::Follow(redirects.limit)
        } else {
            RedirectConfig::None
        };
    }
    if let Some(tls) = &request.tls {
        let mut config = TlsConfig {
            insecure_skip_verify: tls.insecure_skip_verify,
            server_name: tls.server_name.clone(),
            ..TlsConfig::default()
        };
        if let Some(bundle) = &tls.ca_bundle {
            config.ca_bundle_pem = Some(ca_bundle("spec.request.tls.caBundle", bundle, secrets)?);
        }
        if let Some(client) = &tls.client_certificate_secret_ref {
            config.client_cert_pem = Some(secrets.get(&client.name, "tls.crt")?);
            config.client_key_pem = Some(secrets.get(&client.name, "tls.key")?);
        }
        http.tls = config;
    }
    Ok(http)
}

/// A PEM CA bundle read from the ConfigMap or Secret key `bundle` names.
fn ca_bundle(
    field: &str,
    bundle: &CaBundleSource,
    secrets: &dyn SecretResolver,
) -> Result<String, MonitorError> {
    match (&bundle.config_map_key_ref, &bundle.secret_key_ref) {
        (Some(cm), _) => secrets.config_map(&cm.name, &cm.key),
        (None, Some(secret)) => secret_value(secrets, secret),
        (None, None) => Err(MonitorError::Spec {
            field: field.to_string(),
            message: "set configMapKeyRef or secretKeyRef".to_string(),
        }),
    }
}

fn method(method: HttpMethod) -> &'static str {
    match method {
        HttpMethod::Get => "GET",
        HttpMethod::Head => "HEAD",
        HttpMethod::Post => "POST",
        HttpMethod::Put => "PUT",
        HttpMethod::Patch => "PATCH",
        HttpMethod::Delete => "DELETE",
        HttpMethod::Options => "OPTIONS",
    }
}

fn headers(
    field: &str,
    headers: &[HttpHeader],
    secrets: &dyn SecretResolver,
) -> Result<Vec<(String, String)>, MonitorError> {
    headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let value = match (&h.value, &h.value_from) {
                (Some(value), _) => value.clone(),
                (None, Some(from)) => secret_value(secrets, &from.secret_key_ref)?,
                (None, None) => {
                    return Err(MonitorError::Spec {
                        field: format!("{field}[{i}]"),
                        message: "set value or valueFrom".to_string(),
                    });
                }
            };
            Ok((h.name.clone(), value))
        })
        .collect()
}

fn secret_value(secrets: &dyn SecretResolver, r: &SecretKeyRef) -> Result<String, MonitorError> {
    secrets.get(&r.name, &r.key)
}

fn json_operator(operator: hm::JsonOperator) -> JsonOperator {
    match operator {
        hm::JsonOperator::Eq => JsonOperator::Eq,
        hm::JsonOperator::Ne => JsonOperator::Ne,
        hm::JsonOperator::Lt => JsonOperator::Lt,
        hm::JsonOperator::Gt => JsonOperator::Gt,
        hm::JsonOperator::In => JsonOperator::In,
        hm::JsonOperator::Exists => JsonOperator::Exists,
        hm::JsonOperator::Matches => JsonOperator::Matches,
    }
}

/// The health policy: consecutive thresholds and one rule per threshold, default hysteresis.
pub fn health_policy(spec: &HealthMonitorSpec) -> Result<HealthPolicy, MonitorError> {
    let thresholds = spec
        .thresholds
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let field = format!("spec.thresholds[{i}]");
            let component = || {
                t.component.clone().ok_or_else(|| MonitorError::Spec {
                    field: format!("{field}.component"),
                    message: format!("metric {:?} needs a component", t.metric),
                })
            };
            let metric = match t.metric {
                ThresholdMetric::Uptime => Metric::Uptime,
                ThresholdMetric::ErrorRate => Metric::ErrorRate,
                ThresholdMetric::LatencyMean => Metric::LatencyMean,
                ThresholdMetric::LatencyP95 => Metric::LatencyP95,
                ThresholdMetric::LatencyP99 => Metric::LatencyP99,
                ThresholdMetric::ComponentAvailability => {
                    Metric::ComponentAvailability(component()?)
                }
                ThresholdMetric::ComponentErrorRate => Metric::ComponentErrorRate(component()?),
                ThresholdMetric::ComponentValue => Metric::ComponentValue(component()?),
            };
            Ok(ThresholdRule {
                name: t.name.clone(),
                metric,
                window: duration(&format!("{field}.window"), &t.window)?,
                direction: match t.direction {
                    hm::Direction::Above => Direction::Above,
                    hm::Direction::Below => Direction::Below,
                },
                warning: t.warning,
                critical: t.critical,
                min_samples: u64::from(t.min_samples),
            })
        })
        .collect::<Result<Vec<_>, MonitorError>>()?;
    let policy = HealthPolicy {
        failure_threshold: spec.failure_threshold,
        success_threshold: spec.success_threshold,
        thresholds,
        hysteresis: Hysteresis::default(),
    };
    policy.validate().map_err(|e| MonitorError::Spec {
        field: "spec.thresholds".to_string(),
        message: e.to_string(),
    })?;
    Ok(policy)
}

/// The alerting configuration, with every Secret the sinks need resolved.
pub fn alerting_config(
    spec: &AlertingSpec,
    secrets: &dyn SecretResolver,
) -> Result<AlertingConfig, MonitorError> {
    let channels = spec
        .channels
        .iter()
        .map(|c| {
            Ok(Channel {
                name: c.name.clone(),
                sink: sink(c, secrets)?,
            })
        })
        .collect::<Result<Vec<_>, MonitorError>>()?;
    let repeat_interval = spec
        .repeat_interval
        .as_ref()
        .map(|d| duration("spec.alerting.repeatInterval", d))
        .transpose()?;
    Ok(AlertingConfig {
        channels,
        routes: spec
            .routes
            .iter()
            .map(|r| Route {
                severities: r.severities.iter().copied().map(severity).collect(),
                channels: r.channels.clone(),
            })
            .collect(),
        repeat_interval,
        send_resolved: spec.send_resolved.unwrap_or(true),
        max_notifications_per_hour: spec.max_notifications_per_hour,
    })
}

fn sink(
    channel: &common::AlertChannel,
    secrets: &dyn SecretResolver,
) -> Result<SinkConfig, MonitorError> {
    let get = |r: &SecretKeyRef| secret_value(secrets, r);
    if let Some(am) = &channel.alertmanager {
        return Ok(SinkConfig::Alertmanager(AlertmanagerConfig {
            url: am.url.clone(),
            bearer_token: am.bearer_token_secret_ref.as_ref().map(get).transpose()?,
        }));
    }
    if let Some(slack) = &channel.slack {
        return Ok(SinkConfig::Slack(SlackConfig {
            webhook_url: get(&slack.webhook_url_secret_ref)?,
            channel: slack.channel.clone(),
        }));
    }
    if let Some(pd) = &channel.pager_duty {
        return Ok(SinkConfig::PagerDuty(PagerDutyConfig {
            routing_key: get(&pd.routing_key_secret_ref)?,
            url: pd.url.clone(),
        }));
    }
    if let Some(webhook) = &channel.webhook {
        return Ok(SinkConfig::Webhook(WebhookConfig {
            url: webhook.url.clone(),
            hmac_secret: webhook
                .hmac_secret_ref
                .as_ref()
                .map(get)
                .transpose()?
                .map(String::into_bytes),
            headers: headers(
                &format!("spec.alerting.channels[{}].webhook.headers", channel.name),
                &webhook.headers,
                secrets,
            )?,
        }));
    }
    if let Some(email) = &channel.email {
        let credentials = match (&email.username_secret_ref, &email.password_secret_ref) {
            (Some(user), Some(password)) => Some((get(user)?, get(password)?)),
            _ => None,
        };
        return Ok(SinkConfig::Email(EmailConfig {
            host: email.host.clone(),
            port: email.port,
            tls: match email.tls.unwrap_or(common::SmtpTls::StartTls) {
                common::SmtpTls::None => SmtpTls::None,
                common::SmtpTls::StartTls => SmtpTls::StartTls,
                common::SmtpTls::Tls => SmtpTls::Tls,
            },
            from: email.from.clone(),
            to: email.to.clone(),
            credentials,
            ca_pem: email
                .ca_bundle
                .as_ref()
                .map(|bundle| {
                    let field = format!("spec.alerting.channels[{}].email.caBundle", channel.name);
                    ca_bundle(&field, bundle, secrets).map(String::into_bytes)
                })
                .transpose()?,
        }));
    }
    Err(MonitorError::Spec {
        field: format!("spec.alerting.channels[{}]", channel.name),
        message: "exactly one of alertmanager, slack, pagerDuty, webhook or email must be set"
            .to_string(),
    })
}
