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

#[tokio::test]
async fn the_dns_switch_looks_the_record_up_by_name_and_patches_it_once() {
    let cf = Cloudflare::start(TOKEN, vec![record("203.0.113.10")]).await;
    let http = client();
    let sw = switch(&cf);
    let first =
        watchkeeper::failover::cloudflare::switch(&http, &sw, &run(StepKind::DnsSwitch, false))
            .await;
    assert!(
        first
            .as_ref()
            .is_ok_and(|m| m.contains("from 203.0.113.10 to 198.51.100.20")),
        "{first:?}"
    );
    let second =
        watchkeeper::failover::cloudflare::switch(&http, &sw, &run(StepKind::DnsSwitch, false))
            .await;
    assert!(
        second.as_ref().is_ok_and(|m| m.contains("nothing changed")),
        "{second:?}"
    );
    assert_eq!(cf.patches(), 1, "run twice, patched once");
    let now = cf.record("rec-1").expect("record");
    assert_eq!((now.content.as_str(), now.ttl), ("198.51.100.20", 60));
    let seen = cf.seen();
    assert_eq!(seen.len(), 3, "lookup, update, lookup");
    assert!(cf.malformed().is_empty(), "{:?}", cf.malformed());
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path, "/client/v4/zones/zone-1/dns_records");
    let query: BTreeMap<String, String> =
        form_urlencoded::parse(seen[0].query.as_deref().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    assert_eq!(query.get("type").map(String::as_str), Some("A"));
    assert_eq!(
        query.get("name").map(String::as_str),
        Some("app.example.com")
    );
    assert_eq!(seen[1].method, "PATCH");
    assert_eq!(seen[1].path, "/client/v4/zones/zone-1/dns_records/rec-1");
    let body: serde_json::Value = serde_json::from_slice(&seen[1].body).expect("JSON body");
    assert_eq!(body["content"], "198.51.100.20");
    assert_eq!(body["ttl"], 60);
    for s in &seen {
        assert_eq!(
            s.authorization.as_deref(),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
}

#[tokio::test]
async fn a_dry_run_reads_the_record_and_changes_nothing() {
    let cf = Cloudflare::start(TOKEN, vec![record("203.0.113.10")]).await;
    let result = watchkeeper::failover::cloudflare::switch(
        &client(),
        &switch(&cf),
        &run(StepKind::DnsSwitch, true),
    )
    .await;
    assert!(
        result.as_ref().is_ok_and(|m| m.starts_with("dry run")),
        "{result:?}"
    );
    assert_eq!(cf.patches(), 0);
    assert_eq!(cf.seen().len(), 1);
}

#[tokio::test]
async fn a_missing_record_or_a_refused_token_fails_at_once_without_leaking_the_token() {
    let cf = Cloudflare::start(TOKEN, vec![record("203.0.113.10")]).await;
    let mut sw = switch(&cf);
    sw.record_name = "api.example.com".into();
    let missing =
        watchkeeper::failover::cloudflare::switch(&client(), &sw, &run(StepKind::DnsSwitch, true))
            .await
            .expect_err("no such record");
    assert!(!missing.retryable);
    assert!(
        missing
            .message
            .contains("no A record named api.example.com"),
        "{}",
        missing.message
    );
    let mut sw = switch(&cf);
    sw.token = "wrong-token-value".into();
    let refused =
        watchkeeper::failover::cloudflare::switch(&client(), &sw, &run(StepKind::DnsSwitch, false))
            .await
            .expect_err("bad token");
    assert!(!refused.retryable);
    assert!(
        refused.message.contains("token was refused"),
        "{}",
        refused.message
    );
    assert!(!refused.message.contains("wrong-token-value"));
    assert_eq!(cf.patches(), 0);
}

#[tokio::test]
async fn a_server_error_on_update_is_retryable() {
    let cf = Cloudflare::start(TOKEN, vec![record("203.0.113.10")]).await;
    cf.fail_next_patches(1);
    let failure = watchkeeper::failover::cloudflare::switch(
        &client(),
        &switch(&cf),
        &run(StepKind::DnsSwitch, false),
    )
    .await
    .expect_err("500");
    assert!(failure.retryable, "{}", failure.message);
    assert!(
        watchkeeper::failover::cloudflare::switch(
            &client(),
            &switch(&cf),
            &run(StepKind::DnsSwitch, false)
        )
        .await
        .is_ok()
    );
    assert_eq!(cf.patches(), 1);
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

#[tokio::test]
async fn the_http_step_sends_its_key_and_checks_the_status() {
    let provider = Provider::default();
    let base = provider.start().await;
    let call = HttpCall {
        url: format!("{base}/deploy"),
        method: watchkeeper::api::common::HttpMethod::Post,
        headers: vec![("Authorization".into(), "Bearer host-token".into(), true)],
        body: Some("{\"region\":\"us-west-1\"}".into()),
        expected_status: vec!["201".into()],
    };
    assert!(
        !format!("{call:?}").contains("host-token"),
        "Debug redacts secret headers"
    );
    let http = client();
    let r = run(StepKind::Http, false);
    assert!(
        watchkeeper::failover::http::call(&http, &call, &r)
            .await
            .is_ok()
    );
    {
        let state = provider.inner.lock().expect("state");
        let (_, key, headers) = &state.requests[0];
        assert_eq!(key.as_deref(), Some("prod/regional/failover-1-x/1/1"));
        assert_eq!(
            headers.get("authorization").and_then(|v| v.to_str().ok()),
            Some("Bearer host-token")
        );
    }
    provider.set_status("/deploy", 503);
    let failure = watchkeeper::failover::http::call(&http, &call, &r)
        .await
        .expect_err("503");
    assert!(
        failure.retryable && failure.message.contains("503"),
        "{failure:?}"
    );
    provider.set_status("/deploy", 404);
    assert!(
        !watchkeeper::failover::http::call(&http, &call, &r)
            .await
            .expect_err("404")
            .retryable
    );
    // 200 is a success the API did not promise: refused, since 201 was expected.
    provider.set_status("/deploy", 200);
    assert!(
        watchkeeper::failover::http::call(&http, &call, &r)
            .await
            .is_err()
    );
    let dry = watchkeeper::failover::http::call(&http, &call, &run(StepKind::Http, true)).await;
    assert!(dry.is_ok_and(|m| m.starts_with("dry run")));
    assert_eq!(provider.requests("/deploy"), 4, "the dry run sent nothing");
}

// ---- SQL against a real PostgreSQL server ---------------------------------------------------

fn sql(pg: &postgres::Postgres, statements: &[&str], expect: Option<&str>) -> SqlCall {
    SqlCall {
        target: SqlTarget::Parts {
            host: "127.0.0.1".into(),
            port: pg.port(),
            database: "app".into(),
            user: pg.superuser().into(),
            password: Some(postgres::SUPERUSER_PASSWORD.into()),
        },
        ssl_mode: SslMode::Prefer,
        statements: statements.iter().map(|s| s.to_string()).collect(),
        expect: expect.map(str::to_string),
        statement_timeout: Some(std::time::Duration::from_secs(5)),
    }
}

#[tokio::test]
async fn sql_steps_run_statements_check_the_result_and_do_not_promote_a_primary_twice() {
    let pg = postgres::Postgres::start().await;
    pg.create_database("app").await;
    let step = run(StepKind::Sql, false);
    let marks = [
        "CREATE TABLE IF NOT EXISTS marks (k text PRIMARY KEY)",
        "INSERT INTO marks VALUES ('a') ON CONFLICT DO NOTHING",
        "SELECT count(*) FROM marks",
    ];
    let ok = sql_step::execute(&sql(&pg, &marks, Some("1")), &step).await;
    assert!(
        ok.as_ref().is_ok_and(|m| m.contains("as expected")),
        "{ok:?}"
    );
    // The wrong expected value fails for good, saying what came back.
    let wrong = sql_step::execute(&sql(&pg, &marks, Some("2")), &step)
        .await
        .expect_err("mismatch");
    assert!(
        !wrong.retryable
            && wrong.message.contains("expected \"2\"")
            && wrong.message.contains("\"1\""),
        "{wrong:?}"
    );
    // An SQL error is permanent and carries the server's SQLSTATE.
    let broken = sql_step::execute(&sql(&pg, &["SELEC 1"], None), &step)
        .await
        .expect_err("syntax");
    assert!(
        !broken.retryable && broken.message.contains("42601"),
        "{broken:?}"
    );
    // The try's key is the session's application_name.
    let name = sql_step::execute(
        &sql(
            &pg,
            &["SELECT current_setting('application_name')"],
            Some("watchkeeper:prod/regional/failover-1-x/1/1"),
        ),
        &step,
    )
    .await;
    assert!(name.is_ok(), "{name:?}");
    // A dry run connects and runs nothing.
    let dry = sql_step::execute(
        &sql(&pg, &["INSERT INTO marks VALUES ('b')"], None),
        &run(StepKind::Sql, true),
    )
    .await;
    assert!(
        dry.as_ref().is_ok_and(|m| m.starts_with("dry run")),
        "{dry:?}"
    );
    assert_eq!(pg.psql("app", "SELECT count(*) FROM marks").await, "1");
    // Promotion checks before it acts: this server is a primary already.
    let promote = sql_step::execute(&sql(&pg, &["SELECT pg_promote()"], Some("t")), &step).await;
    assert!(
        promote
            .as_ref()
            .is_ok_and(|m| m.contains("already a primary")),
        "{promote:?}"
    );
    // A wrong password is reported without any password in the message.
    let mut bad = sql(&pg, &marks, None);
    if let SqlTarget::Parts { password, .. } = &mut bad.target {
        *password = Some("not-the-password-91".into());
    }
    let refused = sql_step::execute(&bad, &step).await.expect_err("auth");
    assert!(
        !refused.message.contains("not-the-password-91")
            && !refused.message.contains(postgres::SUPERUSER_PASSWORD),
        "{refused:?}"
    );
    assert!(
        refused.message.contains("28P01") && !refused.retryable,
        "{refused:?}"
    );
    // TLS is refused clearly rather than silently downgraded.
    let mut tls = sql(&pg, &marks, None);
    tls.ssl_mode = SslMode::Require;
    let tls = sql_step::execute(&tls, &step).await.expect_err("tls");
    assert!(!tls.retryable && tls.message.contains("TLS"), "{tls:?}");
}

/// A hot standby of `primary`, made with `pg_basebackup -R` and run like the harness runs its
/// servers (as the `postgres` user when root). Stopped and removed on drop.
struct Standby {
    dir: std::path::PathBuf,
    port: u16,
    child: Option<std::process::Child>,
}

fn server_command(program: std::path::PathBuf, root: bool) -> std::process::Command {
    if root {
        let mut cmd = std::process::Command::new("setpriv");
        cmd.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ])
        .arg(program);
        cmd
    } else {
        std::process::Command::new(program)
    }
}

impl Standby {
    fn start(primary: &postgres::Postgres) -> Self {
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        let dir = postgres::unique_temp_dir("pg-standby");
        std::fs::create_dir_all(&dir).expect("standby dir");
        if root {
            let chown = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status();
            assert!(chown.is_ok_and(|s| s.success()), "chown standby dir");
        }
        let data = dir.join("data");
        let out = server_command(primary.bin("pg_basebackup"), root)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &primary.port().to_string(),
                "-U",
                "postgres",
                "-R",
                "-X",
                "stream",
                "--checkpoint=fast",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .env("PGPASSWORD", postgres::SUPERUSER_PASSWORD)
            .output()
            .expect("run pg_basebackup");
        assert!(
            out.status.success(),
            "pg_basebackup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = postgres::free_port();
        let log = std::fs::File::create(dir.join("server.log")).expect("log");
        let child = server_command(primary.bin("postgres"), root)
            .arg("-D")
            .arg(&data)
            .args([
                "-p",
                &port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
            ])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.display()))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn standby");
        let standby = Self {
            dir,
            port,
            child: Some(child),
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let ready = std::process::Command::new(primary.bin("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return standby;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "standby did not start: {}",
                std::fs::read_to_string(standby.dir.join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = std::process::Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn a_promotion_step_promotes_a_real_standby_once_even_when_the_process_dies_after_it() {
    let primary = postgres::Postgres::start().await;
    primary.create_database("app").await;
    let standby = Standby::start(&primary);
    let mut call = sql(&primary, &["SELECT pg_promote()"], Some("t"));
    call.target = SqlTarget::Parts {
        host: "127.0.0.1".into(),
        port: standby.port,
        database: "app".into(),
        user: "postgres".into(),
        password: Some(postgres::SUPERUSER_PASSWORD.into()),
    };
    let in_recovery = sql_step::execute(
        &sql_on(&call, &["SELECT pg_is_in_recovery()"], "t"),
        &run(StepKind::Sql, false),
    )
    .await;
    assert!(
        in_recovery.is_ok(),
        "the standby starts in recovery: {in_recovery:?}"
    );
    // Dry run: connects, sees a standby, promotes nothing.
    let dry = sql_step::execute(&call, &run(StepKind::Sql, true)).await;
    assert!(
        dry.as_ref().is_ok_and(|m| m.contains("in recovery")),
        "{dry:?}"
    );
    // The try promotes; the same try again (a crash before its outcome was saved) finds a
    // primary and runs nothing.
    let first = sql_step::execute(&call, &run(StepKind::Sql, false)).await;
    assert!(
        first.as_ref().is_ok_and(|m| m.contains("as expected")),
        "{first:?}"
    );
    let again = sql_step::execute(&call, &run(StepKind::Sql, false)).await;
    assert!(
        again
            .as_ref()
            .is_ok_and(|m| m.contains("already a primary")),
        "{again:?}"
    );
    let promoted = sql_step::execute(
        &sql_on(&call, &["SELECT pg_is_in_recovery()"], "f"),
        &run(StepKind::Sql, false),
    )
    .await;
    assert!(promoted.is_ok(), "{promoted:?}");

    // Through the driver: the process dies right after the promotion ran, before its outcome
    // was saved; the next process repeats the try, which finds a primary and runs nothing.
    let standby = Standby::start(&primary);
    let yaml = format!(
        r#"
primary: {{name: db-east, healthMonitorRef: {{name: db-east}}}}
secondary: {{name: db-west, healthMonitorRef: {{name: db-west}}}}
steps:
- name: promote-west
  sql:
    connection: {{host: 127.0.0.1, port: {}, database: app, user: postgres, passwordSecretRef: {{name: pg, key: password}}}}
    statements: ["SELECT pg_promote()"]
    expect: "t"
"#,
        standby.port
    );
    let spec: FailoverPlanSpec = serde_yaml::from_str(&yaml).expect("spec");
    let plan = PlanPolicy::from_spec("prod/db", &spec).expect("policy");
    let password =
        |r: &SecretKeyRef| (r.name == "pg").then(|| postgres::SUPERUSER_PASSWORD.to_string());
    let resolved = ResolvedPlan::resolve(&spec, &password).expect("resolves");
    let store = Store::default();
    let dying = Crashing {
        inner: StepExecutor::new(resolved.clone(), client(), NoCluster),
        executions: AtomicUsize::new(0),
        crash: Mutex::new(Some(Crash::AfterEffect(1))),
        crashed: Arc::new(Notify::new()),
    };
    let crashed = dying.crashed.clone();
    tokio::select! {
        r = drive(&plan, &dying, &store, triggered, clock) => panic!("should have crashed: {r:?}"),
        () = crashed.notified() => {}
    }
    let in_flight = store
        .record
        .lock()
        .expect("store")
        .clone()
        .expect("saved before the try");
    let step = &in_flight.current_attempt.as_ref().expect("attempt").steps[0];
    assert_eq!((step.phase, step.attempts), (StepPhase::Running, 1));
    let executor = StepExecutor::new(resolved, client(), NoCluster);
    let settled = drive(&plan, &executor, &store, triggered, clock)
        .await
        .expect("resumes");
    assert_eq!(settled.record.phase, Phase::FailedOver);
    let step = &settled
        .record
        .current_attempt
        .as_ref()
        .expect("attempt")
        .steps[0];
    assert_eq!((step.phase, step.attempts), (StepPhase::Succeeded, 1));
    assert!(
        step.message
            .as_deref()
            .is_some_and(|m| m.contains("already a primary")),
        "{step:?}"
    );
}

fn sql_on(call: &SqlCall, statements: &[&str], expect: &str) -> SqlCall {
    SqlCall {
        statements: statements.iter().map(|s| s.to_string()).collect(),
        expect: Some(expect.to_string()),
        ..call.clone()
    }
}

// ---- the state machine under a crash loop -------------------------------------------------

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

/// The cluster side of the test plan: `verify` succeeds, counted per step key (check before
/// act, as the controller's executors do).
#[derive(Clone, Default)]
struct FakeCluster {
    effects: Arc<Mutex<HashSet<String>>>,
}

impl ClusterExecutor for FakeCluster {
    async fn execute(&self, run: &StepRun, step: &Step) -> Result<String, StepFailure> {
        assert!(
            step.verify.is_some(),
            "only verify goes to the cluster in this plan"
        );
        let key = format!(
            "{}/{}/{}",
            run.key.plan_id, run.key.attempt_id, run.key.step_index
        );
        self.effects.lock().expect("effects").insert(key);
        Ok("app-west Healthy 3 probes in a row".into())
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

struct World {
    cf: Cloudflare,
    provider: Provider,
    cluster: FakeCluster,
    plan: PlanPolicy,
    resolved: ResolvedPlan,
}

fn spec(provider: &str, cf: &str) -> FailoverPlanSpec {
    let yaml = format!(
        r#"
primary: {{name: us-east-2, healthMonitorRef: {{name: app-ohio}}}}
secondary: {{name: us-west-1, healthMonitorRef: {{name: app-west}}}}
trigger: {{mode: Manual}}
steps:
- name: fence-primary
  fence:
    webhook: {{url: "{provider}/fence"}}
- name: switch-dns
  retries: 2
  backoff: 0s
  dnsSwitch:
    cloudflare:
      zoneId: zone-1
      recordName: app.example.com
      recordType: A
      content: 198.51.100.20
      apiTokenSecretRef: {{name: cloudflare, key: token}}
      apiUrl: "{cf}"
- name: deploy-west
  http:
    url: "{provider}/deploy"
    expectedStatus: ["201"]
    headers:
    - name: Authorization
      valueFrom: {{secretKeyRef: {{name: host, key: token}}}}
- name: verify-west
  verify: {{consecutiveHealthy: 3}}
"#
    );
    serde_yaml::from_str(&yaml).expect("spec parses")
}

fn secrets(r: &SecretKeyRef) -> Option<String> {
    match (r.name.as_str(), r.key.as_str()) {
        ("cloudflare", "token") => Some(TOKEN.to_string()),
        ("host", "token") => Some("Bearer host-token".to_string()),
        _ => None,
    }
}

async fn world() -> World {
    let cf = Cloudflare::start(TOKEN, vec![record("203.0.113.10")]).await;
    let provider = Provider::default();
    let base = provider.start().await;
    let spec = spec(&base, &cf.api_url);
    let plan = PlanPolicy::from_spec("prod/regional", &spec).expect("policy");
    let resolved = ResolvedPlan::resolve(&spec, &secrets).expect("secrets resolve");
    World {
        cf,
        provider,
        cluster: FakeCluster::default(),
        plan,
        resolved,
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

/// Drives the plan to the end, restarting after every crash with nothing but the store.
/// Returns the final record and how many crashes happened.
async fn run_with(world: &World, crash: Option<Crash>) -> (FailoverRecord, usize) {
    let store = Store::default();
    *store.crash.lock().expect("crash") =
        crash.filter(|c| matches!(c, Crash::BeforeSave(_) | Crash::AfterSave(_)));
    let step_crash = crash.filter(|c| matches!(c, Crash::BeforeEffect(_) | Crash::AfterEffect(_)));
    let executions = Arc::new(AtomicUsize::new(0));
    let mut crashes = 0;
    for _ in 0..10 {
        // A fresh process: a new executor; only the store survives.
        let executor = Crashing {
            inner: StepExecutor::new(world.resolved.clone(), client(), world.cluster.clone()),
            executions: AtomicUsize::new(executions.load(Ordering::SeqCst)),
            crash: Mutex::new(if crashes == 0 { step_crash } else { None }),
            crashed: Arc::new(Notify::new()),
        };
        let crashed = executor.crashed.clone();
        let result = tokio::select! {
            r = drive(&world.plan, &executor, &store, triggered, clock) => Some(r),
            () = crashed.notified() => None,
        };
        executions.store(executor.executions.load(Ordering::SeqCst), Ordering::SeqCst);
        match result {
            Some(Ok(settled)) => {
                assert_eq!(settled.action, Action::Idle { wake_at: None });
                return (settled.record, crashes);
            }
            Some(Err(FailoverError::Store(_))) | None => crashes += 1,
            Some(Err(other)) => panic!("unexpected error: {other}"),
        }
    }
    panic!("the plan did not finish after 10 restarts");
}

fn assert_effects_once(world: &World) {
    assert_eq!(world.provider.effects("/fence"), 1, "fence webhook");
    assert_eq!(world.provider.effects("/deploy"), 1, "deploy call");
    assert_eq!(world.cf.patches(), 1, "DNS record updates");
    assert_eq!(
        world.cluster.effects.lock().expect("effects").len(),
        1,
        "verify"
    );
    assert!(world.cf.malformed().is_empty());
    let record = world.cf.record("rec-1").expect("record");
    assert_eq!(record.content, "198.51.100.20");
}

/// The record without step messages: they name the local servers' ports, and a step resumed
/// after its effect says "nothing changed" where an uninterrupted one says what it changed.
fn without_messages(record: &FailoverRecord) -> FailoverRecord {
    let mut record = record.clone();
    for step in record
        .current_attempt
        .iter_mut()
        .flat_map(|a| a.steps.iter_mut())
    {
        step.message = None;
    }
    record
}

#[tokio::test]
async fn a_clean_run_fails_over_and_records_every_step() {
    let world = world().await;
    let (record, crashes) = run_with(&world, None).await;
    assert_eq!(crashes, 0);
    assert_eq!(record.phase, Phase::FailedOver);
    assert_eq!(record.active_region.as_deref(), Some("us-west-1"));
    let attempt = record.current_attempt.as_ref().expect("attempt");
    assert!(
        attempt
            .steps
            .iter()
            .all(|s| s.phase == StepPhase::Succeeded && s.attempts == 1),
        "{attempt:?}"
    );
    assert_effects_once(&world);
}

#[tokio::test]
async fn a_crash_at_every_save_and_inside_every_step_ends_the_same_with_effects_once() {
    let reference = world().await;
    let (expected, _) = run_with(&reference, None).await;
    let saves = {
        // Count the saves of a clean run.
        let fresh = world().await;
        let store = Store::default();
        let executor = StepExecutor::new(fresh.resolved.clone(), client(), fresh.cluster.clone());
        drive(&fresh.plan, &executor, &store, triggered, clock)
            .await
            .expect("clean run");
        store.saves.load(Ordering::SeqCst)
    };
    let steps = expected
        .current_attempt
        .as_ref()
        .map_or(0, |a| a.steps.len());
    let mut positions = Vec::new();
    for n in 1..=saves {
        positions.push(Crash::BeforeSave(n));
        positions.push(Crash::AfterSave(n));
    }
    for n in 1..=steps {
        positions.push(Crash::BeforeEffect(n));
        positions.push(Crash::AfterEffect(n));
    }
    assert!(positions.len() >= 2 * (4 + 4), "{positions:?}");
    for crash in positions {
        let world = world().await;
        let (record, crashes) = run_with(&world, Some(crash)).await;
        assert_eq!(crashes, 1, "{crash:?} crashed once");
        assert_eq!(
            without_messages(&record),
            without_messages(&expected),
            "{crash:?}: same final record"
        );
        assert!(
            record
                .current_attempt
                .iter()
                .flat_map(|a| &a.steps)
                .all(|s| s.message.is_some()),
            "{crash:?}: every step has a message"
        );
        assert_effects_once(&world);
    }
}
