//! CronJobSpec reconcile benchmark (issue 5): N CronJobSpecs (default 1,000) created at once;
//! the time until every owned CronJob exists and every status is written, as a ratio to the
//! time the API server took to accept the N creates, plus the controller's peak memory.
//!
//! The controller runs as its own process (`watchkeeper controller`, the binary of this build),
//! so its peak RSS (`VmHWM`) is its own. Against the in-process API server
//! (tests/support/apiserver) by default; against a real cluster when WATCHKEEPER_TEST_KUBECONFIG
//! names a kubeconfig (the watchkeeper CRDs are applied, objects go to a fresh namespace that
//! is deleted afterwards).
//!
//! Run: `scripts/bench-reconcile` (or `cargo bench --bench cron_reconcile`). Settings:
//! `SPECS` (1000), `CREATE_CONCURRENCY` (64).

#[path = "../tests/support/apiserver/mod.rs"]
mod apiserver;

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use watchkeeper::api::CronJobSpec;
use watchkeeper::controller::cron_job::builder::CRON_JOB_SPEC_LABEL;

const POLL: Duration = Duration::from_millis(50);
const LIMIT: Duration = Duration::from_secs(900);
const LABEL: &str = "bench.watchkeeper.dev/run";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn spec(name: &str, namespace: &str, run: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "watchkeeper.dev/v1alpha1",
        "kind": "CronJobSpec",
        "metadata": {"name": name, "namespace": namespace, "labels": {LABEL: run}},
        "spec": {
            "schedule": "*/15 * * * *",
            "timeZone": "Europe/Berlin",
            "httpTrigger": {
                "url": "https://app.example.com/api/cron/monitor-urls",
                "bearerTokenSecretRef": {"name": "cron-secret", "key": "token"},
                "retries": 2
            },
            "monitoring": {"lateAfter": "2m", "failureThreshold": 2}
        }
    }))
    .expect("bench object")
}

/// Whether a CronJobSpec's status describes its generation with Ready=True and a health.
fn status_written(object: &Value) -> bool {
    let generation = object.pointer("/metadata/generation").cloned();
    let status = &object["status"];
    let ready = status["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    });
    ready && status.get("observedGeneration").cloned() == generation && status["health"].is_string()
}

/// Where the objects live and how they are counted.
enum Target {
    InProcess(apiserver::ApiServer),
    Cluster,
}

struct Counts {
    cron_jobs: usize,
    statuses: usize,
}

async fn counts(target: &Target, client: &Client, namespace: &str, run: &str) -> Counts {
    match target {
        // Read the store directly: polling over HTTP would load the server being measured.
        Target::InProcess(server) => Counts {
            cron_jobs: server
                .objects("batch", "cronjobs")
                .iter()
                .filter(|o| o["metadata"]["namespace"] == namespace)
                .filter(|o| {
                    o["metadata"]["labels"][CRON_JOB_SPEC_LABEL]
                        .as_str()
                        .is_some_and(|n| n.starts_with(run))
                })
                .count(),
            statuses: server
                .objects("watchkeeper.dev", "cronjobspecs")
                .iter()
                .filter(|o| o["metadata"]["labels"][LABEL] == run)
                .filter(|o| status_written(o))
                .count(),
        },
        Target::Cluster => {
            let cron_jobs: Api<CronJob> = Api::namespaced(client.clone(), namespace);
            let specs: Api<DynamicObject> = Api::namespaced_with(
                client.clone(),
                namespace,
                &ApiResource::erase::<CronJobSpec>(&()),
            );
            let listed = cron_jobs.list(&ListParams::default()).await;
            let cron_jobs = listed
                .map(|l| {
                    l.items
                        .iter()
                        .filter(|c| {
                            c.labels()
                                .get(CRON_JOB_SPEC_LABEL)
                                .is_some_and(|n| n.starts_with(run))
                        })
                        .count()
                })
                .unwrap_or(0);
            let statuses = specs
                .list(&ListParams::default().labels(&format!("{LABEL}={run}")))
                .await
                .map(|l| {
                    l.items
                        .iter()
                        .filter_map(|o| serde_json::to_value(o).ok())
                        .filter(status_written)
                        .count()
                })
                .unwrap_or(0);
            Counts {
                cron_jobs,
                statuses,
            }
        }
    }
}

fn kubeconfig_for(url: &str) -> tempfile_path::TempPath {
    let path = std::env::temp_dir().join(format!("wk-bench-kubeconfig-{}", std::process::id()));
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: {url}\n\
         users:\n- name: local\n  user: {{}}\ncontexts:\n- name: local\n  context:\n    cluster: local\n    user: local\n\
         current-context: local\n"
    );
    let mut file = std::fs::File::create(&path).expect("write kubeconfig");
    file.write_all(text.as_bytes()).expect("write kubeconfig");
    tempfile_path::TempPath(path)
}

/// A file removed on drop.
mod tempfile_path {
    pub struct TempPath(pub std::path::PathBuf);
    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// The controller process; killed on drop.
struct Controller(Child);

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Controller {
    fn start(kubeconfig: &std::path::Path, namespace: &str) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_watchkeeper"))
            .args(["controller", "--leader-election", "off"])
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--namespace", namespace, "--metrics-addr", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start watchkeeper controller");
        Self(child)
    }

    /// Peak resident set size (`VmHWM`) in KiB.
    fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }
}

async fn install_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in watchkeeper::api::crds() {
        crds.patch(
            &crd.name_any(),
            &PatchParams::apply("watchkeeper-bench").force(),
            &Patch::Apply(&crd),
        )
        .await
        .expect("apply CRD");
    }
    // Established: a served resource answers a list.
    let specs: Api<DynamicObject> =
        Api::all_with(client.clone(), &ApiResource::erase::<CronJobSpec>(&()));
    wait("the CronJobSpec resource to be served", || async {
        specs.list(&ListParams::default().limit(1)).await.is_ok()
    })
    .await;
}

async fn wait<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + LIMIT;
    while !probe().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let n = env_usize("SPECS", 1000);
    let concurrency = env_usize("CREATE_CONCURRENCY", 64).max(1);
    let run = format!("r{}", std::process::id());
    let namespace = format!("wk-bench-{}", std::process::id());

    let (target, client, kubeconfig, _temp) = match std::env::var("WATCHKEEPER_TEST_KUBECONFIG") {
        Ok(path) if !path.is_empty() => {
            let config = kube::Config::from_custom_kubeconfig(
                kube::config::Kubeconfig::read_from(&path).expect("read kubeconfig"),
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .expect("kubeconfig");
            let client = Client::try_from(config).expect("client");
            (
                Target::Cluster,
                client,
                std::path::PathBuf::from(path),
                None,
            )
        }
        _ => {
            let server = apiserver::ApiServer::builder()
                .validator(apiserver::schema_validator())
                .start()
                .await;
            let client = server.client();
            let temp = kubeconfig_for(&server.url());
            let path = temp.0.clone();
            (Target::InProcess(server), client, path, Some(temp))
        }
    };
    let where_ = match &target {
        Target::InProcess(_) => "in-process API server".to_string(),
        Target::Cluster => "cluster (WATCHKEEPER_TEST_KUBECONFIG)".to_string(),
    };
    install_crds(&client).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": namespace}})).expect("namespace");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "cron-secret"}, "stringData": {"token": "bench-token"}
    }))
    .expect("secret");
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("create Secret");

    let controller = Controller::start(&kubeconfig, &namespace);
    let specs: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &namespace,
        &ApiResource::erase::<CronJobSpec>(&()),
    );
    // Warm-up: the controller is running and synced once one object is reconciled.
    let warm = format!("warm{run}");
    specs
        .create(&PostParams::default(), &spec("warm-up", &namespace, &warm))
        .await
        .expect("create warm-up");
    wait("the controller to reconcile a first object", || async {
        counts(&target, &client, &namespace, &warm).await.statuses == 1
    })
    .await;

    let started = Instant::now();
    let mut creates = futures::stream::iter((0..n).map(|i| {
        let specs = specs.clone();
        let object = spec(&format!("{run}-{i:04}"), &namespace, &run);
        async move { specs.create(&PostParams::default(), &object).await }
    }))
    .buffer_unordered(concurrency);
    let mut created = 0;
    while let Some(result) = creates.next().await {
        result.expect("create CronJobSpec");
        created += 1;
    }
    let accepted = started.elapsed();
    let mut last;
    let deadline = Instant::now() + LIMIT;
    let mut cron_jobs_at = None;
    loop {
        last = counts(&target, &client, &namespace, &run).await;
        if cron_jobs_at.is_none() && last.cron_jobs >= n {
            cron_jobs_at = Some(started.elapsed());
        }
        if last.cron_jobs >= n && last.statuses >= n {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "timed out: {} CronJobs, {} statuses of {n}",
            last.cron_jobs,
            last.statuses
        );
        tokio::time::sleep(POLL).await;
    }
    let done = started.elapsed();
    let rss = controller.peak_rss_kib();
    drop(controller);

    let ratio = done.as_secs_f64() / accepted.as_secs_f64();
    println!("CronJobSpec reconcile benchmark against the {where_}");
    println!(
        "  {created} CronJobSpecs created with {concurrency} concurrent requests: accepted in {:.3} s",
        accepted.as_secs_f64()
    );
    println!(
        "  every CronJob exists after {:.3} s; every status written after {:.3} s ({} CronJobs, {} statuses)",
        cron_jobs_at.unwrap_or(done).as_secs_f64(),
        done.as_secs_f64(),
        last.cron_jobs,
        last.statuses
    );
    println!("  ratio (all written / creates accepted): {ratio:.2} (goal < 3)");
    match rss {
        Some(kib) => println!(
            "  controller peak RSS (VmHWM): {:.1} MiB",
            kib as f64 / 1024.0
        ),
        None => println!("  controller peak RSS: not readable (/proc unavailable)"),
    }

    // Clean up (a real cluster keeps nothing): the namespace takes everything with it.
    if matches!(target, Target::Cluster) {
        let _ = namespaces
            .delete(&namespace, &DeleteParams::background())
            .await;
    }
}
