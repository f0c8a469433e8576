//! Prefix-hash statistics of one series: distinct count (HyperLogLog) and
//! frequency (heavy hitters + Count-Min), plus the cross-sketch estimates the
//! scheduler needs for prefix overlap between clusters.

use super::SketchError;
use super::codec::{Reader, Writer};
use super::frequency::{FrequencySketch, HeavyHitter};
use super::hll::HyperLogLog;

/// Fixed so that every replica and every release hashes identically; changing
/// it is a wire-format change (bump the encoding version).
pub const PREFIX_HASH_SEED: u64 = 0x6d70_5f70_7265_6669; // "mp_prefi"

/// Re-mixes a producer's prefix hash: producers may send small or structured
/// integers, and HLL/Count-Min need uniformly distributed bits.
pub fn rehash(item: u64) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(&item.to_le_bytes(), PREFIX_HASH_SEED)
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct PrefixSketch {
    distinct: HyperLogLog,
    frequency: FrequencySketch,
}

/// How two prefix sketches (e.g. two clusters) overlap.
#[derive(Clone, Debug, PartialEq)]
pub struct PrefixOverlap {
    pub distinct_self: f64,
    pub distinct_other: f64,
    pub distinct_union: f64,
    /// Inclusion–exclusion over the HLL union, clamped to
    /// `[0, min(distinct_self, distinct_other)]`.
    pub distinct_intersection: f64,
    /// Intersection / union (0 when both are empty).
    pub jaccard: f64,
    /// Hashes in both sketches' top lists, by combined count.
    pub shared_top: Vec<SharedHitter>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedHitter {
    pub hash: u64,
    pub count_self: u64,
    pub count_other: u64,
}

impl PrefixSketch {
    pub fn add(&mut self, prefix_hash: u64) {
        let hashed = rehash(prefix_hash);
        self.distinct.add_hash(hashed);
        self.frequency.add(prefix_hash, hashed, 1);
    }

    pub fn merge(&mut self, other: &PrefixSketch) {
        self.distinct.merge(&other.distinct);
        self.frequency.merge(&other.frequency);
    }

    /// Estimated distinct prefix hashes.
    pub fn distinct(&self) -> f64 {
        self.distinct.estimate()
    }

    /// Prefix hash occurrences recorded.
    pub fn total(&self) -> u64 {
        self.frequency.total()
    }

    /// Estimated occurrences of one prefix hash (never an under-count).
    pub fn frequency(&self, prefix_hash: u64) -> u64 {
        self.frequency.frequency(prefix_hash, rehash(prefix_hash))
    }

    /// Most frequent prefix hashes, descending.
    pub fn top(&self, n: usize) -> Vec<HeavyHitter> {
        self.frequency.top(n)
    }

    pub fn hll(&self) -> &HyperLogLog {
        &self.distinct
    }

    pub fn frequency_sketch(&self) -> &FrequencySketch {
        &self.frequency
    }

    pub fn union_distinct(&self, other: &PrefixSketch) -> f64 {
        let mut union = self.distinct.clone();
        union.merge(&other.distinct);
        union.estimate()
    }

    pub fn overlap(&self, other: &PrefixSketch, top_n: usize) -> PrefixOverlap {
        let distinct_self = self.distinct();
        let distinct_other = other.distinct();
        let distinct_union = self.union_distinct(other);
        let distinct_intersection = (distinct_self + distinct_other - distinct_union)
            .clamp(0.0, distinct_self.min(distinct_other));
        let jaccard = if distinct_union > 0.0 {
            distinct_intersection / distinct_union
        } else {
            0.0
        };
        let theirs = other.top(usize::MAX);
        let mut shared_top: Vec<SharedHitter> = self
            .top(usize::MAX)
            .into_iter()
            .filter_map(|mine| {
                theirs
                    .iter()
                    .find(|t| t.hash == mine.hash)
                    .map(|t| SharedHitter {
                        hash: mine.hash,
                        count_self: mine.count,
                        count_other: t.count,
                    })
            })
            .collect();
        shared_top.sort_unstable_by(|a, b| {
            (b.count_self + b.count_other)
                .cmp(&(a.count_self + a.count_other))
                .then(a.hash.cmp(&b.hash))
        });
        shared_top.truncate(top_n);
        PrefixOverlap {
            distinct_self,
            distinct_other,
            distinct_union,
            distinct_intersection,
            jaccard,
            shared_top,
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.distinct.heap_bytes() + self.frequency.heap_bytes()
    }

    pub fn shrink_to_fit(&mut self) {
        self.distinct.shrink_to_fit();
        self.frequency.shrink_to_fit();
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        self.distinct.encode(w);
        self.frequency.encode(w);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, SketchError> {
        Ok(PrefixSketch {
            distinct: HyperLogLog::decode(r)?,
            frequency: FrequencySketch::decode(r)?,
        })
    }
}
