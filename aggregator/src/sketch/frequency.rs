//! Prefix-hash frequency: Misra-Gries heavy hitters (the top-K, mergeable
//! with a guarantee: Agarwal et al., "Mergeable Summaries", 2012) plus a
//! Count-Min sketch for point queries on any hash. The Count-Min table is
//! allocated only once more distinct hashes arrive than the heavy-hitter
//! table holds: until then the heavy-hitter counts are exact and answer
//! point queries themselves, which keeps small prefix series small.

use super::SketchError;
use super::codec::{Reader, Writer, corrupt};
use super::prefix::rehash;

/// Heavy-hitter slots. Any hash with more than `total / (CAPACITY + 1)`
/// occurrences (0.78 %) is guaranteed to be kept, through any merge tree.
pub const HEAVY_HITTER_CAPACITY: usize = 128;
pub const CMS_DEPTH: usize = 4;
/// Width 512: over-count ≤ e/512 ≈ 0.53 % of the total with probability
/// 1 - e^-4 ≈ 98 %, in 8 KiB of u32 counters.
pub const CMS_WIDTH: usize = 512;

#[derive(Clone, Debug, PartialEq)]
pub struct CountMin {
    /// Row-major, `CMS_DEPTH * CMS_WIDTH`, saturating.
    counters: Box<[u32]>,
}

fn cms_slots(hash: u64) -> impl Iterator<Item = usize> {
    // Kirsch-Mitzenmacher double hashing from the two halves of one hash.
    let h1 = hash as u32;
    let h2 = ((hash >> 32) as u32) | 1;
    (0..CMS_DEPTH).map(move |row| {
        row * CMS_WIDTH + (h1.wrapping_add((row as u32).wrapping_mul(h2)) as usize % CMS_WIDTH)
    })
}

impl CountMin {
    fn new() -> Self {
        CountMin {
            counters: vec![0u32; CMS_DEPTH * CMS_WIDTH].into_boxed_slice(),
        }
    }

    fn add(&mut self, hash: u64, count: u64) {
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        for slot in cms_slots(hash) {
            self.counters[slot] = self.counters[slot].saturating_add(count);
        }
    }

    fn estimate(&self, hash: u64) -> u64 {
        cms_slots(hash)
            .map(|slot| u64::from(self.counters[slot]))
            .min()
            .unwrap_or(0)
    }

    fn merge(&mut self, other: &CountMin) {
        for (mine, theirs) in self.counters.iter_mut().zip(other.counters.iter()) {
            *mine = mine.saturating_add(*theirs);
        }
    }
}

/// One heavy hitter and its estimated occurrences (exact while the sketch is
/// exact, else the Count-Min estimate, an upper bound).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeavyHitter {
    pub hash: u64,
    pub count: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct FrequencySketch {
    total: u64,
    /// Sorted by item; `(item, count)`.
    heavy: Vec<(u64, u64)>,
    /// Present once the heavy-hitter table has overflowed.
    count_min: Option<CountMin>,
}

impl FrequencySketch {
    /// `item` is the prefix hash as sent; `hashed` is `rehash(item)`.
    pub fn add(&mut self, item: u64, hashed: u64, count: u64) {
        self.total = self.total.saturating_add(count);
        if let Some(cms) = &mut self.count_min {
            cms.add(hashed, count);
        }
        match self.heavy.binary_search_by_key(&item, |e| e.0) {
            Ok(at) => self.heavy[at].1 = self.heavy[at].1.saturating_add(count),
            Err(at) => {
                self.heavy.insert(at, (item, count));
                if self.heavy.len() > HEAVY_HITTER_CAPACITY {
                    self.promote();
                    self.shrink_heavy();
                }
            }
        }
    }

    /// Heavy counts are exact until the first shrink, so they seed the table.
    fn promote(&mut self) {
        if self.count_min.is_none() {
            let mut cms = CountMin::new();
            for &(item, count) in &self.heavy {
                cms.add(rehash(item), count);
            }
            self.count_min = Some(cms);
        }
    }

    /// Misra-Gries reduction: subtract the (k+1)-th largest count from every
    /// counter and drop what reaches zero.
    fn shrink_heavy(&mut self) {
        if self.heavy.len() <= HEAVY_HITTER_CAPACITY {
            return;
        }
        let mut counts: Vec<u64> = self.heavy.iter().map(|e| e.1).collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let cut = counts[HEAVY_HITTER_CAPACITY];
        self.heavy.retain_mut(|e| {
            e.1 -= cut;
            e.1 > 0
        });
        // Ties at the cut can leave more than CAPACITY; drop the smallest.
        while self.heavy.len() > HEAVY_HITTER_CAPACITY {
            if let Some(at) =
                (0..self.heavy.len()).min_by_key(|&i| (self.heavy[i].1, self.heavy[i].0))
            {
                self.heavy.remove(at);
            }
        }
    }

    pub fn merge(&mut self, other: &FrequencySketch) {
        if other.count_min.is_some() || self.count_min.is_some() {
            self.promote();
            let cms = self.count_min.as_mut().expect("promoted above");
            match &other.count_min {
                Some(theirs) => cms.merge(theirs),
                None => {
                    for &(item, count) in &other.heavy {
                        cms.add(rehash(item), count);
                    }
                }
            }
        }
        self.total = self.total.saturating_add(other.total);
        let mut merged = Vec::with_capacity(self.heavy.len() + other.heavy.len());
        let (mut a, mut b) = (self.heavy.iter().peekable(), other.heavy.iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.0 == y.0 => {
                    merged.push((x.0, x.1.saturating_add(y.1)));
                    a.next();
                    b.next();
                }
                (Some(x), Some(y)) if x.0 < y.0 => merged.push(*a.next().expect("peeked")),
                (Some(_), Some(_)) => merged.push(*b.next().expect("peeked")),
                (Some(_), None) => merged.push(*a.next().expect("peeked")),
                (None, Some(_)) => merged.push(*b.next().expect("peeked")),
                (None, None) => break,
            }
        }
        self.heavy = merged;
        if self.heavy.len() > HEAVY_HITTER_CAPACITY {
            // Reached only when both sides were exact (a Count-Min table
            // would exist otherwise), so the union's exact counts seed it.
            self.promote();
            self.shrink_heavy();
        }
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn is_exact(&self) -> bool {
        self.count_min.is_none()
    }

    /// Estimated occurrences of `item`: exact while the sketch is exact,
    /// otherwise the Count-Min upper bound (never below the true count).
    pub fn frequency(&self, item: u64, hashed: u64) -> u64 {
        match &self.count_min {
            Some(cms) => cms.estimate(hashed),
            None => self
                .heavy
                .binary_search_by_key(&item, |e| e.0)
                .map(|at| self.heavy[at].1)
                .unwrap_or(0),
        }
    }

    /// The `n` most frequent hashes, by estimated count (descending, ties by
    /// hash). Every hash above 1/(CAPACITY+1) of the total is among them
    /// when `n` ≥ CAPACITY.
    pub fn top(&self, n: usize) -> Vec<HeavyHitter> {
        let mut items: Vec<HeavyHitter> = self
            .heavy
            .iter()
            .map(|&(hash, count)| HeavyHitter {
                hash,
                count: match &self.count_min {
                    Some(cms) => cms.estimate(rehash(hash)).max(count),
                    None => count,
                },
            })
            .collect();
        items.sort_unstable_by(|a, b| b.count.cmp(&a.count).then(a.hash.cmp(&b.hash)));
        items.truncate(n);
        items
    }

    pub fn shrink_to_fit(&mut self) {
        self.heavy.shrink_to_fit();
    }

    pub fn heap_bytes(&self) -> usize {
        self.heavy.capacity() * std::mem::size_of::<(u64, u64)>()
            + self.count_min.as_ref().map_or(0, |c| c.counters.len() * 4)
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.varint(self.total);
        w.varint(self.heavy.len() as u64);
        for &(item, count) in &self.heavy {
            w.u64_fixed(item);
            w.varint(count);
        }
        match &self.count_min {
            None => w.u8(0),
            Some(cms) => {
                w.u8(1);
                for c in cms.counters.iter() {
                    w.varint(u64::from(*c));
                }
            }
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, SketchError> {
        let total = r.varint()?;
        let len = r.len(9)?; // 8-byte item + 1-byte varint count
        if len > HEAVY_HITTER_CAPACITY {
            return Err(corrupt("more heavy hitters than the table holds"));
        }
        let mut heavy = Vec::with_capacity(len);
        for _ in 0..len {
            let item = r.u64_fixed()?;
            let count = r.varint()?;
            if heavy.last().is_some_and(|e: &(u64, u64)| e.0 >= item) {
                return Err(corrupt("heavy hitters not sorted by hash"));
            }
            heavy.push((item, count));
        }
        let count_min = match r.u8()? {
            0 => None,
            1 => {
                let mut counters = vec![0u32; CMS_DEPTH * CMS_WIDTH].into_boxed_slice();
                for c in counters.iter_mut() {
                    *c = u32::try_from(r.varint()?)
                        .map_err(|_| corrupt("Count-Min counter exceeds u32"))?;
                }
                Some(CountMin { counters })
            }
            tag => return Err(corrupt(format!("unknown Count-Min tag {tag}"))),
        };
        Ok(FrequencySketch {
            total,
            heavy,
            count_min,
        })
    }
}
