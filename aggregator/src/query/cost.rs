//! Cost: GPU-hours (the Cost signal's `gpu_seconds` per SKU) × price per
//! GPU-hour. The price comes from the cluster's
//! `InferenceCluster.spec.signals.cost.pricing` (via a [`PriceBook`], the
//! fleet directory in the binary) and falls back to the
//! `modelplane.gpu.price_per_hour` gauge the cluster reported. One function
//! for the query API, the scheduler endpoints and the status writer.

use std::collections::BTreeMap;

use crate::query::readout;
use crate::signal::{DIM_SKU, Field};
use crate::sketch::SeriesSketch;

/// Prices configured for the fleet.
pub trait PriceBook: Send + Sync {
    fn price_per_gpu_hour(&self, cluster: &str, sku: &str) -> Option<f64>;
}

/// No configured prices: only reported price gauges count.
pub struct NoPrices;

impl PriceBook for NoPrices {
    fn price_per_gpu_hour(&self, _cluster: &str, _sku: &str) -> Option<f64> {
        None
    }
}

/// Where a price came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PriceSource {
    /// `spec.signals.cost.pricing` of the cluster.
    Pricing,
    /// The `price_per_gpu_hour` gauge the cluster reported.
    Reported,
    /// Several clusters with different prices merged into one group.
    Mixed,
}

impl PriceSource {
    pub fn as_str(self) -> &'static str {
        match self {
            PriceSource::Pricing => "pricing",
            PriceSource::Reported => "reported",
            PriceSource::Mixed => "mixed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct SkuCost {
    pub gpu_hours: f64,
    pub price_per_gpu_hour: Option<f64>,
    pub price_source: Option<PriceSource>,
    /// Dollars for the priced GPU-hours; null when no price is known.
    pub dollars: Option<f64>,
}

/// Cost of one cluster's (or, summed with [`CostBreakdown::add`], a group of
/// clusters') GPU time, per SKU.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CostBreakdown {
    pub by_sku: BTreeMap<String, SkuCost>,
}

/// Counter totals of `field` per SKU dimension.
pub fn totals_by_sku(sketch: &SeriesSketch, field: Field) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (key, value) in sketch.fields() {
        if key.field == field
            && let Some(sku) = key.dims.get(DIM_SKU)
        {
            *out.entry(sku.clone()).or_default() += readout::total(value).unwrap_or(0.0);
        }
    }
    out
}

/// Latest reported price per SKU (`price_per_gpu_hour` gauges).
pub fn reported_prices(sketch: &SeriesSketch) -> BTreeMap<String, f64> {
    sketch
        .fields()
        .filter(|(key, _)| key.field == Field::PricePerGpuHour)
        .filter_map(|(key, value)| {
            let sku = key.dims.get(DIM_SKU)?;
            Some((sku.clone(), readout::gauge(value)?.last))
        })
        .collect()
}

/// The price of `sku` on `cluster`: configured first, else reported.
pub fn price_of(
    prices: &dyn PriceBook,
    cluster: &str,
    sku: &str,
    reported: &BTreeMap<String, f64>,
) -> Option<(f64, PriceSource)> {
    prices
        .price_per_gpu_hour(cluster, sku)
        .map(|p| (p, PriceSource::Pricing))
        .or_else(|| reported.get(sku).map(|p| (*p, PriceSource::Reported)))
}

impl CostBreakdown {
    /// Cost of one cluster's merged Cost-signal sketch.
    pub fn of_cluster(cluster: &str, sketch: &SeriesSketch, prices: &dyn PriceBook) -> Self {
        let reported = reported_prices(sketch);
        let mut by_sku = BTreeMap::new();
        let gpu_seconds = totals_by_sku(sketch, Field::GpuSeconds);
        let skus = gpu_seconds.keys().chain(reported.keys());
        for sku in skus {
            let gpu_hours = gpu_seconds.get(sku).copied().unwrap_or(0.0) / 3_600.0;
            let price = price_of(prices, cluster, sku, &reported);
            by_sku.insert(
                sku.clone(),
                SkuCost {
                    gpu_hours,
                    price_per_gpu_hour: price.map(|p| p.0),
                    price_source: price.map(|p| p.1),
                    dollars: price.map(|p| p.0 * gpu_hours),
                },
            );
        }
        CostBreakdown { by_sku }
    }

    /// Adds another cluster's cost (per SKU: hours and dollars add; a price
    /// that differs becomes the effective dollars / priced hours).
    pub fn add(&mut self, other: &CostBreakdown) {
        for (sku, theirs) in &other.by_sku {
            match self.by_sku.get_mut(sku) {
                None => {
                    self.by_sku.insert(sku.clone(), theirs.clone());
                }
                Some(mine) => {
                    let same_price = mine.price_per_gpu_hour == theirs.price_per_gpu_hour
                        && mine.price_source == theirs.price_source;
                    mine.gpu_hours += theirs.gpu_hours;
                    mine.dollars = match (mine.dollars, theirs.dollars) {
                        (None, None) => None,
                        (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
                    };
                    if !same_price {
                        mine.price_source = Some(PriceSource::Mixed);
                        mine.price_per_gpu_hour = None;
                    }
                }
            }
        }
    }

    pub fn gpu_hours(&self) -> f64 {
        self.by_sku
            .values()
            .map(|s| s.gpu_hours)
            .fold(0.0, |a, b| a + b)
    }

    pub fn dollars(&self) -> f64 {
        self.by_sku
            .values()
            .filter_map(|s| s.dollars)
            .fold(0.0, |a, b| a + b)
    }

    /// Dollars per priced GPU-hour (None when no GPU time is priced).
    pub fn dollars_per_gpu_hour(&self) -> Option<f64> {
        let priced: f64 = self
            .by_sku
            .values()
            .filter(|s| s.dollars.is_some())
            .map(|s| s.gpu_hours)
            .sum();
        (priced > 0.0).then(|| self.dollars() / priced)
    }

    /// Whether any GPU time has a price.
    pub fn is_priced(&self) -> bool {
        self.by_sku.values().any(|s| s.dollars.is_some())
    }

    pub fn dollars_per_token(&self, tokens: f64) -> Option<f64> {
        (self.is_priced() && tokens > 0.0).then(|| self.dollars() / tokens)
    }
}

/// Cost of several clusters' Cost sketches, each priced with its cluster's prices.
pub fn cost_of_clusters<'a>(
    clusters: impl IntoIterator<Item = (&'a str, &'a SeriesSketch)>,
    prices: &dyn PriceBook,
) -> CostBreakdown {
    let mut total = CostBreakdown::default();
    for (cluster, sketch) in clusters {
        total.add(&CostBreakdown::of_cluster(cluster, sketch, prices));
    }
    total
}
