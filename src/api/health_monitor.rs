//! HealthMonitor: a probe of one endpoint and what its results mean.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Condition, Duration};
use super::validation::{Errors, FieldError, Validate};

/// A probe of one endpoint and what its results mean.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "watchkeeper.dev",
    version = "v1alpha1",
    kind = "HealthMonitor",
    namespaced,
    status = "HealthMonitorStatus",
    shortname = "hm",
    category = "watchkeeper",
    printcolumn = r#"{"name":"Health","type":"string","jsonPath":".status.health"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthMonitorSpec {
    /// How often the endpoint is probed.
    pub interval: Duration,
}

/// Observed state of a HealthMonitor.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthMonitorStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions (`Ready`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Overall health.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
}

super::impl_has_conditions!(HealthMonitor);

impl Validate for HealthMonitor {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Errors::new();
        errors.check("spec.interval", self.spec.interval.parse());
        errors.into_vec()
    }
}
