//! Helpers and scenarios shared by the controller tests against the in-process API server
//! (tests/controller.rs) and against a real cluster (tests/cluster.rs).
//!
//! Every wait is a poll for an observable condition with a deadline, never a fixed sleep.

#![allow(dead_code)]

mod target;

#[allow(unused_imports)] // not every test binary that includes this module probes a target
pub use target::Target;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use watchkeeper::api::{BackupPolicy, CronJobSpec, FailoverPlan, HealthMonitor, MaintenanceWindow};
use watchkeeper::controller::{
    ControllerConfig, Health, LeaseSettings, ManagedKind, Metrics, Operator, ReconcileSettings,
};

/// Upper bound of every wait.
pub const TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(50);
/// Name of the leader-election Lease in tests.
pub const LEASE: &str = "watchkeeper-controller";

/// Polls `probe` until it yields a value, failing the test after [`TIMEOUT`].
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
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

/// Applies every watchkeeper CRD by server-side apply (as an installer would) and waits until
/// each is served.
pub async fn install_crds(client: &Client) {
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
    for crd in watchkeeper::api::crds() {
        let name = crd.name_any();
        eventually(&format!("CRD {name} to be established"), || async {
            let crd = crds.get_opt(&name).await.ok()??;
            crd.status?
                .conditions?
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
                .then_some(())
        })
        .await;
    }
}

/// A controller running in this process.
pub struct Running {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub stop: CancellationToken,
    pub task: JoinHandle<Result<(), watchkeeper::controller::Error>>,
}

impl Running {
    /// Requests shutdown and waits for a clean stop.
    pub async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(TIMEOUT, self.task)
            .await
            .expect("controller stops within the timeout")
            .expect("controller task does not panic")
            .expect("controller stops without error");
    }
}

/// Fast retries so failures are retried within a test's patience.
pub fn settings() -> ReconcileSettings {
    ReconcileSettings {
        resync: Duration::from_secs(600),
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(500),
    }
}

/// Lease timings short enough for a takeover after expiry to stay quick, long enough that a
/// busy 2-core CI machine never delays a renewal past the deadline.
pub fn lease(identity: &str, namespace: &str) -> LeaseSettings {
    LeaseSettings {
        lease_duration: Duration::from_secs(6),
        renew_deadline: Duration::from_secs(4),
        retry_period: Duration::from_millis(100),
        ..LeaseSettings::new(LEASE, namespace, identity)
    }
}

/// Starts a controller watching `watch` (None: all namespaces); with `lease_namespace` it
/// campaigns for the Lease there first.
pub fn spawn_controller(
    client: &Client,
    identity: &str,
    watch: Option<&str>,
    lease_namespace: Option<&str>,
) -> Running {
    let operator = Operator::new(
        client.clone(),
        ControllerConfig {
            namespace: watch.map(str::to_string),
            identity: identity.to_string(),
            leader_election: lease_namespace.map(|ns| lease(identity, ns)),
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

/// The API of kind `K` in `namespace`, untyped (so malformed objects can be read too).
pub fn api_of<K: ManagedKind>(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &ApiResource::erase::<K>(&()))
}

/// A CronJobSpec with an HTTP trigger in `time_zone` (an unknown zone is an error only
/// `validate()` finds: the schema cannot know the IANA database).
pub fn cron_job(name: &str, namespace: &str, time_zone: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "watchkeeper.dev/v1alpha1",
        "kind": "CronJobSpec",
        "metadata": {"name": name, "namespace": namespace},
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
pub struct Ready {
    pub status: String,
    pub reason: String,
    pub message: String,
    pub observed_generation: Option<i64>,
    pub last_transition_time: String,
}

/// `Ready` of `object`, if status has it.
pub fn ready_of(object: &DynamicObject) -> Option<Ready> {
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

/// `status.observedGeneration` of `object`.
pub fn status_observed_generation(object: &DynamicObject) -> Option<i64> {
    object
        .data
        .get("status")?
        .get("observedGeneration")?
        .as_i64()
}

/// Waits until the object's status describes its current generation with `Ready=<status>`.
pub async fn wait_ready(
    api: &Api<DynamicObject>,
    name: &str,
    status: &str,
) -> (DynamicObject, Ready) {
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

/// Events (events.k8s.io/v1) about the object `name` in `namespace`.
pub async fn events_for(client: &Client, namespace: &str, name: &str) -> Vec<Event> {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    events
        .list(&ListParams::default())
        .await
        .expect("events list")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .collect()
}

fn of_type(events: Vec<Event>, type_: &str) -> Vec<Event> {
    events
        .into_iter()
        .filter(|e| e.type_.as_deref() == Some(type_))
        .collect()
}

/// `holderIdentity` of the test Lease.
pub async fn lease_holder(client: &Client, namespace: &str) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), namespace);
    leases
        .get_opt(LEASE)
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

/// Creates a CronJobSpec with an unknown time zone and expects `Ready=False/InvalidSpec`
/// naming `spec.timeZone`, `observedGeneration` 1, and exactly one Warning Event from
/// `instance`.
pub async fn create_invalid_and_expect_invalid_spec(
    client: &Client,
    namespace: &str,
    name: &str,
    instance: &str,
) -> Ready {
    let api = api_of::<CronJobSpec>(client, namespace);
    api.create(
        &PostParams::default(),
        &cron_job(name, namespace, "Mars/Olympus_Mons"),
    )
    .await
    .expect("the schema accepts any string as a time zone");
    let (object, ready) = wait_ready(&api, name, "False").await;
    assert_eq!(ready.reason, "InvalidSpec");
    assert!(
        ready.message.contains("spec.timeZone"),
        "the message names the field: {}",
        ready.message
    );
    assert_eq!(object.metadata.generation, Some(1));
    assert_eq!(status_observed_generation(&object), Some(1));

    let warnings = eventually("a Warning Event for the invalid spec", || async {
        let warnings = of_type(events_for(client, namespace, name).await, "Warning");
        (!warnings.is_empty()).then_some(warnings)
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
    assert_eq!(warning.reporting_instance.as_deref(), Some(instance));
    ready
}

/// Fixes the time zone of the object from [`create_invalid_and_expect_invalid_spec`] and
/// expects `Ready=True/Accepted` at generation 2, a Normal Event, and no second Warning.
pub async fn fix_and_expect_accepted(
    client: &Client,
    namespace: &str,
    name: &str,
    before: &Ready,
) -> DynamicObject {
    let api = api_of::<CronJobSpec>(client, namespace);
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"timeZone": "Europe/Berlin"}})),
    )
    .await
    .expect("fix the time zone");
    let (fixed, ready) = wait_ready(&api, name, "True").await;
    assert_eq!(ready.reason, "Accepted");
    assert_eq!(fixed.metadata.generation, Some(2));
    assert_eq!(ready.observed_generation, Some(2));
    assert!(ready.last_transition_time >= before.last_transition_time);
    eventually("a Normal Event for the accepted spec", || async {
        of_type(events_for(client, namespace, name).await, "Normal")
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("Accepted"))
    })
    .await;
    let warnings = of_type(events_for(client, namespace, name).await, "Warning");
    assert_eq!(
        warnings.len(),
        1,
        "no repeated Warning without a transition"
    );
    fixed
}

/// Deletes the object and expects it gone at once: the controller adds no finalizer.
pub async fn delete_and_expect_gone(client: &Client, namespace: &str, name: &str) {
    let api = api_of::<CronJobSpec>(client, namespace);
    let object = api.get(name).await.expect("object exists");
    assert!(
        object.finalizers().is_empty(),
        "no finalizer: {:?}",
        object.finalizers()
    );
    api.delete(name, &DeleteParams::default())
        .await
        .expect("delete");
    eventually(&format!("{name} to be gone"), || async {
        matches!(api.get_opt(name).await, Ok(None)).then_some(())
    })
    .await;
}

/// Two controllers campaign in `namespace`; only the Lease holder reconciles and publishes;
/// when it stops, it releases the Lease and the other takes over and reconciles.
/// `status_writes` counts the status writes of the object so far, when the server can tell.
pub async fn leader_failover(
    client: &Client,
    namespace: &str,
    status_writes: Option<&(dyn Fn() -> usize + Sync)>,
) {
    let first = spawn_controller(client, "replica-a", Some(namespace), Some(namespace));
    eventually("replica-a to lead", || async {
        (lease_holder(client, namespace).await.as_deref() == Some("replica-a")
            && first.health.is_leader())
        .then_some(())
    })
    .await;
    let second = spawn_controller(client, "replica-b", Some(namespace), Some(namespace));
    let api = api_of::<CronJobSpec>(client, namespace);
    api.create(
        &PostParams::default(),
        &cron_job("shared", namespace, "Mars/Base"),
    )
    .await
    .expect("create");
    wait_ready(&api, "shared", "False").await;
    eventually("the leader's reconcile metrics", || async {
        (first.metrics.total_reconciles() > 0).then_some(())
    })
    .await;
    eventually("the leader's Event", || async {
        let events = events_for(client, namespace, "shared").await;
        (!events.is_empty()).then_some(())
    })
    .await;

    // The standby is ready (rollouts and PodDisruptionBudgets see it as healthy) but idle.
    assert!(!second.health.is_leader());
    assert!(second.health.is_ready());
    assert_eq!(
        second.metrics.total_reconciles(),
        0,
        "the standby reconciled"
    );
    assert_eq!(
        lease_holder(client, namespace).await.as_deref(),
        Some("replica-a")
    );
    let events = events_for(client, namespace, "shared").await;
    assert!(
        events
            .iter()
            .all(|e| e.reporting_instance.as_deref() == Some("replica-a")),
        "only the leader publishes: {events:?}"
    );

    // The leader shuts down: it releases the Lease and the standby takes over at once.
    first.stop().await;
    eventually("replica-b to lead", || async {
        (lease_holder(client, namespace).await.as_deref() == Some("replica-b")
            && second.health.is_leader())
        .then_some(())
    })
    .await;
    let writes_before = status_writes.map(|count| count());
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
    if let (Some(count), Some(before)) = (status_writes, writes_before) {
        assert!(count() > before, "the new leader wrote status");
    }
    let accepted = eventually("the new leader's Event", || async {
        events_for(client, namespace, "shared")
            .await
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("Accepted"))
    })
    .await;
    assert_eq!(accepted.reporting_instance.as_deref(), Some("replica-b"));

    second.stop().await;
    assert_eq!(
        lease_holder(client, namespace).await,
        None,
        "released on shutdown"
    );
}

/// `manifests/examples/` of this repository.
pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/examples")
}

/// Every watchkeeper document under `path` (a file, or a directory searched recursively for
/// `*.yaml` / `*.yml`), placed in `namespace`. Other documents (Secrets, Deployments, …) are
/// skipped.
pub fn load_examples(path: &Path, namespace: &str) -> Vec<DynamicObject> {
    let mut files = Vec::new();
    if path.is_dir() {
        collect_yaml(path, &mut files);
    } else {
        files.push(path.to_path_buf());
    }
    files.sort();
    let mut objects = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(document)
                .unwrap_or_else(|e| panic!("parse {}: {e}", file.display()));
            let is_watchkeeper = value
                .get("apiVersion")
                .and_then(Value::as_str)
                .is_some_and(|v| v.starts_with("watchkeeper.dev/"));
            if !is_watchkeeper {
                continue;
            }
            let mut object: DynamicObject = serde_json::from_value(value)
                .unwrap_or_else(|e| panic!("object in {}: {e}", file.display()));
            object.metadata.namespace = Some(namespace.to_string());
            keep_probes_on_loopback(&mut object);
            objects.push(object);
        }
    }
    objects
}

/// Points a HealthMonitor's target at a closed loopback port. The controller really probes the
/// monitors it accepts, and the examples' hosts are placeholders (`app.example.com`, Service
/// names): tests must not send traffic beyond loopback, nor depend on DNS. Only the target
/// changes; everything else the examples say is accepted as written.
fn keep_probes_on_loopback(object: &mut DynamicObject) {
    let is_monitor = object
        .types
        .as_ref()
        .is_some_and(|t| t.kind == "HealthMonitor");
    if let Some(target) = object
        .data
        .pointer_mut("/spec/target")
        .filter(|_| is_monitor)
    {
        *target = serde_json::json!({ "url": "https://127.0.0.1:9/api/health" });
    }
}

/// The examples as independent sets, one per top-level entry of `manifests/examples/` (the
/// quick start, each guide's translation), each in its own namespace `<prefix>-<entry>`: the
/// guides reuse names, as two teams' namespaces would.
pub fn example_sets(prefix: &str) -> Vec<(String, Vec<DynamicObject>)> {
    let dir = examples_dir();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read dir {}: {e}", dir.display()))
        .flatten()
        .map(|entry| entry.path())
        .collect();
    entries.sort();
    let mut sets = Vec::new();
    for entry in entries {
        let stem = entry
            .file_stem()
            .map(|s| s.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let slug: String = stem
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let namespace = format!("{prefix}-{slug}");
        let objects = load_examples(&entry, &namespace);
        if !objects.is_empty() {
            sets.push((namespace, objects));
        }
    }
    sets
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read dir {}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_yaml(&path, out);
        } else if path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml")
        {
            out.push(path);
        }
    }
}

/// The untyped API of a watchkeeper kind by name.
pub fn api_for_kind(client: &Client, namespace: &str, kind: &str) -> Api<DynamicObject> {
    match kind {
        "HealthMonitor" => api_of::<HealthMonitor>(client, namespace),
        "CronJobSpec" => api_of::<CronJobSpec>(client, namespace),
        "BackupPolicy" => api_of::<BackupPolicy>(client, namespace),
        "MaintenanceWindow" => api_of::<MaintenanceWindow>(client, namespace),
        "FailoverPlan" => api_of::<FailoverPlan>(client, namespace),
        other => panic!("not a watchkeeper kind: {other}"),
    }
}

/// Creates every example set (in its namespace) and expects the controller to accept each
/// object (`Ready=True` for its generation). Returns how many objects there were.
pub async fn examples_are_accepted(
    client: &Client,
    sets: &[(String, Vec<DynamicObject>)],
) -> usize {
    let total: usize = sets.iter().map(|(_, objects)| objects.len()).sum();
    assert!(
        total > 0,
        "no watchkeeper documents under {}",
        examples_dir().display()
    );
    for (namespace, objects) in sets {
        create_referenced_secrets(client, namespace, objects).await;
        for object in objects {
            let kind = kind_of(object);
            api_for_kind(client, namespace, &kind)
                .create(&PostParams::default(), object)
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "the API server accepts {kind} {namespace}/{}: {e}",
                        object.name_any()
                    )
                });
        }
    }
    for (namespace, objects) in sets {
        for object in objects {
            let kind = kind_of(object);
            let api = api_for_kind(client, namespace, &kind);
            let name = object.name_any();
            let outcome = eventually(
                &format!("{kind} {namespace}/{name} to get a verdict"),
                || async {
                    let current = api.get_opt(&name).await.ok()??;
                    let ready = ready_of(&current)?;
                    (ready.observed_generation == current.metadata.generation).then_some(ready)
                },
            )
            .await;
            assert_eq!(
                (outcome.status.as_str(), outcome.reason.as_str()),
                ("True", "Accepted"),
                "{kind} {namespace}/{name} is not accepted: {}",
                outcome.message
            );
        }
    }
    total
}

/// Creates every Secret key the objects reference (`…SecretRef` / `secretKeyRef` fields), with
/// a placeholder value, as the guides tell users to before applying the examples: the
/// controller refuses specs whose pods would mount a missing Secret.
pub async fn create_referenced_secrets(
    client: &Client,
    namespace: &str,
    objects: &[DynamicObject],
) {
    fn collect(value: &Value, out: &mut std::collections::BTreeMap<String, Vec<String>>) {
        match value {
            Value::Object(map) => {
                for (field, inner) in map {
                    let is_ref = field.ends_with("SecretRef") || field == "secretKeyRef";
                    if let (true, Some(name), Some(key)) = (
                        is_ref,
                        inner.get("name").and_then(Value::as_str),
                        inner.get("key").and_then(Value::as_str),
                    ) {
                        out.entry(name.to_string())
                            .or_default()
                            .push(key.to_string());
                    }
                    collect(inner, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| collect(item, out)),
            _ => {}
        }
    }
    let mut secrets = std::collections::BTreeMap::new();
    for object in objects {
        collect(&object.data, &mut secrets);
    }
    let api: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), namespace);
    for (name, keys) in secrets {
        let data: serde_json::Map<String, Value> = keys
            .into_iter()
            .map(|key| (key, Value::String("placeholder".to_string())))
            .collect();
        let secret = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace}, "stringData": data});
        let secret = serde_json::from_value(secret).expect("a Secret");
        match api.create(&PostParams::default(), &secret).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => panic!("create Secret {namespace}/{name}: {error}"),
        }
    }
}

fn kind_of(object: &DynamicObject) -> String {
    object
        .types
        .as_ref()
        .map(|t| t.kind.clone())
        .unwrap_or_default()
}
