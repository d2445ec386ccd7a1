//! Controller scenarios against the in-process API server (tests/support/apiserver): the real
//! kube-rs `Controller`s of `watchkeeper::controller` run unchanged against it.
//!
//! Every wait is a poll for an observable condition with a deadline, never a fixed sleep.

mod controller_support;
mod support;

use std::sync::Arc;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use controller_support::*;
use support::apiserver::{ApiError, ApiServer, Fault, Validator};
use watchkeeper::api::{CronJobSpec, HealthMonitor};
use watchkeeper::controller::metrics::ReconcileResult;
use watchkeeper::controller::{ControllerConfig, Operator};

const NS: &str = "ops";

/// The CRD schema validator of `watchkeeper check`, as the server's admission.
fn schema_validator() -> Validator {
    Arc::new(|crd: &CustomResourceDefinition, object: &Value| {
        watchkeeper::check::schema::validate_against_crd(crd, object)
            .into_iter()
            .map(|error| error.to_string())
            .collect()
    })
}

/// An API server with the watchkeeper CRDs applied, validating custom resources against them
/// (as a real API server does) when `validate` is set.
async fn start_server(validate: bool) -> (ApiServer, Client) {
    let mut builder = ApiServer::builder();
    if validate {
        builder = builder.validator(schema_validator());
    }
    let server = builder.start().await;
    let client = server.client();
    install_crds(&client).await;
    (server, client)
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
    let controller = spawn_controller(&client, "solo", None, None);

    let ready = create_invalid_and_expect_invalid_spec(&client, NS, "cleanup", "solo").await;

    // Nothing changed → nothing written: a metadata-only edit wakes the controller, which
    // reconciles and writes no status (a write would wake it again: a hot loop).
    let api = api_of::<CronJobSpec>(&client, NS);
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

    fix_and_expect_accepted(&client, NS, "cleanup", &ready).await;
    delete_and_expect_gone(&client, NS, "cleanup").await;
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_object_does_not_block_the_others() {
    // No admission validation: as with objects stored before a CRD's schema was tightened,
    // the API server holds an object that does not deserialize into the Rust type.
    let (_server, client) = start_server(false).await;
    let api = api_of::<CronJobSpec>(&client, NS);
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
        &cron_job("semantic", NS, "Nowhere/Town"),
    )
    .await
    .expect("create");

    // The controller starts with the malformed object already in its initial list.
    let controller = spawn_controller(&client, "solo", None, None);
    api.create(&PostParams::default(), &cron_job("healthy", NS, "UTC"))
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
    let monitors = api_of::<HealthMonitor>(&client, NS);
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
    let controller = spawn_controller(&client, "solo", None, None);
    let api = api_of::<CronJobSpec>(&client, NS);

    // The first three status writes fail: the reconcile is retried with backoff.
    server.inject_fault(Fault {
        remaining: 3,
        verb: Some("patch".into()),
        resource: Some("cronjobspecs".into()),
        subresource: Some("status".into()),
        error: ApiError::internal("injected fault"),
    });
    api.create(&PostParams::default(), &cron_job("flaky", NS, "UTC"))
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
    api.create(&PostParams::default(), &cron_job("after-expiry", NS, "UTC"))
        .await
        .expect("create");
    wait_ready(&api, "after-expiry", "True").await;

    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_lease_holder_reconciles_and_a_standby_takes_over() {
    let (server, client) = start_server(true).await;
    let writes = || status_writes(&server, "cronjobspecs", "shared");
    leader_failover(&client, NS, Some(&writes)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_leader_is_replaced_once_its_lease_expires() {
    let (_server, client) = start_server(true).await;
    let first = spawn_controller(&client, "replica-a", None, Some(NS));
    eventually("replica-a to lead", || async {
        (lease_holder(&client, NS).await.as_deref() == Some("replica-a")).then_some(())
    })
    .await;
    let second = spawn_controller(&client, "replica-b", None, Some(NS));

    // A crash: the task vanishes without releasing the Lease.
    first.task.abort();
    let crashed_at = std::time::Instant::now();
    eventually("replica-b to take the expired Lease", || async {
        (lease_holder(&client, NS).await.as_deref() == Some("replica-b")
            && second.health.is_leader())
        .then_some(())
    })
    .await;
    // Not before the Lease could have expired on replica-b's own clock.
    assert!(
        crashed_at.elapsed() >= lease("x", NS).lease_duration,
        "took over after {:?}",
        crashed_at.elapsed()
    );
    let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(client.clone(), NS);
    let spec = leases
        .get(LEASE)
        .await
        .expect("lease")
        .spec
        .expect("lease spec");
    assert_eq!(spec.lease_transitions, Some(1));

    let api = api_of::<CronJobSpec>(&client, NS);
    api.create(&PostParams::default(), &cron_job("after-crash", NS, "UTC"))
        .await
        .expect("create");
    wait_ready(&api, "after-crash", "True").await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_cannot_renew_stops_reconciling() {
    let (server, client) = start_server(true).await;
    let leader = spawn_controller(&client, "replica-a", None, Some(NS));
    eventually("replica-a to lead and sync", || async {
        (leader.health.is_leader() && leader.health.is_ready()).then_some(())
    })
    .await;

    // Every Lease update fails from now on: the renew deadline passes and the leader steps
    // down, before anyone else could consider the Lease expired.
    server.inject_fault(
        Fault::new(usize::MAX, ApiError::internal("injected fault"))
            .verb("update")
            .resource("leases"),
    );
    eventually("the leader to step down", || async {
        (!leader.health.is_leader()).then_some(())
    })
    .await;
    assert!(
        leader
            .metrics
            .encode()
            .expect("metrics")
            .contains("watchkeeper_leader 0")
    );
    // Stepping down stops the controllers: their watches close, so nothing can wake a
    // reconcile any more, and no status write can follow.
    eventually("the controllers' watches to close", || async {
        (server.open_watches() == 0).then_some(())
    })
    .await;
    let reconciles = leader.metrics.total_reconciles();
    let writes = server
        .requests()
        .iter()
        .filter(|r| r.subresource == "status")
        .count();
    let api = api_of::<CronJobSpec>(&client, NS);
    api.create(&PostParams::default(), &cron_job("orphan", NS, "UTC"))
        .await
        .expect("create");
    assert_eq!(server.open_watches(), 0);
    assert_eq!(leader.metrics.total_reconciles(), reconciles);
    assert_eq!(
        server
            .requests()
            .iter()
            .filter(|r| r.subresource == "status")
            .count(),
        writes
    );
    leader.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_examples_are_accepted() {
    let (_server, client) = start_server(true).await;
    let controller = spawn_controller(&client, "solo", None, None);
    let sets = example_sets("examples");
    let kinds: std::collections::BTreeSet<String> = sets
        .iter()
        .flat_map(|(_, objects)| objects.iter())
        .filter_map(|o| o.types.as_ref().map(|t| t.kind.clone()))
        .collect();
    assert_eq!(kinds.len(), 5, "every kind has an example: {kinds:?}");
    examples_are_accepted(&client, &sets).await;
    controller.stop().await;
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
    let (server, client) = start_server(true).await;
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

    let api = api_of::<CronJobSpec>(&client, NS);
    api.create(
        &PostParams::default(),
        &cron_job("measured", NS, "Asia/Tokyo"),
    )
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

    // `--namespace`: every list and watch of a watchkeeper kind stayed in that namespace.
    let scoped: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.group == "watchkeeper.dev" && (r.verb == "list" || r.verb == "watch"))
        .collect();
    assert!(scoped.len() >= 5, "one list per kind at least: {scoped:?}");
    assert!(
        scoped.iter().all(|r| r.namespace.as_deref() == Some(NS)),
        "{scoped:?}"
    );

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
        (lease_holder(&client, NS).await.as_deref() == Some("binary")).then_some(())
    })
    .await;
    let api = api_of::<CronJobSpec>(&client, NS);
    api.create(&PostParams::default(), &cron_job("from-binary", NS, "UTC"))
        .await
        .expect("create");
    wait_ready(&api, "from-binary", "True").await;

    let pid = child.id().expect("child pid").to_string();
    // The shell's built-in `kill`: no procps needed on minimal CI images.
    let killed = std::process::Command::new("sh")
        .args(["-c", &format!("kill -TERM {pid}")])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let status = tokio::time::timeout(TIMEOUT, child.wait())
        .await
        .expect("the controller exits after SIGTERM")
        .expect("wait for the controller");
    assert!(status.success(), "exit status {status}");
    assert_eq!(lease_holder(&client, NS).await, None, "Lease released");

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

/// `status.health` and whether `status.lastProbe` is set.
fn monitor_health(object: &DynamicObject) -> (Option<String>, bool) {
    let status = object.data.get("status");
    let health = status
        .and_then(|s| s.get("health"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let probed = status.and_then(|s| s.get("lastProbe")).is_some();
    (health, probed)
}

async fn wait_health(api: &kube::Api<DynamicObject>, name: &str, want: &str) -> DynamicObject {
    eventually(&format!("HealthMonitor {name} to be {want}"), || async {
        let object = api.get_opt(name).await.ok()??;
        let (health, probed) = monitor_health(&object);
        (health.as_deref() == Some(want) && probed).then_some(object)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_health_monitor_is_probed_and_its_health_written_to_status() {
    let (_server, client) = start_server(true).await;
    let target = Target::start().await;
    let controller = spawn_controller(&client, "solo", None, None);
    let monitors = api_of::<HealthMonitor>(&client, NS);
    let monitor: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "watchkeeper.dev/v1alpha1",
        "kind": "HealthMonitor",
        "metadata": {"name": "app", "namespace": NS},
        "spec": {
            "target": {"url": format!("http://{}/api/health", target.addr)},
            "interval": "1s",
            "timeout": "500ms",
            "failureThreshold": 2,
            "successThreshold": 1
        }
    }))
    .expect("test object");
    monitors
        .create(&PostParams::default(), &monitor)
        .await
        .expect("create");

    let healthy = wait_health(&monitors, "app", "Healthy").await;
    let status = &healthy.data["status"];
    assert_eq!(
        status["target"],
        json!(format!("http://{}/api/health", target.addr))
    );
    assert_eq!(status["lastProbe"]["up"], json!(true));
    assert_eq!(status["lastProbe"]["statusCode"], json!(200));
    let probing = status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Probing"))
        .expect("a Probing condition");
    assert_eq!(probing["status"], "True");
    assert_eq!(probing["reason"], "Monitoring");
    assert_eq!(ready_of(&healthy).expect("Ready").status, "True");

    target.set_code(503);
    let down = wait_health(&monitors, "app", "Down").await;
    assert_eq!(down.data["status"]["lastProbe"]["statusCode"], json!(503));
    assert!(down.data["status"]["consecutiveFailures"].as_u64() >= Some(2));
    assert_eq!(
        ready_of(&down).expect("Ready kept by the flush").status,
        "True"
    );

    target.set_code(200);
    wait_health(&monitors, "app", "Healthy").await;

    let metrics = controller.metrics.encode().expect("metrics encode");
    assert!(
        metrics.contains(
            "watchkeeper_probe_duration_seconds_count{namespace=\"ops\",monitor=\"app\"}"
        ),
        "{metrics}"
    );

    monitors
        .delete("app", &Default::default())
        .await
        .expect("delete");
    // Probing stops: within the deadline there is a span of three intervals with no request.
    eventually("probes of the deleted monitor to stop", || async {
        let before = target.requests();
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        (target.requests() == before).then_some(())
    })
    .await;
    // Its metric series are gone from /metrics.
    let metrics = controller.metrics.encode().expect("metrics encode");
    assert!(
        !metrics.contains("monitor=\"app\""),
        "series of the deleted monitor remain:\n{metrics}"
    );

    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_controller_keeps_a_monitors_health_and_counts() {
    let (_server, client) = start_server(true).await;
    let target = Target::start().await;
    target.set_code(503);
    let first = spawn_controller(&client, "first", None, None);
    let monitors = api_of::<HealthMonitor>(&client, NS);
    let monitor: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "watchkeeper.dev/v1alpha1",
        "kind": "HealthMonitor",
        "metadata": {"name": "restarted", "namespace": NS},
        "spec": {
            "target": {"url": format!("http://{}/api/health", target.addr)},
            "interval": "1s",
            "timeout": "500ms",
            "failureThreshold": 3,
            "successThreshold": 1
        }
    }))
    .expect("test object");
    monitors
        .create(&PostParams::default(), &monitor)
        .await
        .expect("create");
    wait_health(&monitors, "restarted", "Down").await;
    first.stop().await;
    let before = monitors.get("restarted").await.expect("get");
    let failures_before = before.data["status"]["consecutiveFailures"]
        .as_u64()
        .expect("consecutiveFailures");
    assert!(failures_before >= 3);
    assert!(before.data["status"]["healthSince"].is_string());

    let restarted_at = chrono::Utc::now();
    let second = spawn_controller(&client, "second", None, None);
    // The first status the new process writes from its own probes: it must carry on from
    // the stored health and counts, not start again from Unknown and zero.
    let after = eventually(
        "the restarted controller's first probe in status",
        || async {
            let object = monitors.get_opt("restarted").await.ok()??;
            let time = object.data["status"]["lastProbe"]["time"].as_str()?;
            let time: chrono::DateTime<chrono::Utc> = time.parse().ok()?;
            (time > restarted_at).then_some(object)
        },
    )
    .await;
    let status = &after.data["status"];
    assert_eq!(status["health"], "Down", "{status}");
    assert_eq!(
        status["healthSince"], before.data["status"]["healthSince"],
        "no health change, so healthSince is kept: {status}"
    );
    assert!(
        status["consecutiveFailures"].as_u64() > Some(failures_before),
        "counts carried over: {status}, before {failures_before}"
    );
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_credentials_are_read_from_secrets_and_a_missing_one_is_reported() {
    let (_server, client) = start_server(true).await;
    let target = Target::start_with_auth(Some("Bearer s3cret-token")).await;
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(client.clone(), NS);
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "probe-token", "namespace": NS},
        "stringData": {"authorization": "Bearer s3cret-token"}
    }))
    .expect("test secret");
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("create secret");
    let controller = spawn_controller(&client, "solo", None, None);
    let monitors = api_of::<HealthMonitor>(&client, NS);
    let monitor = |name: &str, secret: &str| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "watchkeeper.dev/v1alpha1",
            "kind": "HealthMonitor",
            "metadata": {"name": name, "namespace": NS},
            "spec": {
                "target": {"url": format!("http://{}/api/health", target.addr)},
                "request": {"headers": [{"name": "Authorization",
                    "valueFrom": {"secretKeyRef": {"name": secret, "key": "authorization"}}}]},
                "interval": "1s",
                "timeout": "500ms",
                "failureThreshold": 1,
                "successThreshold": 1
            }
        }))
        .expect("test object")
    };
    monitors
        .create(
            &PostParams::default(),
            &monitor("authorized", "probe-token"),
        )
        .await
        .expect("create");
    monitors
        .create(&PostParams::default(), &monitor("no-secret", "absent"))
        .await
        .expect("create");

    let healthy = wait_health(&monitors, "authorized", "Healthy").await;
    assert_eq!(
        healthy.data["status"]["lastProbe"]["statusCode"],
        json!(200)
    );
    assert!(!healthy.data.to_string().contains("s3cret"));

    let refused = eventually("the missing Secret to be reported", || async {
        let object = monitors.get_opt("no-secret").await.ok()??;
        let conditions = object.data["status"]["conditions"].as_array()?.clone();
        conditions.into_iter().find(|c| c["type"] == "Probing")
    })
    .await;
    assert_eq!(refused["status"], "False");
    assert_eq!(refused["reason"], "CannotProbe");
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(message.contains("absent/authorization"), "{message}");

    // Secrets are not watched: the refused monitor is retried and picks the Secret up.
    let mut late = secret.clone();
    late.metadata.name = Some("absent".into());
    secrets
        .create(&PostParams::default(), &late)
        .await
        .expect("create the missing secret");
    wait_health(&monitors, "no-secret", "Healthy").await;
    controller.stop().await;
}
