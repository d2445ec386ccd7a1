//! Shared state handed to every reconcile, plus the health state `/readyz` reports.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use super::metrics::Metrics;

/// Field manager of every write the controller makes (server-side apply).
pub const FIELD_MANAGER: &str = "watchkeeper";

/// `reportingController` of Events.
pub const REPORTING_CONTROLLER: &str = "watchkeeper.dev/controller";

/// Tunables of the reconcile loop.
#[derive(Clone, Debug)]
pub struct ReconcileSettings {
    /// Level-based resync: every object is reconciled again after this long even without a
    /// watch event, so drift (for example a status edited by hand) is repaired.
    pub resync: Duration,
    /// First retry delay after a failed reconcile; doubles per consecutive failure.
    pub backoff_base: Duration,
    /// Upper bound of the retry delay.
    pub backoff_max: Duration,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        Self {
            resync: Duration::from_secs(600),
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(300),
        }
    }
}

/// Everything a reconcile needs besides the object.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Publishes Kubernetes Events (`events.k8s.io/v1`).
    pub recorder: Recorder,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Loop tunables.
    pub settings: ReconcileSettings,
    /// The HealthMonitors this process probes.
    pub monitors: Arc<super::monitors::Monitors>,
    /// The CronJobSpecs this process reconciles into CronJobs and watches.
    pub cron_jobs: Arc<super::cron_job::CronJobs>,
    /// The BackupPolicies this process reconciles into CronJobs and judges.
    pub backups: Arc<super::backup::Backups>,
    /// Which MaintenanceWindows cover which resources (filled by the MaintenanceWindow
    /// reconciler, read by the other kinds).
    pub maintenance: Arc<super::maintenance::MaintenanceIndex>,
    /// The MaintenanceWindows this process opens and closes (fills `maintenance`).
    pub windows: Arc<super::maintenance::MaintenanceWindows>,
    /// The FailoverPlans this process drives (leader only, like every reconcile).
    pub failovers: Arc<super::failover::Failovers>,
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    /// A context whose Events name `identity` as the reporting instance. Must be called
    /// within a Tokio runtime (it starts the monitor runtime).
    pub fn new(
        client: Client,
        identity: &str,
        metrics: Arc<Metrics>,
        settings: ReconcileSettings,
    ) -> Self {
        let reporter = Reporter {
            controller: REPORTING_CONTROLLER.to_string(),
            instance: Some(identity.to_string()),
        };
        let maintenance = Arc::new(super::maintenance::MaintenanceIndex::new());
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            monitors: Arc::new(super::monitors::Monitors::new(metrics.monitor.clone())),
            cron_jobs: Arc::new(super::cron_job::CronJobs::new(
                super::cron_job::DEFAULT_AGENT_IMAGE,
                metrics.job.clone(),
            )),
            backups: Arc::new(super::backup::Backups::new(
                super::backup::DEFAULT_AGENT_IMAGE,
                metrics.backup.clone(),
            )),
            maintenance: maintenance.clone(),
            windows: Arc::new(super::maintenance::MaintenanceWindows::new(
                maintenance,
                metrics.maintenance.clone(),
            )),
            failovers: Arc::new(super::failover::Failovers::new(metrics.failover.clone())),
            metrics,
            settings,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Fills `index` (shared with the HTTP feeds) instead of a fresh one.
    pub fn with_maintenance(mut self, index: Arc<super::maintenance::MaintenanceIndex>) -> Self {
        self.windows = Arc::new(super::maintenance::MaintenanceWindows::new(
            index.clone(),
            self.metrics.maintenance.clone(),
        ));
        self.maintenance = index;
        self
    }

    /// Runs HTTP triggers of CronJobSpecs in `image` (the operator's own image).
    pub fn with_agent_image(mut self, image: &str) -> Self {
        self.cron_jobs = Arc::new(super::cron_job::CronJobs::new(
            image,
            self.metrics.job.clone(),
        ));
        self.backups = Arc::new(super::backup::Backups::new(
            image,
            self.metrics.backup.clone(),
        ));
        self
    }

    /// Records one more consecutive failure of `key` and returns the delay before the retry:
    /// `backoff_base * 2^(failures-1)`, capped at `backoff_max`.
    pub fn next_backoff(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let count = failures.entry(key.to_string()).or_insert(0);
        *count = count.saturating_add(1);
        backoff_delay(&self.settings, *count)
    }

    /// Forgets the failures of `key` after a successful reconcile.
    pub fn reset_backoff(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        failures.remove(key);
    }
}

/// Delay before retry number `failures` (1-based).
pub fn backoff_delay(settings: &ReconcileSettings, failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(31);
    settings
        .backoff_base
        .checked_mul(1u32 << exponent)
        .unwrap_or(settings.backoff_max)
        .min(settings.backoff_max)
}

/// What `/healthz` and `/readyz` report.
///
/// Readiness: a replica is ready once every kind's controller has finished its initial list,
/// or while it is a standby waiting for the leader Lease (it is healthy and able to take over;
/// marking it unready would only make rollouts and PodDisruptionBudgets misjudge it).
#[derive(Debug)]
pub struct Health {
    leader_election: bool,
    leader: AtomicBool,
    kinds_synced: Mutex<Vec<&'static str>>,
}

impl Health {
    /// Health of a process with or without leader election.
    pub fn new(leader_election: bool) -> Self {
        Self {
            leader_election,
            leader: AtomicBool::new(!leader_election),
            kinds_synced: Mutex::new(Vec::new()),
        }
    }

    /// Whether this replica currently acts (holds the Lease, or runs without election).
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::SeqCst)
    }

    /// Records a change of leadership; a new term starts with no kind synced.
    pub fn set_leader(&self, leader: bool) {
        self.leader.store(leader, Ordering::SeqCst);
        self.kinds_synced
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Records that `kind`'s initial list has completed.
    pub fn kind_synced(&self, kind: &'static str) {
        let mut synced = self
            .kinds_synced
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !synced.contains(&kind) {
            synced.push(kind);
        }
    }

    /// Kinds whose initial list has completed in this term.
    pub fn synced_kinds(&self) -> Vec<&'static str> {
        self.kinds_synced
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// `/readyz`: standby replicas are ready; an acting one once all five kinds are synced.
    pub fn is_ready(&self) -> bool {
        if self.leader_election && !self.is_leader() {
            return true;
        }
        self.synced_kinds().len() == crate::api::KINDS.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let settings = ReconcileSettings {
            resync: Duration::from_secs(1),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(10),
        };
        let delays: Vec<u64> = (1..=6)
            .map(|n| backoff_delay(&settings, n).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 10, 10]);
        assert_eq!(backoff_delay(&settings, u32::MAX).as_secs(), 10);
    }

    #[test]
    fn readiness_follows_leadership_and_sync() {
        let health = Health::new(true);
        assert!(health.is_ready(), "a standby is ready");
        health.set_leader(true);
        assert!(
            !health.is_ready(),
            "a new leader is not ready before its lists"
        );
        for kind in crate::api::KINDS {
            health.kind_synced(kind);
        }
        assert!(health.is_ready());
        health.set_leader(false);
        health.set_leader(true);
        assert!(!health.is_ready(), "a new term starts unsynced");

        let single = Health::new(false);
        assert!(single.is_leader());
        assert!(!single.is_ready());
    }
}
