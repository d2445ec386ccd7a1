//! Tests of the BackupPolicy builders: owned objects, agent pods, secrets only by reference,
//! deterministic backup-now Jobs.

use k8s_openapi::api::core::v1::{Container, PodSpec};

use super::*;
use crate::backup::config::{AgentConfig, DestinationConfig};

pub(crate) const POLICY: &str = r#"
apiVersion: watchkeeper.dev/v1alpha1
kind: BackupPolicy
metadata:
  name: postgres-daily
  namespace: shop
  uid: 0b1c2d3e-0000-4000-8000-0000000000bb
spec:
  schedule: "0 3 * * *"
  timeZone: America/New_York
  source:
    connection:
      host: db.shop.svc
      database: shop
      user: backup
      passwordSecretRef: {name: pg, key: password}
      sslMode: VerifyFull
      caCertSecretRef: {name: pg, key: ca.crt}
    pgDump: {compressionLevel: 6, jobs: 2, excludeTables: [cache]}
  destination:
    s3:
      bucket: shop-backups
      prefix: postgres/
      endpoint: http://minio.storage:9000
      forcePathStyle: true
      accessKeyIdSecretRef: {name: s3, key: id}
      secretAccessKeySecretRef: {name: s3, key: secret}
  encryption:
    keySecretRef: {name: backup-key, key: passphrase}
  retention: {daily: 7, weekly: 4, monthly: 3, minAge: 24h}
  objectives: {rpo: 24h, rto: 1h}
  verification:
    schedule: "0 5 * * 0"
    timeZone: UTC
    scratchDatabase:
      connection:
        uriSecretRef: {name: staging, key: uri}
    sqlChecks:
      - {name: users, query: "SELECT count(*) > 0 FROM users", expect: "t"}
    timeout: 30m
"#;

const IMAGE: &str = "ghcr.io/example/watchkeeper:0.2.0";

pub(crate) fn policy(yaml: &str) -> BackupPolicy {
    serde_yaml::from_str(yaml).unwrap()
}

fn pod(cron_job: &CronJob) -> &PodSpec {
    cron_job
        .spec
        .job_template
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
}

fn agent(cron_job: &CronJob) -> &Container {
    &pod(cron_job).containers[0]
}

fn env_value<'a>(container: &'a Container, name: &str) -> Option<&'a EnvVar> {
    container.env.as_ref()?.iter().find(|e| e.name == name)
}

fn config_of(container: &Container) -> AgentConfig {
    let json = env_value(container, AGENT_CONFIG_ENV)
        .and_then(|e| e.value.as_deref())
        .unwrap();
    AgentConfig::from_json(json).unwrap()
}

#[test]
fn owned_objects_carry_owner_labels_and_names() {
    let owned = build(&policy(POLICY), IMAGE).unwrap();
    let verify = owned.verify.as_ref().unwrap();
    for (meta, name, role) in [
        (
            &owned.backup.metadata,
            "postgres-daily-backup",
            Some("backup"),
        ),
        (&verify.metadata, "postgres-daily-verify", Some("verify")),
        (
            &owned.service_account.metadata,
            "postgres-daily-backup-agent",
            None,
        ),
    ] {
        assert_eq!(meta.name.as_deref(), Some(name));
        assert_eq!(meta.namespace.as_deref(), Some("shop"));
        let owner = &meta.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("BackupPolicy", "postgres-daily", Some(true))
        );
        assert_eq!(owner.uid, "0b1c2d3e-0000-4000-8000-0000000000bb");
        let labels = meta.labels.as_ref().unwrap();
        assert_eq!(labels[POLICY_LABEL], "postgres-daily");
        assert_eq!(labels[MANAGED_BY_LABEL], MANAGED_BY);
        assert_eq!(labels.get(ROLE_LABEL).map(String::as_str), role);
    }
    assert_eq!(
        owned.service_account.automount_service_account_token,
        Some(false)
    );
}

#[test]
fn cron_jobs_follow_the_schedules() {
    let owned = build(&policy(POLICY), IMAGE).unwrap();
    let backup = &owned.backup.spec;
    assert_eq!(backup.schedule, "0 3 * * *");
    assert_eq!(backup.time_zone.as_deref(), Some("America/New_York"));
    assert_eq!(backup.concurrency_policy.as_deref(), Some("Forbid"));
    assert_eq!(backup.successful_jobs_history_limit, Some(HISTORY_LIMIT));
    assert_eq!(backup.failed_jobs_history_limit, Some(HISTORY_LIMIT));
    assert_eq!(backup.suspend, Some(false));
    let verify = &owned.verify.as_ref().unwrap().spec;
    assert_eq!(verify.schedule, "0 5 * * 0");
    assert_eq!(verify.time_zone.as_deref(), Some("UTC"));
    assert_eq!(verify.concurrency_policy.as_deref(), Some("Forbid"));
    // The verification deadline backs up its 30m timeout.
    assert_eq!(
        verify
            .job_template
            .spec
            .as_ref()
            .unwrap()
            .active_deadline_seconds,
        Some(3600)
    );
    // Jobs and Pods are labelled with policy and role, so they can be found.
    let template = &owned.verify.as_ref().unwrap().spec.job_template;
    let job_labels = template.metadata.as_ref().unwrap().labels.as_ref().unwrap();
    assert_eq!(job_labels[ROLE_LABEL], "verify");
    let pod_labels = template
        .spec
        .as_ref()
        .unwrap()
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .as_ref()
        .unwrap();
    assert_eq!(pod_labels[POLICY_LABEL], "postgres-daily");
}

#[test]
fn suspend_and_no_verification() {
    let mut p = policy(&POLICY.replace("  objectives:", "  suspend: true\n  objectives:"));
    p.spec.verification = None;
    let owned = build(&p, IMAGE).unwrap();
    assert!(owned.verify.is_none());
    assert_eq!(owned.backup.spec.suspend, Some(true));
    assert!(config_of(agent(&owned.backup)).verification.is_none());
}

#[test]
fn agent_pod_runs_the_operator_image_with_secrets_only_by_reference() {
    let owned = build(&policy(POLICY), IMAGE).unwrap();
    for (cron_job, command) in [
        (&owned.backup, "backup"),
        (owned.verify.as_ref().unwrap(), "verify"),
    ] {
        let job = cron_job.spec.job_template.spec.as_ref().unwrap();
        assert_eq!(job.backoff_limit, Some(BACKOFF_LIMIT));
        let rule = &job.pod_failure_policy.as_ref().unwrap().rules[0];
        assert_eq!(rule.action, "FailJob");
        let codes = rule.on_exit_codes.as_ref().unwrap();
        assert_eq!(
            (codes.operator.as_str(), codes.values.as_slice()),
            ("In", &[1, 2, 4][..])
        );
        let pod = pod(cron_job);
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        assert_eq!(
            pod.service_account_name.as_deref(),
            Some("postgres-daily-backup-agent")
        );
        let container = agent(cron_job);
        assert_eq!(container.name, AGENT_CONTAINER);
        assert_eq!(container.image.as_deref(), Some(IMAGE));
        assert_eq!(container.args.as_deref().unwrap(), ["agent", command]);
        assert_eq!(
            container.termination_message_path.as_deref(),
            Some(TERMINATION_LOG)
        );
        let env = container.env.as_ref().unwrap();
        // Only the config has a literal value; every other variable is a secretKeyRef.
        for var in env {
            if var.name == AGENT_CONFIG_ENV {
                assert!(var.value_from.is_none());
            } else {
                assert!(var.value.is_none(), "{} has a literal value", var.name);
                assert!(var.value_from.as_ref().unwrap().secret_key_ref.is_some());
            }
        }
        let password = env_value(container, "WATCHKEEPER_SOURCE_PASSWORD").unwrap();
        let selector = password
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap();
        assert_eq!(
            (selector.name.as_str(), selector.key.as_str()),
            ("pg", "password")
        );
        assert_eq!(selector.optional, Some(false));
        let names: Vec<&str> = env.iter().map(|e| e.name.as_str()).collect();
        for wanted in [
            "WATCHKEEPER_SOURCE_CA_CERT",
            "WATCHKEEPER_S3_ACCESS_KEY_ID",
            "WATCHKEEPER_S3_SECRET_ACCESS_KEY",
            "WATCHKEEPER_ENCRYPTION_PASSPHRASE",
            "WATCHKEEPER_SCRATCH_URI",
        ] {
            assert!(names.contains(&wanted), "{wanted} missing from {names:?}");
        }
    }
}

#[test]
fn agent_config_mirrors_the_spec_and_names_every_secret_variable() {
    let owned = build(&policy(POLICY), IMAGE).unwrap();
    let container = agent(&owned.backup);
    let config = config_of(container);
    assert_eq!(config.policy, "shop/postgres-daily");
    assert_eq!(config.time_zone, "America/New_York");
    let c = &config.source.connection;
    assert_eq!(c.host.as_deref(), Some("db.shop.svc"));
    assert_eq!(c.sslmode.as_deref(), Some("verify-full"));
    assert_eq!(
        c.password_env.as_deref(),
        Some("WATCHKEEPER_SOURCE_PASSWORD")
    );
    assert_eq!(config.source.dump.compression_level, Some(6));
    assert_eq!(config.source.dump.exclude_tables, ["cache"]);
    match &config.destination {
        DestinationConfig::S3 {
            bucket,
            prefix,
            force_path_style,
            access_key_id_env,
            ..
        } => {
            assert_eq!(bucket, "shop-backups");
            assert_eq!(prefix, "postgres/");
            assert!(force_path_style);
            assert_eq!(
                access_key_id_env.as_deref(),
                Some("WATCHKEEPER_S3_ACCESS_KEY_ID")
            );
        }
        other => panic!("not S3: {other:?}"),
    }
    let retention = config.retention.as_ref().unwrap();
    assert_eq!(
        (retention.daily, retention.weekly, retention.monthly),
        (7, 4, 3)
    );
    assert_eq!(retention.min_age_seconds, 86_400);
    let verification = config.verification.as_ref().unwrap();
    assert_eq!(verification.rto_seconds, Some(3600));
    assert_eq!(verification.timeout_seconds, Some(1800));
    assert_eq!(
        verification
            .scratch_connection
            .as_ref()
            .unwrap()
            .uri_env
            .as_deref(),
        Some("WATCHKEEPER_SCRATCH_URI")
    );
    // Every variable the config names is in the pod, and every secret field is listed with
    // the spec field that asked for it.
    let names: Vec<&str> = container
        .env
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    for secret in &owned.secrets {
        assert!(names.contains(&secret.env.as_str()));
        assert!(secret.field.starts_with("spec."), "{}", secret.field);
    }
    let fields: Vec<&str> = owned.secrets.iter().map(|s| s.field.as_str()).collect();
    assert!(fields.contains(&"spec.source.connection.passwordSecretRef"));
    assert!(fields.contains(&"spec.destination.s3.secretAccessKeySecretRef"));
    assert!(fields.contains(&"spec.verification.scratchDatabase.connection.uriSecretRef"));
}

#[test]
fn pvc_destination_is_mounted_and_image_can_be_overridden() {
    let yaml = POLICY.replace(
        "    s3:\n      bucket: shop-backups\n      prefix: postgres/\n      endpoint: http://minio.storage:9000\n      forcePathStyle: true\n      accessKeyIdSecretRef: {name: s3, key: id}\n      secretAccessKeySecretRef: {name: s3, key: secret}\n",
        "    pvc: {claimName: backups, path: pg/shop}\n",
    );
    let mut p = policy(&yaml);
    p.spec.source.image = Some("registry.example.com/wk-pg17:1".into());
    let owned = build(&p, IMAGE).unwrap();
    let container = agent(&owned.backup);
    assert_eq!(
        container.image.as_deref(),
        Some("registry.example.com/wk-pg17:1")
    );
    let mount = container
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.mount_path == PVC_MOUNT_PATH)
        .unwrap();
    assert_ne!(mount.read_only, Some(true));
    let volume = pod(&owned.backup)
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == mount.name)
        .unwrap();
    assert_eq!(
        volume.persistent_volume_claim.as_ref().unwrap().claim_name,
        "backups"
    );
    match config_of(container).destination {
        DestinationConfig::Filesystem { path, prefix } => {
            assert_eq!(
                (path.as_str(), prefix.as_str()),
                (PVC_MOUNT_PATH, "pg/shop")
            );
        }
        other => panic!("not a file system: {other:?}"),
    }
    // Verification only reads.
    let verify = agent(owned.verify.as_ref().unwrap());
    assert!(
        verify
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .any(|m| m.mount_path == PVC_MOUNT_PATH && m.read_only == Some(true))
    );
}

#[test]
fn long_names_are_shortened_deterministically() {
    let long = "a".repeat(60);
    let name = cron_job_name(&long, Role::Backup);
    assert!(name.len() <= 52, "{name}");
    assert!(name.ends_with("-backup"));
    assert_eq!(name, cron_job_name(&long, Role::Backup));
    assert_ne!(name, cron_job_name(&"a".repeat(61), Role::Backup));
    assert_eq!(cron_job_name("db", Role::Verify), "db-verify");
}

#[test]
fn backup_now_job_is_deterministic_per_token_and_owned_by_the_cron_job() {
    let owned = build(&policy(POLICY), IMAGE).unwrap();
    let mut cron_job = owned.backup.clone();
    assert!(
        backup_now_job("postgres-daily", &cron_job, "t1").is_err(),
        "a CronJob without uid cannot own the Job"
    );
    cron_job.metadata.uid = Some("cj-uid".into());
    let job = backup_now_job("postgres-daily", &cron_job, "2026-01-06T10:00").unwrap();
    let again = backup_now_job("postgres-daily", &cron_job, "2026-01-06T10:00").unwrap();
    let other = backup_now_job("postgres-daily", &cron_job, "2026-01-06T11:00").unwrap();
    assert_eq!(job.metadata.name, again.metadata.name);
    assert_ne!(job.metadata.name, other.metadata.name);
    let name = job.metadata.name.clone().unwrap();
    assert!(
        name.starts_with("postgres-daily-now-") && name.len() <= 63,
        "{name}"
    );
    let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("CronJob", "cj-uid")
    );
    assert_eq!(
        job.metadata.annotations.as_ref().unwrap()[TOKEN_ANNOTATION],
        "2026-01-06T10:00"
    );
    assert_eq!(job.metadata.labels.as_ref().unwrap()[ROLE_LABEL], "backup");
    // The same pod as the scheduled backups.
    assert_eq!(job.spec, cron_job.spec.job_template.spec);
}

#[test]
fn unstored_policies_are_refused() {
    let mut p = policy(POLICY);
    p.metadata.uid = None;
    let error = build(&p, IMAGE).unwrap_err();
    assert!(error.to_string().contains("metadata.uid"), "{error}");
}
