//! Alerts of BackupPolicies: one alert engine per policy (routing, de-duplication, repeats,
//! resolves; `src/alert`), fed each reconcile with what fires now, its open alerts kept in
//! `status.openAlerts` so a restarted or newly elected controller sends nothing twice.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use chrono::Utc;
use tracing::warn;

use super::fold;
use crate::alert::sinks::Sinks;
use crate::alert::{AlertEngine, AlertState, OpenAlertEntry};
use crate::api::backup_policy::BackupPolicyStatus;
use crate::api::common::OpenAlert;
use crate::monitor::adapter;

/// The alert engines of one controller process, by policy (`namespace/name`).
#[derive(Default)]
pub struct PolicyAlerts {
    engines: Mutex<BTreeMap<String, AlertEngine>>,
}

impl PolicyAlerts {
    /// One alert round for the policy; returns the open alerts for status. Without alerting
    /// (or with no channels) nothing is sent and nothing is open. A `muted` round (a
    /// MaintenanceWindow suppresses alerts) sends nothing but keeps de-duplication state, so
    /// an alert still firing after the window is sent then.
    pub async fn round(
        &self,
        key: &str,
        config: Option<crate::alert::AlertingConfig>,
        stored: &BackupPolicyStatus,
        firing: &[crate::alert::Alert],
        now: chrono::DateTime<Utc>,
        muted: bool,
    ) -> Vec<OpenAlert> {
        let Some(config) = config else {
            self.forget(key);
            return Vec::new();
        };
        let taken = self
            .engines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
        let engine = match taken {
            Some(mut engine) => engine.set_config(config).map(|()| engine),
            None => {
                // First sight (new policy, restart, new leader): what was already notified
                // comes from status, so nothing is sent twice.
                let state = AlertState::from_open_entries(&open_entries(stored), &config);
                match Sinks::new() {
                    Ok(sinks) => AlertEngine::new(config, state, sinks),
                    Err(error) => {
                        warn!(backup_policy = %key, %error, "alert sinks unavailable");
                        return stored.open_alerts.clone();
                    }
                }
            }
        };
        let mut engine = match engine {
            Ok(engine) => engine,
            Err(error) => {
                warn!(backup_policy = %key, %error, "alerting configuration refused");
                return stored.open_alerts.clone();
            }
        };
        let report = if muted {
            engine.round_muted(firing, now)
        } else {
            engine.round(firing, now).await
        };
        for (notification, error) in &report.failed {
            warn!(backup_policy = %key, channel = %notification.channel, %error, "alert not delivered; retried next reconcile");
        }
        let open = engine
            .state()
            .open_entries()
            .into_iter()
            .map(|e| OpenAlert {
                key: e.key,
                severity: api_severity(e.severity),
                since: fold::time(e.since),
                last_notified: e.last_notified.map(fold::time),
                summary: e.summary,
            })
            .collect();
        self.engines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.to_string(), engine);
        open
    }

    /// Forgets a policy's engine (deleted, or alerting removed).
    pub fn forget(&self, key: &str) {
        self.engines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}

fn api_severity(severity: crate::alert::Severity) -> crate::api::common::Severity {
    use crate::api::common::Severity as Api;
    match severity {
        crate::alert::Severity::P0 => Api::P0,
        crate::alert::Severity::P1 => Api::P1,
        crate::alert::Severity::P2 => Api::P2,
        crate::alert::Severity::P3 => Api::P3,
    }
}

fn open_entries(stored: &BackupPolicyStatus) -> Vec<OpenAlertEntry> {
    stored
        .open_alerts
        .iter()
        .map(|a| OpenAlertEntry {
            key: a.key.clone(),
            severity: adapter::severity(a.severity),
            since: fold::chrono_of(&a.since),
            last_notified: a.last_notified.as_ref().map(fold::chrono_of),
            summary: a.summary.clone(),
            channels: Vec::new(),
        })
        .collect()
}
