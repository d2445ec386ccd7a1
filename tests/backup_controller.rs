//! BackupPolicy controller scenarios against the in-process API server: owned CronJobs and
//! ServiceAccount, status and conditions from agent reports (the test plays the Kubernetes Job
//! controller: it creates the Job from the CronJob's template and a Pod whose agent container
//! terminated with the report as its message), RPOMet flipping by itself, alerts to a local
//! webhook, backup-now idempotency across restarts, and bad input creating nothing.
//!
//! Every wait is a poll for an observable condition with a deadline, never a fixed sleep.

mod controller_support;
mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use k8s_openapi::ByteString;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, Secret, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use controller_support::*;
use support::apiserver::{ApiServer, Validator};
use watchkeeper::api::BackupPolicy;
use watchkeeper::backup::report::{
    AgentReport, BackupReport, CheckResult, Inventory, Outcome, VerifyReport,
};
use watchkeeper::controller::backup::builder::{
    AGENT_CONTAINER, POLICY_LABEL, ROLE_LABEL, backup_now_job_name,
};
use watchkeeper::controller::backup::cluster::JOB_NAME_LABEL;

const IMAGE: &str = watchkeeper::controller::backup::DEFAULT_AGENT_IMAGE;

fn schema_validator() -> Validator {
    Arc::new(|crd: &CustomResourceDefinition, object: &Value| {
        watchkeeper::check::schema::validate_against_crd(crd, object)
            .into_iter()
            .map(|error| error.to_string())
            .collect()
    })
}

async fn start() -> (ApiServer, Client) {
    // `RUST_LOG=watchkeeper=debug` shows the controller's logs when a test fails.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let server = ApiServer::builder()
        .validator(schema_validator())
        .start()
        .await;
    let client = server.client();
    install_crds(&client).await;
    (server, client)
}

async fn secret(client: &Client, namespace: &str, name: &str, keys: &[&str]) {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let data: BTreeMap<String, ByteString> = keys
        .iter()
        .map(|k| {
            (
                k.to_string(),
                ByteString(format!("value-of-{k}").into_bytes()),
            )
        })
        .collect();
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    };
    api.create(&PostParams::default(), &secret)
        .await
        .expect("create Secret");
}

async fn secrets(client: &Client, namespace: &str) {
    secret(client, namespace, "pg", &["uri"]).await;
    secret(client, namespace, "s3", &["id", "secret"]).await;
    secret(client, namespace, "backup-key", &["passphrase"]).await;
}

/// A policy: daily backups to S3, weekly verification, RPO `rpo` with a schedule that allows it.
fn policy(name: &str, schedule: &str, rpo: &str, extra: Value) -> DynamicObject {
    let mut spec = json!({
        "schedule": schedule,
        "timeZone": "Asia/Tokyo",
        "source": {"connection": {"uriSecretRef": {"name": "pg", "key": "uri"}}},
        "destination": {"s3": {
            "bucket": "shop-backups", "prefix": "pg/", "endpoint": "http://127.0.0.1:9",
            "forcePathStyle": true,
            "accessKeyIdSecretRef": {"name": "s3", "key": "id"},
            "secretAccessKeySecretRef": {"name": "s3", "key": "secret"}
        }},
        "encryption": {"keySecretRef": {"name": "backup-key", "key": "passphrase"}},
        "retention": {"daily": 7, "weekly": 4, "monthly": 3},
        "objectives": {"rpo": rpo, "rto": "1h"},
        "verification": {"schedule": "0 5 * * 0", "timeZone": "UTC"}
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            spec.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json!({
        "apiVersion": "watchkeeper.dev/v1alpha1",
        "kind": "BackupPolicy",
        "metadata": {"name": name},
        "spec": spec
    }))
    .expect("test object")
}

fn status_of(object: &DynamicObject) -> Value {
    object.data.get("status").cloned().unwrap_or(Value::Null)
}

fn condition(object: &DynamicObject, type_: &str) -> Option<(String, String, String)> {
    let c = status_of(object)
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?
        .clone();
    let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    Some((text("status"), text("reason"), text("message")))
}

/// Waits until `probe` holds for the policy's current object; on timeout the failure shows
/// the last status seen.
async fn policy_until(
    api: &Api<DynamicObject>,
    name: &str,
    what: &str,
    probe: impl Fn(&DynamicObject) -> bool,
) -> DynamicObject {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let object = api.get_opt(name).await.ok().flatten();
        if let Some(object) = &object
            && probe(object)
        {
            return object.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}; last status: {}",
            object.map(|o| status_of(&o)).unwrap_or(Value::Null)
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn is(object: &DynamicObject, type_: &str, status: &str) -> bool {
    condition(object, type_).is_some_and(|(s, _, _)| s == status)
}

/// Plays the Job controller: a Job from the CronJob's template (owned by it), then a Pod whose
/// agent container terminated with `report` as its termination message, then the Job's
/// terminal status.
async fn run_job(
    client: &Client,
    namespace: &str,
    cron_job: &str,
    job_name: &str,
    report: Option<&AgentReport>,
    succeeded: bool,
) {
    let cron_jobs: Api<CronJob> = Api::namespaced(client.clone(), namespace);
    let parent = cron_jobs.get(cron_job).await.expect("the CronJob exists");
    let template = parent.spec.job_template.clone();
    let owner = kube::Resource::controller_owner_ref(&parent, &()).expect("CronJob uid");
    let job = Job {
        metadata: kube::api::ObjectMeta {
            name: Some(job_name.to_string()),
            labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    };
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    let job = jobs
        .create(&PostParams::default(), &job)
        .await
        .expect("create Job");
    finish_job(client, namespace, &job, report, succeeded).await;
}

async fn finish_job(
    client: &Client,
    namespace: &str,
    job: &Job,
    report: Option<&AgentReport>,
    succeeded: bool,
) {
    let job_name = job.name_any();
    let pod_spec = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .expect("pod template");
    let mut labels = job
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(JOB_NAME_LABEL.to_string(), job_name.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pod_name = format!("{job_name}-x1");
    let pod = Pod {
        metadata: kube::api::ObjectMeta {
            name: Some(pod_name.clone()),
            labels: Some(labels),
            ..Default::default()
        },
        spec: Some(pod_spec),
        status: None,
    };
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create Pod");
    let message = report.map(AgentReport::to_termination_json);
    let exit = if succeeded { 0 } else { 1 };
    pods.patch_status(
        &pod_name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {
            "phase": if succeeded { "Succeeded" } else { "Failed" },
            "containerStatuses": [{
                "name": AGENT_CONTAINER, "image": IMAGE, "imageID": "", "ready": false,
                "restartCount": 0,
                "state": {"terminated": {"exitCode": exit, "message": message,
                    "reason": if succeeded { "Completed" } else { "Error" }}}
            }]
        }})),
    )
    .await
    .expect("pod status");
    let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let status = if succeeded {
        json!({"succeeded": 1, "completionTime": now, "conditions": [
            {"type": "Complete", "status": "True", "lastTransitionTime": now}]})
    } else {
        json!({"failed": 1, "conditions": [{"type": "Failed", "status": "True",
            "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit",
            "lastTransitionTime": now}]})
    };
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    jobs.patch_status(
        &job_name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .expect("job status");
}

fn backup_report(id: &str, outcome: Outcome, finished: DateTime<Utc>) -> AgentReport {
    AgentReport::Backup(BackupReport {
        outcome,
        id: Some(id.to_string()),
        started_at: finished - ChronoDuration::seconds(75),
        finished_at: finished,
        size_bytes: (outcome == Outcome::Succeeded).then_some(52_428_800),
        sha256: (outcome == Outcome::Succeeded).then(|| "cd".repeat(32)),
        encrypted: true,
        message: match outcome {
            Outcome::Succeeded => format!("stored {id}"),
            Outcome::Failed => "pg_dump: connection refused".to_string(),
        },
        pruned: vec!["20251201T030000Z".into()],
        pruned_omitted: 0,
        kept: 9,
        prune_error: None,
        inventory: (outcome == Outcome::Succeeded).then(|| Inventory {
            count: 9,
            total_bytes: 9 * 52_428_800,
            oldest: Some(finished - ChronoDuration::days(80)),
            newest: Some(finished),
        }),
    })
}

fn verify_report(
    id: &str,
    outcome: Outcome,
    completed: DateTime<Utc>,
    finished: DateTime<Utc>,
) -> AgentReport {
    AgentReport::Verify(VerifyReport {
        outcome,
        backup_id: Some(id.to_string()),
        backup_completed_at: Some(completed),
        started_at: finished - ChronoDuration::seconds(40),
        finished_at: finished,
        sha256_ok: Some(outcome == Outcome::Succeeded),
        restore_seconds: Some(31.5),
        rto_met: Some(true),
        checks: vec![CheckResult {
            name: "users".into(),
            ok: outcome == Outcome::Succeeded,
            message: String::new(),
        }],
        message: match outcome {
            Outcome::Succeeded => "restored and checked".to_string(),
            Outcome::Failed => "sha256 mismatch: the stored object is corrupt".to_string(),
        },
    })
}

/// A local webhook receiver collecting the alert payloads.
async fn receiver() -> (SocketAddr, Arc<Mutex<Vec<Value>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let sink = sink.clone();
            async move {
                if let Ok(value) = serde_json::from_str::<Value>(&body) {
                    sink.lock().unwrap().push(value);
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, received)
}

fn notifications(received: &Mutex<Vec<Value>>, key_suffix: &str, kind: &str) -> usize {
    received
        .lock()
        .unwrap()
        .iter()
        .filter(|n| {
            n["kind"] == kind
                && n["alert"]["key"]
                    .as_str()
                    .is_some_and(|k| k.ends_with(key_suffix))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owned_cron_jobs_and_service_account_follow_the_policy() {
    let (_server, client) = start().await;
    let ns = "shop";
    let controller = spawn_controller(&client, "solo", Some(ns), None);
    secrets(&client, ns).await;
    let api = api_of::<BackupPolicy>(&client, ns);
    api.create(
        &PostParams::default(),
        &policy("pg", "0 3 * * *", "24h", json!({})),
    )
    .await
    .expect("create");
    let (object, _) = wait_ready(&api, "pg", "True").await;
    let uid = object.uid().expect("uid");

    let cron_jobs: Api<CronJob> = Api::namespaced(client.clone(), ns);
    let backup = eventually("the backup CronJob", || async {
        cron_jobs.get_opt("pg-backup").await.ok()?
    })
    .await;
    let verify = cron_jobs.get("pg-verify").await.expect("verify CronJob");
    for (cron_job, role, schedule, zone) in [
        (&backup, "backup", "0 3 * * *", "Asia/Tokyo"),
        (&verify, "verify", "0 5 * * 0", "UTC"),
    ] {
        let owner = &cron_job.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("BackupPolicy", uid.as_str(), Some(true))
        );
        assert_eq!(cron_job.labels()[POLICY_LABEL], "pg");
        assert_eq!(cron_job.labels()[ROLE_LABEL], role);
        let spec = &cron_job.spec;
        assert_eq!(spec.schedule, schedule);
        assert_eq!(spec.time_zone.as_deref(), Some(zone));
        assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
        let pod = spec
            .job_template
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .expect("pod");
        assert_eq!(pod.service_account_name.as_deref(), Some("pg-backup-agent"));
        let container = &pod.containers[0];
        assert_eq!(container.image.as_deref(), Some(IMAGE));
        assert_eq!(container.args.as_deref().unwrap(), ["agent", role]);
        let env = container.env.as_ref().expect("env");
        let uri = env
            .iter()
            .find(|e| e.name == "WATCHKEEPER_SOURCE_URI")
            .expect("uri variable");
        let selector = uri
            .value_from
            .as_ref()
            .and_then(|v| v.secret_key_ref.as_ref())
            .expect("from a Secret");
        assert_eq!(
            (selector.name.as_str(), selector.key.as_str()),
            ("pg", "uri")
        );
        let stored = serde_json::to_string(cron_job).unwrap();
        assert!(!stored.contains("value-of-"), "a secret value leaked");
    }
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let account = accounts
        .get("pg-backup-agent")
        .await
        .expect("ServiceAccount");
    assert_eq!(account.owner_references()[0].uid, uid);
    let object = policy_until(&api, "pg", "status.cronJobs", |o| {
        status_of(o)["cronJobs"]["verification"]["name"] == "pg-verify"
    })
    .await;
    assert_eq!(
        status_of(&object)["cronJobs"]["backup"]["name"],
        "pg-backup"
    );
    // 03:00 in Tokyo is 18:00 UTC.
    let next = status_of(&object)["nextBackupTime"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .expect("nextBackupTime");
    assert!(next > Utc::now() && next < Utc::now() + ChronoDuration::days(1));
    assert_eq!(next.format("%H:%M:%S").to_string(), "18:00:00");

    // A hand edit of the owned CronJob is set back.
    cron_jobs
        .patch(
            "pg-backup",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"schedule": "*/5 * * * *", "concurrencyPolicy": "Allow"}}),
            ),
        )
        .await
        .expect("hand edit");
    eventually("the hand edit to be undone", || async {
        let c = cron_jobs.get("pg-backup").await.ok()?;
        (c.spec.schedule == "0 3 * * *" && c.spec.concurrency_policy.as_deref() == Some("Forbid"))
            .then_some(())
    })
    .await;

    // Suspending the policy suspends its CronJobs; dropping verification deletes its CronJob.
    api.patch(
        "pg",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"suspend": true, "verification": null}})),
    )
    .await
    .expect("edit policy");
    eventually("suspended backups and no verify CronJob", || async {
        let backup = cron_jobs.get("pg-backup").await.ok()?;
        let verify_gone = cron_jobs.get_opt("pg-verify").await.ok()?.is_none();
        (backup.spec.suspend == Some(true) && verify_gone).then_some(())
    })
    .await;
    let object = policy_until(&api, "pg", "Verified=Unknown/NotConfigured", |o| {
        condition(o, "Verified").is_some_and(|(_, r, _)| r == "NotConfigured")
    })
    .await;
    assert!(status_of(&object)["cronJobs"].get("verification").is_none());
    assert!(
        status_of(&object).get("nextBackupTime").is_none(),
        "suspended"
    );
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_conditions_alerts_and_metrics_follow_agent_reports() {
    let (_server, client) = start().await;
    let ns = "shop";
    let (addr, received) = receiver().await;
    let controller = spawn_controller(&client, "solo", Some(ns), None);
    secrets(&client, ns).await;
    let api = api_of::<BackupPolicy>(&client, ns);
    let alerting = json!({"alerting": {
        "channels": [{"name": "hook", "webhook": {"url": format!("http://{addr}/hook")}}],
        "sendResolved": true
    }});
    api.create(
        &PostParams::default(),
        &policy("pg", "0 3 * * *", "24h", alerting),
    )
    .await
    .expect("create");
    wait_ready(&api, "pg", "True").await;
    let object = policy_until(&api, "pg", "the judgement before any backup", |o| {
        is(o, "RPOMet", "Unknown") && is(o, "Verified", "Unknown")
    })
    .await;
    assert_eq!(condition(&object, "RPOMet").unwrap().1, "NoBackupYet");

    // A successful backup: lastBackup, inventory, prune, conditions, metrics.
    let completed = Utc::now() - ChronoDuration::hours(2);
    let report = backup_report("20260106T030000Z", Outcome::Succeeded, completed);
    run_job(&client, ns, "pg-backup", "pg-backup-1", Some(&report), true).await;
    let object = policy_until(&api, "pg", "status from the backup report", |o| {
        status_of(o)["lastBackup"]["id"] == "20260106T030000Z" && is(o, "RPOMet", "True")
    })
    .await;
    let status = status_of(&object);
    assert_eq!(status["lastBackup"]["sizeBytes"], 52_428_800);
    assert_eq!(status["lastBackup"]["durationSeconds"], 75.0);
    assert_eq!(status["lastBackup"]["sha256"], "cd".repeat(32));
    assert_eq!(
        status["lastBackup"]["completionTime"],
        completed.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    assert_eq!(status["inventory"]["count"], 9);
    assert_eq!(status["inventory"]["totalBytes"], 9 * 52_428_800_u64);
    assert_eq!(status["lastPrune"]["deleted"], 1);
    assert!(is(&object, "RetentionApplied", "True"));
    let (_, _, message) = condition(&object, "RPOMet").unwrap();
    assert!(message.contains("20260106T030000Z"), "{message}");
    let metrics = controller.metrics.encode().unwrap();
    assert!(
        metrics.contains(r#"watchkeeper_backup_size_bytes{namespace="shop",name="pg"} 52428800"#),
        "{metrics}"
    );
    assert!(metrics.contains(&format!(
        r#"watchkeeper_backup_last_success_timestamp_seconds{{namespace="shop",name="pg"}} {}"#,
        completed.timestamp()
    )));
    assert!(
        metrics.contains(r#"watchkeeper_backup_duration_seconds{namespace="shop",name="pg"} 75"#)
    );

    // A successful verification.
    let verified = verify_report(
        "20260106T030000Z",
        Outcome::Succeeded,
        completed,
        Utc::now() - ChronoDuration::minutes(10),
    );
    run_job(
        &client,
        ns,
        "pg-verify",
        "pg-verify-1",
        Some(&verified),
        true,
    )
    .await;
    let object = policy_until(&api, "pg", "Verified=True", |o| is(o, "Verified", "True")).await;
    let status = status_of(&object);
    assert_eq!(status["lastVerification"]["result"], "Succeeded");
    assert_eq!(status["lastVerification"]["restoreDurationSeconds"], 31.5);
    assert_eq!(status["lastVerifiedBackup"]["id"], "20260106T030000Z");
    assert!(
        controller
            .metrics
            .encode()
            .unwrap()
            .contains(r#"watchkeeper_restore_duration_seconds{namespace="shop",name="pg"} 31.5"#)
    );
    assert!(received.lock().unwrap().is_empty(), "nothing to alert yet");

    // A failed backup (the pod never wrote a report): lastFailure and one alert.
    run_job(&client, ns, "pg-backup", "pg-backup-2", None, false).await;
    let object = policy_until(&api, "pg", "lastFailure", |o| {
        status_of(o)["lastFailure"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("pg-backup-2") && m.contains("BackoffLimitExceeded"))
    })
    .await;
    assert_eq!(status_of(&object)["lastBackup"]["id"], "20260106T030000Z");
    eventually("the backup-failed alert", || async {
        (notifications(&received, "/backup-failed", "trigger") == 1).then_some(())
    })
    .await;
    let object = policy_until(&api, "pg", "the open alert in status", |o| {
        status_of(o)["openAlerts"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["key"] == "backuppolicy/shop/pg/backup-failed")
        })
    })
    .await;
    assert_eq!(status_of(&object)["openAlerts"][0]["severity"], "P2");

    // A failed verification: Verified=False and its alert; RPO falls back to the verified one.
    let corrupt = verify_report("20260107T030000Z", Outcome::Failed, Utc::now(), Utc::now());
    run_job(
        &client,
        ns,
        "pg-verify",
        "pg-verify-2",
        Some(&corrupt),
        false,
    )
    .await;
    let object = policy_until(&api, "pg", "Verified=False", |o| is(o, "Verified", "False")).await;
    let (_, reason, message) = condition(&object, "Verified").unwrap();
    assert_eq!(reason, "VerificationFailed");
    assert!(message.contains("sha256 mismatch"), "{message}");
    let (_, _, rpo) = condition(&object, "RPOMet").unwrap();
    assert!(rpo.contains("newest verified backup"), "{rpo}");
    eventually("the verification-failed alert", || async {
        (notifications(&received, "/verification-failed", "trigger") == 1).then_some(())
    })
    .await;

    // A restarted controller sends nothing twice; a new success resolves the backup alert.
    controller.stop().await;
    let controller = spawn_controller(&client, "solo-2", Some(ns), None);
    let fresh = backup_report("20260108T030000Z", Outcome::Succeeded, Utc::now());
    run_job(&client, ns, "pg-backup", "pg-backup-3", Some(&fresh), true).await;
    policy_until(&api, "pg", "the new backup", |o| {
        status_of(o)["lastBackup"]["id"] == "20260108T030000Z"
            && status_of(o).get("lastFailure").is_none()
    })
    .await;
    eventually("the backup-failed resolve", || async {
        (notifications(&received, "/backup-failed", "resolve") == 1).then_some(())
    })
    .await;
    assert_eq!(notifications(&received, "/backup-failed", "trigger"), 1);
    assert_eq!(
        notifications(&received, "/verification-failed", "trigger"),
        1
    );
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpo_met_flips_when_the_newest_backup_ages_past_the_rpo() {
    let (_server, client) = start().await;
    let ns = "shop";
    let controller = spawn_controller(&client, "solo", Some(ns), None);
    secrets(&client, ns).await;
    let api = api_of::<BackupPolicy>(&client, ns);
    // Every minute, RPO 1m; no verification, so the newest successful backup counts.
    let mut object = policy("pg", "* * * * *", "1m", json!({}));
    object.data["spec"]
        .as_object_mut()
        .unwrap()
        .remove("verification");
    api.create(&PostParams::default(), &object)
        .await
        .expect("create");
    wait_ready(&api, "pg", "True").await;

    // Completed 52 s ago: within the RPO for about 8 more seconds.
    let completed = Utc::now() - ChronoDuration::seconds(52);
    let report = backup_report("b-recent", Outcome::Succeeded, completed);
    run_job(&client, ns, "pg-backup", "pg-backup-1", Some(&report), true).await;
    let met = policy_until(&api, "pg", "RPOMet=True", |o| is(o, "RPOMet", "True")).await;
    let (_, reason, message) = condition(&met, "RPOMet").unwrap();
    assert_eq!(reason, "WithinRPO");
    assert!(message.contains("verification is off"), "{message}");

    // Nothing else happens: the controller's own requeue notices the RPO running out.
    let missed = policy_until(&api, "pg", "RPOMet=False by itself", |o| {
        is(o, "RPOMet", "False")
    })
    .await;
    assert!(Utc::now() >= completed + ChronoDuration::seconds(60));
    assert_eq!(condition(&missed, "RPOMet").unwrap().1, "RPOMissed");

    // A fresh backup meets it again.
    let report = backup_report("b-fresh", Outcome::Succeeded, Utc::now());
    run_job(&client, ns, "pg-backup", "pg-backup-2", Some(&report), true).await;
    policy_until(&api, "pg", "RPOMet=True again", |o| is(o, "RPOMet", "True")).await;
    controller.stop().await;
}

async fn backup_now_jobs(client: &Client, namespace: &str) -> Vec<Job> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    jobs.list(&ListParams::default().labels(&format!("{POLICY_LABEL}=pg")))
        .await
        .expect("list Jobs")
        .items
        .into_iter()
        .filter(|j| {
            j.annotations()
                .contains_key("watchkeeper.dev/backup-now-token")
        })
        .collect()
}

async fn annotate(api: &Api<DynamicObject>, annotations: Value) {
    api.patch(
        "pg",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": annotations}})),
    )
    .await
    .expect("annotate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_now_runs_exactly_one_job_per_token_across_restarts() {
    let (server, client) = start().await;
    let ns = "shop";
    let mut controller = spawn_controller(&client, "solo", Some(ns), None);
    secrets(&client, ns).await;
    let api = api_of::<BackupPolicy>(&client, ns);
    api.create(
        &PostParams::default(),
        &policy("pg", "0 3 * * *", "24h", json!({"suspend": true})),
    )
    .await
    .expect("create");
    wait_ready(&api, "pg", "True").await;

    // The same token three times, with a controller restart in between.
    for round in 0..3 {
        annotate(
            &api,
            json!({"watchkeeper.dev/backup-now": "2026-01-06T10:00", "round": round.to_string()}),
        )
        .await;
        policy_until(&api, "pg", "the token recorded", |o| {
            status_of(o)["lastBackupNowToken"] == "2026-01-06T10:00"
                && o.annotations().get("round") == Some(&round.to_string())
        })
        .await;
        if round == 1 {
            controller.stop().await;
            controller = spawn_controller(&client, "solo-2", Some(ns), None);
        }
    }
    // Let the last annotation be reconciled by the new controller.
    eventually("the restarted controller to reconcile", || async {
        (controller.metrics.total_reconciles() > 0).then_some(())
    })
    .await;
    let jobs = backup_now_jobs(&client, ns).await;
    assert_eq!(
        jobs.len(),
        1,
        "{:?}",
        jobs.iter().map(|j| j.name_any()).collect::<Vec<_>>()
    );
    let job = &jobs[0];
    assert_eq!(
        job.name_any(),
        backup_now_job_name("pg", "2026-01-06T10:00")
    );
    assert_eq!(job.owner_references()[0].kind, "CronJob");
    assert_eq!(job.owner_references()[0].name, "pg-backup");
    assert_eq!(job.labels()[ROLE_LABEL], "backup");
    let creates = server
        .requests()
        .iter()
        .filter(|r| r.resource == "jobs" && r.verb == "create")
        .count();
    assert_eq!(
        creates, 1,
        "the recorded token prevents even a second attempt"
    );

    // A new token runs one more (although the policy is suspended); its report is folded.
    annotate(&api, json!({"watchkeeper.dev/backup-now": "second"})).await;
    let jobs = eventually("the second backup-now Job", || async {
        let jobs = backup_now_jobs(&client, ns).await;
        (jobs.len() == 2).then_some(jobs)
    })
    .await;
    let second = jobs
        .iter()
        .find(|j| j.name_any() == backup_now_job_name("pg", "second"))
        .expect("named after its token");
    let report = backup_report("manual-1", Outcome::Succeeded, Utc::now());
    finish_job(&client, ns, second, Some(&report), true).await;
    policy_until(&api, "pg", "the manual backup in status", |o| {
        status_of(o)["lastBackup"]["id"] == "manual-1"
            && status_of(o)["lastBackupNowToken"] == "second"
    })
    .await;
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_creates_nothing_and_names_the_field() {
    let (_server, client) = start().await;
    let ns = "shop";
    let controller = spawn_controller(&client, "solo", Some(ns), None);
    let api = api_of::<BackupPolicy>(&client, ns);
    let cron_jobs: Api<CronJob> = Api::namespaced(client.clone(), ns);
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);

    // Secrets missing: InvalidSpec naming each field; nothing created, even for backup-now.
    let mut object = policy("pg", "0 3 * * *", "24h", json!({}));
    object
        .annotations_mut()
        .insert("watchkeeper.dev/backup-now".into(), "t1".into());
    api.create(&PostParams::default(), &object)
        .await
        .expect("create");
    let (_, ready) = wait_ready(&api, "pg", "False").await;
    assert_eq!(ready.reason, "InvalidSpec");
    for field in [
        "spec.source.connection.uriSecretRef",
        "spec.destination.s3.accessKeyIdSecretRef",
        "spec.encryption.keySecretRef",
    ] {
        assert!(
            ready.message.contains(field),
            "{field} not in {}",
            ready.message
        );
    }
    assert!(
        ready.message.contains("\"pg\" does not exist"),
        "{}",
        ready.message
    );

    // An invalid spec in another policy: the time zone only validation knows.
    let mut bad = policy("tz", "0 3 * * *", "24h", json!({}));
    bad.data["spec"]["timeZone"] = json!("Mars/Olympus_Mons");
    api.create(&PostParams::default(), &bad)
        .await
        .expect("create");
    let (_, ready) = wait_ready(&api, "tz", "False").await;
    assert!(ready.message.contains("spec.timeZone"), "{}", ready.message);

    // Once the Secrets exist (they are not watched: the policy is looked at again), it works.
    let before: Vec<String> = cron_jobs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    assert!(before.is_empty(), "created for bad input: {before:?}");
    assert!(
        accounts
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(backup_now_jobs(&client, ns).await.is_empty());
    secret(&client, ns, "pg", &["uri"]).await;
    secret(&client, ns, "s3", &["id"]).await;
    secret(&client, ns, "backup-key", &["passphrase"]).await;
    let object = policy_until(&api, "pg", "only the missing key named", |o| {
        condition(o, "Ready").is_some_and(|(s, _, m)| {
            s == "False" && m.contains("has no key \"secret\"") && !m.contains("uriSecretRef")
        })
    })
    .await;
    assert!(status_of(&object).get("cronJobs").is_none());
    assert!(cron_jobs.get_opt("pg-backup").await.unwrap().is_none());
    let s3: Api<Secret> = Api::namespaced(client.clone(), ns);
    s3.patch(
        "s3",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"secret": "c2VjcmV0"}})),
    )
    .await
    .expect("add the key");
    wait_ready(&api, "pg", "True").await;
    eventually("the CronJobs and the pending backup-now Job", || async {
        let backup = cron_jobs.get_opt("pg-backup").await.ok()??;
        let jobs = backup_now_jobs(&client, ns).await;
        (jobs.len() == 1).then_some(backup)
    })
    .await;
    assert!(cron_jobs.get_opt("tz-backup").await.unwrap().is_none());
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_policy_keeps_the_status_it_reported() {
    // No schema validation, so an object that does not parse can be stored (as one written
    // before a schema change could be).
    let server = ApiServer::builder().start().await;
    let client = server.client();
    install_crds(&client).await;
    let ns = "shop";
    let controller = spawn_controller(&client, "solo", Some(ns), None);
    secrets(&client, ns).await;
    let api = api_of::<BackupPolicy>(&client, ns);
    api.create(
        &PostParams::default(),
        &policy("pg", "0 3 * * *", "24h", json!({})),
    )
    .await
    .expect("create");
    wait_ready(&api, "pg", "True").await;
    let report = backup_report("b1", Outcome::Succeeded, Utc::now());
    run_job(&client, ns, "pg-backup", "pg-backup-1", Some(&report), true).await;
    policy_until(&api, "pg", "the backup in status", |o| {
        status_of(o)["lastBackup"]["id"] == "b1"
    })
    .await;

    // Broken while no controller runs: the next one has never parsed it.
    controller.stop().await;
    api.patch(
        "pg",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"retention": {"daily": "seven"}}})),
    )
    .await
    .expect("break the object");
    let controller = spawn_controller(&client, "solo-2", Some(ns), None);
    let (object, ready) = wait_ready(&api, "pg", "False").await;
    assert!(
        ready.message.contains("spec.retention.daily"),
        "{}",
        ready.message
    );
    assert_eq!(status_of(&object)["lastBackup"]["id"], "b1");
    assert_eq!(status_of(&object)["inventory"]["count"], 9);
    controller.stop().await;
}

/// The backup CronJob's `spec.suspend` (false when unset).
async fn backup_suspended(cron_jobs: &Api<CronJob>, policy: &str) -> Option<bool> {
    let cron_job = cron_jobs
        .get_opt(&format!("{policy}-backup"))
        .await
        .ok()??;
    Some(cron_job.spec.suspend.unwrap_or(false))
}

/// A one-off MaintenanceWindow pausing backups of policies labelled `tier=db` from `start` to
/// `end` (whole seconds).
fn pause_window(name: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> DynamicObject {
    let at = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    serde_json::from_value(json!({
        "apiVersion": "watchkeeper.dev/v1alpha1",
        "kind": "MaintenanceWindow",
        "metadata": {"name": name},
        "spec": {
            "schedule": {"oneOff": {"start": at(start), "end": at(end)}},
            "selector": {"matchLabels": {"tier": "db"}},
            "effects": {"pauseBackups": true}
        }
    }))
    .expect("test object")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maintenance_window_pauses_selected_policies_and_resumes_them_at_close() {
    use chrono::SubsecRound;
    let (_server, client) = start().await;
    let ns = "shop";
    let controller = spawn_controller(&client, "solo", Some(ns), None);
    secrets(&client, ns).await;

    // The policies exist first: a window created afterwards is obeyed because the controller
    // watches MaintenanceWindows (the periodic check alone would come after it closed).
    let api = api_of::<BackupPolicy>(&client, ns);
    for (name, tier) in [("db", "db"), ("web", "web")] {
        let mut object = policy(name, "0 3 * * *", "24h", json!({}));
        object.metadata.labels = Some(BTreeMap::from([("tier".to_string(), tier.to_string())]));
        api.create(&PostParams::default(), &object)
            .await
            .expect("create policy");
    }
    let cron_jobs: Api<CronJob> = Api::namespaced(client.clone(), ns);
    for name in ["db", "web"] {
        let suspended = eventually("the backup CronJob", || async {
            backup_suspended(&cron_jobs, name).await
        })
        .await;
        assert!(!suspended, "{name} suspended before any window exists");
        policy_until(&api, name, "Paused=False", |o| is(o, "Paused", "False")).await;
    }

    let start_at = Utc::now().trunc_subsecs(0) + ChronoDuration::seconds(5);
    let end_at = start_at + ChronoDuration::seconds(6);
    let windows = api_of::<watchkeeper::api::MaintenanceWindow>(&client, ns);
    windows
        .create(
            &PostParams::default(),
            &pause_window("mw", start_at, end_at),
        )
        .await
        .expect("create window");

    // Open: the selected policy's backup and verify CronJobs are suspended.
    eventually("db suspended while the window is open", || async {
        backup_suspended(&cron_jobs, "db").await?.then_some(())
    })
    .await;
    let seen = Utc::now();
    assert!(seen >= start_at, "suspended at {seen}, before {start_at}");
    assert!(
        seen < end_at,
        "suspension seen only after the window closed"
    );
    let verify = cron_jobs.get("db-verify").await.expect("verify CronJob");
    assert_eq!(verify.spec.suspend, Some(true), "verify CronJob paused too");
    assert_eq!(
        backup_suspended(&cron_jobs, "web").await,
        Some(false),
        "a policy the selector does not pick is not paused"
    );
    let object = policy_until(&api, "db", "Paused=True", |o| is(o, "Paused", "True")).await;
    let (_, reason, message) = condition(&object, "Paused").expect("Paused condition");
    assert_eq!(reason, "MaintenanceWindow");
    assert!(message.contains("shop/mw"), "{message}");

    // Closed: resumed without any other event, then Paused=False and both Events.
    eventually("db resumed after the window closed", || async {
        (!backup_suspended(&cron_jobs, "db").await?).then_some(())
    })
    .await;
    assert!(Utc::now() >= end_at, "resumed before the window closed");
    policy_until(&api, "db", "Paused=False", |o| is(o, "Paused", "False")).await;
    let reasons = eventually("pause and resume Events", || async {
        let reasons: Vec<String> = events_for(&client, ns, "db")
            .await
            .into_iter()
            .filter_map(|e| e.reason)
            .filter(|r| r.starts_with("Backups"))
            .collect();
        (reasons.len() >= 2).then_some(reasons)
    })
    .await;
    assert!(
        reasons.contains(&"BackupsPaused".to_string()),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"BackupsResumed".to_string()),
        "{reasons:?}"
    );
    assert_eq!(backup_suspended(&cron_jobs, "web").await, Some(false));
    assert!(
        events_for(&client, ns, "web")
            .await
            .iter()
            .all(|e| e.reason.as_deref() != Some("BackupsPaused")),
        "no pause Event for the unselected policy"
    );
    controller.stop().await;
}
