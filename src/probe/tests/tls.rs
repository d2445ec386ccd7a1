//! HTTPS probes against servers with certificates from a test CA.

use std::time::Duration;

use chrono::{TimeZone, Utc};

use super::pki::{TestCa, Validity};
use super::server::{self, Reply, TestServer};
use super::spec;
use crate::probe::{HttpTarget, Prober, TlsConfig, tls::certificate_not_after};

async fn https_server(ca: &TestCa, validity: Validity) -> (TestServer, Vec<u8>) {
    let (config, der) = ca.server_config(validity);
    let server = server::start_tls(|_| Reply::json(200, r#"{"status":"healthy"}"#), config).await;
    (server, der)
}

fn trusting(ca: &TestCa, url: String) -> HttpTarget {
    let mut target = HttpTarget::get(url);
    target.tls = TlsConfig {
        ca_bundle_pem: Some(ca.pem.clone()),
        ..TlsConfig::default()
    };
    target
}

#[tokio::test]
async fn a_certificate_from_a_trusted_bundle_is_up_and_its_expiry_reported() {
    let ca = TestCa::new("watchkeeper test CA");
    let (server, der) = https_server(&ca, Validity::Long).await;
    let expiry = Utc.with_ymd_and_hms(2040, 1, 1, 0, 0, 0).unwrap();
    assert_eq!(certificate_not_after(&der), Some(expiry));
    let prober = Prober::new();
    for host in ["localhost", "127.0.0.1"] {
        let mut probe = spec(trusting(&ca, server.https_url(host, "/health")));
        probe.checks.min_certificate_validity = Some(Duration::from_secs(14 * 86400));
        let outcome = prober.probe(&probe).await;
        assert!(outcome.up, "{host}: {outcome:?}");
        assert_eq!(outcome.cert_not_after, Some(expiry));
    }
}

#[tokio::test]
async fn an_untrusted_certificate_is_an_error() {
    let ca = TestCa::new("watchkeeper test CA");
    let other = TestCa::new("some other CA");
    let (server, _) = https_server(&ca, Validity::Long).await;
    let prober = Prober::new();
    for target in [
        HttpTarget::get(server.https_url("localhost", "/")),
        trusting(&other, server.https_url("localhost", "/")),
    ] {
        let outcome = prober.probe(&spec(target)).await;
        assert!(!outcome.up);
        let error = outcome.error.unwrap();
        assert!(
            error.starts_with("TLS handshake with localhost:"),
            "{error}"
        );
        assert!(error.contains("UnknownIssuer"), "{error}");
    }
}

#[tokio::test]
async fn skip_verify_accepts_an_untrusted_certificate() {
    let ca = TestCa::new("watchkeeper test CA");
    let (server, _) = https_server(&ca, Validity::Expired).await;
    let mut target = HttpTarget::get(server.https_url("localhost", "/"));
    target.tls.insecure_skip_verify = true;
    let outcome = Prober::new().probe(&spec(target)).await;
    assert!(outcome.up, "{outcome:?}");
    assert_eq!(
        outcome.cert_not_after,
        Some(Utc.with_ymd_and_hms(2021, 1, 1, 0, 0, 0).unwrap())
    );
}

#[tokio::test]
async fn an_expired_certificate_is_an_error() {
    let ca = TestCa::new("watchkeeper test CA");
    let (server, _) = https_server(&ca, Validity::Expired).await;
    let outcome = Prober::new()
        .probe(&spec(trusting(&ca, server.https_url("localhost", "/"))))
        .await;
    assert!(!outcome.up);
    let error = outcome.error.unwrap();
    assert!(
        error.starts_with("TLS handshake with localhost:") && error.contains("certificate expired"),
        "{error}"
    );
}

#[tokio::test]
async fn a_certificate_expiring_within_the_horizon_fails_the_check() {
    let ca = TestCa::new("watchkeeper test CA");
    let (server, der) = https_server(&ca, Validity::EndsInTwoDays).await;
    let prober = Prober::new();
    let mut probe = spec(trusting(&ca, server.https_url("localhost", "/")));
    probe.checks.min_certificate_validity = Some(Duration::from_secs(14 * 86400));
    let outcome = prober.probe(&probe).await;
    assert!(outcome.error.is_none(), "{outcome:?}");
    assert!(!outcome.up);
    assert_eq!(outcome.cert_not_after, certificate_not_after(&der));
    assert!(outcome.cert_not_after.is_some());
    assert!(
        outcome.failed_checks[0].contains("within the 14d horizon"),
        "{outcome:?}"
    );
    // The certificate has at least a day left: a 12-hour horizon passes.
    probe.checks.min_certificate_validity = Some(Duration::from_secs(12 * 3600));
    assert!(prober.probe(&probe).await.up);
}

#[tokio::test]
async fn the_server_name_override_is_what_is_verified() {
    let ca = TestCa::new("watchkeeper test CA");
    let (server, _) = https_server(&ca, Validity::Long).await;
    let prober = Prober::new();
    let mut target = trusting(&ca, server.https_url("127.0.0.1", "/"));
    target.tls.server_name = Some("localhost".into());
    assert!(prober.probe(&spec(target.clone())).await.up);
    target.tls.server_name = Some("db.example.com".into());
    let outcome = prober.probe(&spec(target)).await;
    let error = outcome.error.unwrap();
    assert!(
        error.contains("certificate not valid for name \"db.example.com\""),
        "{error}"
    );
}

#[tokio::test]
async fn certificate_checks_on_plain_http_and_bad_tls_settings_are_reported() {
    let server = server::start(|_| Reply::json(200, "{}")).await;
    let mut probe = spec(HttpTarget::get(server.url("/")));
    probe.checks.min_certificate_validity = Some(Duration::from_secs(86400));
    let outcome = Prober::new().probe(&probe).await;
    assert!(!outcome.up);
    assert!(outcome.failed_checks[0].contains("no server certificate"));

    let mut target = HttpTarget::get("https://127.0.0.1:1/");
    target.tls.ca_bundle_pem = Some("not a PEM bundle".into());
    let outcome = Prober::new().probe(&spec(target.clone())).await;
    assert!(outcome.error.unwrap().starts_with("TLS settings:"));
    target.tls = TlsConfig {
        client_cert_pem: Some("x".into()),
        ..TlsConfig::default()
    };
    let outcome = Prober::new().probe(&spec(target)).await;
    assert!(outcome.error.unwrap().contains("needs both"));
}

#[tokio::test]
async fn a_client_certificate_is_presented_for_mutual_tls() {
    let ca = TestCa::new("watchkeeper test CA");
    let server = server::start_tls(|_| Reply::json(200, "{}"), ca.mtls_server_config()).await;
    let prober = Prober::new();
    let without = trusting(&ca, server.https_url("localhost", "/"));
    let outcome = prober.probe(&spec(without.clone())).await;
    assert!(
        !outcome.up,
        "the server requires a client certificate: {outcome:?}"
    );
    assert!(outcome.error.is_some());
    let (cert_pem, key_pem) = ca.client_certificate();
    let mut with = without;
    with.tls.client_cert_pem = Some(cert_pem);
    with.tls.client_key_pem = Some(key_pem);
    let outcome = prober.probe(&spec(with)).await;
    assert!(outcome.up, "{outcome:?}");
}
