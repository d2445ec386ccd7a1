//! Run now: the `watchkeeper.dev/run-now: <token>` annotation creates one Job from the owned
//! CronJob's `jobTemplate` per distinct token.
//!
//! Exactly once, across retries and restarts, without a lock: the Job's name is derived from the
//! token (a hash), and it is created only if absent — a 409 `AlreadyExists` means an earlier
//! attempt (this process before a crash, or the previous leader) already created it. The token
//! is then recorded in `status.lastRunNowToken`, so a token equal to it creates nothing even
//! after the Job itself was removed by the history limits.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::{Client, Resource, ResourceExt};
use sha2::{Digest, Sha256};

use super::Error;

/// Annotation on a run-now Job holding the token that asked for it.
pub const TOKEN_ANNOTATION: &str = "watchkeeper.dev/run-now-token";
/// What `kubectl create job --from=cronjob/…` puts on a manual Job; set too, so tools that know
/// it recognise run-now Jobs.
pub const INSTANTIATE_ANNOTATION: &str = "cronjob.kubernetes.io/instantiate";

/// Longest Job name: Job names end up in the `job-name` label of their Pods (63 characters).
const MAX_JOB_NAME: usize = 63;
/// Hex digits of the token hash in the Job name.
const HASH_DIGITS: usize = 10;

/// The Job name for `token`: `<cronjob>-now-<hash>`, the CronJob name shortened so the result
/// fits in 63 characters. Same inputs, same name.
pub fn job_name(cron_job: &str, token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let hash = &hex::encode(digest)[..HASH_DIGITS];
    let room = MAX_JOB_NAME - "-now-".len() - HASH_DIGITS;
    let prefix: String = cron_job.chars().take(room).collect();
    format!("{}-now-{hash}", prefix.trim_end_matches(['-', '.']))
}

/// The Job `token` asks for: the CronJob's job template, owned by the CronJob (so history
/// limits and deletion treat it like a scheduled run), annotated with the token.
pub fn build_job(cron_job: &CronJob, token: &str) -> Option<Job> {
    let template = cron_job.spec.job_template.clone();
    let owner = cron_job.controller_owner_ref(&())?;
    let template_meta = template.metadata.unwrap_or_default();
    let mut annotations: BTreeMap<String, String> = template_meta.annotations.unwrap_or_default();
    annotations.insert(TOKEN_ANNOTATION.to_string(), token.to_string());
    annotations.insert(INSTANTIATE_ANNOTATION.to_string(), "manual".to_string());
    Some(Job {
        metadata: ObjectMeta {
            name: Some(job_name(&cron_job.name_any(), token)),
            namespace: cron_job.namespace(),
            labels: template_meta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: template.spec,
        status: None,
    })
}

/// Whether a run-now request created a Job or found it already there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Created {
    /// This call created the Job.
    New,
    /// The Job existed (an earlier attempt created it).
    Existing,
}

/// Creates the Job for `token` unless it exists.
pub async fn create(client: &Client, cron_job: &CronJob, token: &str) -> Result<Created, Error> {
    let namespace = cron_job.namespace().unwrap_or_default();
    let job = build_job(cron_job, token).ok_or_else(|| Error::RunNow {
        namespace: namespace.clone(),
        name: cron_job.name_any(),
        message: "the CronJob has no job template or uid".to_string(),
    })?;
    let api: Api<Job> = Api::namespaced(client.clone(), &namespace);
    match api.create(&PostParams::default(), &job).await {
        Ok(_) => Ok(Created::New),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(Created::Existing),
        Err(source) => Err(Error::RunNow {
            namespace,
            name: job.name_any(),
            message: source.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{CronJobSpec, JobSpec, JobTemplateSpec};

    fn cron_job() -> CronJob {
        CronJob {
            metadata: ObjectMeta {
                name: Some("web-crawl".into()),
                namespace: Some("ops".into()),
                uid: Some("uid-1".into()),
                ..ObjectMeta::default()
            },
            spec: CronJobSpec {
                schedule: "0 2 * * *".into(),
                job_template: JobTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(BTreeMap::from([("a".into(), "b".into())])),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(JobSpec {
                        backoff_limit: Some(0),
                        ..JobSpec::default()
                    }),
                },
                ..CronJobSpec::default()
            },
            status: None,
        }
    }

    #[test]
    fn job_names_are_deterministic_distinct_and_short() {
        let a = job_name("web-crawl", "t1");
        assert_eq!(a, job_name("web-crawl", "t1"));
        assert_ne!(a, job_name("web-crawl", "t2"));
        assert!(a.starts_with("web-crawl-now-"), "{a}");
        let long = job_name(&"x".repeat(80), "t1");
        assert!(long.len() <= MAX_JOB_NAME, "{long}");
        let dashed = job_name(&format!("{}-y", "a".repeat(47)), "t");
        assert!(!dashed.contains("--"), "{dashed}");
    }

    #[test]
    fn the_job_is_the_template_owned_by_the_cron_job_with_the_token() {
        let job = build_job(&cron_job(), "ticket-42").unwrap();
        assert_eq!(job.metadata.name, Some(job_name("web-crawl", "ticket-42")));
        assert_eq!(job.metadata.namespace.as_deref(), Some("ops"));
        let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("CronJob", "uid-1")
        );
        assert_eq!(owner.controller, Some(true));
        let annotations = job.metadata.annotations.unwrap();
        assert_eq!(annotations[TOKEN_ANNOTATION], "ticket-42");
        assert_eq!(annotations[INSTANTIATE_ANNOTATION], "manual");
        assert_eq!(job.metadata.labels.unwrap()["a"], "b");
        assert_eq!(job.spec.unwrap().backoff_limit, Some(0));
    }

    #[test]
    fn a_cron_job_without_uid_gives_no_job() {
        let mut cj = cron_job();
        cj.metadata.uid = None;
        assert!(build_job(&cj, "t").is_none());
    }
}
