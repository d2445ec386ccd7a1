//! `watchkeeper run --demo`: a bundled target shaped like the guides' `/api/health` that
//! degrades on a script, a bundled webhook receiver that shows the alerts it gets, and the
//! bundled monitor (`demo.yaml`) that probes the one and alerts the other.
//!
//! The script (at speed 1; `--demo-speed N` runs it N times faster), from the first request:
//! - 0 s: everything ok, answers in ~20 ms.
//! - 12 s: the OpenAI provider reports `down` and answers slow down to ~400 ms
//!   (thresholds `openai-errors` and `response-time` cross their levels; P2, to team chat).
//! - 22 s: the whole endpoint answers 503 (Down after 3 probes: a P0 page to on-call).
//! - 32 s: recovered (the page resolves; the thresholds clear once the 10 s window has).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::RunError;

/// The bundled monitor, with `DEMO_TARGET_URL` and `DEMO_RECEIVER_URL` placeholders.
pub const MANIFEST: &str = include_str!("demo.yaml");

/// Label the bundled manifest is reported under.
pub const MANIFEST_LABEL: &str = "<demo>/demo.yaml";

/// One step of the script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Everything ok.
    Healthy,
    /// One AI provider down, answers slow.
    ProviderDown,
    /// The endpoint answers 503.
    Outage,
    /// Everything ok again.
    Recovered,
}

/// When each phase starts, at speed 1.
pub const SCRIPT: [(Duration, Phase); 4] = [
    (Duration::from_secs(0), Phase::Healthy),
    (Duration::from_secs(12), Phase::ProviderDown),
    (Duration::from_secs(22), Phase::Outage),
    (Duration::from_secs(32), Phase::Recovered),
];

/// How long the script lasts at speed 1, plus time for the windows to clear (the README's
/// `--duration 60s` covers it).
pub const SCRIPT_LENGTH: Duration = Duration::from_secs(50);

/// The phase `elapsed` after the start, at `speed`.
pub fn phase_at(elapsed: Duration, speed: u32) -> Phase {
    let scaled = elapsed.saturating_mul(speed.max(1));
    SCRIPT
        .iter()
        .rev()
        .find(|(at, _)| scaled >= *at)
        .map_or(Phase::Healthy, |(_, phase)| *phase)
}

/// The running demo servers.
pub struct Demo {
    target_url: String,
    receiver_url: String,
    received: Arc<Mutex<Vec<Value>>>,
    notices: broadcast::Sender<Value>,
    started: Arc<Mutex<Option<Instant>>>,
    speed: u32,
}

#[derive(Clone)]
struct TargetState {
    started: Arc<Mutex<Option<Instant>>>,
    speed: u32,
}

/// Time since the script started; the first request starts it, so the time spent starting up
/// (validating manifests, loading the system's root certificates) does not eat into the
/// healthy phase.
fn elapsed(started: &Mutex<Option<Instant>>, start: bool) -> Duration {
    let mut started = started.lock().unwrap_or_else(PoisonError::into_inner);
    match *started {
        Some(at) => at.elapsed(),
        None => {
            if start {
                *started = Some(Instant::now());
            }
            Duration::ZERO
        }
    }
}

#[derive(Clone)]
struct ReceiverState {
    received: Arc<Mutex<Vec<Value>>>,
    notices: broadcast::Sender<Value>,
}

impl Demo {
    /// Starts the target and the receiver on loopback ports chosen by the system; both stop
    /// when `cancel` is cancelled.
    pub async fn start(speed: u32, cancel: CancellationToken) -> Result<Self, RunError> {
        let speed = speed.max(1);
        let started = Arc::new(Mutex::new(None));
        let target = Router::new()
            .route("/api/health", get(health))
            .with_state(TargetState {
                started: started.clone(),
                speed,
            });
        let received = Arc::new(Mutex::new(Vec::new()));
        let (notices, _) = broadcast::channel(256);
        let receiver = Router::new()
            .route("/alerts", post(receive))
            .with_state(ReceiverState {
                received: received.clone(),
                notices: notices.clone(),
            });
        let target_addr = serve(target, cancel.clone()).await?;
        let receiver_addr = serve(receiver, cancel).await?;
        Ok(Self {
            target_url: format!("http://{target_addr}"),
            receiver_url: format!("http://{receiver_addr}"),
            received,
            notices,
            started,
            speed,
        })
    }

    /// The bundled manifest pointing at these servers.
    pub fn manifest(&self) -> String {
        MANIFEST
            .replace("DEMO_TARGET_URL", &self.target_url)
            .replace("DEMO_RECEIVER_URL", &self.receiver_url)
    }

    /// Base URL of the demo target.
    pub fn target_url(&self) -> &str {
        &self.target_url
    }

    /// Every payload the receiver got, in order.
    pub fn received(&self) -> Vec<Value> {
        self.received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Follows payloads as they arrive.
    pub fn subscribe(&self) -> broadcast::Receiver<Value> {
        self.notices.subscribe()
    }

    /// The script's current phase.
    pub fn phase(&self) -> Phase {
        phase_at(elapsed(&self.started, false), self.speed)
    }

    /// The script as lines for the terminal, in wall-clock seconds at this speed.
    pub fn script_lines(&self) -> Vec<String> {
        let at = |d: Duration| format!("{:>5.1}s", (d / self.speed).as_secs_f64());
        vec![
            format!("{} all services ok", at(SCRIPT[0].0)),
            format!("{} openai reports down, answers slow down", at(SCRIPT[1].0)),
            format!("{} the endpoint answers 503", at(SCRIPT[2].0)),
            format!("{} recovered", at(SCRIPT[3].0)),
        ]
    }
}

async fn serve(
    router: Router,
    cancel: CancellationToken,
) -> Result<std::net::SocketAddr, RunError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| RunError::Listen {
            addr: "127.0.0.1:0".to_string(),
            source: e,
        })?;
    let addr = listener.local_addr().map_err(|e| RunError::Listen {
        addr: "127.0.0.1:0".to_string(),
        source: e,
    })?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(cancel.cancelled_owned())
            .await;
    });
    Ok(addr)
}

async fn health(
    State(state): State<TargetState>,
) -> (StatusCode, [(header::HeaderName, &'static str); 1], String) {
    let phase = phase_at(elapsed(&state.started, true), state.speed);
    // Simulated service time of the application (not synchronisation).
    let latency_ms = match phase {
        Phase::ProviderDown => 400,
        Phase::Outage => 5,
        Phase::Healthy | Phase::Recovered => 20,
    };
    tokio::time::sleep(Duration::from_millis(latency_ms) / state.speed).await;
    let (code, body) = match phase {
        Phase::Healthy | Phase::Recovered => (
            StatusCode::OK,
            json!({"status": "healthy", "services": {"database": "ok",
                "ai_providers": {"openai": "ok", "claude": "ok"}, "storage": "ok"}}),
        ),
        Phase::ProviderDown => (
            StatusCode::OK,
            json!({"status": "degraded", "services": {"database": "ok",
                "ai_providers": {"openai": "down", "claude": "ok"}, "storage": "ok"}}),
        ),
        Phase::Outage => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unhealthy", "error": "upstream connect error"}),
        ),
    };
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
}

async fn receive(State(state): State<ReceiverState>, body: String) -> StatusCode {
    let Ok(value) = serde_json::from_str::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    state
        .received
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(value.clone());
    let _ = state.notices.send(value);
    StatusCode::OK
}

/// One line describing a received webhook payload.
pub fn describe(payload: &Value) -> String {
    let text = |v: &Value| v.as_str().unwrap_or("?").to_string();
    let alert = &payload["alert"];
    format!(
        "[receiver] {} {} to {}: {} ({})",
        text(&payload["kind"]).to_uppercase(),
        text(&alert["severity"]),
        text(&payload["channel"]),
        text(&alert["summary"]),
        text(&alert["key"]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_phases_follow_the_clock_and_the_speed() {
        assert_eq!(phase_at(Duration::from_secs(0), 1), Phase::Healthy);
        assert_eq!(phase_at(Duration::from_secs(13), 1), Phase::ProviderDown);
        assert_eq!(phase_at(Duration::from_secs(25), 1), Phase::Outage);
        assert_eq!(phase_at(Duration::from_secs(33), 1), Phase::Recovered);
        assert_eq!(phase_at(Duration::from_millis(2300), 10), Phase::Outage);
    }

    #[test]
    fn bundled_manifest_is_valid_once_addresses_are_filled_in() {
        let text = MANIFEST
            .replace("DEMO_TARGET_URL", "http://127.0.0.1:1")
            .replace("DEMO_RECEIVER_URL", "http://127.0.0.1:2");
        let loaded = super::super::load::load(&[(MANIFEST_LABEL.to_string(), text)]).unwrap();
        assert_eq!(loaded.monitors.len(), 1);
    }
}
