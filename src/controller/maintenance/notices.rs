//! Notices of a window through its alert channels: ahead of it, at opening and at closing.
//!
//! Which notices went out is recorded in `status.noticesSent` (so a restarted controller does
//! not announce twice); per process, the alert engine's notice state also remembers which
//! channels accepted a notice, so a retry after a partial failure goes only to the channels
//! that failed. Secrets of the channels are read per send and never logged.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;

use crate::alert::sinks::Sinks;
use crate::alert::{Alert, AlertEngine, AlertState, Severity};
use crate::api::common::AlertingSpec;
use crate::api::maintenance_window::Notices;
use crate::monitor::adapter::{alerting_config, severity};
use crate::monitor::{MonitorError, SecretResolver};

/// Resolution rounds: each may reveal Secrets the previous one did not reach.
const ROUNDS: usize = 8;

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
    let config = resolve(client, namespace, &notices.alerting)
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

/// The engine configuration, reading the Secrets the channels reference.
async fn resolve(
    client: &Client,
    namespace: &str,
    spec: &AlertingSpec,
) -> Result<crate::alert::AlertingConfig, MonitorError> {
    let mut fetched = Fetched::default();
    for _ in 0..ROUNDS {
        let result = alerting_config(spec, &fetched);
        let wanted: Vec<(String, String)> = fetched
            .missed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(id);
                Err(error("not read yet".into()))
            }
        }
    }
}

pub(super) async fn read_secret(
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
