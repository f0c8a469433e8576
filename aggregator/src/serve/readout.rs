//! The one place the API reads values out of field sketches. Everything else in
//! `serve` asks these functions, so a new sketch variant changes only this file.

use crate::sketch::FieldSketch;

/// A gauge's readings over the queried range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GaugeReading {
    pub last: f64,
    pub min: f64,
    pub max: f64,
}

/// How many values a distribution (per-request samples or histogram buckets) holds.
pub fn count(field: &FieldSketch) -> Option<u64> {
    let _ = field;
    None
}

/// The value at quantile `q` of a distribution.
pub fn quantile(field: &FieldSketch, q: f64) -> Option<f64> {
    let _ = (field, q);
    None
}

/// A counter's increase over the range, or the sum of a distribution's values.
pub fn total(field: &FieldSketch) -> Option<f64> {
    let _ = field;
    None
}

pub fn gauge(field: &FieldSketch) -> Option<GaugeReading> {
    let _ = field;
    None
}

/// Estimated distinct prefix hashes.
pub fn distinct(field: &FieldSketch) -> Option<f64> {
    let _ = field;
    None
}

/// The most frequent prefix hashes, most frequent first, with estimated counts.
pub fn top(field: &FieldSketch, limit: usize) -> Vec<(u64, u64)> {
    let _ = (field, limit);
    Vec::new()
}
