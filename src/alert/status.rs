//! Mapping between the engine's [`AlertState`] and a flat list of open-alert entries, shaped
//! like the API's `status.openAlerts` (key, severity, since, lastNotified, summary) plus the
//! notified channel names.
//!
//! Storing the whole [`AlertState`] in status is the lossless choice. When only the entries are
//! kept, [`AlertState::from_open_entries`] rebuilds a state that still sends no duplicate
//! trigger after a restart; what it loses is listed on that function.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Alert, AlertRecord, AlertState, AlertingConfig, Severity, route, state::ChannelMark};

/// One open alert as status shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenAlertEntry {
    /// De-duplication key.
    pub key: String,
    /// Severity the channels were told.
    pub severity: Severity,
    /// When the condition started.
    pub since: DateTime<Utc>,
    /// Last successful notification to any channel.
    pub last_notified: Option<DateTime<Utc>>,
    /// Summary as sent.
    pub summary: Option<String>,
    /// Channels holding the alert open; empty when unknown (older status).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
}

impl AlertState {
    /// The alerts that are open (firing, told to at least one channel), most severe first.
    pub fn open_entries(&self) -> Vec<OpenAlertEntry> {
        let mut entries: Vec<OpenAlertEntry> = self
            .open_alerts()
            .map(|record| OpenAlertEntry {
                key: record.alert.key.clone(),
                severity: record.severity(),
                since: record.since(),
                last_notified: record.last_notified(),
                summary: Some(record.alert.summary.clone()),
                channels: record.notified_channels().map(str::to_string).collect(),
            })
            .collect();
        entries.sort_by(|a, b| (a.severity, &a.key).cmp(&(b.severity, &b.key)));
        entries
    }

    /// Rebuilds a state from open-alert entries, for a status that kept only those.
    ///
    /// Every listed channel (or, when none are listed, every channel the severity routes to)
    /// is taken as told at `lastNotified` (or `since`), so a restarted engine sends no
    /// duplicate trigger and still resolves. Lost compared with the full state: the alert's
    /// labels, annotations and details until it is notified again (an Alertmanager resolve of
    /// an alert that ended while the operator was down carries only the generated labels),
    /// per-channel counts, and the rate-limit window (the budget starts afresh).
    pub fn from_open_entries(entries: &[OpenAlertEntry], config: &AlertingConfig) -> Self {
        let mut state = AlertState::default();
        for entry in entries {
            let at = entry.last_notified.unwrap_or(entry.since);
            let channels: Vec<String> = if entry.channels.is_empty() {
                route::channels_for(config, entry.severity)
                    .into_iter()
                    .map(str::to_string)
                    .collect()
            } else {
                entry.channels.clone()
            };
            let notified: BTreeMap<String, ChannelMark> = channels
                .into_iter()
                .map(|name| {
                    let mark = ChannelMark {
                        last_notified: at,
                        severity: entry.severity,
                        count: 1,
                        last_refreshed: None,
                    };
                    (name, mark)
                })
                .collect();
            let alert = Alert {
                key: entry.key.clone(),
                severity: entry.severity,
                summary: entry.summary.clone().unwrap_or_else(|| entry.key.clone()),
                details: String::new(),
                labels: BTreeMap::new(),
                annotations: BTreeMap::new(),
                source: "watchkeeper".into(),
                generator_url: None,
                starts_at: entry.since,
            };
            let notifications = u32::try_from(notified.len()).unwrap_or(u32::MAX);
            state.alerts.insert(
                entry.key.clone(),
                AlertRecord {
                    alert,
                    notified,
                    suppressed_until: BTreeMap::new(),
                    notifications,
                    resolved_at: None,
                },
            );
        }
        state
    }
}
