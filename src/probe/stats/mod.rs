//! Rolling-window statistics of one monitor and its components, in small bounded memory.
//!
//! Every probe becomes a [`Sample`]. [`MonitorStats`] keeps, for each window the spec names
//! (e.g. 5m, 1h, 24h, 30d), a ring of time buckets; each bucket counts samples, up samples and
//! the latency sum, keeps a sparse log-scale latency histogram, and per component counts
//! up/down and sums the numeric body value. A query merges the buckets inside the window into a
//! [`WindowSnapshot`]: uptime, error rate, exact mean latency, p95 and p99 from the merged
//! histogram, and per-component availability and value mean.
//!
//! **Bucket ladder.** A window `W` gets `buckets_per_window` buckets (default 12) of width
//! `W / 12`: 25 s for 5m, 5 min for 1h, 2 h for 24h, 2.5 days for 30d. The window edge moves in
//! steps of one bucket (see `window.rs`): a 5m window answers over the last 4m35s–5m, a 30d
//! window over the last 27.5–30 days. More buckets move the edge in finer steps and cost
//! memory in proportion.
//!
//! **Accuracy.** Counts, uptime, error rate and the mean latency are exact. p95/p99 come from a
//! fixed log-scale histogram (`latency.rs`): the reported value is within ±3 % of the latency of
//! the sample at that rank (±0.01 ms below 10 µs), whatever the window. Component availability
//! and error rate are exact; a component's value mean is within ±1e-7 (relative): each bucket's
//! value sum is kept as `f64` while the bucket fills and rounded once to `f32` when it is sealed.
//!
//! **Memory.** Each window's buckets are encoded into one byte string with variable-length
//! integers (only the histogram bins a bucket used are written; see `window.rs`), so
//! memory follows what happened, not the number of samples: a monitor probed every 10 s with
//! windows 5m/1h/24h/30d and two components holds a few kilobytes after a month
//! (`tests.rs` measures it: [`MonitorStats::heap_bytes`]). [`MonitorStats::memory_bound_bytes`]
//! is the hard bound, reached only if every bucket used every latency bin. At most
//! `max_components` distinct component names and `max_exclusions` exclusion ranges are kept.
//!
//! **Exclusions.** [`MonitorStats::exclude`] registers a time range (a maintenance window);
//! samples whose time falls in it are counted as `excluded_samples` and count toward nothing
//! else (not uptime, error rate, latency or components). Exclusions apply when a sample is
//! recorded, so register a maintenance window before or when it opens, not afterwards.

mod latency;
mod window;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::time::Duration;

use chrono::{DateTime, Utc};

use latency::Merged;
use window::{Bucket, ComponentCounts, Ring};

/// Longest window kept (400 days): longer ones are a spec mistake, not a statistic.
pub const MAX_WINDOW: Duration = Duration::from_secs(400 * 24 * 3600);

/// Most windows one monitor may keep (the HealthMonitor API allows 8).
pub const MAX_WINDOWS: usize = 16;

/// Most component names any configuration may keep (the API allows 32).
pub const MAX_COMPONENTS: usize = 256;

/// Why statistics could not be set up or queried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatsError {
    /// No window at all.
    #[error("statistics windows: at least one window is needed")]
    NoWindows,
    /// More windows than [`MAX_WINDOWS`].
    #[error("statistics windows: {count} windows given, at most {MAX_WINDOWS} are kept")]
    TooManyWindows {
        /// Distinct windows given.
        count: usize,
    },
    /// A zero window or one longer than [`MAX_WINDOW`].
    #[error("statistics window {window:?}: must be longer than zero and at most 400 days")]
    BadWindow {
        /// The offending window.
        window: Duration,
    },
    /// Zero buckets per window, or more than 1,000.
    #[error("statistics buckets_per_window {buckets}: must be 1 to 1000")]
    BadBuckets {
        /// The offending value.
        buckets: u32,
    },
    /// A query for a window the monitor does not keep.
    #[error("statistics window {window:?} is not kept for this monitor (kept: {kept:?})")]
    UnknownWindow {
        /// The window asked for.
        window: Duration,
        /// The windows kept.
        kept: Vec<Duration>,
    },
    /// An exclusion range that ends before it starts.
    #[error("statistics exclusion {start} – {end}: the end must be after the start")]
    EmptyExclusion {
        /// Start of the range.
        start: DateTime<Utc>,
        /// End of the range.
        end: DateTime<Utc>,
    },
}

/// Tuning of [`MonitorStats`]; the defaults suit a monitor probed every few seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatsConfig {
    /// Buckets per window: more buckets move the window edge in finer steps and cost memory.
    pub buckets_per_window: u32,
    /// Distinct component names kept (at most [`MAX_COMPONENTS`]); further names are ignored
    /// (the API allows 32).
    pub max_components: usize,
    /// Exclusion ranges kept; the oldest is forgotten first.
    pub max_exclusions: usize,
}

impl Default for StatsConfig {
    fn default() -> Self {
        Self {
            buckets_per_window: 12,
            max_components: 32,
            max_exclusions: 64,
        }
    }
}

/// The result of one probe, as statistics see it.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// When the probe started.
    pub at: DateTime<Utc>,
    /// Whether every check passed.
    pub up: bool,
    /// How long the probe took (also recorded for failed probes: a timeout is a latency too).
    pub latency: Duration,
    /// Components read from the body in this probe.
    pub components: Vec<ComponentSample>,
}

/// One component's reading in one probe.
#[derive(Clone, Debug, PartialEq)]
pub struct ComponentSample {
    /// Component name (as in the spec).
    pub name: String,
    /// Whether it was up; unset when the component only carries a value.
    pub up: Option<bool>,
    /// The number read from the body (DB latency, cache hit rate), if any.
    pub value: Option<f64>,
}

/// Statistics of one monitor over one window at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowSnapshot {
    /// The window.
    pub window: Duration,
    /// Samples counted (excluded ones not included).
    pub samples: u64,
    /// Samples that fell in an exclusion range.
    pub excluded_samples: u64,
    /// Percentage of counted samples that were up; unset without samples.
    pub uptime_pct: Option<f64>,
    /// Percentage of counted samples that were down; unset without samples.
    pub error_rate_pct: Option<f64>,
    /// Mean latency in milliseconds (exact).
    pub mean_ms: Option<f64>,
    /// 95th percentile latency in milliseconds (histogram precision).
    pub p95_ms: Option<f64>,
    /// 99th percentile latency in milliseconds (histogram precision).
    pub p99_ms: Option<f64>,
    /// Every component seen so far, in order of first appearance.
    pub components: Vec<ComponentSnapshot>,
}

/// One component's statistics over one window.
#[derive(Clone, Debug, PartialEq)]
pub struct ComponentSnapshot {
    /// Component name.
    pub name: String,
    /// Samples in which the component's up/down was known.
    pub samples: u64,
    /// Percentage of those in which it was up.
    pub availability_pct: Option<f64>,
    /// Percentage of those in which it was down (e.g. AI provider errors).
    pub error_rate_pct: Option<f64>,
    /// Samples that carried a numeric value.
    pub value_samples: u64,
    /// Mean of the values.
    pub value_mean: Option<f64>,
    /// The newest value, if it was read inside the window.
    pub value_last: Option<f64>,
}

/// A component name and its newest value (time in ms since the epoch).
#[derive(Clone, Debug)]
struct KnownComponent {
    name: String,
    last_value: Option<(i64, f64)>,
}

/// Rolling-window statistics of one monitor (see the module docs).
#[derive(Clone, Debug)]
pub struct MonitorStats {
    config: StatsConfig,
    rings: Vec<(Duration, Ring)>,
    components: Vec<KnownComponent>,
    /// Excluded ranges `[start, end)` in ms since the epoch.
    exclusions: Vec<(i64, i64)>,
    newest_ms: Option<i64>,
    ignored_components: u64,
}

impl MonitorStats {
    /// Statistics over `windows` (duplicates kept once) with the default [`StatsConfig`].
    pub fn new(windows: &[Duration]) -> Result<Self, StatsError> {
        Self::with_config(windows, StatsConfig::default())
    }

    /// Statistics over `windows` with explicit tuning.
    pub fn with_config(windows: &[Duration], config: StatsConfig) -> Result<Self, StatsError> {
        if !(1..=1000).contains(&config.buckets_per_window) {
            return Err(StatsError::BadBuckets {
                buckets: config.buckets_per_window,
            });
        }
        let config = StatsConfig {
            max_components: config.max_components.min(MAX_COMPONENTS),
            ..config
        };
        let mut distinct: Vec<Duration> = Vec::new();
        for &window in windows {
            if window.is_zero() || window > MAX_WINDOW {
                return Err(StatsError::BadWindow { window });
            }
            if !distinct.contains(&window) {
                distinct.push(window);
            }
        }
        if distinct.is_empty() {
            return Err(StatsError::NoWindows);
        }
        if distinct.len() > MAX_WINDOWS {
            return Err(StatsError::TooManyWindows {
                count: distinct.len(),
            });
        }
        let rings = distinct
            .into_iter()
            .map(|w| (w, Ring::new(millis(w), config.buckets_per_window)))
            .collect();
        Ok(Self {
            config,
            rings,
            components: Vec::new(),
            exclusions: Vec::new(),
            newest_ms: None,
            ignored_components: 0,
        })
    }

    /// The windows kept, in the order given.
    pub fn windows(&self) -> impl Iterator<Item = Duration> + '_ {
        self.rings.iter().map(|(w, _)| *w)
    }

    /// Component readings ignored because `max_components` names were already known.
    pub fn ignored_components(&self) -> u64 {
        self.ignored_components
    }

    /// Excludes samples taken in `[start, end)` from every statistic (a maintenance window).
    /// Applies to samples recorded from now on.
    pub fn exclude(&mut self, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<(), StatsError> {
        if end <= start {
            return Err(StatsError::EmptyExclusion { start, end });
        }
        let range = (start.timestamp_millis(), end.timestamp_millis());
        if !self.exclusions.contains(&range) {
            self.exclusions.push(range);
        }
        self.prune_exclusions();
        Ok(())
    }

    /// Whether a sample taken at `at` would be excluded.
    pub fn is_excluded(&self, at: DateTime<Utc>) -> bool {
        let t = at.timestamp_millis();
        self.exclusions.iter().any(|&(s, e)| s <= t && t < e)
    }

    /// Records one probe. Samples may arrive slightly out of order; a sample older than what a
    /// window's ring still holds at its slot is ignored by that window. Time comes from the
    /// samples only, so a clock stepped far back loses samples until it catches up.
    pub fn record(&mut self, sample: &Sample) {
        let at_ms = sample.at.timestamp_millis();
        let excluded = self.is_excluded(sample.at);
        let micros = u64::try_from(sample.latency.as_micros()).unwrap_or(u64::MAX);
        let readings: Vec<(usize, Option<bool>, Option<f64>)> = if excluded {
            Vec::new()
        } else {
            sample
                .components
                .iter()
                .filter_map(|c| Some((self.component_slot(&c.name)?, c.up, c.value)))
                .collect()
        };
        for (_, ring) in &mut self.rings {
            ring.record(at_ms, |bucket: &mut Bucket| {
                if excluded {
                    bucket.record_excluded();
                } else {
                    bucket.record(sample.up, micros, &readings);
                }
            });
        }
        if !excluded {
            for &(slot, _, value) in &readings {
                let Some(value) = value.filter(|v| v.is_finite()) else {
                    continue;
                };
                if let Some(known) = self.components.get_mut(slot)
                    && known.last_value.is_none_or(|(t, _)| t <= at_ms)
                {
                    known.last_value = Some((at_ms, value));
                }
            }
        }
        if self.newest_ms.is_none_or(|t| t < at_ms) {
            self.newest_ms = Some(at_ms);
            self.prune_exclusions();
        }
    }

    /// Statistics over `window` (one of the windows kept) ending at `now`.
    pub fn snapshot(
        &self,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<WindowSnapshot, StatsError> {
        let Some((_, ring)) = self.rings.iter().find(|(w, _)| *w == window) else {
            return Err(StatsError::UnknownWindow {
                window,
                kept: self.windows().collect(),
            });
        };
        let now_ms = now.timestamp_millis();
        let mut total = 0u64;
        let mut up = 0u64;
        let mut excluded = 0u64;
        let mut latency_sum_us = 0u128;
        let mut histogram = Merged::new();
        let mut components = vec![ComponentCounts::default(); self.components.len()];
        ring.for_each_in_window(now_ms, |bucket| {
            total += u64::from(bucket.total);
            up += u64::from(bucket.up);
            excluded += u64::from(bucket.excluded);
            latency_sum_us += u128::from(bucket.latency_sum_us);
            for &(bin, count) in &bucket.bins {
                histogram.add(bin, u64::from(count));
            }
            for (merged, counts) in components.iter_mut().zip(&bucket.components) {
                merged.merge(counts);
            }
        });
        let oldest_ms = now_ms.saturating_sub(ring.window_ms);
        Ok(WindowSnapshot {
            window,
            samples: total,
            excluded_samples: excluded,
            uptime_pct: percent(up, total),
            error_rate_pct: percent(total - up, total),
            mean_ms: (total > 0).then(|| latency_sum_us as f64 / total as f64 / 1000.0),
            p95_ms: histogram.quantile_ms(0.95),
            p99_ms: histogram.quantile_ms(0.99),
            components: self
                .components
                .iter()
                .zip(&components)
                .map(|(known, c)| component_snapshot(known, c, oldest_ms, now_ms))
                .collect(),
        })
    }

    /// Statistics over every window kept, in order.
    pub fn snapshots(&self, now: DateTime<Utc>) -> Vec<WindowSnapshot> {
        self.windows()
            .filter_map(|w| self.snapshot(w, now).ok())
            .collect()
    }

    /// The most heap memory these statistics can ever hold with up to `components` components
    /// (computed from bucket counts; independent of how many samples are recorded).
    pub fn memory_bound_bytes(&self, components: usize) -> usize {
        let components = components.min(self.config.max_components);
        std::mem::size_of::<Self>()
            + self
                .rings
                .iter()
                .map(|(_, r)| r.max_heap_bytes(components))
                .sum::<usize>()
            + components * (std::mem::size_of::<KnownComponent>() + 64)
            + self.config.max_exclusions * 2 * std::mem::size_of::<(i64, i64)>()
    }

    /// An estimate of the heap memory held now (counters and buffers, names not included).
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .rings
                .iter()
                .map(|(_, r)| r.heap_bytes())
                .sum::<usize>()
            + self.components.capacity() * std::mem::size_of::<KnownComponent>()
            + self.exclusions.capacity() * std::mem::size_of::<(i64, i64)>()
    }

    /// The slot of component `name`, registering it if there is room.
    fn component_slot(&mut self, name: &str) -> Option<usize> {
        if let Some(slot) = self.components.iter().position(|c| c.name == name) {
            return Some(slot);
        }
        if self.components.len() >= self.config.max_components {
            self.ignored_components += 1;
            return None;
        }
        self.components.push(KnownComponent {
            name: name.to_owned(),
            last_value: None,
        });
        Some(self.components.len() - 1)
    }

    /// Forgets exclusions that ended before the longest window, then the oldest over the cap.
    fn prune_exclusions(&mut self) {
        if let Some(newest) = self.newest_ms {
            let longest = self
                .rings
                .iter()
                .map(|(_, r)| r.window_ms)
                .max()
                .unwrap_or(0);
            let horizon = newest.saturating_sub(longest);
            self.exclusions.retain(|&(_, end)| end > horizon);
        }
        if self.exclusions.len() > self.config.max_exclusions {
            self.exclusions.sort_by_key(|&(_, end)| end);
            let surplus = self.exclusions.len() - self.config.max_exclusions;
            self.exclusions.drain(..surplus);
        }
    }
}

/// A component's snapshot from its merged counts.
fn component_snapshot(
    known: &KnownComponent,
    c: &ComponentCounts,
    oldest_ms: i64,
    now_ms: i64,
) -> ComponentSnapshot {
    let judged = u64::from(c.judged);
    let up = u64::from(c.up);
    let has_values = c.values > 0;
    ComponentSnapshot {
        name: known.name.clone(),
        samples: judged,
        availability_pct: percent(up, judged),
        error_rate_pct: percent(judged - up, judged),
        value_samples: u64::from(c.values),
        value_mean: has_values.then(|| c.value_sum / f64::from(c.values)),
        value_last: known
            .last_value
            .filter(|&(t, _)| t >= oldest_ms && t <= now_ms)
            .map(|(_, v)| v),
    }
}

/// `part / whole` in percent; unset when `whole` is 0.
fn percent(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 * 100.0 / whole as f64)
}

/// A window in milliseconds (windows are at most [`MAX_WINDOW`], so this fits).
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
