//! The embedded store: every sketch in this process's memory.
//!
//! Layout: tenants hash onto a fixed number of shards, each a `BTreeMap` keyed by
//! [`SeriesKey`] (ordered tenant-first, so one tenant's series are one range).
//! A series keeps two sorted vectors of windows: minute windows for recent data
//! and hour windows for older data. [`MemoryStore::run_maintenance`] folds minute
//! windows older than `rollup_after` into their hour and drops whatever ended
//! before the retention; every minute lives in exactly one place, so queries never
//! count anything twice.

use std::collections::BTreeMap;

use async_trait::async_trait;
use parking_lot::RwLock;

use crate::signal::SeriesKey;
use crate::sketch::{HOUR_SECS, MINUTE_SECS, Resolution, SeriesSketch, Window, WindowedSketch};
use crate::store::{MaintenanceReport, SketchStore, StoreError, StoreHealth, StoreQuery};

/// Shards bound lock contention between concurrent exports of different tenants.
const SHARDS: usize = 16;
/// Fixed so a tenant maps to the same shard in every process (handy in dumps).
const SHARD_SEED: u64 = 0x6d6f_6465_6c70_6c61;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryStoreConfig {
    /// Windows that ended longer ago than this are deleted.
    pub retention_secs: u64,
    /// Minute windows that started longer ago than this are folded into their hour.
    pub rollup_after_secs: u64,
}

impl Default for MemoryStoreConfig {
    fn default() -> Self {
        MemoryStoreConfig {
            retention_secs: 30 * 86_400,
            rollup_after_secs: 2 * HOUR_SECS,
        }
    }
}

/// One series' windows, each vector sorted by window start. Vectors rather than
/// maps: a series rarely holds more than ~120 minutes plus its hours, merges
/// nearly always hit the newest window, and a vector carries no per-node overhead.
#[derive(Default)]
struct SeriesWindows {
    minutes: Vec<(u64, SeriesSketch)>,
    hours: Vec<(u64, SeriesSketch)>,
}

impl SeriesWindows {
    fn windows_mut(&mut self, resolution: Resolution) -> &mut Vec<(u64, SeriesSketch)> {
        match resolution {
            Resolution::Minute => &mut self.minutes,
            Resolution::Hour => &mut self.hours,
        }
    }

    /// Merges `incoming` into the window at `start`. On a merge error the stored
    /// window is left exactly as it was.
    fn merge_into(
        &mut self,
        resolution: Resolution,
        start: u64,
        incoming: &SeriesSketch,
    ) -> Result<(), StoreError> {
        let windows = self.windows_mut(resolution);
        match windows.binary_search_by_key(&start, |(s, _)| *s) {
            Ok(i) => {
                let mut merged = windows[i].1.clone();
                merged
                    .merge(incoming)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                windows[i].1 = merged;
            }
            Err(i) => windows.insert(i, (start, incoming.clone())),
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.minutes.is_empty() && self.hours.is_empty()
    }
}

#[derive(Default)]
struct Shard {
    series: BTreeMap<SeriesKey, SeriesWindows>,
}

pub struct MemoryStore {
    config: MemoryStoreConfig,
    shards: Vec<RwLock<Shard>>,
}

impl MemoryStore {
    pub fn new(config: MemoryStoreConfig) -> Self {
        MemoryStore {
            config,
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect(),
        }
    }

    pub fn config(&self) -> MemoryStoreConfig {
        self.config
    }

    fn shard_index(tenant: &str) -> usize {
        (xxhash_rust::xxh3::xxh3_64_with_seed(tenant.as_bytes(), SHARD_SEED) % SHARDS as u64)
            as usize
    }

    /// Number of series with at least one window.
    pub fn series_count(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.read().series.len() as u64)
            .sum()
    }

    /// Folds old minutes into hours and deletes expired windows, as of `now`.
    pub fn maintain(&self, now_unix_secs: u64) -> MaintenanceReport {
        let rollup_before = now_unix_secs.saturating_sub(self.config.rollup_after_secs);
        let expire_before = now_unix_secs.saturating_sub(self.config.retention_secs);
        let mut report = MaintenanceReport::default();
        for shard in &self.shards {
            let mut shard = shard.write();
            shard.series.retain(|_, windows| {
                roll_up(windows, rollup_before, &mut report);
                expire(windows, expire_before, &mut report);
                !windows.is_empty()
            });
        }
        report
    }

    fn query_sync(&self, query: &StoreQuery) -> Result<Vec<(SeriesKey, SeriesSketch)>, StoreError> {
        let mut out = Vec::new();
        let mut collect = |key: &SeriesKey, windows: &SeriesWindows| -> Result<(), StoreError> {
            if key.kind != query.kind
                || query.cluster.as_ref().is_some_and(|c| *c != key.cluster)
                || query.model.as_ref().is_some_and(|m| *m != key.model)
            {
                return Ok(());
            }
            if let Some(sketch) = merge_in_range(windows, query)? {
                out.push((key.clone(), sketch));
            }
            Ok(())
        };
        match &query.tenant {
            Some(tenant) => {
                let shard = self.shards[Self::shard_index(tenant)].read();
                for (key, windows) in shard.series.range(tenant_start(tenant)..) {
                    if key.tenant != *tenant {
                        break;
                    }
                    collect(key, windows)?;
                }
            }
            None => {
                for shard in &self.shards {
                    let shard = shard.read();
                    for (key, windows) in &shard.series {
                        collect(key, windows)?;
                    }
                }
            }
        }
        Ok(out)
    }

    fn merge_sync(&self, sketches: Vec<WindowedSketch>) -> Result<(), StoreError> {
        let mut by_shard: Vec<Vec<WindowedSketch>> = (0..SHARDS).map(|_| Vec::new()).collect();
        for sketch in sketches {
            by_shard[Self::shard_index(&sketch.key.tenant)].push(sketch);
        }
        let mut first_error = None;
        for (index, batch) in by_shard.into_iter().enumerate() {
            if batch.is_empty() {
                continue;
            }
            let mut shard = self.shards[index].write();
            for WindowedSketch {
                key,
                window,
                sketch,
            } in batch
            {
                let start = align(window);
                let windows = shard.series.entry(key).or_default();
                if let Err(e) = windows.merge_into(window.resolution, start, &sketch) {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Start aligned to the resolution, so a sender's unaligned start cannot create
/// overlapping windows.
fn align(window: Window) -> u64 {
    Window::containing(window.resolution, window.start_unix_secs).start_unix_secs
}

/// The smallest key of `tenant` in `SeriesKey` order.
fn tenant_start(tenant: &str) -> SeriesKey {
    SeriesKey {
        tenant: tenant.to_string(),
        cluster: String::new(),
        model: String::new(),
        kind: crate::signal::SignalKind::ALL[0],
    }
}

fn overlaps(start: u64, len: u64, query: &StoreQuery) -> bool {
    start < query.to_unix_secs && start + len > query.from_unix_secs
}

fn merge_in_range(
    windows: &SeriesWindows,
    query: &StoreQuery,
) -> Result<Option<SeriesSketch>, StoreError> {
    let mut merged: Option<SeriesSketch> = None;
    let in_range = windows
        .hours
        .iter()
        .filter(|(start, _)| overlaps(*start, HOUR_SECS, query))
        .chain(
            windows
                .minutes
                .iter()
                .filter(|(start, _)| overlaps(*start, MINUTE_SECS, query)),
        );
    for (_, sketch) in in_range {
        match &mut merged {
            None => merged = Some(sketch.clone()),
            Some(acc) => acc
                .merge(sketch)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        }
    }
    Ok(merged)
}

fn roll_up(windows: &mut SeriesWindows, rollup_before: u64, report: &mut MaintenanceReport) {
    let due = windows
        .minutes
        .partition_point(|(start, _)| *start + MINUTE_SECS <= rollup_before);
    for (start, sketch) in windows.minutes.drain(..due).collect::<Vec<_>>() {
        let hour = start - start % HOUR_SECS;
        match windows.merge_into(Resolution::Hour, hour, &sketch) {
            Ok(()) => report.rolled_up += 1,
            Err(e) => {
                // Keep the minute rather than lose it; the error repeats on every
                // pass, so say which window it is.
                tracing::error!(error = %e, minute = start, "cannot roll minute window into its hour");
                let at = windows.minutes.partition_point(|(s, _)| *s < start);
                windows.minutes.insert(at, (start, sketch));
                report.errors += 1;
            }
        }
    }
}

fn expire(windows: &mut SeriesWindows, expire_before: u64, report: &mut MaintenanceReport) {
    for (windows, len) in [
        (&mut windows.minutes, MINUTE_SECS),
        (&mut windows.hours, HOUR_SECS),
    ] {
        let due = windows.partition_point(|(start, _)| *start + len <= expire_before);
        windows.drain(..due);
        report.expired += due as u64;
    }
}

#[async_trait]
impl SketchStore for MemoryStore {
    async fn merge(&self, sketches: Vec<WindowedSketch>) -> Result<(), StoreError> {
        self.merge_sync(sketches)
    }

    async fn query(
        &self,
        query: &StoreQuery,
    ) -> Result<Vec<(SeriesKey, SeriesSketch)>, StoreError> {
        self.query_sync(query)
    }

    async fn health(&self) -> StoreHealth {
        StoreHealth {
            ready: true,
            detail: "embedded in-memory store".to_string(),
            series: Some(self.series_count()),
        }
    }

    async fn run_maintenance(&self, now_unix_secs: u64) -> Result<MaintenanceReport, StoreError> {
        Ok(self.maintain(now_unix_secs))
    }

    fn retention_secs(&self) -> u64 {
        self.config.retention_secs
    }

    fn describe(&self) -> String {
        "embedded in-memory store".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::{Field, FieldKey, Point, SignalKind, Value};

    const NOW: u64 = 1_767_229_200; // 2026-01-01T01:00:00Z

    fn key(tenant: &str, cluster: &str) -> SeriesKey {
        SeriesKey {
            tenant: tenant.into(),
            cluster: cluster.into(),
            model: "m".into(),
            kind: SignalKind::RequestLifecycle,
        }
    }

    fn requests(key: SeriesKey, at: u64, n: f64) -> WindowedSketch {
        let mut sketch = SeriesSketch::default();
        sketch.record(&Point {
            field: FieldKey::plain(Field::Requests),
            time_unix_nano: at * 1_000_000_000,
            value: Value::Counter(n),
        });
        WindowedSketch {
            key,
            window: Window::minute_containing(at),
            sketch,
        }
    }

    fn query(tenant: Option<&str>, from: u64, to: u64) -> StoreQuery {
        StoreQuery {
            tenant: tenant.map(str::to_string),
            kind: SignalKind::RequestLifecycle,
            cluster: None,
            model: None,
            from_unix_secs: from,
            to_unix_secs: to,
        }
    }

    fn total(store: &MemoryStore, q: &StoreQuery) -> f64 {
        store
            .query_sync(q)
            .unwrap()
            .iter()
            .map(|(_, s)| s.counter_sum(Field::Requests).unwrap_or(0.0))
            .sum()
    }

    fn store(retention_secs: u64) -> MemoryStore {
        MemoryStore::new(MemoryStoreConfig {
            retention_secs,
            rollup_after_secs: 2 * HOUR_SECS,
        })
    }

    #[test]
    fn merges_into_the_same_minute_and_reads_each_minute_once() {
        let store = store(30 * 86_400);
        store
            .merge_sync(vec![
                requests(key("a", "c"), NOW - 50, 1.0),
                requests(key("a", "c"), NOW - 45, 2.0),
                requests(key("a", "c"), NOW - 200, 4.0),
            ])
            .unwrap();
        assert_eq!(store.series_count(), 1);
        let shard = store.shards[MemoryStore::shard_index("a")].read();
        let windows = shard.series.get(&key("a", "c")).unwrap();
        assert_eq!(windows.minutes.len(), 2, "two distinct minutes");
        drop(shard);
        assert_eq!(total(&store, &query(Some("a"), NOW - 60, NOW)), 3.0);
        assert_eq!(total(&store, &query(Some("a"), NOW - 300, NOW)), 7.0);
        assert_eq!(total(&store, &query(Some("a"), NOW - 300, NOW - 60)), 4.0);
    }

    #[test]
    fn rolls_old_minutes_into_hours_without_changing_totals() {
        let store = store(30 * 86_400);
        let old_hour = NOW - 5 * HOUR_SECS; // 20:00 the day before
        let batch: Vec<_> = (0..60)
            .map(|m| requests(key("a", "c"), old_hour + m * 60, 1.0))
            .chain([requests(key("a", "c"), NOW - 120, 10.0)])
            .collect();
        store.merge_sync(batch).unwrap();
        let whole_day = query(Some("a"), NOW - 86_400, NOW);
        assert_eq!(total(&store, &whole_day), 70.0);

        let report = store.maintain(NOW);
        assert_eq!(report.rolled_up, 60);
        assert_eq!(report.expired, 0);
        let shard = store.shards[MemoryStore::shard_index("a")].read();
        let windows = shard.series.get(&key("a", "c")).unwrap();
        assert_eq!(windows.hours.len(), 1);
        assert_eq!(windows.hours[0].0, old_hour);
        assert_eq!(windows.minutes.len(), 1, "the recent minute stays a minute");
        drop(shard);
        assert_eq!(total(&store, &whole_day), 70.0);
        // An hour overlapping the range counts whole.
        assert_eq!(
            total(
                &store,
                &query(Some("a"), old_hour + 1_800, old_hour + 1_860)
            ),
            60.0
        );
        // A second pass changes nothing.
        assert_eq!(store.maintain(NOW).rolled_up, 0);
        assert_eq!(total(&store, &whole_day), 70.0);
    }

    #[test]
    fn expires_windows_past_the_retention_and_forgets_empty_series() {
        let store = store(6 * HOUR_SECS);
        store
            .merge_sync(vec![
                requests(key("a", "old"), NOW - 7 * HOUR_SECS, 1.0),
                requests(key("a", "kept"), NOW - 3 * HOUR_SECS, 2.0),
            ])
            .unwrap();
        let report = store.maintain(NOW);
        assert_eq!(report.rolled_up, 2);
        assert_eq!(report.expired, 1);
        assert_eq!(store.series_count(), 1);
        assert_eq!(total(&store, &query(Some("a"), 0, NOW)), 2.0);
    }

    #[test]
    fn tenant_queries_read_only_that_tenant_and_none_reads_all() {
        let store = store(30 * 86_400);
        let tenants = ["a", "a-b", "ab", "b", ""];
        store
            .merge_sync(
                tenants
                    .iter()
                    .enumerate()
                    .map(|(i, t)| requests(key(t, "c"), NOW - 30, 10f64.powi(i as i32)))
                    .collect(),
            )
            .unwrap();
        for (i, t) in tenants.iter().enumerate() {
            let q = query(Some(t), NOW - 60, NOW);
            assert_eq!(total(&store, &q), 10f64.powi(i as i32), "tenant {t:?}");
        }
        assert_eq!(total(&store, &query(None, NOW - 60, NOW)), 11_111.0);
    }

    #[test]
    fn filters_by_kind_cluster_and_model() {
        let store = store(30 * 86_400);
        let mut other_kind = key("a", "c1");
        other_kind.kind = SignalKind::Cost;
        store
            .merge_sync(vec![
                requests(key("a", "c1"), NOW - 30, 1.0),
                requests(key("a", "c2"), NOW - 30, 2.0),
                requests(other_kind, NOW - 30, 4.0),
            ])
            .unwrap();
        let mut q = query(Some("a"), NOW - 60, NOW);
        assert_eq!(total(&store, &q), 3.0);
        q.cluster = Some("c2".into());
        assert_eq!(total(&store, &q), 2.0);
        q.model = Some("other".into());
        assert_eq!(total(&store, &q), 0.0);
    }
}
