//! DNS switch through Cloudflare's API v4: the record is looked up by type and name
//! (`GET zones/{zone_id}/dns_records?type=A&name=app.example.com`), left alone when it already
//! has the wanted content, TTL and proxy flag (check before act: a try repeated after a crash
//! changes nothing), and otherwise updated in place (`PATCH zones/{zone_id}/dns_records/{id}`
//! with content, ttl and proxied). Every call sends `Authorization: Bearer <token>` and reads
//! the response envelope `{success, errors, messages, result}`.

use std::net::Ipv6Addr;

use reqwest::{Client, StatusCode, Url};
use serde::Deserialize;

use crate::api::failover_plan::DnsRecordType;

use super::action::CloudflareSwitch;
use super::http::{error_chain, retryable_status};
use super::machine::{StepFailure, StepRun};

/// Cloudflare's response envelope.
#[derive(Debug, Deserialize)]
struct Envelope<T> {
    success: bool,
    #[serde(default)]
    errors: Vec<ApiMessage>,
    result: Option<T>,
}

/// One entry of `errors` or `messages`.
#[derive(Debug, Deserialize)]
struct ApiMessage {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

/// The fields of a DNS record the switch reads.
#[derive(Clone, Debug, Deserialize)]
struct Record {
    id: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    ttl: u32,
    #[serde(default)]
    proxied: Option<bool>,
}

/// The type as Cloudflare writes it.
pub fn record_type(kind: DnsRecordType) -> &'static str {
    match kind {
        DnsRecordType::A => "A",
        DnsRecordType::Aaaa => "AAAA",
        DnsRecordType::Cname => "CNAME",
    }
}

/// Whether two contents name the same target: addresses compared as addresses, host names
/// without case and trailing dot.
fn same_content(kind: DnsRecordType, a: &str, b: &str) -> bool {
    match kind {
        DnsRecordType::Aaaa => match (a.parse::<Ipv6Addr>(), b.parse::<Ipv6Addr>()) {
            (Ok(a), Ok(b)) => a == b,
            _ => a == b,
        },
        DnsRecordType::A => a == b,
        DnsRecordType::Cname => a
            .trim_end_matches('.')
            .eq_ignore_ascii_case(b.trim_end_matches('.')),
    }
}

fn url(switch: &CloudflareSwitch, tail: &[&str]) -> Result<Url, StepFailure> {
    let mut url = Url::parse(&switch.api_url).map_err(|e| {
        StepFailure::permanent(format!(
            "Cloudflare API URL {:?} is not valid: {e}",
            switch.api_url
        ))
    })?;
    url.path_segments_mut()
        .map_err(|()| {
            StepFailure::permanent(format!(
                "Cloudflare API URL {:?} cannot take a path",
                switch.api_url
            ))
        })?
        .pop_if_empty()
        .extend(["zones", switch.zone_id.as_str(), "dns_records"])
        .extend(tail);
    Ok(url)
}

/// Sends one request and opens the envelope; failures say which call and why, never the token.
async fn send<T: serde::de::DeserializeOwned>(
    what: &str,
    request: reqwest::RequestBuilder,
) -> Result<T, StepFailure> {
    let response = request
        .send()
        .await
        .map_err(|e| StepFailure::transient(format!("Cloudflare {what}: {}", error_chain(&e))))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| {
        StepFailure::transient(format!(
            "Cloudflare {what}: reading the answer: {}",
            error_chain(&e)
        ))
    })?;
    let envelope: Result<Envelope<T>, _> = serde_json::from_slice(&body);
    let problem = |detail: String| {
        let message = format!("Cloudflare {what}: {status}: {detail}");
        if retryable_status(status) {
            StepFailure::transient(message)
        } else {
            StepFailure::permanent(message)
        }
    };
    match envelope {
        Ok(Envelope {
            success: true,
            result: Some(result),
            ..
        }) if status.is_success() => Ok(result),
        Ok(envelope) => {
            let errors: Vec<String> = envelope
                .errors
                .iter()
                .map(|e| format!("{} {}", e.code, e.message))
                .collect();
            let detail = if errors.is_empty() {
                "the answer reports no success".to_string()
            } else {
                errors.join("; ")
            };
            let detail = if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                format!("the API token was refused ({detail})")
            } else {
                detail
            };
            Err(problem(detail))
        }
        Err(e) => Err(problem(format!("not a Cloudflare API answer ({e})"))),
    }
}

/// Runs one try of the switch. A dry run looks the record up (proving token, zone and record)
/// and changes nothing.
pub async fn switch(
    client: &Client,
    switch: &CloudflareSwitch,
    run: &StepRun,
) -> Result<String, StepFailure> {
    let kind = record_type(switch.record_type);
    let mut lookup = url(switch, &[])?;
    lookup
        .query_pairs_mut()
        .append_pair("type", kind)
        .append_pair("name", &switch.record_name);
    let records: Vec<Record> = send(
        "record lookup",
        client
            .get(lookup)
            .bearer_auth(&switch.token)
            .timeout(run.timeout),
    )
    .await?;
    let record = match records.as_slice() {
        [record] => record.clone(),
        [] => {
            return Err(StepFailure::permanent(format!(
                "Cloudflare zone {} has no {kind} record named {}",
                switch.zone_id, switch.record_name
            )));
        }
        many => {
            return Err(StepFailure::permanent(format!(
                "Cloudflare zone {} has {} {kind} records named {}; refusing to pick one",
                switch.zone_id,
                many.len(),
                switch.record_name
            )));
        }
    };
    let proxied = record.proxied.unwrap_or(false);
    if same_content(switch.record_type, &record.content, &switch.content)
        && record.ttl == switch.ttl
        && proxied == switch.proxied
    {
        return Ok(format!(
            "{kind} {} already points at {} (ttl {}); nothing changed",
            switch.record_name, switch.content, switch.ttl
        ));
    }
    if run.dry_run {
        return Ok(format!(
            "dry run: would point {kind} {} from {} to {} (ttl {})",
            switch.record_name, record.content, switch.content, switch.ttl
        ));
    }
    let body = serde_json::json!({
        "content": switch.content,
        "ttl": switch.ttl,
        "proxied": switch.proxied,
    });
    let updated: Record = send(
        "record update",
        client
            .patch(url(switch, &[record.id.as_str()])?)
            .bearer_auth(&switch.token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .timeout(run.timeout),
    )
    .await?;
    if !same_content(switch.record_type, &updated.content, &switch.content) {
        return Err(StepFailure::transient(format!(
            "Cloudflare accepted the update of {kind} {} but the record now holds {}",
            switch.record_name, updated.content
        )));
    }
    Ok(format!(
        "{kind} {} switched from {} to {} (ttl {})",
        switch.record_name, record.content, switch.content, switch.ttl
    ))
}
