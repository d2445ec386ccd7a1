//! The engine's view of a FailoverPlan: the parts the state machine decides with (regions and
//! their monitors, trigger gates, each step's retry policy). Built from the API spec by a pure
//! conversion; step *actions* are resolved separately (see [`super::action`]) because they
//! need Secrets.

use std::time::Duration;

use crate::api::failover_plan::{FailoverPlanSpec, Step, TriggerMode};

use super::error::FailoverError;

/// One region and the monitors that judge it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionPolicy {
    /// Region name as shown in status (`activeRegion`).
    pub name: String,
    /// The main HealthMonitor first, then the extra monitors of a quorum.
    pub monitors: Vec<String>,
}

/// When an attempt may start and what it must pass first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TriggerPolicy {
    /// Whether the plan starts on its own when the primary is down.
    pub automatic: bool,
    /// How long the primary must be Critical or Down (by quorum) before an automatic start.
    pub dwell: Duration,
    /// How many primary monitors must agree; clamped to 1..=number of monitors.
    pub quorum: Option<u32>,
    /// Least time between the end of one attempt and the next automatic start.
    pub cooldown: Duration,
    /// Whether a person must approve each failover attempt before its first step.
    pub require_approval: bool,
    /// Whether a backup older than the RPO is accepted without an approval.
    pub allow_stale_backup: bool,
    /// Whether the backup gate applies (the spec names a BackupPolicy).
    pub backup_gate: bool,
    /// Automatic triggers (and drills) are off; manual triggers still work.
    pub suspended: bool,
}

/// What kind of action a step performs, as far as sequencing and measuring care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepKind {
    /// Fences the primary (split-brain guard).
    Fence,
    /// Restores a backup.
    RestoreBackup,
    /// Runs SQL.
    Sql,
    /// Scales a workload.
    KubernetesScale,
    /// Merge-patches an object.
    KubernetesPatch,
    /// Rolls a workload back.
    KubernetesRollback,
    /// Switches DNS.
    DnsSwitch,
    /// Calls an HTTP API.
    Http,
    /// Waits for a HealthMonitor to be Healthy; its success is the "verified secondary" time
    /// the RTO is measured to.
    Verify,
    /// Notifies people.
    Notify,
}

impl StepKind {
    /// The API member name, e.g. `dnsSwitch`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fence => "fence",
            Self::RestoreBackup => "restoreBackup",
            Self::Sql => "sql",
            Self::KubernetesScale => "kubernetesScale",
            Self::KubernetesPatch => "kubernetesPatch",
            Self::KubernetesRollback => "kubernetesRollback",
            Self::DnsSwitch => "dnsSwitch",
            Self::Http => "http",
            Self::Verify => "verify",
            Self::Notify => "notify",
        }
    }

    /// The kind of an API step: its one action member.
    pub fn of(step: &Step) -> Option<Self> {
        let kind = match step.actions().as_slice() {
            ["fence"] => Self::Fence,
            ["restoreBackup"] => Self::RestoreBackup,
            ["sql"] => Self::Sql,
            ["kubernetesScale"] => Self::KubernetesScale,
            ["kubernetesPatch"] => Self::KubernetesPatch,
            ["kubernetesRollback"] => Self::KubernetesRollback,
            ["dnsSwitch"] => Self::DnsSwitch,
            ["http"] => Self::Http,
            ["verify"] => Self::Verify,
            ["notify"] => Self::Notify,
            _ => return None,
        };
        Some(kind)
    }
}

/// How one step is run: the retry policy the state machine applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepPolicy {
    /// Unique name in its procedure.
    pub name: String,
    /// The action's kind.
    pub kind: StepKind,
    /// Upper bound of one try.
    pub timeout: Duration,
    /// Tries after the first one fails.
    pub retries: u32,
    /// Wait before the first retry; doubled for each further retry.
    pub backoff: Duration,
    /// A final failure does not fail the attempt.
    pub continue_on_error: bool,
}

impl StepPolicy {
    /// Tries allowed in all: the first plus the retries.
    pub fn max_tries(&self) -> u32 {
        self.retries.saturating_add(1)
    }

    /// Wait after the failed try `try_number` (1-based) before the next:
    /// `backoff × 2^(try_number − 1)`, saturating.
    pub fn backoff_after(&self, try_number: u32) -> Duration {
        let factor = 2u32.saturating_pow(try_number.saturating_sub(1));
        self.backoff.saturating_mul(factor)
    }
}

/// Everything the state machine needs to know about a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanPolicy {
    /// Stable identity of the plan (e.g. `namespace/name` or its uid); prefixes every
    /// idempotency key so two plans calling the same endpoint never share keys.
    pub plan_id: String,
    /// The region serving normally.
    pub primary: RegionPolicy,
    /// The region taking over.
    pub secondary: RegionPolicy,
    /// Trigger and gates.
    pub trigger: TriggerPolicy,
    /// The failover procedure.
    pub steps: Vec<StepPolicy>,
    /// The failback procedure; empty when the plan has none.
    pub failback_steps: Vec<StepPolicy>,
}

impl PlanPolicy {
    /// Builds the policy from a spec that passed validation. Malformed durations or steps
    /// without exactly one action are reported with the field's path.
    pub fn from_spec(
        plan_id: impl Into<String>,
        spec: &FailoverPlanSpec,
    ) -> Result<Self, FailoverError> {
        let region = |r: &crate::api::failover_plan::Region| RegionPolicy {
            name: r.name.clone(),
            monitors: std::iter::once(r.health_monitor_ref.name.clone())
                .chain(r.extra_monitors.iter().map(|m| m.name.clone()))
                .collect(),
        };
        let t = &spec.trigger;
        let trigger = TriggerPolicy {
            automatic: t.mode == TriggerMode::Automatic,
            dwell: duration("spec.trigger.after", &t.after)?,
            quorum: t.quorum,
            cooldown: duration("spec.trigger.cooldown", &t.cooldown)?,
            require_approval: t.require_approval,
            allow_stale_backup: t.allow_stale_backup,
            backup_gate: t.backup_policy_ref.is_some(),
            suspended: spec.suspend,
        };
        let failback_steps = match &spec.failback {
            Some(failback) => steps("spec.failback.steps", &failback.steps)?,
            None => Vec::new(),
        };
        Ok(Self {
            plan_id: plan_id.into(),
            primary: region(&spec.primary),
            secondary: region(&spec.secondary),
            trigger,
            steps: steps("spec.steps", &spec.steps)?,
            failback_steps,
        })
    }
}

fn duration(path: &str, value: &crate::api::common::Duration) -> Result<Duration, FailoverError> {
    value.parse().map_err(|e| FailoverError::Spec {
        path: path.to_string(),
        message: e.to_string(),
    })
}

fn steps(path: &str, steps: &[Step]) -> Result<Vec<StepPolicy>, FailoverError> {
    steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let here = format!("{path}[{i}]");
            let kind = StepKind::of(step).ok_or_else(|| FailoverError::Spec {
                path: here.clone(),
                message: "exactly one action must be set".to_string(),
            })?;
            Ok(StepPolicy {
                name: step.name.clone(),
                kind,
                timeout: duration(&format!("{here}.timeout"), &step.timeout)?,
                retries: step.retries,
                backoff: duration(&format!("{here}.backoff"), &step.backoff)?,
                continue_on_error: step.continue_on_error,
            })
        })
        .collect()
}
