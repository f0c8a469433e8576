//! Exact bucket vectors for latencies that arrive as explicit-bucket
//! histograms. Quantiles follow Prometheus `histogram_quantile` exactly, so a
//! number read here equals what a PromQL dashboard shows for the same buckets.
//!
//! Merging needs identical bounds. Histograms with other bounds are kept as a
//! separate layout (engines rarely change buckets, so there are one or two);
//! past [`MAX_LAYOUTS`] the smallest layout is re-bucketed into the largest by
//! linear interpolation (the same uniform-within-bucket assumption
//! `histogram_quantile` makes), which is the only approximate step.

use super::SketchError;
use super::codec::{Reader, Writer, corrupt};
use crate::signal::HistogramDelta;

pub const MAX_LAYOUTS: usize = 4;
/// More bounds than any real exporter uses; bounds memory and decode work.
pub const MAX_BOUNDS: usize = 512;

/// One bucket layout: finite ascending upper bounds plus an implicit +Inf
/// bucket, so `counts.len() == bounds.len() + 1`.
#[derive(Clone, Debug, PartialEq)]
pub struct BucketVector {
    bounds: Vec<f64>,
    counts: Vec<u64>,
    sum: f64,
}

/// Why a histogram point was refused.
pub fn validate_delta(delta: &HistogramDelta) -> Result<(), String> {
    if delta.counts.len() != delta.bounds.len() + 1 {
        return Err(format!(
            "histogram has {} counts for {} bounds (want bounds + 1)",
            delta.counts.len(),
            delta.bounds.len()
        ));
    }
    if delta.bounds.len() > MAX_BOUNDS {
        return Err(format!("histogram has more than {MAX_BOUNDS} bounds"));
    }
    validate_bounds(&delta.bounds)
}

fn validate_bounds(bounds: &[f64]) -> Result<(), String> {
    if bounds.iter().any(|b| !b.is_finite()) {
        return Err("histogram bounds must be finite (+Inf is implicit)".into());
    }
    if bounds.windows(2).any(|w| w[0] >= w[1]) {
        return Err("histogram bounds must be strictly ascending".into());
    }
    Ok(())
}

impl BucketVector {
    fn from_delta(delta: &HistogramDelta) -> Self {
        BucketVector {
            bounds: delta.bounds.clone(),
            counts: delta.counts.clone(),
            sum: delta.sum,
        }
    }

    fn count(&self) -> u64 {
        self.counts.iter().fold(0u64, |a, c| a.saturating_add(*c))
    }

    fn add_counts(&mut self, counts: &[u64], sum: f64) {
        for (mine, theirs) in self.counts.iter_mut().zip(counts) {
            *mine = mine.saturating_add(*theirs);
        }
        self.sum += sum;
    }

    /// Spreads this layout's counts over `target`'s buckets assuming values
    /// are uniform within a bucket (first bucket starts at 0 when its bound is
    /// positive, the +Inf bucket's mass sits just above the last bound).
    fn rebucket_into(&self, target_bounds: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; target_bounds.len() + 1];
        let target_slot = |v: f64| target_bounds.partition_point(|b| *b < v);
        for (i, &count) in self.counts.iter().enumerate() {
            if count == 0 {
                continue;
            }
            let count = count as f64;
            let hi = self.bounds.get(i).copied();
            let lo = match i {
                0 => hi.map(|h| if h > 0.0 { 0.0 } else { h }),
                _ => Some(self.bounds[i - 1]),
            };
            match (lo, hi) {
                (Some(lo), Some(hi)) if hi > lo => {
                    let mut edge = lo;
                    let mut slot = target_slot(lo);
                    // The source interval (lo, hi]: lo itself belongs to the
                    // bucket after any target bound equal to lo.
                    if target_bounds.get(slot) == Some(&lo) {
                        slot += 1;
                    }
                    while edge < hi {
                        let next = target_bounds
                            .get(slot)
                            .copied()
                            .unwrap_or(f64::INFINITY)
                            .min(hi);
                        out[slot] += count * (next - edge) / (hi - lo);
                        edge = next;
                        slot += 1;
                    }
                }
                (_, Some(hi)) => out[target_slot(hi)] += count,
                (Some(lo), None) => {
                    let slot = target_bounds.partition_point(|b| *b <= lo);
                    out[slot] += count;
                }
                (None, None) => out[target_bounds.len()] += count,
            }
        }
        out
    }

    fn heap_bytes(&self) -> usize {
        self.bounds.capacity() * 8 + self.counts.capacity() * 8
    }
}

/// Prometheus `histogram_quantile` (promql/quantile.go `bucketQuantile`) on
/// non-cumulative `counts` over `bounds` plus +Inf. NaN where Prometheus
/// answers NaN (no observations, no finite bucket).
pub fn prometheus_quantile(q: f64, bounds: &[f64], counts: &[f64]) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    if bounds.is_empty() || counts.len() != bounds.len() + 1 {
        return f64::NAN;
    }
    let cumulative: Vec<f64> = counts
        .iter()
        .scan(0.0, |acc, c| {
            *acc += c;
            Some(*acc)
        })
        .collect();
    let observations = cumulative[cumulative.len() - 1];
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let last = cumulative.len() - 1;
    let b = cumulative[..last].partition_point(|c| *c < rank);
    if b == last {
        return bounds[last - 1];
    }
    if b == 0 && bounds[0] <= 0.0 {
        return bounds[0];
    }
    let bucket_end = bounds[b];
    let (bucket_start, count) = if b > 0 {
        rank -= cumulative[b - 1];
        (bounds[b - 1], cumulative[b] - cumulative[b - 1])
    } else {
        (0.0, cumulative[0])
    };
    bucket_start + (bucket_end - bucket_start) * (rank / count)
}

/// Bucket-vector histograms of one field, one entry per distinct layout.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramSketch {
    layouts: Vec<BucketVector>,
}

impl HistogramSketch {
    /// Adds a histogram delta; the caller has validated it with [`validate_delta`].
    pub fn add(&mut self, delta: &HistogramDelta) {
        self.add_layout(&delta.bounds, &delta.counts, delta.sum, || {
            BucketVector::from_delta(delta)
        });
    }

    fn add_layout(
        &mut self,
        bounds: &[f64],
        counts: &[u64],
        sum: f64,
        make: impl FnOnce() -> BucketVector,
    ) {
        if let Some(layout) = self.layouts.iter_mut().find(|l| l.bounds == bounds) {
            layout.add_counts(counts, sum);
            return;
        }
        self.layouts.push(make());
        // Keep layouts in a canonical order so merge order never matters.
        self.layouts.sort_by(|a, b| {
            a.bounds
                .partial_cmp(&b.bounds)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        if self.layouts.len() > MAX_LAYOUTS {
            self.fold_smallest_layout();
        }
    }

    fn fold_smallest_layout(&mut self) {
        let smallest = (0..self.layouts.len())
            .min_by_key(|&i| (self.layouts[i].count(), std::cmp::Reverse(i)))
            .unwrap_or(0);
        let folded = self.layouts.remove(smallest);
        let largest = (0..self.layouts.len())
            .max_by_key(|&i| (self.layouts[i].count(), std::cmp::Reverse(i)))
            .unwrap_or(0);
        let target = &mut self.layouts[largest];
        let spread = folded.rebucket_into(&target.bounds);
        let counts: Vec<u64> = spread.iter().map(|c| c.round() as u64).collect();
        target.add_counts(&counts, folded.sum);
    }

    pub fn merge(&mut self, other: &HistogramSketch) {
        for layout in &other.layouts {
            self.add_layout(&layout.bounds, &layout.counts, layout.sum, || {
                layout.clone()
            });
        }
    }

    pub fn count(&self) -> u64 {
        self.layouts
            .iter()
            .fold(0u64, |a, l| a.saturating_add(l.count()))
    }

    pub fn sum(&self) -> f64 {
        self.layouts.iter().map(|l| l.sum).sum()
    }

    pub fn layouts(&self) -> usize {
        self.layouts.len()
    }

    /// Bounds and non-cumulative counts the quantile reads: the single layout
    /// as is, or every layout re-bucketed onto the union of their bounds.
    pub fn buckets(&self) -> (Vec<f64>, Vec<f64>) {
        match self.layouts.as_slice() {
            [] => (Vec::new(), Vec::new()),
            [only] => (
                only.bounds.clone(),
                only.counts.iter().map(|c| *c as f64).collect(),
            ),
            many => {
                let mut bounds: Vec<f64> =
                    many.iter().flat_map(|l| l.bounds.iter().copied()).collect();
                bounds.sort_by(f64::total_cmp);
                bounds.dedup();
                let mut counts = vec![0.0; bounds.len() + 1];
                for layout in many {
                    for (total, c) in counts.iter_mut().zip(layout.rebucket_into(&bounds)) {
                        *total += c;
                    }
                }
                (bounds, counts)
            }
        }
    }

    /// Prometheus `histogram_quantile(q, ...)` over these buckets; `None`
    /// where Prometheus would answer NaN.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let (bounds, counts) = self.buckets();
        let v = prometheus_quantile(q, &bounds, &counts);
        (!v.is_nan()).then_some(v)
    }

    pub fn shrink_to_fit(&mut self) {
        self.layouts.shrink_to_fit();
    }

    pub fn heap_bytes(&self) -> usize {
        self.layouts.capacity() * std::mem::size_of::<BucketVector>()
            + self
                .layouts
                .iter()
                .map(BucketVector::heap_bytes)
                .sum::<usize>()
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.varint(self.layouts.len() as u64);
        for layout in &self.layouts {
            w.varint(layout.bounds.len() as u64);
            for b in &layout.bounds {
                w.f64(*b);
            }
            for c in &layout.counts {
                w.varint(*c);
            }
            w.f64(layout.sum);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, SketchError> {
        let n = r.len(2)?;
        if n > MAX_LAYOUTS {
            return Err(corrupt(format!(
                "{n} histogram layouts exceed {MAX_LAYOUTS}"
            )));
        }
        let mut layouts = Vec::with_capacity(n);
        for _ in 0..n {
            let bounds_len = r.len(9)?;
            if bounds_len > MAX_BOUNDS {
                return Err(corrupt(format!(
                    "histogram has more than {MAX_BOUNDS} bounds"
                )));
            }
            let bounds = (0..bounds_len)
                .map(|_| r.f64())
                .collect::<Result<Vec<_>, _>>()?;
            validate_bounds(&bounds).map_err(corrupt)?;
            let counts = (0..=bounds_len)
                .map(|_| r.varint())
                .collect::<Result<Vec<_>, _>>()?;
            let sum = r.f64()?;
            layouts.push(BucketVector {
                bounds,
                counts,
                sum,
            });
        }
        Ok(HistogramSketch { layouts })
    }
}
