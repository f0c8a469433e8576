//! Cumulative → delta conversion for sums and explicit-bucket histograms.
//!
//! State is keyed by the full series identity (a digest of the resource
//! attributes, the metric name and the data point attributes) and held in
//! sharded locks so concurrent export requests rarely contend. It is bounded
//! (per-shard capacity) and expiring (entries unseen for `ttl` are treated as
//! new and swept when a shard fills).
//!
//! Rules, per series:
//! - first sighting: no delta, the value primes the state, unless the
//!   series' `start_time_unix_nano` is within `fresh_window` of the point's
//!   time: then the series began recently and its whole value is new.
//! - value below the previous one, a bucket count that went down, changed
//!   bucket bounds, or a changed non-zero start time: a reset, and the new
//!   value is the delta (everything since the restart).
//! - a point not newer than the last one seen (a retried export): nothing.

use std::time::Duration;

use parking_lot::Mutex;

use super::attrs::PrehashedMap;
use crate::signal::HistogramDelta;

const SHARDS: usize = 64;

pub(crate) enum Delta<T> {
    /// The increase since the previous point.
    Value(T),
    /// First sighting of an old series: state primed, nothing to report yet.
    Primed,
    /// Not newer than the last point of this series.
    Duplicate,
    /// No room for a new series; nothing reported.
    StateFull,
}

enum Last {
    Sum(f64),
    Histogram {
        bounds_hash: u64,
        counts: Vec<u64>,
        count: u64,
        sum: f64,
    },
    Gauge(f64),
}

struct Entry {
    start_time: u64,
    time: u64,
    seen_secs: u64,
    last: Last,
}

pub(crate) struct CumulativeState {
    shards: Box<[Mutex<PrehashedMap<Entry>>]>,
    per_shard_capacity: usize,
    ttl_secs: u64,
    fresh_window_nanos: u64,
}

/// What a lookup found for a series, before the caller's rule applies.
enum Found<'e> {
    Current(&'e mut Entry),
    New,
}

impl CumulativeState {
    pub(crate) fn new(max_series: usize, ttl: Duration, fresh_window: Duration) -> Self {
        CumulativeState {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(PrehashedMap::default()))
                .collect(),
            per_shard_capacity: max_series.div_ceil(SHARDS).max(1),
            ttl_secs: ttl.as_secs(),
            fresh_window_nanos: u64::try_from(fresh_window.as_nanos()).unwrap_or(u64::MAX),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    fn is_fresh(&self, start_time: u64, time: u64) -> bool {
        start_time != 0 && time >= start_time && time - start_time <= self.fresh_window_nanos
    }

    /// Runs `update` on the series' entry (or `New`), inserting what it returns
    /// for a new series when there is room.
    fn with_entry<T>(
        &self,
        key: u64,
        now_secs: u64,
        update: impl FnOnce(Found<'_>) -> (Delta<T>, Option<Entry>),
    ) -> Delta<T> {
        let mut shard = self.shards[(key % SHARDS as u64) as usize].lock();
        let ttl = self.ttl_secs;
        let live = shard
            .get(&key)
            .is_some_and(|e| now_secs.saturating_sub(e.seen_secs) <= ttl);
        if live {
            let entry = shard.get_mut(&key).expect("checked above");
            entry.seen_secs = now_secs;
            return update(Found::Current(entry)).0;
        }
        shard.remove(&key);
        let (delta, entry) = update(Found::New);
        if let Some(entry) = entry {
            if shard.len() >= self.per_shard_capacity {
                shard.retain(|_, e| now_secs.saturating_sub(e.seen_secs) <= ttl);
            }
            if shard.len() >= self.per_shard_capacity {
                return Delta::StateFull;
            }
            shard.insert(key, entry);
        }
        delta
    }

    /// Delta of a cumulative monotonic sum.
    pub(crate) fn sum(
        &self,
        key: u64,
        start_time: u64,
        time: u64,
        value: f64,
        now_secs: u64,
    ) -> Delta<f64> {
        let fresh = self.is_fresh(start_time, time);
        self.with_entry(key, now_secs, |found| match found {
            Found::New => {
                let entry = Entry {
                    start_time,
                    time,
                    seen_secs: now_secs,
                    last: Last::Sum(value),
                };
                (
                    if fresh {
                        Delta::Value(value)
                    } else {
                        Delta::Primed
                    },
                    Some(entry),
                )
            }
            Found::Current(entry) => {
                let previous = match entry.last {
                    Last::Sum(v) => Some(v),
                    _ => None,
                };
                let restarted = start_time != 0 && start_time != entry.start_time;
                if !restarted && time <= entry.time {
                    return (Delta::Duplicate, None);
                }
                let delta = match previous {
                    Some(prev) if !restarted && value >= prev => value - prev,
                    _ => value,
                };
                entry.start_time = start_time;
                entry.time = time;
                entry.last = Last::Sum(value);
                (Delta::Value(delta), None)
            }
        })
    }

    /// Delta of a cumulative explicit-bucket histogram.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn histogram(
        &self,
        key: u64,
        start_time: u64,
        time: u64,
        bounds: &[f64],
        counts: &[u64],
        count: u64,
        sum: f64,
        now_secs: u64,
    ) -> Delta<HistogramDelta> {
        let fresh = self.is_fresh(start_time, time);
        let bounds_hash = bounds.iter().fold(bounds.len() as u64, |acc, b| {
            super::attrs::mix(acc, b.to_bits())
        });
        let whole = || HistogramDelta {
            bounds: bounds.to_vec(),
            counts: counts.to_vec(),
            sum,
            count,
        };
        let snapshot = || Last::Histogram {
            bounds_hash,
            counts: counts.to_vec(),
            count,
            sum,
        };
        self.with_entry(key, now_secs, |found| match found {
            Found::New => {
                let entry = Entry {
                    start_time,
                    time,
                    seen_secs: now_secs,
                    last: snapshot(),
                };
                (
                    if fresh {
                        Delta::Value(whole())
                    } else {
                        Delta::Primed
                    },
                    Some(entry),
                )
            }
            Found::Current(entry) => {
                let restarted = start_time != 0 && start_time != entry.start_time;
                if !restarted && time <= entry.time {
                    return (Delta::Duplicate, None);
                }
                let delta = match &entry.last {
                    Last::Histogram {
                        bounds_hash: prev_bounds,
                        counts: prev_counts,
                        count: prev_count,
                        sum: prev_sum,
                    } if !restarted
                        && *prev_bounds == bounds_hash
                        && prev_counts.len() == counts.len()
                        && count >= *prev_count
                        && counts
                            .iter()
                            .zip(prev_counts)
                            .all(|(now, prev)| now >= prev) =>
                    {
                        HistogramDelta {
                            bounds: bounds.to_vec(),
                            counts: counts
                                .iter()
                                .zip(prev_counts)
                                .map(|(now, prev)| now - prev)
                                .collect(),
                            sum: (sum - prev_sum).max(0.0),
                            count: count - prev_count,
                        }
                    }
                    _ => whole(),
                };
                entry.start_time = start_time;
                entry.time = time;
                entry.last = snapshot();
                (Delta::Value(delta), None)
            }
        })
    }

    /// For gauges whose change is the event (DCGM's last-XID gauge): the new
    /// value when it differs from the previous reading, `None` when unchanged.
    pub(crate) fn gauge_change(
        &self,
        key: u64,
        time: u64,
        value: f64,
        now_secs: u64,
    ) -> Delta<Option<f64>> {
        self.with_entry(key, now_secs, |found| match found {
            Found::New => {
                let entry = Entry {
                    start_time: 0,
                    time,
                    seen_secs: now_secs,
                    last: Last::Gauge(value),
                };
                (Delta::Primed, Some(entry))
            }
            Found::Current(entry) => {
                if time <= entry.time {
                    return (Delta::Duplicate, None);
                }
                let changed = !matches!(entry.last, Last::Gauge(prev) if prev == value);
                entry.time = time;
                entry.last = Last::Gauge(value);
                (Delta::Value(changed.then_some(value)), None)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn state() -> CumulativeState {
        CumulativeState::new(1024, Duration::from_secs(600), Duration::from_secs(60))
    }

    fn value(d: Delta<f64>) -> Option<f64> {
        match d {
            Delta::Value(v) => Some(v),
            _ => None,
        }
    }

    #[test]
    fn sum_primes_then_deltas_then_detects_resets() {
        let st = state();
        // Started an hour before the first sighting: primed only.
        assert!(matches!(
            st.sum(1, 1000 * S, 4600 * S, 50.0, 0),
            Delta::Primed
        ));
        assert_eq!(value(st.sum(1, 1000 * S, 4615 * S, 58.0, 15)), Some(8.0));
        // Retried export of the same point.
        assert!(matches!(
            st.sum(1, 1000 * S, 4615 * S, 58.0, 16),
            Delta::Duplicate
        ));
        // Value drop with the same start time: a reset; the new value is the delta.
        assert_eq!(value(st.sum(1, 1000 * S, 4630 * S, 3.0, 30)), Some(3.0));
        // Start time changed (process restarted) even though the value grew.
        assert_eq!(value(st.sum(1, 4640 * S, 4645 * S, 70.0, 45)), Some(70.0));
    }

    #[test]
    fn fresh_series_count_in_full() {
        let st = state();
        assert_eq!(value(st.sum(7, 100 * S, 130 * S, 12.0, 0)), Some(12.0));
    }

    #[test]
    fn expired_entries_are_new_again() {
        let st = CumulativeState::new(1024, Duration::from_secs(60), Duration::from_secs(0));
        assert!(matches!(st.sum(3, S, 10 * S, 5.0, 0), Delta::Primed));
        assert!(matches!(st.sum(3, S, 500 * S, 9.0, 500), Delta::Primed));
        assert_eq!(value(st.sum(3, S, 510 * S, 10.0, 510)), Some(1.0));
    }

    #[test]
    fn bounded_and_sweeps_stale() {
        let st = CumulativeState::new(SHARDS, Duration::from_secs(60), Duration::from_secs(0));
        // One entry per shard fills the state.
        for key in 0..SHARDS as u64 {
            assert!(matches!(st.sum(key, S, 10 * S, 1.0, 0), Delta::Primed));
        }
        assert!(matches!(
            st.sum(SHARDS as u64, S, 10 * S, 1.0, 0),
            Delta::StateFull
        ));
        assert_eq!(st.len(), SHARDS);
        // Later, the old entries are stale and make room.
        assert!(matches!(
            st.sum(SHARDS as u64, S, 10 * S, 1.0, 120),
            Delta::Primed
        ));
        assert_eq!(st.len(), SHARDS);
    }

    #[test]
    fn histogram_delta_and_reset() {
        let st = state();
        let bounds = [0.1, 1.0];
        assert!(matches!(
            st.histogram(9, S, 1000 * S, &bounds, &[1, 2, 0], 3, 1.5, 0),
            Delta::Primed
        ));
        let Delta::Value(d) = st.histogram(9, S, 1015 * S, &bounds, &[3, 2, 1], 6, 4.0, 15) else {
            panic!("expected a delta")
        };
        assert_eq!(d.counts, vec![2, 0, 1]);
        assert_eq!(d.count, 3);
        assert!((d.sum - 2.5).abs() < 1e-9);
        let Delta::Value(d) = st.histogram(9, S, 1030 * S, &bounds, &[1, 0, 0], 1, 0.05, 30) else {
            panic!("expected a reset delta")
        };
        assert_eq!(d.counts, vec![1, 0, 0]);
        assert_eq!(d.count, 1);
    }
}
