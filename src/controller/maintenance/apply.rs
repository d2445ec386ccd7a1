//! The parts of a MaintenanceWindow reconcile that touch other objects: ConfigMap and workload
//! effects (recorded before they are applied, dropped after they are restored), the `Selected`
//! check of the selector, and the finalizer held while effects are applied.

use std::collections::BTreeMap;

use kube::ResourceExt;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::ApiResource;
use serde_json::json;
use tracing::{info, warn};

use super::error::Error;
use super::index::Effects;
use super::lifecycle::{FINALIZER, Run};
use super::plan::Wanted;
use super::{effects, selector};
use crate::api::maintenance_window::{MaintenanceWindowStatus, condition};
use crate::api::{BackupPolicy, CronJobSpec, FailoverPlan, HealthMonitor, MaintenanceWindow};
use crate::controller::conditions::{ConditionStatus, DesiredCondition};

impl Run<'_> {
    /// Records (first) and applies every wanted effect.
    pub(super) async fn apply_effects(
        &mut self,
        status: &mut MaintenanceWindowStatus,
        wanted: &[Wanted],
    ) -> Result<(), Error> {
        for want in wanted {
            if !status
                .applied_effects
                .iter()
                .any(|r| want.is_recorded_by(r))
            {
                match effects::snapshot(self.client(), &self.ns, want).await {
                    Ok(record) => {
                        status.applied_effects.push(record);
                        self.persist(status).await?;
                    }
                    Err(error) => {
                        self.effect_failed(want, &error)?;
                        continue;
                    }
                }
            }
            // The spec may have changed the value while open: keep the record's target in step.
            if let Some(record) = status
                .applied_effects
                .iter_mut()
                .find(|r| want.is_recorded_by(r))
            {
                let (value, replicas) = match want {
                    Wanted::ConfigMap { value, .. } => (Some(value.clone()), None),
                    Wanted::Scale { replicas, .. } => (None, Some(*replicas)),
                };
                if record.value != value || record.replicas != replicas {
                    record.value = value;
                    record.replicas = replicas;
                    self.persist(status).await?;
                }
            }
            if let Err(error) = effects::ensure(self.client(), &self.ns, want).await {
                self.effect_failed(want, &error)?;
            }
        }
        Ok(())
    }

    /// Restores every recorded effect that is not in `wanted`; a record is dropped only after
    /// its restore.
    pub(super) async fn restore_unwanted(
        &mut self,
        status: &mut MaintenanceWindowStatus,
        wanted: &[Wanted],
    ) -> Result<(), Error> {
        let stale: Vec<_> = status
            .applied_effects
            .iter()
            .filter(|r| !wanted.iter().any(|w| w.is_recorded_by(r)))
            .cloned()
            .collect();
        for record in stale {
            match effects::revert(self.client(), &self.ns, &record).await {
                Ok(message) => {
                    info!(window = %format!("{}/{}", self.ns, self.name), %message, "maintenance effect restored");
                    status.applied_effects.retain(|r| r != &record);
                    self.persist(status).await?;
                }
                Err(error @ Error::Api { .. }) => return Err(error),
                Err(error) => self.effect_errors.push(error.to_string()),
            }
        }
        Ok(())
    }

    pub(super) fn effect_failed(&mut self, want: &Wanted, error: &Error) -> Result<(), Error> {
        match error {
            Error::Api { source, .. } if !matches!(source.as_ref(), kube::Error::Api(s) if s.code == 422) => {
                Err(Error::Api {
                    verb: "apply",
                    kind: "effect",
                    namespace: self.ns.clone(),
                    name: want.describe(),
                    source: Box::new(kube::Error::Service(error.to_string().into())),
                })
            }
            _ => {
                warn!(window = %format!("{}/{}", self.ns, self.name), %error, "maintenance effect not applied");
                self.effect_errors
                    .push(format!("{}: {error}", want.describe()));
                Ok(())
            }
        }
    }

    pub(super) fn effects_condition(&self, wanted: &[Wanted]) -> DesiredCondition {
        if !self.effect_errors.is_empty() {
            return DesiredCondition::new(
                condition::EFFECTS_APPLIED,
                ConditionStatus::False,
                "CannotApply",
                self.effect_errors.join("; "),
            );
        }
        if wanted.is_empty() {
            return DesiredCondition::new(
                condition::EFFECTS_APPLIED,
                ConditionStatus::True,
                "NoEffects",
                "The window sets no ConfigMap key and scales no workload.",
            );
        }
        DesiredCondition::new(
            condition::EFFECTS_APPLIED,
            ConditionStatus::True,
            "Applied",
            "ConfigMap and workload effects are applied while open and restored at closing.",
        )
    }

    /// `Selected`: a warning when the window has selector-based effects and picks nothing.
    pub(super) async fn selected_condition(&self) -> Result<DesiredCondition, Error> {
        let effects = Effects::from_spec(&self.window.spec.effects);
        if !effects.any() {
            return Ok(DesiredCondition::new(
                condition::SELECTED,
                ConditionStatus::True,
                "NoSelectorEffects",
                "The window has no effects on selected resources.",
            ));
        }
        let selector = self.window.spec.selector.as_ref();
        let mut counts = Vec::new();
        let mut total = 0;
        for (kind, resource) in [
            ("HealthMonitor", ApiResource::erase::<HealthMonitor>(&())),
            ("CronJobSpec", ApiResource::erase::<CronJobSpec>(&())),
            ("BackupPolicy", ApiResource::erase::<BackupPolicy>(&())),
            ("FailoverPlan", ApiResource::erase::<FailoverPlan>(&())),
        ] {
            if !effects.for_kind(kind).any() {
                continue;
            }
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.client().clone(), &self.ns, &resource);
            let list = api
                .list(&ListParams::default())
                .await
                .map_err(|e| Error::api("list", "watchkeeper resources", &self.ns, kind, e))?;
            let empty = BTreeMap::new();
            let n = list
                .items
                .iter()
                .filter(|o| {
                    selector::matches(selector, o.metadata.labels.as_ref().unwrap_or(&empty))
                })
                .count();
            total += n;
            counts.push(format!("{n} {kind}"));
        }
        Ok(if total == 0 {
            DesiredCondition::new(
                condition::SELECTED,
                ConditionStatus::False,
                "NothingSelected",
                format!(
                    "spec.selector matches no resource its effects apply to in namespace {} (looked at: {})",
                    self.ns,
                    counts.join(", ")
                ),
            )
        } else {
            DesiredCondition::new(
                condition::SELECTED,
                ConditionStatus::True,
                "ResourcesSelected",
                format!("Selected: {}", counts.join(", ")),
            )
        })
    }

    pub(super) async fn add_finalizer(&self) -> Result<(), Error> {
        let mut finalizers = self.window.finalizers().to_vec();
        if finalizers.iter().any(|f| f == FINALIZER) {
            return Ok(());
        }
        finalizers.push(FINALIZER.to_string());
        self.patch_finalizers(finalizers).await
    }

    pub(super) async fn remove_finalizer(&self) -> Result<(), Error> {
        let finalizers = self.window.finalizers();
        if !finalizers.iter().any(|f| f == FINALIZER) {
            return Ok(());
        }
        let kept: Vec<String> = finalizers
            .iter()
            .filter(|f| *f != FINALIZER)
            .cloned()
            .collect();
        self.patch_finalizers(kept).await
    }

    pub(super) async fn patch_finalizers(&self, finalizers: Vec<String>) -> Result<(), Error> {
        let api: Api<MaintenanceWindow> = Api::namespaced(self.client().clone(), &self.ns);
        let patch = json!({
            "metadata": {
                "resourceVersion": self.window.resource_version(),
                "finalizers": finalizers,
            }
        });
        match api
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(Error::api(
                "patch finalizers of",
                "MaintenanceWindow",
                &self.ns,
                &self.name,
                e,
            )),
        }
    }
}
