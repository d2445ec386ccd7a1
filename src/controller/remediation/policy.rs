//! When a remediation may run: cooldown and attempt limit, decided from the attempts already
//! recorded in status. Pure functions, so the rules are tested without an API server.
//!
//! - **Cooldown** spans incidents: an action never runs twice within `cooldown`, even if the
//!   trigger cleared and fired again in between (a flapping threshold must not roll a
//!   Deployment back every few seconds).
//! - **Attempts** count per incident: only attempts at or after `incident_since` (when the
//!   trigger started firing this time) count towards `maxAttempts`, so the count resets once
//!   the trigger clears and fires again.
//! - Only `Succeeded` and `Failed` records are attempts; `Skipped` and `Reverted` are not.

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::api::common::DurationError;
use crate::api::health_monitor::{Remediation, RemediationRecord, RemediationResult};

/// Most remediation records kept in status (newest last); older ones are dropped.
pub const MAX_RECORDS: usize = 20;

/// Why a policy could not be decided.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `cooldown` does not parse (validation normally rejects it first).
    #[error("remediation {name}: spec.remediations[].cooldown: {source}")]
    Cooldown {
        name: String,
        #[source]
        source: DurationError,
    },
}

/// What the policy allows now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Run the action; this is attempt number `attempt` (1-based) of the incident.
    Run { attempt: u32 },
    /// The last attempt was too recent; the action may run again at `until`.
    CoolingDown { until: Timestamp },
    /// `maxAttempts` attempts were made in this incident; nothing more until it clears.
    AttemptsExhausted { attempts: u32 },
}

/// Whether a record is an attempt (the action was actually tried).
fn is_attempt(record: &RemediationRecord) -> bool {
    matches!(
        record.result,
        RemediationResult::Succeeded | RemediationResult::Failed
    )
}

/// Decides whether `remediation` may run at `now`, given the records in status and the time
/// the current incident (the trigger firing) started.
pub fn decide(
    remediation: &Remediation,
    history: &[RemediationRecord],
    incident_since: Timestamp,
    now: Timestamp,
) -> Result<Decision, Error> {
    let cooldown = remediation
        .cooldown
        .parse()
        .map_err(|source| Error::Cooldown {
            name: remediation.name.clone(),
            source,
        })?;
    let cooldown = SignedDuration::try_from(cooldown).unwrap_or(SignedDuration::MAX);
    let attempts: Vec<&RemediationRecord> = history
        .iter()
        .filter(|r| r.name == remediation.name && is_attempt(r))
        .collect();
    // The attempt number of the incident: the highest recorded one since it started (robust
    // to older records having been dropped from status), or the count if numbers are missing.
    let in_incident = attempts.iter().filter(|r| r.time.0 >= incident_since);
    let done = in_incident
        .clone()
        .map(|r| r.attempt)
        .max()
        .unwrap_or(0)
        .max(u32::try_from(in_incident.count()).unwrap_or(u32::MAX));
    if done >= remediation.max_attempts {
        return Ok(Decision::AttemptsExhausted { attempts: done });
    }
    if let Some(last) = attempts.iter().map(|r| r.time.0).max() {
        let until = last.checked_add(cooldown).unwrap_or(Timestamp::MAX);
        if now < until {
            return Ok(Decision::CoolingDown { until });
        }
    }
    Ok(Decision::Run {
        attempt: done.saturating_add(1),
    })
}

/// Appends `record` to the status list (newest last), keeping at most [`MAX_RECORDS`].
///
/// The list must keep what the policy needs: each remediation's latest attempt (cooldown and
/// attempt number are computed from it). So a `Skipped` record replaces the previous record of
/// the same remediation when that one was `Skipped` too (an evaluation during a long cooldown
/// does not flood status), and trimming drops the oldest record that is not some remediation's
/// latest attempt before it drops any latest attempt.
pub fn push_record(records: &mut Vec<RemediationRecord>, record: RemediationRecord) {
    if record.result == RemediationResult::Skipped
        && let Some(last) = records.iter_mut().rev().find(|r| r.name == record.name)
        && last.result == RemediationResult::Skipped
    {
        *last = record;
        return;
    }
    records.push(record);
    while records.len() > MAX_RECORDS {
        let expendable = (0..records.len()).find(|&i| {
            let r = &records[i];
            !is_attempt(r)
                || records[i + 1..]
                    .iter()
                    .any(|later| later.name == r.name && is_attempt(later))
        });
        records.remove(expendable.unwrap_or(0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::common::{Duration, Time};
    use crate::api::health_monitor::{RemediationTrigger, RollbackAction, TriggerLevel};

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn remediation(cooldown: &str, max_attempts: u32) -> Remediation {
        Remediation {
            name: "undo".into(),
            when: RemediationTrigger {
                threshold: Some("errors".into()),
                level: TriggerLevel::Critical,
                health: None,
            },
            rollback: Some(RollbackAction {
                deployment: "web".into(),
            }),
            scale: None,
            set_config_map_key: None,
            failover: None,
            cooldown: Duration::new(cooldown),
            max_attempts,
        }
    }

    fn record(
        name: &str,
        seconds: i64,
        attempt: u32,
        result: RemediationResult,
    ) -> RemediationRecord {
        RemediationRecord {
            name: name.into(),
            action: "rollback".into(),
            time: Time(at(seconds)),
            attempt,
            result,
            message: None,
        }
    }

    #[test]
    fn first_attempt_runs() {
        let r = remediation("5m", 2);
        assert_eq!(
            decide(&r, &[], at(0), at(10)).unwrap(),
            Decision::Run { attempt: 1 }
        );
    }

    #[test]
    fn cooldown_holds_then_releases() {
        let r = remediation("5m", 3);
        let history = [record("undo", 0, 1, RemediationResult::Succeeded)];
        assert_eq!(
            decide(&r, &history, at(0), at(299)).unwrap(),
            Decision::CoolingDown { until: at(300) }
        );
        assert_eq!(
            decide(&r, &history, at(0), at(300)).unwrap(),
            Decision::Run { attempt: 2 }
        );
    }

    #[test]
    fn failed_attempts_count_and_cool_down_too() {
        let r = remediation("1m", 2);
        let history = [record("undo", 0, 1, RemediationResult::Failed)];
        assert_eq!(
            decide(&r, &history, at(0), at(30)).unwrap(),
            Decision::CoolingDown { until: at(60) }
        );
    }

    #[test]
    fn attempts_exhausted_within_an_incident() {
        let r = remediation("1m", 2);
        let history = [
            record("undo", 0, 1, RemediationResult::Failed),
            record("undo", 100, 2, RemediationResult::Succeeded),
        ];
        assert_eq!(
            decide(&r, &history, at(0), at(10_000)).unwrap(),
            Decision::AttemptsExhausted { attempts: 2 }
        );
    }

    #[test]
    fn attempt_count_resets_with_a_new_incident_but_cooldown_does_not() {
        let r = remediation("10m", 1);
        let history = [record("undo", 0, 1, RemediationResult::Succeeded)];
        // A new incident started at 120 s: attempts reset, cooldown (until 600 s) still holds.
        assert_eq!(
            decide(&r, &history, at(120), at(130)).unwrap(),
            Decision::CoolingDown { until: at(600) }
        );
        assert_eq!(
            decide(&r, &history, at(120), at(600)).unwrap(),
            Decision::Run { attempt: 1 }
        );
    }

    #[test]
    fn skipped_reverted_and_other_remediations_are_not_attempts() {
        let r = remediation("10m", 1);
        let history = [
            record("undo", 0, 1, RemediationResult::Skipped),
            record("undo", 1, 1, RemediationResult::Reverted),
            record("other", 2, 1, RemediationResult::Succeeded),
        ];
        assert_eq!(
            decide(&r, &history, at(0), at(3)).unwrap(),
            Decision::Run { attempt: 1 }
        );
    }

    #[test]
    fn attempt_number_survives_dropped_records() {
        // Only the third attempt is still in status; the limit of 3 still holds.
        let r = remediation("1s", 3);
        let history = [record("undo", 50, 3, RemediationResult::Failed)];
        assert_eq!(
            decide(&r, &history, at(0), at(100)).unwrap(),
            Decision::AttemptsExhausted { attempts: 3 }
        );
    }

    #[test]
    fn malformed_cooldown_is_an_error_naming_the_field() {
        let r = remediation("soon", 1);
        let error = decide(&r, &[], at(0), at(0)).unwrap_err().to_string();
        assert!(
            error.contains("undo") && error.contains("cooldown"),
            "{error}"
        );
    }

    #[test]
    fn repeated_skips_replace_each_other() {
        let mut records = vec![record("undo", 0, 1, RemediationResult::Succeeded)];
        for i in 1..100 {
            push_record(
                &mut records,
                record("undo", i, 1, RemediationResult::Skipped),
            );
        }
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].time, Time(at(99)));
        assert_eq!(records[0].result, RemediationResult::Succeeded);
    }

    #[test]
    fn trimming_keeps_each_remediations_latest_attempt() {
        let mut records = vec![record("rare", 0, 1, RemediationResult::Succeeded)];
        for i in 1..(MAX_RECORDS as i64 * 2) {
            push_record(
                &mut records,
                record("busy", i, 1, RemediationResult::Failed),
            );
        }
        assert_eq!(records.len(), MAX_RECORDS);
        assert_eq!(
            records[0].name, "rare",
            "the only attempt of `rare` survives"
        );
        assert_eq!(
            records.last().unwrap().time,
            Time(at(MAX_RECORDS as i64 * 2 - 1))
        );
        let r = remediation("1h", 1);
        let rare = Remediation {
            name: "rare".into(),
            ..r
        };
        assert!(matches!(
            decide(&rare, &records, at(0), at(100)).unwrap(),
            Decision::AttemptsExhausted { .. }
        ));
    }

    #[test]
    fn records_are_bounded_newest_kept() {
        let mut records = Vec::new();
        for i in 0..(MAX_RECORDS as i64 + 5) {
            push_record(
                &mut records,
                record("undo", i, 1, RemediationResult::Failed),
            );
        }
        assert_eq!(records.len(), MAX_RECORDS);
        assert_eq!(records[0].time, Time(at(5)));
        assert_eq!(
            records.last().unwrap().time,
            Time(at(MAX_RECORDS as i64 + 4))
        );
    }
}
