//! Reading the manifests `watchkeeper run` is given: validated exactly as `watchkeeper check`
//! does (same `FILE:LINE kind/name: path: message` errors), then split into the HealthMonitors
//! and CronJobSpecs to run and the documents embedded mode cannot run yet.

use crate::api::cron_job_spec::CronJobSpec;
use crate::api::health_monitor::HealthMonitor;
use crate::api::maintenance_window::MaintenanceWindow;
use crate::check::{self, Input, report::ErrorLine, yaml};

use super::RunError;

/// A HealthMonitor read from a manifest, with where it came from.
#[derive(Clone, Debug)]
pub struct LoadedMonitor {
    /// `FILE:LINE` of the document.
    pub origin: String,
    /// The resource.
    pub monitor: HealthMonitor,
}

/// A CronJobSpec read from a manifest, with where it came from.
#[derive(Clone, Debug)]
pub struct LoadedJob {
    /// `FILE:LINE` of the document.
    pub origin: String,
    /// The resource.
    pub job: CronJobSpec,
}

/// What the manifests hold.
#[derive(Debug, Default)]
pub struct Loaded {
    /// HealthMonitors to run.
    pub monitors: Vec<LoadedMonitor>,
    /// CronJobSpecs to run (those with a Job template are refused later, by name).
    pub jobs: Vec<LoadedJob>,
    /// MaintenanceWindows, each with its `FILE:LINE`: the calendar jobs obey.
    pub windows: Vec<(String, MaintenanceWindow)>,
    /// Other watchkeeper resources, as `FILE:LINE Kind/name` (not run in embedded mode yet).
    pub unsupported: Vec<String>,
    /// Documents that are not watchkeeper resources (Deployments, …), as `FILE:LINE kind/name`.
    pub foreign: Vec<String>,
}

/// Reads every input (`-` is standard input) into `(label, text)`.
pub fn read_inputs(inputs: &[Input]) -> Result<Vec<(String, String)>, RunError> {
    inputs
        .iter()
        .map(|input| {
            let (label, text) = match input {
                Input::Stdin => ("-".to_string(), std::io::read_to_string(std::io::stdin())),
                Input::File(path) => (path.display().to_string(), std::fs::read_to_string(path)),
            };
            text.map(|t| (label.clone(), t))
                .map_err(|e| RunError::Read {
                    file: label,
                    source: e,
                })
        })
        .collect()
}

/// Validates every text as `check` does; any error refuses the whole run.
pub fn load(texts: &[(String, String)]) -> Result<Loaded, RunError> {
    let mut checker = check::Checker::new(check::Options {
        previews: false,
        ..check::Options::default()
    });
    for (label, text) in texts {
        checker.check_text(label, text);
    }
    let report = checker.finish();
    if report.has_errors() {
        return Err(RunError::Invalid(report.errors));
    }
    let mut loaded = Loaded::default();
    for (label, text) in texts {
        for document in yaml::load(text).documents {
            collect(label, document.line, &document.value, &mut loaded)?;
        }
    }
    Ok(loaded)
}

fn collect(
    label: &str,
    line: usize,
    value: &serde_json::Value,
    loaded: &mut Loaded,
) -> Result<(), RunError> {
    if value.is_null() {
        return Ok(());
    }
    let field = |name: &str| value.get(name).and_then(serde_json::Value::as_str);
    if field("apiVersion") == Some("v1")
        && field("kind") == Some("List")
        && let Some(items) = value.get("items").and_then(serde_json::Value::as_array)
    {
        for item in items {
            collect(label, line, item, loaded)?;
        }
        return Ok(());
    }
    let kind = field("kind");
    let name = value
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(serde_json::Value::as_str);
    let origin = format!("{label}:{line}");
    let described = format!("{origin} {}", check::report::object_label(kind, name));
    let watchkeeper =
        field("apiVersion").is_some_and(|v| v.split('/').next() == Some(crate::api::GROUP));
    if !watchkeeper {
        loaded.foreign.push(described);
    } else if kind == Some("HealthMonitor") {
        let monitor: HealthMonitor = parse(label, line, kind, name, value)?;
        loaded.monitors.push(LoadedMonitor { origin, monitor });
    } else if kind == Some("CronJobSpec") {
        let job: CronJobSpec = parse(label, line, kind, name, value)?;
        loaded.jobs.push(LoadedJob { origin, job });
    } else if kind == Some("MaintenanceWindow") {
        let window: MaintenanceWindow = parse(label, line, kind, name, value)?;
        loaded.windows.push((origin, window));
    } else {
        loaded.unsupported.push(described);
    }
    Ok(())
}

/// A validated document as its Rust type (cannot fail after validation, but is not trusted to).
fn parse<T: serde::de::DeserializeOwned>(
    label: &str,
    line: usize,
    kind: Option<&str>,
    name: Option<&str>,
    value: &serde_json::Value,
) -> Result<T, RunError> {
    serde_json::from_value(value.clone()).map_err(|e| {
        RunError::Invalid(vec![ErrorLine {
            file: label.to_string(),
            line,
            kind: kind.map(str::to_string),
            name: name.map(str::to_string),
            path: String::new(),
            message: e.to_string(),
        }])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str) -> Vec<(String, String)> {
        vec![("m.yaml".to_string(), text.to_string())]
    }

    #[test]
    fn monitors_jobs_unsupported_and_foreign_documents_are_told_apart() {
        let text = r#"
apiVersion: watchkeeper.dev/v1alpha1
kind: HealthMonitor
metadata: {name: api}
spec:
  target: {url: "http://127.0.0.1:8080/health"}
---
apiVersion: watchkeeper.dev/v1alpha1
kind: CronJobSpec
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  httpTrigger: {url: "https://app.example.com/cron", method: POST}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: app-config}
---
apiVersion: watchkeeper.dev/v1alpha1
kind: MaintenanceWindow
metadata: {name: weekly}
spec:
  schedule: {rrule: {rule: "FREQ=WEEKLY;BYDAY=SA", start: "2026-01-03T04:00:00", duration: 1h}}
  selector: {matchLabels: {app: web}}
"#;
        let loaded = load(&texts(text)).unwrap();
        assert_eq!(loaded.monitors.len(), 1);
        assert_eq!(loaded.monitors[0].origin, "m.yaml:2");
        assert_eq!(
            loaded.monitors[0].monitor.metadata.name.as_deref(),
            Some("api")
        );
        assert_eq!(loaded.jobs.len(), 1);
        assert_eq!(loaded.jobs[0].origin, "m.yaml:8");
        assert_eq!(loaded.jobs[0].job.spec.schedule, "0 3 * * *");
        assert_eq!(loaded.windows.len(), 1);
        assert_eq!(loaded.windows[0].0, "m.yaml:19");
        assert!(loaded.unsupported.is_empty());
        assert_eq!(loaded.foreign, ["m.yaml:15 ConfigMap/app-config"]);
    }

    #[test]
    fn invalid_manifests_are_refused_with_check_errors() {
        let text = r#"apiVersion: watchkeeper.dev/v1alpha1
kind: HealthMonitor
metadata: {name: api}
spec:
  target: {url: "http://127.0.0.1:8080/health"}
  interval: 10s
  timeout: 20s
"#;
        let Err(RunError::Invalid(errors)) = load(&texts(text)) else {
            panic!("expected validation errors");
        };
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("m.yaml:7 HealthMonitor/api: spec.timeout: ")),
            "{lines:?}"
        );
    }
}
