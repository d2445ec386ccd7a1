//! The loop around the pure state machine: decide, persist, act, record, persist. The record
//! is saved *before* a try runs (so a restart knows the try may have happened and repeats it
//! under the same key) and *after* its outcome (so a finished step is never run again). Only
//! the leader may drive a plan; the controller runs this under its Lease.

use std::future::Future;

use chrono::{DateTime, Utc};

use super::action::Executor;
use super::error::FailoverError;
use super::gates::Observations;
use super::machine::{Action, StepFailure, StepOutcome, Transition, apply, decide};
use super::plan::PlanPolicy;
use super::record::FailoverRecord;

/// Where the record lives between decisions: the plan's status in a cluster, the local store
/// in the embedded mode. A save that returns `Ok` must be durable.
pub trait RecordStore: Send + Sync {
    /// The last saved record; `None` for a plan never driven.
    fn load(&self) -> impl Future<Output = Result<Option<FailoverRecord>, FailoverError>> + Send;
    /// Saves the record.
    fn save(
        &self,
        record: &FailoverRecord,
    ) -> impl Future<Output = Result<(), FailoverError>> + Send;
}

/// Where a drive stopped.
#[derive(Clone, Debug, PartialEq)]
pub struct Settled {
    /// The record as saved.
    pub record: FailoverRecord,
    /// Why it stopped: idle, waiting for a retry, or awaiting approval.
    pub action: Action,
    /// Every transition made on the way, for Events and logs.
    pub transitions: Vec<Transition>,
}

/// Drives a plan until it needs time or a person: loads the record, then decides and acts
/// until the decision is `Idle`, `WaitUntil` or `AwaitApproval`. Each try is bounded by its
/// step's timeout (a timeout is a retryable failure). `observe` is asked before every
/// decision so tokens and health seen mid-run count; `now` is the clock.
pub async fn drive<E, S, O, C>(
    plan: &PlanPolicy,
    executor: &E,
    store: &S,
    observe: O,
    now: C,
) -> Result<Settled, FailoverError>
where
    E: Executor,
    S: RecordStore,
    O: Fn() -> Observations,
    C: Fn() -> DateTime<Utc>,
{
    let mut record = store.load().await?.unwrap_or_default();
    let mut transitions = Vec::new();
    loop {
        let decision = decide(plan, &record, &observe(), now());
        if decision.record != record {
            store.save(&decision.record).await?;
            record = decision.record;
        }
        transitions.extend(decision.transitions);
        match decision.action {
            Action::Continue => {}
            Action::RunStep(run) => {
                let result = match tokio::time::timeout(run.timeout, executor.execute(&run)).await {
                    Ok(result) => result,
                    Err(_) => Err(StepFailure::transient(format!(
                        "step {} timed out after {}s",
                        run.name,
                        run.timeout.as_secs_f64()
                    ))),
                };
                let outcome = StepOutcome {
                    index: run.index,
                    try_number: run.key.try_number,
                    result,
                };
                let (next, applied) = apply(plan, &record, outcome, now())?;
                store.save(&next).await?;
                record = next;
                transitions.extend(applied);
            }
            action => {
                return Ok(Settled {
                    record,
                    action,
                    transitions,
                });
            }
        }
    }
}
