//! Per-tenant series budget. A series is (tenant, cluster, model, kind); a
//! tenant that keeps inventing models (or clusters) stops creating new series
//! once it holds `max_series_per_tenant` live ones. Series unseen for `ttl`
//! stop counting against the budget.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;

use super::attrs::{PrehashedMap, xxh3};

const SHARDS: usize = 16;

/// Tenant → (series digest → last seen, unix seconds).
type TenantSeries = HashMap<String, PrehashedMap<u64>>;

pub(crate) struct CardinalityLimiter {
    shards: Box<[Mutex<TenantSeries>]>,
    max_series_per_tenant: usize,
    ttl_secs: u64,
}

impl CardinalityLimiter {
    pub(crate) fn new(max_series_per_tenant: usize, ttl: Duration) -> Self {
        CardinalityLimiter {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            max_series_per_tenant,
            ttl_secs: ttl.as_secs(),
        }
    }

    /// Whether the series `series_hash` of `tenant` may be kept now.
    pub(crate) fn admit(&self, tenant: &str, series_hash: u64, now_secs: u64) -> bool {
        let mut shard = self.shards[(xxh3(tenant.as_bytes()) % SHARDS as u64) as usize].lock();
        let series = match shard.get_mut(tenant) {
            Some(series) => series,
            None => shard.entry(tenant.to_string()).or_default(),
        };
        if let Some(seen) = series.get_mut(&series_hash) {
            *seen = now_secs;
            return true;
        }
        if series.len() >= self.max_series_per_tenant {
            let ttl = self.ttl_secs;
            series.retain(|_, seen| now_secs.saturating_sub(*seen) <= ttl);
        }
        if series.len() >= self.max_series_per_tenant {
            return false;
        }
        series.insert(series_hash, now_secs);
        true
    }

    /// Live series of one tenant.
    #[cfg(test)]
    pub(crate) fn series_of(&self, tenant: &str) -> usize {
        let shard = self.shards[(xxh3(tenant.as_bytes()) % SHARDS as u64) as usize].lock();
        shard.get(tenant).map_or(0, |s| s.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_per_tenant_and_frees_stale_series() {
        let limiter = CardinalityLimiter::new(2, Duration::from_secs(60));
        assert!(limiter.admit("a", 1, 0));
        assert!(limiter.admit("a", 2, 0));
        assert!(!limiter.admit("a", 3, 10));
        assert!(limiter.admit("a", 1, 10), "known series stay admitted");
        assert!(
            limiter.admit("b", 3, 10),
            "other tenants have their own budget"
        );
        // Series 2 has not been seen for more than the TTL.
        assert!(limiter.admit("a", 3, 65));
        assert_eq!(limiter.series_of("a"), 2);
    }
}
