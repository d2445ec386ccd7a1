//! Local health endpoints for benchmarks: `GET /api/health` answers a small JSON body shaped
//! like the operations guides' health endpoint.

use std::io::{BufRead, Write};
use std::net::SocketAddr;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use tokio::net::TcpListener;

use super::BenchError;

/// The body of `/api/health`: overall status and per-service states, as in the guides.
pub const HEALTH_BODY: &str = r#"{"status":"healthy","version":"1.4.2","services":{"database":{"status":"ok","latency_ms":3},"storage":"ok","cache":{"status":"ok","hit_rate":0.93},"ai_providers":{"openai":"ok","claude":"ok"}}}"#;

/// Arguments of `watchkeeper bench serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// How many servers (each on its own port).
    #[arg(long, default_value_t = 1)]
    pub servers: u16,
    /// First port; the servers use consecutive ports. 0 picks free ports.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Worker threads of the server process.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Exit when standard input closes (how `bench probes` stops its child).
    #[arg(long)]
    pub exit_on_stdin_close: bool,
}

/// Binds the listeners on 127.0.0.1.
pub async fn bind(servers: u16, first_port: u16) -> Result<Vec<TcpListener>, BenchError> {
    let mut listeners = Vec::new();
    for i in 0..servers {
        let port = if first_port == 0 {
            0
        } else {
            first_port.saturating_add(i)
        };
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|source| BenchError::Bind { port, source })?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Serves `/api/health` on every listener until the task is dropped.
pub async fn serve(listeners: Vec<TcpListener>) {
    let app = Router::new().route(
        "/api/health",
        get(|| async { ([(header::CONTENT_TYPE, "application/json")], HEALTH_BODY) }),
    );
    let mut tasks = tokio::task::JoinSet::new();
    for listener in listeners {
        let app = app.clone();
        tasks.spawn(async move { axum::serve(listener, app).await });
    }
    while tasks.join_next().await.is_some() {}
}

/// Addresses of the listeners, for the parent.
pub fn addresses(listeners: &[TcpListener]) -> Vec<SocketAddr> {
    listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .collect()
}

/// `watchkeeper bench serve`: prints `listening ADDR ADDR…` on one line, then serves.
pub fn run(args: ServeArgs) -> Result<(), BenchError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .map_err(BenchError::Runtime)?;
    runtime.block_on(async {
        let listeners = bind(args.servers, args.port).await?;
        let line: Vec<String> = addresses(&listeners)
            .iter()
            .map(ToString::to_string)
            .collect();
        let mut stdout = std::io::stdout();
        // The parent waits for this line; a closed stdout only means nobody waits.
        let _ = writeln!(stdout, "listening {}", line.join(" "));
        let _ = stdout.flush();
        if args.exit_on_stdin_close {
            let closed = tokio::task::spawn_blocking(|| {
                let mut sink = String::new();
                let mut stdin = std::io::stdin().lock();
                while stdin.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                    sink.clear();
                }
            });
            tokio::select! {
                () = serve(listeners) => {}
                _ = closed => {}
            }
        } else {
            serve(listeners).await;
        }
        Ok(())
    })
}
