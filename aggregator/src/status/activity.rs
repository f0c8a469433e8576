//! Per-cluster activity the status writer reports (last flush, newest
//! datapoint per kind, dropped items), observed at the one place every
//! stored sketch passes: a [`SketchStore`] decorator in front of the real
//! store. What normalize refused or dropped never reaches the store; the
//! pipeline reports it as the [`LossObserver`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::normalize::ClusterLosses;
use crate::pipeline::LossObserver;
use crate::serve::Clock;
use crate::signal::SignalKind;
use crate::sketch::WindowedSketch;
use crate::store::{MaintenanceReport, SketchStore, StoreError, StoreHealth, StoreQuery};

/// Clusters tracked at most; beyond it new names are ignored (cluster names
/// come from senders, so the map must not grow without bound).
pub const MAX_TRACKED_CLUSTERS: usize = 4_096;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterActivity {
    /// Unix seconds the store last acknowledged data from this cluster.
    pub last_flush: Option<u64>,
    /// Items of this cluster refused or dropped since this process started:
    /// rejected by normalize, dropped by normalize losing data (series
    /// budget, cumulative state full, unsupported metric type), invalid for
    /// their sketch, or lost to a merge conflict. Deduplication (a retried
    /// point, a lower vantage, a superseded name) is not a loss.
    pub dropped: u64,
    /// Newest datapoint per kind, to the minute (the end of its window,
    /// never later than the flush that stored it).
    pub last_datapoint: BTreeMap<SignalKind, u64>,
}

/// Shared record of cluster activity. Clones share one record.
#[derive(Clone)]
pub struct Activity {
    clusters: Arc<Mutex<HashMap<String, ClusterActivity>>>,
    clock: Clock,
}

impl Activity {
    pub fn new(clock: Clock) -> Self {
        Activity {
            clusters: Arc::default(),
            clock,
        }
    }

    pub fn cluster(&self, name: &str) -> Option<ClusterActivity> {
        self.clusters.lock().get(name).cloned()
    }

    fn with_cluster(
        clusters: &mut HashMap<String, ClusterActivity>,
        name: &str,
        update: impl FnOnce(&mut ClusterActivity),
    ) {
        if let Some(activity) = clusters.get_mut(name) {
            update(activity);
        } else if clusters.len() < MAX_TRACKED_CLUSTERS {
            update(clusters.entry(name.to_string()).or_default());
        }
    }

    /// Records sketches the store acknowledged.
    pub fn stored(&self, summary: &[StoredSummary]) {
        let now = (self.clock)();
        let mut clusters = self.clusters.lock();
        for s in summary {
            Self::with_cluster(&mut clusters, &s.cluster, |a| {
                a.last_flush = Some(now);
                a.dropped += s.rejected_points;
                let newest = s.window_end.min(now);
                let slot = a.last_datapoint.entry(s.kind).or_default();
                *slot = (*slot).max(newest);
            });
        }
    }

    /// Records sketches the store could not keep.
    pub fn lost(&self, summary: &[StoredSummary]) {
        let mut clusters = self.clusters.lock();
        for s in summary {
            Self::with_cluster(&mut clusters, &s.cluster, |a| {
                a.dropped += 1 + s.rejected_points
            });
        }
    }
}

impl LossObserver for Activity {
    fn lost_in_normalize(&self, losses: &ClusterLosses) {
        let mut clusters = self.clusters.lock();
        for (cluster, items) in losses.iter() {
            Self::with_cluster(&mut clusters, cluster, |a| a.dropped += items);
        }
    }
}

/// What activity needs from one sketch (the sketch itself moves into the store).
#[derive(Debug, Clone)]
pub struct StoredSummary {
    pub cluster: String,
    pub kind: SignalKind,
    pub window_end: u64,
    pub rejected_points: u64,
}

/// A [`SketchStore`] that records cluster activity around another one.
pub struct ActivityStore {
    inner: Arc<dyn SketchStore>,
    activity: Activity,
}

/// Wraps `store` so every acknowledged merge updates `activity`.
pub fn track_activity(store: Arc<dyn SketchStore>, activity: &Activity) -> Arc<dyn SketchStore> {
    Arc::new(ActivityStore {
        inner: store,
        activity: activity.clone(),
    })
}

#[async_trait]
impl SketchStore for ActivityStore {
    async fn merge(&self, sketches: Vec<WindowedSketch>) -> Result<(), StoreError> {
        let summary: Vec<StoredSummary> = sketches
            .iter()
            .map(|s| StoredSummary {
                cluster: s.key.cluster.clone(),
                kind: s.key.kind,
                window_end: s.window.end_unix_secs(),
                rejected_points: s.sketch.rejected_points(),
            })
            .collect();
        let result = self.inner.merge(sketches).await;
        match &result {
            Ok(()) => self.activity.stored(&summary),
            Err(StoreError::Corrupt(_)) => self.activity.lost(&summary),
            // Refused, so the sender retries: nothing was dropped.
            Err(StoreError::Unavailable(_)) => {}
        }
        result
    }

    async fn query(
        &self,
        query: &StoreQuery,
    ) -> Result<Vec<(crate::signal::SeriesKey, crate::sketch::SeriesSketch)>, StoreError> {
        self.inner.query(query).await
    }

    async fn health(&self) -> StoreHealth {
        self.inner.health().await
    }

    async fn run_maintenance(&self, now_unix_secs: u64) -> Result<MaintenanceReport, StoreError> {
        self.inner.run_maintenance(now_unix_secs).await
    }

    fn retention_secs(&self) -> u64 {
        self.inner.retention_secs()
    }
}
