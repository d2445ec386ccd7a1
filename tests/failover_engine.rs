//! The failover engine against local servers: the Cloudflare DNS switch and the HTTP step
//! speak the real wire formats, and the whole state machine survives a crash at every save
//! and in the middle of every step, performing each side effect exactly once.

#[path = "support/cloudflare.rs"]
mod cloudflare;
#[allow(dead_code)]
#[path = "support/postgres.rs"]
mod postgres;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use chrono::{DateTime, TimeZone, Utc};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use cloudflare::{Cloudflare, DnsRecord};
use watchkeeper::api::common::{SecretKeyRef, SslMode};
use watchkeeper::api::failover_plan::{DnsRecordType, FailoverPlanSpec, Step};
use watchkeeper::failover::action::{CloudflareSwitch, HttpCall};
use watchkeeper::failover::sql::{self as sql_step, SqlCall, SqlTarget};
use watchkeeper::failover::{
    Action, AttemptKind, ClusterExecutor, Executor, FailoverError, FailoverRecord, IdempotencyKey,
    NoCluster, Observations, Phase, PlanPolicy, RecordStore, ResolvedPlan, StepExecutor,
    StepFailure, StepKind, StepPhase, StepRun, drive,
};

const TOKEN: &str = "cf-test-token-7f3a";

fn run(kind: StepKind, dry_run: bool) -> StepRun {
    StepRun {
        attempt_kind: AttemptKind::Failover,
        index: 1,
        name: "switch-dns".into(),
        kind,
        timeout: std::time::Duration::from_secs(10),
        dry_run,
        key: IdempotencyKey {
            plan_id: "prod/regional".into(),
            attempt_id: "failover-1-x".into(),
            step_index: 1,
            try_number: 1,
        },
    }
}

fn record(content: &str) -> DnsRecord {
    DnsRecord {
        id: "rec-1".into(),
        zone_id: "zone-1".into(),
        name: "app.example.com".into(),
        kind: "A".into(),
        content: content.into(),
        ttl: 3600,
        proxied: false,
    }
}

fn switch(cf: &Cloudflare) -> CloudflareSwitch {
    CloudflareSwitch {
        api_url: cf.api_url.clone(),
        zone_id: "zone-1".into(),
        record_name: "app.example.com".into(),
        record_type: DnsRecordType::A,
        content: "198.51.100.20".into(),
        ttl: 60,
        proxied: false,
        token: TOKEN.into(),
    }
}

fn client() -> reqwest::Client {
    watchkeeper::failover::http::client().expect("client")
}

/// A hosting-provider-like API: POST endpoints that honour `Idempotency-Key` (a repeated key
/// gets the first answer and no second effect) and answer `status`.
#[derive(Clone, Default)]
struct Provider {
    inner: Arc<Mutex<ProviderState>>,
}

#[derive(Default)]
struct ProviderState {
    status: BTreeMap<String, u16>,
    requests: Vec<(String, Option<String>, HeaderMap)>,
    effects: BTreeMap<String, HashSet<String>>,
}

async fn provider_handle(
    State(p): State<Provider>,
    uri: Uri,
    headers: HeaderMap,
    _body: Bytes,
) -> StatusCode {
    let Ok(mut state) = p.inner.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR;
    };
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let path = uri.path().to_string();
    state.requests.push((path.clone(), key.clone(), headers));
    let status = state.status.get(&path).copied().unwrap_or(201);
    if (200..300).contains(&status)
        && let Some(key) = key
    {
        state.effects.entry(path).or_default().insert(key);
    }
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl Provider {
    async fn start(&self) -> String {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let app = Router::new()
            .fallback(provider_handle)
            .with_state(self.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        base
    }

    fn set_status(&self, path: &str, status: u16) {
        self.inner
            .lock()
            .expect("state")
            .status
            .insert(path.to_string(), status);
    }

    fn effects(&self, path: &str) -> usize {
        self.inner
            .lock()
            .expect("state")
            .effects
            .get(path)
            .map_or(0, HashSet::len)
    }

    fn requests(&self, path: &str) -> usize {
        self.inner
            .lock()
            .expect("state")
            .requests
            .iter()
            .filter(|r| r.0 == path)
            .count()
    }
}

/// Where a run is made to crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Crash {
    /// The n-th save fails before anything is written.
    BeforeSave(usize),
    /// The n-th save is written, then the process dies.
    AfterSave(usize),
    /// The n-th step try dies before its side effect.
    BeforeEffect(usize),
    /// The n-th step try dies after its side effect, before reporting.
    AfterEffect(usize),
}

/// The persisted record; survives "crashes" (each crash drops everything else).
#[derive(Default)]
struct Store {
    record: Mutex<Option<FailoverRecord>>,
    saves: AtomicUsize,
    crash: Mutex<Option<Crash>>,
}

impl RecordStore for Store {
    async fn load(&self) -> Result<Option<FailoverRecord>, FailoverError> {
        Ok(self.record.lock().expect("store").clone())
    }

    async fn save(&self, record: &FailoverRecord) -> Result<(), FailoverError> {
        let n = self.saves.fetch_add(1, Ordering::SeqCst) + 1;
        let mut crash = self.crash.lock().expect("crash");
        if *crash == Some(Crash::BeforeSave(n)) {
            *crash = None;
            return Err(FailoverError::Store("crash before save".into()));
        }
        *self.record.lock().expect("store") = Some(record.clone());
        if *crash == Some(Crash::AfterSave(n)) {
            *crash = None;
            return Err(FailoverError::Store("crash after save".into()));
        }
        Ok(())
    }
}

/// Wraps the real executor and dies where told.
struct Crashing<E> {
    inner: E,
    executions: AtomicUsize,
    crash: Mutex<Option<Crash>>,
    crashed: Arc<Notify>,
}

impl<E: Executor> Executor for Crashing<E> {
    async fn execute(&self, run: &StepRun) -> Result<String, StepFailure> {
        let n = self.executions.fetch_add(1, Ordering::SeqCst) + 1;
        let crash = {
            let mut crash = self.crash.lock().expect("crash");
            let hit =
                matches!(*crash, Some(Crash::BeforeEffect(m) | Crash::AfterEffect(m)) if m == n);
            if hit { crash.take() } else { None }
        };
        match crash {
            Some(Crash::BeforeEffect(_)) => {
                self.crashed.notify_one();
                std::future::pending().await
            }
            Some(Crash::AfterEffect(_)) => {
                let _ = self.inner.execute(run).await;
                self.crashed.notify_one();
                std::future::pending().await
            }
            _ => self.inner.execute(run).await,
        }
    }
}

fn clock() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 17, 0, 0)
        .single()
        .expect("valid")
}

fn triggered() -> Observations {
    Observations {
        failover_token: Some("ohio-outage-1".into()),
        ..Observations::default()
    }
}

#[path = "failover_engine/crash.rs"]
mod crash;
#[path = "failover_engine/dns.rs"]
mod dns;
#[path = "failover_engine/http.rs"]
mod http;
#[path = "failover_engine/sql.rs"]
mod sql;
