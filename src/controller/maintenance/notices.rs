//! Notices of a window through its alert channels: ahead of it, at opening and at closing.
//!
//! Which notices went out is recorded in `status.noticesSent` (so a restarted controller does
//! not announce twice); per process, the alert engine's notice state also remembers which
//! channels accepted a notice, so a retry after a partial failure goes only to the channels
//! that failed. Secrets of the channels are read per send and never logged.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use kube::Client;

use crate::alert::sinks::Sinks;
use crate::alert::{Alert, AlertEngine, AlertState, Severity};
use crate::api::maintenance_window::Notices;
use crate::monitor::adapter::severity;

/// One notice to send.
#[derive(Clone, Debug)]
pub struct Notice {
    /// Stable key (`maintenance/<ns>/<name>/<start>/<kind>`).
    pub key: String,
    /// One line.
    pub summary: String,
    /// Longer text.
    pub details: String,
}

/// Sends `notice` through `notices.alerting` of the window `namespace/name`, using (and
/// updating) `state`. `Ok(())` when every routed channel accepted it; `Err(message)` names the
/// channels that did not (or why the channels could not be set up).
pub async fn send(
    client: &Client,
    namespace: &str,
    name: &str,
    notices: &Notices,
    notice: &Notice,
    state: &Mutex<BTreeMap<String, AlertState>>,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let config = crate::controller::alerting::resolve(client, namespace, &notices.alerting)
        .await
        .map_err(|e| format!("notices.alerting: {e}"))?;
    let sinks = Sinks::new().map_err(|e| e.to_string())?;
    let key = format!("{namespace}/{name}");
    let previous = state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(&key)
        .unwrap_or_default();
    let mut engine = AlertEngine::new(config, previous, sinks).map_err(|e| e.to_string())?;
    let alert = Alert {
        key: notice.key.clone(),
        severity: notices.severity.map_or(Severity::P3, severity),
        summary: notice.summary.clone(),
        details: notice.details.clone(),
        labels: BTreeMap::from([
            ("namespace".to_string(), namespace.to_string()),
            ("maintenancewindow".to_string(), name.to_string()),
        ]),
        annotations: BTreeMap::new(),
        source: format!("MaintenanceWindow {namespace}/{name}"),
        generator_url: None,
        starts_at: now,
    };
    let report = engine.notify(&alert, now).await;
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(key, engine.state().clone());
    if report.failed.is_empty() {
        Ok(())
    } else {
        let failed: Vec<String> = report
            .failed
            .iter()
            .map(|(n, e)| format!("{}: {e}", n.channel))
            .collect();
        Err(format!("notice not delivered to {}", failed.join("; ")))
    }
}
