//! Network-facing step rules of a FailoverPlan: DNS switches (record content matching the record
//! type, TTLs, host names) and HTTP calls (URLs, credential headers, expected statuses).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::super::{DnsRecordType, DnsSwitchAction, HttpAction};
use crate::api::common::{check_headers, check_status_codes};
use crate::api::validation::Errors;

pub(super) fn check_dns(errors: &mut Errors, path: &str, dns: &DnsSwitchAction) {
    let set = [
        dns.cloudflare.is_some(),
        dns.dns_endpoint.is_some(),
        dns.webhook.is_some(),
    ];
    if set.iter().filter(|s| **s).count() != 1 {
        errors.push(
            path,
            "exactly one of cloudflare, dnsEndpoint or webhook must be set",
        );
    }
    if let Some(cf) = &dns.cloudflare {
        let here = format!("{path}.cloudflare");
        if cf.ttl != 1 && !(60..=86400).contains(&cf.ttl) {
            errors.push(
                format!("{here}.ttl"),
                format!(
                    "must be 1 (automatic) or between 60 and 86400 (got {})",
                    cf.ttl
                ),
            );
        }
        check_record_content(
            errors,
            &format!("{here}.content"),
            cf.record_type,
            &cf.content,
        );
        check_host_name(errors, &format!("{here}.recordName"), &cf.record_name);
        if let Some(url) = &cf.api_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            errors.push(format!("{here}.apiUrl"), "must be an http(s) URL");
        }
    }
    if let Some(endpoint) = &dns.dns_endpoint {
        let here = format!("{path}.dnsEndpoint");
        check_host_name(errors, &format!("{here}.dnsName"), &endpoint.dns_name);
        if endpoint.targets.is_empty() {
            errors.push(format!("{here}.targets"), "needs at least one target");
        }
        if endpoint.record_type == DnsRecordType::Cname && endpoint.targets.len() > 1 {
            errors.push(format!("{here}.targets"), "a CNAME has exactly one target");
        }
        for (i, target) in endpoint.targets.iter().enumerate() {
            check_record_content(
                errors,
                &format!("{here}.targets[{i}]"),
                endpoint.record_type,
                target,
            );
        }
    }
    if let Some(webhook) = &dns.webhook {
        check_http(errors, &format!("{path}.webhook"), webhook);
    }
}

fn check_record_content(errors: &mut Errors, path: &str, kind: DnsRecordType, content: &str) {
    match kind {
        DnsRecordType::A if content.parse::<Ipv4Addr>().is_err() => errors.push(
            path,
            format!("an A record needs an IPv4 address, got {content:?}"),
        ),
        DnsRecordType::Aaaa if content.parse::<Ipv6Addr>().is_err() => errors.push(
            path,
            format!("an AAAA record needs an IPv6 address, got {content:?}"),
        ),
        DnsRecordType::Cname => check_host_name(errors, path, content),
        _ => {}
    }
}

/// A DNS name: dot-separated labels of letters, digits and hyphens (a leading `*.` allowed).
fn check_host_name(errors: &mut Errors, path: &str, name: &str) {
    let body = name.strip_prefix("*.").unwrap_or(name);
    let body = body.strip_suffix('.').unwrap_or(body);
    let ok = !body.is_empty()
        && body.len() <= 253
        && body.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if !ok {
        errors.push(path, format!("{name:?} is not a DNS name"));
    }
}

pub(super) fn check_http(errors: &mut Errors, path: &str, http: &HttpAction) {
    if !(http.url.starts_with("https://") || http.url.starts_with("http://")) {
        errors.push(format!("{path}.url"), "must be an absolute http(s) URL");
    }
    check_headers(errors, &format!("{path}.headers"), &http.headers);
    check_status_codes(
        errors,
        &format!("{path}.expectedStatus"),
        &http.expected_status,
    );
}
