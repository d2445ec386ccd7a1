//! The controller core: one kube-rs `Controller` per kind, leader election, metrics and health
//! endpoints, clean shutdown.
//!
//! Wiring, from the outside in:
//! - [`Operator::run`] campaigns for the leader Lease (unless election is off). While it holds
//!   the Lease it runs one `Controller` per kind; when it loses the Lease it stops them and
//!   campaigns again; on shutdown it stops them gracefully (in-flight reconciles finish) and
//!   releases the Lease so a standby takes over at once.
//! - Each `Controller` watches its kind as `DynamicObject`s and hands every object to
//!   [`reconcile::reconcile_object`], which parses it into the typed kind (or reports it as
//!   malformed) and runs the shared [`reconcile::reconcile`].
//! - [`server::serve`] exposes `/metrics`, `/healthz` and `/readyz`.

pub mod alerting;
pub mod backup;
pub mod command;
pub mod conditions;
pub mod context;
pub mod cron_job;
pub mod failover;
pub mod leader;
pub mod maintenance;
pub mod metrics;
pub mod monitors;
pub mod reconcile;
pub mod remediation;
pub mod server;
pub mod shutdown;
pub mod status;

use std::net::SocketAddr;
use std::sync::Arc;

use futures::StreamExt;
use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use kube::runtime::{Controller, controller, watcher};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::api::{BackupPolicy, CronJobSpec, FailoverPlan, HealthMonitor, MaintenanceWindow};
pub use context::{Context, Health, ReconcileSettings};
pub use leader::LeaseSettings;
pub use metrics::Metrics;
pub use reconcile::ManagedKind;

/// How often a kind's initial-list completion is re-checked for `/readyz`.
const SYNC_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// Errors that stop the controller process.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The leader-election settings are unusable.
    #[error(transparent)]
    Leader(#[from] leader::Error),
    /// The HTTP endpoints could not start.
    #[error(transparent)]
    Server(#[from] server::Error),
}

/// How the controller runs.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// Watch only this namespace; `None` watches all namespaces.
    pub namespace: Option<String>,
    /// This replica's name in Events (`reportingInstance`) and in the Lease.
    pub identity: String,
    /// Leader election; `None` acts at once (a single replica, or local development).
    pub leader_election: Option<LeaseSettings>,
    /// Resync and backoff timings.
    pub settings: ReconcileSettings,
}

/// A controller process (tests run several in one process, each with its own metrics).
pub struct Operator {
    client: Client,
    config: ControllerConfig,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    agent_image: String,
    maintenance: Arc<maintenance::MaintenanceIndex>,
}

impl Operator {
    /// A controller that talks to the API server behind `client`.
    pub fn new(client: Client, config: ControllerConfig) -> Self {
        let health = Arc::new(Health::new(config.leader_election.is_some()));
        let metrics = Arc::new(Metrics::new());
        metrics.set_leader(health.is_leader());
        Self {
            client,
            config,
            metrics,
            health,
            agent_image: cron_job::DEFAULT_AGENT_IMAGE.to_string(),
            maintenance: Arc::new(maintenance::MaintenanceIndex::new()),
        }
    }

    /// The image CronJobSpec HTTP triggers run in (`watchkeeper agent trigger`): the
    /// operator's own image. Default: [`cron_job::DEFAULT_AGENT_IMAGE`].
    pub fn with_agent_image(mut self, image: impl Into<String>) -> Self {
        self.agent_image = image.into();
        self
    }

    /// This process's metrics.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// This process's health, as `/readyz` reports it.
    pub fn health(&self) -> Arc<Health> {
        self.health.clone()
    }

    /// The maintenance calendar this process's MaintenanceWindow reconciler fills.
    pub fn maintenance(&self) -> Arc<maintenance::MaintenanceIndex> {
        self.maintenance.clone()
    }

    /// Starts `/metrics`, `/healthz`, `/readyz` and the maintenance feeds
    /// (`/maintenance.ics`, `/maintenance.json`) on `addr` until `shutdown` fires.
    pub async fn serve(
        &self,
        addr: SocketAddr,
        shutdown: CancellationToken,
    ) -> Result<(SocketAddr, JoinHandle<()>), Error> {
        let feeds = Some(self.maintenance.clone());
        Ok(server::serve_with_feeds(addr, self.metrics(), self.health(), feeds, shutdown).await?)
    }

    /// Runs until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        let ctx = Arc::new(
            Context::new(
                self.client.clone(),
                &self.config.identity,
                self.metrics.clone(),
                self.config.settings.clone(),
            )
            .with_agent_image(&self.agent_image)
            .with_maintenance(self.maintenance.clone()),
        );
        let Some(lease) = self.config.leader_election.clone() else {
            info!(identity = %self.config.identity, "leader election off: reconciling");
            self.health.set_leader(true);
            run_controllers(
                ctx,
                self.config.namespace.clone(),
                self.health.clone(),
                shutdown,
            )
            .await;
            return Ok(());
        };
        let mut elector = leader::LeaderElector::new(self.client.clone(), lease)?;
        loop {
            self.set_leader(false);
            info!(
                identity = elector.identity(),
                "standing by for the leader Lease"
            );
            if !elector.acquire(&shutdown).await {
                break;
            }
            self.set_leader(true);
            let term = shutdown.child_token();
            let controllers = run_controllers(
                ctx.clone(),
                self.config.namespace.clone(),
                self.health.clone(),
                term.clone(),
            );
            let holder = async {
                let end = elector.hold(&shutdown).await;
                term.cancel();
                end
            };
            let ((), end) = tokio::join!(controllers, holder);
            if end == leader::HoldEnd::Cancelled {
                if let Err(error) = elector.release().await {
                    warn!(%error, "releasing the Lease failed; a standby takes over when it expires");
                }
                break;
            }
            warn!("lost the leader Lease; controllers stopped, campaigning again");
        }
        self.set_leader(false);
        Ok(())
    }

    fn set_leader(&self, leader: bool) {
        self.health.set_leader(leader);
        self.metrics.set_leader(leader);
    }
}

/// Runs one `Controller` per kind until `stop` fires, then lets in-flight reconciles finish.
async fn run_controllers(
    ctx: Arc<Context>,
    namespace: Option<String>,
    health: Arc<Health>,
    stop: CancellationToken,
) {
    let ns = namespace.as_deref();
    let flusher = tokio::spawn(ctx.monitors.clone().run(
        ctx.client.clone(),
        ctx.recorder.clone(),
        stop.clone(),
    ));
    let windows = tokio::spawn(ctx.windows.clone().run(stop.clone()));
    tokio::join!(
        run_kind::<HealthMonitor>(ctx.clone(), ns, health.clone(), stop.clone()),
        run_kind::<CronJobSpec>(ctx.clone(), ns, health.clone(), stop.clone()),
        run_kind::<BackupPolicy>(ctx.clone(), ns, health.clone(), stop.clone()),
        run_kind::<MaintenanceWindow>(ctx.clone(), ns, health.clone(), stop.clone()),
        run_kind::<FailoverPlan>(ctx, ns, health, stop),
    );
    if let Err(error) = flusher.await {
        warn!(%error, "the monitor flusher failed");
    }
    if let Err(error) = windows.await {
        warn!(%error, "the maintenance window sweep failed");
    }
    info!("controllers stopped");
}

async fn run_kind<K: ManagedKind>(
    ctx: Arc<Context>,
    namespace: Option<&str>,
    health: Arc<Health>,
    stop: CancellationToken,
) {
    let resource = ApiResource::erase::<K>(&());
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(ctx.client.clone(), ns, &resource),
        None => Api::all_with(ctx.client.clone(), &resource),
    };
    let mut controller = Controller::new_with(api, watcher::Config::default(), resource);
    let store = controller.store();
    if K::KIND == HealthMonitor::KIND {
        ctx.monitors.set_store(store.clone());
    }
    if K::KIND == MaintenanceWindow::KIND {
        ctx.windows.set_store(store.clone());
    }
    if K::KIND == CronJobSpec::KIND {
        controller = cron_job::watch_children(controller, &ctx.client, namespace);
        ctx.cron_jobs.start_children(&ctx.client, namespace, &stop);
        tokio::spawn(cron_job::sweep(
            ctx.cron_jobs.clone(),
            store.clone(),
            stop.clone(),
        ));
    }
    if K::KIND == BackupPolicy::KIND {
        controller = backup::watch_children(controller, &ctx.client, namespace);
        tokio::spawn(backup::sweep(
            ctx.backups.clone(),
            store.clone(),
            stop.clone(),
        ));
    }
    // kube-runtime's `Store::wait_until_ready` wakes only the most recent waiter (one oneshot
    // waker), and the Controller itself waits on the same store; so re-poll with a short
    // timeout instead of waiting once.
    let synced = {
        let stop = stop.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    ready = tokio::time::timeout(SYNC_POLL, store.wait_until_ready()) => match ready {
                        Ok(Ok(())) => {
                            debug!(kind = K::KIND, "initial list done");
                            health.kind_synced(K::KIND);
                            return;
                        }
                        Ok(Err(_)) => return,
                        Err(_) => {}
                    },
                    () = stop.cancelled() => return,
                }
            }
        })
    };
    info!(
        kind = K::KIND,
        namespace = namespace.unwrap_or("<all>"),
        "controller started"
    );
    controller
        .graceful_shutdown_on(stop.cancelled_owned())
        .run(
            reconcile::reconcile_object::<K>,
            reconcile::error_policy::<K>,
            ctx,
        )
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => {
                    debug!(kind = K::KIND, object = %object, "reconciled");
                }
                // Already logged with its retry delay by the error policy.
                Err(controller::Error::ReconcilerFailed(..)) => {}
                Err(controller::Error::QueueError(error)) => {
                    warn!(kind = K::KIND, %error, "watch failed; retrying with backoff");
                }
                Err(error) => debug!(kind = K::KIND, %error, "controller"),
            }
        })
        .await;
    synced.abort();
}
