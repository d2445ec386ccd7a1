//! A local health endpoint shaped like the guides' `/api/health`, for the controller tests.

use std::sync::Arc;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A target answering `GET /api/health` like the guide's endpoint, with a switchable status
/// code; counts the requests it served.
pub struct Target {
    pub addr: std::net::SocketAddr,
    code: Arc<std::sync::atomic::AtomicU16>,
    requests: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Target {
    pub async fn start() -> Self {
        Self::start_with_auth(None).await
    }

    /// A target answering 401 unless the request carries `Authorization: <auth>`.
    pub async fn start_with_auth(auth: Option<&'static str>) -> Self {
        use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the target");
        let addr = listener.local_addr().expect("target address");
        let code = Arc::new(AtomicU16::new(200));
        let requests = Arc::new(AtomicUsize::new(0));
        let (served_code, served) = (code.clone(), requests.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (code, served) = (served_code.clone(), served.clone());
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    served.fetch_add(1, Ordering::SeqCst);
                    let head = String::from_utf8_lossy(&request).to_ascii_lowercase();
                    let authorized = auth.is_none_or(|value| {
                        head.contains(&format!(
                            "\r\nauthorization: {}\r\n",
                            value.to_ascii_lowercase()
                        ))
                    });
                    let code = if authorized {
                        code.load(Ordering::SeqCst)
                    } else {
                        401
                    };
                    let state = if code == 200 { "healthy" } else { "unhealthy" };
                    let body = json!({
                        "status": state,
                        "timestamp": "2025-11-08T12:00:00Z",
                        "services": {"database": "ok", "ai_providers": {"openai": "ok"}}
                    })
                    .to_string();
                    let response = format!(
                        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self {
            addr,
            code,
            requests,
            task,
        }
    }

    pub fn set_code(&self, code: u16) {
        self.code.store(code, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.task.abort();
    }
}
