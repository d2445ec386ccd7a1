//! watchkeeper: a Kubernetes operator that turns an operations guide into reconciled resources.
//!
//! Layers, dependencies pointing down only:
//! - [`cli`]: argument parsing and wiring.
//! - `controller`: one kube-rs `Controller` per kind (adapts the engines to Kubernetes).
//! - [`check`]: offline validation and previews for GitOps pipelines.
//! - [`api`]: the five CRD types and their validation (plain data, no I/O).
//! - engines with no Kubernetes types: [`schedule`], [`backup`], ...

pub mod agent;
pub mod alert;
pub mod api;
pub mod backup;
pub mod bench;
pub mod check;
pub mod cli;
pub mod controller;
pub mod crdgen;
pub mod docs;
pub mod failover;
pub mod jobs;
pub mod monitor;
pub mod probe;
pub mod run;
pub mod schedule;
pub mod telemetry;
