//! Cluster tier: the controller scenarios of tests/controller.rs against a real API server.
//!
//! Runs only when `WATCHKEEPER_TEST_KUBECONFIG` names a kubeconfig file (its current context is
//! used; the user needs rights to apply CRDs and to create namespaces). Each test applies the
//! CRDs from `watchkeeper::api::crds()` by server-side apply, works in fresh namespaces
//! `wk-test-…` (deleted afterwards, also when the test fails), and runs the controller in this
//! process, watching only its namespace. The CRDs stay installed: other things may use them.
//!
//! Without the variable every test prints "skipped: WATCHKEEPER_TEST_KUBECONFIG is not set"
//! and passes.

mod controller_support;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use controller_support::*;
use watchkeeper::api::CronJobSpec;

const ENV: &str = "WATCHKEEPER_TEST_KUBECONFIG";

/// The kubeconfig to test against, or `None` after printing that the test is skipped.
fn kubeconfig() -> Option<PathBuf> {
    match std::env::var_os(ENV) {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => {
            println!("skipped: {ENV} is not set");
            None
        }
    }
}

async fn connect(path: &PathBuf) -> Client {
    let kubeconfig =
        Kubeconfig::read_from(path).unwrap_or_else(|e| panic!("{ENV}={}: {e}", path.display()));
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{ENV}={}: {e}", path.display()));
    let client = Client::try_from(config).expect("kube client");
    install_crds(&client).await;
    client
}

/// A namespace created for one test and deleted when the guard drops (even on panic).
struct TestNamespace {
    name: String,
    client: Client,
}

impl TestNamespace {
    async fn create(client: &Client, hint: &str) -> Self {
        Self::create_named(client, format!("{}-{hint}", unique_prefix())).await
    }

    async fn create_named(client: &Client, name: String) -> Self {
        let namespaces: Api<Namespace> = Api::all(client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &Namespace {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        labels: Some(
                            [(
                                "app.kubernetes.io/part-of".to_string(),
                                "watchkeeper-tests".to_string(),
                            )]
                            .into(),
                        ),
                        ..ObjectMeta::default()
                    },
                    ..Namespace::default()
                },
            )
            .await
            .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
        Self {
            name,
            client: client.clone(),
        }
    }
}

/// `wk-test-<pid><nanos>`: unique enough across concurrent runs against one cluster.
fn unique_prefix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("wk-test-{:x}{:x}", std::process::id(), nanos)
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let name = self.name.clone();
        let client = self.client.clone();
        // Drop cannot await; delete from a helper thread with its own runtime.
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let namespaces: Api<Namespace> = Api::all(client);
                if let Err(error) = namespaces.delete(&name, &DeleteParams::background()).await {
                    eprintln!("cleanup: deleting namespace {name} failed: {error}");
                }
            });
        });
        let _ = cleanup.join();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_invalid_spec_is_reported_then_fixed_then_deleted_cleanly() {
    let Some(path) = kubeconfig() else { return };
    let client = connect(&path).await;
    let ns = TestNamespace::create(&client, "invalid").await;
    let controller = spawn_controller(&client, "cluster-solo", Some(&ns.name), None);

    let ready =
        create_invalid_and_expect_invalid_spec(&client, &ns.name, "cleanup", "cluster-solo").await;
    fix_and_expect_accepted(&client, &ns.name, "cleanup", &ready).await;
    delete_and_expect_gone(&client, &ns.name, "cleanup").await;

    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_an_invalid_object_does_not_block_the_others() {
    let Some(path) = kubeconfig() else { return };
    let client = connect(&path).await;
    let ns = TestNamespace::create(&client, "isolation").await;
    let api = api_of::<CronJobSpec>(&client, &ns.name);
    api.create(
        &PostParams::default(),
        &cron_job("invalid", &ns.name, "Nowhere/Town"),
    )
    .await
    .expect("create");
    let controller = spawn_controller(&client, "cluster-solo", Some(&ns.name), None);
    api.create(&PostParams::default(), &cron_job("valid", &ns.name, "UTC"))
        .await
        .expect("create");

    let (_, valid) = wait_ready(&api, "valid", "True").await;
    assert_eq!(valid.reason, "Accepted");
    let (_, invalid) = wait_ready(&api, "invalid", "False").await;
    assert!(
        invalid.message.contains("spec.timeZone"),
        "{}",
        invalid.message
    );

    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_only_the_lease_holder_reconciles_and_a_standby_takes_over() {
    let Some(path) = kubeconfig() else { return };
    let client = connect(&path).await;
    let ns = TestNamespace::create(&client, "lease").await;
    leader_failover(&client, &ns.name, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_the_examples_are_accepted() {
    let Some(path) = kubeconfig() else { return };
    let client = connect(&path).await;
    let sets = example_sets(&unique_prefix());
    let mut namespaces = Vec::new();
    let mut controllers = Vec::new();
    for (namespace, _) in &sets {
        namespaces.push(TestNamespace::create_named(&client, namespace.clone()).await);
        // Namespace-scoped, so objects of other tests and other users are left alone.
        controllers.push(spawn_controller(
            &client,
            "cluster-solo",
            Some(namespace),
            None,
        ));
    }
    let count = examples_are_accepted(&client, &sets).await;
    assert!(count > 0);
    for controller in controllers {
        controller.stop().await;
    }
    drop(namespaces);
}
