//! `watchkeeper check`: offline validation and previews of manifests for GitOps pipelines.

pub mod yaml;
