//! The watchkeeper API: five custom resources in group `watchkeeper.dev`, version `v1alpha1`.
//!
//! Plain data and validation only — no I/O. The CRD schemas are generated from these types
//! (`watchkeeper crdgen`), and `validate()` holds the rules a schema cannot express.

pub mod backup_policy;
pub mod common;
pub mod cron_job_spec;
pub mod failover_plan;
pub mod health_monitor;
mod k8s_schema;
pub mod maintenance_window;
#[cfg(test)]
mod schema_test_support;
pub mod validation;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use backup_policy::BackupPolicy;
pub use common::Condition;
pub use cron_job_spec::CronJobSpec;
pub use failover_plan::FailoverPlan;
pub use health_monitor::HealthMonitor;
pub use maintenance_window::MaintenanceWindow;
pub use validation::{FieldError, Validate};

/// API group of every watchkeeper kind.
pub const GROUP: &str = "watchkeeper.dev";
/// The one served (and stored) version.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` as written in manifests.
pub const API_VERSION: &str = "watchkeeper.dev/v1alpha1";

/// Read access to the parts of a status every kind shares, so controller code that writes
/// conditions can be generic over the kind.
pub trait HasConditions {
    /// Conditions currently in status (empty when there is no status yet).
    fn conditions(&self) -> &[Condition];
    /// `status.observedGeneration`, if status has been written.
    fn observed_generation(&self) -> Option<i64>;
}

/// Implements [`HasConditions`] for a kind whose status has `conditions` and
/// `observed_generation` fields.
macro_rules! impl_has_conditions {
    ($kind:ty) => {
        impl $crate::api::HasConditions for $kind {
            fn conditions(&self) -> &[$crate::api::Condition] {
                self.status
                    .as_ref()
                    .map(|s| s.conditions.as_slice())
                    .unwrap_or(&[])
            }
            fn observed_generation(&self) -> Option<i64> {
                self.status.as_ref().and_then(|s| s.observed_generation)
            }
        }
    };
}
pub(crate) use impl_has_conditions;

/// Kind names in the order CRDs are written.
pub const KINDS: [&str; 5] = [
    "HealthMonitor",
    "CronJobSpec",
    "BackupPolicy",
    "MaintenanceWindow",
    "FailoverPlan",
];

/// Every CRD, in [`KINDS`] order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        HealthMonitor::crd(),
        CronJobSpec::crd(),
        BackupPolicy::crd(),
        MaintenanceWindow::crd(),
        FailoverPlan::crd(),
    ]
}

/// Validates a watchkeeper object given as JSON (as read from YAML), dispatching on `kind`.
/// Returns `None` when the kind is not a watchkeeper kind. Deserialization errors are reported
/// as field errors, so callers get one uniform error list.
pub fn validate_value(kind: &str, value: &serde_json::Value) -> Option<Vec<FieldError>> {
    fn run<K: Validate + serde::de::DeserializeOwned>(
        value: &serde_json::Value,
    ) -> Vec<FieldError> {
        match serde_json::from_value::<K>(value.clone()) {
            Ok(object) => object.validate(),
            Err(error) => vec![FieldError::new("", error.to_string())],
        }
    }
    Some(match kind {
        "HealthMonitor" => run::<HealthMonitor>(value),
        "CronJobSpec" => run::<CronJobSpec>(value),
        "BackupPolicy" => run::<BackupPolicy>(value),
        "MaintenanceWindow" => run::<MaintenanceWindow>(value),
        "FailoverPlan" => run::<FailoverPlan>(value),
        _ => return None,
    })
}
