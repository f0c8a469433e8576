//! The read model: what turns stored sketches into answers. The query API
//! and the status writer both read through it, so a number means the same
//! on an XR's status as in an API response.
//!
//! - [`readout`]: values out of sketches (quantiles, totals, gauges, prefixes);
//! - [`cost`]: GPU-hours × price per SKU and cluster;
//! - the seams the fleet directory fills in: [`FleetPolicy`] (which series
//!   may join cross-tenant answers) and [`cost::PriceBook`] (configured prices).

pub mod cost;
pub mod readout;

use crate::signal::SeriesKey;

pub use cost::{NoPrices, PriceBook};

/// Which series may contribute to cross-tenant (fleet) answers.
pub trait FleetPolicy: Send + Sync {
    fn includes(&self, key: &SeriesKey) -> bool;
}

/// Every series counts toward fleet roll-ups: for tests and tools that have
/// no directory. The binary always asks the directory.
pub struct AllSeries;

impl FleetPolicy for AllSeries {
    fn includes(&self, _key: &SeriesKey) -> bool {
        true
    }
}
