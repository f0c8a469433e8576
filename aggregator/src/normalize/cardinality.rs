//! Per-tenant series budget. A series is (tenant, cluster, model, kind); a
//! tenant that keeps inventing models (or clusters) stops creating new series
//! once it holds `max_series_per_tenant` live ones. Series unseen for `ttl`
//! stop counting against the budget.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;

use super::attrs::{PrehashedMap, xxh3};

const SHARDS: usize = 16;

/// Series a tenant may hold beyond its budget, for overflow series only
/// (one per cluster and kind: 6 kinds × 64 clusters). Past it, points that
/// would need a new overflow series are dropped as `series_limit`.
pub const OVERFLOW_HEADROOM: usize = 384;

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
        self.admit_within(tenant, series_hash, now_secs, self.max_series_per_tenant)
    }

    /// Whether the overflow series `series_hash` of `tenant` may be kept:
    /// overflow series (one per cluster and kind) have
    /// [`OVERFLOW_HEADROOM`] series beyond the budget, so a tenant that
    /// also keeps inventing clusters stays bounded.
    pub(crate) fn admit_overflow(&self, tenant: &str, series_hash: u64, now_secs: u64) -> bool {
        self.admit_within(
            tenant,
            series_hash,
            now_secs,
            self.max_series_per_tenant.saturating_add(OVERFLOW_HEADROOM),
        )
    }

    fn admit_within(&self, tenant: &str, series_hash: u64, now_secs: u64, limit: usize) -> bool {
        let mut shard = self.shards[(xxh3(tenant.as_bytes()) % SHARDS as u64) as usize].lock();
        let series = match shard.get_mut(tenant) {
            Some(series) => series,
            None => shard.entry(tenant.to_string()).or_default(),
        };
        if let Some(seen) = series.get_mut(&series_hash) {
            *seen = now_secs;
            return true;
        }
        if series.len() >= limit {
            let ttl = self.ttl_secs;
            series.retain(|_, seen| now_secs.saturating_sub(*seen) <= ttl);
        }
        if series.len() >= limit {
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

    #[test]
    fn overflow_series_have_a_bounded_headroom_beyond_the_budget() {
        let limiter = CardinalityLimiter::new(2, Duration::from_secs(60));
        assert!(limiter.admit("a", 1, 0));
        assert!(limiter.admit("a", 2, 0));
        assert!(!limiter.admit("a", 3, 0), "the budget is full");
        // Overflow series fill exactly the headroom beyond the budget.
        let overflow = 1000..1000 + OVERFLOW_HEADROOM as u64;
        for hash in overflow.clone() {
            assert!(
                limiter.admit_overflow("a", hash, 10),
                "overflow series {hash}"
            );
        }
        assert_eq!(limiter.series_of("a"), 2 + OVERFLOW_HEADROOM);
        assert!(!limiter.admit_overflow("a", 5000, 10), "past the headroom");
        assert!(
            limiter.admit_overflow("a", 1000, 20),
            "known overflow series stay admitted"
        );
        assert!(
            !limiter.admit("a", 3, 20),
            "overflow series never open the budget"
        );
        assert!(
            limiter.admit_overflow("b", 5000, 20),
            "other tenants have their own"
        );
        // The regular series (seen at 0) go stale at 61: their room is free
        // again, for overflow and then for regular series.
        assert!(limiter.admit_overflow("a", 5000, 61));
        assert_eq!(limiter.series_of("a"), OVERFLOW_HEADROOM + 1);
        assert!(
            !limiter.admit("a", 3, 61),
            "the overflow series fill the budget"
        );
    }
}
