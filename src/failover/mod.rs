//! Failover engine: the FailoverPlan state machine, its gates and its step executors, with no
//! Kubernetes types. The controller (and the embedded run mode) feed it observations and keep
//! its [`FailoverRecord`] in the plan's status; the engine decides, runs steps, and records.
//!
//! Layout:
//! - [`plan`]: the engine's view of a plan (regions, trigger gates, step retry policies).
//! - [`record`]: the persisted state (phase, active region, attempt, every step's state).
//! - [`gates`]: the pure trigger, approval, cooldown, maintenance and backup gates.
//! - [`machine`]: [`decide`] and [`apply`], the pure state machine; [`decision`]: what they
//!   hand out (actions, transitions, idempotency keys, step outcomes).
//! - [`action`]: step actions with Secrets resolved, and the [`Executor`] traits.
//! - [`http`], [`cloudflare`], [`sql`]: executors for HTTP calls and webhooks, Cloudflare DNS,
//!   and SQL against PostgreSQL.
//! - [`driver`]: the loop that persists before acting, so a crash at any point resumes at the
//!   step in progress and never repeats a finished one.
//!
//! See `docs/failover.md`.

pub mod action;
pub mod cloudflare;
pub mod decision;
pub mod driver;
pub mod error;
pub mod gates;
pub mod http;
pub mod machine;
pub mod plan;
pub mod record;
pub mod sql;

#[cfg(test)]
mod tests;

pub use action::{
    ClusterExecutor, Executor, NoCluster, ResolvedPlan, SecretSource, StepAction, StepExecutor,
};
pub use driver::{RecordStore, Settled, drive};
pub use error::FailoverError;
pub use gates::{
    BackupObservation, DrillRequest, MonitorObservation, Observations, Refusal, RefusalReason,
};
pub use machine::{
    Action, Decision, IdempotencyKey, StepFailure, StepOutcome, StepRun, Transition, apply, decide,
};
pub use plan::{PlanPolicy, RegionPolicy, StepKind, StepPolicy, TriggerPolicy};
pub use record::{
    AttemptKind, AttemptRecord, AttemptResult, AttemptSummary, FailoverRecord, Phase, StepPhase,
    StepRecord, TriggerSource,
};
