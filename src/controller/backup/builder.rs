//! Builds what a BackupPolicy owns: a ServiceAccount for its Jobs, the backup CronJob, the
//! verification CronJob (when `verification` is set) and the one-off Job of a backup-now
//! request. Pure: no I/O, so the reconciler applies the results and tests inspect them.
//!
//! Every pod runs `watchkeeper agent backup|verify` in the operator's image (or
//! `spec.source.image`) with the agent configuration as JSON in `WATCHKEEPER_AGENT_CONFIG` and
//! each secret as its own environment variable from `valueFrom.secretKeyRef`; no secret value
//! is ever part of an object the controller writes.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{
    CronJob, CronJobSpec, Job, JobSpec, JobTemplateSpec, PodFailurePolicy,
    PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyRule,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec, PodTemplateSpec,
    SeccompProfile, SecretKeySelector, SecurityContext, ServiceAccount, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};
use sha2::{Digest, Sha256};

use super::agent_config::{PVC_MOUNT_PATH, SecretEnv, agent_config};
use crate::api::BackupPolicy;
use crate::backup::config::AGENT_CONFIG_ENV;
use crate::controller::cron_job::builder::{MANAGED_BY, MANAGED_BY_LABEL, TERMINATION_LOG};

/// Label naming the BackupPolicy a CronJob, Job or Pod belongs to (Jobs are found by it).
pub const POLICY_LABEL: &str = "watchkeeper.dev/backup-policy";
/// Label saying what a Job does: [`Role::Backup`] or [`Role::Verify`].
pub const ROLE_LABEL: &str = "watchkeeper.dev/backup-role";
/// Annotation on a backup-now Job holding the token it was created for.
pub const TOKEN_ANNOTATION: &str = "watchkeeper.dev/backup-now-token";
/// Name of the agent container; its termination message is the run's report.
pub const AGENT_CONTAINER: &str = "agent";
/// Jobs of each outcome the CronJobs keep (their reports are folded into status long before).
pub const HISTORY_LIMIT: i32 = 3;
/// Retries of a failed agent pod within one Job (a fresh pod, for transient errors).
pub const BACKOFF_LIMIT: i32 = 1;
/// Agent exit codes a second pod cannot fix: 1 (configuration invalid), 2 (command line) and
/// 4 (backup stored, pruning failed: a retry would take another backup). The Job fails at
/// once; only 3 (the run failed, maybe transiently) and crashes are retried.
pub const NOT_RETRIED_EXIT_CODES: [i32; 3] = [1, 2, 4];
/// Longest CronJob name: Kubernetes appends 11 characters for its Jobs, within 63.
const MAX_CRON_JOB_NAME: usize = 52;

/// What a Job of the policy does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// `watchkeeper agent backup`.
    Backup,
    /// `watchkeeper agent verify`.
    Verify,
}

impl Role {
    /// The [`ROLE_LABEL`] value and the agent sub-command.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Backup => "backup",
            Self::Verify => "verify",
        }
    }

    /// The role named by a [`ROLE_LABEL`] value.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "backup" => Some(Self::Backup),
            "verify" => Some(Self::Verify),
            _ => None,
        }
    }
}

/// Why the owned objects cannot be built (validation normally catches these first).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The object has no namespace or uid (it was not read from the API server).
    #[error("BackupPolicy {name}: metadata.{field} is missing; only stored objects own CronJobs")]
    Metadata { name: String, field: &'static str },
    /// A spec field cannot be turned into the agent's configuration.
    #[error("BackupPolicy {name}: {source}")]
    Config {
        name: String,
        #[source]
        source: super::agent_config::ConfigError,
    },
}

impl BuildError {
    /// The spec field to name in `InvalidSpec`, and the message.
    pub fn field_error(&self) -> crate::api::FieldError {
        match self {
            Self::Metadata { field, .. } => {
                crate::api::FieldError::new(format!("metadata.{field}"), "missing")
            }
            Self::Config { source, .. } => {
                crate::api::FieldError::new(source.field.clone(), source.message.clone())
            }
        }
    }
}

/// Everything a valid policy owns.
#[derive(Clone, Debug)]
pub struct Owned {
    /// The ServiceAccount its pods run as (annotate it for cloud workload identity).
    pub service_account: ServiceAccount,
    /// The backup CronJob.
    pub backup: CronJob,
    /// The verification CronJob, when `spec.verification` is set.
    pub verify: Option<CronJob>,
    /// The secret variables the pods read, with the spec fields naming them.
    pub secrets: Vec<SecretEnv>,
}

/// Names and labels shared by the owned objects.
struct Common {
    namespace: String,
    policy: String,
    owner: OwnerReference,
}

/// Builds every object `policy` owns, running the agent in `image` unless the spec names one.
pub fn build(policy: &BackupPolicy, image: &str) -> Result<Owned, BuildError> {
    let policy_name = policy.name_any();
    let missing = |field| BuildError::Metadata {
        name: policy_name.clone(),
        field,
    };
    let namespace = policy.namespace().ok_or_else(|| missing("namespace"))?;
    let owner = policy
        .controller_owner_ref(&())
        .ok_or_else(|| missing("uid"))?;
    let common = Common {
        namespace: namespace.clone(),
        policy: policy_name.clone(),
        owner,
    };
    let (config, secrets) = agent_config(&format!("{namespace}/{policy_name}"), &policy.spec)
        .map_err(|source| BuildError::Config {
            name: policy_name.clone(),
            source,
        })?;
    let spec = &policy.spec;
    let image = spec.source.image.as_deref().unwrap_or(image);
    let config_json = config.to_json();
    let pod = |role: Role, deadline: Option<i64>| {
        job_template(&common, role, image, &config_json, &secrets, spec, deadline)
    };
    let backup = cron_job(
        &common,
        Role::Backup,
        &spec.schedule,
        &spec.time_zone,
        spec.suspend,
        pod(Role::Backup, None),
    );
    let verify = spec.verification.as_ref().map(|v| {
        // The agent enforces the timeout itself; the deadline is the backstop.
        let deadline = v
            .timeout
            .as_ref()
            .and_then(|t| t.parse().ok())
            .map(|t| i64::try_from(t.as_secs().saturating_mul(2)).unwrap_or(i64::MAX));
        cron_job(
            &common,
            Role::Verify,
            &v.schedule,
            v.time_zone.as_deref().unwrap_or(&spec.time_zone),
            spec.suspend,
            pod(Role::Verify, deadline),
        )
    });
    Ok(Owned {
        service_account: service_account(&common),
        backup,
        verify,
        secrets,
    })
}

/// `<policy>-<suffix>`, shortened with a hash of the full name when longer than `max`.
pub fn child_name(policy: &str, suffix: &str, max: usize) -> String {
    let full = format!("{policy}-{suffix}");
    if full.len() <= max {
        return full;
    }
    let hash = short_hash(&full);
    let keep = max.saturating_sub(suffix.len() + hash.len() + 2);
    let stem: String = policy.chars().take(keep).collect();
    format!("{}-{hash}-{suffix}", stem.trim_end_matches(['-', '.']))
}

/// First 10 hex digits of the SHA-256 of `text`.
fn short_hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))[..10].to_string()
}

/// Name of the CronJob of `role`.
pub fn cron_job_name(policy: &str, role: Role) -> String {
    child_name(policy, role.as_str(), MAX_CRON_JOB_NAME)
}

/// Name of the ServiceAccount the policy's pods run as.
pub fn service_account_name(policy: &str) -> String {
    child_name(policy, "backup-agent", 63)
}

/// Name of the Job a backup-now `token` runs: the same token always gives the same name, so a
/// retried or repeated request cannot create a second Job.
pub fn backup_now_job_name(policy: &str, token: &str) -> String {
    child_name(policy, &format!("now-{}", short_hash(token)), 63)
}

/// Labels identifying the policy and, for Jobs and Pods, the role.
pub fn labels(policy: &str, role: Option<Role>) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
        (POLICY_LABEL.to_string(), policy.to_string()),
    ]);
    if let Some(role) = role {
        labels.insert(ROLE_LABEL.to_string(), role.as_str().to_string());
    }
    labels
}

fn meta(common: &Common, name: String, role: Option<Role>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(common.namespace.clone()),
        labels: Some(labels(&common.policy, role)),
        owner_references: Some(vec![common.owner.clone()]),
        ..ObjectMeta::default()
    }
}

fn service_account(common: &Common) -> ServiceAccount {
    ServiceAccount {
        metadata: meta(common, service_account_name(&common.policy), None),
        // The agent never calls the Kubernetes API.
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}

fn cron_job(
    common: &Common,
    role: Role,
    schedule: &str,
    time_zone: &str,
    suspend: bool,
    job_template: JobTemplateSpec,
) -> CronJob {
    CronJob {
        metadata: meta(common, cron_job_name(&common.policy, role), Some(role)),
        spec: CronJobSpec {
            schedule: schedule.to_string(),
            time_zone: Some(time_zone.to_string()),
            // Two dumps (or restores) of one database at once only add load.
            concurrency_policy: Some("Forbid".to_string()),
            successful_jobs_history_limit: Some(HISTORY_LIMIT),
            failed_jobs_history_limit: Some(HISTORY_LIMIT),
            suspend: Some(suspend),
            job_template,
            ..CronJobSpec::default()
        },
        status: None,
    }
}

fn secret_var(secret: &SecretEnv) -> EnvVar {
    EnvVar {
        name: secret.env.clone(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.secret.name.clone(),
                key: secret.secret.key.clone(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
    }
}

fn job_template(
    common: &Common,
    role: Role,
    image: &str,
    config_json: &str,
    secrets: &[SecretEnv],
    spec: &crate::api::backup_policy::BackupPolicySpec,
    active_deadline: Option<i64>,
) -> JobTemplateSpec {
    let labels = labels(&common.policy, Some(role));
    let mut env = vec![EnvVar {
        name: AGENT_CONFIG_ENV.to_string(),
        value: Some(config_json.to_string()),
        value_from: None,
    }];
    env.extend(secrets.iter().map(secret_var));
    let mut volumes = vec![Volume {
        // A read-only root file system; the agent writes temporary files (CA bundles) here.
        name: "tmp".to_string(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }];
    let mut mounts = vec![VolumeMount {
        name: "tmp".to_string(),
        mount_path: "/tmp".to_string(),
        ..VolumeMount::default()
    }];
    if let Some(pvc) = &spec.destination.pvc {
        volumes.push(Volume {
            name: "backups".to_string(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: pvc.claim_name.clone(),
                read_only: Some(role == Role::Verify),
            }),
            ..Volume::default()
        });
        mounts.push(VolumeMount {
            name: "backups".to_string(),
            mount_path: PVC_MOUNT_PATH.to_string(),
            read_only: Some(role == Role::Verify),
            ..VolumeMount::default()
        });
    }
    let container = Container {
        name: AGENT_CONTAINER.to_string(),
        image: Some(image.to_string()),
        args: Some(vec!["agent".to_string(), role.as_str().to_string()]),
        env: Some(env),
        volume_mounts: Some(mounts),
        termination_message_path: Some(TERMINATION_LOG.to_string()),
        // If the agent dies before writing its report, the end of its log is the message.
        termination_message_policy: Some("FallbackToLogsOnError".to_string()),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_string()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    };
    JobTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels.clone()),
            ..ObjectMeta::default()
        }),
        spec: Some(JobSpec {
            backoff_limit: Some(BACKOFF_LIMIT),
            pod_failure_policy: Some(PodFailurePolicy {
                rules: vec![PodFailurePolicyRule {
                    action: "FailJob".to_string(),
                    on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                        container_name: Some(AGENT_CONTAINER.to_string()),
                        operator: "In".to_string(),
                        values: NOT_RETRIED_EXIT_CODES.to_vec(),
                    }),
                    on_pod_conditions: None,
                }],
            }),
            active_deadline_seconds: active_deadline,
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    restart_policy: Some("Never".to_string()),
                    service_account_name: Some(service_account_name(&common.policy)),
                    automount_service_account_token: Some(false),
                    volumes: Some(volumes),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".to_string(),
                            ..SeccompProfile::default()
                        }),
                        ..PodSecurityContext::default()
                    }),
                    ..PodSpec::default()
                }),
            },
            ..JobSpec::default()
        }),
    }
}

/// The Job a backup-now `token` runs: the backup CronJob's template, owned by that CronJob
/// (as `kubectl create job --from=cronjob/…` does, so `Forbid` and the history limits cover
/// it), labelled like its scheduled Jobs and annotated with the token.
pub fn backup_now_job(
    policy: &str,
    backup_cron_job: &CronJob,
    token: &str,
) -> Result<Job, BuildError> {
    let missing = |field| BuildError::Metadata {
        name: policy.to_string(),
        field,
    };
    let owner = backup_cron_job
        .controller_owner_ref(&())
        .ok_or_else(|| missing("uid"))?;
    let template = backup_cron_job.spec.job_template.clone();
    let mut job_labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    job_labels.extend(labels(policy, Some(Role::Backup)));
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(backup_now_job_name(policy, token)),
            namespace: backup_cron_job.namespace(),
            labels: Some(job_labels),
            annotations: Some(BTreeMap::from([(
                TOKEN_ANNOTATION.to_string(),
                token.to_string(),
            )])),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: template.spec,
        status: None,
    })
}

#[cfg(test)]
pub(crate) mod tests;
