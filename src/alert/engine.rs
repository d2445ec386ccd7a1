//! The dispatcher: runs [`decide`], sends the notifications through the sinks, and records
//! only what the receivers accepted.

use chrono::{DateTime, Utc};
use futures::future::join_all;

use super::{
    Alert, AlertConfigError, AlertState, AlertingConfig, Notification, SinkError, notice, route,
    sinks::Sinks, state::decide,
};

/// What one round did, for logs, events and metrics.
#[derive(Debug, Default)]
pub struct RoundReport {
    /// Notifications the receivers accepted.
    pub sent: Vec<Notification>,
    /// Notifications that failed; they stay owed and are decided again next round.
    pub failed: Vec<(Notification, SinkError)>,
    /// Notifications the per-channel rate limit dropped.
    pub dropped: Vec<Notification>,
    /// Notifications that would have been sent in a muted round (maintenance window); they
    /// stay owed and are decided again once rounds are no longer muted.
    pub muted: Vec<Notification>,
}

/// Alerting for one resource: its configuration, its persisted state and the sinks.
///
/// Create it from the state stored in status ([`AlertEngine::new`]); call
/// [`AlertEngine::round`] with the alerts firing now; write [`AlertEngine::state`] back to
/// status. A freshly created engine with the same state sends nothing that was already sent.
#[derive(Debug)]
pub struct AlertEngine {
    config: AlertingConfig,
    state: AlertState,
    sinks: Sinks,
}

impl AlertEngine {
    /// An engine with a validated configuration and previously persisted state
    /// (`AlertState::default()` for a new resource).
    pub fn new(
        config: AlertingConfig,
        state: AlertState,
        sinks: Sinks,
    ) -> Result<Self, AlertConfigError> {
        route::validate(&config)?;
        Ok(Self {
            config,
            state,
            sinks,
        })
    }

    /// Replaces the configuration (spec changed); the state is kept, so open alerts stay open
    /// and channels that disappeared are forgotten next round.
    pub fn set_config(&mut self, config: AlertingConfig) -> Result<(), AlertConfigError> {
        route::validate(&config)?;
        self.config = config;
        Ok(())
    }

    /// The configuration in force.
    pub fn config(&self) -> &AlertingConfig {
        &self.config
    }

    /// The state to persist after each round.
    pub fn state(&self) -> &AlertState {
        &self.state
    }

    /// One round: decides, sends every notification concurrently, records the successes.
    pub async fn round(&mut self, firing: &[Alert], now: DateTime<Utc>) -> RoundReport {
        let decision = decide(firing, &self.state, &self.config, now);
        let outcomes = join_all(decision.notifications.iter().map(|n| self.send(n))).await;
        let delivered: Vec<bool> = outcomes.iter().map(Result::is_ok).collect();
        self.state.apply(&decision, &delivered, now);

        let mut report = RoundReport::default();
        for (n, outcome) in decision.notifications.into_iter().zip(outcomes) {
            match outcome {
                Ok(()) => report.sent.push(n),
                Err(e) => report.failed.push((n, e)),
            }
        }
        report.dropped = decision
            .dropped
            .into_iter()
            .map(|d| d.notification)
            .collect();
        report
    }

    /// Sends a one-shot notice (see [`super::notice`]) to the channels its severity routes to
    /// that do not have it yet; call it again to retry the channels that failed. `notice.key`
    /// identifies it across calls and restarts.
    pub async fn notify(&mut self, notice: &Alert, now: DateTime<Utc>) -> RoundReport {
        let notifications = notice::decide_notice(notice, &self.state, &self.config, now);
        let outcomes = join_all(notifications.iter().map(|n| self.send(n))).await;
        let delivered: Vec<bool> = outcomes.iter().map(Result::is_ok).collect();
        self.state.apply_notice(&notifications, &delivered, now);
        let mut report = RoundReport::default();
        for (n, outcome) in notifications.into_iter().zip(outcomes) {
            match outcome {
                Ok(()) => report.sent.push(n),
                Err(e) => report.failed.push((n, e)),
            }
        }
        report
    }

    async fn send(&self, n: &Notification) -> Result<(), SinkError> {
        match self.config.channels.iter().find(|c| c.name == n.channel) {
            Some(channel) => self.sinks.send(channel, n).await,
            None => Err(SinkError::UnknownChannel(n.channel.clone())),
        }
    }

    /// A muted round, for maintenance windows: nothing is sent and nothing is dropped, but
    /// the engine notes which alerts stopped firing (so resolves owed from before the window
    /// carry the right end time). Alerts that fire and end within the window leave no trace;
    /// alerts still firing when rounds are no longer muted are triggered then, and resolves
    /// owed are sent then. The report's `muted` lists what would have gone out, for a summary.
    pub fn round_muted(&mut self, firing: &[Alert], now: DateTime<Utc>) -> RoundReport {
        let mut decision = decide(firing, &self.state, &self.config, now);
        let mut muted = std::mem::take(&mut decision.notifications);
        muted.extend(decision.dropped.drain(..).map(|d| d.notification));
        // Marks forgotten without sending (sendResolved off, removed channels) stay forgotten.
        self.state.apply(&decision, &[], now);
        RoundReport {
            muted,
            ..RoundReport::default()
        }
    }
}
