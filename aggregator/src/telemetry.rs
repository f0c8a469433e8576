//! The aggregator's own health counters, rendered on `/metrics`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// Counters keyed by (signal, reason). Reasons are `&'static str` so nothing
/// from a request can become a label.
#[derive(Default)]
pub struct SelfMetrics {
    ingested: Mutex<BTreeMap<&'static str, u64>>,
    rejected: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    dropped: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    pub flushes: AtomicU64,
    pub flush_seconds_sum: Mutex<f64>,
    known_xrs: Mutex<Option<KnownXrs>>,
    /// Tenant → metric name → accepted points that map to no signal.
    unmapped: Mutex<BTreeMap<String, BTreeMap<String, u64>>>,
}

/// Metric names per tenant on `/metrics`, `other` included: further names
/// count under `other` (as do all names of tenants past [`MAX_UNMAPPED_TENANTS`]).
pub const MAX_UNMAPPED_NAMES_PER_TENANT: usize = 20;
/// Tenants whose unmapped points are kept apart, `other` included.
pub const MAX_UNMAPPED_TENANTS: usize = 1_000;
/// How many unmapped metric names of a tenant are logged (at debug) when first seen.
pub const LOGGED_UNMAPPED_NAMES: usize = 5;

/// What the fleet directory holds: the XRs the watch has delivered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KnownXrs {
    pub synced: bool,
    pub inference_clusters: usize,
    pub model_services: usize,
}

impl SelfMetrics {
    /// Items (spans, datapoints) accepted, by OTLP signal (`traces`, `metrics`).
    pub fn ingested(&self, signal: &'static str, n: u64) {
        if n > 0 {
            *self.ingested.lock().entry(signal).or_default() += n;
        }
    }

    /// Items refused back to the sender (they know and may retry).
    pub fn rejected(&self, signal: &'static str, reason: &'static str, n: u64) {
        if n > 0 {
            *self.rejected.lock().entry((signal, reason)).or_default() += n;
        }
    }

    /// Items accepted on the wire but not kept (allowlist, cardinality limit...).
    pub fn dropped(&self, signal: &'static str, reason: &'static str, n: u64) {
        if n > 0 {
            *self.dropped.lock().entry((signal, reason)).or_default() += n;
        }
    }

    pub fn record_flush(&self, seconds: f64) {
        self.flushes.fetch_add(1, Ordering::Relaxed);
        *self.flush_seconds_sum.lock() += seconds;
    }

    /// Set by the composition root whenever the directory changes; `None`
    /// (never set) means the aggregator runs without Kubernetes.
    pub fn set_known_xrs(&self, known: KnownXrs) {
        *self.known_xrs.lock() = Some(known);
    }

    pub fn known_xrs(&self) -> Option<KnownXrs> {
        *self.known_xrs.lock()
    }

    /// Accepted points that map to no signal, as `(tenant, metric, points)`
    /// (names already label-safe). Bounded: at most
    /// [`MAX_UNMAPPED_NAMES_PER_TENANT`] names per tenant and
    /// [`MAX_UNMAPPED_TENANTS`] tenants, the rest under `other`. The first
    /// few names of each tenant are logged at debug when first seen.
    pub fn unmapped(&self, points: &[(String, String, u64)]) {
        // normalize's `OTHER_METRIC` (this layer is below it).
        const OTHER: &str = "other";
        if points.is_empty() {
            return;
        }
        let mut all = self.unmapped.lock();
        for (tenant, metric, n) in points {
            let tenant = if all.contains_key(tenant) || all.len() + 1 < MAX_UNMAPPED_TENANTS {
                tenant.as_str()
            } else {
                OTHER
            };
            let names = all.entry(tenant.to_string()).or_default();
            // One slot stays free for `other`.
            let metric =
                if names.contains_key(metric) || names.len() + 1 < MAX_UNMAPPED_NAMES_PER_TENANT {
                    metric.as_str()
                } else {
                    OTHER
                };
            if !names.contains_key(metric) && names.len() < LOGGED_UNMAPPED_NAMES {
                tracing::debug!(
                    tenant,
                    metric,
                    "accepted data points map to no signal (unknown metric name, or another instrument than its source emits); counted in modelplane_aggregator_unmapped_points_total"
                );
            }
            *names.entry(metric.to_string()).or_default() += n;
        }
    }

    /// Unmapped points of one tenant, by metric name.
    pub fn unmapped_of(&self, tenant: &str) -> BTreeMap<String, u64> {
        self.unmapped
            .lock()
            .get(tenant)
            .cloned()
            .unwrap_or_default()
    }

    pub fn unmapped_snapshot(&self) -> BTreeMap<String, BTreeMap<String, u64>> {
        self.unmapped.lock().clone()
    }

    pub fn ingested_snapshot(&self) -> BTreeMap<&'static str, u64> {
        self.ingested.lock().clone()
    }

    pub fn rejected_snapshot(&self) -> BTreeMap<(&'static str, &'static str), u64> {
        self.rejected.lock().clone()
    }

    pub fn dropped_snapshot(&self) -> BTreeMap<(&'static str, &'static str), u64> {
        self.dropped.lock().clone()
    }
}
