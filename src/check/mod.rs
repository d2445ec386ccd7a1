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

/// Expands the command-line paths: files as given, directories recursively (not into hidden or
/// symlinked directories) to their `*.yaml` and `*.yml` files in name order, `-` as standard
/// input.
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
        let hidden = path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with('.'));
        let symlink = path
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink());
        if path.is_dir() {
            // Hidden directories (.git, .github) hold no manifests; symlinked ones may loop.
            if !hidden && !symlink {
                collect_dir(&path, inputs)?;
            }
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
        // `kind: List` (what `kubectl get -o yaml` writes): check every item, with lines found
        // under `items[i]`.
        if value.get("apiVersion").and_then(Value::as_str) == Some("v1")
            && value.get("kind").and_then(Value::as_str) == Some("List")
            && let Some(items) = value.get("items").and_then(Value::as_array)
        {
            for (index, item) in items.iter().enumerate() {
                let prefix = yaml::join_index("items", index);
                let line_of = |path: &str| {
                    document.line_of(&if path.is_empty() {
                        prefix.clone()
                    } else {
                        format!("{prefix}.{path}")
                    })
                };
                self.check_object(label, item, document.index, &line_of);
            }
            return;
        }
        self.check_object(label, value, document.index, &|path| document.line_of(path));
    }

    /// Checks one object; `line_of` locates a field path of the object in its file.
    fn check_object(
        &mut self,
        label: &str,
        value: &Value,
        index: usize,
        line_of: &dyn Fn(&str) -> usize,
    ) {
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
            line: line_of(""),
            index,
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
                line: line_of(&error.path),
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
        if errors.is_empty() {
            return api::validate_value(kind, value).unwrap_or_default();
        }
        // Run the semantic rules on the manifest without the fields the schema rejected, so a
        // bad cron expression is still reported next to an unknown field. Errors on or under a
        // field the schema already flagged, and a failed deserialization (path ""), would only
        // restate schema errors.
        // When what is left still does not deserialize (a required field was missing), cut one
        // level higher, a few times, before giving up on semantic errors.
        let mut cuts: Vec<String> = errors.iter().map(|e| e.path.clone()).collect();
        let mut semantic = Vec::new();
        for _ in 0..6 {
            let mut pruned = value.clone();
            for cut in &cuts {
                remove_path(&mut pruned, cut);
            }
            let found = api::validate_value(kind, &pruned).unwrap_or_default();
            if !found.iter().any(|e| e.path.is_empty()) {
                semantic = found;
                break;
            }
            cuts = cuts
                .iter()
                .map(|cut| parent_field(cut).to_string())
                .collect();
        }
        let flagged: Vec<String> = errors.iter().map(|e| e.path.clone()).collect();
        errors.extend(semantic.into_iter().filter(|error| {
            !error.path.is_empty()
                && !flagged
                    .iter()
                    .any(|f| schema::is_within(&error.path, f) || schema::is_within(f, &error.path))
        }));
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

/// The closest ancestor of `path` that is an object field below `spec` (never `spec` itself or
/// a list item), or `path` when there is none.
fn parent_field(path: &str) -> &str {
    let mut current = path;
    while let Some(parent) = yaml::parent_path(current) {
        if !parent.contains('.') {
            return current;
        }
        if !parent.ends_with(']') {
            return parent;
        }
        current = parent;
    }
    path
}

/// Removes the object field at a dotted `path` (`spec.checks.bogus`) from `value`, if present.
/// List items are left in place (removing one would shift the indices of later errors).
fn remove_path(value: &mut Value, path: &str) {
    let Some((parent, field)) = path.rsplit_once('.') else {
        if let Value::Object(map) = value {
            map.remove(path);
        }
        return;
    };
    if field.ends_with(']') {
        return;
    }
    let mut node = value;
    for segment in parent.split('.') {
        let (name, indices) = match segment.find('[') {
            Some(at) => (&segment[..at], &segment[at..]),
            None => (segment, ""),
        };
        let Some(next) = node.get_mut(name) else {
            return;
        };
        node = next;
        for index in indices
            .split(']')
            .filter_map(|part| part.strip_prefix('['))
            .filter_map(|i| i.parse::<usize>().ok())
        {
            let Some(next) = node.get_mut(index) else {
                return;
            };
            node = next;
        }
    }
    if let Value::Object(map) = node {
        map.remove(field);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn remove_path_removes_nested_fields_only() {
        let mut value = json!({ "spec": { "steps": [{ "a": 1, "b": 2 }], "c": 3 }, "d": 4 });
        remove_path(&mut value, "spec.steps[0].a");
        remove_path(&mut value, "spec.c");
        remove_path(&mut value, "d");
        remove_path(&mut value, "spec.steps[0]");
        remove_path(&mut value, "spec.missing.x");
        assert_eq!(value, json!({ "spec": { "steps": [{ "b": 2 }] } }));
    }

    #[test]
    fn items_of_a_list_are_checked_with_their_lines() {
        let text = "\
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: ConfigMap
    metadata:
      name: other
  - apiVersion: watchkeeper.dev/v1alpha1
    kind: CronJobSpec
    metadata:
      name: listed
    spec:
      schedule: \"0 2 * * *\"
      extra: 1
";
        let report = check_str("list.yaml", text, Options::default());
        assert_eq!(report.summary.skipped, 1);
        assert_eq!(report.summary.invalid, 1);
        let error = report.errors.iter().find(|e| e.path == "spec.extra");
        assert_eq!(
            error.map(|e| (e.line, e.name.as_deref())),
            Some((14, Some("listed")))
        );
        assert_eq!(report.documents[1].line, 8);
    }

    #[test]
    fn directories_expand_to_yaml_files_in_name_order() {
        let dir = std::env::temp_dir().join(format!("wk-check-inputs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for file in ["b.yaml", "a/c.yml", "a/notes.txt", ".hidden/d.yaml"] {
            let path = dir.join(file);
            if let Some(parent) = path.parent() {
                let _ = fs::create_dir_all(parent);
            }
            let _ = fs::write(&path, "");
        }
        let inputs = collect_inputs(&[dir.clone(), PathBuf::from("-")]);
        let _ = fs::remove_dir_all(&dir);
        let names: Vec<String> = inputs
            .unwrap_or_default()
            .iter()
            .map(|input| match input {
                Input::Stdin => "-".to_string(),
                Input::File(path) => path
                    .strip_prefix(&dir)
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            })
            .collect();
        assert_eq!(names, ["a/c.yml", "b.yaml", "-"]);
        assert!(collect_inputs(&[dir.join("missing.yaml")]).is_err());
    }

    #[test]
    fn parent_fields_skip_list_items_and_stop_below_spec() {
        assert_eq!(parent_field("spec.a.b"), "spec.a");
        assert_eq!(parent_field("spec.a[0].b"), "spec.a");
        assert_eq!(parent_field("spec.a"), "spec.a");
        assert_eq!(parent_field("spec"), "spec");
    }

    #[test]
    fn semantic_errors_are_reported_next_to_schema_errors() {
        let text = "\
apiVersion: watchkeeper.dev/v1alpha1
kind: CronJobSpec
metadata:
  name: both
spec:
  schedule: \"0 25 * * *\"
  timeZone: Europe/Berlin
  surprise: true
  monitoring:
    alerting:
      channels:
        - name: slack
          slack:
            webhookUrl: https://hooks.example.com/inlined
";
        let report = check_str("t.yaml", text, Options::default());
        let paths: Vec<&str> = report.errors.iter().map(|e| e.path.as_str()).collect();
        assert!(paths.contains(&"spec.surprise"), "{paths:?}");
        assert!(paths.contains(&"spec.schedule"), "{paths:?}");
        assert!(
            paths.contains(&"spec.monitoring.alerting.channels[0].slack.webhookUrl"),
            "{paths:?}"
        );
        let surprise = report.errors.iter().find(|e| e.path == "spec.surprise");
        assert_eq!(surprise.map(|e| e.line), Some(8));
    }
}
