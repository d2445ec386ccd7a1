//! The HTTP step against a provider-like API.

use super::*;

#[tokio::test]
async fn the_http_step_sends_its_key_and_checks_the_status() {
    let provider = Provider::default();
    let base = provider.start().await;
    let call = HttpCall {
        url: format!("{base}/deploy"),
        method: watchkeeper::api::common::HttpMethod::Post,
        headers: vec![("Authorization".into(), "Bearer host-token".into(), true)],
        body: Some("{\"region\":\"us-west-1\"}".into()),
        expected_status: vec!["201".into()],
    };
    assert!(
        !format!("{call:?}").contains("host-token"),
        "Debug redacts secret headers"
    );
    let http = client();
    let r = run(StepKind::Http, false);
    assert!(
        watchkeeper::failover::http::call(&http, &call, &r)
            .await
            .is_ok()
    );
    {
        let state = provider.inner.lock().expect("state");
        let (_, key, headers) = &state.requests[0];
        assert_eq!(key.as_deref(), Some("prod/regional/failover-1-x/1/1"));
        assert_eq!(
            headers.get("authorization").and_then(|v| v.to_str().ok()),
            Some("Bearer host-token")
        );
    }
    provider.set_status("/deploy", 503);
    let failure = watchkeeper::failover::http::call(&http, &call, &r)
        .await
        .expect_err("503");
    assert!(
        failure.retryable && failure.message.contains("503"),
        "{failure:?}"
    );
    provider.set_status("/deploy", 404);
    assert!(
        !watchkeeper::failover::http::call(&http, &call, &r)
            .await
            .expect_err("404")
            .retryable
    );
    // 200 is a success the API did not promise: refused, since 201 was expected.
    provider.set_status("/deploy", 200);
    assert!(
        watchkeeper::failover::http::call(&http, &call, &r)
            .await
            .is_err()
    );
    let dry = watchkeeper::failover::http::call(&http, &call, &run(StepKind::Http, true)).await;
    assert!(dry.is_ok_and(|m| m.starts_with("dry run")));
    assert_eq!(provider.requests("/deploy"), 4, "the dry run sent nothing");
}
