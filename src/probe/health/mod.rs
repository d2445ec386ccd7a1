//! Health evaluation: consecutive probe results and window-statistic thresholds with hysteresis.
//!
//! A [`HealthEvaluator`] is fed every probe result ([`HealthEvaluator::record_probe`]) and asked
//! for an [`Evaluation`] against the current window statistics ([`HealthEvaluator::evaluate`]).
//!
//! **Down and up.** The target is Down after `failure_threshold` failed probes in a row and up
//! again after `success_threshold` successful probes in a row; fewer failures do not make it
//! Down, fewer successes do not bring it back, so single lost probes change nothing.
//!
//! **Threshold levels with hysteresis.** Each [`ThresholdRule`] is at Ok, Warning or Critical.
//! A level is *entered* as soon as the statistic crosses it (no delay: a real problem shows at
//! once). A level is *left* only when the statistic is back past the level by a margin and has
//! stayed there for `clear_after` evaluations in a row. The margin is `margin_fraction` (default
//! 10 %) of the distance between the level and the statistic's ideal value: 100 for
//! `Below` percentages (uptime 99.5 % clears at 99.55 %), 0 for everything else `Above` (latency
//! 500 ms clears at 450 ms, error rate 1 % at 0.9 %), and the level itself for `Below` numbers
//! of unknown scale (cache hit rate 60 clears at 66). So a statistic hovering around a level
//! raises the level once instead of toggling it (and its alert) on every probe. A rule whose
//! window holds fewer than `min_samples` (a new monitor, a window emptied by a maintenance
//! exclusion, statistics lost in a restart) is not judged: its value is unset and it keeps the
//! level it had (Ok for a new monitor, the restored one after a restart), so a restart does not
//! resolve an open Critical before the statistics have refilled.
//!
//! **Overall health.** Suppressed while a maintenance window is open (set by the caller); else
//! Down when down; else Critical when any rule is Critical; else Degraded when any is at Warning;
//! else Unknown before the first successful probe or while any rule lacks `min_samples`; else
//! Healthy. `changed` compares with the previous evaluation (the first one is a change unless it
//! is Unknown).

#[cfg(test)]
mod tests;

use std::time::Duration;

use super::stats::{MonitorStats, WindowSnapshot};

/// Why a health policy was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HealthError {
    /// A consecutive-probe threshold of zero.
    #[error("health policy {field}: must be at least 1")]
    ZeroThreshold {
        /// `failure_threshold` or `success_threshold`.
        field: &'static str,
    },
    /// A rule with neither a warning nor a critical level.
    #[error("threshold {rule:?}: set warning, critical or both")]
    NoLevel {
        /// Rule name.
        rule: String,
    },
    /// A warning level that is not milder than the critical one.
    #[error(
        "threshold {rule:?}: warning {warning} must be milder than critical {critical} (higher for Below, lower for Above)"
    )]
    WarningNotMilder {
        /// Rule name.
        rule: String,
        /// The warning level.
        warning: f64,
        /// The critical level.
        critical: f64,
    },
    /// A level that is not a finite number.
    #[error("threshold {rule:?}: levels must be finite numbers")]
    NotFinite {
        /// Rule name.
        rule: String,
    },
    /// Two rules with the same name.
    #[error("threshold {rule:?}: the name is used twice")]
    DuplicateName {
        /// Rule name.
        rule: String,
    },
    /// A hysteresis margin outside 0–1.
    #[error("health policy hysteresis.margin_fraction {value}: must be between 0 and 1")]
    BadMargin {
        /// The offending value.
        value: f64,
    },
}

/// Overall health of a monitored target (the controller maps it to the API's `Health`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Health {
    /// Probes pass and no threshold is past its warning level.
    Healthy,
    /// A threshold is at its warning level.
    Degraded,
    /// A threshold is at its critical level.
    Critical,
    /// `failure_threshold` consecutive probes failed.
    Down,
    /// No probe yet, or a threshold's window holds fewer than `min_samples` probes.
    Unknown,
    /// A maintenance window is open: probes run, alerts and remediation are held back.
    Suppressed,
}

/// How bad one threshold currently is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Not past the warning level (or not judged yet).
    #[default]
    Ok,
    /// Past the warning level but not the critical one.
    Warning,
    /// Past the critical level.
    Critical,
}

/// Which side of a level is bad.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Bad above the level (error rates, latencies).
    Above,
    /// Bad below the level (uptime, availability, hit rates).
    Below,
}

/// The statistic a rule compares.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Percentage of probes up.
    Uptime,
    /// Percentage of probes down.
    ErrorRate,
    /// Mean latency in milliseconds.
    LatencyMean,
    /// 95th percentile latency in milliseconds.
    LatencyP95,
    /// 99th percentile latency in milliseconds.
    LatencyP99,
    /// Percentage of probes in which the named component was up.
    ComponentAvailability(String),
    /// Percentage of probes in which the named component was down.
    ComponentErrorRate(String),
    /// Mean of the named component's numeric value.
    ComponentValue(String),
}

impl Metric {
    /// Whether the metric is a percentage (0–100).
    pub fn is_percentage(&self) -> bool {
        matches!(
            self,
            Self::Uptime
                | Self::ErrorRate
                | Self::ComponentAvailability(_)
                | Self::ComponentErrorRate(_)
        )
    }

    /// The metric's value in `snapshot` and the number of samples it rests on.
    pub fn read(&self, snapshot: &WindowSnapshot) -> (Option<f64>, u64) {
        let component = |name: &str| snapshot.components.iter().find(|c| c.name == name);
        match self {
            Self::Uptime => (snapshot.uptime_pct, snapshot.samples),
            Self::ErrorRate => (snapshot.error_rate_pct, snapshot.samples),
            Self::LatencyMean => (snapshot.mean_ms, snapshot.samples),
            Self::LatencyP95 => (snapshot.p95_ms, snapshot.samples),
            Self::LatencyP99 => (snapshot.p99_ms, snapshot.samples),
            Self::ComponentAvailability(name) => {
                component(name).map_or((None, 0), |c| (c.availability_pct, c.samples))
            }
            Self::ComponentErrorRate(name) => {
                component(name).map_or((None, 0), |c| (c.error_rate_pct, c.samples))
            }
            Self::ComponentValue(name) => {
                component(name).map_or((None, 0), |c| (c.value_mean, c.value_samples))
            }
        }
    }
}

/// A warning and/or critical level on one statistic over one window.
#[derive(Clone, Debug, PartialEq)]
pub struct ThresholdRule {
    /// Name used in alerts, status and remediation triggers.
    pub name: String,
    /// The statistic compared.
    pub metric: Metric,
    /// The window it is computed over (one the [`MonitorStats`] keeps).
    pub window: Duration,
    /// Which side of the levels is bad.
    pub direction: Direction,
    /// Warning level.
    pub warning: Option<f64>,
    /// Critical level (further on the bad side than `warning`).
    pub critical: Option<f64>,
    /// Fewest samples the window must hold before the rule is judged.
    pub min_samples: u64,
}

impl ThresholdRule {
    /// Whether `value` is past `level` on the bad side.
    pub fn breaches(&self, value: f64, level: f64) -> bool {
        match self.direction {
            Direction::Above => value > level,
            Direction::Below => value < level,
        }
    }

    /// The level `value` is at, without hysteresis.
    pub fn level_of(&self, value: f64) -> Level {
        if self.critical.is_some_and(|c| self.breaches(value, c)) {
            Level::Critical
        } else if self.warning.is_some_and(|w| self.breaches(value, w)) {
            Level::Warning
        } else {
            Level::Ok
        }
    }

    /// The value a statistic must get back past to leave `level` (see the module docs).
    pub fn clear_value(&self, level: f64, margin_fraction: f64) -> f64 {
        let ideal = match self.direction {
            Direction::Above => 0.0,
            Direction::Below if self.metric.is_percentage() => 100.0,
            Direction::Below => 2.0 * level,
        };
        level + (ideal - level) * margin_fraction
    }

    /// Whether a value has not yet cleared `level` (it is still on the bad side of the clear
    /// value).
    fn holds(&self, value: f64, level: Option<f64>, margin_fraction: f64) -> bool {
        level.is_some_and(|l| {
            let clear = self.clear_value(l, margin_fraction);
            match self.direction {
                Direction::Above => value > clear,
                Direction::Below => value < clear,
            }
        })
    }

    fn validate(&self) -> Result<(), HealthError> {
        let rule = || self.name.clone();
        if self.warning.is_none() && self.critical.is_none() {
            return Err(HealthError::NoLevel { rule: rule() });
        }
        if [self.warning, self.critical]
            .iter()
            .flatten()
            .any(|v| !v.is_finite())
        {
            return Err(HealthError::NotFinite { rule: rule() });
        }
        if let (Some(warning), Some(critical)) = (self.warning, self.critical)
            && !self.breaches(critical, warning)
        {
            return Err(HealthError::WarningNotMilder {
                rule: rule(),
                warning,
                critical,
            });
        }
        Ok(())
    }
}

/// How levels are left (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hysteresis {
    /// Fraction (0–1) of the distance from a level to the ideal value the statistic must get
    /// back past before the level clears. 0 disables the margin.
    pub margin_fraction: f64,
    /// Evaluations in a row the statistic must stay cleared before the level drops (1 = at
    /// once).
    pub clear_after: u32,
}

impl Default for Hysteresis {
    fn default() -> Self {
        Self {
            margin_fraction: 0.1,
            clear_after: 3,
        }
    }
}

/// How probe results and statistics become health.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthPolicy {
    /// Failed probes in a row after which the target is Down.
    pub failure_threshold: u32,
    /// Successful probes in a row after which a Down target is up again.
    pub success_threshold: u32,
    /// Warning and critical levels on window statistics.
    pub thresholds: Vec<ThresholdRule>,
    /// How levels are left.
    pub hysteresis: Hysteresis,
}

impl Default for HealthPolicy {
    /// The API's defaults: Down after 3 failures, up after 1 success, no thresholds.
    fn default() -> Self {
        Self {
            failure_threshold: 3,
            success_threshold: 1,
            thresholds: Vec::new(),
            hysteresis: Hysteresis::default(),
        }
    }
}

impl HealthPolicy {
    /// Checks the policy: thresholds ≥ 1, levels set, finite and in order, names unique.
    pub fn validate(&self) -> Result<(), HealthError> {
        if self.failure_threshold == 0 {
            return Err(HealthError::ZeroThreshold {
                field: "failure_threshold",
            });
        }
        if self.success_threshold == 0 {
            return Err(HealthError::ZeroThreshold {
                field: "success_threshold",
            });
        }
        let margin = self.hysteresis.margin_fraction;
        if !(0.0..=1.0).contains(&margin) {
            return Err(HealthError::BadMargin { value: margin });
        }
        for (i, rule) in self.thresholds.iter().enumerate() {
            rule.validate()?;
            if self.thresholds[..i].iter().any(|r| r.name == rule.name) {
                return Err(HealthError::DuplicateName {
                    rule: rule.name.clone(),
                });
            }
        }
        Ok(())
    }
}

/// One rule's outcome in an [`Evaluation`].
#[derive(Clone, Debug, PartialEq)]
pub struct RuleLevel {
    /// Rule name.
    pub name: String,
    /// Level after hysteresis.
    pub level: Level,
    /// The statistic's value; unset while the window holds fewer than `min_samples`.
    pub value: Option<f64>,
    /// Whether `level` differs from the previous evaluation's.
    pub changed: bool,
}

/// The result of one evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Overall health.
    pub health: Health,
    /// Whether `health` differs from the previous evaluation's.
    pub changed: bool,
    /// Every rule, in policy order.
    pub levels: Vec<RuleLevel>,
    /// Whether the target is Down by consecutive failures (also while Suppressed).
    pub down: bool,
    /// Successful probes in a row.
    pub consecutive_successes: u32,
    /// Failed probes in a row.
    pub consecutive_failures: u32,
}

/// Hysteresis state of one rule.
#[derive(Clone, Copy, Debug, Default)]
struct RuleState {
    /// The level after hysteresis (Ok until a rule is first judged past a level).
    level: Level,
    /// Evaluations in a row in which a milder level would do.
    clearing: u32,
}

/// Health of one monitor over time (see the module docs).
#[derive(Clone, Debug)]
pub struct HealthEvaluator {
    policy: HealthPolicy,
    /// Whether any probe succeeded yet: until then a target that is not Down is Unknown.
    ever_up: bool,
    down: bool,
    consecutive_successes: u32,
    consecutive_failures: u32,
    rules: Vec<RuleState>,
    suppressed: bool,
    last_health: Option<Health>,
}

impl HealthEvaluator {
    /// An evaluator with no probe seen yet (health Unknown).
    pub fn new(policy: HealthPolicy) -> Result<Self, HealthError> {
        policy.validate()?;
        let rules = vec![RuleState::default(); policy.thresholds.len()];
        Ok(Self {
            policy,
            ever_up: false,
            down: false,
            consecutive_successes: 0,
            consecutive_failures: 0,
            rules,
            suppressed: false,
            last_health: None,
        })
    }

    /// The policy in force.
    pub fn policy(&self) -> &HealthPolicy {
        &self.policy
    }

    /// Takes up where a previous process left off (state read back from status), so a restart
    /// neither forgets a Down target nor re-enters levels already reported. `levels` pairs rule
    /// names with their last level; unknown names are ignored.
    pub fn restore(
        &mut self,
        down: bool,
        consecutive_successes: u32,
        consecutive_failures: u32,
        levels: &[(String, Level)],
        health: Health,
    ) {
        self.down = down;
        self.consecutive_successes = consecutive_successes;
        self.consecutive_failures = consecutive_failures;
        self.ever_up = health != Health::Unknown || consecutive_successes > 0;
        for (rule, state) in self.policy.thresholds.iter().zip(&mut self.rules) {
            if let Some((_, level)) = levels.iter().find(|(name, _)| *name == rule.name) {
                *state = RuleState {
                    level: *level,
                    clearing: 0,
                };
            }
        }
        self.last_health = Some(health);
    }

    /// Whether a maintenance window is open (health Suppressed; everything else still tracked).
    pub fn set_suppressed(&mut self, suppressed: bool) {
        self.suppressed = suppressed;
    }

    /// Counts one probe result toward Down/up.
    pub fn record_probe(&mut self, up: bool) {
        if up {
            self.ever_up = true;
            self.consecutive_successes = self.consecutive_successes.saturating_add(1);
            self.consecutive_failures = 0;
            if self.down && self.consecutive_successes >= self.policy.success_threshold {
                self.down = false;
            }
        } else {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            self.consecutive_successes = 0;
            if self.consecutive_failures >= self.policy.failure_threshold {
                self.down = true;
            }
        }
    }

    /// Evaluates every rule against `stats` at `now` (one snapshot per distinct window).
    pub fn evaluate_stats(
        &mut self,
        stats: &MonitorStats,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Evaluation {
        let mut snapshots: Vec<WindowSnapshot> = Vec::new();
        for rule in &self.policy.thresholds {
            if !snapshots.iter().any(|s| s.window == rule.window)
                && let Ok(snapshot) = stats.snapshot(rule.window, now)
            {
                snapshots.push(snapshot);
            }
        }
        self.evaluate(&snapshots)
    }

    /// Evaluates every rule against `snapshots` (a rule whose window is missing is not judged).
    pub fn evaluate(&mut self, snapshots: &[WindowSnapshot]) -> Evaluation {
        let margin = self.policy.hysteresis.margin_fraction;
        let clear_after = self.policy.hysteresis.clear_after.max(1);
        let mut levels = Vec::with_capacity(self.policy.thresholds.len());
        let mut unjudged = false;
        for (rule, state) in self.policy.thresholds.iter().zip(&mut self.rules) {
            let before = state.level;
            let value = snapshots
                .iter()
                .find(|s| s.window == rule.window)
                .map(|s| rule.metric.read(s))
                .and_then(|(value, samples)| value.filter(|_| samples >= rule.min_samples));
            let level = match value {
                None => {
                    unjudged = true;
                    state.clearing = 0;
                    before
                }
                Some(v) => step(rule, state, v, margin, clear_after),
            };
            levels.push(RuleLevel {
                name: rule.name.clone(),
                level,
                value,
                changed: level != before,
            });
        }
        let worst = levels.iter().map(|l| l.level).max().unwrap_or(Level::Ok);
        let health = if self.suppressed {
            Health::Suppressed
        } else if self.down {
            Health::Down
        } else if worst == Level::Critical {
            Health::Critical
        } else if worst == Level::Warning {
            Health::Degraded
        } else if !self.ever_up || unjudged {
            Health::Unknown
        } else {
            Health::Healthy
        };
        let changed = self.last_health.is_some_and(|h| h != health)
            || (self.last_health.is_none() && health != Health::Unknown);
        self.last_health = Some(health);
        Evaluation {
            health,
            changed,
            levels,
            down: self.down,
            consecutive_successes: self.consecutive_successes,
            consecutive_failures: self.consecutive_failures,
        }
    }
}

/// One hysteresis step of a judged rule: enter at once, leave after `clear_after` cleared
/// evaluations in a row.
fn step(
    rule: &ThresholdRule,
    state: &mut RuleState,
    value: f64,
    margin: f64,
    clear_after: u32,
) -> Level {
    let current = state.level;
    let raw = rule.level_of(value);
    // The level the value still holds when leaving gently: a level is held until the value is
    // back past its clear value.
    let held = if current == Level::Critical && rule.holds(value, rule.critical, margin) {
        Level::Critical
    } else if current >= Level::Warning && rule.holds(value, rule.warning, margin) {
        Level::Warning
    } else {
        Level::Ok
    };
    let target = raw.max(held);
    if target >= current {
        state.level = target;
        state.clearing = 0;
    } else {
        state.clearing += 1;
        if state.clearing >= clear_after {
            state.level = target;
            state.clearing = 0;
        }
    }
    state.level
}
