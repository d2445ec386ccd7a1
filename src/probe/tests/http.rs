//! HTTP and TCP probes against servers on 127.0.0.1.

use std::time::Duration;

use super::server::{self, Body, Reply};
use super::{assertion, component, spec};
use crate::probe::{HttpTarget, ProbeSpec, Prober, RedirectConfig, Target};

const GUIDE_BODY: &str = r#"{"status":"healthy","services":{"database":"ok","ai_providers":{"openai":"ok","claude":"down"},"storage":"ok"},"cache":{"hit_rate":0.82}}"#;

#[tokio::test]
async fn json_assertions_decide_up() {
    let server = server::start(|_| Reply::json(200, GUIDE_BODY)).await;
    let prober = Prober::new();
    let mut probe = spec(HttpTarget::get(server.url("/api/health")));
    probe.checks.json = vec![
        assertion(r#"$.status == "healthy""#),
        assertion(r#"$.services.database in ["ok", "degraded"]"#),
        assertion("$.cache.hit_rate > 0.6"),
    ];
    let outcome = prober.probe(&probe).await;
    assert!(outcome.up, "{outcome:?}");
    assert_eq!(outcome.status_code, Some(200));
    assert!(outcome.error.is_none());

    probe
        .checks
        .json
        .push(assertion(r#"$.services.ai_providers.claude == "ok""#));
    let outcome = prober.probe(&probe).await;
    assert!(!outcome.up);
    assert_eq!(outcome.failed_checks.len(), 1, "{outcome:?}");
    assert!(outcome.failed_checks[0].contains("\"down\""), "{outcome:?}");
}

#[tokio::test]
async fn components_are_read_from_the_body() {
    let server = server::start(|_| Reply::json(200, GUIDE_BODY)).await;
    let mut probe = spec(HttpTarget::get(server.url("/api/health")));
    probe.components = vec![
        component("database", "$.services.database"),
        component("openai", "$.services.ai_providers.openai"),
        component("claude", "$.services.ai_providers.claude"),
        component("storage", "$.services.storage"),
        crate::probe::ComponentSpec::new("c", "cache", None, &[], Some("$.cache.hit_rate"))
            .unwrap(),
    ];
    let outcome = Prober::new().probe(&probe).await;
    assert!(
        outcome.up,
        "components do not decide the probe: {outcome:?}"
    );
    let states: Vec<(&str, bool)> = outcome
        .components
        .iter()
        .map(|c| (c.name.as_str(), c.up))
        .collect();
    assert_eq!(
        states,
        [
            ("database", true),
            ("openai", true),
            ("claude", false),
            ("storage", true),
            ("cache", true)
        ]
    );
    assert_eq!(outcome.components[4].value, Some(0.82));
    let sample = crate::probe::stats::Sample::from(&outcome);
    assert_eq!(sample.at, outcome.at);
    assert!(sample.up);
    let ups: Vec<Option<bool>> = sample.components.iter().map(|c| c.up).collect();
    assert_eq!(
        ups,
        [Some(true), Some(true), Some(false), Some(true), None],
        "a value-only component has no up/down in statistics"
    );
    assert_eq!(sample.components[4].value, Some(0.82));
}

#[tokio::test]
async fn status_codes_are_checked() {
    let server = server::start(|_| Reply::json(503, r#"{"status":"down"}"#)).await;
    let prober = Prober::new();
    let mut probe = spec(HttpTarget::get(server.url("/")));
    let outcome = prober.probe(&probe).await;
    assert!(!outcome.up);
    assert_eq!(outcome.status_code, Some(503));
    assert!(outcome.failed_checks[0].contains("503"), "{outcome:?}");
    probe.checks.status_codes = vec!["200".into(), "500-504".into()];
    assert!(prober.probe(&probe).await.up);
    probe.checks.status_codes = vec![];
    assert!(
        prober.probe(&probe).await.up,
        "an empty list accepts any code"
    );
}

#[tokio::test]
async fn method_headers_and_body_are_sent_and_header_values_stay_out_of_outcomes() {
    let server = server::start(|_| Reply::json(200, "{}")).await;
    let mut target = HttpTarget::get(server.url("/check"));
    target.method = "post".into();
    target.headers = vec![
        ("Authorization".into(), "Bearer s3cr3t-token".into()),
        ("X-Probe".into(), "1".into()),
    ];
    target.body = Some(r#"{"ping":true}"#.into());
    let outcome = Prober::new().probe(&spec(target)).await;
    assert!(outcome.up, "{outcome:?}");
    let seen = &server.requests()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/check");
    assert_eq!(seen.header("authorization"), Some("Bearer s3cr3t-token"));
    assert_eq!(seen.header("x-probe"), Some("1"));
    assert_eq!(seen.body, br#"{"ping":true}"#);
    assert!(!format!("{outcome:?}").contains("s3cr3t"));
}

#[tokio::test]
async fn bad_request_settings_are_errors_not_panics() {
    let prober = Prober::new();
    let mut target = HttpTarget::get("http://127.0.0.1:1/");
    target.headers = vec![("Authorization".into(), "Bearer s3cr3t\nx".into())];
    let outcome = prober.probe(&spec(target)).await;
    let error = outcome.error.unwrap();
    assert!(
        error.contains("Authorization") && !error.contains("s3cr3t"),
        "{error}"
    );
    for (url, method) in [
        ("not a url", "GET"),
        ("ftp://x/", "GET"),
        ("http://127.0.0.1:1/", "GE T"),
    ] {
        let mut target = HttpTarget::get(url);
        target.method = method.into();
        let outcome = prober.probe(&spec(target)).await;
        assert!(!outcome.up);
        assert!(outcome.error.is_some_and(|e| e.starts_with("request:")));
    }
}

#[tokio::test]
async fn extreme_settings_do_not_panic() {
    let server = server::start(|_| Reply::json(200, "{}")).await;
    let prober = Prober::new();
    let mut target = HttpTarget::get(server.url("/"));
    target.max_body_bytes = 0;
    target.redirects = RedirectConfig::Follow(u32::MAX);
    let mut probe = spec(target);
    probe.timeout = Duration::MAX;
    probe.checks.max_latency = Some(Duration::MAX);
    probe.checks.min_certificate_validity = Some(Duration::MAX);
    probe.checks.status_codes = vec!["".into(), "-".into(), "9xx".into(), "99999".into()];
    let outcome = prober.probe(&probe).await;
    assert!(!outcome.up);
    assert_eq!(outcome.status_code, Some(200));
    let mut tcp_probe = tcp(1);
    tcp_probe.timeout = Duration::MAX;
    tcp_probe.target = Target::Tcp {
        host: "[::1".into(),
        port: 0,
    };
    assert!(!prober.probe(&tcp_probe).await.up);
}

#[tokio::test]
async fn connections_are_reused_between_probes() {
    let server = server::start(|_| Reply::json(200, "{}")).await;
    let prober = Prober::new();
    let probe = spec(HttpTarget::get(server.url("/")));
    for _ in 0..3 {
        assert!(prober.probe(&probe).await.up);
    }
    assert_eq!(server.requests().len(), 3);
    assert_eq!(server.connection_count(), 1);
    assert_eq!(prober.client_count(), 1);
    // TLS settings do not matter for plain http: still one client and one connection.
    let mut target = HttpTarget::get(server.url("/other"));
    target.tls.insecure_skip_verify = true;
    assert!(prober.probe(&spec(target.clone())).await.up);
    assert_eq!(prober.client_count(), 1);
    assert_eq!(server.connection_count(), 1);
    // Another redirect policy is another client.
    target.redirects = RedirectConfig::None;
    assert!(prober.probe(&spec(target)).await.up);
    assert_eq!(prober.client_count(), 2);
}

#[tokio::test]
async fn a_slow_endpoint_times_out() {
    let server = server::start(|_| Reply {
        delay: Duration::from_secs(3),
        ..Reply::json(200, "{}")
    })
    .await;
    let mut probe = spec(HttpTarget::get(server.url("/")));
    probe.timeout = Duration::from_millis(200);
    let outcome = Prober::new().probe(&probe).await;
    assert!(!outcome.up);
    let error = outcome.error.unwrap();
    assert!(error.contains("timed out after 200ms"), "{error}");
    assert!(
        outcome.latency < Duration::from_secs(1),
        "{:?}",
        outcome.latency
    );
}

#[tokio::test]
async fn max_latency_fails_a_slow_answer() {
    let server = server::start(|_| Reply {
        delay: Duration::from_millis(150),
        ..Reply::json(200, "{}")
    })
    .await;
    let mut probe = spec(HttpTarget::get(server.url("/")));
    probe.checks.max_latency = Some(Duration::from_millis(50));
    let outcome = Prober::new().probe(&probe).await;
    assert!(outcome.error.is_none());
    assert!(!outcome.up);
    assert!(
        outcome.failed_checks[0].contains("above the maximum of 50 ms"),
        "{outcome:?}"
    );
    probe.checks.max_latency = Some(Duration::from_secs(2));
    assert!(Prober::new().probe(&probe).await.up);
}

fn redirect_chain(seen: &server::Seen) -> Reply {
    match seen.path.as_str() {
        "/a" => Reply::redirect("/b"),
        "/b" => Reply::redirect("/c"),
        "/c" => Reply::redirect("/final"),
        _ => Reply::json(200, r#"{"status":"healthy"}"#),
    }
}

#[tokio::test]
async fn redirects_are_followed_up_to_the_limit() {
    let server = server::start(redirect_chain).await;
    let prober = Prober::new();
    let mut target = HttpTarget::get(server.url("/a"));
    target.redirects = RedirectConfig::Follow(3);
    let mut probe = spec(target.clone());
    probe.checks.json = vec![assertion(r#"$.status == "healthy""#)];
    let outcome = prober.probe(&probe).await;
    assert!(outcome.up, "{outcome:?}");
    assert_eq!(server.requests().last().unwrap().path, "/final");

    target.redirects = RedirectConfig::Follow(2);
    let outcome = prober.probe(&spec(target)).await;
    assert!(!outcome.up);
    let error = outcome.error.unwrap();
    assert!(error.contains("too many redirects: more than 2"), "{error}");
}

#[tokio::test]
async fn redirects_are_not_followed_when_disabled() {
    let server = server::start(redirect_chain).await;
    let prober = Prober::new();
    let mut target = HttpTarget::get(server.url("/a"));
    target.redirects = RedirectConfig::None;
    let mut probe = spec(target);
    let outcome = prober.probe(&probe).await;
    assert_eq!(outcome.status_code, Some(302));
    assert!(!outcome.up, "302 is not 2xx: {outcome:?}");
    probe.checks.status_codes = vec!["3xx".into()];
    assert!(prober.probe(&probe).await.up);
    assert!(server.requests().iter().all(|r| r.path == "/a"));
}

fn fifty_megabytes(omit_length: bool) -> Reply {
    Reply {
        status: 200,
        headers: vec![],
        body: Body::Filler(50 * 1024 * 1024),
        delay: Duration::ZERO,
        omit_length,
    }
}

#[tokio::test]
async fn a_huge_body_is_capped() {
    for omit_length in [false, true] {
        let server = server::start(move |_| fifty_megabytes(omit_length)).await;
        let mut probe = spec(HttpTarget::get(server.url("/")));
        probe.checks.json = vec![assertion("$.status exists")];
        let outcome = Prober::new().probe(&probe).await;
        assert!(!outcome.up);
        let error = outcome.error.unwrap();
        assert!(
            error.contains("larger than the 1048576-byte limit"),
            "{error}"
        );
        let how = if omit_length {
            "read stopped"
        } else {
            "Content-Length 52428800"
        };
        assert!(error.contains(how), "{error}");
    }
}

#[tokio::test]
async fn a_huge_body_is_fine_when_only_the_status_matters() {
    let server = server::start(|_| fifty_megabytes(true)).await;
    let mut target = HttpTarget::get(server.url("/"));
    target.max_body_bytes = 64 * 1024;
    let outcome = Prober::new().probe(&spec(target)).await;
    assert!(outcome.up, "{outcome:?}");
}

#[tokio::test]
async fn a_body_that_is_not_json_fails_the_json_checks() {
    let server = server::start(|_| Reply {
        headers: vec![],
        ..Reply::json(200, "<html>OK</html>")
    })
    .await;
    let mut probe = spec(HttpTarget::get(server.url("/")));
    probe.checks.json = vec![assertion(r#"$.status == "healthy""#)];
    probe.components = vec![component("database", "$.services.database")];
    let outcome = Prober::new().probe(&probe).await;
    assert!(!outcome.up);
    assert!(outcome.error.is_none());
    assert_eq!(outcome.failed_checks.len(), 1);
    assert!(
        outcome.failed_checks[0].starts_with("body is not JSON"),
        "{outcome:?}"
    );
    assert_eq!(outcome.components.len(), 1);
    assert!(!outcome.components[0].up);
}

async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn connection_refused_is_reported() {
    let port = closed_port().await;
    let mut probe = spec(HttpTarget::get(format!("http://127.0.0.1:{port}/health")));
    probe.components = vec![component("database", "$.services.database")];
    let outcome = Prober::new().probe(&probe).await;
    assert!(!outcome.up);
    assert_eq!(outcome.status_code, None);
    let error = outcome.error.unwrap();
    assert_eq!(error, format!("connection refused by 127.0.0.1:{port}"));
    assert!(!outcome.components[0].up);
}

fn tcp(port: u16) -> ProbeSpec {
    ProbeSpec {
        target: Target::Tcp {
            host: "127.0.0.1".into(),
            port,
        },
        timeout: Duration::from_secs(1),
        checks: Default::default(),
        components: Vec::new(),
    }
}

#[tokio::test]
async fn tcp_probe_up_and_down() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let prober = Prober::new();
    let outcome = prober.probe(&tcp(port)).await;
    assert!(outcome.up, "{outcome:?}");
    assert_eq!(outcome.status_code, None);
    drop(listener);
    let outcome = prober.probe(&tcp(port)).await;
    assert!(!outcome.up);
    assert_eq!(
        outcome.error.unwrap(),
        format!("connection refused by 127.0.0.1:{port}")
    );
}

/// A resolver that knows no names, standing in for a DNS server answering NXDOMAIN, so the test
/// sends no query beyond this process.
struct NoNames;

impl reqwest::dns::Resolve for NoNames {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let message = format!("no such host: {}", name.as_str());
        Box::pin(async move { Err(message.into()) })
    }
}

#[tokio::test]
async fn an_unresolvable_host_is_reported() {
    let mut probe = spec(HttpTarget::get("http://no-such-host.invalid/health"));
    probe.timeout = Duration::from_secs(2);
    let outcome = Prober::with_resolver(std::sync::Arc::new(NoNames))
        .probe(&probe)
        .await;
    assert!(!outcome.up);
    let error = outcome.error.unwrap();
    assert!(
        error.starts_with("could not resolve no-such-host.invalid:80"),
        "{error}"
    );
}
