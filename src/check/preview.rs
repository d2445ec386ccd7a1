//! Previews: what a valid resource means, computed with the controller's engines.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// What a resource means, section by section.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Preview {}

impl Preview {
    /// Indented text lines for the report.
    pub fn to_text(&self) -> String {
        String::new()
    }
}

/// The preview of a valid watchkeeper resource, or `None` when its kind has nothing to show.
pub fn preview(_kind: &str, _value: &Value, _now: DateTime<Utc>) -> Option<Preview> {
    None
}
