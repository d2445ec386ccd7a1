//! When a running HealthMonitor's remediations fire: the pure planning step between a monitor's
//! status snapshot and [`super::Remediator`].
//!
//! After each probe the controller asks its [`Tracker`] for [`Step`]s:
//! - A trigger that fires opens an *incident* that lasts until it clears. Its start is the
//!   time the monitor's status says the threshold level (`thresholds[].since`) or the health
//!   (`healthSince`) began, so a restarted controller, whose runtime is restored from status,
//!   counts the same incident's attempts.
//! - While firing, the action runs whenever [`super::policy::decide`] allows it. When the policy
//!   refuses (cooldown, attempt limit), the refusal is recorded once per distinct reason, not
//!   once per probe: a long cooldown gives one `Skipped` record and one Event.
//! - When a `setConfigMapKey` trigger with `revertOnRecovery` clears and its latest outcome is
//!   a successful change, the change is reverted (once; a failed revert is not retried by this
//!   process).
//! - Nothing is planned before the monitor's first probe in this process (its health and
//!   levels are those restored from status until then) nor while its health is `Suppressed`
//!   (a maintenance window holds remediation back).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use k8s_openapi::jiff::Timestamp;

use super::policy::{self, Decision};
use crate::api::health_monitor::{
    Health, Remediation, RemediationRecord, RemediationResult, RemediationTrigger, TriggerHealth,
};
use crate::monitor::MonitorStatus;

/// What the controller should do for one remediation now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Evaluate the policy and run the action (or record why not).
    Execute {
        /// The remediation's name in `spec.remediations`.
        name: String,
        /// When the current incident began.
        incident_since: Timestamp,
    },
    /// Put back what a `revertOnRecovery` action changed: its trigger cleared.
    Revert {
        /// The remediation's name in `spec.remediations`.
        name: String,
    },
}

/// One firing period of one remediation's trigger.
#[derive(Clone, Debug)]
struct Incident {
    since: Timestamp,
    /// The last refusal recorded in this incident, so the same one is not recorded again.
    noted: Option<Decision>,
    /// Whether a policy error was recorded already.
    error_noted: bool,
}

/// Per monitor: the open incidents and failed reverts of its remediations (in memory; what
/// must survive a restart is in status: the records and the since-times).
#[derive(Clone, Debug, Default)]
pub struct Tracker {
    incidents: BTreeMap<String, Incident>,
    revert_failed: BTreeSet<String>,
}

impl Tracker {
    /// The steps due for `remediations`, given the monitor's snapshot and the records in
    /// status.
    pub fn plan(
        &mut self,
        remediations: &[Remediation],
        status: &MonitorStatus,
        records: &[RemediationRecord],
        now: Timestamp,
    ) -> Vec<Step> {
        if status.probes == 0 || status.health == Health::Suppressed {
            return Vec::new();
        }
        let mut steps = Vec::new();
        self.incidents
            .retain(|name, _| remediations.iter().any(|r| &r.name == name));
        for r in remediations {
            let Some(since) = firing(&r.when, status) else {
                self.incidents.remove(&r.name);
                if revert_pending(r, records) && !self.revert_failed.contains(&r.name) {
                    steps.push(Step::Revert {
                        name: r.name.clone(),
                    });
                }
                continue;
            };
            self.revert_failed.remove(&r.name);
            let incident = self.incidents.entry(r.name.clone()).or_insert(Incident {
                since: since.unwrap_or(now).min(now),
                noted: None,
                error_noted: false,
            });
            let due = match policy::decide(r, records, incident.since, now) {
                Ok(Decision::Run { .. }) => true,
                Ok(refusal) => incident.noted.replace(refusal) != Some(refusal),
                Err(_) => !std::mem::replace(&mut incident.error_noted, true),
            };
            if due {
                steps.push(Step::Execute {
                    name: r.name.clone(),
                    incident_since: incident.since,
                });
            }
        }
        steps
    }

    /// Takes note of what a step did: an attempt made allows the next refusal to be recorded
    /// again; a failed revert is not retried.
    pub fn done(&mut self, step: &Step, result: RemediationResult) {
        match step {
            Step::Execute { name, .. } => {
                if matches!(
                    result,
                    RemediationResult::Succeeded | RemediationResult::Failed
                ) && let Some(incident) = self.incidents.get_mut(name)
                {
                    incident.noted = None;
                }
            }
            Step::Revert { name } => {
                if result != RemediationResult::Reverted {
                    self.revert_failed.insert(name.clone());
                }
            }
        }
    }
}

/// Whether `trigger` fires on `status`; `Some(since)` when it does, with the time the level or
/// health began if status knows it.
pub fn firing(trigger: &RemediationTrigger, status: &MonitorStatus) -> Option<Option<Timestamp>> {
    if let Some(threshold) = &trigger.threshold {
        let state = status.thresholds.iter().find(|t| &t.name == threshold)?;
        return trigger
            .level
            .fired_by(state.level)
            .then(|| state.since.map(timestamp));
    }
    let fires = match trigger.health? {
        TriggerHealth::Critical => matches!(status.health, Health::Critical | Health::Down),
        TriggerHealth::Down => status.health == Health::Down,
    };
    fires.then(|| status.health_since.map(timestamp))
}

/// Whether a `revertOnRecovery` change is still in place: the remediation's latest successful
/// change has not been reverted since.
fn revert_pending(remediation: &Remediation, records: &[RemediationRecord]) -> bool {
    let revertible = remediation
        .set_config_map_key
        .as_ref()
        .is_some_and(|a| a.revert_on_recovery);
    revertible
        && records
            .iter()
            .rev()
            .filter(|r| r.name == remediation.name)
            .find(|r| {
                matches!(
                    r.result,
                    RemediationResult::Succeeded | RemediationResult::Reverted
                )
            })
            .is_some_and(|r| r.result == RemediationResult::Succeeded)
}

/// A chrono time as a jiff timestamp (millisecond precision, as status keeps it).
pub fn timestamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp::from_millisecond(at.timestamp_millis()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::common::{ConfigMapKeyRef, Duration, Time};
    use crate::api::health_monitor::{
        RollbackAction, SetConfigMapKeyAction, ThresholdLevel, TriggerLevel,
    };
    use crate::monitor::status::ThresholdState;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn ts(seconds: i64) -> Timestamp {
        timestamp(at(seconds))
    }

    fn on_threshold(name: &str, cooldown: &str, max_attempts: u32) -> Remediation {
        Remediation {
            name: name.into(),
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

    fn switch(revert_on_recovery: bool) -> Remediation {
        Remediation {
            when: RemediationTrigger {
                threshold: None,
                level: TriggerLevel::Critical,
                health: Some(TriggerHealth::Down),
            },
            rollback: None,
            set_config_map_key: Some(SetConfigMapKeyAction {
                config_map_key_ref: ConfigMapKeyRef {
                    name: "app-config".into(),
                    key: "AI_PROVIDER".into(),
                },
                value: "claude".into(),
                revert_on_recovery,
            }),
            ..on_threshold("switch", "0s", 3)
        }
    }

    fn status(health: Health, level: ThresholdLevel, since: i64) -> MonitorStatus {
        let mut status = MonitorStatus::new("ops", "api", "http://127.0.0.1/");
        status.probes = 1;
        status.health = health;
        status.health_since = Some(at(since));
        status.thresholds = vec![ThresholdState {
            name: "errors".into(),
            level,
            value: Some(50.0),
            since: Some(at(since)),
        }];
        status
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
            time: Time(ts(seconds)),
            attempt,
            result,
            message: None,
        }
    }

    #[test]
    fn triggers_fire_on_their_level_or_health() {
        let critical = status(Health::Critical, ThresholdLevel::Critical, 5);
        let warning = status(Health::Degraded, ThresholdLevel::Warning, 5);
        let r = on_threshold("undo", "1m", 1);
        assert_eq!(firing(&r.when, &critical), Some(Some(ts(5))));
        assert_eq!(firing(&r.when, &warning), None);
        let mut warn_level = r.when.clone();
        warn_level.level = TriggerLevel::Warning;
        assert_eq!(firing(&warn_level, &warning), Some(Some(ts(5))));
        let unknown_threshold = RemediationTrigger {
            threshold: Some("latency".into()),
            ..r.when.clone()
        };
        assert_eq!(firing(&unknown_threshold, &critical), None);
        let down = switch(false).when;
        assert_eq!(firing(&down, &critical), None);
        assert_eq!(
            firing(&down, &status(Health::Down, ThresholdLevel::Ok, 7)),
            Some(Some(ts(7)))
        );
        let on_critical = RemediationTrigger {
            health: Some(TriggerHealth::Critical),
            ..down
        };
        assert!(firing(&on_critical, &status(Health::Down, ThresholdLevel::Ok, 7)).is_some());
        assert!(firing(&on_critical, &critical).is_some());
    }

    #[test]
    fn runs_then_records_a_refusal_once_per_reason() {
        let r = [on_threshold("undo", "1m", 2)];
        let s = status(Health::Critical, ThresholdLevel::Critical, 0);
        let mut tracker = Tracker::default();
        let run = tracker.plan(&r, &s, &[], ts(10));
        assert_eq!(
            run,
            [Step::Execute {
                name: "undo".into(),
                incident_since: ts(0)
            }]
        );
        tracker.done(&run[0], RemediationResult::Succeeded);
        let records = [record("undo", 10, 1, RemediationResult::Succeeded)];
        // Cooling down: recorded once, then nothing until the cooldown ends.
        assert_eq!(tracker.plan(&r, &s, &records, ts(20)).len(), 1);
        assert!(tracker.plan(&r, &s, &records, ts(30)).is_empty());
        assert!(tracker.plan(&r, &s, &records, ts(69)).is_empty());
        let second = tracker.plan(&r, &s, &records, ts(70));
        assert_eq!(second.len(), 1);
        tracker.done(&second[0], RemediationResult::Failed);
        let records = [
            records[0].clone(),
            record("undo", 70, 2, RemediationResult::Failed),
        ];
        // Two attempts made: exhausted, recorded once.
        assert_eq!(tracker.plan(&r, &s, &records, ts(200)).len(), 1);
        assert!(tracker.plan(&r, &s, &records, ts(300)).is_empty());
    }

    #[test]
    fn a_restarted_tracker_counts_the_incident_from_status() {
        // A fresh tracker (new process) sees the incident start stored in status (0 s), so
        // the attempt made at 10 s counts and the limit of 1 holds.
        let r = [on_threshold("undo", "1s", 1)];
        let s = status(Health::Critical, ThresholdLevel::Critical, 0);
        let records = [record("undo", 10, 1, RemediationResult::Succeeded)];
        let mut tracker = Tracker::default();
        let steps = tracker.plan(&r, &s, &records, ts(500));
        assert_eq!(steps.len(), 1);
        let decision = policy::decide(&r[0], &records, ts(0), ts(500)).unwrap();
        assert_eq!(decision, Decision::AttemptsExhausted { attempts: 1 });
        // A new incident (the level began after the attempt) may run again.
        let later = status(Health::Critical, ThresholdLevel::Critical, 100);
        assert_eq!(
            Tracker::default().plan(&r, &later, &records, ts(500)),
            [Step::Execute {
                name: "undo".into(),
                incident_since: ts(100)
            }]
        );
    }

    #[test]
    fn nothing_before_the_first_probe_or_while_suppressed() {
        let r = [on_threshold("undo", "1m", 1)];
        let mut s = status(Health::Critical, ThresholdLevel::Critical, 0);
        s.probes = 0;
        assert!(Tracker::default().plan(&r, &s, &[], ts(10)).is_empty());
        s.probes = 3;
        s.health = Health::Suppressed;
        assert!(Tracker::default().plan(&r, &s, &[], ts(10)).is_empty());
    }

    #[test]
    fn revert_follows_recovery_once() {
        let r = [switch(true)];
        let healthy = status(Health::Healthy, ThresholdLevel::Ok, 50);
        let changed = [record("switch", 10, 1, RemediationResult::Succeeded)];
        let mut tracker = Tracker::default();
        let steps = tracker.plan(&r, &healthy, &changed, ts(60));
        assert_eq!(
            steps,
            [Step::Revert {
                name: "switch".into()
            }]
        );
        // Reverted: nothing pending.
        let reverted = [
            changed[0].clone(),
            record("switch", 60, 1, RemediationResult::Reverted),
        ];
        assert!(tracker.plan(&r, &healthy, &reverted, ts(70)).is_empty());
        // A failed revert is not retried by this process.
        tracker.done(&steps[0], RemediationResult::Failed);
        assert!(tracker.plan(&r, &healthy, &changed, ts(80)).is_empty());
        // Without revertOnRecovery nothing is reverted.
        assert!(
            Tracker::default()
                .plan(&[switch(false)], &healthy, &changed, ts(60))
                .is_empty()
        );
    }
}
