//! Latency storage of one time bucket: a few exact values, or a histogram once there are many.
//!
//! Most buckets of short windows hold one or two probes (a 5m window at a 10 s interval has
//! 15 s buckets), and a full histogram for each would cost ~1.3 KB where 8 bytes do. So a bucket
//! keeps up to [`INLINE_VALUES`] latencies as they are, and turns into an hdrhistogram on the
//! next one. Window queries merge every bucket into one histogram, so both forms answer alike.

use hdrhistogram::Histogram;

/// Latencies a bucket keeps exactly before switching to a histogram: 32 × 4 bytes is about a
/// tenth of a histogram's counters, so the switch happens where it starts to save memory.
pub(crate) const INLINE_VALUES: usize = 32;

/// Largest latency kept apart from others, in microseconds (one hour). Longer latencies count as
/// one hour; no probe timeout is that long.
pub(crate) const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Finest histogram resolution, in microseconds: 32 µs (±0.016 ms) is far below what a health
/// check cares about, and skipping the finer bins halves a histogram of millisecond latencies.
/// Above 1 ms the relative precision of `sigfig` applies.
pub(crate) const RESOLUTION_US: u64 = 32;

/// Histogram shape shared by every bucket of one [`super::MonitorStats`] so that buckets merge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    /// Significant decimal digits kept (1–3): 1 keeps latencies within ~6 %, 2 within ~1 %.
    pub sigfig: u8,
}

impl Shape {
    /// An empty histogram of this shape. It starts small and grows its counters up to the
    /// largest latency recorded, so fast endpoints cost less than the worst case.
    pub fn histogram(self) -> Result<Histogram<u32>, hdrhistogram::CreationError> {
        let mut histogram =
            Histogram::new_with_bounds(RESOLUTION_US, 2 * RESOLUTION_US, self.sigfig)?;
        histogram.auto(true);
        Ok(histogram)
    }

    /// Most bytes one histogram of this shape can hold: counters up to [`MAX_LATENCY_US`], twice
    /// over because growing a vector may double its capacity.
    pub fn histogram_bytes(self) -> usize {
        Histogram::<u32>::new_with_bounds(RESOLUTION_US, MAX_LATENCY_US, self.sigfig).map_or(
            0,
            |h| {
                2 * h.distinct_values() * std::mem::size_of::<u32>()
                    + std::mem::size_of::<Histogram<u32>>()
            },
        )
    }
}

/// The latencies recorded into one bucket.
#[derive(Clone, Debug, Default)]
pub(crate) enum Latencies {
    /// No latency yet.
    #[default]
    Empty,
    /// Up to [`INLINE_VALUES`] latencies in microseconds, exactly.
    Inline(Vec<u32>),
    /// A histogram, once there were more.
    Histogram(Box<Histogram<u32>>),
}

impl Latencies {
    /// Records one latency in microseconds (clamped to 1 µs … [`MAX_LATENCY_US`]).
    pub fn record(&mut self, micros: u64, shape: Shape) {
        let micros = micros.clamp(1, MAX_LATENCY_US);
        match self {
            Self::Empty => {
                *self = Self::Inline(vec![inline_value(micros)]);
            }
            Self::Inline(values) if values.len() < INLINE_VALUES => {
                // Grow in small steps: the capacity is the memory actually held.
                if values.len() == values.capacity() {
                    values.reserve_exact(if values.len() < 4 { 1 } else { 8 });
                }
                values.push(inline_value(micros));
            }
            Self::Inline(values) => {
                // A histogram with valid constant bounds; if it could not be built the values
                // stay inline and the newest is dropped, which keeps the memory bound.
                if let Ok(mut histogram) = shape.histogram() {
                    for &v in values.iter() {
                        put(&mut histogram, u64::from(v));
                    }
                    put(&mut histogram, micros);
                    *self = Self::Histogram(Box::new(histogram));
                }
            }
            Self::Histogram(histogram) => put(histogram, micros),
        }
    }

    /// Adds these latencies to `into` (a histogram of the same shape).
    pub fn merge_into(&self, into: &mut Histogram<u32>) {
        match self {
            Self::Empty => {}
            Self::Inline(values) => {
                for &v in values {
                    put(into, u64::from(v));
                }
            }
            Self::Histogram(histogram) => {
                // Same bounds and precision, so adding cannot fail; a saturated counter is the
                // worst outcome and is acceptable for statistics.
                let _ = into.add(histogram.as_ref());
            }
        }
    }

    /// Heap bytes held now.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Self::Empty => 0,
            Self::Inline(values) => values.capacity() * std::mem::size_of::<u32>(),
            Self::Histogram(histogram) => {
                histogram.distinct_values() * std::mem::size_of::<u32>()
                    + std::mem::size_of::<Histogram<u32>>()
            }
        }
    }

    /// Most heap bytes one bucket can hold with this shape.
    pub fn max_heap_bytes(shape: Shape) -> usize {
        // The inline vector may reach a capacity slightly above INLINE_VALUES (growth steps of 8).
        let inline = (INLINE_VALUES + 8) * std::mem::size_of::<u32>();
        inline.max(shape.histogram_bytes())
    }
}

/// A clamped latency as stored inline (fits: MAX_LATENCY_US < u32::MAX).
fn inline_value(micros: u64) -> u32 {
    u32::try_from(micros).unwrap_or(u32::MAX)
}

/// Records into an auto-resizing histogram (growing it up to the value; `saturating_record`
/// would clamp instead of growing). Values are at most [`MAX_LATENCY_US`], so growing only fails
/// if memory does; the value then counts as the largest one the histogram holds.
fn put(histogram: &mut Histogram<u32>, micros: u64) {
    if histogram.record(micros).is_err() {
        histogram.saturating_record(micros);
    }
}
