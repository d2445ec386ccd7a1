//! The `notify` step: one alert through the plan's `spec.alerting` channels, via the alert
//! engine (routes, severities and sinks as for HealthMonitors). Delivery is at least once: a
//! try repeated after a crash sends again (the alert key carries the idempotency key, so a
//! receiver that deduplicates by it sees one notice).

use std::collections::BTreeMap;

use chrono::Utc;
use kube::Client;

use crate::alert::sinks::Sinks;
use crate::alert::{Alert, AlertEngine, AlertState};
use crate::api::common::AlertingSpec;
use crate::api::failover_plan::NotifyAction;
use crate::failover::{StepFailure, StepRun};
use crate::monitor::adapter::severity;

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
    let config = crate::controller::alerting::resolve(client, namespace, spec)
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
