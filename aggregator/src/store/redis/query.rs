//! Reads: which window keys answer a time range, and merging their frames.

use std::fmt::Write;

use redis::AsyncCommands;

use crate::signal::SeriesKey;
use crate::sketch::{HOUR_SECS, MINUTE_SECS, Resolution, SeriesSketch};
use crate::store::{StoreError, StoreQuery};

use super::conn::RedisConn;
use super::{RedisStoreConfig, frames, keys};

/// Keys per MGET: small enough not to stall Redis for other clients (a
/// 1,024-key MGET of minute windows takes it ~0.7 ms) and to keep the last
/// chunk's merge, which nothing overlaps, short; large enough to amortise
/// per-command costs. All chunks are pipelined, so their number costs no
/// round trips.
const MGET_CHUNK: usize = 1_024;

/// The windows that answer `[from, to)` as of `now`, each minute counted once:
/// an hour is read whole (its hour key holds every minute of it) when the
/// range covers all of it, or when any of its minutes in range is older than
/// the roll-up age, as the embedded store folds such minutes into their hour;
/// otherwise its minutes in range are read.
pub fn plan_windows(from: u64, to: u64, now: u64, rollup_after: u64) -> Vec<(Resolution, u64)> {
    let rolled_before = now.saturating_sub(rollup_after);
    let mut plan = Vec::new();
    if from >= to {
        return plan;
    }
    let mut hour = from - from % HOUR_SECS;
    while hour < to {
        let first_minute = hour.max(from - from % MINUTE_SECS);
        let whole_hour = hour >= from && hour + HOUR_SECS <= to;
        if whole_hour || first_minute + MINUTE_SECS <= rolled_before {
            plan.push((Resolution::Hour, hour));
        } else {
            let end = (hour + HOUR_SECS).min(to);
            plan.extend(
                (first_minute..end)
                    .step_by(MINUTE_SECS as usize)
                    .map(|m| (Resolution::Minute, m)),
            );
        }
        hour += HOUR_SECS;
    }
    plan
}

/// `[from, to)` narrowed to the windows that can hold data at `now`: an hour
/// key lives until the retention has passed since its end (so nothing starts
/// before `now - retention - 1h`), and nothing is read further ahead of the
/// clock than the retention reaches back. A range from the epoch would
/// otherwise plan one key per hour since 1970 (~500k), every caller's cost
/// rather than the HTTP API's alone.
pub fn existing_range(from: u64, to: u64, now: u64, retention: u64) -> (u64, u64) {
    let oldest = now.saturating_sub(retention.saturating_add(HOUR_SECS));
    let newest = now.saturating_add(retention);
    (from.max(oldest), to.min(newest))
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis query failed: {e}"))
}

pub async fn run(
    config: &RedisStoreConfig,
    mut conn: RedisConn,
    query: &StoreQuery,
    now: u64,
) -> Result<Vec<(SeriesKey, SeriesSketch)>, StoreError> {
    let (from, to) = existing_range(
        query.from_unix_secs,
        query.to_unix_secs,
        now,
        config.retention_secs,
    );
    let plan = plan_windows(from, to, now, config.rollup_after_secs);
    if plan.is_empty() {
        return Ok(Vec::new());
    }
    let plan: std::sync::Arc<[(Resolution, u64)]> = plan.into();
    let tenants: Vec<String> = match &query.tenant {
        Some(tenant) => vec![tenant.clone()],
        None => {
            let mut all: Vec<String> = conn
                .smembers(keys::TENANTS_KEY)
                .await
                .map_err(unavailable)?;
            all.sort();
            all
        }
    };
    let mut out = Vec::new();
    for tenant in tenants {
        let members: Vec<String> = conn
            .smembers(keys::series_index_key(&tenant, query.kind))
            .await
            .map_err(unavailable)?;
        let mut series: Vec<SeriesKey> = members
            .iter()
            .filter_map(|m| keys::parse_series_member(&tenant, query.kind, m))
            .filter(|s| query.cluster.as_ref().is_none_or(|c| *c == s.cluster))
            .filter(|s| query.model.as_ref().is_none_or(|m| *m == s.model))
            .collect();
        series.sort();
        // Every chunk's MGET is sent at once (pipelined on the connection), so
        // Redis builds the next reply while earlier ones are parsed and
        // merged on the other cores. The JoinSet aborts what is still running
        // when the query returns early (an error) or is dropped (the client
        // went away).
        let per_chunk = (MGET_CHUNK / plan.len()).max(1);
        let mut chunks = tokio::task::JoinSet::new();
        let mut series = series.into_iter().peekable();
        for index in 0.. {
            if series.peek().is_none() {
                break;
            }
            let chunk: Vec<SeriesKey> = series.by_ref().take(per_chunk).collect();
            let (mut conn, plan) = (conn.clone(), plan.clone());
            chunks.spawn(async move {
                // Built here, on the workers: the first MGET leaves before
                // the last one's keys are built.
                let values: Vec<Option<Vec<u8>>> = mget_windows(&chunk, &plan)
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                let windows = plan.len();
                let merged =
                    tokio::task::spawn_blocking(move || merge_series(chunk, &values, windows))
                        .await
                        .map_err(|e| {
                            StoreError::Unavailable(format!("query decode task: {e}"))
                        })??;
                Ok::<_, StoreError>((index, merged))
            });
        }
        let mut merged = Vec::with_capacity(chunks.len());
        while let Some(joined) = chunks.join_next().await {
            merged.push(joined.map_err(|e| StoreError::Unavailable(format!("query task: {e}")))??);
        }
        merged.sort_unstable_by_key(|(index, _)| *index);
        out.extend(merged.into_iter().flat_map(|(_, series)| series));
    }
    Ok(out)
}

/// `MGET` of every planned window of every series in `series`, series by
/// series (the order [`merge_series`] reads them in).
fn mget_windows(series: &[SeriesKey], plan: &[(Resolution, u64)]) -> redis::Cmd {
    let mut mget = redis::cmd("MGET");
    let mut key = String::new();
    let reads = |resolution| plan.iter().any(|(r, _)| *r == resolution);
    let (minutes, hours) = (reads(Resolution::Minute), reads(Resolution::Hour));
    for s in series {
        let prefix = |wanted: bool, resolution| {
            if wanted {
                keys::window_key_prefix(s, resolution)
            } else {
                String::new()
            }
        };
        let minute = prefix(minutes, Resolution::Minute);
        let hour = prefix(hours, Resolution::Hour);
        for (resolution, start) in plan {
            key.clear();
            key.push_str(match resolution {
                Resolution::Minute => &minute,
                Resolution::Hour => &hour,
            });
            write!(key, "{start}").expect("writing to a String cannot fail");
            mget.arg(key.as_str());
        }
    }
    mget
}

/// Each series' windows (`windows` consecutive values) merged into one sketch;
/// series without any value are left out.
fn merge_series(
    series: Vec<SeriesKey>,
    values: &[Option<Vec<u8>>],
    windows: usize,
) -> Result<Vec<(SeriesKey, SeriesSketch)>, StoreError> {
    let mut out = Vec::with_capacity(series.len());
    for (key, values) in series.into_iter().zip(values.chunks(windows)) {
        let mut merged = SeriesSketch::default();
        let mut found = false;
        for value in values.iter().flatten() {
            frames::merge_value_into(&mut merged, value)?;
            found = true;
        }
        if found {
            out.push((key, merged));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000 - 1_800_000_000 % HOUR_SECS + 1_234;

    #[test]
    fn a_recent_range_reads_its_minutes() {
        let plan = plan_windows(NOW - 300, NOW, NOW, 7_200);
        assert_eq!(plan.len(), 6, "5 minutes unaligned touch 6 minute windows");
        assert!(plan.iter().all(|(r, _)| *r == Resolution::Minute));
        assert_eq!(plan[0].1, (NOW - 300) - (NOW - 300) % 60);
    }

    #[test]
    fn a_month_reads_hours_then_the_recent_minutes_once() {
        let plan = plan_windows(NOW - 30 * 86_400, NOW, NOW, 7_200);
        let hours = plan.iter().filter(|(r, _)| *r == Resolution::Hour).count();
        let minutes = plan
            .iter()
            .filter(|(r, _)| *r == Resolution::Minute)
            .count();
        assert!((718..=721).contains(&hours), "{hours}");
        assert!(minutes <= 180, "{minutes}");
        let mut covered: Vec<(u64, u64)> = plan
            .iter()
            .map(|(r, s)| {
                (
                    *s,
                    *s + if *r == Resolution::Hour {
                        HOUR_SECS
                    } else {
                        MINUTE_SECS
                    },
                )
            })
            .collect();
        covered.sort();
        for pair in covered.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "windows overlap: {pair:?}");
        }
    }

    #[test]
    fn mget_names_every_planned_window_series_by_series() {
        let series: Vec<SeriesKey> = ["a", "b:c"]
            .iter()
            .map(|cluster| SeriesKey {
                tenant: "t{1}".into(),
                cluster: cluster.to_string(),
                model: "m".into(),
                kind: crate::signal::SignalKind::RequestLifecycle,
            })
            .collect();
        let plan = [(Resolution::Hour, 3_600), (Resolution::Minute, 7_200)];
        let expected: Vec<Vec<u8>> = series
            .iter()
            .flat_map(|s| {
                plan.iter()
                    .map(|(r, start)| keys::window_key(s, *r, *start))
            })
            .map(String::into_bytes)
            .collect();
        let args: Vec<Vec<u8>> = mget_windows(&series, &plan)
            .args_iter()
            .map(|arg| match arg {
                redis::Arg::Simple(bytes) => bytes.to_vec(),
                other => panic!("MGET takes plain arguments, got {other:?}"),
            })
            .collect();
        assert_eq!(args[0], b"MGET");
        assert_eq!(args[1..], expected[..]);
    }

    #[test]
    fn ranges_are_clamped_to_the_windows_that_can_exist() {
        let month = 30 * 86_400;
        let (from, to) = existing_range(0, u64::MAX, NOW, month);
        assert_eq!((from, to), (NOW - month - HOUR_SECS, NOW + month));
        let plan = plan_windows(from, to, NOW, 7_200);
        assert!(plan.len() <= 2 * 722 + 120, "{} windows", plan.len());
        assert_eq!(
            existing_range(NOW - 300, NOW, NOW, month),
            (NOW - 300, NOW),
            "a range inside the retention is kept as asked"
        );
        assert_eq!(existing_range(0, 600, 500, month), (0, 600), "early clocks");
    }

    #[test]
    fn a_whole_hour_in_range_is_read_from_its_hour_key_even_when_recent() {
        let hour = NOW - NOW % HOUR_SECS;
        let plan = plan_windows(hour - HOUR_SECS, hour + 120, NOW, 7_200);
        assert_eq!(
            plan,
            vec![
                (Resolution::Hour, hour - HOUR_SECS),
                (Resolution::Minute, hour),
                (Resolution::Minute, hour + 60),
            ]
        );
    }

    #[test]
    fn empty_range_plans_nothing() {
        assert!(plan_windows(NOW, NOW, NOW, 7_200).is_empty());
    }
}
