use std::collections::BTreeMap;

use chrono::TimeZone;
use chrono_tz::Tz;

use super::*;
use crate::schedule::{CronSchedule, WindowSchedule};

fn t(d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, d, h, 0, 0).unwrap()
}

fn weekly(description: Option<&str>) -> IndexedWindow {
    IndexedWindow {
        namespace: "ops".into(),
        name: "weekly".into(),
        description: description.map(str::to_string),
        schedule_text: "0 2 * * 2 for 2h (UTC)".into(),
        schedule: WindowSchedule::Cron {
            cron: CronSchedule::parse("0 2 * * 2", Tz::UTC).unwrap(),
            duration: std::time::Duration::from_secs(7200),
        },
        selector: None,
        effects: Effects {
            suppress_alerts: true,
            pause_backups: true,
            ..Effects::default()
        },
        closed_early: None,
    }
}

/// Unfolds and splits an iCalendar text into (name, unescaped value) pairs, checking the
/// physical line rules on the way.
fn parse(text: &str) -> Vec<(String, String)> {
    assert!(text.ends_with("\r\n"));
    for physical in text.split_terminator("\r\n") {
        assert!(physical.len() <= 75, "line over 75 octets: {physical:?}");
        assert!(!physical.contains('\n') && !physical.contains('\r'));
    }
    let unfolded = text.replace("\r\n ", "");
    unfolded
        .split_terminator("\r\n")
        .map(|line| {
            let (name, value) = line.split_once(':').expect("NAME:value");
            let mut out = String::new();
            let mut chars = value.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    match chars.next() {
                        Some('n') | Some('N') => out.push('\n'),
                        Some(other) => out.push(other),
                        None => panic!("dangling backslash"),
                    }
                } else {
                    assert!(c != ';' && c != ',', "unescaped {c:?} in {value:?}");
                    out.push(c);
                }
            }
            (name.to_string(), out)
        })
        .collect()
}

fn events(pairs: &[(String, String)]) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    let mut current: Option<BTreeMap<String, String>> = None;
    for (name, value) in pairs {
        match (name.as_str(), value.as_str()) {
            ("BEGIN", "VEVENT") => current = Some(BTreeMap::new()),
            ("END", "VEVENT") => out.push(current.take().expect("END after BEGIN")),
            _ => {
                if let Some(event) = current.as_mut() {
                    event.insert(name.clone(), value.clone());
                }
            }
        }
    }
    out
}

#[test]
fn upcoming_lists_open_and_next_occurrences_in_order() {
    // Tuesday 3 March 2026 03:00: the window 02:00-04:00 is open.
    let entries = upcoming(&[weekly(None)], t(3, 3));
    assert_eq!(entries.len(), FEED_WINDOWS);
    assert_eq!((entries[0].start, entries[0].end), (t(3, 2), t(3, 4)));
    assert_eq!(entries[1].start, t(10, 2));
    assert_eq!(entries[0].effects, ["suppressAlerts", "pauseBackups"]);
    let uids: std::collections::BTreeSet<_> = entries.iter().map(|e| &e.uid).collect();
    assert_eq!(uids.len(), entries.len(), "one UID per occurrence");
    // Stable: a later fetch names the same occurrence the same way.
    assert_eq!(
        upcoming(&[weekly(None)], t(3, 3) + TimeDelta::minutes(30))[1].uid,
        entries[1].uid
    );
    assert_eq!(
        entries[0].uid,
        "20260303T020000Z-weekly.ops@watchkeeper.dev"
    );
}

#[test]
fn ics_parses_back_with_escaping_and_folding() {
    let description = "Datenbank-Wartung – VACUUM; REINDEX, Archiv \\ alt\nRead-only für 30–60 Minuten, \
        bitte keine Deployments während des Fensters (ünïcödé text long enough to fold twice)";
    let entries = upcoming(&[weekly(Some(description))], t(3, 3));
    let text = to_ics(&entries[..2], t(3, 3));
    let pairs = parse(&text);
    assert_eq!(
        pairs.first().unwrap(),
        &("BEGIN".to_string(), "VCALENDAR".to_string())
    );
    assert_eq!(
        pairs.last().unwrap(),
        &("END".to_string(), "VCALENDAR".to_string())
    );
    assert!(pairs.contains(&("VERSION".into(), "2.0".into())));
    assert!(pairs.iter().any(|(n, _)| n == "PRODID"));
    let events = events(&pairs);
    assert_eq!(events.len(), 2);
    let first = &events[0];
    assert_eq!(first["UID"], entries[0].uid);
    assert_eq!(first["DTSTART"], "20260303T020000Z");
    assert_eq!(first["DTEND"], "20260303T040000Z");
    assert_eq!(first["DTSTAMP"], "20260303T030000Z");
    assert!(
        first["DESCRIPTION"].starts_with(description),
        "{}",
        first["DESCRIPTION"]
    );
    assert!(first["DESCRIPTION"].contains("MaintenanceWindow ops/weekly"));
    assert_eq!(
        first["SUMMARY"],
        "Maintenance: Datenbank-Wartung – VACUUM; REINDEX, Archiv \\ alt"
    );
    assert_eq!(events[1]["DTSTART"], "20260310T020000Z");
    // Folding happened (the description is far longer than one line) and never split a
    // multi-byte character: every physical line is valid UTF-8 by construction of &str.
    assert!(text.contains("\r\n "));
}

#[test]
fn folding_respects_the_octet_limit_at_character_boundaries() {
    for len in [74, 75, 76, 149, 150, 151] {
        for c in ['a', 'é', '€', '😀'] {
            let value: String = std::iter::repeat_n(c, len).collect();
            let mut out = String::new();
            fold(&format!("X:{value}"), &mut out);
            let pairs = parse(&out);
            assert_eq!(pairs, [("X".to_string(), value.clone())]);
        }
    }
}

#[test]
fn json_lists_entries() {
    let entries = upcoming(&[weekly(Some("db"))], t(3, 3));
    let json = to_json(&entries[..1], t(3, 3));
    assert_eq!(json["windows"][0]["namespace"], "ops");
    assert_eq!(json["windows"][0]["start"], "2026-03-03T02:00:00Z");
    assert_eq!(json["windows"][0]["end"], "2026-03-03T04:00:00Z");
    assert_eq!(json["windows"][0]["description"], "db");
    assert_eq!(json["generated"], "2026-03-03T03:00:00Z");
}
