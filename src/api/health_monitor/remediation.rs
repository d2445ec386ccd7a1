//! Remediation: what the operator does by itself when a monitor goes bad.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::threshold::ThresholdLevel;
use crate::api::common::{
    ConfigMapKeyRef, DNS_LABEL_PATTERN, Duration, LocalObjectRef, WorkloadRef,
};

/// One automatic action, taken when its trigger fires, at most `maxAttempts` times per incident
/// and never twice within `cooldown`. Every attempt is recorded as an Event and in status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "[has(self.rollback), has(self.scale), has(self.setConfigMapKey), has(self.failover)].filter(x, x).size() == 1",
    "message": "exactly one of rollback, scale, setConfigMapKey or failover must be set"
}]))]
pub struct Remediation {
    /// Name used in Events and status.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = DNS_LABEL_PATTERN)
    )]
    pub name: String,
    /// When the action is taken.
    pub when: RemediationTrigger,
    /// Roll a Deployment back to its previous revision, as `kubectl rollout undo` does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackAction>,
    /// Set a workload's replica count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<ScaleAction>,
    /// Set a ConfigMap key, e.g. switch `AI_PROVIDER` from `openai` to `claude`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_config_map_key: Option<SetConfigMapKeyAction>,
    /// Ask a FailoverPlan to fail over (by annotation; the plan applies its own gates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<FailoverAction>,
    /// Least time between two attempts, so an action has time to take effect before it is
    /// judged. Defaults to 15m.
    #[serde(default = "default_cooldown")]
    pub cooldown: Duration,
    /// Most attempts while the trigger stays firing; the count resets once it clears.
    /// Defaults to 1.
    #[serde(default = "default_max_attempts")]
    #[schemars(range(min = 1, max = 10))]
    pub max_attempts: u32,
}

fn default_cooldown() -> Duration {
    Duration::new("15m")
}

fn default_max_attempts() -> u32 {
    1
}

/// What fires a remediation: a threshold reaching a level, or the monitor's health.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.threshold) != has(self.health)",
    "message": "exactly one of threshold or health must be set"
}]))]
pub struct RemediationTrigger {
    /// Name of a threshold in `spec.thresholds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub threshold: Option<String>,
    /// With `threshold`: the level that fires the action. Defaults to Critical.
    #[serde(default = "default_trigger_level")]
    pub level: TriggerLevel,
    /// Fire on the monitor's overall health instead of one threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<TriggerHealth>,
}

fn default_trigger_level() -> TriggerLevel {
    TriggerLevel::Critical
}

/// Threshold level that fires a remediation (that level or worse).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TriggerLevel {
    /// Fire at the warning level or worse.
    Warning,
    /// Fire only at the critical level.
    Critical,
}

impl TriggerLevel {
    /// Whether a threshold at `level` fires a trigger of this level.
    pub fn fired_by(self, level: ThresholdLevel) -> bool {
        match self {
            Self::Warning => level >= ThresholdLevel::Warning,
            Self::Critical => level >= ThresholdLevel::Critical,
        }
    }
}

/// Overall health that fires a remediation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TriggerHealth {
    /// Health is Critical or Down.
    Critical,
    /// Health is Down.
    Down,
}

/// Roll a Deployment back to the revision before the current one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RollbackAction {
    /// Name of the Deployment, in the monitor's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub deployment: String,
}

/// Set a workload's replicas.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaleAction {
    /// The Deployment or StatefulSet.
    pub workload: WorkloadRef,
    /// Desired replica count.
    #[schemars(range(min = 0, max = 10000))]
    pub replicas: i32,
}

/// Set one ConfigMap key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetConfigMapKeyAction {
    /// The ConfigMap and key.
    pub config_map_key_ref: ConfigMapKeyRef,
    /// The value written.
    #[schemars(length(max = 4096))]
    pub value: String,
    /// Put the previous value back once the trigger has cleared (switch back to the primary
    /// provider). Defaults to false: switching back is a human decision.
    #[serde(default)]
    pub revert_on_recovery: bool,
}

/// Request a failover from a FailoverPlan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FailoverAction {
    /// The FailoverPlan, in the monitor's namespace.
    pub plan: LocalObjectRef,
}

impl Remediation {
    /// Short name of the action kind, for Events and status.
    pub fn action_name(&self) -> &'static str {
        if self.rollback.is_some() {
            "rollback"
        } else if self.scale.is_some() {
            "scale"
        } else if self.set_config_map_key.is_some() {
            "setConfigMapKey"
        } else if self.failover.is_some() {
            "failover"
        } else {
            "none"
        }
    }
}
