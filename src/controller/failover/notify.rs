//! The `notify` step: one alert through the plan's `spec.alerting` channels, via the alert
//! engine (routes, severities and sinks as for HealthMonitors). Delivery is at least once: a
//! try repeated after a crash sends again (the alert key carries the idempotency key, so a
//! receiver that deduplicates by it sees one notice).

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use chrono::Utc;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;

use crate::alert::sinks::Sinks;
use crate::alert::{Alert, AlertEngine, AlertState, AlertingConfig};
use crate::api::common::AlertingSpec;
use crate::api::failover_plan::NotifyAction;
use crate::failover::{StepFailure, StepRun};
use crate::monitor::MonitorError;
use crate::monitor::adapter::{SecretResolver, alerting_config, severity};

/// Resolution rounds: each may reveal Secrets the previous one did not reach.
const ROUNDS: usize = 8;

/// Sends the step's message; `Ok` names the channels that accepted it.
pub async fn notify(
    client: &Client,
    namespace: &str,
    plan: &str,
    alerting: Option<&AlertingSpec>,
    run: &StepRun,
    action: &NotifyAction,
) -> Result<String, StepFailure> {
    let spec = alerting.ok_or_else(|| {
        StepFailure::permanent(format!(
            "step {}: notify needs spec.alerting (the channels to send through)",
            run.name
        ))
    })?;
    let config = resolve(client, namespace, spec)
        .await
        .map_err(|e| StepFailure::permanent(format!("spec.alerting: {e}")))?;
    if run.dry_run {
        return Ok("dry run: spec.alerting resolves; nothing sent".to_string());
    }
    let sinks = Sinks::new().map_err(|e| StepFailure::transient(e.to_string()))?;
    let mut engine = AlertEngine::new(config, AlertState::default(), sinks)
        .map_err(|e| StepFailure::permanent(format!("spec.alerting: {e}")))?;
    let now = Utc::now();
    let alert = Alert {
        key: format!("failover/{}", run.key),
        severity: severity(action.severity),
        summary: action.message.clone(),
        details: format!(
            "FailoverPlan {namespace}/{plan}, attempt {}, step {}",
            run.key.attempt_id, run.name
        ),
        labels: BTreeMap::from([
            ("namespace".to_string(), namespace.to_string()),
            ("failoverplan".to_string(), plan.to_string()),
        ]),
        annotations: BTreeMap::new(),
        source: format!("FailoverPlan {namespace}/{plan}"),
        generator_url: None,
        starts_at: now,
    };
    let report = engine.notify(&alert, now).await;
    if !report.failed.is_empty() {
        let failed: Vec<String> = report
            .failed
            .iter()
            .map(|(n, e)| format!("{}: {e}", n.channel))
            .collect();
        return Err(StepFailure::transient(format!(
            "notice not delivered to {}",
            failed.join("; ")
        )));
    }
    if report.sent.is_empty() {
        return Err(StepFailure::permanent(
            "no channel of spec.alerting took the notice (check routes and rate limits)",
        ));
    }
    let channels: Vec<&str> = report.sent.iter().map(|n| n.channel.as_str()).collect();
    Ok(format!("notified {}", channels.join(", ")))
}

async fn resolve(
    client: &Client,
    namespace: &str,
    spec: &AlertingSpec,
) -> Result<AlertingConfig, MonitorError> {
    let mut fetched = Fetched::default();
    for _ in 0..ROUNDS {
        let result = alerting_config(spec, &fetched);
        let wanted: Vec<(String, String)> = fetched
            .missed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect();
        if wanted.is_empty() {
            return result;
        }
        for (name, key) in wanted {
            let value = read_secret(client, namespace, &name, &key).await;
            fetched.values.insert((name, key), value);
        }
    }
    alerting_config(spec, &fetched)
}

/// Secret values read so far; never logged.
#[derive(Default)]
struct Fetched {
    values: BTreeMap<(String, String), Result<String, String>>,
    missed: Mutex<Vec<(String, String)>>,
}

impl SecretResolver for Fetched {
    fn get(&self, name: &str, key: &str) -> Result<String, MonitorError> {
        let id = (name.to_string(), key.to_string());
        let error = |message: String| MonitorError::Secret {
            name: name.to_string(),
            key: key.to_string(),
            message,
        };
        match self.values.get(&id) {
            Some(Ok(value)) => Ok(value.clone()),
            Some(Err(message)) => Err(error(message.clone())),
            None => {
                self.missed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(id);
                Err(error("not read yet".into()))
            }
        }
    }
}

async fn read_secret(
    client: &Client,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<String, String> {
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(|e| format!("cannot be read: {e}"))?
        .ok_or_else(|| "the Secret does not exist".to_string())?;
    if let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(key)) {
        return String::from_utf8(bytes.0.clone()).map_err(|_| "the value is not UTF-8".into());
    }
    secret
        .string_data
        .as_ref()
        .and_then(|d| d.get(key))
        .cloned()
        .ok_or_else(|| "the Secret has no such key".into())
}
