//! The Cost signal end to end: GPU time per SKU (the Cost signal's
//! `gpu_seconds`, or Capacity's GPU count over the window when a cluster
//! reports no GPU time) priced with `spec.signals.cost.pricing` from the
//! directory, for `status.signals.cost` per cluster. `$/token` per ModelService
//! comes from [`crate::query::cost`], the same code the query API uses.

use std::collections::{BTreeMap, BTreeSet};

use apis::{ClusterCostStatus, GpuPrice};

use super::compute::Settings;
use crate::directory::ClusterEntry;
use crate::query::cost::totals_by_sku;
use crate::query::readout;
use crate::signal::{DIM_SKU, Field, SignalKind};
use crate::sketch::SeriesSketch;
use crate::store::{SketchStore, StoreError, StoreQuery};

/// GPU-hours, and what the priced ones cost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Priced {
    pub gpu_hours: f64,
    pub priced_hours: f64,
    pub cost: f64,
    pub currencies: BTreeSet<String>,
}

impl Priced {
    pub fn add(&mut self, price: Option<&GpuPrice>, gpu_seconds: f64) {
        let hours = gpu_seconds / 3_600.0;
        self.gpu_hours += hours;
        if let Some(price) = price {
            self.priced_hours += hours;
            self.cost += hours * price.price_per_gpu_hour;
            self.currencies.insert(price.currency.clone());
        }
    }

    /// The cost, when some GPU time is priced and all in one currency
    /// (amounts in different currencies do not add up).
    pub fn cost(&self) -> Option<f64> {
        (self.priced_hours > 0.0 && self.currencies.len() == 1).then_some(self.cost)
    }

    pub fn currency(&self) -> Option<String> {
        match self.currencies.len() {
            1 => self.currencies.first().cloned(),
            _ => None,
        }
    }
}

/// GPU-seconds per SKU implied by Capacity's `gpus` gauge: its mean over the
/// window times the window (summed over series: each reports its own GPUs).
fn capacity_gpu_seconds<'a>(
    series: impl Iterator<Item = &'a SeriesSketch>,
    window_secs: u64,
) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for sketch in series {
        for (key, field) in sketch.fields_named(Field::Gpus) {
            if let (Some(sku), Some(gauge)) = (key.dims.get(DIM_SKU), readout::gauge(field)) {
                *out.entry(sku.clone()).or_default() += gauge.mean * window_secs as f64;
            }
        }
    }
    out
}

/// `status.signals.cost` of one cluster; None when the cluster prices nothing.
pub async fn cluster_cost(
    store: &dyn SketchStore,
    cluster: &ClusterEntry,
    now: u64,
    settings: &Settings,
) -> Result<Option<ClusterCostStatus>, StoreError> {
    if cluster.pricing.is_empty() {
        return Ok(None);
    }
    let query = |kind| StoreQuery {
        tenant: None,
        kind,
        cluster: Some(cluster.name.clone()),
        model: None,
        from_unix_secs: now.saturating_sub(settings.window_secs),
        to_unix_secs: now,
    };
    let mut seconds: BTreeMap<String, f64> = BTreeMap::new();
    for (_, sketch) in store.query(&query(SignalKind::Cost)).await? {
        for (sku, s) in totals_by_sku(&sketch, Field::GpuSeconds) {
            *seconds.entry(sku).or_default() += s;
        }
    }
    if seconds.is_empty() {
        let capacity = store.query(&query(SignalKind::Capacity)).await?;
        seconds = capacity_gpu_seconds(capacity.iter().map(|(_, s)| s), settings.window_secs);
    }
    let mut priced = Priced::default();
    for (sku, s) in &seconds {
        priced.add(cluster.pricing.get(sku), *s);
    }
    let cost = priced.cost();
    Ok(Some(ClusterCostStatus {
        window: settings.window_label(),
        gpu_hours: priced.gpu_hours,
        cost: cost.unwrap_or(0.0),
        cost_per_gpu_hour: cost.map(|c| c / priced.priced_hours),
        currency: priced.currency(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(value: f64, currency: &str) -> GpuPrice {
        GpuPrice {
            gpu: "X".into(),
            price_per_gpu_hour: value,
            currency: currency.into(),
        }
    }

    #[test]
    fn mixed_currencies_have_no_total() {
        let mut priced = Priced::default();
        priced.add(Some(&price(2.0, "USD")), 3_600.0);
        priced.add(None, 7_200.0);
        assert_eq!(priced.gpu_hours, 3.0);
        assert_eq!(priced.cost(), Some(2.0));
        assert_eq!(priced.currency().as_deref(), Some("USD"));
        priced.add(Some(&price(1.0, "EUR")), 3_600.0);
        assert_eq!(priced.cost(), None);
        assert_eq!(priced.currency(), None);
    }

    #[test]
    fn nothing_priced_is_no_cost() {
        let mut priced = Priced::default();
        priced.add(None, 3_600.0);
        assert_eq!(priced.cost(), None);
    }
}
