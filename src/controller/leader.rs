//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several replicas only one
//! reconciles.
//!
//! The protocol is client-go's: every write is a full update guarded by the `resourceVersion`
//! that was read, so two candidates can never both win (the API server refuses the second with
//! 409 Conflict). A candidate only takes a Lease held by someone else once it has seen the same
//! lease record unchanged for `lease_duration` on its *own* clock, which makes the scheme
//! independent of clock skew between nodes. The holder renews every `retry_period` and gives up
//! (stops reconciling) when it has not renewed for `renew_deadline`, which is shorter than
//! `lease_duration`, so it stops before anyone else may start. On shutdown the holder releases
//! the Lease (empties `holderIdentity`) so a standby takes over at once instead of waiting for
//! expiry.
//!
//! kube-lease-manager (compatible with kube 5) was considered; it acquires through server-side
//! apply conflicts and renews with strategic-merge patches that are not guarded by
//! `resourceVersion`. The guarded-update protocol needs only get/create/replace, so it behaves
//! identically on every conformant API server, including the in-process one used by the tests.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Settings of the election.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    /// Name of the Lease object.
    pub name: String,
    /// Namespace of the Lease object.
    pub namespace: String,
    /// This replica's identity, written to `holderIdentity` (usually the Pod name).
    pub identity: String,
    /// How long a Lease stays valid after its last renewal.
    pub lease_duration: Duration,
    /// The holder stops acting when it has not renewed for this long (< `lease_duration`).
    pub renew_deadline: Duration,
    /// Pause between attempts to acquire or renew.
    pub retry_period: Duration,
}

impl LeaseSettings {
    /// client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry period.
    pub fn new(
        name: impl Into<String>,
        namespace: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            namespace: namespace.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Errors of the election.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing the Lease failed for a reason other than a lost race.
    #[error("Lease {namespace}/{name}: {source}")]
    Api {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    /// The settings cannot work (renew deadline not shorter than the lease).
    #[error(
        "leader election: renew deadline ({renew_deadline:?}) must be shorter than the lease duration ({lease_duration:?})"
    )]
    Settings {
        renew_deadline: Duration,
        lease_duration: Duration,
    },
}

/// Why [`LeaderElector::hold`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldEnd {
    /// Shutdown was requested; the Lease is still ours until [`LeaderElector::release`].
    Cancelled,
    /// Renewal failed for longer than the renew deadline, or someone else holds the Lease.
    Lost,
}

/// The last lease record seen, and when (on our clock) it was first seen.
#[derive(Debug)]
struct Observed {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    since: Instant,
}

/// One replica's view of the election.
pub struct LeaderElector {
    api: Api<Lease>,
    settings: LeaseSettings,
    observed: Option<Observed>,
}

impl LeaderElector {
    /// An elector for the Lease named in `settings`.
    pub fn new(client: Client, settings: LeaseSettings) -> Result<Self, Error> {
        if settings.renew_deadline >= settings.lease_duration {
            return Err(Error::Settings {
                renew_deadline: settings.renew_deadline,
                lease_duration: settings.lease_duration,
            });
        }
        Ok(Self {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            observed: None,
        })
    }

    /// The identity this elector campaigns as.
    pub fn identity(&self) -> &str {
        &self.settings.identity
    }

    /// Waits until this replica holds the Lease (`true`) or `cancel` fires (`false`).
    /// API errors are logged and retried: a standby must survive API server restarts.
    pub async fn acquire(&mut self, cancel: &CancellationToken) -> bool {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    info!(identity = %self.settings.identity, lease = %self.settings.name, "became leader");
                    return true;
                }
                Ok(false) => {}
                Err(error) => warn!(%error, "leader election: acquiring the Lease failed"),
            }
            tokio::select! {
                () = cancel.cancelled() => return false,
                () = tokio::time::sleep(self.settings.retry_period) => {}
            }
        }
    }

    /// Renews the Lease every retry period until `cancel` fires or leadership is lost.
    pub async fn hold(&mut self, cancel: &CancellationToken) -> HoldEnd {
        let mut last_renewal = Instant::now();
        loop {
            tokio::select! {
                () = cancel.cancelled() => return HoldEnd::Cancelled,
                () = tokio::time::sleep(self.settings.retry_period) => {}
            }
            let attempt =
                tokio::time::timeout(self.settings.renew_deadline, self.try_acquire_or_renew())
                    .await;
            match attempt {
                Ok(Ok(true)) => last_renewal = Instant::now(),
                Ok(Ok(false)) => {
                    warn!(identity = %self.settings.identity, "leader election: another replica holds the Lease");
                    return HoldEnd::Lost;
                }
                Ok(Err(error)) => warn!(%error, "leader election: renewing the Lease failed"),
                Err(_) => warn!("leader election: renewing the Lease timed out"),
            }
            if last_renewal.elapsed() >= self.settings.renew_deadline {
                warn!(identity = %self.settings.identity, "leader election: renew deadline passed, stepping down");
                return HoldEnd::Lost;
            }
        }
    }

    /// Gives the Lease up if this replica holds it, so a standby can take over immediately.
    pub async fn release(&mut self) -> Result<(), Error> {
        let Some(lease) = self.get().await? else {
            return Ok(());
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
            return Ok(());
        }
        let released = Lease {
            metadata: lease.metadata.clone(),
            spec: Some(LeaseSpec {
                holder_identity: None,
                acquire_time: None,
                renew_time: Some(MicroTime(Timestamp::now())),
                lease_duration_seconds: Some(1),
                ..spec
            }),
        };
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &released)
            .await
        {
            Ok(_) => {
                info!(identity = %self.settings.identity, lease = %self.settings.name, "released the Lease");
                Ok(())
            }
            // Someone changed it meanwhile: it is no longer ours to release.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(source) => Err(self.api_error(source)),
        }
    }

    /// One round of the protocol. `Ok(true)` when this replica holds the Lease afterwards.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, Error> {
        let now = Timestamp::now();
        let lease_seconds =
            i32::try_from(self.settings.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX);
        let Some(current) = self.get().await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.settings.name.clone()),
                    namespace: Some(self.settings.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.settings.identity.clone()),
                    lease_duration_seconds: Some(lease_seconds),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.observe(&created);
                    Ok(true)
                }
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                Err(source) => Err(self.api_error(source)),
            };
        };
        self.observe(&current);
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let ours = holder.as_deref() == Some(self.settings.identity.as_str());
        if let Some(other) = holder.as_deref()
            && !ours
        {
            let valid_for = Duration::from_secs(
                u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0),
            );
            let seen_for = self
                .observed
                .as_ref()
                .map(|o| o.since.elapsed())
                .unwrap_or_default();
            if seen_for < valid_for {
                debug!(
                    holder = other,
                    "leader election: Lease held by another replica"
                );
                return Ok(false);
            }
            info!(
                holder = other,
                "leader election: Lease expired, taking over"
            );
        }
        let transitions = spec.lease_transitions.unwrap_or(0);
        let updated = Lease {
            metadata: current.metadata.clone(),
            spec: Some(LeaseSpec {
                holder_identity: Some(self.settings.identity.clone()),
                lease_duration_seconds: Some(lease_seconds),
                renew_time: Some(MicroTime(now)),
                acquire_time: if ours {
                    spec.acquire_time.clone()
                } else {
                    Some(MicroTime(now))
                },
                lease_transitions: Some(if ours {
                    transitions
                } else {
                    transitions.saturating_add(1)
                }),
                ..spec
            }),
        };
        // `replace` sends metadata.resourceVersion: a concurrent writer makes this a 409.
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &updated)
            .await
        {
            Ok(written) => {
                self.observe(&written);
                Ok(true)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(source) => Err(self.api_error(source)),
        }
    }

    async fn get(&self) -> Result<Option<Lease>, Error> {
        self.api
            .get_opt(&self.settings.name)
            .await
            .map_err(|source| self.api_error(source))
    }

    /// Remembers the record; `since` restarts only when the record changed.
    fn observe(&mut self, lease: &Lease) {
        let spec = lease.spec.as_ref();
        let holder = spec.and_then(|s| s.holder_identity.clone());
        let renew_time = spec.and_then(|s| s.renew_time.clone());
        let unchanged = self
            .observed
            .as_ref()
            .is_some_and(|o| o.holder == holder && o.renew_time == renew_time);
        if !unchanged {
            self.observed = Some(Observed {
                holder,
                renew_time,
                since: Instant::now(),
            });
        }
    }

    fn api_error(&self, source: kube::Error) -> Error {
        Error::Api {
            namespace: self.settings.namespace.clone(),
            name: self.settings.name.clone(),
            source,
        }
    }
}
