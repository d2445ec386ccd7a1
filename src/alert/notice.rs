//! One-shot notices through the alert channels: maintenance announcements ("in 7 days", "now
//! open", "closed"), failover progress, drill results. Not incidents: a notice is delivered
//! once to each channel its severity routes to, never repeated nor resolved, and remembered by
//! key in [`AlertState`] so a restarted operator does not announce twice.
//!
//! Alertmanager channels are skipped (Alertmanager has no notion of an announcement); PagerDuty
//! channels receive a Change Event (timeline entry, no page); Slack, webhook and e-mail receive
//! the message with kind `notice`. Notices are not subject to the rate limit but count against
//! it, like resolves.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::{Alert, AlertState, AlertingConfig, Notification, NotificationKind, SinkConfig, route};

/// How long a notice key is remembered after it was first sent. Callers put the event's date
/// in the key (`maintenance/monthly/2026-03-03/notice-7d`), so this only bounds the state.
pub const NOTICE_RETENTION: TimeDelta = TimeDelta::days(60);

/// What is remembered about one notice key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NoticeRecord {
    /// When the first channel accepted it; drives [`NOTICE_RETENTION`].
    pub first_sent: DateTime<Utc>,
    /// Channels that accepted it.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub delivered: BTreeSet<String>,
}

/// The notifications still owed for `notice` (its `key` identifies it): one per routed
/// channel that has not accepted it yet, Alertmanager channels excepted. Pure.
pub fn decide_notice(
    notice: &Alert,
    state: &AlertState,
    config: &AlertingConfig,
    now: DateTime<Utc>,
) -> Vec<Notification> {
    let delivered = state.notices.get(&notice.key).map(|r| &r.delivered);
    route::channels_for(config, notice.severity)
        .into_iter()
        .filter(|name| {
            config
                .channels
                .iter()
                .any(|c| c.name == *name && !matches!(c.sink, SinkConfig::Alertmanager(_)))
        })
        .filter(|name| delivered.is_none_or(|d| !d.contains(*name)))
        .map(|name| Notification {
            kind: NotificationKind::Notice,
            channel: name.to_string(),
            alert: notice.clone(),
            ends_at: None,
            previous_count: 0,
            sent_at: now,
            refresh: false,
        })
        .collect()
}

impl AlertState {
    /// Records which notice notifications were accepted (`delivered[i]` for
    /// `notifications[i]`) and forgets notices older than [`NOTICE_RETENTION`].
    pub fn apply_notice(
        &mut self,
        notifications: &[Notification],
        delivered: &[bool],
        now: DateTime<Utc>,
    ) {
        for (n, ok) in notifications.iter().zip(delivered) {
            if !*ok || n.kind != NotificationKind::Notice {
                continue;
            }
            self.channels
                .entry(n.channel.clone())
                .or_default()
                .sent
                .push(now);
            self.notices
                .entry(n.alert.key.clone())
                .or_insert_with(|| NoticeRecord {
                    first_sent: now,
                    delivered: BTreeSet::new(),
                })
                .delivered
                .insert(n.channel.clone());
        }
        self.notices
            .retain(|_, record| now - record.first_sent < NOTICE_RETENTION);
    }
}
