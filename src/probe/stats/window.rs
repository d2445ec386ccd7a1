//! One rolling window: a ring of time buckets, encoded into one byte string.
//!
//! A window of length `W` is cut into buckets of width `W / buckets_per_window` (at least 1 ms);
//! the ring holds one more bucket than the window spans, so the bucket being filled never
//! pushes out one still inside the window. A sample belongs to the bucket its time falls in, and
//! a window query at `now` counts every bucket that *started* at or after `now - W`: samples
//! younger than `W - width` always count, samples older than `W` never do, and in between the
//! window edge moves in steps of one bucket.
//!
//! **Storage.** Each bucket is one record of variable-length integers (index gap, counts, the
//! latency sum, `(bin gap, count)` pairs of the latency bins used, per component its counts and
//! value sum), appended to the ring's byte string in time order. A sample for the newest bucket
//! decodes that last record, adds to it and writes it back; a sample for a newer bucket
//! *seals* the last record (its value sums, `f64` while it is being filled, are rounded once to
//! `f32`), appends a record and cuts the records that left the ring from the front. Buckets with
//! no sample take no space, and nothing is kept in decoded form between samples. A bucket of a
//! monitor probed every 10 s typically takes 20–110 bytes. A sample for an older bucket (rare:
//! one monitor's probes finish in order) re-encodes the ring.

use super::latency;

/// Counts of one component in one bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct ComponentCounts {
    /// Samples in which the component's up/down was known.
    pub judged: u32,
    /// Of those, samples in which it was up.
    pub up: u32,
    /// Samples that carried a numeric value.
    pub values: u32,
    /// Sum of those values.
    pub value_sum: f64,
}

impl ComponentCounts {
    /// Adds one observation of the component.
    pub fn record(&mut self, up: Option<bool>, value: Option<f64>) {
        if let Some(up) = up {
            self.judged = self.judged.saturating_add(1);
            if up {
                self.up = self.up.saturating_add(1);
            }
        }
        if let Some(v) = value.filter(|v| v.is_finite()) {
            self.values = self.values.saturating_add(1);
            self.value_sum += v;
        }
    }

    /// Adds another bucket's counts of the same component.
    pub fn merge(&mut self, other: &Self) {
        self.judged = self.judged.saturating_add(other.judged);
        self.up = self.up.saturating_add(other.up);
        self.values = self.values.saturating_add(other.values);
        self.value_sum += other.value_sum;
    }
}

/// One time bucket in its open (mutable) form; also what a sealed bucket decodes into.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Bucket {
    /// Bucket number: it covers `[index × width, (index + 1) × width)` ms since the epoch.
    pub index: i64,
    /// Samples counted (not excluded).
    pub total: u32,
    /// Of those, samples that were up.
    pub up: u32,
    /// Samples that fell in an excluded range (maintenance) and count toward nothing else.
    pub excluded: u32,
    /// Sum of the counted samples' latencies in microseconds, for an exact mean.
    pub latency_sum_us: u64,
    /// Latency histogram: `(bin, count)` of the bins used, sorted by bin.
    pub bins: Vec<(u16, u32)>,
    /// Per-component counts, indexed by the component's slot in [`super::MonitorStats`].
    pub components: Vec<ComponentCounts>,
}

impl Bucket {
    /// Empties the bucket for reuse as bucket number `index`, keeping its allocations.
    fn reset(&mut self, index: i64) {
        self.index = index;
        self.total = 0;
        self.up = 0;
        self.excluded = 0;
        self.latency_sum_us = 0;
        self.bins.clear();
        self.components.clear();
    }

    /// Counts one excluded sample.
    pub fn record_excluded(&mut self) {
        self.excluded = self.excluded.saturating_add(1);
    }

    /// Counts one sample; `components` pairs a component slot with its reading.
    pub fn record(
        &mut self,
        up: bool,
        micros: u64,
        components: &[(usize, Option<bool>, Option<f64>)],
    ) {
        self.total = self.total.saturating_add(1);
        if up {
            self.up = self.up.saturating_add(1);
        }
        self.latency_sum_us = self.latency_sum_us.saturating_add(micros);
        latency::record(&mut self.bins, micros);
        for &(slot, up, value) in components {
            if self.components.len() <= slot {
                self.components
                    .reserve_exact(slot + 1 - self.components.len());
                self.components.resize(slot + 1, ComponentCounts::default());
            }
            self.components[slot].record(up, value);
        }
    }

    /// Appends the record (see the module docs); `delta` is the gap to the previous record's
    /// index (not used for the first record); `wide` keeps value sums as `f64` (the bucket
    /// being filled) rather than `f32` (sealed).
    fn encode(&self, delta: u64, wide: bool, out: &mut Vec<u8>) {
        put(out, delta);
        put(out, u64::from(self.total));
        put(out, u64::from(self.total - self.up.min(self.total)));
        put(out, u64::from(self.excluded));
        put(out, self.latency_sum_us);
        put(out, self.bins.len() as u64);
        let mut last = 0u16;
        for &(bin, count) in &self.bins {
            put(out, u64::from(bin - last));
            put(out, u64::from(count));
            last = bin;
        }
        put(out, ((self.components.len() as u64) << 1) | u64::from(wide));
        for c in &self.components {
            put(out, u64::from(self.total.saturating_sub(c.judged)));
            put(out, u64::from(c.judged - c.up.min(c.judged)));
            put(out, u64::from(self.total.saturating_sub(c.values)));
            if c.values > 0 && wide {
                out.extend_from_slice(&c.value_sum.to_le_bytes());
            } else if c.values > 0 {
                out.extend_from_slice(&(c.value_sum as f32).to_le_bytes());
            }
        }
    }

    /// Decodes the record at `*pos` into `self` (reusing its allocations) and returns its
    /// index gap; `index` is the record's index when `first`, else the previous record's.
    /// `None` on a malformed string (cannot happen for strings this module wrote).
    fn decode(&mut self, bytes: &[u8], pos: &mut usize, index: i64, first: bool) -> Option<u64> {
        let delta = get(bytes, pos)?;
        let index = if first {
            index
        } else {
            index.saturating_add(i64::try_from(delta).ok()?)
        };
        self.reset(index);
        self.total = narrow(get(bytes, pos)?);
        self.up = self.total.saturating_sub(narrow(get(bytes, pos)?));
        self.excluded = narrow(get(bytes, pos)?);
        self.latency_sum_us = get(bytes, pos)?;
        let bins = usize::try_from(get(bytes, pos)?).ok()?;
        self.bins.reserve_exact(bins.min(latency::BINS));
        let mut bin = 0u16;
        for _ in 0..bins.min(latency::BINS) {
            bin = bin.saturating_add(u16::try_from(get(bytes, pos)?).ok()?);
            self.bins.push((bin, narrow(get(bytes, pos)?)));
        }
        let flagged = get(bytes, pos)?;
        let wide = flagged & 1 == 1;
        let components = usize::try_from(flagged >> 1).ok()?;
        self.components
            .reserve_exact(components.min(super::MAX_COMPONENTS));
        for _ in 0..components.min(super::MAX_COMPONENTS) {
            let judged = self.total.saturating_sub(narrow(get(bytes, pos)?));
            let up = judged.saturating_sub(narrow(get(bytes, pos)?));
            let values = self.total.saturating_sub(narrow(get(bytes, pos)?));
            let value_sum = if values > 0 && wide {
                let raw: [u8; 8] = bytes.get(*pos..*pos + 8)?.try_into().ok()?;
                *pos += 8;
                f64::from_le_bytes(raw)
            } else if values > 0 {
                let raw: [u8; 4] = bytes.get(*pos..*pos + 4)?.try_into().ok()?;
                *pos += 4;
                f64::from(f32::from_le_bytes(raw))
            } else {
                0.0
            };
            self.components.push(ComponentCounts {
                judged,
                up,
                values,
                value_sum,
            });
        }
        Some(delta)
    }

    /// Most bytes one sealed record can take with `components` components.
    fn max_sealed_bytes(components: usize) -> usize {
        6 * MAX_VARINT + 1 + latency::BINS * (3 + 5) + components * (3 * 5 + 8)
    }
}

/// One window's ring of buckets.
#[derive(Clone, Debug)]
pub(crate) struct Ring {
    /// Window length in milliseconds.
    pub window_ms: i64,
    /// Bucket width in milliseconds.
    pub width_ms: i64,
    /// `ceil(window / width) + 1`: how many consecutive bucket numbers the ring keeps.
    slots: i64,
    /// The records, oldest first, the newest at most `slots - 1` buckets ahead of the oldest.
    bytes: Vec<u8>,
    /// Index of the first record (the first record's own gap is not used).
    first_index: i64,
    /// Index of the last record.
    last_index: i64,
    /// Where the last record starts in `bytes`.
    last_start: usize,
}

impl Ring {
    /// A ring for a window of `window_ms` (> 0) cut into about `buckets_per_window` buckets.
    /// Allocates nothing until samples arrive.
    pub fn new(window_ms: i64, buckets_per_window: u32) -> Self {
        let per_window = i64::from(buckets_per_window.max(1));
        let width_ms = ceil_div(window_ms, per_window).max(1);
        let spanned = ceil_div(window_ms, width_ms);
        Self {
            window_ms,
            width_ms,
            slots: spanned + 1,
            bytes: Vec::new(),
            first_index: 0,
            last_index: 0,
            last_start: 0,
        }
    }

    /// Records a sample taken at `at_ms` through `apply`; a sample older than the ring keeps
    /// is dropped (returns false).
    pub fn record(&mut self, at_ms: i64, apply: impl FnOnce(&mut Bucket)) -> bool {
        let index = at_ms.div_euclid(self.width_ms);
        if self.bytes.is_empty() {
            let mut bucket = Bucket {
                index,
                ..Bucket::default()
            };
            apply(&mut bucket);
            self.first_index = index;
            self.write_last(&bucket, 0, 0);
            return true;
        }
        if index > self.last_index {
            self.seal_last();
            let mut bucket = Bucket {
                index,
                ..Bucket::default()
            };
            apply(&mut bucket);
            let delta = (index - self.last_index) as u64;
            self.write_last(&bucket, delta, self.bytes.len());
            self.expire();
            return true;
        }
        if index == self.last_index {
            let mut bucket = Bucket::default();
            let mut pos = self.last_start;
            let first = self.last_start == 0;
            let base = if first { self.last_index } else { 0 };
            // The gap is re-read and written back unchanged; the index is known.
            let Some(delta) = bucket.decode(&self.bytes, &mut pos, base, first) else {
                self.bytes.clear();
                return false;
            };
            bucket.index = index;
            apply(&mut bucket);
            self.write_last(&bucket, delta, self.last_start);
            return true;
        }
        if index <= self.last_index.saturating_sub(self.slots) {
            return false;
        }
        self.record_late(index, apply);
        true
    }

    /// Rewrites the last record in its sealed form (value sums as `f32`).
    fn seal_last(&mut self) {
        let mut bucket = Bucket::default();
        let mut pos = self.last_start;
        let first = self.last_start == 0;
        if let Some(delta) = bucket.decode(&self.bytes, &mut pos, self.last_index, first) {
            bucket.index = self.last_index;
            let mut record = Vec::with_capacity(pos - self.last_start);
            bucket.encode(delta, false, &mut record);
            self.bytes.truncate(self.last_start);
            self.bytes.extend_from_slice(&record);
        }
    }

    /// Writes `bucket` as the last record, starting at byte `start` (replacing what follows).
    fn write_last(&mut self, bucket: &Bucket, delta: u64, start: usize) {
        let mut record = Vec::with_capacity(64);
        bucket.encode(delta, true, &mut record);
        self.bytes.truncate(start);
        if self.bytes.capacity() < start + record.len() {
            self.bytes.reserve_exact(record.len() + 16);
        }
        self.bytes.extend_from_slice(&record);
        self.last_start = start;
        self.last_index = bucket.index;
    }

    /// Cuts records that fell out of the ring, and returns spare capacity.
    fn expire(&mut self) {
        let oldest_kept = self.last_index.saturating_sub(self.slots - 1);
        if self.first_index >= oldest_kept {
            return;
        }
        let mut scratch = Bucket::default();
        let (mut pos, mut index, mut first) = (0usize, self.first_index, true);
        let mut cut = 0usize;
        while pos < self.bytes.len() {
            if scratch
                .decode(&self.bytes, &mut pos, index, first)
                .is_none()
            {
                // Unreadable (not written by this module): start afresh.
                self.bytes.clear();
                return;
            }
            index = scratch.index;
            first = false;
            if index >= oldest_kept {
                self.first_index = index;
                break;
            }
            cut = pos;
        }
        self.bytes.drain(..cut);
        self.last_start -= cut.min(self.last_start);
        if self.bytes.capacity() > self.bytes.len() + 64 {
            self.bytes.shrink_to_fit();
        }
    }

    /// A sample for an older (or missing) bucket: decode, change, re-encode.
    fn record_late(&mut self, index: i64, apply: impl FnOnce(&mut Bucket)) {
        let mut buckets = self.decode_all();
        match buckets.binary_search_by_key(&index, |b| b.index) {
            Ok(at) => apply(&mut buckets[at]),
            Err(at) => {
                let mut bucket = Bucket {
                    index,
                    ..Bucket::default()
                };
                apply(&mut bucket);
                buckets.insert(at, bucket);
            }
        }
        self.bytes.clear();
        let mut previous = None;
        for b in &buckets {
            let delta = previous.map_or(0, |p: i64| (b.index - p) as u64);
            self.last_start = self.bytes.len();
            let wide = buckets.last().is_some_and(|last| last.index == b.index);
            b.encode(delta, wide, &mut self.bytes);
            previous = Some(b.index);
        }
        self.first_index = buckets.first().map_or(0, |b| b.index);
        self.last_index = buckets.last().map_or(0, |b| b.index);
        self.bytes.shrink_to_fit();
    }

    fn decode_all(&self) -> Vec<Bucket> {
        let mut out = Vec::new();
        let (mut pos, mut index, mut first) = (0usize, self.first_index, true);
        while pos < self.bytes.len() {
            let mut b = Bucket::default();
            if b.decode(&self.bytes, &mut pos, index, first).is_none() {
                break;
            }
            index = b.index;
            first = false;
            out.push(b);
        }
        out
    }

    /// Calls `visit` with every bucket inside the window ending at `now_ms` (see the module
    /// docs for the edge), oldest first.
    pub fn for_each_in_window(&self, now_ms: i64, mut visit: impl FnMut(&Bucket)) {
        let newest = now_ms.div_euclid(self.width_ms);
        let oldest = ceil_div(now_ms.saturating_sub(self.window_ms), self.width_ms);
        let mut scratch = Bucket::default();
        let (mut pos, mut index, mut first) = (0usize, self.first_index, true);
        while pos < self.bytes.len() {
            if scratch
                .decode(&self.bytes, &mut pos, index, first)
                .is_none()
            {
                break;
            }
            index = scratch.index;
            first = false;
            if index > newest {
                break;
            }
            if index >= oldest {
                visit(&scratch);
            }
        }
    }

    /// Heap bytes held now.
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
    }

    /// Most heap bytes this ring can hold with `components` components.
    pub fn max_heap_bytes(&self, components: usize) -> usize {
        let slots = usize::try_from(self.slots).unwrap_or(usize::MAX);
        // Every record at its largest, plus the spare capacity kept (below 64 bytes).
        slots * Bucket::max_sealed_bytes(components) + 64
    }
}

/// Longest LEB128 encoding of a `u64`.
const MAX_VARINT: usize = 10;

/// Appends `value` as LEB128.
fn put(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads a LEB128 value at `*pos`.
fn get(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// A decoded count as `u32` (counts are written from `u32`s; larger means corruption).
fn narrow(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// `ceil(a / b)` for `b > 0`, correct for negative `a`.
fn ceil_div(a: i64, b: i64) -> i64 {
    -((-a).div_euclid(b))
}
