//! Controller scenarios against the in-process API server (tests/support/apiserver): the real
//! kube-rs `Controller`s of `watchkeeper::controller` run unchanged against it.
//!
//! Every wait is a poll for an observable condition with a deadline, never a fixed sleep.

mod support;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use support::apiserver::{ApiError, ApiServer, Fault, Validator};
use watchkeeper::api::{CronJobSpec, HealthMonitor};
use watchkeeper::controller::metrics::ReconcileResult;
use watchkeeper::controller::{
    ControllerConfig, Health, LeaseSettings, Metrics, Operator, ReconcileSettings,
};

const NS: &str = "ops";
const TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);
const LEASE: &str = "watchkeeper-controller";

/// Polls `probe` until it yields a value, failing the test after [`TIMEOUT`].
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// The CRD schema validator of `watchkeeper check`, as the server's admission.
fn schema_validator() -> Validator {
    Arc::new(|crd: &CustomResourceDefinition, object: &Value| {
        watchkeeper::check::schema::validate_against_crd(crd, object)
            .into_iter()
            .map(|error| error.to_string())
            .collect()
    })
}

/// An API server with the watchkeeper CRDs applied (by server-side apply, as an installer
/// would), validating custom resources against them when `validate` is set.
async fn start_server(validate: bool) -> (ApiServer, Client) {
    let mut builder = ApiServer::builder();
    if validate {
        builder = builder.validator(schema_validator());
    }
    let server = builder.start().await;
    let client = server.client();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in watchkeeper::api::crds() {
        crds.patch(
            &crd.name_any(),
            &PatchParams::apply("watchkeeper-tests").force(),
            &Patch::Apply(&crd),
        )
        .await
        .expect("the API server accepts the watchkeeper CRDs");
    }
    (server, client)
}

/// A controller running in this process.
struct Running {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    stop: CancellationToken,
    task: JoinHandle<Result<(), watchkeeper::controller::Error>>,
}

impl Running {
    async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(TIMEOUT, self.task)
            .await
            .expect("controller stops within the timeout")
            .expect("controller task does not panic")
            .expect("controller stops without error");
    }
}

fn settings() -> ReconcileSettings {
    ReconcileSettings {
        resync: Duration::from_secs(600),
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(500),
    }
}

fn lease(identity: &str) -> LeaseSettings {
    LeaseSettings {
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(100),
        ..LeaseSettings::new(LEASE, NS, identity)
    }
}

fn spawn_controller(client: &Client, identity: &str, election: bool) -> Running {
    let operator = Operator::new(
        client.clone(),
        ControllerConfig {
            namespace: None,
            identity: identity.to_string(),
            leader_election: election.then(|| lease(identity)),
            settings: settings(),
        },
    );
    let metrics = operator.metrics();
    let health = operator.health();
    let stop = CancellationToken::new();
    let task = tokio::spawn(operator.run(stop.clone()));
    Running {
        metrics,
        health,
        stop,
        task,
    }
}

fn api_of<K: watchkeeper::controller::ManagedKind>(client: &Client) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), NS, &ApiResource::erase::<K>(&()))
}

fn cron_job(name: &str, time_zone: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "watchkeeper.dev/v1alpha1",
        "kind": "CronJobSpec",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "schedule": "0 3 * * *",
            "timeZone": time_zone,
            "httpTrigger": {"url": "https://app.example.com/api/cron/cleanup"}
        }
    }))
    .expect("test object")
}

/// The `Ready` condition of an object read without its type.
#[derive(Debug, Clone, PartialEq)]
struct Ready {
    status: String,
    reason: String,
    message: String,
    observed_generation: Option<i64>,
    last_transition_time: String,
}

fn ready_of(object: &DynamicObject) -> Option<Ready> {
    let condition = object
        .data
        .get("status")?
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))?;
    let text = |key: &str| {
        condition
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Some(Ready {
        status: text("status"),
        reason: text("reason"),
        message: text("message"),
        observed_generation: condition.get("observedGeneration").and_then(Value::as_i64),
        last_transition_time: text("lastTransitionTime"),
    })
}

fn status_observed_generation(object: &DynamicObject) -> Option<i64> {
    object
        .data
        .get("status")?
        .get("observedGeneration")?
        .as_i64()
}

/// Waits until the object's status describes its current generation with `Ready=<status>`.
async fn wait_ready(api: &Api<DynamicObject>, name: &str, status: &str) -> (DynamicObject, Ready) {
    eventually(
        &format!("{name} Ready={status} for its generation"),
        || async {
            let object = api.get_opt(name).await.ok()??;
            let ready = ready_of(&object)?;
            let generation = object.metadata.generation;
            (ready.status == status
                && ready.observed_generation == generation
                && status_observed_generation(&object) == generation)
                .then_some((object, ready))
        },
    )
    .await
}

async fn events_for(client: &Client, name: &str) -> Vec<Event> {
    let events: Api<Event> = Api::namespaced(client.clone(), NS);
    events
        .list(&ListParams::default())
        .await
        .expect("events list")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .collect()
}

/// Status writes (any patch or update of the status subresource) of one object so far.
fn status_writes(server: &ApiServer, plural: &str, name: &str) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| {
            r.resource == plural
                && r.subresource == "status"
                && r.name.as_deref() == Some(name)
                && (r.verb == "patch" || r.verb == "update")
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_spec_is_reported_then_fixed_then_deleted_cleanly() {
    let (server, client) = start_server(true).await;
    let controller = spawn_controller(&client, "solo", false);
    let api = api_of::<CronJobSpec>(&client);

    // An invalid spec the schema cannot catch (an unknown time zone) passes admission...
    api.create(
        &PostParams::default(),
        &cron_job("cleanup", "Mars/Olympus_Mons"),
    )
    .await
    .expect("the schema accepts a string time zone");

    // ... and the controller reports it: Ready=False/InvalidSpec naming the field.
    let (object, ready) = wait_ready(&api, "cleanup", "False").await;
    assert_eq!(ready.reason, "InvalidSpec");
    assert!(
        ready.message.contains("spec.timeZone"),
        "message names the field: {}",
        ready.message
    );
    assert_eq!(object.metadata.generation, Some(1));
    assert_eq!(status_observed_generation(&object), Some(1));

    let warnings = eventually("a Warning Event for the invalid spec", || async {
        let events: Vec<Event> = events_for(&client, "cleanup")
            .await
            .into_iter()
            .filter(|e| e.type_.as_deref() == Some("Warning"))
            .collect();
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(warnings.len(), 1, "one Event per transition: {warnings:?}");
    let warning = &warnings[0];
    assert_eq!(warning.reason.as_deref(), Some("InvalidSpec"));
    assert!(
        warning
            .note
            .as_deref()
            .unwrap_or_default()
            .contains("spec.timeZone")
    );
    assert_eq!(warning.reporting_instance.as_deref(), Some("solo"));

    // Nothing changed → nothing written: a metadata-only edit wakes the controller, which
    // reconciles and writes no status (a write would wake it again: a hot loop).
    let writes_before = status_writes(&server, "cronjobspecs", "cleanup");
    assert_eq!(writes_before, 1);
    let reconciles_before = controller
        .metrics
        .reconcile_count("CronJobSpec", ReconcileResult::InvalidSpec);
    api.patch(
        "cleanup",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"team": "ops"}}})),
    )
    .await
    .expect("label the object");
    eventually("a reconcile after the label change", || async {
        (controller
            .metrics
            .reconcile_count("CronJobSpec", ReconcileResult::InvalidSpec)
            > reconciles_before)
            .then_some(())
    })
    .await;
    assert_eq!(
        status_writes(&server, "cronjobspecs", "cleanup"),
        writes_before
    );
    let unchanged = api.get("cleanup").await.expect("get");
    assert_eq!(ready_of(&unchanged), Some(ready.clone()));

    // Fixing the spec: Ready=True with the new generation, a new transition time, an Event.
    api.patch(
        "cleanup",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"timeZone": "Europe/Berlin"}})),
    )
    .await
    .expect("fix the time zone");
    let (fixed, ready_now) = wait_ready(&api, "cleanup", "True").await;
    assert_eq!(ready_now.reason, "Accepted");
    assert_eq!(fixed.metadata.generation, Some(2));
    assert_eq!(ready_now.observed_generation, Some(2));
    assert!(ready_now.last_transition_time >= ready.last_transition_time);
    eventually("a Normal Event for the accepted spec", || async {
        events_for(&client, "cleanup").await.into_iter().find(|e| {
            e.type_.as_deref() == Some("Normal") && e.reason.as_deref() == Some("Accepted")
        })
    })
    .await;
    let warnings_after = events_for(&client, "cleanup")
        .await
        .into_iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .count();
    assert_eq!(
        warnings_after, 1,
        "no repeated Warning without a transition"
    );

    // The controller never adds a finalizer, so deletion completes at once.
    assert!(fixed.finalizers().is_empty());
    api.delete("cleanup", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("the object to be gone", || async {
        match api.get_opt("cleanup").await {
            Ok(None) => Some(()),
            _ => None,
        }
    })
    .await;

    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_object_does_not_block_the_others() {
    // No admission validation: as with objects stored before a CRD's schema was tightened,
    // the API server holds an object that does not deserialize into the Rust type.
    let (_server, client) = start_server(false).await;
    let api = api_of::<CronJobSpec>(&client);
    let malformed: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "watchkeeper.dev/v1alpha1",
        "kind": "CronJobSpec",
        "metadata": {"name": "broken", "namespace": NS},
        "spec": {"schedule": 5, "httpTrigger": {"url": "https://app.example.com/x"}}
    }))
    .expect("test object");
    api.create(&PostParams::default(), &malformed)
        .await
        .expect("stored without validation");
    api.create(
        &PostParams::default(),
        &cron_job("semantic", "Nowhere/Town"),
    )
    .await
    .expect("create");

    // The controller starts with the malformed object already in its initial list.
    let controller = spawn_controller(&client, "solo", false);
    api.create(&PostParams::default(), &cron_job("healthy", "UTC"))
        .await
        .expect("create");

    let (_, ready) = wait_ready(&api, "healthy", "True").await;
    assert_eq!(ready.reason, "Accepted");
    let (_, broken) = wait_ready(&api, "broken", "False").await;
    assert_eq!(broken.reason, "InvalidSpec");
    assert!(
        broken.message.contains("spec.schedule"),
        "names the field serde rejected: {}",
        broken.message
    );
    let (_, semantic) = wait_ready(&api, "semantic", "False").await;
    assert!(semantic.message.contains("spec.timeZone"));

    // Other kinds are unaffected too.
    let monitors = api_of::<HealthMonitor>(&client);
    let monitor: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "watchkeeper.dev/v1alpha1",
        "kind": "HealthMonitor",
        "metadata": {"name": "broken-too", "namespace": NS},
        "spec": {"interval": ["not", "a", "duration"]}
    }))
    .expect("test object");
    monitors
        .create(&PostParams::default(), &monitor)
        .await
        .expect("stored without validation");
    let (_, ready) = wait_ready(&monitors, "broken-too", "False").await;
    assert_eq!(ready.reason, "InvalidSpec");

    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_and_expired_watches_are_survived() {
    let (server, client) = start_server(true).await;
    let controller = spawn_controller(&client, "solo", false);
    let api = api_of::<CronJobSpec>(&client);

    // The first three status writes fail: the reconcile is retried with backoff.
    server.inject_fault(Fault {
        remaining: 3,
        verb: Some("patch".into()),
        resource: Some("cronjobspecs".into()),
        subresource: Some("status".into()),
        error: ApiError::internal("injected fault"),
    });
    api.create(&PostParams::default(), &cron_job("flaky", "UTC"))
        .await
        .expect("create");
    wait_ready(&api, "flaky", "True").await;
    assert!(
        controller
            .metrics
            .reconcile_count("CronJobSpec", ReconcileResult::Error)
            >= 3
    );
    let text = controller.metrics.encode().expect("metrics encode");
    assert!(
        text.contains(r#"watchkeeper_reconcile_errors_total{kind="CronJobSpec",error="api"} 3"#),
        "{text}"
    );

    // Every watch expires (410 Gone, history compacted): the controllers re-list and go on.
    server.expire_watches();
    api.create(&PostParams::default(), &cron_job("after-expiry", "UTC"))
        .await
        .expect("create");
    wait_ready(&api, "after-expiry", "True").await;

    controller.stop().await;
}

async fn lease_holder(client: &Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), NS);
    leases
        .get_opt(LEASE)
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_lease_holder_reconciles_and_a_standby_takes_over() {
    let (server, client) = start_server(true).await;
    let first = spawn_controller(&client, "replica-a", true);
    eventually("replica-a to lead", || async {
        (lease_holder(&client).await.as_deref() == Some("replica-a") && first.health.is_leader())
            .then_some(())
    })
    .await;
    let second = spawn_controller(&client, "replica-b", true);
    let api = api_of::<CronJobSpec>(&client);
    api.create(&PostParams::default(), &cron_job("shared", "Mars/Base"))
        .await
        .expect("create");
    wait_ready(&api, "shared", "False").await;

    // The standby is ready (so rollouts and PDBs treat it as healthy) but idle.
    assert!(!second.health.is_leader());
    assert!(second.health.is_ready());
    assert_eq!(
        second.metrics.total_reconciles(),
        0,
        "the standby reconciled"
    );
    assert!(first.metrics.total_reconciles() > 0);
    assert_eq!(lease_holder(&client).await.as_deref(), Some("replica-a"));
    let events = events_for(&client, "shared").await;
    assert!(!events.is_empty());
    assert!(
        events
            .iter()
            .all(|e| e.reporting_instance.as_deref() == Some("replica-a")),
        "only the leader publishes: {events:?}"
    );

    // The leader shuts down: it releases the Lease and the standby takes over at once.
    first.stop().await;
    eventually("replica-b to lead", || async {
        (lease_holder(&client).await.as_deref() == Some("replica-b") && second.health.is_leader())
            .then_some(())
    })
    .await;
    let writes_before = status_writes(&server, "cronjobspecs", "shared");
    api.patch(
        "shared",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"timeZone": "America/Los_Angeles"}})),
    )
    .await
    .expect("fix the time zone");
    let (_, ready) = wait_ready(&api, "shared", "True").await;
    assert_eq!(ready.observed_generation, Some(2));
    eventually("the new leader's reconcile metrics", || async {
        (second.metrics.total_reconciles() > 0).then_some(())
    })
    .await;
    assert!(status_writes(&server, "cronjobspecs", "shared") > writes_before);
    let accepted = eventually("the new leader's Event", || async {
        events_for(&client, "shared")
            .await
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("Accepted"))
    })
    .await;
    assert_eq!(accepted.reporting_instance.as_deref(), Some("replica-b"));

    second.stop().await;
    assert_eq!(lease_holder(&client).await, None, "released on shutdown");
}

/// A plain HTTP/1.1 GET on loopback: (status code, body).
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the metrics server");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("read response");
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("HTTP status line");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_health_and_readiness_are_served() {
    let (_server, client) = start_server(true).await;
    let operator = Operator::new(
        client.clone(),
        ControllerConfig {
            namespace: Some(NS.to_string()),
            identity: "solo".into(),
            leader_election: None,
            settings: settings(),
        },
    );
    let stop = CancellationToken::new();
    let (addr, server_task) = operator
        .serve("127.0.0.1:0".parse().expect("address"), stop.clone())
        .await
        .expect("bind the metrics server");

    assert_eq!(http_get(addr, "/healthz").await.0, 200);
    let (code, body) = http_get(addr, "/readyz").await;
    assert_eq!(code, 503, "not ready before the initial lists: {body}");

    let run = tokio::spawn(operator.run(stop.clone()));
    eventually("/readyz to turn 200", || async {
        (http_get(addr, "/readyz").await.0 == 200).then_some(())
    })
    .await;

    let api = api_of::<CronJobSpec>(&client);
    api.create(&PostParams::default(), &cron_job("measured", "Asia/Tokyo"))
        .await
        .expect("create");
    wait_ready(&api, "measured", "True").await;
    // The metric is recorded right after the status write returns: poll for it.
    let text = eventually("the reconcile in /metrics", || async {
        let (code, text) = http_get(addr, "/metrics").await;
        assert_eq!(code, 200);
        text.contains(r#"watchkeeper_reconcile_total{kind="CronJobSpec",result="accepted"}"#)
            .then_some(text)
    })
    .await;
    assert!(text.contains("# TYPE watchkeeper_reconcile_duration_seconds histogram"));
    assert!(text.contains("watchkeeper_leader 1"));

    stop.cancel();
    run.await
        .expect("controller task")
        .expect("controller stops cleanly");
    server_task.await.expect("server task");
}

/// The real binary: `watchkeeper controller` against the in-process server, stopped by
/// SIGTERM. It must exit 0, release its Lease, and have logged JSON lines only.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_stops_on_sigterm_and_releases_its_lease() {
    use std::process::Stdio;

    let (server, client) = start_server(true).await;
    let dir = std::env::temp_dir().join(format!(
        "watchkeeper-controller-test-{}-{}",
        std::process::id(),
        server.resource_version()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {url}\n\
             users:\n- name: test\n  user: {{}}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n    namespace: {NS}\n\
             current-context: test\n",
            url = server.url()
        ),
    )
    .expect("write kubeconfig");

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_watchkeeper"))
        .args(["controller", "--kubeconfig"])
        .arg(&kubeconfig)
        .args([
            "--metrics-addr",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--identity",
            "binary",
            "--lease-duration",
            "3s",
            "--renew-deadline",
            "2s",
            "--retry-period",
            "200ms",
        ])
        .env_remove("POD_NAMESPACE")
        .env_remove("POD_NAME")
        .env_remove("WATCHKEEPER_NAMESPACE")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start watchkeeper controller");

    eventually("the binary to take the Lease", || async {
        (lease_holder(&client).await.as_deref() == Some("binary")).then_some(())
    })
    .await;
    let api = api_of::<CronJobSpec>(&client);
    api.create(&PostParams::default(), &cron_job("from-binary", "UTC"))
        .await
        .expect("create");
    wait_ready(&api, "from-binary", "True").await;

    let pid = child.id().expect("child pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let status = tokio::time::timeout(TIMEOUT, child.wait())
        .await
        .expect("the controller exits after SIGTERM")
        .expect("wait for the controller");
    assert!(status.success(), "exit status {status}");
    assert_eq!(lease_holder(&client).await, None, "Lease released");

    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut stderr).await.expect("read logs");
    }
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in &lines {
        let parsed: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        assert!(parsed.get("level").is_some(), "{line}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("SIGTERM") && l.contains("shutting down")),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
