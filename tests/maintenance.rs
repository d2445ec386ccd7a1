//! MaintenanceWindows against the in-process API server (tests/support/apiserver): windows
//! open and close on their calendar, ConfigMap keys and workload replicas are restored
//! exactly, Job tasks run once per window across a controller restart, deleting an open
//! window restores its effects, bad input changes nothing.
//!
//! Windows are one-off windows a few seconds from now. Every wait is a poll of observable
//! state with a deadline, never a fixed sleep.

mod controller_support;
mod support;

use std::collections::BTreeMap;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use controller_support::*;
use support::apiserver::ApiServer;
use watchkeeper::api::MaintenanceWindow;
use watchkeeper::controller::{ControllerConfig, Operator};

const NS: &str = "shop";

async fn start_server() -> (ApiServer, Client) {
    let server = ApiServer::builder().start().await;
    let client = server.client();
    install_crds(&client).await;
    (server, client)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A one-off window from `start` to `end` (whole seconds) with `spec` merged in.
fn window(name: &str, start: DateTime<Utc>, end: DateTime<Utc>, extra: Value) -> DynamicObject {
    let mut object = json!({
        "apiVersion": "watchkeeper.dev/v1alpha1",
        "kind": "MaintenanceWindow",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "schedule": {"oneOff": {"start": rfc3339(start), "end": rfc3339(end)}},
        }
    });
    if let (Some(spec), Value::Object(extra)) = (object["spec"].as_object_mut(), extra) {
        spec.extend(extra);
    }
    serde_json::from_value(object).expect("test object")
}

/// Now, rounded up to the next whole second plus `seconds`.
fn in_seconds(seconds: i64) -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0) + TimeDelta::seconds(seconds + 1)
}

async fn create_config_map(client: &Client, name: &str, data: &[(&str, &str)]) {
    let data: BTreeMap<String, String> = data
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Api::<ConfigMap>::namespaced(client.clone(), NS)
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: kube::api::ObjectMeta {
                    name: Some(name.into()),
                    ..Default::default()
                },
                data: Some(data),
                ..Default::default()
            },
        )
        .await
        .expect("create ConfigMap");
}

async fn config_data(client: &Client, name: &str) -> BTreeMap<String, String> {
    Api::<ConfigMap>::namespaced(client.clone(), NS)
        .get(name)
        .await
        .expect("get ConfigMap")
        .data
        .unwrap_or_default()
}

async fn create_deployment(client: &Client, name: &str, replicas: i32) {
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "busybox"}]}
            }
        }
    }))
    .expect("deployment");
    Api::<Deployment>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create Deployment");
}

async fn replicas(client: &Client, name: &str) -> Option<i32> {
    Api::<Deployment>::namespaced(client.clone(), NS)
        .get(name)
        .await
        .expect("get Deployment")
        .spec
        .replicas
}

fn status(object: &DynamicObject) -> Value {
    object.data.get("status").cloned().unwrap_or(Value::Null)
}

/// Polls the window's status until `test` accepts it.
async fn wait_status(
    client: &Client,
    name: &str,
    what: &str,
    test: impl Fn(&Value) -> bool,
) -> Value {
    let api = api_of::<MaintenanceWindow>(client, NS);
    eventually(&format!("{name}: {what}"), || async {
        let object = api.get_opt(name).await.ok()??;
        let status = status(&object);
        test(&status).then_some(status)
    })
    .await
}

fn condition<'a>(status: &'a Value, type_: &str) -> Option<&'a Value> {
    status
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

fn read_only_effects() -> Value {
    json!({
        "effects": {
            "configMapSet": [
                {"configMapKeyRef": {"name": "app-config", "key": "MODE"}, "value": "maintenance"},
                {"configMapKeyRef": {"name": "app-config", "key": "READ_ONLY"}, "value": "true"}
            ],
            "scale": [{"workloadRef": {"kind": "Deployment", "name": "worker"}, "replicas": 0}]
        }
    })
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_opens_applies_effects_and_restores_them_exactly_at_close() {
    let (_server, client) = start_server().await;
    create_config_map(&client, "app-config", &[("MODE", "normal"), ("OTHER", "x")]).await;
    create_deployment(&client, "worker", 3).await;
    let operator = Operator::new(
        client.clone(),
        ControllerConfig {
            namespace: Some(NS.into()),
            identity: "solo".into(),
            leader_election: None,
            settings: settings(),
        },
    );
    let stop = CancellationToken::new();
    let (addr, _http) = operator
        .serve("127.0.0.1:0".parse().expect("address"), stop.clone())
        .await
        .expect("serve");
    let metrics = operator.metrics();
    let run = tokio::spawn(operator.run(stop.clone()));

    let start = in_seconds(5);
    let end = start + TimeDelta::seconds(4);
    let mut spec = read_only_effects();
    spec["description"] = json!("Read-only mode; VACUUM");
    api_of::<MaintenanceWindow>(&client, NS)
        .create(&PostParams::default(), &window("ro", start, end, spec))
        .await
        .expect("create window");

    // Before it opens: closed, next window listed, nothing changed.
    let before = wait_status(&client, "ro", "closed with the window listed next", |s| {
        s["open"] == false && s["nextWindows"][0]["start"] == rfc3339(start)
    })
    .await;
    assert_eq!(condition(&before, "Open").unwrap()["status"], "False");
    let next_start = format!(
        r#"watchkeeper_maintenance_next_start_timestamp_seconds{{namespace="shop",name="ro"}} {}"#,
        start.timestamp()
    );
    eventually("the next-start metric", || async {
        metrics.encode().ok()?.contains(&next_start).then_some(())
    })
    .await;
    assert_eq!(config_data(&client, "app-config").await["MODE"], "normal");
    let feed = http_get(addr, "/maintenance.json?namespace=shop").await;
    assert!(
        feed.contains(&format!("\"start\":\"{}\"", rfc3339(start))),
        "{feed}"
    );
    let ics = http_get(addr, "/maintenance.ics").await;
    assert!(ics.contains("text/calendar"), "{ics}");
    assert!(
        ics.contains(&format!("DTSTART:{}", start.format("%Y%m%dT%H%M%SZ"))),
        "{ics}"
    );
    assert!(
        http_get(addr, "/maintenance.json?namespace=other")
            .await
            .contains("\"windows\":[]")
    );

    // Open: values set, previous values recorded, finalizer held.
    let open = wait_status(&client, "ro", "open with effects recorded", |s| {
        s["open"] == true && s["appliedEffects"].as_array().is_some_and(|a| a.len() == 3)
    })
    .await;
    assert!(Utc::now() >= start, "opened before its start");
    assert_eq!(open["currentWindow"]["start"], rfc3339(start));
    let effects = open["appliedEffects"].as_array().unwrap();
    let read_only = effects.iter().find(|e| e["key"] == "READ_ONLY").unwrap();
    assert_eq!(read_only["previouslyAbsent"], true);
    let mode = effects.iter().find(|e| e["key"] == "MODE").unwrap();
    assert_eq!(mode["previousValue"], "normal");
    let scale = effects.iter().find(|e| e["kind"] == "Scale").unwrap();
    assert_eq!(scale["previousReplicas"], 3);
    let data = eventually("the ConfigMap switched", || async {
        let data = config_data(&client, "app-config").await;
        (data.get("READ_ONLY").map(String::as_str) == Some("true")).then_some(data)
    })
    .await;
    assert_eq!(data["MODE"], "maintenance");
    eventually("the worker scaled to 0", || async {
        (replicas(&client, "worker").await == Some(0)).then_some(())
    })
    .await;
    let object = api_of::<MaintenanceWindow>(&client, NS)
        .get("ro")
        .await
        .unwrap();
    assert!(
        object
            .finalizers()
            .iter()
            .any(|f| f == "watchkeeper.dev/maintenance-window")
    );
    eventually("watchkeeper_maintenance_open 1", || async {
        let text = metrics.encode().ok()?;
        text.contains(r#"watchkeeper_maintenance_open{namespace="shop",name="ro"} 1"#)
            .then_some(())
    })
    .await;
    eventually("a WindowOpened Event", || async {
        events_for(&client, NS, "ro")
            .await
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("WindowOpened"))
    })
    .await;

    // Closed: everything exactly as before, the absent key absent again.
    let closed = wait_status(&client, "ro", "closed with effects restored", |s| {
        s["open"] == false && s.get("lastWindow").is_some() && s.get("appliedEffects").is_none()
    })
    .await;
    assert!(Utc::now() >= end, "closed before its end");
    assert_eq!(closed["lastWindow"]["closedEarly"], false);
    let data = config_data(&client, "app-config").await;
    assert_eq!(
        data,
        BTreeMap::from([
            ("MODE".to_string(), "normal".to_string()),
            ("OTHER".to_string(), "x".to_string())
        ])
    );
    assert_eq!(replicas(&client, "worker").await, Some(3));
    eventually("the finalizer removed", || async {
        let object = api_of::<MaintenanceWindow>(&client, NS)
            .get("ro")
            .await
            .ok()?;
        object.finalizers().is_empty().then_some(())
    })
    .await;
    eventually("watchkeeper_maintenance_open 0", || async {
        let text = metrics.encode().ok()?;
        text.contains(r#"watchkeeper_maintenance_open{namespace="shop",name="ro"} 0"#)
            .then_some(())
    })
    .await;
    eventually("a WindowClosed Event", || async {
        events_for(&client, NS, "ro")
            .await
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("WindowClosed"))
    })
    .await;
    stop.cancel();
    run.await.expect("no panic").expect("clean stop");
}

fn job_task() -> Value {
    json!({
        "name": "reindex",
        "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "psql", "image": "postgres:17", "command": ["true"]}]
        }}}}
    })
}

async fn task_jobs(client: &Client) -> Vec<Job> {
    Api::<Job>::namespaced(client.clone(), NS)
        .list(&ListParams::default().labels("watchkeeper.dev/maintenance-window=nightly"))
        .await
        .expect("list Jobs")
        .items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_mid_window_neither_repeats_tasks_nor_forgets_to_restore() {
    let (_server, client) = start_server().await;
    create_config_map(&client, "app-config", &[("MODE", "normal")]).await;
    create_deployment(&client, "worker", 2).await;
    let first = spawn_controller(&client, "first", Some(NS), None);
    let start = in_seconds(2);
    let end = start + TimeDelta::seconds(15);
    let mut spec = read_only_effects();
    spec["tasks"] = json!([job_task()]);
    api_of::<MaintenanceWindow>(&client, NS)
        .create(&PostParams::default(), &window("nightly", start, end, spec))
        .await
        .expect("create window");

    wait_status(&client, "nightly", "task running", |s| {
        s["taskResults"][0]["phase"] == "Running" && s["open"] == true
    })
    .await;
    let jobs = eventually("the task's Job", || async {
        let jobs = task_jobs(&client).await;
        (!jobs.is_empty()).then_some(jobs)
    })
    .await;
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    let owner = &job.owner_references()[0];
    assert_eq!(owner.kind, "MaintenanceWindow");
    assert_eq!(owner.controller, Some(true));

    // The controller stops mid-window, with the task running.
    first.stop().await;
    assert_eq!(
        config_data(&client, "app-config").await["MODE"],
        "maintenance"
    );

    // The Job finishes while no controller runs; a new controller takes over.
    Api::<Job>::namespaced(client.clone(), NS)
        .patch_status(
            &job.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "succeeded": 1,
                "conditions": [{"type": "Complete", "status": "True"}]
            }})),
        )
        .await
        .expect("complete the Job");
    let second = spawn_controller(&client, "second", Some(NS), None);
    let done = wait_status(&client, "nightly", "task succeeded", |s| {
        s["taskResults"][0]["phase"] == "Succeeded"
    })
    .await;
    assert!(
        done["taskResults"][0]["message"]
            .as_str()
            .unwrap()
            .contains("completed")
    );
    assert_eq!(task_jobs(&client).await.len(), 1, "the task ran once");

    let closed = wait_status(&client, "nightly", "closed and restored", |s| {
        s["open"] == false && s.get("lastWindow").is_some() && s.get("appliedEffects").is_none()
    })
    .await;
    assert_eq!(closed["taskResults"][0]["phase"], "Succeeded");
    assert_eq!(
        config_data(&client, "app-config").await,
        BTreeMap::from([("MODE".into(), "normal".into())])
    );
    assert_eq!(replicas(&client, "worker").await, Some(2));
    assert_eq!(
        task_jobs(&client).await.len(),
        1,
        "no second run after the restart"
    );
    let condition_status = condition(&closed, "TasksSucceeded").map(|c| c["status"].clone());
    assert_eq!(condition_status, Some(json!("True")));
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_open_window_restores_its_effects() {
    let (_server, client) = start_server().await;
    create_config_map(&client, "app-config", &[("MODE", "normal")]).await;
    create_deployment(&client, "worker", 4).await;
    let controller = spawn_controller(&client, "solo", Some(NS), None);
    let start = in_seconds(1);
    let end = start + TimeDelta::minutes(30);
    api_of::<MaintenanceWindow>(&client, NS)
        .create(
            &PostParams::default(),
            &window("long", start, end, read_only_effects()),
        )
        .await
        .expect("create window");
    wait_status(&client, "long", "open with effects", |s| {
        s["open"] == true && s["appliedEffects"].as_array().is_some_and(|a| a.len() == 3)
    })
    .await;
    eventually("the worker scaled to 0", || async {
        (replicas(&client, "worker").await == Some(0)).then_some(())
    })
    .await;

    api_of::<MaintenanceWindow>(&client, NS)
        .delete("long", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("the window to be gone", || async {
        matches!(
            api_of::<MaintenanceWindow>(&client, NS)
                .get_opt("long")
                .await,
            Ok(None)
        )
        .then_some(())
    })
    .await;
    assert_eq!(
        config_data(&client, "app-config").await,
        BTreeMap::from([("MODE".into(), "normal".into())])
    );
    assert_eq!(replicas(&client, "worker").await, Some(4));
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_invalid_spec_naming_the_field_and_applies_nothing() {
    let (_server, client) = start_server().await;
    create_config_map(&client, "app-config", &[("MODE", "normal")]).await;
    let controller = spawn_controller(&client, "solo", Some(NS), None);
    let api = api_of::<MaintenanceWindow>(&client, NS);
    let effects = json!({"configMapSet": [
        {"configMapKeyRef": {"name": "app-config", "key": "MODE"}, "value": "maintenance"}
    ]});
    let cases = [
        (
            "no-dtstart",
            json!({"rrule": {"rule": "FREQ=DAILY", "duration": "1h"}}),
            "UTC",
            "start",
        ),
        (
            "too-long",
            json!({"cron": {"expression": "* * * * *", "duration": "2m"}}),
            "UTC",
            "spec.schedule.cron.duration",
        ),
        (
            "mars",
            json!({"cron": {"expression": "* * * * *", "duration": "30s"}}),
            "Mars/Olympus_Mons",
            "spec.timeZone",
        ),
    ];
    for (name, schedule, zone, _) in &cases {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "watchkeeper.dev/v1alpha1",
            "kind": "MaintenanceWindow",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"timeZone": zone, "schedule": schedule, "effects": effects}
        }))
        .unwrap();
        api.create(&PostParams::default(), &object)
            .await
            .expect("create");
    }
    for (name, _, _, field) in &cases {
        let (object, ready) = wait_ready(&api, name, "False").await;
        assert_eq!(ready.reason, "InvalidSpec");
        assert!(ready.message.contains(field), "{name}: {}", ready.message);
        let status = status(&object);
        assert_ne!(status["open"], true, "{name}");
        assert!(status.get("appliedEffects").is_none(), "{name}: {status}");
    }
    assert_eq!(config_data(&client, "app-config").await["MODE"], "normal");
    assert!(
        events_for(&client, NS, "too-long")
            .await
            .iter()
            .all(|e| e.reason.as_deref() != Some("WindowOpened"))
    );
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selector_matching_nothing_is_a_warning_condition() {
    let (_server, client) = start_server().await;
    let controller = spawn_controller(&client, "solo", Some(NS), None);
    let api = api_of::<MaintenanceWindow>(&client, NS);
    let start = in_seconds(3600);
    let spec = json!({
        "selector": {"matchLabels": {"app": "nothing-has-this"}},
        "effects": {"suppressAlerts": true}
    });
    api.create(
        &PostParams::default(),
        &window("lonely", start, start + TimeDelta::hours(1), spec),
    )
    .await
    .expect("create");
    let status = wait_status(&client, "lonely", "Selected=False", |s| {
        condition(s, "Selected").is_some_and(|c| c["status"] == "False")
    })
    .await;
    let selected = condition(&status, "Selected").unwrap();
    assert_eq!(selected["reason"], "NothingSelected");
    assert!(
        selected["message"]
            .as_str()
            .unwrap()
            .contains("spec.selector")
    );
    assert_eq!(condition(&status, "Ready").unwrap()["status"], "True");
    eventually("a Warning Event for the empty selection", || async {
        events_for(&client, NS, "lonely")
            .await
            .into_iter()
            .find(|e| {
                e.reason.as_deref() == Some("NothingSelected")
                    && e.type_.as_deref() == Some("Warning")
            })
    })
    .await;
    controller.stop().await;
}

async fn create_password_secret(client: &Client) {
    use k8s_openapi::api::core::v1::Secret;
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": NS},
        "stringData": {"password": support::postgres::SUPERUSER_PASSWORD}
    }))
    .expect("secret");
    Api::<Secret>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &secret)
        .await
        .expect("create Secret");
}

fn sql_task(name: &str, port: u16, statements: &[&str], timeout: Option<&str>) -> Value {
    let mut sql = json!({
        "connection": {
            "host": "127.0.0.1", "port": port, "database": "app", "user": "postgres",
            "passwordSecretRef": {"name": "db", "key": "password"}
        },
        "statements": statements,
    });
    if let Some(timeout) = timeout {
        sql["statementTimeout"] = json!(timeout);
    }
    json!({"name": name, "sql": sql})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_tasks_run_in_order_once_and_a_failure_closes_early_and_restores() {
    let pg = support::postgres::Postgres::start().await;
    pg.create_database("app").await;
    let (_server, client) = start_server().await;
    create_password_secret(&client).await;
    create_config_map(&client, "app-config", &[("MODE", "normal")]).await;
    let controller = spawn_controller(&client, "solo", Some(NS), None);
    let api = api_of::<MaintenanceWindow>(&client, NS);

    // A window whose statements all succeed, VACUUM included (it cannot run in a transaction
    // block, so this also shows each statement runs on its own).
    let start = in_seconds(2);
    let spec = json!({"tasks": [sql_task("housekeeping", pg.port(), &[
        "CREATE TABLE runs (at timestamptz NOT NULL DEFAULT now())",
        "INSERT INTO runs DEFAULT VALUES",
        "VACUUM ANALYZE runs",
    ], Some("30s"))]});
    api.create(
        &PostParams::default(),
        &window("vacuum", start, start + TimeDelta::seconds(6), spec),
    )
    .await
    .expect("create");
    let done = wait_status(&client, "vacuum", "SQL task succeeded", |s| {
        s["taskResults"][0]["phase"] == "Succeeded"
    })
    .await;
    assert_eq!(done["taskResults"][0]["statementsCompleted"], 3);
    wait_status(&client, "vacuum", "closed", |s| {
        s["open"] == false && s.get("lastWindow").is_some()
    })
    .await;
    assert_eq!(
        pg.psql("app", "SELECT count(*) FROM runs").await.trim(),
        "1",
        "the statements ran once"
    );

    // A failing statement (statement timeout) with CloseEarlyAndRestore: the later task is
    // skipped, the window closes at once and the ConfigMap is restored.
    let start = in_seconds(2);
    let spec = json!({
        "failurePolicy": "CloseEarlyAndRestore",
        "effects": {"configMapSet": [
            {"configMapKeyRef": {"name": "app-config", "key": "MODE"}, "value": "read-only"}
        ]},
        "tasks": [
            sql_task("slow", pg.port(), &["SELECT 1", "SELECT pg_sleep(10)"], Some("300ms")),
            sql_task("after", pg.port(), &["INSERT INTO runs DEFAULT VALUES"], None)
        ]
    });
    api.create(
        &PostParams::default(),
        &window("strict", start, start + TimeDelta::minutes(30), spec),
    )
    .await
    .expect("create");
    let closed = wait_status(&client, "strict", "closed early", |s| {
        s["lastWindow"]["closedEarly"] == true && s["open"] == false
    })
    .await;
    let slow = &closed["taskResults"][0];
    assert_eq!(slow["phase"], "Failed");
    assert_eq!(slow["statementsCompleted"], 1);
    assert!(
        slow["message"].as_str().unwrap().contains("57014"),
        "statement timeout SQLSTATE: {slow}"
    );
    assert_eq!(closed["taskResults"][1]["phase"], "Skipped");
    let failed = wait_status(&client, "strict", "TasksSucceeded=False", |s| {
        condition(s, "TasksSucceeded").is_some_and(|c| c["status"] == "False")
    })
    .await;
    let message = condition(&failed, "TasksSucceeded").unwrap()["message"].clone();
    assert!(message.as_str().unwrap().contains("slow"), "{message}");
    assert_eq!(config_data(&client, "app-config").await["MODE"], "normal");
    assert_eq!(
        pg.psql("app", "SELECT count(*) FROM runs").await.trim(),
        "1",
        "the skipped task did not run"
    );
    controller.stop().await;
}

/// A webhook receiver on loopback that records every JSON body it is sent.
async fn webhook_receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let store = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let store = store.clone();
            async move {
                store
                    .lock()
                    .unwrap()
                    .push(serde_json::from_str::<Value>(&body).unwrap_or(Value::String(body)));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_go_out_once_each_also_across_a_restart() {
    let (_server, client) = start_server().await;
    let (url, received) = webhook_receiver().await;
    let first = spawn_controller(&client, "first", Some(NS), None);
    let start = in_seconds(3);
    let spec = json!({
        "description": "Monthly database maintenance",
        "notices": {
            "advance": ["7d"],
            "alerting": {"channels": [{"name": "ops", "webhook": {"url": url}}]}
        }
    });
    api_of::<MaintenanceWindow>(&client, NS)
        .create(
            &PostParams::default(),
            &window("announced", start, start + TimeDelta::seconds(3), spec),
        )
        .await
        .expect("create");
    let status = wait_status(
        &client,
        "announced",
        "advance, open and close notices recorded",
        |s| s["noticesSent"].as_array().is_some_and(|a| a.len() == 3),
    )
    .await;
    let kinds: Vec<&str> = status["noticesSent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Advance", "Open", "Close"]);
    assert_eq!(
        received.lock().unwrap().len(),
        3,
        "{:?}",
        received.lock().unwrap()
    );
    let text = serde_json::to_string(&*received.lock().unwrap()).unwrap();
    assert!(text.contains("in 7d"), "{text}");
    assert!(text.contains("is open until"), "{text}");
    assert!(text.contains("closed at"), "{text}");
    first.stop().await;

    // A new controller reconciles the window and sends nothing again.
    let second = spawn_controller(&client, "second", Some(NS), None);
    eventually("the new controller to reconcile the window", || async {
        (second.metrics.reconcile_count(
            "MaintenanceWindow",
            watchkeeper::controller::metrics::ReconcileResult::Accepted,
        ) > 0)
            .then_some(())
    })
    .await;
    assert_eq!(
        received.lock().unwrap().len(),
        3,
        "no notice repeated after the restart"
    );
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_spec_while_open_restores_what_it_no_longer_covers() {
    let (_server, client) = start_server().await;
    create_config_map(&client, "app-config", &[("MODE", "normal")]).await;
    create_deployment(&client, "worker", 2).await;
    let operator = Operator::new(
        client.clone(),
        ControllerConfig {
            namespace: Some(NS.into()),
            identity: "solo".into(),
            leader_election: None,
            settings: settings(),
        },
    );
    let index = operator.maintenance();
    let stop = CancellationToken::new();
    let run = tokio::spawn(operator.run(stop.clone()));

    let start = in_seconds(1);
    let mut spec = read_only_effects();
    spec["effects"]["suppressAlerts"] = json!(true);
    spec["selector"] = json!({"matchLabels": {"app": "api"}});
    api_of::<MaintenanceWindow>(&client, NS)
        .create(
            &PostParams::default(),
            &window("change", start, start + TimeDelta::minutes(30), spec),
        )
        .await
        .expect("create");
    wait_status(&client, "change", "open with three effects", |s| {
        s["open"] == true && s["appliedEffects"].as_array().is_some_and(|a| a.len() == 3)
    })
    .await;
    eventually("the worker scaled to 0", || async {
        (replicas(&client, "worker").await == Some(0)).then_some(())
    })
    .await;
    let labels = |app: &str| BTreeMap::from([("app".to_string(), app.to_string())]);
    let covered = |app: &str| {
        index
            .covering(NS, "HealthMonitor", &labels(app), Utc::now())
            .len()
    };
    assert_eq!((covered("api"), covered("web")), (1, 0));

    // The selector moves to other resources; the READ_ONLY key and the scaling are dropped.
    api_of::<MaintenanceWindow>(&client, NS)
        .patch(
            "change",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "effects": {
                    "suppressAlerts": true,
                    "configMapSet": [{"configMapKeyRef": {"name": "app-config", "key": "MODE"}, "value": "maintenance"}],
                    "scale": null
                }
            }})),
        )
        .await
        .expect("change the spec");
    let status = wait_status(&client, "change", "one effect left", |s| {
        s["appliedEffects"].as_array().is_some_and(|a| a.len() == 1)
    })
    .await;
    assert_eq!(status["open"], true);
    assert_eq!(status["appliedEffects"][0]["key"], "MODE");
    let data = config_data(&client, "app-config").await;
    assert_eq!(data.get("MODE").map(String::as_str), Some("maintenance"));
    assert!(!data.contains_key("READ_ONLY"), "{data:?}");
    assert_eq!(replicas(&client, "worker").await, Some(2));
    eventually("the index to follow the selector", || async {
        (covered("api") == 0 && covered("web") == 1).then_some(())
    })
    .await;
    stop.cancel();
    run.await.expect("no panic").expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sql_task_interrupted_by_a_restart_is_not_run_again() {
    let pg = support::postgres::Postgres::start().await;
    pg.create_database("app").await;
    pg.psql(
        "app",
        "CREATE TABLE runs (at timestamptz NOT NULL DEFAULT now())",
    )
    .await;
    let (_server, client) = start_server().await;
    create_password_secret(&client).await;
    let first = spawn_controller(&client, "first", Some(NS), None);
    let start = in_seconds(1);
    let spec = json!({"tasks": [sql_task("slow", pg.port(), &[
        "SELECT pg_sleep(30)",
        "INSERT INTO runs DEFAULT VALUES",
    ], None)]});
    api_of::<MaintenanceWindow>(&client, NS)
        .create(
            &PostParams::default(),
            &window("interrupted", start, start + TimeDelta::minutes(30), spec),
        )
        .await
        .expect("create");
    wait_status(&client, "interrupted", "SQL task running", |s| {
        s["taskResults"][0]["phase"] == "Running"
    })
    .await;
    first.stop().await;

    let second = spawn_controller(&client, "second", Some(NS), None);
    let status = wait_status(&client, "interrupted", "task marked interrupted", |s| {
        s["taskResults"][0]["phase"] == "Failed"
    })
    .await;
    let message = status["taskResults"][0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("not run again"), "{message}");
    // Default policy AlertAndKeepOpen: the window stays open after the failure.
    assert_eq!(status["open"], true);
    wait_status(&client, "interrupted", "TasksSucceeded=False", |s| {
        condition(s, "TasksSucceeded").is_some_and(|c| c["status"] == "False")
    })
    .await;
    second.stop().await;
}
