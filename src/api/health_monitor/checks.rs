//! What makes one probe up, and the components read from the response body.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::common::{Duration, STATUS_CODE_PATTERN};

/// What makes one probe *up*: every check listed must pass.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProbeChecks {
    /// Accepted status codes: codes (`200`), classes (`2xx`) or ranges (`200-299`). Defaults to
    /// `2xx`. Ignored for tcp targets.
    #[serde(default = "default_status_codes")]
    #[schemars(length(min = 1, max = 16), inner(regex(pattern = STATUS_CODE_PATTERN)))]
    pub status_codes: Vec<String>,
    /// A probe slower than this is down even if everything else passes. Unset means only the
    /// timeout applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency: Option<Duration>,
    /// Assertions on the JSON response body, e.g. `$.status == "healthy"`. A body that is not
    /// JSON fails them all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub json: Vec<JsonAssertion>,
    /// Certificate expiry horizon: a probe is down when the server certificate expires within
    /// this time (e.g. `14d`), so renewal failures are caught before users see them. https only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_certificate_validity: Option<Duration>,
}

impl Default for ProbeChecks {
    fn default() -> Self {
        Self {
            status_codes: default_status_codes(),
            max_latency: None,
            json: Vec::new(),
            min_certificate_validity: None,
        }
    }
}

fn default_status_codes() -> Vec<String> {
    vec!["2xx".to_string()]
}

/// One assertion on the JSON body: the value at `path` compared with `value` (or `values`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "self.operator == 'exists' ? (!has(self.value) && !has(self.values)) : self.operator == 'in' ? (has(self.values) && !has(self.value)) : (has(self.value) && !has(self.values))",
    "message": "exists takes no value, in takes values, every other operator takes value"
}]))]
pub struct JsonAssertion {
    /// JSONPath of the value, rooted at `$`: dotted names and `[index]` / `['name']`
    /// brackets, e.g. `$.services.database` or `$.checks[0].status`.
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^\$"))]
    pub path: String,
    /// How the value is compared.
    pub operator: JsonOperator,
    /// The expected value, written as a string: compared as a number when the body holds a
    /// number (`"200"`), as a boolean for booleans (`"true"`), as text otherwise; a regular
    /// expression for `matches`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub value: Option<String>,
    /// Accepted values for `in`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 32))]
    pub values: Vec<String>,
}

/// Comparison of a JSON assertion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum JsonOperator {
    /// Equal to `value`.
    #[serde(rename = "==")]
    Eq,
    /// Not equal to `value` (a missing value is not equal).
    #[serde(rename = "!=")]
    Ne,
    /// A number less than `value`.
    #[serde(rename = "<")]
    Lt,
    /// A number greater than `value`.
    #[serde(rename = ">")]
    Gt,
    /// Equal to one of `values`.
    #[serde(rename = "in")]
    In,
    /// Present (any value, including null).
    #[serde(rename = "exists")]
    Exists,
    /// A string matching the regular expression in `value`.
    #[serde(rename = "matches")]
    Matches,
}

/// A named part of the application whose state is read from the JSON body, e.g. `database` at
/// `$.services.database`. Each component has its own up/down per probe, availability statistics
/// and (through `valuePath`) an optional number such as its latency or hit rate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.jsonPath) || has(self.valuePath)",
    "message": "set jsonPath, valuePath or both"
}]))]
pub struct Component {
    /// Name used in status, alerts and thresholds, e.g. `database` or `openai`.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9_]*[a-z0-9])?$")
    )]
    pub name: String,
    /// JSONPath of the component's state, e.g. `$.services.ai_providers.openai`. The component
    /// is up when the value is one of `healthyValues`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^\$"))]
    pub json_path: Option<String>,
    /// Values of `jsonPath` that mean up, compared as text (`true` matches a JSON boolean).
    /// Defaults to `ok`, `healthy`, `up` and `true`.
    #[serde(default = "default_healthy_values")]
    #[schemars(length(min = 1, max = 16))]
    pub healthy_values: Vec<String>,
    /// JSONPath of a number the endpoint reports for this component (DB latency in ms, cache
    /// hit rate in %), kept as statistics and usable in `ComponentValue` thresholds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^\$"))]
    pub value_path: Option<String>,
}

fn default_healthy_values() -> Vec<String> {
    ["ok", "healthy", "up", "true"]
        .into_iter()
        .map(String::from)
        .collect()
}
