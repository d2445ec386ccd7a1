//! The manifest: a small JSON object written beside each dump, LAST, after the dump's upload
//! completed. A dump without its manifest does not exist for listing, verification, restore
//! or retention, so an interrupted run leaves nothing that counts; an object without a manifest
//! of ours is never deleted.
//!
//! Layout under the policy's prefix: `<id>.dump` (or `<id>.dump.age` when encrypted) and
//! `<id>.manifest.json`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::report::Inventory;

/// The `format` of every manifest this agent writes; listing ignores any other.
pub const MANIFEST_FORMAT: &str = "watchkeeper.dev/backup-manifest/v1";

/// Name suffix of manifest objects.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";

/// Everything known about one complete backup.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// Backup id, e.g. `20260106T030000Z-3f2a`; names both objects.
    pub id: String,
    /// `namespace/name` of the BackupPolicy that wrote it.
    pub policy: String,
    /// Database dumped.
    pub database: String,
    /// Server version (`server_version`).
    pub server_version: String,
    /// `pg_dump --version` number.
    pub pg_dump_version: String,
    /// `custom` or `plain`.
    pub dump_format: String,
    /// Name of the dump object relative to the prefix.
    pub object: String,
    /// When `pg_dump` started.
    pub started_at: DateTime<Utc>,
    /// When the dump's upload completed (the manifest is written right after).
    pub completed_at: DateTime<Utc>,
    /// Stored size of the dump object in bytes.
    pub size_bytes: u64,
    /// Hex SHA-256 of the stored dump object (after encryption).
    pub sha256: String,
    /// Encryption of the stored object; unset when stored as `pg_dump` wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<String>,
    /// `pg_dump --compress` level used, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression_level: Option<u8>,
    /// watchkeeper version that wrote it.
    pub tool_version: String,
}

impl Manifest {
    /// Parses a manifest; `None` for anything that is not one of ours (wrong format marker,
    /// other JSON, not JSON), which listing then ignores.
    pub fn parse(bytes: &[u8]) -> Option<Manifest> {
        let manifest: Manifest = serde_json::from_slice(bytes).ok()?;
        (manifest.format == MANIFEST_FORMAT).then_some(manifest)
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Name of this manifest's object relative to the prefix.
    pub fn manifest_name(&self) -> String {
        format!("{}{MANIFEST_SUFFIX}", self.id)
    }
}

/// Name of the dump object for `id`.
pub fn dump_name(id: &str, encrypted: bool) -> String {
    if encrypted {
        format!("{id}.dump.age")
    } else {
        format!("{id}.dump")
    }
}

/// A backup id for a run started at `at`: UTC time to the second plus 4 hex digits, so two runs
/// in the same second do not collide and ids sort by time.
pub fn new_id(at: DateTime<Utc>) -> String {
    let salt = at.timestamp_subsec_nanos() ^ std::process::id().rotate_left(16);
    format!("{}-{:04x}", at.format("%Y%m%dT%H%M%SZ"), salt & 0xffff)
}

/// Summary of complete backups.
pub fn inventory(manifests: &[Manifest]) -> Inventory {
    Inventory {
        count: u32::try_from(manifests.len()).unwrap_or(u32::MAX),
        total_bytes: manifests.iter().map(|m| m.size_bytes).sum(),
        oldest: manifests.iter().map(|m| m.completed_at).min(),
        newest: manifests.iter().map(|m| m.completed_at).max(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::backup::crypto::AGE_SCRYPT;

    fn sample() -> Manifest {
        let t = Utc.with_ymd_and_hms(2026, 1, 6, 3, 0, 0).unwrap();
        Manifest {
            format: MANIFEST_FORMAT.to_string(),
            id: new_id(t),
            policy: "ns/p".to_string(),
            database: "app".to_string(),
            server_version: "15.18".to_string(),
            pg_dump_version: "15.18".to_string(),
            dump_format: "custom".to_string(),
            object: dump_name("x", true),
            started_at: t,
            completed_at: t,
            size_bytes: 10,
            sha256: "00".repeat(32),
            encryption: Some(AGE_SCRYPT.to_string()),
            compression_level: Some(6),
            tool_version: "0.1.0".to_string(),
        }
    }

    #[test]
    fn round_trip_and_foreign_json_is_ignored() {
        let m = sample();
        assert_eq!(Manifest::parse(m.to_json().as_bytes()), Some(m.clone()));
        assert!(m.id.starts_with("20260106T030000Z-"), "{}", m.id);
        let mut other = m.clone();
        other.format = "someone-else/v1".to_string();
        assert_eq!(Manifest::parse(other.to_json().as_bytes()), None);
        assert_eq!(Manifest::parse(b"{\"id\":\"x\"}"), None);
        assert_eq!(Manifest::parse(b"not json"), None);
    }

    #[test]
    fn inventory_sums_and_bounds() {
        let a = sample();
        let mut b = sample();
        b.completed_at = a.completed_at + chrono::TimeDelta::days(1);
        b.size_bytes = 5;
        let inv = inventory(&[a.clone(), b.clone()]);
        assert_eq!(inv.count, 2);
        assert_eq!(inv.total_bytes, 15);
        assert_eq!(inv.oldest, Some(a.completed_at));
        assert_eq!(inv.newest, Some(b.completed_at));
        assert_eq!(inventory(&[]).count, 0);
    }
}
