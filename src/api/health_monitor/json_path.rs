//! The JSONPath subset health checks use. The parser lives in the probe engine
//! ([`crate::probe::json_path`]), which evaluates the paths; validation uses the same code so a
//! path accepted here is one the engine can run.

pub use crate::probe::json_path::{JsonPath, JsonPathError, Segment};
