//! Calendar feeds of upcoming maintenance windows: iCalendar (RFC 5545) and JSON. Pure
//! formatting; the controller's HTTP server serves them as `/maintenance.ics` and
//! `/maintenance.json`.
//!
//! Each window occurrence is one `VEVENT` whose `UID` is built from the MaintenanceWindow's
//! namespace, name and the occurrence's start, so a calendar that re-fetches the feed updates
//! the same events instead of duplicating them. Times are UTC (`DTSTART:20260303T020000Z`), so
//! no `VTIMEZONE` is needed. Text is escaped (`\\`, `\;`, `\,`, `\n`) and lines longer than
//! 75 octets are folded (CRLF + space), never inside a UTF-8 character.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::index::{Effects, IndexedWindow};

/// How many upcoming windows of each MaintenanceWindow a feed lists.
pub const FEED_WINDOWS: usize = 10;

/// How far ahead a feed looks.
pub const FEED_HORIZON: TimeDelta = TimeDelta::days(400);

/// Longest line of an iCalendar file in octets, without the CRLF (RFC 5545 §3.1).
const MAX_LINE: usize = 75;

/// One window occurrence in a feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedEntry {
    /// Stable identifier of this occurrence (the iCalendar `UID`).
    pub uid: String,
    /// The MaintenanceWindow's namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its description, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The schedule in one line.
    pub schedule: String,
    /// When the window opens.
    pub start: DateTime<Utc>,
    /// When it closes.
    pub end: DateTime<Utc>,
    /// Effects on selected watchkeeper resources, e.g. `suppressAlerts`.
    pub effects: Vec<&'static str>,
}

/// The occurrences of `windows` that end after `now` (an open one included), up to
/// [`FEED_WINDOWS`] each within [`FEED_HORIZON`], ordered by start.
pub fn upcoming(windows: &[IndexedWindow], now: DateTime<Utc>) -> Vec<FeedEntry> {
    let mut out = Vec::new();
    for window in windows {
        let found = window.windows_between(now, now + FEED_HORIZON);
        for occurrence in found.into_iter().take(FEED_WINDOWS) {
            out.push(FeedEntry {
                uid: uid(&window.namespace, &window.name, occurrence.start),
                namespace: window.namespace.clone(),
                name: window.name.clone(),
                description: window.description.clone(),
                schedule: window.schedule_text.clone(),
                start: occurrence.start,
                end: occurrence.end,
                effects: effect_names(window.effects),
            });
        }
    }
    out.sort_by(|a, b| (a.start, &a.uid).cmp(&(b.start, &b.uid)));
    out
}

/// The `UID` of one occurrence: stable across fetches and controller restarts.
pub fn uid(namespace: &str, name: &str, start: DateTime<Utc>) -> String {
    format!("{}-{name}.{namespace}@watchkeeper.dev", utc_stamp(start))
}

fn effect_names(effects: Effects) -> Vec<&'static str> {
    [
        (effects.suppress_alerts, "suppressAlerts"),
        (effects.exclude_from_statistics, "excludeFromStatistics"),
        (effects.suspend_jobs, "suspendCronJobs"),
        (effects.pause_backups, "pauseBackups"),
        (effects.block_failover, "blockFailover"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect()
}

/// `20260303T020000Z`.
fn utc_stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// The JSON feed: `{"generated": …, "windows": [FeedEntry…]}`.
pub fn to_json(entries: &[FeedEntry], now: DateTime<Utc>) -> serde_json::Value {
    serde_json::json!({ "generated": now, "windows": entries })
}

/// The iCalendar feed (`text/calendar`), one `VEVENT` per entry; `now` is the `DTSTAMP`.
pub fn to_ics(entries: &[FeedEntry], now: DateTime<Utc>) -> String {
    let mut lines: Vec<String> = vec![
        "BEGIN:VCALENDAR".into(),
        "VERSION:2.0".into(),
        "PRODID:-//watchkeeper.dev//watchkeeper maintenance windows//EN".into(),
        "CALSCALE:GREGORIAN".into(),
        "METHOD:PUBLISH".into(),
        "X-WR-CALNAME:Maintenance windows".into(),
    ];
    for entry in entries {
        let mut description = format!(
            "MaintenanceWindow {}/{}\nSchedule: {}",
            entry.namespace, entry.name, entry.schedule
        );
        if let Some(text) = &entry.description {
            description = format!("{text}\n\n{description}");
        }
        if !entry.effects.is_empty() {
            description.push_str(&format!("\nEffects: {}", entry.effects.join(", ")));
        }
        let summary = match &entry.description {
            Some(text) => format!("Maintenance: {}", first_line(text)),
            None => format!("Maintenance: {}/{}", entry.namespace, entry.name),
        };
        lines.extend([
            "BEGIN:VEVENT".to_string(),
            format!("UID:{}", escape(&entry.uid)),
            format!("DTSTAMP:{}", utc_stamp(now)),
            format!("DTSTART:{}", utc_stamp(entry.start)),
            format!("DTEND:{}", utc_stamp(entry.end)),
            format!("SUMMARY:{}", escape(&summary)),
            format!("DESCRIPTION:{}", escape(&description)),
            "TRANSP:OPAQUE".to_string(),
            "END:VEVENT".to_string(),
        ]);
    }
    lines.push("END:VCALENDAR".into());
    let mut out = String::new();
    for line in lines {
        fold(&line, &mut out);
    }
    out
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// Escapes a TEXT value (RFC 5545 §3.3.11).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends `line` folded into physical lines of at most [`MAX_LINE`] octets, each ended by
/// CRLF; continuation lines start with one space (which counts towards their length).
fn fold(line: &str, out: &mut String) {
    let mut room = MAX_LINE;
    let mut used = 0;
    for c in line.chars() {
        let width = c.len_utf8();
        if used + width > room {
            out.push_str("\r\n ");
            room = MAX_LINE - 1;
            used = 0;
        }
        out.push(c);
        used += width;
    }
    out.push_str("\r\n");
}

#[cfg(test)]
#[path = "ics_tests.rs"]
mod tests;
