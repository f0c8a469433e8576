//! Whether a freshly computed status differs enough from the one last written
//! to be worth a write: numbers by a relative threshold, everything else
//! (kinds, booleans, presence, cluster sets, rounded timestamps) exactly.
//! `updatedAt` is the time of the write itself and never counts.

use apis::{ClusterBreakdown, ClusterCostStatus, LatencyQuantiles, ServiceMetrics, SignalsStatus};

/// Numbers closer than this in absolute terms are equal (both "zero").
const ABSOLUTE_EPSILON: f64 = 1e-12;

#[derive(Debug, Clone, Copy)]
pub struct Threshold {
    /// Relative change that makes a number different, e.g. 0.05 for 5 %.
    pub relative: f64,
}

impl Threshold {
    pub fn number(&self, old: f64, new: f64) -> bool {
        let delta = (old - new).abs();
        delta > ABSOLUTE_EPSILON && delta > self.relative * old.abs().max(new.abs())
    }

    fn option(&self, old: Option<f64>, new: Option<f64>) -> bool {
        match (old, new) {
            (Some(a), Some(b)) => self.number(a, b),
            (None, None) => false,
            _ => true,
        }
    }

    fn count(&self, old: Option<u64>, new: Option<u64>) -> bool {
        self.option(old.map(|v| v as f64), new.map(|v| v as f64))
    }

    fn latency(&self, old: &Option<LatencyQuantiles>, new: &Option<LatencyQuantiles>) -> bool {
        match (old, new) {
            (Some(a), Some(b)) => {
                self.number(a.p50, b.p50) || self.number(a.p90, b.p90) || self.number(a.p99, b.p99)
            }
            (None, None) => false,
            _ => true,
        }
    }

    fn breakdown(&self, old: &ClusterBreakdown, new: &ClusterBreakdown) -> bool {
        old.cluster != new.cluster
            || self.number(old.request_rate, new.request_rate)
            || self.number(old.error_rate, new.error_rate)
            || self.latency(&old.ttft_seconds, &new.ttft_seconds)
            || self.option(old.prefix_cache_hit_rate, new.prefix_cache_hit_rate)
    }

    pub fn cluster_changed(&self, old: &SignalsStatus, new: &SignalsStatus) -> bool {
        old.enabled_kinds != new.enabled_kinds
            || old.agent_reporting != new.agent_reporting
            || old.last_flush != new.last_flush
            || old.last_datapoint != new.last_datapoint
            || self.count(old.dropped_events, new.dropped_events)
            || self.cost(&old.cost, &new.cost)
    }

    fn cost(&self, old: &Option<ClusterCostStatus>, new: &Option<ClusterCostStatus>) -> bool {
        match (old, new) {
            (Some(a), Some(b)) => {
                a.window != b.window
                    || a.currency != b.currency
                    || self.number(a.gpu_hours, b.gpu_hours)
                    || self.number(a.cost, b.cost)
                    || self.option(a.cost_per_gpu_hour, b.cost_per_gpu_hour)
            }
            (None, None) => false,
            _ => true,
        }
    }

    pub fn service_changed(&self, old: &ServiceMetrics, new: &ServiceMetrics) -> bool {
        old.window != new.window
            || self.latency(&old.ttft_seconds, &new.ttft_seconds)
            || self.latency(&old.tpot_seconds, &new.tpot_seconds)
            || self.latency(&old.e2e_seconds, &new.e2e_seconds)
            || self.number(old.request_rate, new.request_rate)
            || self.number(old.error_rate, new.error_rate)
            || self.option(old.prefix_cache_hit_rate, new.prefix_cache_hit_rate)
            || self.option(
                old.fleet_prefix_cache_hit_rate,
                new.fleet_prefix_cache_hit_rate,
            )
            || self.option(old.prefix_coverage, new.prefix_coverage)
            || self.option(old.cost_per_token, new.cost_per_token)
            || old.clusters.len() != new.clusters.len()
            || old
                .clusters
                .iter()
                .zip(&new.clusters)
                .any(|(a, b)| self.breakdown(a, b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIVE_PERCENT: Threshold = Threshold { relative: 0.05 };

    #[test]
    fn numbers_change_beyond_the_relative_threshold() {
        assert!(!FIVE_PERCENT.number(1.0, 1.04));
        assert!(FIVE_PERCENT.number(1.0, 1.06));
        assert!(!FIVE_PERCENT.number(0.0, 0.0));
        assert!(FIVE_PERCENT.number(0.0, 0.001));
        assert!(!FIVE_PERCENT.number(100.0, 96.0));
        assert!(FIVE_PERCENT.number(100.0, 94.0));
    }

    #[test]
    fn presence_kinds_and_reporting_always_count() {
        let old = SignalsStatus {
            agent_reporting: Some(true),
            dropped_events: Some(100),
            ..SignalsStatus::default()
        };
        let mut new = old.clone();
        new.dropped_events = Some(104);
        assert!(!FIVE_PERCENT.cluster_changed(&old, &new));
        new.agent_reporting = Some(false);
        assert!(FIVE_PERCENT.cluster_changed(&old, &new));
        let mut new = old.clone();
        new.enabled_kinds = vec![apis::SignalKind::Cost];
        assert!(FIVE_PERCENT.cluster_changed(&old, &new));
    }

    #[test]
    fn updated_at_alone_is_no_change() {
        let old = ServiceMetrics {
            window: "5m".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
            request_rate: 10.0,
            ..ServiceMetrics::default()
        };
        let mut new = old.clone();
        new.updated_at = "2026-01-01T00:10:00Z".into();
        assert!(!FIVE_PERCENT.service_changed(&old, &new));
        new.prefix_coverage = Some(0.0);
        assert!(FIVE_PERCENT.service_changed(&old, &new));
    }
}
