//! What `check` found, as data (serialized for `--output json`) and as text for people.

use std::fmt::{self, Write as _};

use serde::Serialize;

use super::preview::Preview;

/// The result of checking every input.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Every document read, in input order (empty YAML documents are left out).
    pub documents: Vec<DocumentReport>,
    /// Every error, in input order and by line within a file.
    pub errors: Vec<ErrorLine>,
    /// Counts, for a one-line summary.
    pub summary: Summary,
}

/// Counts over a [`Report`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Files (or standard input) read.
    pub files: usize,
    /// watchkeeper documents without errors.
    pub valid: usize,
    /// watchkeeper documents with at least one error.
    pub invalid: usize,
    /// Documents of other APIs, not checked.
    pub skipped: usize,
    /// Number of errors, including YAML syntax and read errors.
    pub errors: usize,
}

/// What happened to one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Status {
    /// A watchkeeper resource with no errors.
    Valid,
    /// A watchkeeper resource (or a document that claims to be one) with errors.
    Invalid,
    /// Not a watchkeeper resource; `check` leaves it to other tools.
    Skipped,
}

/// One YAML document of one input.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentReport {
    /// File name as given (`-` for standard input).
    pub file: String,
    /// 1-based line where the document starts.
    pub line: usize,
    /// Position of the document in its file, from 0.
    pub index: usize,
    /// `apiVersion`, when set.
    pub api_version: Option<String>,
    /// `kind`, when set.
    pub kind: Option<String>,
    /// `metadata.name`, when set.
    pub name: Option<String>,
    /// Outcome.
    pub status: Status,
    /// Why the document was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    /// Number of errors in this document.
    pub error_count: usize,
    /// What the resource means (schedules, windows, steps, retention), for valid resources.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<Preview>,
}

impl DocumentReport {
    /// `kind/name` as error lines show it.
    pub fn label(&self) -> String {
        object_label(self.kind.as_deref(), self.name.as_deref())
    }
}

/// `kind/name`, with placeholders for what is missing.
pub fn object_label(kind: Option<&str>, name: Option<&str>) -> String {
    format!(
        "{}/{}",
        kind.unwrap_or("<no kind>"),
        name.unwrap_or("<no name>")
    )
}

/// One problem, located in a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorLine {
    /// File name as given (`-` for standard input).
    pub file: String,
    /// 1-based line of the offending field (or of its closest written ancestor).
    pub line: usize,
    /// Kind of the object, when known.
    pub kind: Option<String>,
    /// Name of the object, when known.
    pub name: Option<String>,
    /// Field path from the object root (`spec.steps[2].timeout`); empty for the whole object or
    /// for problems outside any object (YAML syntax, unreadable file).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ErrorLine {
    /// `FILE:LINE kind/name: spec.path: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if self.kind.is_some() || self.name.is_some() {
            write!(
                f,
                " {}",
                object_label(self.kind.as_deref(), self.name.as_deref())
            )?;
        }
        if self.path.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.path, self.message)
        }
    }
}

impl Report {
    /// Whether `check` should exit with status 1.
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// The human-readable report: error lines first (what CI logs must show), then skipped
    /// documents, the previews and a summary line.
    pub fn to_text(&self, with_previews: bool) -> String {
        let mut out = String::new();
        for error in &self.errors {
            let _ = writeln!(out, "{error}");
        }
        for doc in self
            .documents
            .iter()
            .filter(|d| d.status == Status::Skipped)
        {
            let _ = writeln!(
                out,
                "{}:{} skipped {} {}: {}",
                doc.file,
                doc.line,
                doc.api_version.as_deref().unwrap_or("<no apiVersion>"),
                doc.label(),
                doc.skip_reason
                    .as_deref()
                    .unwrap_or("not a watchkeeper resource"),
            );
        }
        if with_previews {
            for doc in &self.documents {
                if let Some(preview) = &doc.preview {
                    let _ = writeln!(out, "\n{} ({}:{})", doc.label(), doc.file, doc.line);
                    out.push_str(&preview.to_text());
                }
            }
            if self.documents.iter().any(|d| d.preview.is_some()) {
                out.push('\n');
            }
        }
        let s = &self.summary;
        let _ = writeln!(
            out,
            "{} file(s): {} valid, {} invalid, {} skipped; {} error(s)",
            s.files, s.valid, s.invalid, s.skipped, s.errors
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines_have_the_documented_shape() {
        let error = ErrorLine {
            file: "a.yaml".into(),
            line: 7,
            kind: Some("FailoverPlan".into()),
            name: Some("db".into()),
            path: "spec.steps[2].timeout".into(),
            message: "must be a duration".into(),
        };
        assert_eq!(
            error.to_string(),
            "a.yaml:7 FailoverPlan/db: spec.steps[2].timeout: must be a duration"
        );
        let syntax = ErrorLine {
            kind: None,
            name: None,
            path: String::new(),
            ..error
        };
        assert_eq!(syntax.to_string(), "a.yaml:7: must be a duration");
    }
}
