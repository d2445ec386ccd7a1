//! Latency bins: one fixed log-scale scale shared by every bucket of every monitor.
//!
//! A latency `v` (µs) falls in bin `ceil(log_γ(v / MIN_US))` with `γ = (1 + α) / (1 − α)` and
//! `α` = [`RELATIVE_ERROR`]; bin `i ≥ 1` covers `(MIN_US·γ^(i−1), MIN_US·γ^i]` and is reported
//! as `2·MIN_US·γ^i / (γ + 1)`, which is within `α` of every value in the bin. Bin 0 holds
//! everything up to [`MIN_US`] (reported as `MIN_US`, within 10 µs). Values above
//! [`MAX_LATENCY_US`] count in the last bin. The scale has [`BINS`] bins, so a bin number fits a
//! `u16` and a whole histogram can be merged on the stack for a query; buckets keep only the
//! bins they use (see `window.rs`).

/// Relative error of a reported quantile against the latency of the sample at that rank.
pub const RELATIVE_ERROR: f64 = 0.03;

/// Smallest latency told apart from zero, in microseconds.
pub const MIN_US: f64 = 10.0;

/// Largest latency kept apart from others, in microseconds (one hour); no probe timeout is
/// that long.
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Number of bins on the scale (`bin(MAX_LATENCY_US) + 1`, checked by a test).
pub const BINS: usize = 330;

/// `γ`, the ratio between the upper bounds of two neighbouring bins.
fn gamma() -> f64 {
    (1.0 + RELATIVE_ERROR) / (1.0 - RELATIVE_ERROR)
}

/// The bin of a latency in microseconds.
pub fn bin(micros: u64) -> u16 {
    let v = micros.min(MAX_LATENCY_US) as f64;
    if v <= MIN_US {
        return 0;
    }
    let i = ((v / MIN_US).ln() / gamma().ln()).ceil();
    // `i` is at most BINS - 1 for MAX_LATENCY_US (tested); the clamp keeps rounding safe.
    (i as usize).min(BINS - 1) as u16
}

/// The value reported for bin `i`, in microseconds.
pub fn representative_us(i: u16) -> f64 {
    if i == 0 {
        return MIN_US;
    }
    let g = gamma();
    2.0 * MIN_US * g.powi(i32::from(i)) / (g + 1.0)
}

/// A window's latencies merged from its buckets: one counter per bin.
pub struct Merged {
    counts: Box<[u64; BINS]>,
    total: u64,
}

impl Merged {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            counts: Box::new([0; BINS]),
            total: 0,
        }
    }

    /// Adds `count` latencies in bin `i`.
    pub fn add(&mut self, i: u16, count: u64) {
        if let Some(c) = self.counts.get_mut(usize::from(i)) {
            *c += count;
            self.total += count;
        }
    }

    /// The latency in milliseconds at quantile `q` (the sample of rank `ceil(q·n)`), reported
    /// as its bin's representative; unset when empty.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0u64;
        for (i, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(representative_us(i as u16) / 1000.0);
            }
        }
        None
    }
}

/// Adds one latency to a bucket's sparse histogram (`(bin, count)` sorted by bin).
pub fn record(bins: &mut Vec<(u16, u32)>, micros: u64) {
    let b = bin(micros);
    match bins.binary_search_by_key(&b, |&(i, _)| i) {
        Ok(at) => bins[at].1 = bins[at].1.saturating_add(1),
        Err(at) => {
            // Grow in small steps: the capacity is memory the bucket holds until it is sealed.
            if bins.len() == bins.capacity() {
                bins.reserve_exact(4);
            }
            bins.insert(at, (b, 1));
        }
    }
}
