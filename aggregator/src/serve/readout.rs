//! The one place the API reads values out of field sketches. Everything else in
//! `serve` asks these functions, so a new sketch variant changes only this file.

use crate::sketch::FieldSketch;

/// A gauge's readings over the queried range. Merged across series, `last` is
/// the most recent report of any of them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GaugeReading {
    pub last: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
}

/// How many values a distribution (per-request samples or histogram buckets) holds.
pub fn count(field: &FieldSketch) -> Option<u64> {
    field.as_distribution().map(|d| d.count())
}

/// The value at quantile `q` of a distribution.
pub fn quantile(field: &FieldSketch, q: f64) -> Option<f64> {
    field.as_distribution()?.quantile(q)
}

/// A counter's increase over the range, or the sum of a distribution's samples.
pub fn total(field: &FieldSketch) -> Option<f64> {
    match field {
        FieldSketch::Counter(c) => Some(c.sum),
        FieldSketch::Distribution(d) if d.samples.count() > 0 => Some(d.samples.sum()),
        _ => None,
    }
}

pub fn gauge(field: &FieldSketch) -> Option<GaugeReading> {
    let g = field.as_gauge()?;
    Some(GaugeReading {
        last: g.last,
        min: g.min,
        max: g.max,
        mean: g.mean()?,
    })
}

/// Estimated distinct prefix hashes.
pub fn distinct(field: &FieldSketch) -> Option<f64> {
    field.as_prefix().map(|p| p.distinct())
}

/// The most frequent prefix hashes, most frequent first, with estimated counts.
pub fn top(field: &FieldSketch, limit: usize) -> Vec<(u64, u64)> {
    field
        .as_prefix()
        .map(|p| {
            p.top(limit)
                .into_iter()
                .map(|h| (h.hash, h.count))
                .collect()
        })
        .unwrap_or_default()
}
