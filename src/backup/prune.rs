//! Retention after a successful backup: the pure planner ([`super::retention::plan`]) over this
//! policy's manifests directly under its prefix, then deletion of what it drops.
//!
//! Safety rules, on top of the planner's (newest successful backup and anything younger than
//! `minAge` are always kept):
//! - only backups with a manifest of ours, of this policy, directly under the prefix, are
//!   candidates; any other object is never deleted;
//! - a backup is deleted manifest first, then its dump object: if the run stops in between,
//!   what remains is an orphan dump that no longer counts (and is never deleted by us), never a
//!   manifest pointing to a missing dump;
//! - the dump object is deleted only when the manifest names it as `<id>.dump[.age]`.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::config::AgentConfig;
use super::manifest::{Manifest, dump_name, inventory};
use super::report::Inventory;
use super::retention::{BackupRecord, plan};
use super::store::{Destination, StoreError};

/// What a prune did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PruneResult {
    /// Ids removed, newest first.
    pub pruned: Vec<String>,
    /// Backups kept.
    pub kept: u32,
    /// Complete backups after pruning.
    pub inventory: Inventory,
}

/// Applies the policy's retention at `now`. Without a retention config nothing is deleted and
/// only the inventory is taken.
pub async fn prune(
    destination: &Destination,
    config: &AgentConfig,
    now: DateTime<Utc>,
) -> Result<PruneResult, StoreError> {
    let manifests = destination.list_manifests(Some(&config.policy)).await?;
    let Some(retention) = &config.retention else {
        return Ok(PruneResult {
            pruned: Vec::new(),
            kept: u32::try_from(manifests.len()).unwrap_or(u32::MAX),
            inventory: inventory(&manifests),
        });
    };
    // AgentConfig::check validated the zone; UTC is only a fallback for a hand-built config.
    let tz: Tz = config.time_zone.parse().unwrap_or(Tz::UTC);
    let records: Vec<BackupRecord> = manifests
        .iter()
        .map(|m| BackupRecord {
            id: m.id.clone(),
            completed_at: m.completed_at,
            successful: true,
        })
        .collect();
    let decision = plan(&retention.policy(), tz, &records, now);
    let mut pruned = Vec::new();
    for id in &decision.delete {
        let Some(manifest) = manifests.iter().find(|m| &m.id == id) else {
            continue;
        };
        delete_backup(destination, manifest).await?;
        tracing::info!(backup = %id, "pruned by retention");
        pruned.push(id.clone());
    }
    let remaining: Vec<Manifest> = manifests
        .into_iter()
        .filter(|m| !pruned.contains(&m.id))
        .collect();
    Ok(PruneResult {
        pruned,
        kept: u32::try_from(remaining.len()).unwrap_or(u32::MAX),
        inventory: inventory(&remaining),
    })
}

async fn delete_backup(destination: &Destination, manifest: &Manifest) -> Result<(), StoreError> {
    destination.delete(&manifest.manifest_name()).await?;
    let expected = [
        dump_name(&manifest.id, false),
        dump_name(&manifest.id, true),
    ];
    if expected.contains(&manifest.object) {
        destination.delete(&manifest.object).await?;
    } else {
        tracing::warn!(backup = %manifest.id, object = %manifest.object,
            "manifest names an unexpected object; left in place");
    }
    Ok(())
}
