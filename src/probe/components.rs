//! Components: named parts of the application whose state (and an optional number) is read
//! from the JSON body, e.g. `database` at `$.services.database`.

use serde_json::Value;

use super::checks::{scalar_text, truncate, value_equals};
use super::error::ProbeError;
use super::json_path::JsonPath;
use super::spec::ComponentOutcome;

/// Values that mean up when a component does not list its own.
pub const DEFAULT_HEALTHY_VALUES: [&str; 4] = ["ok", "healthy", "up", "true"];

/// One compiled component.
#[derive(Clone, Debug)]
pub struct ComponentSpec {
    name: String,
    state_path: Option<JsonPath>,
    healthy_values: Vec<String>,
    value_path: Option<JsonPath>,
}

impl ComponentSpec {
    /// Compiles a component. `state_path` names its state (up when the value is one of
    /// `healthy_values`, compared as text; empty means [`DEFAULT_HEALTHY_VALUES`]);
    /// `value_path` a number it reports. At least one path must be given. `field` names the
    /// component in errors (e.g. `components[2]`).
    pub fn new(
        field: &str,
        name: &str,
        state_path: Option<&str>,
        healthy_values: &[String],
        value_path: Option<&str>,
    ) -> Result<Self, ProbeError> {
        let parse = |suffix: &str, path: Option<&str>| {
            path.map(|p| {
                JsonPath::parse(p).map_err(|source| ProbeError::JsonPath {
                    field: format!("{field}.{suffix}"),
                    source,
                })
            })
            .transpose()
        };
        let state_path = parse("jsonPath", state_path)?;
        let value_path = parse("valuePath", value_path)?;
        if state_path.is_none() && value_path.is_none() {
            return Err(ProbeError::Assertion {
                field: field.to_string(),
                message: format!("component {name:?} needs a jsonPath, a valuePath or both"),
            });
        }
        let healthy_values = if healthy_values.is_empty() {
            DEFAULT_HEALTHY_VALUES
                .iter()
                .map(|v| v.to_string())
                .collect()
        } else {
            healthy_values.to_vec()
        };
        Ok(Self {
            name: name.to_string(),
            state_path,
            healthy_values,
            value_path,
        })
    }

    /// The component's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads the component from a JSON body. With a state path the component is up when the
    /// value there is a healthy value; with only a value path, when a number could be read.
    pub fn evaluate(&self, document: &Value) -> ComponentOutcome {
        let state = self
            .state_path
            .as_ref()
            .and_then(|path| path.lookup(document));
        let value = self
            .value_path
            .as_ref()
            .and_then(|path| path.lookup(document))
            .and_then(as_number);
        let up = match &self.state_path {
            Some(_) => state.is_some_and(|v| {
                self.healthy_values
                    .iter()
                    .any(|healthy| value_equals(v, healthy))
            }),
            None => value.is_some(),
        };
        ComponentOutcome {
            name: self.name.clone(),
            up,
            has_state: self.state_path.is_some(),
            value,
            raw: state.map(|v| truncate(&scalar_text(v).unwrap_or_else(|| v.to_string()), 120)),
        }
    }

    /// The component when there is no JSON body to read it from: down, nothing read.
    pub fn unreadable(&self) -> ComponentOutcome {
        ComponentOutcome {
            name: self.name.clone(),
            up: false,
            has_state: self.state_path.is_some(),
            value: None,
            raw: None,
        }
    }
}

/// A number from a JSON number or a string holding one (`"12.5"`); endpoints report both.
fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
        _ => None,
    }
}
