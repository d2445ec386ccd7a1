//! `watchkeeper check`: offline validation and previews of manifests for GitOps pipelines.
//!
//! Every watchkeeper document is validated twice, the way the cluster would: against the
//! generated CRD schema ([`schema::validate_against_crd`], what the API server enforces) and
//! against the semantic rules ([`crate::api::validate_value`], what the controller enforces).
//! Documents of other APIs are listed as skipped. Valid resources get a preview of what they mean
//! (next fire times, windows, step plans, retention), computed with the same engines the
//! controller uses.

pub mod preview;
pub mod report;
pub mod schema;
pub mod yaml;

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use chrono::{DateTime, Utc};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

use crate::api::{self, FieldError};
use report::{DocumentReport, ErrorLine, Report, Status};

/// Errors that stop `check` before it can report on the manifests.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// A path given on the command line does not exist or cannot be listed.
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    /// The JSON report could not be rendered.
    #[error("cannot render the JSON report: {0}")]
    Json(#[from] serde_json::Error),
}

/// Settings of one `check` run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Reference time of previews ("the next 5 fire times after now").
    pub now: DateTime<Utc>,
    /// Whether to compute previews for valid resources.
    pub previews: bool,
    /// How many fire times and windows previews show.
    pub count: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            now: Utc::now(),
            previews: true,
            count: 5,
        }
    }
}

/// One input: a file, or standard input (named `-`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Read from standard input.
    Stdin,
    /// Read this file.
    File(PathBuf),
}

/// Expands the command-line paths: files as given, directories recursively to their `*.yaml`
/// and `*.yml` files in name order, `-` as standard input.
pub fn collect_inputs(paths: &[PathBuf]) -> Result<Vec<Input>, CheckError> {
    let mut inputs = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            inputs.push(Input::Stdin);
        } else if path.is_dir() {
            collect_dir(path, &mut inputs)?;
        } else if path.exists() {
            inputs.push(Input::File(path.clone()));
        } else {
            return Err(CheckError::Io {
                path: path.display().to_string(),
                source: io::Error::new(io::ErrorKind::NotFound, "no such file or directory"),
            });
        }
    }
    Ok(inputs)
}

fn collect_dir(dir: &Path, inputs: &mut Vec<Input>) -> Result<(), CheckError> {
    let io_err = |source| CheckError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(io_err)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io_err)?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_dir(&path, inputs)?;
        } else if path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml")
        {
            inputs.push(Input::File(path));
        }
    }
    Ok(())
}

/// Checks manifests; reusable by tests and other commands.
pub struct Checker {
    crds: Vec<CustomResourceDefinition>,
    options: Options,
    report: Report,
}

impl Checker {
    /// A checker for the CRDs generated from this binary's API types.
    pub fn new(options: Options) -> Self {
        Self {
            crds: api::crds(),
            options,
            report: Report::default(),
        }
    }

    /// Reads and checks one input; read errors become report errors.
    pub fn check_input(&mut self, input: &Input) {
        let (label, text) = match input {
            Input::Stdin => ("-".to_string(), io::read_to_string(io::stdin())),
            Input::File(path) => (path.display().to_string(), fs::read_to_string(path)),
        };
        match text {
            Ok(text) => self.check_text(&label, &text),
            Err(error) => {
                self.report.summary.files += 1;
                self.push_error(ErrorLine {
                    file: label,
                    line: 1,
                    kind: None,
                    name: None,
                    path: String::new(),
                    message: format!("cannot read: {error}"),
                });
            }
        }
    }

    /// Checks the YAML stream `text`, reporting it as file `label`.
    pub fn check_text(&mut self, label: &str, text: &str) {
        self.report.summary.files += 1;
        let stream = yaml::load(text);
        for document in &stream.documents {
            self.check_document(label, document);
        }
        if let Some(error) = stream.error {
            self.push_error(ErrorLine {
                file: label.to_string(),
                line: error.line,
                kind: None,
                name: None,
                path: String::new(),
                message: format!("invalid YAML: {}", error.message),
            });
        }
    }

    fn push_error(&mut self, error: ErrorLine) {
        self.report.summary.errors += 1;
        self.report.errors.push(error);
    }

    fn check_document(&mut self, label: &str, document: &yaml::Document) {
        let value = &document.value;
        if value.is_null() {
            return;
        }
        let text_field = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_string);
        let api_version = text_field("apiVersion");
        let kind = text_field("kind");
        let name = value
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let mut doc = DocumentReport {
            file: label.to_string(),
            line: document.line,
            index: document.index,
            api_version: api_version.clone(),
            kind: kind.clone(),
            name: name.clone(),
            status: Status::Valid,
            skip_reason: None,
            error_count: 0,
            preview: None,
        };
        let is_watchkeeper_kind = kind.as_deref().is_some_and(|k| api::KINDS.contains(&k));
        let claims_watchkeeper = match api_version.as_deref() {
            Some(v) => v.split('/').next() == Some(api::GROUP),
            None => is_watchkeeper_kind,
        };
        let errors = if !value.is_object() {
            vec![FieldError::new(
                "",
                "document must be a mapping with apiVersion, kind and metadata",
            )]
        } else if !claims_watchkeeper {
            doc.status = Status::Skipped;
            doc.skip_reason = Some(match &api_version {
                None => "no apiVersion, not a Kubernetes resource".to_string(),
                Some(_) => "not a watchkeeper resource".to_string(),
            });
            Vec::new()
        } else {
            self.validate(kind.as_deref(), value)
        };
        let mut lines: Vec<ErrorLine> = errors
            .into_iter()
            .map(|error| ErrorLine {
                file: label.to_string(),
                line: document.line_of(&error.path),
                kind: kind.clone(),
                name: name.clone(),
                path: error.path,
                message: error.message,
            })
            .collect();
        lines.sort_by_key(|line| line.line);
        lines.dedup();
        doc.error_count = lines.len();
        match doc.status {
            Status::Skipped => self.report.summary.skipped += 1,
            _ if !lines.is_empty() => {
                doc.status = Status::Invalid;
                self.report.summary.invalid += 1;
            }
            _ => {
                self.report.summary.valid += 1;
                if self.options.previews
                    && let Some(kind) = kind.as_deref()
                {
                    let options = preview::PreviewOptions {
                        now: self.options.now,
                        count: self.options.count,
                    };
                    doc.preview = preview::preview(kind, value, options);
                }
            }
        }
        for line in lines {
            self.push_error(line);
        }
        self.report.documents.push(doc);
    }

    /// Schema and semantic errors of a document that claims to be a watchkeeper resource.
    fn validate(&self, kind: Option<&str>, value: &Value) -> Vec<FieldError> {
        let Some(kind) = kind else {
            return vec![FieldError::new(
                "kind",
                format!("Required value: one of {}", api::KINDS.join(", ")),
            )];
        };
        let Some(crd) = self.crds.iter().find(|crd| crd.spec.names.kind == kind) else {
            return vec![FieldError::new(
                "kind",
                format!(
                    "unknown watchkeeper kind {kind:?}: expected one of {}",
                    api::KINDS.join(", ")
                ),
            )];
        };
        let mut errors = schema::validate_against_crd(crd, value);
        let semantic = api::validate_value(kind, value).unwrap_or_default();
        if errors.is_empty() {
            errors = semantic;
        } else {
            // With schema errors, a failed deserialization (path "") only restates them, and a
            // semantic error on a field the schema already flagged is the same problem twice.
            let flagged: Vec<String> = errors.iter().map(|e| e.path.clone()).collect();
            errors.extend(
                semantic
                    .into_iter()
                    .filter(|error| !error.path.is_empty() && !flagged.contains(&error.path)),
            );
        }
        errors
    }

    /// The finished report.
    pub fn finish(self) -> Report {
        self.report
    }
}

/// Checks every input and returns the report.
pub fn check(inputs: &[Input], options: Options) -> Report {
    let mut checker = Checker::new(options);
    for input in inputs {
        checker.check_input(input);
    }
    checker.finish()
}

/// Checks a YAML text given in memory (used by tests and by the in-process tooling).
pub fn check_str(label: &str, text: &str, options: Options) -> Report {
    let mut checker = Checker::new(options);
    checker.check_text(label, text);
    checker.finish()
}
