//! Per-cluster activity the status writer reports (last flush, newest
//! datapoint per kind, dropped items), observed at the one place every
//! stored sketch passes: a [`SketchStore`] decorator in front of the real
//! store. What normalize refused or dropped never reaches the store; the
//! pipeline reports it as the [`LossObserver`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::shared_activity::SharedActivity;
use crate::clock::Clock;
use crate::normalize::ClusterLosses;
use crate::pipeline::LossObserver;
use crate::signal::SignalKind;
use crate::sketch::WindowedSketch;
use crate::store::{
    MaintenanceReport, ReplicaLink, SketchStore, StoreError, StoreHealth, StoreQuery,
};

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

/// One cluster's record plus what of it the shared layer has not taken yet.
#[derive(Debug, Default)]
struct Tracked {
    activity: ClusterActivity,
    /// Part of `activity.dropped` already handed to the shared layer.
    taken_dropped: u64,
    /// Changed since the shared layer last took it.
    dirty: bool,
}

/// A cluster status is asked for, with the `droppedEvents` counts on its XR
/// that a count continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedOnXr {
    pub cluster: String,
    /// When this process first saw the XR: what its own count continues.
    pub at_first_sight: u64,
    /// Now: what a new shared record continues (it already includes every
    /// replica's counts written so far).
    pub now: u64,
}

impl ClusterActivity {
    /// This count on top of `baseline` (an earlier count this one continues).
    pub fn with_baseline(mut self, baseline: u64) -> Self {
        self.dropped += baseline;
        self
    }
}

/// Shared record of cluster activity. Clones share one record.
///
/// It is the recorder on the hot path (a lock and a map update, no I/O).
/// With the Redis store every replica also hands its changes to
/// [`SharedActivity`] (`shared.rs`), which merges them in Redis, so every
/// replica reports the same numbers.
#[derive(Clone)]
pub struct Activity {
    clusters: Arc<Mutex<HashMap<String, Tracked>>>,
    clock: Clock,
    shared: Option<Arc<SharedActivity>>,
}

impl Activity {
    pub fn new(clock: Clock) -> Self {
        Activity {
            clusters: Arc::default(),
            clock,
            shared: None,
        }
    }

    /// This record, also merged with the other replicas' through `shared`.
    pub fn shared_through(mut self, shared: SharedActivity) -> Self {
        self.shared = Some(Arc::new(shared));
        self
    }

    pub fn shared(&self) -> Option<&Arc<SharedActivity>> {
        self.shared.as_ref()
    }

    /// What this process recorded for `name` (not merged with other replicas).
    pub fn cluster(&self, name: &str) -> Option<ClusterActivity> {
        self.clusters.lock().get(name).map(|t| t.activity.clone())
    }

    /// What status reports for `clusters`, `dropped` including the count on
    /// the XR: merged across replicas when shared, else this process's record
    /// on top of the XR's count when this process first saw it.
    pub async fn views(&self, clusters: &[DroppedOnXr]) -> HashMap<String, ClusterActivity> {
        match &self.shared {
            Some(shared) => shared.views(self, clusters).await,
            None => clusters
                .iter()
                .map(|c| (c.cluster.clone(), self.local_view(c)))
                .collect(),
        }
    }

    /// This process's record of `on_xr.cluster` on top of the XR's count when
    /// this process first saw it.
    pub fn local_view(&self, on_xr: &DroppedOnXr) -> ClusterActivity {
        self.cluster(&on_xr.cluster)
            .unwrap_or_default()
            .with_baseline(on_xr.at_first_sight)
    }

    /// Every cluster changed since the last call: its times (maxima, so
    /// handing them over again is harmless) and, as `dropped`, only the items
    /// counted since the last call. Whoever takes them owns delivering them.
    pub fn take_changes(&self) -> Vec<(String, ClusterActivity)> {
        let mut clusters = self.clusters.lock();
        clusters
            .iter_mut()
            .filter(|(_, t)| t.dirty)
            .map(|(name, t)| {
                t.dirty = false;
                let mut change = t.activity.clone();
                change.dropped = t.activity.dropped - t.taken_dropped;
                t.taken_dropped = t.activity.dropped;
                (name.clone(), change)
            })
            .collect()
    }

    fn with_cluster(
        clusters: &mut HashMap<String, Tracked>,
        name: &str,
        update: impl FnOnce(&mut ClusterActivity),
    ) {
        let tracked = if let Some(tracked) = clusters.get_mut(name) {
            tracked
        } else if clusters.len() < MAX_TRACKED_CLUSTERS {
            clusters.entry(name.to_string()).or_default()
        } else {
            return;
        };
        update(&mut tracked.activity);
        tracked.dirty = true;
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

    fn describe(&self) -> String {
        self.inner.describe()
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.inner.close().await
    }

    /// The store's metrics, then the shared activity's (with Redis).
    fn prometheus_text(&self) -> String {
        let mut text = self.inner.prometheus_text();
        if let Some(shared) = &self.activity.shared {
            text.push_str(&shared.prometheus_text());
        }
        text
    }

    fn replica_link(&self) -> Option<ReplicaLink> {
        self.inner.replica_link()
    }
}
