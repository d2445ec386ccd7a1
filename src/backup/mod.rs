//! Backup engine, with no Kubernetes types: the pure retention planner ([`retention`]), the
//! agent's configuration ([`config`], read from `WATCHKEEPER_AGENT_CONFIG`) and its report
//! ([`report`], written to the termination message), and the data path of
//! `watchkeeper agent backup|verify|restore`.

pub mod config;
pub mod crypto;
pub mod dump;
pub mod manifest;
pub mod pg;
pub mod prune;
pub mod report;
pub mod restore;
pub mod retention;
pub mod store;
pub mod verify;

pub use retention::{
    BackupRecord, KeepReason, RetentionDecision, RetentionPolicy, plan, sample_daily_history,
};
