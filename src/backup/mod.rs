//! Backup engine, with no Kubernetes types: the pure retention planner ([`retention`]), the
//! agent's configuration ([`config`], read from `WATCHKEEPER_AGENT_CONFIG`) and its report
//! ([`report`], written to the termination message), and the data path of
//! `watchkeeper agent backup|verify|restore`.

pub mod config;
pub mod report;
pub mod retention;

pub use retention::{
    BackupRecord, KeepReason, RetentionDecision, RetentionPolicy, plan, sample_daily_history,
};
