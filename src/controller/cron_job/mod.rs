//! CronJobSpecs in the cluster: each valid CronJobSpec is reconciled into its owned `batch/v1`
//! CronJob by server-side apply ([`builder`], [`apply`]), run-now annotations become Jobs
//! ([`run_now`]), and the CronJob's Jobs are watched against the schedule ([`runs`],
//! [`watch`]) with alerts and metrics.
//!
//! The generic reconcile (`controller::reconcile`) calls [`CronJobs::reconcile`] after
//! validation; it returns extra validation errors (a missing Secret), extra conditions
//! (`Healthy`) and when to look again. One writer per status: every CronJobSpec status write
//! goes through [`CronJobs::write`], which sends the core's conditions together with the fields
//! computed here, so neither write drops the other's fields under server-side apply.
//!
//! Deletion needs no finalizer: the CronJob carries a controller owner reference, so the
//! garbage collector deletes it (and its Jobs, which the CronJob owns) after the CronJobSpec.
//! In-process state of deleted objects is forgotten by [`CronJobs::sweep`].

pub mod apply;
pub mod builder;
pub mod children;
pub mod run_now;
pub mod runs;
pub mod watch;

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::ApiResource;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::conditions::DesiredCondition;
use super::context::FIELD_MANAGER;
use crate::api::cron_job_spec::{CronJobSpecStatus, RUN_NOW_ANNOTATION};
use crate::api::{Condition, CronJobSpec, FieldError};

/// Image of the HTTP trigger container when none is configured: the operator's own image at
/// this version.
pub const DEFAULT_AGENT_IMAGE: &str = concat!(
    "ghcr.io/watchkeeper/watchkeeper:",
    env!("CARGO_PKG_VERSION")
);

/// Why a CronJobSpec could not be reconciled (retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a referenced Secret failed (other than "not found").
    #[error("CronJobSpec in {namespace}: reading Secret {name} failed: {source}")]
    ReadSecret {
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    /// The server-side apply of the CronJob was refused or did not arrive.
    #[error("CronJobSpec {namespace}/{name}: applying the CronJob failed: {source}")]
    ApplyCronJob {
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    /// Listing the CronJob's Jobs failed.
    #[error("CronJobSpec {namespace}/{name}: listing its Jobs failed: {source}")]
    ListJobs {
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    /// The run-now Job could not be created.
    #[error("run-now Job {namespace}/{name}: {message}")]
    RunNow {
        namespace: String,
        name: String,
        message: String,
    },
}

impl Error {
    /// Short error class for metrics.
    pub fn class(&self) -> &'static str {
        match self {
            Self::ReadSecret { .. } => "read_secret",
            Self::ApplyCronJob { .. } => "apply_cron_job",
            Self::ListJobs { .. } => "list_jobs",
            Self::RunNow { .. } => "run_now",
        }
    }
}

/// What a reconcile of one CronJobSpec adds to the core's verdict.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Validation errors only the cluster can reveal (a referenced Secret is missing).
    pub errors: Vec<FieldError>,
    /// Conditions besides `Ready` (`Healthy`).
    pub conditions: Vec<DesiredCondition>,
    /// Look again after this long (the next due time plus the grace, a Secret to appear…).
    pub requeue_after: Option<Duration>,
}

/// In-process state of one CronJobSpec.
#[derive(Default)]
struct Entry {
    /// Status fields this module owns (everything but conditions and observedGeneration), as
    /// last computed.
    fields: Option<Value>,
    /// Whether `fields` differ from what the object's status holds.
    pending: bool,
    /// Monitoring state (alert engine, parsed run results).
    watch: watch::WatchState,
    /// What was last applied, to skip applies that would change nothing.
    applied: Option<Applied>,
}

/// The last successful apply of a CronJobSpec's CronJob.
struct Applied {
    /// The CronJobSpec's generation (and its labels/annotations, which reach the CronJob).
    spec: (Option<i64>, Value),
    /// The CronJob's resourceVersion right after the apply: a different one means someone
    /// else changed it.
    resource_version: Option<String>,
    /// When the Secrets were last checked and the CronJob applied.
    at: std::time::Instant,
}

/// Even when nothing changed, Secrets are checked and the CronJob applied again this often.
const FULL_CHECK_EVERY: Duration = Duration::from_secs(300);

/// The CronJobSpecs of one controller process.
pub struct CronJobs {
    image: String,
    entries: Mutex<BTreeMap<String, Entry>>,
    resource: ApiResource,
    children: Mutex<Option<std::sync::Arc<children::Children>>>,
    /// Job metrics (`watchkeeper_job_*`).
    pub metrics: watch::Metrics,
}

fn key_of(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

impl CronJobs {
    /// CronJobSpecs whose HTTP triggers run in `image`, with job metrics in `metrics`.
    pub fn new(image: impl Into<String>, metrics: watch::Metrics) -> Self {
        Self {
            image: image.into(),
            entries: Mutex::new(BTreeMap::new()),
            resource: ApiResource::erase::<CronJobSpec>(&()),
            children: Mutex::new(None),
            metrics,
        }
    }

    /// Starts the stores of owned CronJobs and labelled Jobs (until `stop`), so reconciles
    /// read them without requests.
    pub fn start_children(
        &self,
        client: &Client,
        namespace: Option<&str>,
        stop: &tokio_util::sync::CancellationToken,
    ) {
        let started = children::Children::start(client, namespace, stop);
        *self.children.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(std::sync::Arc::new(started));
    }

    fn children(&self) -> Option<std::sync::Arc<children::Children>> {
        self.children
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The CronJob as applied before, when the spec is unchanged, the CronJob in the store is
    /// exactly what the last apply left, and the last full check is recent.
    fn unchanged_cron_job(&self, key: &str, object: &CronJobSpec) -> Option<CronJob> {
        let children = self.children()?;
        let spec = applied_spec(object);
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let applied = entries.get(key)?.applied.as_ref()?;
        if applied.spec != spec || applied.at.elapsed() > FULL_CHECK_EVERY {
            return None;
        }
        let current = children.cron_job(&object.namespace()?, &object.name_any())?;
        (current.resource_version() == applied.resource_version).then(|| (*current).clone())
    }

    fn remember_applied(&self, key: &str, object: &CronJobSpec, cron_job: &CronJob) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.entry(key.to_string()).or_default().applied = Some(Applied {
            spec: applied_spec(object),
            resource_version: cron_job.resource_version(),
            at: std::time::Instant::now(),
        });
    }

    /// Brings the cluster in line with one CronJobSpec: applies its CronJob (when the spec is
    /// valid and its Secrets exist), handles run-now, and judges its runs.
    pub async fn reconcile(
        &self,
        client: &Client,
        object: &CronJobSpec,
        errors: &[FieldError],
        deleting: bool,
    ) -> Result<Outcome, Error> {
        let namespace = object.namespace().unwrap_or_default();
        let name = object.name_any();
        let key = key_of(&namespace, &name);
        let stored = object.status.clone().unwrap_or_default();
        if deleting {
            return Ok(Outcome::default());
        }
        if !errors.is_empty() {
            // Nothing is created or changed; what the status says about past runs stays.
            self.set_fields(&key, owned_fields(&stored), &stored);
            return Ok(Outcome::default());
        }
        let cron_job = match self.unchanged_cron_job(&key, object) {
            Some(cron_job) => cron_job,
            None => match self.apply(client, &key, object, &stored).await? {
                Ok(cron_job) => cron_job,
                Err(outcome) => return Ok(outcome),
            },
        };

        let mut status = stored.clone();
        status.cron_job_ref = Some(crate::api::common::LocalObjectRef {
            name: cron_job.name_any(),
        });
        if let Some(token) = object.annotations().get(RUN_NOW_ANNOTATION)
            && !token.is_empty()
            && stored.last_run_now_token.as_deref() != Some(token.as_str())
        {
            let created = run_now::create(client, &cron_job, token).await?;
            tracing::info!(cron_job_spec = %key, ?created, "run-now Job for a new token");
            status.last_run_now_token = Some(token.clone());
        }

        let jobs = match self.children().and_then(|c| c.jobs_of(&namespace, &name)) {
            Some(jobs) => jobs,
            None => list_jobs(client, &namespace, &name).await?,
        };
        let mut state = self.take_watch(&key);
        let judged = state
            .judge(
                client,
                object,
                &jobs,
                &mut status,
                &self.metrics,
                chrono::Utc::now(),
            )
            .await;
        let outcome = Outcome {
            errors: Vec::new(),
            conditions: judged.conditions,
            requeue_after: judged.requeue_after,
        };
        self.put_watch(&key, state);
        self.set_fields(&key, owned_fields(&status), &stored);
        Ok(outcome)
    }

    /// Checks the Secrets, builds and applies the CronJob. `Ok(Err(outcome))` when the spec
    /// cannot be applied (a Secret missing): nothing is created.
    async fn apply(
        &self,
        client: &Client,
        key: &str,
        object: &CronJobSpec,
        stored: &CronJobSpecStatus,
    ) -> Result<Result<CronJob, Outcome>, Error> {
        let namespace = object.namespace().unwrap_or_default();
        let missing = apply::missing_secrets(client, &namespace, &object.spec).await?;
        if !missing.is_empty() {
            self.set_fields(key, owned_fields(stored), stored);
            return Ok(Err(Outcome {
                errors: missing,
                // Secrets are not watched: look again soon.
                requeue_after: Some(SECRET_RECHECK),
                ..Outcome::default()
            }));
        }
        let desired = match builder::build_cron_job(object, &self.image) {
            Ok(desired) => desired,
            Err(error) => {
                self.set_fields(key, owned_fields(stored), stored);
                return Ok(Err(Outcome {
                    errors: vec![FieldError::new("spec", error.to_string())],
                    ..Outcome::default()
                }));
            }
        };
        let cron_job = apply::apply(client, &desired).await?;
        self.remember_applied(key, object, &cron_job);
        Ok(Ok(cron_job))
    }

    fn take_watch(&self, key: &str) -> watch::WatchState {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut entries.entry(key.to_string()).or_default().watch)
    }

    fn put_watch(&self, key: &str, state: watch::WatchState) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.entry(key.to_string()).or_default().watch = state;
    }

    fn set_fields(&self, key: &str, fields: Value, stored: &CronJobSpecStatus) {
        let pending = fields != owned_fields(stored);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.entry(key.to_string()).or_default();
        entry.fields = Some(fields);
        entry.pending = pending;
    }

    /// Whether this module's status fields of `namespace/name` need writing although the
    /// core's conditions did not change.
    pub fn pending(&self, namespace: &str, name: &str) -> bool {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key_of(namespace, name))
            .is_some_and(|e| e.pending)
    }

    /// Writes a CronJobSpec's whole owned status: the core's `conditions` and
    /// `observedGeneration` plus this module's fields.
    pub async fn write(
        &self,
        client: &Client,
        namespace: &str,
        name: &str,
        conditions: &[Condition],
        observed_generation: Option<i64>,
    ) -> Result<(), kube::Error> {
        let key = key_of(namespace, name);
        let fields = self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .and_then(|e| e.fields.clone());
        let mut status = match fields {
            Some(Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        if let Some(generation) = observed_generation {
            status.insert("observedGeneration".into(), json!(generation));
        }
        status.insert("conditions".into(), json!(conditions));
        let body = json!({
            "apiVersion": self.resource.api_version,
            "kind": self.resource.kind,
            "status": Value::Object(status),
        });
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &self.resource);
        api.patch_status(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await?;
        if let Some(entry) = self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(&key)
        {
            entry.pending = false;
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    /// Forgets CronJobSpecs that are no longer in `store` (deleted), and their metric series.
    pub fn sweep(&self, present: &BTreeSet<String>) {
        let gone: Vec<String> = {
            let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            entries
                .keys()
                .filter(|k| !present.contains(*k))
                .cloned()
                .collect()
        };
        for key in gone {
            self.entries
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&key);
            if let Some((namespace, name)) = key.split_once('/') {
                self.metrics.remove(namespace, name);
            }
        }
    }
}

/// What the CronJob is built from: the spec (its changes move the generation) and the owner's
/// uid.
fn applied_spec(object: &CronJobSpec) -> (Option<i64>, Value) {
    (object.metadata.generation, json!(object.metadata.uid))
}

/// Secrets are not watched: a CronJobSpec waiting for one is looked at again this often.
pub const SECRET_RECHECK: Duration = Duration::from_secs(10);

/// The status fields this module owns, as an apply body fragment (no conditions, no
/// observedGeneration).
fn owned_fields(status: &CronJobSpecStatus) -> Value {
    let mut status = status.clone();
    status.conditions = Vec::new();
    status.observed_generation = None;
    serde_json::to_value(status).unwrap_or_else(|_| json!({}))
}

/// The Jobs of a CronJobSpec (scheduled and run-now), by the label the CronJob's job template
/// carries.
async fn list_jobs(client: &Client, namespace: &str, name: &str) -> Result<Vec<Job>, Error> {
    let api: Api<Job> = Api::namespaced(client.clone(), namespace);
    let params = ListParams::default().labels(&format!("{}={name}", builder::CRON_JOB_SPEC_LABEL));
    api.list(&params)
        .await
        .map(|list| list.items)
        .map_err(|source| Error::ListJobs {
            namespace: namespace.to_string(),
            name: name.to_string(),
            source: Box::new(source),
        })
}

/// Downcasts a reconciled object to a CronJobSpec (the other kinds return `None`).
pub fn as_cron_job_spec<K: Any>(object: &K) -> Option<&CronJobSpec> {
    (object as &dyn Any).downcast_ref::<CronJobSpec>()
}

/// Adds the CronJobSpec Controller's secondary watches: its owned CronJobs (a hand edit is set
/// back at once) and the Jobs labelled with a CronJobSpec's name (a run starting or finishing
/// updates status at once).
pub fn watch_children(
    controller: Controller<DynamicObject>,
    client: &Client,
    namespace: Option<&str>,
) -> Controller<DynamicObject> {
    let (cron_jobs, jobs): (Api<CronJob>, Api<Job>) = match namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    let managed = format!("{}={}", builder::MANAGED_BY_LABEL, builder::MANAGED_BY);
    let resource = ApiResource::erase::<CronJobSpec>(&());
    controller
        .owns(cron_jobs, watcher::Config::default().labels(&managed))
        .watches(
            jobs,
            watcher::Config::default().labels(builder::CRON_JOB_SPEC_LABEL),
            move |job: Job| {
                let owner = job.labels().get(builder::CRON_JOB_SPEC_LABEL)?.clone();
                let namespace = job.namespace()?;
                Some(ObjectRef::new_with(&owner, resource.clone()).within(&namespace))
            },
        )
}

/// How often in-process state is checked against the Controller's store (deletions).
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Forgets deleted CronJobSpecs (their alert engines and metric series) until `stop`.
pub async fn sweep(
    cron_jobs: std::sync::Arc<CronJobs>,
    store: kube::runtime::reflector::Store<DynamicObject>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        if store.is_empty() && cron_jobs.is_empty() {
            continue;
        }
        let present: BTreeSet<String> = store
            .state()
            .iter()
            .map(|o| key_of(&o.namespace().unwrap_or_default(), &o.name_any()))
            .collect();
        cron_jobs.sweep(&present);
    }
}
