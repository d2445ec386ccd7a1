//! Backup engine: pure decisions about backups with no Kubernetes types and no I/O. The
//! BackupPolicy controller lists backups, asks [`retention::plan`] what to delete, and deletes.

pub mod retention;

pub use retention::{
    BackupRecord, KeepReason, RetentionDecision, RetentionPolicy, plan, sample_daily_history,
};
