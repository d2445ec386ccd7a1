//! [`ClusterExecutor`] of the controller: the FailoverPlan steps that act on the cluster.
//!
//! Every action checks before it acts, so a try repeated after a crash (same idempotency key)
//! has its effect once: a scale already at the target and a ConfigMap key already set report
//! "already" without a write; a merge patch is idempotent by nature. A dry run reads the
//! target and changes nothing. Steps not built yet fail at once, naming the step field.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::{Client, ResourceExt};

use crate::api::common::{AlertingSpec, ConfigMapValue, WorkloadKind, WorkloadRef};
use crate::api::failover_plan::{PatchAction, Step, VerifyAction};
use crate::api::health_monitor::{Health, SetConfigMapKeyAction};
use crate::api::{FailoverPlan, HealthMonitor};
use crate::controller::context::FIELD_MANAGER;
use crate::controller::remediation::{self, configmap, scale};
use crate::failover::{ClusterExecutor, StepFailure, StepRun};

/// How often the verify step reads the monitor's status.
const VERIFY_POLL: Duration = Duration::from_millis(500);

/// Runs cluster steps in the plan's namespace.
#[derive(Clone)]
pub struct ClusterSteps {
    client: Client,
    namespace: String,
    /// The secondary's main HealthMonitor: what `verify` watches when it names none.
    secondary_monitor: String,
    /// The plan's name (in notices).
    plan: String,
    /// The plan's `spec.alerting`, for `notify`.
    alerting: Option<AlertingSpec>,
}

impl ClusterSteps {
    /// Steps of `plan` (in its namespace).
    pub fn new(client: Client, plan: &FailoverPlan) -> Self {
        Self {
            client,
            namespace: plan.namespace().unwrap_or_default(),
            secondary_monitor: plan.spec.secondary.health_monitor_ref.name.clone(),
            plan: plan.name_any(),
            alerting: plan.spec.alerting.clone(),
        }
    }

    async fn scale(
        &self,
        run: &StepRun,
        workload: &WorkloadRef,
        replicas: i32,
    ) -> Result<String, StepFailure> {
        if run.dry_run {
            return self
                .dry_run_workload(workload, &format!("would scale to {replicas} replicas"))
                .await;
        }
        scale::scale(&self.client, &self.namespace, workload, replicas)
            .await
            .map(|done| done.message)
            .map_err(failure)
    }

    async fn dry_run_workload(
        &self,
        workload: &WorkloadRef,
        what: &str,
    ) -> Result<String, StepFailure> {
        let ns = &self.namespace;
        let name = workload.name.as_str();
        let (kind, found) = match workload.kind {
            WorkloadKind::Deployment => (
                "Deployment",
                Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(self.client.clone(), ns)
                    .get_opt(name)
                    .await
                    .map(|o| o.is_some()),
            ),
            WorkloadKind::StatefulSet => (
                "StatefulSet",
                Api::<k8s_openapi::api::apps::v1::StatefulSet>::namespaced(self.client.clone(), ns)
                    .get_opt(name)
                    .await
                    .map(|o| o.is_some()),
            ),
        };
        match found {
            Ok(true) => Ok(format!("dry run: {kind} {ns}/{name} exists; {what}")),
            Ok(false) => Err(StepFailure::permanent(format!(
                "{kind} {ns}/{name} not found"
            ))),
            Err(e) => Err(StepFailure::transient(format!(
                "get {kind} {ns}/{name}: {e}"
            ))),
        }
    }

    async fn config_map(
        &self,
        run: &StepRun,
        value: &ConfigMapValue,
    ) -> Result<String, StepFailure> {
        let ns = &self.namespace;
        let name = &value.config_map_key_ref.name;
        if run.dry_run {
            return match Api::<ConfigMap>::namespaced(self.client.clone(), ns)
                .get_opt(name)
                .await
            {
                Ok(Some(_)) => Ok(format!(
                    "dry run: ConfigMap {ns}/{name} exists; would set key {}",
                    value.config_map_key_ref.key
                )),
                Ok(None) => Err(StepFailure::permanent(format!(
                    "ConfigMap {ns}/{name} not found"
                ))),
                Err(e) => Err(StepFailure::transient(format!(
                    "get ConfigMap {ns}/{name}: {e}"
                ))),
            };
        }
        let action = SetConfigMapKeyAction {
            config_map_key_ref: value.config_map_key_ref.clone(),
            value: value.value.clone(),
            revert_on_recovery: false,
        };
        configmap::set(&self.client, ns, &action)
            .await
            .map(|done| done.message)
            .map_err(failure)
    }

    async fn patch(&self, run: &StepRun, action: &PatchAction) -> Result<String, StepFailure> {
        let t = &action.target;
        let ns = &self.namespace;
        let (group, version) = match t.api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", t.api_version.as_str()),
        };
        let gvk = GroupVersionKind::gvk(group, version, &t.kind);
        let (resource, _) = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .map_err(|e| {
                StepFailure::transient(format!("discover {} {}: {e}", t.api_version, t.kind))
            })?;
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &resource);
        let what = format!("{} {ns}/{}", t.kind, t.name);
        if run.dry_run {
            return match api.get_opt(&t.name).await {
                Ok(Some(_)) => Ok(format!("dry run: {what} exists; would merge-patch it")),
                Ok(None) => Err(StepFailure::permanent(format!("{what} not found"))),
                Err(e) => Err(StepFailure::transient(format!("get {what}: {e}"))),
            };
        }
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        let patch = serde_json::Value::Object(action.merge_patch.clone());
        api.patch(&t.name, &params, &Patch::Merge(&patch))
            .await
            .map(|_| format!("merge-patched {what}"))
            .map_err(|e| kube_failure(&format!("patch {what}"), e))
    }

    async fn verify(&self, run: &StepRun, action: &VerifyAction) -> Result<String, StepFailure> {
        let name = action
            .health_monitor_ref
            .as_ref()
            .map_or(self.secondary_monitor.as_str(), |m| m.name.as_str());
        let ns = &self.namespace;
        let api: Api<HealthMonitor> = Api::namespaced(self.client.clone(), ns);
        // The driver bounds this loop by the step's timeout.
        loop {
            let monitor = api
                .get_opt(name)
                .await
                .map_err(|e| StepFailure::transient(format!("get HealthMonitor {ns}/{name}: {e}")))?
                .ok_or_else(|| {
                    StepFailure::permanent(format!("HealthMonitor {ns}/{name} not found"))
                })?;
            let status = monitor.status.unwrap_or_default();
            if run.dry_run {
                return Ok(format!(
                    "dry run: HealthMonitor {ns}/{name} exists, health {:?}",
                    status.health.unwrap_or(Health::Unknown)
                ));
            }
            if status.health == Some(Health::Healthy)
                && status.consecutive_successes >= action.consecutive_healthy
            {
                return Ok(format!(
                    "HealthMonitor {ns}/{name} Healthy for {} probes in a row",
                    status.consecutive_successes
                ));
            }
            tokio::time::sleep(VERIFY_POLL).await;
        }
    }
}

impl ClusterExecutor for ClusterSteps {
    async fn execute(&self, run: &StepRun, step: &Step) -> Result<String, StepFailure> {
        if let Some(fence) = &step.fence {
            if let Some(workload) = &fence.scale_to_zero {
                return self.scale(run, workload, 0).await;
            }
            if let Some(value) = &fence.config_map_set {
                return self.config_map(run, value).await;
            }
        }
        if let Some(s) = &step.kubernetes_scale {
            return self.scale(run, &s.workload_ref, s.replicas).await;
        }
        if let Some(p) = &step.kubernetes_patch {
            return self.patch(run, p).await;
        }
        if let Some(v) = &step.verify {
            return self.verify(run, v).await;
        }
        if let Some(n) = &step.notify {
            return super::notify::notify(
                &self.client,
                &self.namespace,
                &self.plan,
                self.alerting.as_ref(),
                run,
                n,
            )
            .await;
        }
        let field = if step.restore_backup.is_some() {
            "restoreBackup"
        } else if step.kubernetes_rollback.is_some() {
            // A rollback repeated after a crash would go back one more revision.
            "kubernetesRollback"
        } else if step
            .dns_switch
            .as_ref()
            .is_some_and(|d| d.dns_endpoint.is_some())
        {
            "dnsSwitch.dnsEndpoint"
        } else {
            "this action"
        };
        Err(StepFailure::permanent(format!(
            "step {}: {field} is not supported yet by the controller",
            run.name
        )))
    }
}

fn failure(error: remediation::Error) -> StepFailure {
    match error {
        remediation::Error::Api {
            source,
            verb,
            kind,
            namespace,
            name,
        } => kube_failure(&format!("{verb} {kind} {namespace}/{name}"), *source),
        other => StepFailure::permanent(other.to_string()),
    }
}

fn kube_failure(what: &str, error: kube::Error) -> StepFailure {
    let message = format!("{what}: {error}");
    match &error {
        kube::Error::Api(s) if s.code == 409 || s.code == 429 || s.code >= 500 => {
            StepFailure::transient(message)
        }
        kube::Error::Api(_) => StepFailure::permanent(message),
        _ => StepFailure::transient(message),
    }
}
