//! E-mail over SMTP (lettre): plain, STARTTLS or implicit TLS, optional AUTH.
//!
//! Subject `[FIRING P0] <summary>` (or `[STILL FIRING …]`, `[RESOLVED …]`), plain-text body
//! with details, source, key, times and labels.

use std::fmt::Write as _;

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, header::ContentType},
    transport::smtp::{
        authentication::Credentials,
        client::{Certificate, Tls, TlsParameters},
        extension::ClientId,
    },
};

use super::{SEND_TIMEOUT, error_chain, rfc3339};
use crate::alert::{EmailConfig, Notification, NotificationKind, SinkError, SmtpTls};

/// Name announced in EHLO.
const HELLO_NAME: &str = "watchkeeper";

/// The subject line.
pub fn subject(n: &Notification) -> String {
    let state = match n.kind {
        NotificationKind::Trigger => "FIRING",
        NotificationKind::Repeat => "STILL FIRING",
        NotificationKind::Resolve => "RESOLVED",
        NotificationKind::Notice => "NOTICE",
    };
    // Header lines must stay on one line.
    let summary = n.alert.summary.replace(['\r', '\n'], " ");
    format!("[{state} {}] {summary}", n.alert.severity)
}

/// The plain-text body.
pub fn body(n: &Notification) -> String {
    let alert = &n.alert;
    let mut text = String::new();
    let _ = writeln!(text, "{}", alert.summary);
    if !alert.details.is_empty() {
        let _ = writeln!(text, "\n{}", alert.details);
    }
    let _ = writeln!(text);
    let _ = writeln!(
        text,
        "Severity: {} ({})",
        alert.severity,
        alert.severity.pagerduty()
    );
    let _ = writeln!(text, "Source:   {}", alert.source);
    let _ = writeln!(text, "Key:      {}", alert.key);
    let _ = writeln!(text, "Since:    {}", rfc3339(alert.starts_at));
    if let Some(ends) = n.ends_at {
        let _ = writeln!(text, "Ended:    {}", rfc3339(ends));
    }
    if let Some(url) = &alert.generator_url {
        let _ = writeln!(text, "Link:     {url}");
    }
    for (name, value) in &alert.labels {
        let _ = writeln!(text, "Label:    {name}={value}");
    }
    for (name, value) in &alert.annotations {
        let _ = writeln!(text, "Note:     {name}: {value}");
    }
    text
}

fn smtp_error(channel: &str, message: String) -> SinkError {
    SinkError::Smtp {
        channel: channel.to_string(),
        message,
    }
}

/// Builds the message (addresses are checked here) and sends it over one SMTP connection.
pub async fn send(channel: &str, config: &EmailConfig, n: &Notification) -> Result<(), SinkError> {
    let config_error = |message: String| SinkError::Config {
        channel: channel.to_string(),
        sink: "email",
        message,
    };
    let from: Mailbox = config
        .from
        .parse()
        .map_err(|e| config_error(format!("from address {:?}: {e}", config.from)))?;
    let mut builder = Message::builder()
        .from(from)
        .subject(subject(n))
        .header(ContentType::TEXT_PLAIN);
    if config.to.is_empty() {
        return Err(config_error("no recipient in to".into()));
    }
    for to in &config.to {
        let mailbox: Mailbox = to
            .parse()
            .map_err(|e| config_error(format!("to address {to:?}: {e}")))?;
        builder = builder.to(mailbox);
    }
    let message = builder
        .body(body(n))
        .map_err(|e| config_error(format!("cannot build the message: {e}")))?;

    // The certificate must name `host`; trusted are the system roots plus `ca_pem`.
    let tls_parameters = || -> Result<TlsParameters, SinkError> {
        let mut builder = TlsParameters::builder(config.host.clone());
        if let Some(pem) = &config.ca_pem {
            let ca = Certificate::from_pem(pem)
                .map_err(|e| config_error(format!("CA certificate: {e}")))?;
            builder = builder.add_root_certificate(ca);
        }
        builder
            .build_rustls()
            .map_err(|e| config_error(format!("TLS setup for {}: {e}", config.host)))
    };
    let tls = match config.tls {
        SmtpTls::None => Tls::None,
        // Required, not Opportunistic: a server that does not offer STARTTLS gets nothing,
        // so credentials and alert text never travel in clear by downgrade.
        SmtpTls::StartTls => Tls::Required(tls_parameters()?),
        SmtpTls::Tls => Tls::Wrapper(tls_parameters()?),
    };
    let mut transport_builder =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.as_str())
            .tls(tls)
            .port(config.port)
            .timeout(Some(SEND_TIMEOUT))
            .hello_name(ClientId::Domain(HELLO_NAME.into()));
    if let Some((user, password)) = &config.credentials {
        transport_builder =
            transport_builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    let transport = transport_builder.build();
    transport
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| smtp_error(channel, error_chain(&e)))
}
