//! One rolling window: a ring of time buckets.
//!
//! A window of length `W` is cut into buckets of width `W / buckets_per_window` (at least 1 ms);
//! the ring holds one more bucket than the window spans, so the bucket being filled never
//! overwrites one still inside the window. A sample belongs to the bucket its time falls in, and
//! a window query at `now` counts every bucket that *started* at or after `now - W`: samples
//! younger than `W - width` always count, samples older than `W` never do, and in between the
//! window edge moves in steps of one bucket.

use super::latency::{Latencies, Shape};

/// Counts of one component in one bucket.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ComponentBucket {
    /// Samples in which the component's up/down was known.
    pub judged: u32,
    /// Of those, samples in which it was up.
    pub up: u32,
    /// Samples that carried a numeric value.
    pub values: u32,
    /// Sum of those values.
    pub value_sum: f64,
    /// Smallest value.
    pub value_min: f64,
    /// Largest value.
    pub value_max: f64,
}

impl ComponentBucket {
    /// Adds one observation of the component.
    pub fn record(&mut self, up: Option<bool>, value: Option<f64>) {
        if let Some(up) = up {
            self.judged = self.judged.saturating_add(1);
            if up {
                self.up = self.up.saturating_add(1);
            }
        }
        if let Some(v) = value.filter(|v| v.is_finite()) {
            if self.values == 0 {
                self.value_min = v;
                self.value_max = v;
            } else {
                self.value_min = self.value_min.min(v);
                self.value_max = self.value_max.max(v);
            }
            self.values = self.values.saturating_add(1);
            self.value_sum += v;
        }
    }

    /// Adds another bucket's counts of the same component.
    pub fn merge(&mut self, other: &Self) {
        if other.values > 0 {
            if self.values == 0 {
                self.value_min = other.value_min;
                self.value_max = other.value_max;
            } else {
                self.value_min = self.value_min.min(other.value_min);
                self.value_max = self.value_max.max(other.value_max);
            }
        }
        self.judged = self.judged.saturating_add(other.judged);
        self.up = self.up.saturating_add(other.up);
        self.values = self.values.saturating_add(other.values);
        self.value_sum += other.value_sum;
    }
}

/// One time bucket.
#[derive(Clone, Debug)]
pub(crate) struct Bucket {
    /// Bucket number: the bucket covers `[index × width, (index + 1) × width)` ms since the
    /// epoch. `i64::MIN` marks a slot never used.
    pub index: i64,
    /// Samples counted (not excluded).
    pub total: u32,
    /// Of those, samples that were up.
    pub up: u32,
    /// Samples that fell in an excluded range (maintenance) and count toward nothing else.
    pub excluded: u32,
    /// Sum of the counted samples' latencies in microseconds, for an exact mean.
    pub latency_sum_us: u64,
    /// The counted samples' latencies.
    pub latencies: Latencies,
    /// Per-component counts, indexed by the component's slot in [`super::MonitorStats`].
    pub components: Vec<ComponentBucket>,
}

impl Bucket {
    fn unused() -> Self {
        Self {
            index: i64::MIN,
            total: 0,
            up: 0,
            excluded: 0,
            latency_sum_us: 0,
            latencies: Latencies::Empty,
            components: Vec::new(),
        }
    }

    /// Empties the bucket for reuse as bucket number `index` (keeps the component vector's
    /// allocation, which is bounded by the number of components).
    fn reset(&mut self, index: i64) {
        self.index = index;
        self.total = 0;
        self.up = 0;
        self.excluded = 0;
        self.latency_sum_us = 0;
        self.latencies = Latencies::Empty;
        self.components
            .iter_mut()
            .for_each(|c| *c = ComponentBucket::default());
    }

    /// The counts of component `slot`, created on first use.
    pub fn component_mut(&mut self, slot: usize) -> &mut ComponentBucket {
        if self.components.len() <= slot {
            self.components
                .reserve_exact(slot + 1 - self.components.len());
            self.components.resize(slot + 1, ComponentBucket::default());
        }
        &mut self.components[slot]
    }

    /// Heap bytes held now.
    pub fn heap_bytes(&self) -> usize {
        self.latencies.heap_bytes()
            + self.components.capacity() * std::mem::size_of::<ComponentBucket>()
    }
}

/// One window's ring of buckets.
#[derive(Clone, Debug)]
pub(crate) struct Ring {
    /// Window length in milliseconds.
    pub window_ms: i64,
    /// Bucket width in milliseconds.
    pub width_ms: i64,
    /// `ceil(window / width) + 1` buckets.
    pub buckets: Vec<Bucket>,
}

impl Ring {
    /// A ring for a window of `window_ms` (> 0) cut into about `buckets_per_window` buckets.
    pub fn new(window_ms: i64, buckets_per_window: u32) -> Self {
        let per_window = i64::from(buckets_per_window.max(1));
        let width_ms = ceil_div(window_ms, per_window).max(1);
        let spanned = ceil_div(window_ms, width_ms);
        let len = usize::try_from(spanned + 1).unwrap_or(2);
        Self {
            window_ms,
            width_ms,
            buckets: vec![Bucket::unused(); len],
        }
    }

    /// The bucket for time `at_ms`, reset if its slot held an older bucket; `None` when `at_ms`
    /// is older than anything the ring still holds in that slot.
    pub fn bucket_mut(&mut self, at_ms: i64) -> Option<&mut Bucket> {
        let index = at_ms.div_euclid(self.width_ms);
        let len = i64::try_from(self.buckets.len()).ok()?;
        let slot = usize::try_from(index.rem_euclid(len)).ok()?;
        let bucket = self.buckets.get_mut(slot)?;
        if bucket.index < index {
            bucket.reset(index);
        }
        (bucket.index == index).then_some(bucket)
    }

    /// The buckets inside the window ending at `now_ms` (see the module docs for the edge).
    pub fn in_window(&self, now_ms: i64) -> impl Iterator<Item = &Bucket> {
        let newest = now_ms.div_euclid(self.width_ms);
        let oldest = ceil_div(now_ms.saturating_sub(self.window_ms), self.width_ms);
        self.buckets
            .iter()
            .filter(move |b| b.index != i64::MIN && b.index >= oldest && b.index <= newest)
    }

    /// Heap bytes held now.
    pub fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<Bucket>()
            + self.buckets.iter().map(Bucket::heap_bytes).sum::<usize>()
    }

    /// Most heap bytes this ring can hold with `components` components.
    pub fn max_heap_bytes(&self, shape: Shape, components: usize) -> usize {
        let per_bucket = std::mem::size_of::<Bucket>()
            + Latencies::max_heap_bytes(shape)
            + components * std::mem::size_of::<ComponentBucket>();
        self.buckets.len() * per_bucket
    }
}

/// `ceil(a / b)` for `b > 0`, correct for negative `a`.
fn ceil_div(a: i64, b: i64) -> i64 {
    -((-a).div_euclid(b))
}
