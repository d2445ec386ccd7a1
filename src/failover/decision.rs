//! What the state machine hands out: the decision and its action, the transitions made, the
//! idempotency key of a try, and what a try reports back.

use std::fmt;

use chrono::{DateTime, Utc};

use super::gates::Refusal;
use super::plan::StepKind;
use super::record::{AttemptKind, AttemptSummary, FailoverRecord, TriggerSource};

/// Identifies one try of one step of one attempt. Executors pass it on (HTTP header
/// `Idempotency-Key`, a ledger, a check-before-act) so that a try repeated after a crash has
/// its effect at most once. A retry after a failed try gets a new key (`try_number` + 1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdempotencyKey {
    /// The plan's identity ([`PlanPolicy::plan_id`]).
    pub plan_id: String,
    /// The attempt's id.
    pub attempt_id: String,
    /// Index of the step in its procedure.
    pub step_index: usize,
    /// 1-based try number.
    pub try_number: u32,
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.plan_id, self.attempt_id, self.step_index, self.try_number
        )
    }
}

/// One try of a step to run now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepRun {
    /// Failover, failback or drill: which procedure the index refers to.
    pub attempt_kind: AttemptKind,
    /// Index in the procedure.
    pub index: usize,
    /// The step's name.
    pub name: String,
    /// Its action kind.
    pub kind: StepKind,
    /// Upper bound of this try.
    pub timeout: std::time::Duration,
    /// Check everything, change nothing.
    pub dry_run: bool,
    /// The key the executor must use.
    pub key: IdempotencyKey,
}

/// What to do after persisting [`Decision::record`].
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// The record moved one transition (attempt started, gate passed, attempt finished…):
    /// persist it and decide again at once.
    Continue,
    /// Run this try, then [`apply`] its outcome.
    RunStep(StepRun),
    /// A step waits for its next try; decide again at `until`.
    WaitUntil {
        /// When the next try may start.
        until: DateTime<Utc>,
    },
    /// The attempt waits for a person; decide again when observations change.
    AwaitApproval {
        /// The attempt to approve.
        attempt_id: String,
        /// Why it waits.
        refusal: Refusal,
    },
    /// Nothing to do; decide again at `wake_at` (dwell or cooldown end) or when observations
    /// change.
    Idle {
        /// When a time-based gate may change its answer.
        wake_at: Option<DateTime<Utc>>,
    },
}

/// Something worth a Kubernetes Event (and a log line): every phase and step transition.
#[derive(Clone, Debug, PartialEq)]
pub enum Transition {
    /// An attempt started.
    AttemptStarted {
        /// Its id.
        attempt_id: String,
        /// Its kind.
        kind: AttemptKind,
        /// What started it.
        trigger: TriggerSource,
        /// Why.
        reason: String,
    },
    /// A trigger, drill or approval was refused (emitted when the refusal changes).
    Refused(Refusal),
    /// The attempt passed the approval and backup gates.
    GatesPassed {
        /// The attempt.
        attempt_id: String,
        /// Whether a person's approval was used.
        approved: bool,
    },
    /// A step's try started.
    StepStarted {
        /// Step index.
        index: usize,
        /// Step name.
        name: String,
        /// 1-based try.
        try_number: u32,
    },
    /// A step succeeded.
    StepSucceeded {
        /// Step index.
        index: usize,
        /// Step name.
        name: String,
        /// The executor's message.
        message: String,
    },
    /// A try failed and another follows at `retry_at`.
    StepRetrying {
        /// Step index.
        index: usize,
        /// Step name.
        name: String,
        /// The error.
        message: String,
        /// When the next try starts.
        retry_at: DateTime<Utc>,
    },
    /// A step failed after its tries.
    StepFailed {
        /// Step index.
        index: usize,
        /// Step name.
        name: String,
        /// The error.
        message: String,
        /// Whether the attempt carries on.
        continue_on_error: bool,
    },
    /// The attempt ended.
    AttemptFinished(AttemptSummary),
}

/// The result of [`decide`].
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The record to persist before acting (equal to the input when nothing changed).
    pub record: FailoverRecord,
    /// What to do next.
    pub action: Action,
    /// Transitions made, in order.
    pub transitions: Vec<Transition>,
}

/// How one try ended, as an executor reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepFailure {
    /// What went wrong, never containing secret values.
    pub message: String,
    /// Whether another try may help (timeouts, 5xx, connection errors); a permanent error
    /// (record not found, 4xx, wrong SQL result) fails the step at once.
    pub retryable: bool,
}

impl StepFailure {
    /// A failure that another try may cure.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }

    /// A failure no retry cures.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }
}

/// The outcome of one try, for [`apply`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepOutcome {
    /// The step index the try ran.
    pub index: usize,
    /// The try number it ran.
    pub try_number: u32,
    /// Success message, or the failure.
    pub result: Result<String, StepFailure>,
}
