//! Persisted alert state and the pure decision core.
//!
//! [`AlertState`] is everything the engine must remember between rounds: per alert key, which
//! channels were told (and when, how often, at which severity), and per channel the send times
//! of the last hour (rate limit) and the count of dropped notifications. It serializes to a
//! small JSON object (camelCase, RFC 3339 times) meant to live in a resource's status, so a
//! restarted operator or a new leader rebuilds the engine from it and sends nothing twice.
//!
//! [`decide`] is pure: firing alerts + state + config + now → [`Decision`]. The dispatcher sends
//! the decision's notifications and hands the outcomes to [`AlertState::apply`], which records
//! successes only: a failed send leaves the state as it was and is decided again next round.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::{Alert, AlertingConfig, Notification, NotificationKind, Severity, SinkConfig, route};

/// Length of the rate-limit window.
pub const RATE_WINDOW: TimeDelta = TimeDelta::hours(1);

/// How often a firing alert is re-posted to an Alertmanager channel. Alertmanager treats an
/// alert as resolved once its `endsAt` passes, so firing alerts are posted with
/// `endsAt = now + ALERTMANAGER_VALID_FOR` and refreshed at this cadence (as Prometheus does);
/// Alertmanager de-duplicates the re-posts and applies its own repeat interval to humans.
pub const ALERTMANAGER_REFRESH: TimeDelta = TimeDelta::minutes(1);

/// How long one post keeps an alert firing in Alertmanager without a refresh: long enough to
/// bridge rounds that come minutes apart, short enough that an alert whose source went silent
/// (operator gone for good) resolves there by itself.
pub const ALERTMANAGER_VALID_FOR: TimeDelta = TimeDelta::minutes(15);

/// Everything the engine remembers; store it in status and hand it back after a restart.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertState {
    /// Per alert key: alerts that were notified (or dropped by the rate limit) and are firing,
    /// or resolved with resolve notifications still owed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub alerts: BTreeMap<String, AlertRecord>,
    /// Per channel name: rate-limit bookkeeping.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub channels: BTreeMap<String, ChannelRecord>,
    /// Per notice key: which channels already have the notice (see [`super::notice`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub notices: BTreeMap<String, super::notice::NoticeRecord>,
}

/// What is remembered about one alert key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertRecord {
    /// The alert as last notified: resolves are sent with these labels (Alertmanager matches
    /// alerts by label set) and this summary.
    pub alert: Alert,
    /// Channels that were told about the alert and not yet told it resolved.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub notified: BTreeMap<String, ChannelMark>,
    /// Channels whose notification was dropped by the rate limit, with the time before which
    /// it is not tried again (one repeat interval, or one hour without repeats).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub suppressed_until: BTreeMap<String, DateTime<Utc>>,
    /// Successful notifications of this alert, all channels and kinds together.
    #[serde(default)]
    pub notifications: u32,
    /// When the alert was first seen not firing; resolves are owed to `notified` channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
}

impl AlertRecord {
    /// Severity the alert was last notified with.
    pub fn severity(&self) -> Severity {
        self.alert.severity
    }

    /// When the condition started.
    pub fn since(&self) -> DateTime<Utc> {
        self.alert.starts_at
    }

    /// Last successful notification to any channel.
    pub fn last_notified(&self) -> Option<DateTime<Utc>> {
        self.notified.values().map(|m| m.last_notified).max()
    }

    /// Names of the channels currently holding this alert as open.
    pub fn notified_channels(&self) -> impl Iterator<Item = &str> {
        self.notified.keys().map(String::as_str)
    }
}

/// One channel's knowledge of one alert.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelMark {
    /// Last successful trigger or repeat.
    pub last_notified: DateTime<Utc>,
    /// Severity the channel was told.
    pub severity: Severity,
    /// Successful triggers and repeats to this channel.
    pub count: u32,
    /// Last Alertmanager keep-alive re-post (not counted as a notification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_refreshed: Option<DateTime<Utc>>,
}

/// Rate-limit bookkeeping of one channel.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelRecord {
    /// Times of successful sends within the last [`RATE_WINDOW`] (older ones are pruned).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sent: Vec<DateTime<Utc>>,
    /// Notifications dropped by the rate limit since the state was created.
    #[serde(default)]
    pub dropped: u64,
}

/// A notification the rate limit did not let through.
#[derive(Clone, Debug, PartialEq)]
pub struct Dropped {
    /// What would have been sent.
    pub notification: Notification,
}

/// The outcome of [`decide`]: what to send, what the rate limit dropped, what to forget.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decision {
    /// Notifications to send now, resolves first, then the most severe.
    pub notifications: Vec<Notification>,
    /// Notifications dropped by the per-channel rate limit.
    pub dropped: Vec<Dropped>,
    /// (alert key, channel) marks to drop without notifying: resolves when `send_resolved` is
    /// off, channels that were removed from the configuration or no longer routed.
    pub forget: Vec<(String, String)>,
    /// Keys firing this round (deduplicated).
    pub firing: BTreeSet<String>,
    /// The repeat interval in force, used to time suppression after a drop.
    repeat_interval: Option<TimeDelta>,
}

fn to_delta(d: std::time::Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// Decides what to send this round. Pure: the same inputs give the same decision.
///
/// For every firing alert and every channel its severity routes to:
/// - never told (or told a different severity) → `Trigger`;
/// - told, `repeat_interval` elapsed since the last notification → `Repeat`;
/// - dropped by the rate limit until a later time → nothing yet.
///
/// For every remembered alert that is not firing, each channel that was told gets a `Resolve`
/// (or is forgotten when `send_resolved` is off). Channels that were told but are no longer
/// routed for the alert's severity get a `Resolve` too, so nothing stays open there forever.
///
/// Rate limit: per channel, at most `max_notifications_per_hour` successful sends in any
/// rolling hour. Resolves are never dropped (a channel that was told of a problem is always told
/// it ended) but count against the budget; triggers and repeats beyond it are dropped, the most
/// severe alerts being served first.
pub fn decide(
    firing: &[Alert],
    state: &AlertState,
    config: &AlertingConfig,
    now: DateTime<Utc>,
) -> Decision {
    let repeat = config.repeat_interval.map(to_delta);
    let configured: BTreeSet<&str> = config.channels.iter().map(|c| c.name.as_str()).collect();

    // One alert per key; the most severe wins if a caller reports a key twice.
    let mut current: BTreeMap<&str, &Alert> = BTreeMap::new();
    for alert in firing {
        current
            .entry(alert.key.as_str())
            .and_modify(|a| {
                if alert.severity < a.severity {
                    *a = alert;
                }
            })
            .or_insert(alert);
    }

    let alertmanager_channels: BTreeSet<&str> = config
        .channels
        .iter()
        .filter(|c| matches!(c.sink, SinkConfig::Alertmanager(_)))
        .map(|c| c.name.as_str())
        .collect();

    let mut resolves = Vec::new();
    let mut refreshes = Vec::new();
    let mut wanted = Vec::new();
    let mut forget = Vec::new();

    for (key, alert) in &current {
        let record = state.alerts.get(*key);
        let targets = route::channels_for(config, alert.severity);
        for channel in &targets {
            let mark = record.and_then(|r| r.notified.get(*channel));
            let suppressed = record
                .and_then(|r| r.suppressed_until.get(*channel))
                .is_some_and(|until| *until > now);
            let alertmanager = alertmanager_channels.contains(channel);
            let (kind, refresh) = match mark {
                None => (Some(NotificationKind::Trigger), false),
                Some(m) if m.severity != alert.severity => {
                    if alertmanager && let Some(record) = record {
                        // Alertmanager knows the old severity as another label set: end it.
                        resolves.push(resolve(&record.alert, channel, m, now, now));
                    }
                    (Some(NotificationKind::Trigger), false)
                }
                Some(m) if alertmanager => {
                    let last = m
                        .last_refreshed
                        .map_or(m.last_notified, |r| r.max(m.last_notified));
                    let due = now - last >= ALERTMANAGER_REFRESH;
                    (due.then_some(NotificationKind::Repeat), true)
                }
                Some(m) => (
                    repeat
                        .filter(|r| now - m.last_notified >= *r)
                        .map(|_| NotificationKind::Repeat),
                    false,
                ),
            };
            if let Some(kind) = kind.filter(|_| refresh || !suppressed) {
                let n = Notification {
                    kind,
                    channel: (*channel).to_string(),
                    alert: (*alert).clone(),
                    ends_at: None,
                    previous_count: mark.map_or(0, |m| m.count),
                    sent_at: now,
                    refresh,
                };
                if refresh {
                    refreshes.push(n);
                } else {
                    wanted.push(n);
                }
            }
        }
        // Told before, not routed any more (severity or routes changed).
        if let Some(record) = record {
            for (channel, mark) in &record.notified {
                if !targets.contains(&channel.as_str()) {
                    owe_resolve(
                        config,
                        &configured,
                        &record.alert,
                        channel,
                        mark,
                        now,
                        now,
                        &alertmanager_channels,
                        &mut resolves,
                        &mut forget,
                    );
                }
            }
        }
    }

    for (key, record) in &state.alerts {
        if current.contains_key(key.as_str()) {
            continue;
        }
        let ends_at = record.resolved_at.unwrap_or(now);
        for (channel, mark) in &record.notified {
            owe_resolve(
                config,
                &configured,
                &record.alert,
                channel,
                mark,
                ends_at,
                now,
                &alertmanager_channels,
                &mut resolves,
                &mut forget,
            );
        }
    }

    // Rate limit.
    let mut budget: BTreeMap<&str, Option<u32>> = BTreeMap::new();
    for channel in &config.channels {
        let left = config.max_notifications_per_hour.map(|max| {
            let used = state.channels.get(&channel.name).map_or(0, |c| {
                c.sent.iter().filter(|t| now - **t < RATE_WINDOW).count()
            });
            max.saturating_sub(u32::try_from(used).unwrap_or(u32::MAX))
        });
        budget.insert(channel.name.as_str(), left);
    }
    wanted.sort_by(|a, b| {
        (a.alert.severity, &a.alert.key, &a.channel).cmp(&(
            b.alert.severity,
            &b.alert.key,
            &b.channel,
        ))
    });
    for n in &resolves {
        if let Some(Some(left)) = budget.get_mut(n.channel.as_str()) {
            *left = left.saturating_sub(1);
        }
    }
    let mut notifications = resolves;
    notifications.append(&mut refreshes);
    let mut dropped = Vec::new();
    for n in wanted {
        match budget.get_mut(n.channel.as_str()) {
            Some(Some(0)) => dropped.push(Dropped { notification: n }),
            Some(Some(left)) => {
                *left -= 1;
                notifications.push(n);
            }
            _ => notifications.push(n),
        }
    }

    Decision {
        notifications,
        dropped,
        forget,
        firing: current.keys().map(|k| (*k).to_string()).collect(),
        repeat_interval: repeat,
    }
}

#[allow(clippy::too_many_arguments)]
fn owe_resolve(
    config: &AlertingConfig,
    configured: &BTreeSet<&str>,
    alert: &Alert,
    channel: &str,
    mark: &ChannelMark,
    ends_at: DateTime<Utc>,
    now: DateTime<Utc>,
    alertmanager: &BTreeSet<&str>,
    resolves: &mut Vec<Notification>,
    forget: &mut Vec<(String, String)>,
) {
    // Alertmanager always learns that an alert ended (its own receivers decide whether
    // people hear about it); otherwise it would keep it firing until `endsAt`.
    let wanted = config.send_resolved || alertmanager.contains(channel);
    if wanted && configured.contains(channel) {
        resolves.push(resolve(alert, channel, mark, ends_at, now));
    } else {
        forget.push((alert.key.clone(), channel.to_string()));
    }
}

fn resolve(
    alert: &Alert,
    channel: &str,
    mark: &ChannelMark,
    ends_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Notification {
    Notification {
        kind: NotificationKind::Resolve,
        channel: channel.to_string(),
        alert: alert.clone(),
        ends_at: Some(ends_at),
        previous_count: mark.count,
        sent_at: now,
        refresh: false,
    }
}

impl AlertState {
    /// Records what happened to a decision. `delivered[i]` says whether
    /// `decision.notifications[i]` was accepted by its receiver; only accepted ones change the
    /// state, so failed sends are decided again next round. Also records drops, forgets marks,
    /// notes which alerts stopped firing, and prunes what is no longer needed.
    pub fn apply(&mut self, decision: &Decision, delivered: &[bool], now: DateTime<Utc>) {
        for key in &decision.firing {
            if let Some(record) = self.alerts.get_mut(key) {
                record.resolved_at = None;
            }
        }
        for (key, record) in &mut self.alerts {
            if !decision.firing.contains(key) && record.resolved_at.is_none() {
                record.resolved_at = Some(now);
            }
        }

        for (n, ok) in decision.notifications.iter().zip(delivered) {
            // Notices never come out of `decide`; they are recorded by `apply_notice`.
            if !*ok || n.kind == NotificationKind::Notice {
                continue;
            }
            if n.refresh {
                if let Some(record) = self.alerts.get_mut(&n.alert.key) {
                    if let Some(mark) = record.notified.get_mut(&n.channel) {
                        mark.last_refreshed = Some(now);
                    }
                    record.alert = n.alert.clone();
                }
                continue;
            }
            self.channels
                .entry(n.channel.clone())
                .or_default()
                .sent
                .push(now);
            let record = self
                .alerts
                .entry(n.alert.key.clone())
                .or_insert_with(|| new_record(&n.alert));
            record.notifications = record.notifications.saturating_add(1);
            match n.kind {
                NotificationKind::Resolve => {
                    record.notified.remove(&n.channel);
                }
                NotificationKind::Notice => {}
                NotificationKind::Trigger | NotificationKind::Repeat => {
                    record.alert = n.alert.clone();
                    record.suppressed_until.remove(&n.channel);
                    let mark = record
                        .notified
                        .entry(n.channel.clone())
                        .or_insert(ChannelMark {
                            last_notified: now,
                            severity: n.alert.severity,
                            count: 0,
                            last_refreshed: None,
                        });
                    mark.last_notified = now;
                    mark.severity = n.alert.severity;
                    mark.count = mark.count.saturating_add(1);
                }
            }
        }

        let hold = decision.repeat_interval.unwrap_or(RATE_WINDOW);
        for d in &decision.dropped {
            let n = &d.notification;
            self.channels.entry(n.channel.clone()).or_default().dropped += 1;
            let record = self
                .alerts
                .entry(n.alert.key.clone())
                .or_insert_with(|| new_record(&n.alert));
            record
                .suppressed_until
                .insert(n.channel.clone(), now + hold);
        }

        for (key, channel) in &decision.forget {
            if let Some(record) = self.alerts.get_mut(key) {
                record.notified.remove(channel);
            }
        }

        // Prune: finished alerts, expired suppressions, old send times.
        self.alerts.retain(|key, record| {
            record.suppressed_until.retain(|_, until| *until > now);
            let firing = decision.firing.contains(key);
            firing || !record.notified.is_empty()
        });
        for record in self.channels.values_mut() {
            record.sent.retain(|t| now - *t < RATE_WINDOW);
        }
    }

    /// Alerts currently open (firing and told to at least one channel), for status.
    pub fn open_alerts(&self) -> impl Iterator<Item = &AlertRecord> {
        self.alerts
            .values()
            .filter(|r| r.resolved_at.is_none() && !r.notified.is_empty())
    }

    /// Notifications dropped by the rate limit so far, all channels together.
    pub fn dropped_total(&self) -> u64 {
        self.channels.values().map(|c| c.dropped).sum()
    }
}

fn new_record(alert: &Alert) -> AlertRecord {
    AlertRecord {
        alert: alert.clone(),
        notified: BTreeMap::new(),
        suppressed_until: BTreeMap::new(),
        notifications: 0,
        resolved_at: None,
    }
}
