//! Checks on one response: status codes and JSON assertions.

use std::fmt;

use regex::Regex;
use serde_json::Value;

use super::error::ProbeError;
use super::json_path::JsonPath;

/// Whether `code` is accepted by one status-code entry: a code (`200`), a class (`2xx`) or an
/// inclusive range (`200-299`). Malformed entries accept nothing. Same rules as the API's
/// validation of `checks.statusCodes`.
pub fn status_code_matches(entry: &str, code: u16) -> bool {
    let entry = entry.trim();
    if let Some(class) = entry.strip_suffix("xx") {
        return class.parse::<u16>().is_ok_and(|c| code / 100 == c);
    }
    match entry.split_once('-') {
        Some((low, high)) => match (low.trim().parse::<u16>(), high.trim().parse::<u16>()) {
            (Ok(low), Ok(high)) => (low..=high).contains(&code),
            _ => false,
        },
        None => entry.parse::<u16>().is_ok_and(|c| c == code),
    }
}

/// Comparison of a JSON assertion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonOperator {
    /// Equal to the value.
    Eq,
    /// Not equal to the value; a missing value is not equal.
    Ne,
    /// A number less than the value.
    Lt,
    /// A number greater than the value.
    Gt,
    /// Equal to one of the values.
    In,
    /// Present, whatever its value (null included).
    Exists,
    /// A string (or number or boolean, as text) matching a regular expression.
    Matches,
}

impl fmt::Display for JsonOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Gt => ">",
            Self::In => "in",
            Self::Exists => "exists",
            Self::Matches => "matches",
        })
    }
}

#[derive(Clone, Debug)]
enum Expected {
    Text(String),
    Number(f64),
    List(Vec<String>),
    Nothing,
    Pattern(Regex),
}

/// One compiled assertion on the JSON body, e.g. `$.status == "healthy"`.
#[derive(Clone, Debug)]
pub struct JsonAssertion {
    path: JsonPath,
    operator: JsonOperator,
    expected: Expected,
    text: String,
}

impl JsonAssertion {
    /// Compiles an assertion. `value` is the expected value written as text (compared as a
    /// number against numbers, as a boolean against booleans, as text otherwise; a regular
    /// expression for `Matches`); `values` is the list for `In`. `field` names the assertion in
    /// errors (e.g. `checks.json[0]`).
    pub fn new(
        field: &str,
        path: &str,
        operator: JsonOperator,
        value: Option<&str>,
        values: &[String],
    ) -> Result<Self, ProbeError> {
        let bad = |message: &str| ProbeError::Assertion {
            field: field.to_string(),
            message: message.to_string(),
        };
        let parsed = JsonPath::parse(path).map_err(|source| ProbeError::JsonPath {
            field: format!("{field}.path"),
            source,
        })?;
        let expected = match operator {
            JsonOperator::Exists => {
                if value.is_some() || !values.is_empty() {
                    return Err(bad("exists takes no value"));
                }
                Expected::Nothing
            }
            JsonOperator::In => {
                if value.is_some() || values.is_empty() {
                    return Err(bad("in takes a non-empty list of values and no value"));
                }
                Expected::List(values.to_vec())
            }
            _ if !values.is_empty() => return Err(bad("only `in` takes a list of values")),
            JsonOperator::Eq | JsonOperator::Ne => {
                Expected::Text(value.ok_or_else(|| bad("a value is required"))?.to_string())
            }
            JsonOperator::Lt | JsonOperator::Gt => {
                let text = value.ok_or_else(|| bad("a value is required"))?;
                let number = text
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite())
                    .ok_or_else(|| bad(&format!("{operator} needs a number, not {text:?}")))?;
                Expected::Number(number)
            }
            JsonOperator::Matches => {
                let text = value.ok_or_else(|| bad("a regular expression is required"))?;
                Expected::Pattern(Regex::new(text).map_err(|source| ProbeError::Regex {
                    field: format!("{field}.value"),
                    source,
                })?)
            }
        };
        let text = match (&expected, value) {
            (Expected::Nothing, _) => format!("{parsed} exists"),
            (Expected::List(list), _) => format!("{parsed} in {list:?}"),
            (_, Some(v)) => format!("{parsed} {operator} {v:?}"),
            (_, None) => format!("{parsed} {operator}"),
        };
        Ok(Self {
            path: parsed,
            operator,
            expected,
            text,
        })
    }

    /// Parses the short form used in examples and the CLI: `$.status == "healthy"`,
    /// `$.latency_ms < 200`, `$.version matches "^1\."`, `$.region in ["eu", "us"]`,
    /// `$.build exists`.
    pub fn parse_expression(field: &str, expression: &str) -> Result<Self, ProbeError> {
        let bad = |message: String| ProbeError::Assertion {
            field: field.to_string(),
            message,
        };
        let expression = expression.trim();
        if let Some(path) = expression.strip_suffix(" exists") {
            return Self::new(field, path.trim(), JsonOperator::Exists, None, &[]);
        }
        let operators = [
            (" == ", JsonOperator::Eq),
            (" != ", JsonOperator::Ne),
            (" < ", JsonOperator::Lt),
            (" > ", JsonOperator::Gt),
            (" in ", JsonOperator::In),
            (" matches ", JsonOperator::Matches),
        ];
        let Some((path, operator, rest)) = operators.iter().find_map(|(token, operator)| {
            expression
                .split_once(token)
                .map(|(path, rest)| (path.trim(), *operator, rest.trim()))
        }) else {
            return Err(bad(format!(
                "{expression:?} is not `<path> <operator> <value>` with ==, !=, <, >, in, matches or exists"
            )));
        };
        let unquote = |text: &str| -> String {
            match serde_json::from_str::<Value>(text) {
                Ok(Value::String(s)) => s,
                _ => ['"', '\'']
                    .iter()
                    .find_map(|q| text.strip_prefix(*q)?.strip_suffix(*q))
                    .unwrap_or(text)
                    .to_string(),
            }
        };
        if operator == JsonOperator::In {
            let Ok(Value::Array(items)) = serde_json::from_str::<Value>(rest) else {
                return Err(bad(format!(
                    "in needs a JSON list such as [\"a\", \"b\"], not {rest:?}"
                )));
            };
            let values: Vec<String> = items
                .iter()
                .map(|item| match item {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            return Self::new(field, path, operator, None, &values);
        }
        Self::new(field, path, operator, Some(&unquote(rest)), &[])
    }

    /// The JSONPath the assertion reads.
    pub fn path(&self) -> &JsonPath {
        &self.path
    }

    /// The comparison.
    pub fn operator(&self) -> JsonOperator {
        self.operator
    }

    /// Checks `document`; on failure, says what was expected and what was found.
    pub fn check(&self, document: &Value) -> Result<(), String> {
        let found = self.path.lookup(document);
        let passed = match (&self.expected, found) {
            (Expected::Nothing, found) => found.is_some(),
            (Expected::Text(text), found) => {
                let equal = found.is_some_and(|v| value_equals(v, text));
                equal == (self.operator == JsonOperator::Eq)
            }
            (Expected::List(list), Some(v)) => list.iter().any(|text| value_equals(v, text)),
            (Expected::Number(limit), Some(v)) => match v.as_f64() {
                Some(n) if self.operator == JsonOperator::Lt => n < *limit,
                Some(n) => n > *limit,
                None => {
                    return Err(format!(
                        "{}: found {}, not a number",
                        self.text,
                        describe(v)
                    ));
                }
            },
            (Expected::Pattern(pattern), Some(v)) => {
                scalar_text(v).is_some_and(|text| pattern.is_match(&text))
            }
            (_, None) => false,
        };
        if passed {
            Ok(())
        } else {
            Err(match found {
                Some(v) => format!("{}: found {}", self.text, describe(v)),
                None => format!("{}: {} is not present", self.text, self.path),
            })
        }
    }
}

impl fmt::Display for JsonAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Whether a body value equals an expected value written as text: numerically for numbers,
/// as `true`/`false` for booleans, `null` for null, as text for strings, and as JSON for
/// objects and arrays.
pub(crate) fn value_equals(value: &Value, text: &str) -> bool {
    match value {
        Value::String(s) => s == text,
        Value::Number(n) => match (n.as_f64(), text.trim().parse::<f64>()) {
            (Some(a), Ok(b)) => a == b,
            _ => false,
        },
        Value::Bool(b) => text
            .trim()
            .eq_ignore_ascii_case(if *b { "true" } else { "false" }),
        Value::Null => text.trim() == "null",
        other => serde_json::from_str::<Value>(text).is_ok_and(|parsed| &parsed == other),
    }
}

/// Text of a scalar value (strings unquoted); `None` for objects and arrays.
pub(crate) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some("null".to_string()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// A value as JSON, cut to a length fit for a status line.
pub(crate) fn describe(value: &Value) -> String {
    truncate(&value.to_string(), 120)
}

/// `text` cut to at most `max` characters, with an ellipsis when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(max).collect();
        cut.push('…');
        cut
    }
}
