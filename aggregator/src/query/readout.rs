//! The one place values are read out of sketches. The API and the status
//! writer ask these functions, so a new sketch variant changes only this file.

use std::collections::BTreeMap;

use crate::signal::{Field, FieldKey};
use crate::sketch::{FieldSketch, SeriesSketch};

/// The quantiles every distribution reports.
pub const REPORTED_QUANTILES: [(&str, f64); 3] = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)];

/// Readings of a gauge over the queried window (null when none was
/// reported). Merged across series, `last` is the most recent report of any
/// of them.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "Gauge")]
pub struct GaugeReading {
    /// Most recent report (of any merged series).
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

/// The [`REPORTED_QUANTILES`] of a distribution, in that order.
pub fn reported_quantiles(field: &FieldSketch) -> [Option<f64>; 3] {
    REPORTED_QUANTILES.map(|(_, q)| quantile(field, q))
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

// --- a series' fields ----------------------------------------------------

/// The field without dimensions.
pub fn plain(sketch: &SeriesSketch, field: Field) -> Option<&FieldSketch> {
    sketch.field(&FieldKey::plain(field))
}

/// A counter's total over the window (0 when nothing was reported).
pub fn total_of(sketch: &SeriesSketch, field: Field) -> f64 {
    plain(sketch, field).and_then(total).unwrap_or(0.0)
}

/// Values of dimension `dim` seen on `field`, each with the keys carrying it.
pub fn by_dim<'a>(
    sketch: &'a SeriesSketch,
    field: Field,
    dim: &str,
) -> BTreeMap<String, Vec<(&'a FieldKey, &'a FieldSketch)>> {
    let mut out: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for (key, value) in sketch.fields() {
        if key.field == field
            && let Some(dim_value) = key.dims.get(dim)
        {
            out.entry(dim_value.clone()).or_default().push((key, value));
        }
    }
    out
}

/// Counter totals of `field` per value of `dim` (summed over other dimensions).
pub fn totals_by_dim(sketch: &SeriesSketch, field: Field, dim: &str) -> BTreeMap<String, f64> {
    by_dim(sketch, field, dim)
        .into_iter()
        .map(|(value, keys)| {
            let sum = keys
                .iter()
                .filter_map(|(_, f)| total(f))
                .fold(0.0, |a, b| a + b);
            (value, sum)
        })
        .collect()
}

/// Sum of a counter over all its dimension values.
pub fn total_all_dims(sketch: &SeriesSketch, field: Field) -> f64 {
    sketch
        .fields()
        .filter(|(key, _)| key.field == field)
        .filter_map(|(_, f)| total(f))
        // Not `.sum()`: an empty f64 sum is -0.0, and answers never say -0.
        .fold(0.0, |a, b| a + b)
}

/// Every dimension value of `field` whose sketch `keep` selects, merged into
/// one sketch (a series' gauge readings of one field across SKUs, say).
fn merged_over_dims(
    sketch: &SeriesSketch,
    field: Field,
    keep: impl Fn(&FieldSketch) -> bool,
) -> Option<FieldSketch> {
    let merged = SeriesSketch::from_fields(
        sketch
            .fields_named(field)
            .filter(|(_, f)| keep(f))
            .map(|(_, f)| (FieldKey::plain(field), f.clone())),
    );
    merged.field(&FieldKey::plain(field)).cloned()
}

/// The gauge readings of `field` under every dimension value, merged (as
/// across series: `last` is the most recent report of any of them).
pub fn gauge_all_dims(sketch: &SeriesSketch, field: Field) -> Option<GaugeReading> {
    merged_over_dims(sketch, field, |f| f.as_gauge().is_some())
        .as_ref()
        .and_then(gauge)
}

/// The distribution (samples or histogram buckets) of `field` under every
/// dimension value, merged.
pub fn distribution_all_dims(sketch: &SeriesSketch, field: Field) -> Option<FieldSketch> {
    merged_over_dims(sketch, field, |f| f.as_distribution().is_some())
}
