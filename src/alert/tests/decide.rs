//! The pure decision core: decide + apply with a controllable clock, no network.

use chrono::{DateTime, Utc};

use super::{alert, at, at_secs, config, dummy_channel};
use crate::alert::{Alert, AlertState, AlertingConfig, NotificationKind, Route, Severity, decide};

use NotificationKind::{Repeat, Resolve, Trigger};

/// Decides, pretends every send succeeded (or failed), applies; returns what was decided.
fn round(
    state: &mut AlertState,
    firing: &[Alert],
    config: &AlertingConfig,
    now: DateTime<Utc>,
    delivered: bool,
) -> Vec<(NotificationKind, String, String)> {
    let decision = decide(firing, state, config, now);
    let outcomes = vec![delivered; decision.notifications.len()];
    state.apply(&decision, &outcomes, now);
    decision
        .notifications
        .iter()
        .map(|n| (n.kind, n.channel.clone(), n.alert.key.clone()))
        .collect()
}

fn sent(kind: NotificationKind, channel: &str, key: &str) -> (NotificationKind, String, String) {
    (kind, channel.to_string(), key.to_string())
}

#[test]
fn trigger_then_quiet_then_repeat_then_resolve() {
    let config = config(vec![dummy_channel("chat")], vec![]);
    let mut state = AlertState::default();
    let firing = [alert("threshold/error-rate", Severity::P1)];

    assert_eq!(
        round(&mut state, &firing, &config, at(0), true),
        vec![sent(Trigger, "chat", "threshold/error-rate")]
    );
    // Still firing, inside the 30m repeat interval: nothing.
    assert!(round(&mut state, &firing, &config, at(1), true).is_empty());
    assert!(round(&mut state, &firing, &config, at(29), true).is_empty());
    assert_eq!(
        round(&mut state, &firing, &config, at(30), true),
        vec![sent(Repeat, "chat", "threshold/error-rate")]
    );
    // Repeat interval counts from the last notification.
    assert!(round(&mut state, &firing, &config, at(59), true).is_empty());
    let record = &state.alerts["threshold/error-rate"];
    assert_eq!(record.notifications, 2);
    assert_eq!(record.last_notified(), Some(at(30)));
    assert_eq!(record.severity(), Severity::P1);
    assert_eq!(record.notified_channels().collect::<Vec<_>>(), vec!["chat"]);
    assert_eq!(state.open_alerts().count(), 1);

    assert_eq!(
        round(&mut state, &[], &config, at(60), true),
        vec![sent(Resolve, "chat", "threshold/error-rate")]
    );
    assert!(
        state.alerts.is_empty(),
        "resolved alert forgotten: {state:?}"
    );
    assert!(round(&mut state, &[], &config, at(61), true).is_empty());
}

#[test]
fn no_repeat_interval_notifies_once() {
    let mut config = config(vec![dummy_channel("chat")], vec![]);
    config.repeat_interval = None;
    let mut state = AlertState::default();
    let firing = [alert("a", Severity::P2)];
    assert_eq!(round(&mut state, &firing, &config, at(0), true).len(), 1);
    assert!(round(&mut state, &firing, &config, at(600), true).is_empty());
}

#[test]
fn resolve_ends_at_is_when_it_stopped_even_if_sent_later() {
    let config = config(vec![dummy_channel("chat")], vec![]);
    let mut state = AlertState::default();
    round(
        &mut state,
        &[alert("a", Severity::P2)],
        &config,
        at(0),
        true,
    );
    // The first resolve attempt fails; the retry carries the original end time.
    assert_eq!(round(&mut state, &[], &config, at(5), false).len(), 1);
    let decision = decide(&[], &state, &config, at(6));
    assert_eq!(decision.notifications.len(), 1);
    assert_eq!(decision.notifications[0].ends_at, Some(at(5)));
}

#[test]
fn send_resolved_off_forgets_silently() {
    let mut config = config(vec![dummy_channel("chat")], vec![]);
    config.send_resolved = false;
    let mut state = AlertState::default();
    round(
        &mut state,
        &[alert("a", Severity::P2)],
        &config,
        at(0),
        true,
    );
    assert!(round(&mut state, &[], &config, at(1), true).is_empty());
    assert!(state.alerts.is_empty());
    // Firing again later is a new alert: triggered again.
    assert_eq!(
        round(
            &mut state,
            &[alert("a", Severity::P2)],
            &config,
            at(2),
            true
        ),
        vec![sent(Trigger, "chat", "a")]
    );
}

fn routed() -> AlertingConfig {
    config(
        vec![
            dummy_channel("pager"),
            dummy_channel("chat"),
            dummy_channel("mail"),
        ],
        vec![
            Route {
                severities: vec![Severity::P0],
                channels: vec!["pager".into()],
            },
            Route {
                severities: vec![Severity::P0, Severity::P1, Severity::P2],
                channels: vec!["chat".into()],
            },
            Route {
                severities: vec![Severity::P3],
                channels: vec!["mail".into()],
            },
        ],
    )
}

#[test]
fn routing_by_severity() {
    let config = routed();
    let mut state = AlertState::default();
    let mut decided = round(
        &mut state,
        &[alert("down", Severity::P0), alert("slow", Severity::P3)],
        &config,
        at(0),
        true,
    );
    decided.sort();
    let mut expected = vec![
        sent(Trigger, "pager", "down"),
        sent(Trigger, "chat", "down"),
        sent(Trigger, "mail", "slow"),
    ];
    expected.sort();
    assert_eq!(decided, expected);
}

#[test]
fn severity_change_retriggers_and_resolves_channels_no_longer_routed() {
    let config = routed();
    let mut state = AlertState::default();
    round(
        &mut state,
        &[alert("x", Severity::P0)],
        &config,
        at(0),
        true,
    );
    // P0 → P1: the pager no longer receives it (resolved there); chat gets the new severity.
    let mut decided = round(
        &mut state,
        &[alert("x", Severity::P1)],
        &config,
        at(1),
        true,
    );
    decided.sort();
    let mut expected = vec![sent(Resolve, "pager", "x"), sent(Trigger, "chat", "x")];
    expected.sort();
    assert_eq!(decided, expected);
    assert_eq!(state.alerts["x"].severity(), Severity::P1);
    assert!(
        round(
            &mut state,
            &[alert("x", Severity::P1)],
            &config,
            at(2),
            true
        )
        .is_empty()
    );
}

#[test]
fn failed_send_is_not_recorded_and_is_retried() {
    let config = config(vec![dummy_channel("chat")], vec![]);
    let mut state = AlertState::default();
    let firing = [alert("a", Severity::P1)];
    assert_eq!(
        round(&mut state, &firing, &config, at(0), false),
        vec![sent(Trigger, "chat", "a")]
    );
    assert!(
        state.alerts.get("a").is_none_or(|r| r.notified.is_empty()),
        "a failed send must not be marked: {state:?}"
    );
    assert_eq!(
        round(&mut state, &firing, &config, at(1), true),
        vec![sent(Trigger, "chat", "a")]
    );
    assert!(round(&mut state, &firing, &config, at(2), true).is_empty());
}

#[test]
fn partial_failure_only_retries_the_failed_channel() {
    let config = config(vec![dummy_channel("chat"), dummy_channel("pager")], vec![]);
    let mut state = AlertState::default();
    let firing = [alert("a", Severity::P1)];
    let decision = decide(&firing, &state, &config, at(0));
    let delivered: Vec<bool> = decision
        .notifications
        .iter()
        .map(|n| n.channel == "chat")
        .collect();
    state.apply(&decision, &delivered, at(0));
    assert_eq!(
        round(&mut state, &firing, &config, at(1), true),
        vec![sent(Trigger, "pager", "a")]
    );
}

#[test]
fn state_survives_serialization_and_sends_nothing_new() {
    let config = routed();
    let mut state = AlertState::default();
    let firing = [alert("down", Severity::P0), alert("slow", Severity::P3)];
    round(&mut state, &firing, &config, at(0), true);
    let stored = serde_json::to_string(&state).unwrap_or_default();
    assert!(
        stored.contains("\"lastNotified\""),
        "camelCase state: {stored}"
    );
    // A new operator (restart, new leader) reads the status back.
    let mut restored: AlertState = serde_json::from_str(&stored).unwrap_or_default();
    assert_eq!(restored, state);
    assert!(round(&mut restored, &firing, &config, at(5), true).is_empty());
    // And it still knows when to repeat and what to resolve.
    assert_eq!(
        round(&mut restored, &firing, &config, at(30), true).len(),
        3
    );
    assert_eq!(
        round(&mut restored, &[], &config, at(31), true)
            .iter()
            .filter(|n| n.0 == Resolve)
            .count(),
        3
    );
}

#[test]
fn rate_limit_drops_least_severe_and_counts() {
    let mut config = config(vec![dummy_channel("chat")], vec![]);
    config.max_notifications_per_hour = Some(2);
    config.repeat_interval = None;
    let mut state = AlertState::default();
    let firing = [
        alert("c-low", Severity::P3),
        alert("a-top", Severity::P0),
        alert("b-mid", Severity::P1),
    ];
    let decision = decide(&firing, &state, &config, at(0));
    let keys: Vec<&str> = decision
        .notifications
        .iter()
        .map(|n| n.alert.key.as_str())
        .collect();
    assert_eq!(keys, vec!["a-top", "b-mid"]);
    assert_eq!(decision.dropped.len(), 1);
    assert_eq!(decision.dropped[0].notification.alert.key, "c-low");
    let ok = vec![true; decision.notifications.len()];
    state.apply(&decision, &ok, at(0));
    assert_eq!(state.channels["chat"].dropped, 1);
    assert_eq!(state.dropped_total(), 1);

    // The dropped one is held back (not re-dropped every round) ...
    assert!(round(&mut state, &firing, &config, at(10), true).is_empty());
    assert_eq!(state.dropped_total(), 1);
    // ... and goes out once the hour has freed the budget.
    assert_eq!(
        round(&mut state, &firing, &config, at(60), true),
        vec![sent(Trigger, "chat", "c-low")]
    );
}

#[test]
fn resolves_are_never_dropped_but_use_the_budget() {
    let mut config = config(vec![dummy_channel("chat")], vec![]);
    config.max_notifications_per_hour = Some(2);
    let mut state = AlertState::default();
    round(
        &mut state,
        &[alert("a", Severity::P1), alert("b", Severity::P1)],
        &config,
        at(0),
        true,
    );
    // Budget exhausted; both resolve anyway, and a new alert is dropped.
    let decision = decide(&[alert("c", Severity::P0)], &state, &config, at(1));
    assert_eq!(decision.notifications.len(), 2);
    assert!(decision.notifications.iter().all(|n| n.kind == Resolve));
    assert_eq!(decision.dropped.len(), 1);
}

#[test]
fn removed_channel_is_forgotten() {
    let config_before = config(vec![dummy_channel("chat"), dummy_channel("old")], vec![]);
    let mut state = AlertState::default();
    round(
        &mut state,
        &[alert("a", Severity::P1)],
        &config_before,
        at(0),
        true,
    );
    let config_after = config(vec![dummy_channel("chat")], vec![]);
    assert!(
        round(
            &mut state,
            &[alert("a", Severity::P1)],
            &config_after,
            at(1),
            true
        )
        .is_empty()
    );
    assert_eq!(
        state.alerts["a"].notified_channels().collect::<Vec<_>>(),
        vec!["chat"]
    );
}

#[test]
fn duplicate_keys_in_one_round_count_once_at_the_highest_severity() {
    let config = config(vec![dummy_channel("chat")], vec![]);
    let decision = decide(
        &[alert("a", Severity::P2), alert("a", Severity::P0)],
        &AlertState::default(),
        &config,
        at(0),
    );
    assert_eq!(decision.notifications.len(), 1);
    assert_eq!(decision.notifications[0].alert.severity, Severity::P0);
}

fn alertmanager_channel(name: &str) -> crate::alert::Channel {
    crate::alert::Channel {
        name: name.into(),
        sink: crate::alert::SinkConfig::Alertmanager(crate::alert::AlertmanagerConfig {
            url: "http://127.0.0.1:9".into(),
            bearer_token: None,
        }),
    }
}

#[test]
fn alertmanager_is_refreshed_outside_the_rate_limit_and_uncounted() {
    let mut config = config(vec![alertmanager_channel("am")], vec![]);
    config.max_notifications_per_hour = Some(1);
    config.repeat_interval = None;
    let mut state = AlertState::default();
    let firing = [alert("a", Severity::P1)];
    assert_eq!(
        round(&mut state, &firing, &config, at(0), true),
        vec![sent(Trigger, "am", "a")]
    );
    // Budget used up, no repeat interval: still refreshed every minute so Alertmanager
    // does not let it expire, without counting as notifications.
    for minute in 1..=5 {
        let decision = decide(&firing, &state, &config, at(minute));
        assert_eq!(decision.notifications.len(), 1, "minute {minute}");
        assert!(decision.notifications[0].refresh);
        assert!(decision.dropped.is_empty());
        state.apply(&decision, &[true], at(minute));
    }
    assert!(
        decide(&firing, &state, &config, at(5))
            .notifications
            .is_empty()
    );
    let record = &state.alerts["a"];
    assert_eq!(record.notifications, 1);
    assert_eq!(record.last_notified(), Some(at(0)));
    assert_eq!(state.channels["am"].sent.len(), 1);
}

#[test]
fn alertmanager_severity_change_ends_the_old_label_set() {
    let mut config = config(vec![alertmanager_channel("am")], vec![]);
    config.send_resolved = false;
    let mut state = AlertState::default();
    round(
        &mut state,
        &[alert("a", Severity::P2)],
        &config,
        at(0),
        true,
    );
    let decision = decide(&[alert("a", Severity::P0)], &state, &config, at_secs(30));
    let kinds: Vec<(NotificationKind, Severity)> = decision
        .notifications
        .iter()
        .map(|n| (n.kind, n.alert.severity))
        .collect();
    assert_eq!(
        kinds,
        vec![(Resolve, Severity::P2), (Trigger, Severity::P0)]
    );
    state.apply(&decision, &[true, true], at_secs(30));
    assert_eq!(state.alerts["a"].notified["am"].severity, Severity::P0);
    // Even with sendResolved off, Alertmanager learns the alert ended.
    assert_eq!(
        round(&mut state, &[], &config, at(1), true),
        vec![sent(Resolve, "am", "a")]
    );
}

/// The persisted form is part of the status API: a document written by this version must keep
/// reading back, and mean "already notified".
#[test]
fn persisted_document_reads_back_and_means_already_notified() {
    let stored = r#"{
      "alerts": {
        "threshold/error-rate": {
          "alert": {
            "key": "threshold/error-rate",
            "severity": "P1",
            "summary": "API error rate 7.5% > 5%",
            "labels": {"monitor": "api"},
            "source": "HealthMonitor prod/api",
            "startsAt": "2026-03-01T11:57:00Z"
          },
          "notified": {
            "chat": {"lastNotified": "2026-03-01T12:00:00Z", "severity": "P1", "count": 1}
          },
          "notifications": 1
        }
      },
      "channels": {"chat": {"sent": ["2026-03-01T12:00:00Z"], "dropped": 2}}
    }"#;
    let mut state: AlertState = serde_json::from_str(stored).unwrap_or_default();
    assert_eq!(state.alerts.len(), 1, "document must parse");
    assert_eq!(state.dropped_total(), 2);
    let config = config(vec![dummy_channel("chat")], vec![]);
    let firing = [alert("threshold/error-rate", Severity::P1)];
    assert!(round(&mut state, &firing, &config, at(10), true).is_empty());
    assert_eq!(
        round(&mut state, &firing, &config, at(30), true),
        vec![sent(Repeat, "chat", "threshold/error-rate")]
    );
}
