//! Local receivers for delivery tests: an HTTP server (axum on 127.0.0.1, any path) that records
//! every request and answers a settable status, and a minimal SMTP server (RFC 5321: EHLO/HELO,
//! MAIL, RCPT, DATA, RSET, NOOP, QUIT; STARTTLS per RFC 3207, implicit TLS, AUTH PLAIN per
//! RFC 4954) that records every message.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU16, Ordering},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, Uri},
};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};
use tokio_rustls::{TlsAcceptor, rustls::ServerConfig};

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Captured {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Captured {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

#[derive(Clone)]
struct Shared {
    requests: Arc<Mutex<Vec<Captured>>>,
    status: Arc<AtomicU16>,
}

/// An HTTP receiver on an ephemeral loopback port.
pub struct HttpReceiver {
    pub base: String,
    shared: Shared,
    task: JoinHandle<()>,
}

async fn capture(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    if let Ok(mut requests) = shared.requests.lock() {
        requests.push(Captured {
            path: uri.path().to_string(),
            headers,
            body: body.to_vec(),
        });
    }
    let status = StatusCode::from_u16(shared.status.load(Ordering::SeqCst))
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, "ok")
}

impl HttpReceiver {
    /// Starts a receiver answering `status` to every request.
    pub async fn start(status: u16) -> Self {
        let shared = Shared {
            requests: Arc::default(),
            status: Arc::new(AtomicU16::new(status)),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(capture).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base, shared, task }
    }

    pub fn set_status(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    pub fn requests(&self) -> Vec<Captured> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }
}

impl Drop for HttpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One message as the SMTP server received it.
#[derive(Clone, Debug, Default)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
    /// Whether the message came over TLS (implicit or after STARTTLS).
    pub tls: bool,
    /// The SASL PLAIN response of the session's AUTH, if any (base64).
    pub auth_plain: Option<String>,
}

impl Mail {
    /// The value of a header of the message (first occurrence, unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let mut lines = self.data.split("\r\n").peekable();
        while let Some(line) = lines.next() {
            if line.is_empty() {
                return None; // end of headers
            }
            if let Some((key, value)) = line.split_once(':')
                && key.eq_ignore_ascii_case(name)
            {
                let mut value = value.trim().to_string();
                while let Some(next) = lines.peek().filter(|l| l.starts_with([' ', '\t'])) {
                    value.push(' ');
                    value.push_str(next.trim());
                    lines.next();
                }
                return Some(value);
            }
        }
        None
    }
}

/// How the SMTP receiver secures connections.
#[derive(Clone)]
pub enum SmtpMode {
    /// Plain text, no STARTTLS offered.
    Plain,
    /// Plain greeting, STARTTLS offered; AUTH PLAIN offered once upgraded.
    StartTls(Arc<ServerConfig>),
    /// TLS from the first byte; AUTH PLAIN offered.
    ImplicitTls(Arc<ServerConfig>),
}

/// A minimal SMTP server on an ephemeral loopback port.
pub struct SmtpReceiver {
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
    task: JoinHandle<()>,
}

impl SmtpReceiver {
    pub async fn start() -> Self {
        Self::start_with(SmtpMode::Plain).await
    }

    pub async fn start_with(mode: SmtpMode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mails: Arc<Mutex<Vec<Mail>>> = Arc::default();
        let store = mails.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = store.clone();
                let mode = mode.clone();
                tokio::spawn(async move {
                    let _ = connection(stream, mode, store).await;
                });
            }
        });
        Self { port, mails, task }
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}

impl Drop for SmtpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn connection(
    stream: TcpStream,
    mode: SmtpMode,
    store: Arc<Mutex<Vec<Mail>>>,
) -> std::io::Result<()> {
    match mode {
        SmtpMode::Plain => {
            converse(stream, &store, true, false, false).await?;
        }
        SmtpMode::StartTls(config) => {
            if let Some(stream) = converse(stream, &store, true, true, false).await? {
                let tls = TlsAcceptor::from(config).accept(stream).await?;
                converse(tls, &store, false, false, true).await?;
            }
        }
        SmtpMode::ImplicitTls(config) => {
            let tls = TlsAcceptor::from(config).accept(stream).await?;
            converse(tls, &store, true, false, true).await?;
        }
    }
    Ok(())
}

/// One SMTP conversation on `stream`. Returns the stream when the client asked for STARTTLS
/// (the caller upgrades it and converses again), `None` after QUIT or EOF.
async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    store: &Mutex<Vec<Mail>>,
    greet: bool,
    offer_starttls: bool,
    tls: bool,
) -> std::io::Result<Option<S>> {
    let mut reader = BufReader::new(stream);
    if greet {
        reader
            .get_mut()
            .write_all(b"220 receiver.test ESMTP\r\n")
            .await?;
    }
    let mut mail = Mail::default();
    let mut auth_plain = None;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let command = line.trim_end().to_string();
        let mut words = command.split_whitespace();
        let verb = words.next().unwrap_or("").to_ascii_uppercase();
        let reply: Vec<u8> = match verb.as_str() {
            "EHLO" | "HELO" => {
                let mut reply = String::from("250-receiver.test\r\n");
                if offer_starttls {
                    reply.push_str("250-STARTTLS\r\n");
                }
                if tls {
                    reply.push_str("250-AUTH PLAIN\r\n");
                }
                reply.push_str("250 HELP\r\n");
                reply.into_bytes()
            }
            "STARTTLS" if offer_starttls => {
                reader.get_mut().write_all(b"220 go ahead\r\n").await?;
                return Ok(Some(reader.into_inner()));
            }
            "AUTH" if tls => {
                let response = match words.nth(1) {
                    Some(initial) => initial.to_string(),
                    None => {
                        reader.get_mut().write_all(b"334 \r\n").await?;
                        let mut next = String::new();
                        reader.read_line(&mut next).await?;
                        next.trim_end().to_string()
                    }
                };
                auth_plain = Some(response);
                b"235 2.7.0 accepted\r\n".to_vec()
            }
            "MAIL" => {
                mail = Mail {
                    from: address(&command),
                    tls,
                    auth_plain: auth_plain.clone(),
                    ..Mail::default()
                };
                b"250 OK\r\n".to_vec()
            }
            "RCPT" => {
                mail.to.push(address(&command));
                b"250 OK\r\n".to_vec()
            }
            "DATA" => {
                reader.get_mut().write_all(b"354 end with .\r\n").await?;
                let mut data = String::new();
                let mut text = String::new();
                loop {
                    text.clear();
                    if reader.read_line(&mut text).await? == 0 {
                        return Ok(None);
                    }
                    let body_line = text.trim_end_matches(['\r', '\n']);
                    if body_line == "." {
                        break;
                    }
                    // Undo dot-stuffing.
                    data.push_str(body_line.strip_prefix('.').unwrap_or(body_line));
                    data.push_str("\r\n");
                }
                mail.data = data;
                store.lock().unwrap().push(std::mem::take(&mut mail));
                b"250 queued\r\n".to_vec()
            }
            "RSET" | "NOOP" => b"250 OK\r\n".to_vec(),
            "QUIT" => {
                reader.get_mut().write_all(b"221 bye\r\n").await?;
                return Ok(None);
            }
            _ => b"502 not implemented\r\n".to_vec(),
        };
        reader.get_mut().write_all(&reply).await?;
    }
}

/// The address between `<` and `>` of a MAIL or RCPT line.
fn address(line: &str) -> String {
    line.split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(addr, _)| addr.to_string())
        .unwrap_or_default()
}
