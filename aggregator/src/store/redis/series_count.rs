//! How many series Redis holds, for `StoreHealth.series` (`/readyz` and the
//! `modelplane_aggregator_series` gauge on `/metrics`).
//!
//! A series is a member of its tenant's per-kind index set (see keys.rs), so
//! the count is the sum of their `SCARD`s: one pipeline of six `SCARD`s per
//! tenant (one hash slot, so it runs unchanged on Redis Cluster), tenants in
//! parallel. The index sets expire with the retention and are refreshed by
//! every flush, so they hold the series with data inside the retention, as the
//! embedded store counts them.
//!
//! Health checks never count: they read the last count and, when it is older
//! than [`MAX_AGE`], start one recount in the background, so any scrape rate
//! costs Redis at most one count per `MAX_AGE`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redis::AsyncCommands;
use tokio::task::JoinSet;

use crate::signal::SignalKind;

use super::conn::RedisConn;
use super::keys;

/// How stale a count `health()` may return before it starts a recount.
pub const MAX_AGE: Duration = Duration::from_secs(10);
/// Tenants whose pipelines are in flight at once.
const PARALLEL_TENANTS: usize = 32;

#[derive(Default)]
pub struct SeriesCount {
    last: Mutex<Option<(u64, Instant)>>,
    counting: AtomicBool,
}

impl SeriesCount {
    /// The last count, `None` before the first one succeeded. An outage keeps
    /// the last count: the series are still in Redis.
    pub fn last(&self) -> Option<u64> {
        self.last.lock().map(|(count, _)| count)
    }

    pub fn is_stale(&self) -> bool {
        self.last
            .lock()
            .is_none_or(|(_, at)| at.elapsed() >= MAX_AGE)
    }

    pub fn record(&self, count: u64) {
        *self.last.lock() = Some((count, Instant::now()));
    }

    /// Claims the background recount; `false` while one runs.
    pub fn try_begin(&self) -> bool {
        !self.counting.swap(true, Ordering::AcqRel)
    }

    /// Ends the recount claimed with [`SeriesCount::try_begin`].
    pub fn end(&self) {
        self.counting.store(false, Ordering::Release);
    }
}

/// Counts the series in Redis now.
pub async fn count(mut conn: RedisConn) -> redis::RedisResult<u64> {
    let tenants: Vec<String> = conn.smembers(keys::TENANTS_KEY).await?;
    let mut total = 0;
    for chunk in tenants.chunks(PARALLEL_TENANTS) {
        let mut tasks = JoinSet::new();
        for tenant in chunk {
            let mut pipe = redis::pipe();
            for kind in SignalKind::ALL {
                pipe.scard(keys::series_index_key(tenant, kind));
            }
            let mut conn = conn.clone();
            tasks.spawn(async move { pipe.query_async::<Vec<u64>>(&mut conn).await });
        }
        while let Some(joined) = tasks.join_next().await {
            let per_kind = joined.map_err(|e| {
                redis::RedisError::from(std::io::Error::other(format!("series count task: {e}")))
            })??;
            total += per_kind.iter().sum::<u64>();
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_is_fresh_until_max_age_and_one_recount_runs_at_a_time() {
        let cache = SeriesCount::default();
        assert_eq!(cache.last(), None);
        assert!(cache.is_stale());
        assert!(cache.try_begin());
        assert!(!cache.try_begin(), "a second recount while one runs");
        cache.record(42);
        cache.end();
        assert_eq!(cache.last(), Some(42));
        assert!(!cache.is_stale());
        assert!(cache.try_begin(), "claimable again once ended");
        *cache.last.lock() = Some((42, Instant::now() - MAX_AGE));
        assert!(cache.is_stale());
    }
}
