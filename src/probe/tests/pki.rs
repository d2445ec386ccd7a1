//! A test CA and server certificates made with rcgen.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use chrono::{Datelike, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, date_time_ymd,
};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;

pub struct TestCa {
    pub pem: String,
    der: Vec<u8>,
    params: CertificateParams,
    key: KeyPair,
}

/// Validity of a server certificate.
pub enum Validity {
    /// 2020-01-01 to 2040-01-01.
    Long,
    /// Ended on 2021-01-01.
    Expired,
    /// Ends at midnight UTC two days from now (between one and two days away).
    EndsInTwoDays,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2040, 1, 1);
        let cert = params.self_signed(&key).unwrap();
        Self {
            pem: cert.pem(),
            der: cert.der().to_vec(),
            params,
            key,
        }
    }

    /// A rustls server configuration presenting a certificate for `localhost` and 127.0.0.1
    /// signed by this CA; returns it with the leaf certificate's DER.
    pub fn server_config(&self, validity: Validity) -> (rustls::ServerConfig, Vec<u8>) {
        self.server_config_with(validity, false)
    }

    /// Like [`Self::server_config`], but the server requires a client certificate from this
    /// CA (mutual TLS).
    pub fn mtls_server_config(&self) -> rustls::ServerConfig {
        self.server_config_with(Validity::Long, true).0
    }

    /// A client certificate and its key, PEM, signed by this CA.
    pub fn client_certificate(&self) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "probe");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2040, 1, 1);
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn server_config_with(
        &self,
        validity: Validity,
        require_client: bool,
    ) -> (rustls::ServerConfig, Vec<u8>) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        match validity {
            Validity::Long => {
                params.not_before = date_time_ymd(2020, 1, 1);
                params.not_after = date_time_ymd(2040, 1, 1);
            }
            Validity::Expired => {
                params.not_before = date_time_ymd(2020, 1, 1);
                params.not_after = date_time_ymd(2021, 1, 1);
            }
            Validity::EndsInTwoDays => {
                let end = Utc::now() + chrono::Duration::days(2);
                params.not_before = date_time_ymd(2020, 1, 1);
                params.not_after = date_time_ymd(end.year(), end.month() as u8, end.day() as u8);
            }
        }
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        let der = cert.der().to_vec();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if require_client {
            let mut roots = RootCertStore::empty();
            roots.add(CertificateDer::from(self.der.clone())).unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let config = builder
            .with_single_cert(
                vec![CertificateDer::from(der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        (config, der)
    }
}
