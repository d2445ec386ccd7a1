//! A small HTTP/1.1 server for the probe tests, on 127.0.0.1, plain or TLS, with keep-alive,
//! scripted replies (slow, huge, redirecting) and a count of accepted connections.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the server answers.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    /// Wait this long before answering (a slow endpoint).
    pub delay: Duration,
    /// Send no Content-Length and close the connection after the body, so the client can only
    /// find the size by reading.
    pub omit_length: bool,
}

pub enum Body {
    Bytes(Vec<u8>),
    /// `len` bytes of filler, written in 64 KiB pieces (never held in memory whole).
    Filler(usize),
}

impl Reply {
    pub fn json(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: Body::Bytes(body.as_bytes().to_vec()),
            delay: Duration::ZERO,
            omit_length: false,
        }
    }

    pub fn redirect(to: &str) -> Self {
        Self {
            status: 302,
            headers: vec![("Location".into(), to.into())],
            body: Body::Bytes(Vec::new()),
            delay: Duration::ZERO,
            omit_length: false,
        }
    }
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

pub struct TestServer {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn https_url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.addr.port())
    }

    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Starts a plain HTTP server.
pub async fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> TestServer {
    start_with(Arc::new(handler), None).await
}

/// Starts an HTTPS server presenting `config`'s certificate.
pub async fn start_tls(
    handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    config: rustls::ServerConfig,
) -> TestServer {
    start_with(Arc::new(handler), Some(Arc::new(config))).await
}

async fn start_with(handler: Handler, tls: Option<Arc<rustls::ServerConfig>>) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let task = {
        let connections = connections.clone();
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                connections.fetch_add(1, Ordering::SeqCst);
                let handler = handler.clone();
                let seen = seen.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match acceptor {
                        Some(acceptor) => {
                            // A failed handshake (untrusted or expired certificate) just ends
                            // the connection, as a real server's would.
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve(stream, handler, seen).await;
                            }
                        }
                        None => serve(stream, handler, seen).await,
                    }
                });
            }
        })
    };
    TestServer {
        addr,
        connections,
        seen,
        task,
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    handler: Handler,
    seen: Arc<Mutex<Vec<Seen>>>,
) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).await.unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
        let length = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let request = Seen {
            method,
            path,
            headers,
            body,
        };
        seen.lock().unwrap().push(request.clone());
        let reply = handler(&request);
        if !reply.delay.is_zero() {
            tokio::time::sleep(reply.delay).await;
        }
        let length = match &reply.body {
            Body::Bytes(bytes) => bytes.len(),
            Body::Filler(len) => *len,
        };
        let mut head = format!("HTTP/1.1 {} Test\r\n", reply.status);
        if reply.omit_length {
            head.push_str("Connection: close\r\n");
        } else {
            head.push_str(&format!("Content-Length: {length}\r\n"));
        }
        for (name, value) in &reply.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let stream = reader.get_mut();
        if stream.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let written = match reply.body {
            Body::Bytes(bytes) => stream.write_all(&bytes).await,
            Body::Filler(mut left) => {
                let piece = vec![b'x'; 64 * 1024];
                let mut result = Ok(());
                while left > 0 && result.is_ok() {
                    let n = left.min(piece.len());
                    result = stream.write_all(&piece[..n]).await;
                    left -= n;
                }
                result
            }
        };
        if written.is_err() || stream.flush().await.is_err() || reply.omit_length {
            let _ = stream.shutdown().await;
            return;
        }
    }
}
