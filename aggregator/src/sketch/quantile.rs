//! Relative-error quantile sketch for per-request samples (DDSketch-style:
//! logarithmic buckets, Masson et al., PVLDB 2019). Every quantile it returns
//! is within [`RELATIVE_ACCURACY`] of the exact sample at that rank, merges are
//! exact bucket-count additions, and the bucket layout is fixed by constants so
//! sketches from any replica merge. Chosen over t-digest/KLL by measurement:
//! see `docs/benchmarks/sketch.md`.

use super::SketchError;
use super::codec::{Reader, Writer, corrupt};

/// Guaranteed relative error of every returned quantile (before clamping to
/// the observed min/max, which only makes answers closer).
pub const RELATIVE_ACCURACY: f64 = 0.01;
/// |values| below this land in the zero bucket: a nanosecond of latency is
/// already below anything an engine measures.
pub const MIN_INDEXABLE: f64 = 1e-9;
/// Buckets per sign before the lowest ones collapse; 4096 buckets at 1 % cover
/// about 17 decades, so collapsing only happens on absurd inputs and then
/// costs accuracy at the low end, never at p50/p90/p99 of latencies.
pub const MAX_BUCKETS: usize = 4096;

const GAMMA: f64 = (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY);
/// Index range of magnitudes in [MIN_INDEXABLE, f64::MAX] (with margin);
/// decoded offsets outside it are corrupt, which also bounds merge growth.
const MIN_INDEX: i32 = -2_000;
const MAX_INDEX: i32 = 40_000;

fn ln_gamma() -> f64 {
    GAMMA.ln()
}

/// Contiguous counts for bucket indexes `offset..offset+counts.len()`.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct BucketStore {
    offset: i32,
    counts: Vec<u64>,
}

impl BucketStore {
    fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    fn add(&mut self, index: i32, count: u64) {
        if self.counts.is_empty() {
            self.offset = index;
            self.counts.push(count);
            return;
        }
        if index < self.offset {
            let grow = (self.offset - index) as usize;
            if self.counts.len() + grow > MAX_BUCKETS {
                // Collapse: the lowest bucket absorbs what falls below the window.
                self.counts[0] = self.counts[0].saturating_add(count);
                return;
            }
            let mut grown = Vec::with_capacity(self.counts.len() + grow + grow / 2);
            grown.resize(grow, 0);
            grown.extend_from_slice(&self.counts);
            self.counts = grown;
            self.offset = index;
        }
        let slot = (index - self.offset) as usize;
        if slot >= self.counts.len() {
            self.counts.resize(slot + 1, 0);
            self.collapse_low();
        }
        let slot = (index - self.offset).max(0) as usize;
        self.counts[slot] = self.counts[slot].saturating_add(count);
    }

    fn collapse_low(&mut self) {
        if self.counts.len() > MAX_BUCKETS {
            let excess = self.counts.len() - MAX_BUCKETS;
            let folded = self.counts[..=excess]
                .iter()
                .fold(0u64, |a, c| a.saturating_add(*c));
            self.counts.drain(..excess);
            self.counts[0] = folded;
            self.offset += excess as i32;
        }
    }

    fn merge(&mut self, other: &BucketStore) {
        if other.is_empty() {
            return;
        }
        if self.is_empty() {
            *self = other.clone();
            return;
        }
        // Grow once to the union range, then add slot by slot.
        let low = self.offset.min(other.offset);
        let high =
            (self.offset + self.counts.len() as i32).max(other.offset + other.counts.len() as i32);
        if low < self.offset || high > self.offset + self.counts.len() as i32 {
            let mut grown = vec![0u64; (high - low) as usize];
            let start = (self.offset - low) as usize;
            grown[start..start + self.counts.len()].copy_from_slice(&self.counts);
            self.counts = grown;
            self.offset = low;
        }
        let start = (other.offset - self.offset) as usize;
        for (slot, count) in self.counts[start..].iter_mut().zip(&other.counts) {
            *slot = slot.saturating_add(*count);
        }
        self.collapse_low();
    }

    fn heap_bytes(&self) -> usize {
        self.counts.capacity() * std::mem::size_of::<u64>()
    }

    fn shrink_to_fit(&mut self) {
        self.counts.shrink_to_fit();
    }

    fn encode(&self, w: &mut Writer) {
        w.zigzag(i64::from(self.offset));
        w.varint(self.counts.len() as u64);
        for &count in &self.counts {
            w.varint(count);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, SketchError> {
        let offset = r.zigzag()?;
        let len = r.len(1)?;
        if len > MAX_BUCKETS {
            return Err(corrupt(format!(
                "{len} quantile buckets exceed {MAX_BUCKETS}"
            )));
        }
        if offset < i64::from(MIN_INDEX) || offset + len as i64 > i64::from(MAX_INDEX) + 1 {
            return Err(corrupt(format!("bucket range {offset}+{len} out of range")));
        }
        let offset = offset as i32;
        let mut counts = Vec::with_capacity(len);
        for _ in 0..len {
            counts.push(r.varint()?);
        }
        Ok(BucketStore { offset, counts })
    }

    /// (index, count) from lowest index to highest.
    fn iter(&self) -> impl DoubleEndedIterator<Item = (i32, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| (self.offset + i as i32, *c))
    }
}

/// Quantiles of per-request samples with a relative-error guarantee.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantileSketch {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    zero_count: u64,
    positive: BucketStore,
    negative: BucketStore,
}

impl Default for QuantileSketch {
    fn default() -> Self {
        QuantileSketch {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            zero_count: 0,
            positive: BucketStore::default(),
            negative: BucketStore::default(),
        }
    }
}

fn bucket_index(magnitude: f64) -> i32 {
    // Bucket i holds (gamma^(i-1), gamma^i]; the clamp keeps the i32 sane for
    // magnitudes near f64::MAX.
    (magnitude.ln() / ln_gamma())
        .ceil()
        .clamp(f64::from(MIN_INDEX), f64::from(MAX_INDEX)) as i32
}

fn bucket_value(index: i32) -> f64 {
    // The point of bucket i whose relative distance to both edges is alpha.
    2.0 * (f64::from(index) * ln_gamma()).exp() / (GAMMA + 1.0)
}

impl QuantileSketch {
    /// Adds one sample; non-finite values are ignored (returns false).
    pub fn add(&mut self, value: f64) -> bool {
        if !value.is_finite() {
            return false;
        }
        if value > MIN_INDEXABLE {
            self.positive.add(bucket_index(value), 1);
        } else if value < -MIN_INDEXABLE {
            self.negative.add(bucket_index(-value), 1);
        } else {
            self.zero_count = self.zero_count.saturating_add(1);
        }
        self.count = self.count.saturating_add(1);
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        true
    }

    pub fn merge(&mut self, other: &QuantileSketch) {
        if other.count == 0 {
            return;
        }
        self.count = self.count.saturating_add(other.count);
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.zero_count = self.zero_count.saturating_add(other.zero_count);
        self.positive.merge(&other.positive);
        self.negative.merge(&other.negative);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn sum(&self) -> f64 {
        self.sum
    }

    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }

    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }

    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    /// The value at rank `q * (count - 1)`, within [`RELATIVE_ACCURACY`];
    /// `None` when empty or `q` is outside [0, 1].
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = (q * (self.count - 1) as f64).floor() as u64;
        let mut seen = 0u64;
        let mut estimate = None;
        for (index, count) in self.negative.iter().rev() {
            seen = seen.saturating_add(count);
            if seen > rank {
                estimate = Some(-bucket_value(index));
                break;
            }
        }
        if estimate.is_none() {
            seen = seen.saturating_add(self.zero_count);
            if seen > rank {
                estimate = Some(0.0);
            }
        }
        if estimate.is_none() {
            for (index, count) in self.positive.iter() {
                seen = seen.saturating_add(count);
                if seen > rank {
                    estimate = Some(bucket_value(index));
                    break;
                }
            }
        }
        estimate.map(|v| v.clamp(self.min, self.max))
    }

    pub fn heap_bytes(&self) -> usize {
        self.positive.heap_bytes() + self.negative.heap_bytes()
    }

    pub fn shrink_to_fit(&mut self) {
        self.positive.shrink_to_fit();
        self.negative.shrink_to_fit();
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.varint(self.count);
        if self.count == 0 {
            return;
        }
        w.f64(self.sum);
        w.f64(self.min);
        w.f64(self.max);
        w.varint(self.zero_count);
        self.positive.encode(w);
        self.negative.encode(w);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, SketchError> {
        let count = r.varint()?;
        if count == 0 {
            return Ok(QuantileSketch::default());
        }
        let sum = r.f64()?;
        let min = r.finite_f64("quantile min")?;
        let max = r.finite_f64("quantile max")?;
        if min > max {
            return Err(corrupt("quantile min exceeds max"));
        }
        let zero_count = r.varint()?;
        let positive = BucketStore::decode(r)?;
        let negative = BucketStore::decode(r)?;
        let total = positive
            .counts
            .iter()
            .chain(&negative.counts)
            .try_fold(zero_count, |acc, c| acc.checked_add(*c));
        if total != Some(count) {
            return Err(corrupt(
                "quantile bucket counts do not add up to the sample count",
            ));
        }
        Ok(QuantileSketch {
            count,
            sum,
            min,
            max,
            zero_count,
            positive,
            negative,
        })
    }
}
