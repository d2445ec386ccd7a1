//! Open-alert entries for status and the state rebuilt from them.

use super::{alert, at, config, dummy_channel};
use crate::alert::{AlertState, NotificationKind, OpenAlertEntry, Route, Severity, decide};

#[test]
fn entries_rebuild_a_state_that_sends_no_duplicate_and_still_resolves() {
    let config = config(
        vec![dummy_channel("pager"), dummy_channel("chat")],
        vec![
            Route {
                severities: vec![Severity::P0],
                channels: vec!["pager".into(), "chat".into()],
            },
            Route {
                severities: vec![Severity::P2],
                channels: vec!["chat".into()],
            },
        ],
    );
    let firing = [alert("down", Severity::P0), alert("slow", Severity::P2)];
    let mut state = AlertState::default();
    let decision = decide(&firing, &state, &config, at(0));
    // The pager refuses: "down" is open on chat only.
    let delivered: Vec<bool> = decision
        .notifications
        .iter()
        .map(|n| n.channel == "chat")
        .collect();
    state.apply(&decision, &delivered, at(0));

    let entries = state.open_entries();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].key, "down", "most severe first");
    assert_eq!(entries[0].channels, vec!["chat"]);
    assert_eq!(entries[0].last_notified, Some(at(0)));
    assert_eq!(entries[0].summary.as_deref(), Some("down is failing"));

    let json = serde_json::to_string(&entries).unwrap_or_default();
    let entries: Vec<OpenAlertEntry> = serde_json::from_str(&json).unwrap_or_default();
    let restored = AlertState::from_open_entries(&entries, &config);

    // Same decision as the original state would make: only the pager's owed trigger.
    let again = decide(&firing, &restored, &config, at(1));
    let sent: Vec<(&str, &str)> = again
        .notifications
        .iter()
        .map(|n| (n.channel.as_str(), n.alert.key.as_str()))
        .collect();
    assert_eq!(sent, vec![("pager", "down")]);

    let resolves = decide(&[], &restored, &config, at(2));
    assert_eq!(resolves.notifications.len(), 2);
    assert!(
        resolves
            .notifications
            .iter()
            .all(|n| n.kind == NotificationKind::Resolve && n.channel == "chat")
    );
}

#[test]
fn entries_without_channels_assume_the_routed_ones() {
    let config = config(vec![dummy_channel("pager"), dummy_channel("chat")], vec![]);
    let entries = vec![OpenAlertEntry {
        key: "db".into(),
        severity: Severity::P1,
        since: at(-10),
        last_notified: Some(at(-5)),
        summary: None,
        channels: vec![],
    }];
    let restored = AlertState::from_open_entries(&entries, &config);
    assert!(
        decide(&[alert("db", Severity::P1)], &restored, &config, at(0))
            .notifications
            .is_empty()
    );
    // The repeat interval (30m) counts from lastNotified.
    assert_eq!(
        decide(&[alert("db", Severity::P1)], &restored, &config, at(25))
            .notifications
            .len(),
        2
    );
}
