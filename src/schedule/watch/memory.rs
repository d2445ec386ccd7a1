//! What a watched job remembers across restarts, and how runs are folded in.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{RunObservation, RunOutcome, RunTrigger};

/// What must survive restarts (the controller keeps it in CronJobSpec status, run mode in its
/// state file): Jobs are garbage-collected by history limits, so counts cannot be recomputed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobMemory {
    /// The due time of the newest scheduled run (its `scheduled_for`, else its start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<DateTime<Utc>>,
    /// When the newest successful run finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_time: Option<DateTime<Utc>>,
    /// When the newest failed run finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_time: Option<DateTime<Utc>>,
    /// Failed runs (scheduled or manual) since the last success.
    #[serde(default)]
    pub consecutive_failures: u32,
    /// When the first failure of the current streak finished (the Failing alert's start);
    /// `None` after a success. Stores that do not keep it fall back to `last_failure_time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<DateTime<Utc>>,
    /// Newest run by start time, finished or running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<RunObservation>,
    /// Names of the runs folded in that finished exactly at the newest finish time, so that a
    /// second run finishing in the same second is still counted. Empty after a restart from a
    /// store that does not keep it: runs finishing at that instant then count as seen (never
    /// twice, at worst once too few).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen_at_watermark: Vec<String>,
}

impl JobMemory {
    /// The newest finish time folded in so far: runs finishing later are new.
    pub fn watermark(&self) -> Option<DateTime<Utc>> {
        self.last_successful_time.max(self.last_failure_time)
    }

    fn is_new(&self, run: &RunObservation, finished: DateTime<Utc>) -> bool {
        match self.watermark() {
            None => true,
            Some(mark) if finished > mark => true,
            Some(mark) if finished == mark => {
                !self.seen_at_watermark.is_empty() && !self.seen_at_watermark.contains(&run.name)
            }
            Some(_) => false,
        }
    }

    /// Folds in runs not seen before (idempotent: observing the same runs twice changes
    /// nothing); returns the newly finished ones, oldest first.
    ///
    /// A run is new when it finished after every run folded in so far. Scheduled and manual
    /// runs both count for successes and failures; only scheduled runs move
    /// `last_schedule_time`. `last_run` follows the newest start, including running runs.
    pub fn observe(&mut self, runs: &[RunObservation]) -> Vec<RunObservation> {
        let mut fresh: Vec<&RunObservation> = runs
            .iter()
            .filter(|run| run.outcome != RunOutcome::Running)
            .filter(|run| run.finished_at.is_some_and(|end| self.is_new(run, end)))
            .collect();
        fresh.sort_by(|a, b| (a.finished_at, &a.name).cmp(&(b.finished_at, &b.name)));
        fresh.dedup_by(|a, b| a.name == b.name);
        for run in &fresh {
            let Some(end) = run.finished_at else { continue };
            if self.watermark() != Some(end) {
                self.seen_at_watermark.clear();
            }
            self.seen_at_watermark.push(run.name.clone());
            if run.outcome == RunOutcome::Succeeded {
                self.last_successful_time = Some(end);
                self.consecutive_failures = 0;
                self.failing_since = None;
            } else {
                self.last_failure_time = Some(end);
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.failing_since.get_or_insert(end);
            }
        }
        for run in runs {
            if run.trigger == RunTrigger::Scheduled {
                let due = run.scheduled_for.unwrap_or(run.started_at);
                if self.last_schedule_time.is_none_or(|t| due > t) {
                    self.last_schedule_time = Some(due);
                }
            }
            let newer = match &self.last_run {
                None => true,
                Some(last) if last.name == run.name => true,
                Some(last) => (run.started_at, &run.name) > (last.started_at, &last.name),
            };
            if newer {
                self.last_run = Some(run.clone());
            }
        }
        fresh.into_iter().cloned().collect()
    }
}
