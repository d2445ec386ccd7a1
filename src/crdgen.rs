//! Renders the CRDs generated from the API types, the source of `crds/` and the Helm chart's CRDs.

use std::{fs, io, path::Path};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

use crate::api;

/// Errors of `crdgen`.
#[derive(Debug, thiserror::Error)]
pub enum CrdgenError {
    #[error("unknown kind {0:?}: expected one of {kinds}", kinds = api::KINDS.join(", "))]
    UnknownKind(String),
    #[error("cannot render CRD {name} as YAML: {source}")]
    Render {
        name: String,
        source: serde_yaml::Error,
    },
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error(
        "{0} differ from `watchkeeper crdgen` output; run `watchkeeper crdgen --out-dir crds` and commit"
    )]
    Drift(String),
}

/// File name of a CRD inside `crds/`: `<plural>.<group>.yaml`, as CRDs are named.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}

/// One CRD as a YAML document (with the leading `---`), deterministic byte for byte.
pub fn render(crd: &CustomResourceDefinition) -> Result<String, CrdgenError> {
    let body = serde_yaml::to_string(crd).map_err(|source| CrdgenError::Render {
        name: crd.metadata.name.clone().unwrap_or_default(),
        source,
    })?;
    Ok(format!("---\n{body}"))
}

/// The CRDs selected by `kind` (all when `None`).
pub fn select(kind: Option<&str>) -> Result<Vec<CustomResourceDefinition>, CrdgenError> {
    let all = api::crds();
    match kind {
        None => Ok(all),
        Some(kind) => all
            .into_iter()
            .find(|crd| {
                crd.spec.names.kind.eq_ignore_ascii_case(kind)
                    || crd
                        .spec
                        .names
                        .short_names
                        .iter()
                        .flatten()
                        .any(|s| s == kind)
            })
            .map(|crd| vec![crd])
            .ok_or_else(|| CrdgenError::UnknownKind(kind.to_string())),
    }
}

/// Writes one file per CRD into `dir`.
pub fn write_dir(dir: &Path, crds: &[CustomResourceDefinition]) -> Result<(), CrdgenError> {
    let io_err = |path: &Path| {
        let path = path.display().to_string();
        move |source| CrdgenError::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    for crd in crds {
        let path = dir.join(file_name(crd));
        fs::write(&path, render(crd)?).map_err(io_err(&path))?;
    }
    Ok(())
}

/// Compares `dir` with what [`write_dir`] would write; lists the files that differ or are missing.
pub fn check_dir(dir: &Path, crds: &[CustomResourceDefinition]) -> Result<(), CrdgenError> {
    let mut stale = Vec::new();
    for crd in crds {
        let path = dir.join(file_name(crd));
        if fs::read_to_string(&path).ok().as_deref() != Some(render(crd)?.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    if stale.is_empty() {
        Ok(())
    } else {
        Err(CrdgenError::Drift(stale.join(", ")))
    }
}
