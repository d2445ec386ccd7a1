//! Probe engine tests: pure checks, and real probes against servers on 127.0.0.1.

mod assertions;
mod http;
mod pki;
mod server;
mod tls;

use std::time::Duration;

use super::{Checks, ComponentSpec, HttpTarget, JsonAssertion, ProbeSpec, Target};

/// A probe of `target` with a 2 s timeout, default checks and no components.
fn spec(target: HttpTarget) -> ProbeSpec {
    ProbeSpec {
        target: Target::Http(target),
        timeout: Duration::from_secs(2),
        checks: Checks::default(),
        components: Vec::new(),
    }
}

fn assertion(expression: &str) -> JsonAssertion {
    JsonAssertion::parse_expression("test", expression).unwrap()
}

fn component(name: &str, path: &str) -> ComponentSpec {
    ComponentSpec::new("test", name, Some(path), &[], None).unwrap()
}
