//! Relative-error quantile sketch for per-request samples (DDSketch-style:
//! logarithmic buckets, Masson et al., PVLDB 2019). Every quantile it returns
//! is within [`RELATIVE_ACCURACY`] of the exact sample at that rank, merges are
//! exact bucket-count additions, and the bucket layout is fixed by constants so
//! sketches from any replica merge. Chosen over t-digest/KLL by measurement:
//! see `docs/benchmarks/sketch.md`.

use super::SketchError;
use super::bucket_codec::{self, StoreHeader};
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

/// A bucket counter width. Stores start at u32 (half the memory) and widen
/// to u64 only once the sketch holds more than `u32::MAX` samples, so a
/// bucket count can never overflow its width.
pub(crate) trait Count: Copy + Default + PartialEq + std::fmt::Debug + Into<u64> {
    const MAX: u64;
    fn plus(self, count: u64) -> Self;
}

impl Count for u32 {
    const MAX: u64 = u32::MAX as u64;

    fn plus(self, count: u64) -> Self {
        u32::try_from(u64::from(self).saturating_add(count)).unwrap_or(u32::MAX)
    }
}

impl Count for u64 {
    const MAX: u64 = u64::MAX;

    fn plus(self, count: u64) -> Self {
        self.saturating_add(count)
    }
}

/// How a bucket store grows to cover a wider range.
#[derive(Clone, Copy)]
enum Growth {
    /// To the new range exactly: long-lived sketches (the embedded store's
    /// windows) stay as small as they can be.
    Exact,
    /// With spare capacity: a query merging many frames into one transient
    /// accumulator reallocates a handful of times instead of once per frame.
    Amortized,
}

/// Contiguous counts for bucket indexes `offset..offset+counts.len()`.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct BucketStore<T> {
    offset: i32,
    counts: Vec<T>,
}

impl<T: Count> BucketStore<T> {
    fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    fn add(&mut self, index: i32, count: u64) {
        if self.counts.is_empty() {
            self.offset = index;
            self.counts.push(T::default().plus(count));
            return;
        }
        if index < self.offset {
            let grow = (self.offset - index) as usize;
            if self.counts.len() + grow > MAX_BUCKETS {
                // Collapse: the lowest bucket absorbs what falls below the window.
                self.counts[0] = self.counts[0].plus(count);
                return;
            }
            let mut grown = Vec::with_capacity(self.counts.len() + grow + grow / 2);
            grown.resize(grow, T::default());
            grown.extend_from_slice(&self.counts);
            self.counts = grown;
            self.offset = index;
        }
        let slot = (index - self.offset) as usize;
        if slot >= self.counts.len() {
            self.counts.resize(slot + 1, T::default());
            self.collapse_low();
        }
        let slot = (index - self.offset).max(0) as usize;
        self.counts[slot] = self.counts[slot].plus(count);
    }

    fn collapse_low(&mut self) {
        if self.counts.len() > MAX_BUCKETS {
            let excess = self.counts.len() - MAX_BUCKETS;
            let folded = self.counts[..=excess]
                .iter()
                .fold(T::default(), |a, c| a.plus((*c).into()));
            self.counts.drain(..excess);
            self.counts[0] = folded;
            self.offset += excess as i32;
        }
    }

    fn merge<U: Count>(&mut self, other: &BucketStore<U>) {
        if other.is_empty() {
            return;
        }
        if self.is_empty() {
            self.offset = other.offset;
            self.counts = other
                .counts
                .iter()
                .map(|c| T::default().plus((*c).into()))
                .collect();
            return;
        }
        // Grow once to the union range, then add slot by slot.
        self.cover(other.offset, other.counts.len(), Growth::Exact);
        let start = (other.offset - self.offset) as usize;
        for (slot, count) in self.counts[start..].iter_mut().zip(&other.counts) {
            *slot = slot.plus((*count).into());
        }
        self.collapse_low();
    }

    fn heap_bytes(&self) -> usize {
        self.counts.capacity() * std::mem::size_of::<T>()
    }

    fn shrink_to_fit(&mut self) {
        self.counts.shrink_to_fit();
    }

    fn encode(&self, w: &mut Writer) {
        bucket_codec::encode(w, self.offset, &self.counts);
    }

    /// The header of an encoded store, validated.
    fn decode_header(r: &mut Reader<'_>) -> Result<(i32, StoreHeader), SketchError> {
        let header = StoreHeader::decode(r)?;
        let (offset, len) = (header.offset, header.len);
        if len > MAX_BUCKETS {
            return Err(corrupt(format!(
                "{len} quantile buckets exceed {MAX_BUCKETS}"
            )));
        }
        // `len` is at most MAX_BUCKETS here, but `offset` is any i64 read
        // from the bytes: add without overflowing.
        let end = offset.checked_add(len as i64);
        if offset < i64::from(MIN_INDEX) || end.is_none_or(|end| end > i64::from(MAX_INDEX) + 1) {
            return Err(corrupt(format!("bucket range {offset}+{len} out of range")));
        }
        Ok((offset as i32, header))
    }

    /// Grows the store (once) so it covers `offset..offset+len`: to exactly
    /// that, or with [`Growth::Amortized`] into spare capacity when there is
    /// some, reserving more (doubling) when not.
    fn cover(&mut self, offset: i32, len: usize, growth: Growth) {
        if self.is_empty() {
            self.offset = offset;
            self.counts = vec![T::default(); len];
            return;
        }
        let low = self.offset.min(offset);
        let high = (self.offset + self.counts.len() as i32).max(offset + len as i32);
        let front = (self.offset - low) as usize;
        let back = (high - low) as usize - front - self.counts.len();
        if front + back == 0 {
            return;
        }
        match growth {
            Growth::Exact => {
                let mut grown = vec![T::default(); (high - low) as usize];
                grown[front..front + self.counts.len()].copy_from_slice(&self.counts);
                self.counts = grown;
            }
            Growth::Amortized => {
                self.counts.reserve(front + back);
                self.counts
                    .splice(0..0, std::iter::repeat_n(T::default(), front));
                self.counts.resize(self.counts.len() + back, T::default());
            }
        }
        self.offset = low;
    }

    /// Adds an encoded store's counts into this one, exactly as decoding it
    /// (at the width whose largest count is `max_count`) and merging would;
    /// returns the sum of the counts read. On error `self` is partly merged.
    fn merge_encoded(&mut self, r: &mut Reader<'_>, max_count: u64) -> Result<u64, SketchError> {
        let (offset, header) = Self::decode_header(r)?;
        if header.len == 0 {
            return Ok(0);
        }
        self.cover(offset, header.len, Growth::Amortized);
        let counts = &mut self.counts[(offset - self.offset) as usize..][..header.len];
        let mut total = 0u64;
        header.read_counts(r, |slot, count| {
            if count > max_count {
                return Err(corrupt("bucket count exceeds the sketch's sample count"));
            }
            total = total
                .checked_add(count)
                .ok_or_else(|| corrupt("quantile bucket counts overflow"))?;
            counts[slot] = counts[slot].plus(count);
            Ok(())
        })?;
        self.collapse_low();
        Ok(total)
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, SketchError> {
        let (offset, header) = Self::decode_header(r)?;
        let mut counts = vec![T::default(); header.len];
        header.read_counts(r, |slot, count| {
            if count > T::MAX {
                return Err(corrupt("bucket count exceeds the sketch's sample count"));
            }
            counts[slot] = T::default().plus(count);
            Ok(())
        })?;
        Ok(BucketStore { offset, counts })
    }

    /// (index, count) from lowest index to highest.
    fn iter(&self) -> impl DoubleEndedIterator<Item = (i32, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| (**c).into() > 0)
            .map(|(i, c)| (self.offset + i as i32, (*c).into()))
    }

    fn total(&self) -> Option<u64> {
        self.counts
            .iter()
            .try_fold(0u64, |acc, c| acc.checked_add((*c).into()))
    }
}

/// Positive and negative bucket stores at one counter width.
#[derive(Clone, Debug, PartialEq)]
enum Stores {
    Narrow(BucketStore<u32>, BucketStore<u32>),
    Wide(BucketStore<u64>, BucketStore<u64>),
}

impl Default for Stores {
    fn default() -> Self {
        Stores::Narrow(BucketStore::default(), BucketStore::default())
    }
}

fn widen(store: &BucketStore<u32>) -> BucketStore<u64> {
    BucketStore {
        offset: store.offset,
        counts: store.counts.iter().map(|c| u64::from(*c)).collect(),
    }
}

impl Stores {
    fn widen(&mut self) {
        if let Stores::Narrow(positive, negative) = self {
            *self = Stores::Wide(widen(positive), widen(negative));
        }
    }

    fn add(&mut self, positive_side: bool, index: i32) {
        match self {
            Stores::Narrow(p, n) => if positive_side { p } else { n }.add(index, 1),
            Stores::Wide(p, n) => if positive_side { p } else { n }.add(index, 1),
        }
    }

    fn merge(&mut self, other: &Stores) {
        match (self, other) {
            (Stores::Narrow(p, n), Stores::Narrow(op, on)) => {
                p.merge(op);
                n.merge(on);
            }
            (Stores::Wide(p, n), Stores::Narrow(op, on)) => {
                p.merge(op);
                n.merge(on);
            }
            (Stores::Wide(p, n), Stores::Wide(op, on)) => {
                p.merge(op);
                n.merge(on);
            }
            (Stores::Narrow(..), Stores::Wide(..)) => {
                unreachable!("QuantileSketch::merge widens before merging a wide sketch")
            }
        }
    }

    /// The representative value of the sample at `rank` (0-based, in
    /// ascending order), with `zero_count` samples sitting at zero.
    fn value_at_rank(&self, zero_count: u64, rank: u64) -> Option<f64> {
        fn walk<T: Count>(
            p: &BucketStore<T>,
            n: &BucketStore<T>,
            zero_count: u64,
            rank: u64,
        ) -> Option<f64> {
            let mut seen = 0u64;
            for (index, count) in n.iter().rev() {
                seen = seen.saturating_add(count);
                if seen > rank {
                    return Some(-bucket_value(index));
                }
            }
            seen = seen.saturating_add(zero_count);
            if seen > rank {
                return Some(0.0);
            }
            for (index, count) in p.iter() {
                seen = seen.saturating_add(count);
                if seen > rank {
                    return Some(bucket_value(index));
                }
            }
            None
        }
        match self {
            Stores::Narrow(p, n) => walk(p, n, zero_count, rank),
            Stores::Wide(p, n) => walk(p, n, zero_count, rank),
        }
    }

    fn total(&self) -> Option<u64> {
        match self {
            Stores::Narrow(p, n) => p.total()?.checked_add(n.total()?),
            Stores::Wide(p, n) => p.total()?.checked_add(n.total()?),
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Stores::Narrow(p, n) => p.heap_bytes() + n.heap_bytes(),
            Stores::Wide(p, n) => p.heap_bytes() + n.heap_bytes(),
        }
    }

    fn shrink_to_fit(&mut self) {
        match self {
            Stores::Narrow(p, n) => {
                p.shrink_to_fit();
                n.shrink_to_fit();
            }
            Stores::Wide(p, n) => {
                p.shrink_to_fit();
                n.shrink_to_fit();
            }
        }
    }

    fn encode(&self, w: &mut Writer) {
        match self {
            Stores::Narrow(p, n) => {
                p.encode(w);
                n.encode(w);
            }
            Stores::Wide(p, n) => {
                p.encode(w);
                n.encode(w);
            }
        }
    }

    /// Both encoded stores of a sketch of `count` samples added into these;
    /// returns the sum of their counts.
    fn merge_encoded(&mut self, r: &mut Reader<'_>, count: u64) -> Result<u64, SketchError> {
        // A sketch of up to u32::MAX samples is decoded narrow, which
        // refuses larger bucket counts.
        let max_count = if count <= u64::from(u32::MAX) {
            u64::from(u32::MAX)
        } else {
            u64::MAX
        };
        let (positive, negative) = match self {
            Stores::Narrow(p, n) => (
                p.merge_encoded(r, max_count)?,
                n.merge_encoded(r, max_count)?,
            ),
            Stores::Wide(p, n) => (
                p.merge_encoded(r, max_count)?,
                n.merge_encoded(r, max_count)?,
            ),
        };
        positive
            .checked_add(negative)
            .ok_or_else(|| corrupt("quantile bucket counts overflow"))
    }

    fn decode(r: &mut Reader<'_>, count: u64) -> Result<Self, SketchError> {
        Ok(if count <= u64::from(u32::MAX) {
            Stores::Narrow(BucketStore::decode(r)?, BucketStore::decode(r)?)
        } else {
            Stores::Wide(BucketStore::decode(r)?, BucketStore::decode(r)?)
        })
    }
}

/// The scalar part of an encoded [`QuantileSketch`], before its stores.
struct Head {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    zero_count: u64,
}

impl Head {
    /// Validated; `None` for an empty sketch (which encodes nothing more).
    fn decode(r: &mut Reader<'_>) -> Result<Option<Head>, SketchError> {
        let count = r.varint()?;
        if count == 0 {
            return Ok(None);
        }
        let sum = r.f64()?;
        let min = r.finite_f64("quantile min")?;
        let max = r.finite_f64("quantile max")?;
        if min > max {
            return Err(corrupt("quantile min exceeds max"));
        }
        let zero_count = r.varint()?;
        Ok(Some(Head {
            count,
            sum,
            min,
            max,
            zero_count,
        }))
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
    stores: Stores,
}

impl Default for QuantileSketch {
    fn default() -> Self {
        QuantileSketch {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            zero_count: 0,
            stores: Stores::default(),
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
        if self.count == u64::from(u32::MAX) {
            self.stores.widen();
        }
        if value > MIN_INDEXABLE {
            self.stores.add(true, bucket_index(value));
        } else if value < -MIN_INDEXABLE {
            self.stores.add(false, bucket_index(-value));
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
        if self.count.saturating_add(other.count) > u64::from(u32::MAX)
            || matches!(other.stores, Stores::Wide(..))
        {
            self.stores.widen();
        }
        self.count = self.count.saturating_add(other.count);
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.zero_count = self.zero_count.saturating_add(other.zero_count);
        self.stores.merge(&other.stores);
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
        let estimate = self.stores.value_at_rank(self.zero_count, rank);
        estimate.map(|v| v.clamp(self.min, self.max))
    }

    pub fn heap_bytes(&self) -> usize {
        self.stores.heap_bytes()
    }

    pub fn shrink_to_fit(&mut self) {
        self.stores.shrink_to_fit();
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
        self.stores.encode(w);
    }

    /// `self.merge(&QuantileSketch::decode(r)?)` without building the decoded
    /// sketch: its bucket counts are added straight into `self`'s stores. On
    /// error `self` is partly merged and must be discarded.
    pub(crate) fn merge_encoded(&mut self, r: &mut Reader<'_>) -> Result<(), SketchError> {
        let Some(Head {
            count,
            sum,
            min,
            max,
            zero_count,
        }) = Head::decode(r)?
        else {
            return Ok(());
        };
        if self.count.saturating_add(count) > u64::from(u32::MAX) {
            self.stores.widen();
        }
        let total = self.stores.merge_encoded(r, count)?.checked_add(zero_count);
        if total != Some(count) {
            return Err(corrupt(
                "quantile bucket counts do not add up to the sample count",
            ));
        }
        self.count = self.count.saturating_add(count);
        self.sum += sum;
        self.min = self.min.min(min);
        self.max = self.max.max(max);
        self.zero_count = self.zero_count.saturating_add(zero_count);
        Ok(())
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, SketchError> {
        let Some(Head {
            count,
            sum,
            min,
            max,
            zero_count,
        }) = Head::decode(r)?
        else {
            return Ok(QuantileSketch::default());
        };
        let stores = Stores::decode(r, count)?;
        let total = stores.total().and_then(|t| t.checked_add(zero_count));
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
            stores,
        })
    }
}
