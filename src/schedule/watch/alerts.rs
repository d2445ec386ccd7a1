//! From a report to alerts for the alerting engine.

use std::collections::BTreeMap;

use crate::alert::{Alert, Severity};

use super::{JobHealth, WatchReport};

/// Alert severity for each unhealthy state (the API's `monitoring.severities`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobSeverities {
    /// A due run has not started within the grace.
    pub late: Severity,
    /// `failure_threshold` consecutive failures.
    pub failing: Severity,
    /// No success within the dead-man's switch; also used for "too many missed starts", which
    /// likewise means the job has stopped producing results.
    pub missed: Severity,
}

impl Default for JobSeverities {
    /// The API's defaults: Late P3, Failing P2, Missed P1.
    fn default() -> Self {
        Self {
            late: Severity::P3,
            failing: Severity::P2,
            missed: Severity::P1,
        }
    }
}

/// Alerts for the alert engine: one per unhealthy state in the report (keys `job/late`,
/// `job/stuck`, `job/failing`, `job/missed`), none when healthy, unknown or suspended — the
/// engine then resolves what was open. `labels` identify the job; the source is taken from its
/// `namespace` and `name` labels (`CronJobSpec <namespace>/<name>`).
pub fn firing_alerts(
    report: &WatchReport,
    severities: &JobSeverities,
    labels: &BTreeMap<String, String>,
) -> Vec<Alert> {
    let source = match (labels.get("namespace"), labels.get("name")) {
        (Some(namespace), Some(name)) => format!("CronJobSpec {namespace}/{name}"),
        (None, Some(name)) => format!("CronJobSpec {name}"),
        _ => "CronJobSpec".to_string(),
    };
    firing_alerts_from(report, severities, labels, &source)
}

/// [`firing_alerts`] with an explicit source (PagerDuty `payload.source`, summary prefix).
pub fn firing_alerts_from(
    report: &WatchReport,
    severities: &JobSeverities,
    labels: &BTreeMap<String, String>,
    source: &str,
) -> Vec<Alert> {
    report
        .problems
        .iter()
        .map(|problem| {
            let (key, severity, word) = match (problem.health, problem.reason) {
                (JobHealth::Late, "TooManyMissedStarts") => {
                    ("job/stuck", severities.missed, "too many missed starts")
                }
                (JobHealth::Late, _) => ("job/late", severities.late, "late"),
                (JobHealth::Failing, _) => ("job/failing", severities.failing, "failing"),
                _ => ("job/missed", severities.missed, "missed"),
            };
            let mut labels = labels.clone();
            labels.insert("condition".to_string(), problem.health.as_str().to_string());
            Alert {
                key: key.to_string(),
                severity,
                summary: format!("{source}: {word}: {}", problem.message),
                details: problem.message.clone(),
                labels,
                annotations: BTreeMap::from([("reason".to_string(), problem.reason.to_string())]),
                source: source.to_string(),
                generator_url: None,
                starts_at: problem.since,
            }
        })
        .collect()
}
