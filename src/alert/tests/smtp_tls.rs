//! E-mail over STARTTLS and implicit TLS against the local SMTP receiver, with a test CA made
//! by rcgen; SMTP AUTH only once the connection is encrypted; a certificate from an unknown
//! CA refused.

use std::{
    net::{IpAddr, Ipv4Addr},
    sync::Arc,
};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use tokio_rustls::rustls::{
    ServerConfig,
    crypto::ring::default_provider,
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
};

use super::{
    alert, at,
    receivers::{SmtpMode, SmtpReceiver},
};
use crate::alert::{
    AlertEngine, AlertState, AlertingConfig, Channel, EmailConfig, Severity, SinkConfig, SinkError,
    SmtpTls, sinks::Sinks,
};

/// A CA (PEM) and a server configuration with a certificate for 127.0.0.1 it signed.
fn pki() -> (String, Arc<ServerConfig>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "alert test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();

    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf.subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    let issuer = Issuer::from_params(&ca, &ca_key);
    let cert = leaf.signed_by(&key, &issuer).unwrap();

    let config = ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    (ca_cert.pem(), Arc::new(config))
}

fn mail_config(port: u16, tls: SmtpTls, ca_pem: Option<String>) -> AlertingConfig {
    AlertingConfig {
        channels: vec![Channel {
            name: "mail".into(),
            sink: SinkConfig::Email(EmailConfig {
                host: "127.0.0.1".into(),
                port,
                tls,
                from: "alerts@example.com".into(),
                to: vec!["oncall@example.com".into()],
                credentials: Some(("alerts".into(), "hunter2".into())),
                ca_pem: ca_pem.map(String::into_bytes),
            }),
        }],
        ..AlertingConfig::default()
    }
}

async fn send_one(config: AlertingConfig) -> crate::alert::RoundReport {
    let mut engine =
        AlertEngine::new(config, AlertState::default(), Sinks::new().unwrap()).unwrap();
    engine.round(&[alert("db", Severity::P0)], at(0)).await
}

/// SASL PLAIN of "\0alerts\0hunter2" (RFC 4616), base64.
const AUTH_PLAIN: &str = "AGFsZXJ0cwBodW50ZXIy";

#[tokio::test]
async fn starttls_upgrades_then_authenticates_and_sends() {
    let (ca, server) = pki();
    let smtp = SmtpReceiver::start_with(SmtpMode::StartTls(server)).await;
    let report = send_one(mail_config(smtp.port, SmtpTls::StartTls, Some(ca))).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].tls, "message must travel after STARTTLS");
    assert_eq!(mails[0].auth_plain.as_deref(), Some(AUTH_PLAIN));
    assert_eq!(
        mails[0].header("Subject").as_deref(),
        Some("[FIRING P0] db is failing")
    );
}

#[tokio::test]
async fn implicit_tls_authenticates_and_sends() {
    let (ca, server) = pki();
    let smtp = SmtpReceiver::start_with(SmtpMode::ImplicitTls(server)).await;
    let report = send_one(mail_config(smtp.port, SmtpTls::Tls, Some(ca))).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].tls);
    assert_eq!(mails[0].auth_plain.as_deref(), Some(AUTH_PLAIN));
    assert_eq!(mails[0].to, vec!["oncall@example.com"]);
}

#[tokio::test]
async fn certificate_from_an_unknown_ca_is_refused() {
    let (_, server) = pki();
    let (other_ca, _) = pki();
    let smtp = SmtpReceiver::start_with(SmtpMode::ImplicitTls(server)).await;
    let report = send_one(mail_config(smtp.port, SmtpTls::Tls, Some(other_ca))).await;
    assert_eq!(report.failed.len(), 1);
    assert!(matches!(report.failed[0].1, SinkError::Smtp { .. }));
    assert!(smtp.mails().is_empty());
    let message = report.failed[0].1.to_string();
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn credentials_are_not_sent_in_clear() {
    // A plain server offers no AUTH: the send fails instead of skipping authentication.
    let smtp = SmtpReceiver::start().await;
    let report = send_one(mail_config(smtp.port, SmtpTls::None, None)).await;
    assert_eq!(report.failed.len(), 1, "{:?}", report.sent);
    assert!(smtp.mails().is_empty());
}
