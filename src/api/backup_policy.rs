//! BackupPolicy (placeholder: the full API lands with its issue).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::Condition;
use super::validation::{FieldError, Validate};

/// BackupPolicy.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "watchkeeper.dev",
    version = "v1alpha1",
    kind = "BackupPolicy",
    namespaced,
    status = "BackupPolicyStatus",
    shortname = "bp",
    category = "watchkeeper"
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupPolicySpec {
    /// IANA time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// Observed state of a BackupPolicy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupPolicyStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions (`Ready`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

super::impl_has_conditions!(BackupPolicy);

impl Validate for BackupPolicy {
    fn validate(&self) -> Vec<FieldError> {
        Vec::new()
    }
}
