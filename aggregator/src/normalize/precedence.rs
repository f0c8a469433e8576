//! One vantage point per RequestLifecycle field. The same requests are seen
//! by the engine (metrics, `llm_request` spans), the router (EPP metrics)
//! and the gateway (GenAI metrics and spans); adding them up would count each
//! request two or three times. For every (tenant, cluster, model, field) the
//! highest-ranked vantage seen within `window` owns the field and points from
//! lower-ranked ones are dropped (`outranked_source`). Fields only a lower
//! vantage provides (latencies from gateway spans next to llama.cpp's
//! token-only metrics) still flow, because ownership is per field.

use std::time::Duration;

use parking_lot::Mutex;

use super::attrs::PrehashedMap;

const SHARDS: usize = 16;

/// Field digest → (owning vantage, last seen, unix seconds).
type Owners = PrehashedMap<(Vantage, u64)>;

/// Ordered: a higher vantage wins. Unsampled metric aggregates outrank
/// spans, and the engine outranks the router, which outranks the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Vantage {
    GatewaySpans = 1,
    EngineSpans = 2,
    GenAiMetrics = 3,
    RouterMetrics = 4,
    EngineMetrics = 5,
}

pub(crate) struct Precedence {
    shards: Box<[Mutex<Owners>]>,
    window_secs: u64,
    per_shard_capacity: usize,
}

impl Precedence {
    pub(crate) fn new(window: Duration, max_entries: usize) -> Self {
        Precedence {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(PrehashedMap::default()))
                .collect(),
            window_secs: window.as_secs(),
            per_shard_capacity: max_entries.div_ceil(SHARDS).max(1),
        }
    }

    /// Whether `vantage` may write the field `key` now.
    pub(crate) fn allow(&self, key: u64, vantage: Vantage, now_secs: u64) -> bool {
        let mut shard = self.shards[(key % SHARDS as u64) as usize].lock();
        let window = self.window_secs;
        if let Some((owner, seen)) = shard.get_mut(&key) {
            let expired = now_secs.saturating_sub(*seen) > window;
            if vantage >= *owner || expired {
                *owner = vantage;
                *seen = now_secs;
                return true;
            }
            return false;
        }
        if shard.len() >= self.per_shard_capacity {
            shard.retain(|_, (_, seen)| now_secs.saturating_sub(*seen) <= window);
        }
        // When full, fail open: double counting beats losing data.
        if shard.len() < self.per_shard_capacity {
            shard.insert(key, (vantage, now_secs));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_vantage_owns_until_it_goes_quiet() {
        let p = Precedence::new(Duration::from_secs(300), 1024);
        assert!(p.allow(1, Vantage::GatewaySpans, 0));
        assert!(p.allow(1, Vantage::EngineMetrics, 10));
        assert!(!p.allow(1, Vantage::GatewaySpans, 20));
        assert!(!p.allow(1, Vantage::RouterMetrics, 20));
        assert!(p.allow(1, Vantage::EngineMetrics, 30));
        assert!(
            p.allow(2, Vantage::GatewaySpans, 30),
            "fields are independent"
        );
        // The engine stopped reporting: after the window the gateway takes over.
        assert!(p.allow(1, Vantage::GatewaySpans, 331));
    }
}
