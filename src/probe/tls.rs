//! TLS for probes: rustls client configurations (system roots plus a CA bundle, optional
//! client certificate, server-name override, skip-verify) and reading a certificate's expiry.

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, NaiveDate, Utc};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::error::ProbeError;
use super::spec::TlsConfig;

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The system's trusted roots, read once per process (reading them takes milliseconds, and
/// there may be thousands of probes).
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let result = rustls_native_certs::load_native_certs();
        if !result.errors.is_empty() {
            tracing::debug!(
                errors = result.errors.len(),
                "some system CA certificates could not be read"
            );
        }
        result.certs
    })
}

/// Builds the rustls client configuration for `config`.
pub fn client_config(config: &TlsConfig) -> Result<ClientConfig, ProbeError> {
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = if config.insecure_skip_verify {
        Arc::new(AcceptAnyCertificate {
            algorithms: provider.signature_verification_algorithms,
        })
    } else {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(system_roots().iter().cloned());
        if let Some(pem) = &config.ca_bundle_pem {
            let mut added = 0;
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| ProbeError::Tls(format!("CA bundle: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| ProbeError::Tls(format!("CA bundle: {e}")))?;
                added += 1;
            }
            if added == 0 {
                return Err(ProbeError::Tls(
                    "CA bundle holds no PEM certificate".to_string(),
                ));
            }
        }
        if roots.is_empty() {
            return Err(ProbeError::Tls(
                "no trusted CA certificates: the system has none and no CA bundle is set"
                    .to_string(),
            ));
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| ProbeError::Tls(e.to_string()))?;
        match &config.server_name {
            Some(name) => Arc::new(VerifyAsName {
                inner: webpki,
                name: ServerName::try_from(name.clone())
                    .map_err(|e| ProbeError::Tls(format!("server name {name:?}: {e}")))?,
            }),
            None => webpki,
        }
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ProbeError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match (&config.client_cert_pem, &config.client_key_pem) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(cert_pem), Some(key_pem)) => {
            let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ProbeError::Tls(format!("client certificate: {e}")))?;
            if certs.is_empty() {
                return Err(ProbeError::Tls(
                    "client certificate holds no PEM certificate".to_string(),
                ));
            }
            let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
                .map_err(|e| ProbeError::Tls(format!("client key: {e}")))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| ProbeError::Tls(format!("client certificate: {e}")))
        }
        _ => Err(ProbeError::Tls(
            "a client certificate needs both the certificate and its key".to_string(),
        )),
    }
}

/// Verifies the server certificate against a configured name instead of the URL host.
#[derive(Debug)]
struct VerifyAsName {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for VerifyAsName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `insecureSkipVerify`: any certificate is accepted, but the handshake signatures are still
/// checked so the connection itself is sound.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The `notAfter` time of a DER X.509 certificate, or `None` if it cannot be read.
pub fn certificate_not_after(der: &[u8]) -> Option<DateTime<Utc>> {
    const SEQUENCE: u8 = 0x30;
    let (tag, certificate, _) = read_tlv(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, mut tbs, _) = read_tlv(certificate)?;
    if tag != SEQUENCE {
        return None;
    }
    // tbsCertificate: [0] version (optional), serialNumber, signature, issuer, validity.
    if tbs.first() == Some(&0xa0) {
        tbs = read_tlv(tbs)?.2;
    }
    for expected in [0x02, SEQUENCE, SEQUENCE] {
        let (tag, _, rest) = read_tlv(tbs)?;
        if tag != expected {
            return None;
        }
        tbs = rest;
    }
    let (tag, validity, _) = read_tlv(tbs)?;
    if tag != SEQUENCE {
        return None;
    }
    let (_, _, after_not_before) = read_tlv(validity)?;
    let (tag, not_after, _) = read_tlv(after_not_before)?;
    parse_asn1_time(tag, std::str::from_utf8(not_after).ok()?)
}

/// Splits one DER tag-length-value off `input`: (tag, content, rest).
fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let length = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, tail) = rest.split_at(count);
        rest = tail;
        bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    if rest.len() < length {
        return None;
    }
    let (content, tail) = rest.split_at(length);
    Some((tag, content, tail))
}

/// UTCTime (`YYMMDDHHMMSSZ`, tag 0x17) or GeneralizedTime (`YYYYMMDDHHMMSSZ`, tag 0x18).
fn parse_asn1_time(tag: u8, text: &str) -> Option<DateTime<Utc>> {
    let digits = text.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = match (tag, digits.len()) {
        (0x17, 12) => {
            let yy: i32 = digits[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
        }
        (0x18, 14) => (digits[..4].parse().ok()?, &digits[4..]),
        _ => return None,
    };
    let field = |i: usize| rest[i..i + 2].parse::<u32>().ok();
    let date = NaiveDate::from_ymd_opt(year, field(0)?, field(2)?)?;
    let time = date.and_hms_opt(field(4)?, field(6)?, field(8)?)?;
    Some(time.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_time_forms() {
        let at = |y, mo, d, h, mi, s| {
            NaiveDate::from_ymd_opt(y, mo, d)
                .unwrap()
                .and_hms_opt(h, mi, s)
                .unwrap()
                .and_utc()
        };
        assert_eq!(
            parse_asn1_time(0x17, "491231235959Z"),
            Some(at(2049, 12, 31, 23, 59, 59))
        );
        assert_eq!(
            parse_asn1_time(0x17, "500101000000Z"),
            Some(at(1950, 1, 1, 0, 0, 0))
        );
        assert_eq!(
            parse_asn1_time(0x18, "20610304050607Z"),
            Some(at(2061, 3, 4, 5, 6, 7))
        );
        assert_eq!(parse_asn1_time(0x17, "20610304050607Z"), None);
        assert_eq!(parse_asn1_time(0x17, "491332235959Z"), None);
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert_eq!(certificate_not_after(&[]), None);
        assert_eq!(certificate_not_after(&[0x30, 0x85, 1, 2, 3, 4, 5]), None);
        assert_eq!(certificate_not_after(&[0x30, 0x03, 0x30, 0x01]), None);
        assert_eq!(certificate_not_after(b"not a certificate at all"), None);
    }
}
