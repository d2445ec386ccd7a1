//! An in-process Kubernetes API server for tests.
//!
//! It speaks enough of the Kubernetes REST protocol (plain HTTP/1.1 on
//! 127.0.0.1, an ephemeral port, no authentication) for kube-rs's `Api<K>`,
//! `Controller`, `watcher`, `events::Recorder`, `Discovery` and Lease-based leader
//! election to run against it unchanged:
//!
//! ```ignore
//! let server = ApiServer::start().await;
//! let client = server.client();           // kube::Client for it
//! ```
//!
//! # What is supported
//!
//! - **Discovery**: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/{g}`,
//!   `/apis/{g}/{v}` (APIResourceList with `{plural}/status` entries), and
//!   aggregated discovery (apidiscovery.k8s.io/v2) when the Accept header asks.
//! - **Kinds**: core/v1 ConfigMap, Secret, Service, ServiceAccount, Pod, Event,
//!   Namespace; apps/v1 Deployment, ReplicaSet, StatefulSet; batch/v1 CronJob, Job;
//!   coordination.k8s.io/v1 Lease; events.k8s.io/v1 Event;
//!   apiextensions.k8s.io/v1 CustomResourceDefinition. Creating a CRD serves its
//!   resource at once (scope, served versions, status subresource from the CRD) and
//!   marks it `Established`; deleting it removes the resource and its objects.
//!   CRDs whose schemas are not structural (see [`structural`]) are 422 Invalid.
//!   All served versions of a CRD share one stored object (no conversion; the
//!   apiVersion is rewritten to the one requested). Objects are stored as
//!   `serde_json::Value`.
//!   Status subresources: Service, Pod, Namespace, Deployment, ReplicaSet,
//!   StatefulSet, CronJob, Job, CustomResourceDefinition, and CRDs that declare it.
//!   Namespaces `default`, `kube-system`, `kube-public`, `kube-node-lease` exist;
//!   a namespace need not exist to hold objects; deleting a Namespace deletes its
//!   objects.
//! - **get, list** (`resourceVersion` in the list metadata, `limit`/`continue`
//!   paging, label selectors with `=`, `==`, `!=`, `in`, `notin`, `key`, `!key`,
//!   field selectors `=`, `==`, `!=` on any dotted path such as `metadata.name`;
//!   `resourceVersionMatch=Exact` with a compacted resourceVersion is 410 Expired).
//! - **watch** (`watch=true`): newline-delimited WatchEvents; `resourceVersion`
//!   ("" or "0": synthetic ADDED for the current state, otherwise replay from the
//!   bounded in-memory history); a resourceVersion older than the history gives one
//!   ERROR event with a Status of code 410, reason `Expired` (as the real server);
//!   `allowWatchBookmarks` gives a BOOKMARK at start and periodically
//!   ([`ApiServerBuilder::bookmark_interval`]); `sendInitialEvents=true` ends the
//!   initial events with the `k8s.io/initial-events-end` bookmark; `timeoutSeconds`;
//!   selectors, with objects that stop (start) matching sent as DELETED (ADDED).
//!   Watches are unbounded channels, so they survive any number of objects.
//! - **create**: `generateName`, `uid`, `creationTimestamp`, `resourceVersion`,
//!   `generation: 1`; 409 `AlreadyExists`; status is dropped for kinds with a status
//!   subresource; `dryRun=All`.
//! - **update** (PUT): 409 `Conflict` when the body's resourceVersion is stale
//!   (an empty resourceVersion is an unconditional update for built-in kinds and
//!   422 for custom resources, as in Kubernetes); server-owned metadata
//!   (uid, creationTimestamp, deletionTimestamp, generation) cannot be changed.
//! - **patch**: `application/merge-patch+json` (RFC 7386),
//!   `application/json-patch+json` (RFC 6902), `application/strategic-merge-patch+json`
//!   for built-in kinds (lists merged by the keys below, `$patch: delete`,
//!   `$deleteFromPrimitiveList`; 415 for custom resources, as in Kubernetes),
//!   `application/apply-patch+yaml` (server-side apply, JSON or YAML body):
//!   a `resourceVersion` in any patch body is a precondition (409 when stale).
//! - **server-side apply** (`fieldManager` required, `force`): the applied config is
//!   merged into the object (maps recursively; lists by their kind: atomic lists
//!   are replaced whole, `x-kubernetes-list-type: set` lists and
//!   `metadata.finalizers` are unions, `x-kubernetes-list-type: map` lists merge
//!   item by item on `x-kubernetes-list-map-keys`; for built-in kinds `conditions`
//!   merge by `type`, `containers`, `initContainers`, `env`, `volumes`,
//!   `imagePullSecrets` by `name`, `metadata.ownerReferences` by `uid`; `null`
//!   removes a field); fields that the same manager applied before and omits now
//!   are removed unless another manager owns them (a map-list item goes when
//!   nobody owns any of its fields); applying a value different from one owned by
//!   another manager (Apply or Update) is a 409 `Conflict` listing
//!   `conflict with "m": .spec.x` (or `.status.conditions[type="Ready"].status`),
//!   unless `force=true`, which takes ownership. Ownership is tracked per leaf
//!   field (per manager, operation and subresource) in real `managedFields`
//!   entries (FieldsV1 with `f:`, `v:`, `k:` and `.`); non-apply writes record an
//!   `Update` entry for the fields they change. Apply creates the object if it
//!   does not exist.
//! - **status subresource**: PUT/PATCH/apply on `.../status` change only status;
//!   writes to the main resource keep the stored status. `metadata.generation`
//!   increases when anything but metadata (and status, for kinds with a status
//!   subresource) changes, and when deletion starts; a write that changes nothing
//!   is a no-op (same resourceVersion, no watch event).
//! - **delete**: objects with finalizers get `deletionTimestamp` (202) and stay
//!   until the finalizers are removed; `propagationPolicy` Background (default),
//!   Foreground (`foregroundDeletion` finalizer until dependents are gone) and
//!   Orphan (`orphan` finalizer; ownerReferences to the owner are removed);
//!   preconditions (uid, resourceVersion); deletecollection with selectors; no
//!   finalizer can be added once deletion has started (422).
//!   A background garbage collector deletes objects all of whose ownerReferences
//!   name owners (by uid) that no longer exist.
//! - **pruning and validation** of custom resources: unknown fields (not declared
//!   in the CRD's openAPIV3Schema `properties`/`additionalProperties`, outside
//!   `x-kubernetes-preserve-unknown-fields` nodes) are dropped, as the real server
//!   does for clients that send no `fieldValidation` (kube-rs); with
//!   `fieldValidation=Strict` (or [`ApiServerBuilder::strict_field_validation`],
//!   which makes Strict the default, like `kubectl apply --validate=strict`) they
//!   are kept for the validator to report. [`ApiServerBuilder::validator`] is then
//!   called with the CRD and the full object on every create/update/patch/apply of
//!   a custom resource (main and status); errors are a 422 `Invalid` Status listing
//!   them. Schema `default`s are applied to absent fields on every write.
//! - **errors** are Kubernetes `Status` objects (NotFound, AlreadyExists, Conflict,
//!   Invalid, Expired (410; the reason the real server gives an expired
//!   resourceVersion), BadRequest, MethodNotAllowed, UnsupportedMediaType,
//!   InternalError), so kube maps them to `kube::Error::Api` with the right code.
//! - **metadata-only** requests (`Accept: ...;as=PartialObjectMetadata[List]`) get
//!   PartialObjectMetadata objects, lists and watch events.
//!
//! Test hooks: [`ApiServer::client_as`] (a client whose requests are recorded
//! under an identity, to tell controller replicas apart),
//! [`ApiServer::requests`] / [`ApiServer::request_count`] (every API request with
//! verb, resource, subresource, field manager, user agent and identity),
//! [`ApiServer::object`] / [`ApiServer::get`] / [`ApiServer::list`] (read the
//! store directly), [`ApiServer::inject_fault`] / [`ApiServer::fail_next`]
//! (answer matching requests with an error), [`ApiServer::expire_watches`] (every
//! open watch gets 410 and the history is compacted), [`ApiServer::close_watches`],
//! [`ApiServer::resource_version`], [`ApiServer::open_watches`] and
//! [`ApiServer::shutdown`]. [`schema_validator`] wires the validator to
//! `watchkeeper check`'s schema validation.
//!
//! Names are checked (DNS-1123 subdomain; label for namespaces and services;
//! `<plural>.<group>` for CRDs): 422 otherwise.
//!
//! Not supported: authentication/authorization, admission webhooks, defaulting of
//! built-in kinds, warning headers, conversion between CRD versions, CEL
//! validation of its own (the validator hook does that), protobuf, tables,
//! pods/log/exec/scale subresources, namespace termination phases (deletion is
//! immediate), and the controllers of built-in kinds (a Deployment never gets
//! pods, a CronJob never gets Jobs).

#![allow(dead_code)]

pub mod discovery;
pub mod errors;
pub mod fieldpath;
pub mod fields_v1;
pub mod gc;
pub mod handlers;
pub mod managed;
pub mod names;
pub mod patch;
pub mod prune;
pub mod resources;
pub mod selectors;
pub mod store;
pub mod structural;
pub mod verbs;
pub mod watch;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

pub use errors::ApiError;
pub use store::Validator;

use managed::{Scope, Writer};
use store::Store;

/// One API request the server received (discovery requests are not recorded).
#[derive(Clone, Debug)]
pub struct RequestRecord {
    /// get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: String,
    /// API group ("" for core).
    pub group: String,
    /// Plural resource name.
    pub resource: String,
    /// "" or "status".
    pub subresource: String,
    /// Namespace in the path.
    pub namespace: Option<String>,
    /// Object name in the path.
    pub name: Option<String>,
    /// `fieldManager` query parameter, or the user agent's product name.
    pub field_manager: String,
    /// `User-Agent` header.
    pub user_agent: String,
    /// `Content-Type` header (patch type).
    pub content_type: String,
    /// The identity of a client made by [`ApiServer::client_as`], if any.
    pub client: Option<String>,
    /// The request body, when it is JSON (writes).
    pub body: Option<Value>,
}

/// Header carrying the identity given to [`ApiServer::client_as`].
pub const CLIENT_HEADER: &str = "x-test-client";

/// An injected failure: the next `remaining` requests that match are answered
/// with `error` instead of being served.
#[derive(Clone, Debug)]
pub struct Fault {
    /// How many more matching requests fail.
    pub remaining: usize,
    /// Only this verb (None: any).
    pub verb: Option<String>,
    /// Only this plural resource (None: any).
    pub resource: Option<String>,
    /// Only this subresource ("" for the main resource; None: any).
    pub subresource: Option<String>,
    /// The error answered.
    pub error: ApiError,
}

impl Fault {
    /// The next `times` requests fail with `error`.
    pub fn new(times: usize, error: ApiError) -> Self {
        Self {
            remaining: times,
            verb: None,
            resource: None,
            subresource: None,
            error,
        }
    }

    /// Only requests with this verb (get, list, watch, create, update, patch, delete).
    pub fn verb(mut self, verb: &str) -> Self {
        self.verb = Some(verb.to_string());
        self
    }

    /// Only requests for this plural resource.
    pub fn resource(mut self, plural: &str) -> Self {
        self.resource = Some(plural.to_string());
        self
    }

    /// Only requests for this subresource ("" for the main resource).
    pub fn subresource(mut self, subresource: &str) -> Self {
        self.subresource = Some(subresource.to_string());
        self
    }
}

/// The validator `watchkeeper check` uses (`check::schema::validate_against_crd`),
/// for [`ApiServerBuilder::validator`].
pub fn schema_validator() -> Validator {
    Arc::new(|crd, object| {
        watchkeeper::check::schema::validate_against_crd(crd, object)
            .iter()
            .map(ToString::to_string)
            .collect()
    })
}

/// State shared by the HTTP handlers.
pub struct Inner {
    /// The object store.
    pub store: Arc<Mutex<Store>>,
    requests: Mutex<Vec<RequestRecord>>,
    faults: Mutex<Vec<Fault>>,
    /// Wakes the garbage collector.
    pub gc_notify: Notify,
    /// Interval of periodic watch bookmarks.
    pub bookmark_every: Duration,
    /// host:port, for discovery documents.
    pub address: String,
    /// Requests without `fieldValidation` behave as `Strict` (no pruning).
    pub strict_by_default: bool,
}

impl Inner {
    fn record(&self, record: RequestRecord) {
        if let Ok(mut r) = self.requests.lock() {
            r.push(record);
        }
    }

    fn take_fault(&self, verb: &str, resource: &str, subresource: &str) -> Option<ApiError> {
        let mut faults = self.faults.lock().ok()?;
        let fault = faults.iter_mut().find(|f| {
            f.remaining > 0
                && f.verb.as_deref().is_none_or(|v| v == verb)
                && f.resource.as_deref().is_none_or(|r| r == resource)
                && f.subresource.as_deref().is_none_or(|s| s == subresource)
        })?;
        fault.remaining -= 1;
        let error = fault.error.clone();
        faults.retain(|f| f.remaining > 0);
        Some(error)
    }
}

/// Configures an [`ApiServer`] before it starts.
#[derive(Default)]
pub struct ApiServerBuilder {
    validator: Option<Validator>,
    history_limit: Option<usize>,
    bookmark_every: Option<Duration>,
    crds: Vec<CustomResourceDefinition>,
    strict: bool,
}

impl ApiServerBuilder {
    /// Validates custom resources on every write; non-empty result → 422 Invalid.
    pub fn validator(mut self, validator: Validator) -> Self {
        self.validator = Some(validator);
        self
    }

    /// How many change events are kept for watch resumption (default 10 000);
    /// older resourceVersions are 410 Gone.
    pub fn history_limit(mut self, events: usize) -> Self {
        self.history_limit = Some(events);
        self
    }

    /// Interval between BOOKMARK events on watches that allow them (default 1s).
    pub fn bookmark_interval(mut self, every: Duration) -> Self {
        self.bookmark_every = Some(every);
        self
    }

    /// Treats requests without a `fieldValidation` parameter as `Strict`: unknown
    /// fields of custom resources are not pruned, so the validator sees (and can
    /// reject) them, as with `kubectl apply --validate=strict`. By default they are
    /// pruned, as the real API server does for clients such as kube-rs that send
    /// no `fieldValidation`.
    pub fn strict_field_validation(mut self) -> Self {
        self.strict = true;
        self
    }

    /// Installs several CRDs before the server starts serving.
    pub fn crds(mut self, crds: impl IntoIterator<Item = CustomResourceDefinition>) -> Self {
        self.crds.extend(crds);
        self
    }

    /// Installs a CRD before the server starts serving.
    pub fn crd(mut self, crd: CustomResourceDefinition) -> Self {
        self.crds.push(crd);
        self
    }

    /// Binds 127.0.0.1 on an ephemeral port and starts serving.
    pub async fn start(self) -> ApiServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0 for the test API server");
        let addr = listener
            .local_addr()
            .expect("local address of the test API server");
        let mut store = Store::new(self.history_limit.unwrap_or(10_000), self.validator);
        for crd in self.crds {
            let body = serde_json::to_value(&crd).expect("CRD serializes");
            let now = store::now();
            let writer = Writer {
                manager: "test-setup",
                subresource: "",
                api_version: "apiextensions.k8s.io/v1",
                now: &now,
                scope: Scope::NoStatus,
                strict: false,
                lists: Default::default(),
            };
            store
                .create(store::CRD_KEY, None, body, &writer, false, true)
                .expect("preinstalled CRD is accepted");
        }
        let inner = Arc::new(Inner {
            store: Arc::new(Mutex::new(store)),
            requests: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
            gc_notify: Notify::new(),
            bookmark_every: self.bookmark_every.unwrap_or(Duration::from_secs(1)),
            address: addr.to_string(),
            strict_by_default: self.strict,
        });
        let app = axum::Router::new()
            .fallback(handlers::handle)
            .with_state(inner.clone());
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server_task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop_rx.await;
                })
                .await;
        });
        let gc_inner = inner.clone();
        let gc_task = tokio::spawn(async move {
            loop {
                gc_inner.gc_notify.notified().await;
                loop {
                    let changed = match gc_inner.store.lock() {
                        Ok(mut st) => {
                            let changed = gc::pass(&mut st);
                            st.gc_wanted = false;
                            changed
                        }
                        Err(_) => return,
                    };
                    if !changed {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
            }
        });
        ApiServer {
            inner,
            addr,
            stop: Some(stop_tx),
            server_task,
            gc_task,
        }
    }
}

/// A running in-process API server. Dropping it stops it.
pub struct ApiServer {
    inner: Arc<Inner>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server_task: JoinHandle<()>,
    gc_task: JoinHandle<()>,
}

impl ApiServer {
    /// Starts a server with default settings.
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// A builder for non-default settings.
    pub fn builder() -> ApiServerBuilder {
        ApiServerBuilder::default()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kube `Config` for this server (no auth, default namespace `default`).
    pub fn config(&self) -> kube::Config {
        let uri = self.url().parse().expect("server URL is a valid URI");
        kube::Config::new(uri)
    }

    /// A kube `Client` for this server.
    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(self.config()).expect("kube client for the test API server")
    }

    /// A kube `Client` whose requests are recorded with `client: Some(identity)`,
    /// to tell apart several controller instances sharing one server.
    pub fn client_as(&self, identity: &str) -> kube::Client {
        let mut config = self.config();
        config.headers.push((
            axum::http::HeaderName::from_static(CLIENT_HEADER),
            axum::http::HeaderValue::from_str(identity).expect("identity is a valid header value"),
        ));
        kube::Client::try_from(config).expect("kube client for the test API server")
    }

    /// Every API request so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.inner
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// How many requests had this verb on this plural resource (any subresource).
    pub fn request_count(&self, verb: &str, resource: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.verb == verb && r.resource == resource)
            .count()
    }

    /// Forgets the recorded requests.
    pub fn reset_requests(&self) {
        if let Ok(mut r) = self.inner.requests.lock() {
            r.clear();
        }
    }

    /// A stored object, read directly (namespace "" for cluster-scoped).
    pub fn object(&self, group: &str, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let st = self.inner.store.lock().ok()?;
        st.get(&resources::key(group, plural), namespace, name)
            .cloned()
    }

    /// All stored objects of a resource.
    pub fn objects(&self, group: &str, plural: &str) -> Vec<Value> {
        match self.inner.store.lock() {
            Ok(st) => st
                .list(&resources::key(group, plural), None)
                .cloned()
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// A stored object as a typed resource.
    pub fn get<K>(&self, namespace: Option<&str>, name: &str) -> Option<K>
    where
        K: kube::Resource<DynamicType = ()> + DeserializeOwned,
    {
        let v = self.object(
            &K::group(&()),
            &K::plural(&()),
            namespace.unwrap_or(""),
            name,
        )?;
        serde_json::from_value(v).ok()
    }

    /// All stored objects of a typed resource.
    pub fn list<K>(&self) -> Vec<K>
    where
        K: kube::Resource<DynamicType = ()> + DeserializeOwned,
    {
        self.objects(&K::group(&()), &K::plural(&()))
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect()
    }

    /// The current (last assigned) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.inner.store.lock().map(|st| st.rv).unwrap_or(0)
    }

    /// Adds an injected failure.
    pub fn inject_fault(&self, fault: Fault) {
        if let Ok(mut f) = self.inner.faults.lock() {
            f.push(fault);
        }
    }

    /// The next `n` API requests (any verb/resource) fail with 500 InternalError.
    pub fn fail_next(&self, n: usize) {
        self.inject_fault(Fault::new(n, ApiError::internal("injected fault")));
    }

    /// Every open watch receives a 410 ERROR event and ends; the event history
    /// is dropped, so resuming from any earlier resourceVersion is 410 too.
    pub fn expire_watches(&self) {
        if let Ok(mut st) = self.inner.store.lock() {
            st.expire_watches();
        }
    }

    /// Every open watch ends normally (clients re-watch from their last version).
    pub fn close_watches(&self) {
        if let Ok(mut st) = self.inner.store.lock() {
            st.close_watches();
        }
    }

    /// Number of open watch streams.
    pub fn open_watches(&self) -> usize {
        self.inner
            .store
            .lock()
            .map(|st| st.watchers.len())
            .unwrap_or(0)
    }

    /// Stops serving: open watches end, the listener closes.
    pub async fn shutdown(mut self) {
        self.close_watches();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.server_task).await;
        self.server_task.abort();
        self.gc_task.abort();
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Ok(mut st) = self.inner.store.lock() {
            st.close_watches();
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.server_task.abort();
        self.gc_task.abort();
    }
}
