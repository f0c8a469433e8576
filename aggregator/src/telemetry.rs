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
