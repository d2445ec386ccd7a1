//! In-memory views of the CronJobs and Jobs watchkeeper owns (reflector stores fed by watches),
//! so a reconcile reads them without a request: the Jobs of a CronJobSpec, and whether its
//! CronJob is still exactly as last applied (then the apply is skipped).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tokio_util::sync::CancellationToken;

use super::builder::{CRON_JOB_SPEC_LABEL, MANAGED_BY, MANAGED_BY_LABEL};

/// The stores and whether each has finished its initial list.
pub struct Children {
    jobs: Store<Job>,
    cron_jobs: Store<CronJob>,
    jobs_ready: Arc<AtomicBool>,
    cron_jobs_ready: Arc<AtomicBool>,
}

impl Children {
    /// Starts watching the labelled Jobs and the managed CronJobs of `namespace` (all when
    /// `None`) until `stop`.
    pub fn start(client: &Client, namespace: Option<&str>, stop: &CancellationToken) -> Self {
        let (jobs_api, cron_jobs_api): (Api<Job>, Api<CronJob>) = match namespace {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            ),
            None => (Api::all(client.clone()), Api::all(client.clone())),
        };
        let managed = format!("{MANAGED_BY_LABEL}={MANAGED_BY}");
        let (jobs, jobs_ready) = spawn(
            jobs_api,
            watcher::Config::default().labels(CRON_JOB_SPEC_LABEL),
            stop,
        );
        let (cron_jobs, cron_jobs_ready) = spawn(
            cron_jobs_api,
            watcher::Config::default().labels(&managed),
            stop,
        );
        Self {
            jobs,
            cron_jobs,
            jobs_ready,
            cron_jobs_ready,
        }
    }

    /// The Jobs labelled with CronJobSpec `name` in `namespace`; `None` until the store has
    /// its initial list.
    pub fn jobs_of(&self, namespace: &str, name: &str) -> Option<Vec<Job>> {
        if !self.jobs_ready.load(Ordering::Acquire) {
            return None;
        }
        Some(
            self.jobs
                .state_filter(|job| {
                    job.namespace().as_deref() == Some(namespace)
                        && job.labels().get(CRON_JOB_SPEC_LABEL).map(String::as_str) == Some(name)
                })
                .into_iter()
                .map(|job| (*job).clone())
                .collect(),
        )
    }

    /// The CronJob `namespace/name` as last seen; `None` when unknown (not listed yet, or
    /// absent).
    pub fn cron_job(&self, namespace: &str, name: &str) -> Option<Arc<CronJob>> {
        if !self.cron_jobs_ready.load(Ordering::Acquire) {
            return None;
        }
        self.cron_jobs.get(&ObjectRef::new(name).within(namespace))
    }
}

fn spawn<K>(
    api: Api<K>,
    config: watcher::Config,
    stop: &CancellationToken,
) -> (Store<K>, Arc<AtomicBool>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let ready = Arc::new(AtomicBool::new(false));
    let flag = ready.clone();
    let stop = stop.clone();
    let stream = reflector::reflector(writer, watcher(api, config).default_backoff());
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                event = stream.next() => match event {
                    Some(Ok(watcher::Event::InitDone)) => flag.store(true, Ordering::Release),
                    Some(Ok(_)) => {}
                    Some(Err(error)) => tracing::debug!(%error, "child watch failed; retrying"),
                    None => return,
                },
            }
        }
    });
    (reader, ready)
}
