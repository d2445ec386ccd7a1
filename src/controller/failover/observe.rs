//! What the gates see now, read from the cluster: the regions' HealthMonitor statuses, the
//! plan's annotations (failover, failback and approval tokens), the open MaintenanceWindows
//! that block automatic failover of the plan, and the referenced BackupPolicy's newest
//! verified backup.

use chrono::{DateTime, Utc};
use kube::api::Api;
use kube::{Client, ResourceExt};

use crate::api::failover_plan::{APPROVE_ANNOTATION, FAILBACK_ANNOTATION, FAILOVER_ANNOTATION};
use crate::api::health_monitor::Health as ApiHealth;
use crate::api::{BackupPolicy, FailoverPlan, HealthMonitor};
use crate::controller::maintenance::MaintenanceIndex;
use crate::failover::{BackupObservation, MonitorObservation, Observations, PlanPolicy};
use crate::monitor::status::chrono_time;
use crate::probe::health::Health;

/// Reads everything the gates depend on. A monitor that does not exist or has no health yet
/// is left out (the engine counts it as Unknown); a BackupPolicy without an RPO or status
/// gives no backup observation (the backup gate then refuses as unknown).
pub async fn gather(
    client: &Client,
    maintenance: &MaintenanceIndex,
    plan: &FailoverPlan,
    policy: &PlanPolicy,
    now: DateTime<Utc>,
) -> Result<Observations, kube::Error> {
    let namespace = plan.namespace().unwrap_or_default();
    let monitors_api: Api<HealthMonitor> = Api::namespaced(client.clone(), &namespace);
    let mut monitors = Vec::new();
    let names = policy
        .primary
        .monitors
        .iter()
        .chain(&policy.secondary.monitors);
    for name in names {
        if monitors
            .iter()
            .any(|m: &MonitorObservation| &m.name == name)
        {
            continue;
        }
        let Some(monitor) = monitors_api.get_opt(name).await? else {
            continue;
        };
        let status = monitor.status.unwrap_or_default();
        if let Some(health) = status.health {
            monitors.push(MonitorObservation {
                name: name.clone(),
                health: engine_health(health),
                since: status.health_since.as_ref().map(chrono_time),
            });
        }
    }
    let maintenance_windows = maintenance
        .covering(&namespace, "FailoverPlan", plan.labels(), now)
        .into_iter()
        .filter(|c| c.effects.block_failover)
        .map(|c| c.window)
        .collect();
    let backup = match &plan.spec.trigger.backup_policy_ref {
        Some(reference) => {
            let api: Api<BackupPolicy> = Api::namespaced(client.clone(), &namespace);
            api.get_opt(&reference.name).await?.and_then(|policy| {
                let rpo = policy
                    .spec
                    .objectives
                    .as_ref()?
                    .rpo
                    .as_ref()?
                    .parse()
                    .ok()?;
                let status = policy.status?;
                Some(BackupObservation {
                    policy: reference.name.clone(),
                    newest_verified: status
                        .last_verified_backup
                        .and_then(|v| v.completion_time)
                        .as_ref()
                        .map(chrono_time),
                    rpo,
                })
            })
        }
        None => None,
    };
    let annotation = |key: &str| {
        plan.annotations()
            .get(key)
            .filter(|v| !v.trim().is_empty())
            .cloned()
    };
    Ok(Observations {
        monitors,
        maintenance_windows,
        backup,
        failover_token: annotation(FAILOVER_ANNOTATION),
        failback_token: annotation(FAILBACK_ANNOTATION),
        approval: annotation(APPROVE_ANNOTATION),
        drill: None,
    })
}

/// The API's health as the engine's.
pub fn engine_health(health: ApiHealth) -> Health {
    match health {
        ApiHealth::Healthy => Health::Healthy,
        ApiHealth::Degraded => Health::Degraded,
        ApiHealth::Critical => Health::Critical,
        ApiHealth::Down => Health::Down,
        ApiHealth::Unknown => Health::Unknown,
        ApiHealth::Suppressed => Health::Suppressed,
    }
}
