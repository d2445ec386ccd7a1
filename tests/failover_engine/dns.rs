//! The Cloudflare DNS switch against the local Cloudflare-compatible server.

use super::*;

#[tokio::test]
async fn the_dns_switch_looks_the_record_up_by_name_and_patches_it_once() {
    let cf = Cloudflare::start(TOKEN, vec![record("203.0.113.10")]).await;
    let http = client();
    let sw = switch(&cf);
    let first =
        watchkeeper::failover::cloudflare::switch(&http, &sw, &run(StepKind::DnsSwitch, false))
            .await;
    assert!(
        first
            .as_ref()
            .is_ok_and(|m| m.contains("from 203.0.113.10 to 198.51.100.20")),
        "{first:?}"
    );
    let second =
        watchkeeper::failover::cloudflare::switch(&http, &sw, &run(StepKind::DnsSwitch, false))
            .await;
    assert!(
        second.as_ref().is_ok_and(|m| m.contains("nothing changed")),
        "{second:?}"
    );
    assert_eq!(cf.patches(), 1, "run twice, patched once");
    let now = cf.record("rec-1").expect("record");
    assert_eq!((now.content.as_str(), now.ttl), ("198.51.100.20", 60));
    let seen = cf.seen();
    assert_eq!(seen.len(), 3, "lookup, update, lookup");
    assert!(cf.malformed().is_empty(), "{:?}", cf.malformed());
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path, "/client/v4/zones/zone-1/dns_records");
    let query: BTreeMap<String, String> =
        form_urlencoded::parse(seen[0].query.as_deref().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    assert_eq!(query.get("type").map(String::as_str), Some("A"));
    assert_eq!(
        query.get("name").map(String::as_str),
        Some("app.example.com")
    );
    assert_eq!(seen[1].method, "PATCH");
    assert_eq!(seen[1].path, "/client/v4/zones/zone-1/dns_records/rec-1");
    let body: serde_json::Value = serde_json::from_slice(&seen[1].body).expect("JSON body");
    assert_eq!(body["content"], "198.51.100.20");
    assert_eq!(body["ttl"], 60);
    for s in &seen {
        assert_eq!(
            s.authorization.as_deref(),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
}

#[tokio::test]
async fn a_dry_run_reads_the_record_and_changes_nothing() {
    let cf = Cloudflare::start(TOKEN, vec![record("203.0.113.10")]).await;
    let result = watchkeeper::failover::cloudflare::switch(
        &client(),
        &switch(&cf),
        &run(StepKind::DnsSwitch, true),
    )
    .await;
    assert!(
        result.as_ref().is_ok_and(|m| m.starts_with("dry run")),
        "{result:?}"
    );
    assert_eq!(cf.patches(), 0);
    assert_eq!(cf.seen().len(), 1);
}

#[tokio::test]
async fn a_missing_record_or_a_refused_token_fails_at_once_without_leaking_the_token() {
    let cf = Cloudflare::start(TOKEN, vec![record("203.0.113.10")]).await;
    let mut sw = switch(&cf);
    sw.record_name = "api.example.com".into();
    let missing =
        watchkeeper::failover::cloudflare::switch(&client(), &sw, &run(StepKind::DnsSwitch, true))
            .await
            .expect_err("no such record");
    assert!(!missing.retryable);
    assert!(
        missing
            .message
            .contains("no A record named api.example.com"),
        "{}",
        missing.message
    );
    let mut sw = switch(&cf);
    sw.token = "wrong-token-value".into();
    let refused =
        watchkeeper::failover::cloudflare::switch(&client(), &sw, &run(StepKind::DnsSwitch, false))
            .await
            .expect_err("bad token");
    assert!(!refused.retryable);
    assert!(
        refused.message.contains("token was refused"),
        "{}",
        refused.message
    );
    assert!(!refused.message.contains("wrong-token-value"));
    assert_eq!(cf.patches(), 0);
}

#[tokio::test]
async fn a_server_error_on_update_is_retryable() {
    let cf = Cloudflare::start(TOKEN, vec![record("203.0.113.10")]).await;
    cf.fail_next_patches(1);
    let failure = watchkeeper::failover::cloudflare::switch(
        &client(),
        &switch(&cf),
        &run(StepKind::DnsSwitch, false),
    )
    .await
    .expect_err("500");
    assert!(failure.retryable, "{}", failure.message);
    assert!(
        watchkeeper::failover::cloudflare::switch(
            &client(),
            &switch(&cf),
            &run(StepKind::DnsSwitch, false)
        )
        .await
        .is_ok()
    );
    assert_eq!(cf.patches(), 1);
}
