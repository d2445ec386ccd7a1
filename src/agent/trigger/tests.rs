//! Tests of the HTTP trigger against local axum servers on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::any;
use clap::Parser;

use super::*;

const TOKEN: &str = "s3cret-token-value-42";
const SECRET_HEADER: &str = "api-key-value-77";

/// What the server saw and how it should answer.
#[derive(Default)]
struct Seen {
    requests: AtomicUsize,
    authorization: Mutex<Vec<String>>,
    methods: Mutex<Vec<String>>,
    bodies: Mutex<Vec<String>>,
    custom: Mutex<Vec<String>>,
    api_keys: Mutex<Vec<String>>,
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// A server whose `/ok` records the request and echoes the Authorization header in the body,
/// `/fail` answers 500, `/hang` never answers and `/flaky` fails twice then succeeds.
async fn server() -> (SocketAddr, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let record = |seen: &Seen, method: &axum::http::Method, headers: &HeaderMap, body: &str| {
        seen.requests.fetch_add(1, Ordering::SeqCst);
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        seen.authorization.lock().unwrap().push(auth.clone());
        seen.methods.lock().unwrap().push(method.to_string());
        seen.bodies.lock().unwrap().push(body.to_string());
        let custom = headers
            .get("x-custom")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        seen.custom.lock().unwrap().push(custom);
        let key = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        seen.api_keys.lock().unwrap().push(key.clone());
        format!("{auth} {key}")
    };
    let router = Router::new()
        .route(
            "/ok",
            any(
                move |State(seen): State<Arc<Seen>>,
                      method: axum::http::Method,
                      headers: HeaderMap,
                      body: String| async move {
                    let auth = record(&seen, &method, &headers, &body);
                    (StatusCode::OK, format!("done; you sent {auth}"))
                },
            ),
        )
        .route(
            "/fail",
            any(
                move |State(seen): State<Arc<Seen>>,
                      method: axum::http::Method,
                      headers: HeaderMap,
                      body: String| async move {
                    record(&seen, &method, &headers, &body);
                    (StatusCode::INTERNAL_SERVER_ERROR, "broken")
                },
            ),
        )
        .route(
            "/hang",
            any(|State(seen): State<Arc<Seen>>| async move {
                seen.requests.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<()>().await;
                StatusCode::OK
            }),
        )
        .route(
            "/flaky",
            any(|State(seen): State<Arc<Seen>>| async move {
                let n = seen.requests.fetch_add(1, Ordering::SeqCst);
                if n < 2 {
                    (StatusCode::SERVICE_UNAVAILABLE, "not yet")
                } else {
                    (StatusCode::OK, "finally")
                }
            }),
        )
        .with_state(seen.clone());
    (serve(router).await, seen)
}

/// Parses arguments as the CLI would (so defaults and flag names are exercised too).
fn args(extra: &[&str]) -> TriggerArgs {
    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: TriggerArgs,
    }
    let mut argv = vec!["trigger"];
    argv.extend_from_slice(extra);
    Wrapper::try_parse_from(argv).unwrap().args
}

/// An environment holding only the bearer token (when given) and `SECRET_HEADER`.
fn env(token: Option<&str>) -> impl Fn(&str) -> Option<String> {
    let token = token.map(str::to_string);
    move |name| match name {
        BEARER_TOKEN_ENV => token.clone(),
        "SECRET_HEADER" => Some(SECRET_HEADER.to_string()),
        _ => None,
    }
}

fn config(extra: &[&str], token: Option<&str>) -> TriggerConfig {
    TriggerConfig::from_args(&args(extra), env(token)).unwrap()
}

fn assert_no_token(result: &TriggerResult) {
    let json = result.to_json();
    assert!(!json.contains(TOKEN), "token leaked into result: {json}");
    assert!(!format!("{result:?}").contains(TOKEN));
}

#[tokio::test]
async fn success_sends_method_headers_body_and_token_and_redacts_the_echo() {
    let (addr, seen) = server().await;
    let config = config(
        &[
            "--url",
            &format!("http://{addr}/ok"),
            "--method",
            "post",
            "--header",
            "X-Custom: hello there",
            "--header-from-env",
            "X-Api-Key=SECRET_HEADER",
            "--body",
            "{\"run\":1}",
        ],
        Some(TOKEN),
    );
    assert!(!format!("{config:?}").contains(TOKEN));
    let result = trigger(&config).await;
    assert_eq!(result.outcome, Outcome::Success);
    assert_eq!(result.outcome.exit_code(), 0);
    assert_eq!(result.status_code, Some(200));
    assert_eq!(result.attempts, 1);
    assert_eq!(seen.requests.load(Ordering::SeqCst), 1);
    assert_eq!(
        seen.authorization.lock().unwrap().as_slice(),
        [format!("Bearer {TOKEN}")]
    );
    assert_eq!(seen.methods.lock().unwrap().as_slice(), ["POST"]);
    assert_eq!(seen.bodies.lock().unwrap().as_slice(), ["{\"run\":1}"]);
    assert_eq!(seen.custom.lock().unwrap().as_slice(), ["hello there"]);
    assert_eq!(seen.api_keys.lock().unwrap().as_slice(), [SECRET_HEADER]);
    assert!(!format!("{config:?}").contains(SECRET_HEADER));
    // The server echoed the token; the result shows it redacted.
    assert_eq!(
        result.body.as_deref(),
        Some("done; you sent Bearer [REDACTED] [REDACTED]")
    );
    assert!(!result.to_json().contains(SECRET_HEADER));
    assert_no_token(&result);
}

#[tokio::test]
async fn body_file_is_sent_and_body_is_cut_at_256_bytes() {
    let (addr, seen) = server().await;
    let dir = std::env::temp_dir().join(format!("wk-trigger-body-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("body.json");
    std::fs::write(&file, "from a file").unwrap();
    let config = config(
        &[
            "--url",
            &format!("http://{addr}/ok"),
            "--body-file",
            file.to_str().unwrap(),
        ],
        None,
    );
    let result = trigger(&config).await;
    assert_eq!(result.outcome, Outcome::Success);
    assert_eq!(seen.bodies.lock().unwrap().as_slice(), ["from a file"]);
    std::fs::remove_dir_all(&dir).unwrap();

    // A long body is cut to the prefix.
    let long = Router::new().route("/", any(|| async { "x".repeat(5000) }));
    let addr = serve(long).await;
    let result = trigger(&config_for(&format!("http://{addr}/"))).await;
    assert_eq!(
        result.body.as_deref().map(str::len),
        Some(BODY_PREFIX_BYTES)
    );
}

fn config_for(url: &str) -> TriggerConfig {
    config(&["--url", url], None)
}

#[tokio::test]
async fn non_2xx_is_unexpected_status_with_exit_3_unless_expected() {
    let (addr, seen) = server().await;
    let url = format!("http://{addr}/fail");
    let result = trigger(&config(&["--url", &url], Some(TOKEN))).await;
    assert_eq!(result.outcome, Outcome::UnexpectedStatus);
    assert_eq!(result.outcome.exit_code(), 3);
    assert_eq!(result.status_code, Some(500));
    assert_eq!(result.body.as_deref(), Some("broken"));
    assert!(result.error.as_deref().unwrap().contains("500"));
    assert_no_token(&result);

    // 500 listed as expected (range and list syntax) is a success.
    let result = trigger(&config(
        &["--url", &url, "--expected-status", "200,500-503"],
        None,
    ))
    .await;
    assert_eq!(result.outcome, Outcome::Success);
    assert_eq!(seen.requests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn timeout_gives_exit_4() {
    let (addr, _) = server().await;
    let result = trigger(&config(
        &[
            "--url",
            &format!("http://{addr}/hang"),
            "--timeout",
            "200ms",
        ],
        Some(TOKEN),
    ))
    .await;
    assert_eq!(result.outcome, Outcome::Timeout);
    assert_eq!(result.outcome.exit_code(), 4);
    assert_eq!(result.status_code, None);
    assert!(result.latency_ms >= 200, "{result:?}");
    assert_no_token(&result);
}

#[tokio::test]
async fn retries_until_success_with_three_attempts() {
    let (addr, seen) = server().await;
    let config = config(
        &[
            "--url",
            &format!("http://{addr}/flaky"),
            "--retries",
            "5",
            "--backoff",
            "10ms",
            "--max-backoff",
            "40ms",
        ],
        None,
    );
    let result = trigger(&config).await;
    assert_eq!(result.outcome, Outcome::Success);
    assert_eq!(result.attempts, 3);
    assert_eq!(result.body.as_deref(), Some("finally"));
    assert_eq!(seen.requests.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn retries_are_bounded_and_the_last_failure_is_reported() {
    let (addr, seen) = server().await;
    let result = trigger(&config(
        &[
            "--url",
            &format!("http://{addr}/fail"),
            "--retries",
            "2",
            "--backoff",
            "1ms",
        ],
        None,
    ))
    .await;
    assert_eq!(result.outcome, Outcome::UnexpectedStatus);
    assert_eq!(result.attempts, 3);
    assert_eq!(seen.requests.load(Ordering::SeqCst), 3);
}

#[test]
fn backoff_doubles_up_to_the_maximum() {
    let config = config(
        &[
            "--url",
            "http://127.0.0.1:9/",
            "--backoff",
            "1s",
            "--max-backoff",
            "5s",
        ],
        None,
    );
    let waits: Vec<u64> = (1..=5)
        .map(|n| config.backoff_before(n).as_secs())
        .collect();
    assert_eq!(waits, [1, 2, 4, 5, 5]);
    assert_eq!(config.backoff_before(200), Duration::from_secs(5));
}

#[tokio::test]
async fn connection_refused_gives_exit_5() {
    // A port that was just free: bind, note it, close it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let result = trigger(&config(
        &[
            "--url",
            &format!("http://{addr}/"),
            "--retries",
            "1",
            "--backoff",
            "1ms",
        ],
        Some(TOKEN),
    ))
    .await;
    assert_eq!(result.outcome, Outcome::ConnectionError);
    assert_eq!(result.outcome.exit_code(), 5);
    assert_eq!(result.attempts, 2);
    assert!(result.error.is_some());
    assert_no_token(&result);
}

#[tokio::test]
async fn termination_log_holds_the_result_json() {
    let (addr, _) = server().await;
    let result = trigger(&config(
        &["--url", &format!("http://{addr}/ok")],
        Some(TOKEN),
    ))
    .await;
    let path = std::env::temp_dir().join(format!("wk-termination-{}.json", std::process::id()));
    write_termination_log(&path, &result).unwrap();
    let written = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(!written.contains(TOKEN));
    let value: serde_json::Value = serde_json::from_str(&written).unwrap();
    assert_eq!(value["outcome"], "success");
    assert_eq!(value["statusCode"], 200);
    assert_eq!(value["attempts"], 1);
    assert!(value["latencyMs"].is_u64());
    assert_eq!(value["body"], "done; you sent Bearer [REDACTED] ");
}

#[test]
fn invalid_arguments_are_refused_naming_the_flag() {
    let bad = |extra: &[&str]| {
        TriggerConfig::from_args(&args(extra), env(Some(TOKEN)))
            .unwrap_err()
            .to_string()
    };
    assert!(bad(&["--url", "ftp://x/"]).contains("--url"));
    assert!(bad(&["--url", "not a url"]).contains("--url"));
    assert!(bad(&["--url", "http://x/", "--method", "FETCH"]).contains("--method"));
    assert!(bad(&["--url", "http://x/", "--header", "no colon"]).contains("--header"));
    assert!(bad(&["--url", "http://x/", "--expected-status", "2x"]).contains("--expected-status"));
    assert!(
        bad(&["--url", "http://x/", "--body-file", "/nonexistent/body"]).contains("--body-file")
    );
    assert!(
        bad(&["--url", "http://x/", "--header-from-env", "X-Key=UNSET"])
            .contains("--header-from-env")
    );
    assert!(bad(&["--url", "http://x/", "--header-from-env", "X-Key"]).contains("Name=ENV_VAR"));
    let error = TriggerConfig::from_args(&args(&["--url", "ftp://x/"]), env(None)).unwrap_err();
    let result = TriggerResult::invalid(&error, &[TOKEN]);
    assert_eq!(result.outcome.exit_code(), 1);
    assert_eq!(result.attempts, 0);
}

#[test]
fn token_is_not_a_flag() {
    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: TriggerArgs,
    }
    for flag in ["--token", "--bearer-token", "--authorization"] {
        assert!(Wrapper::try_parse_from(["trigger", "--url", "http://x/", flag, "t"]).is_err());
    }
}

#[test]
fn redaction_replaces_every_occurrence() {
    let out = redact_bytes(
        format!("a{TOKEN}b{SECRET_HEADER}{TOKEN}").as_bytes(),
        &[TOKEN, SECRET_HEADER],
    );
    assert_eq!(out, b"a[REDACTED]b[REDACTED][REDACTED]");
    assert_eq!(redact_bytes(b"plain", &[]), b"plain");
    assert_eq!(redact_str("x", &[""]), "x");
    assert_eq!(
        redact_str(&format!("{SECRET_HEADER}/{TOKEN}"), &[TOKEN, SECRET_HEADER]),
        "[REDACTED]/[REDACTED]"
    );
}
