//! The flush task: pending windows → Redis, at most once per log entry, and
//! the write-ahead-log replay after a restart.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Instant;

use redis::AsyncCommands;

use crate::sketch::{Resolution, WindowedSketch};
use crate::store::StoreError;

use super::conn::RedisConn;
use super::frames::{self, COMPACT_SCRIPT};
use super::keys;
use super::pending::{TenantPending, WriterMsg};
use super::{Shared, entry, unix_now};

/// One tenant's share of a flush, encoded once so a retry sends exactly the
/// same script (the checkpoint makes a repeat a no-op).
pub struct TenantFlush {
    tenant: String,
    first_seq: u64,
    keys: Vec<String>,
    args: Vec<Vec<u8>>,
    /// Index into `keys` of the first window key.
    first_window_key: usize,
    /// Unix second each window key's window ends, parallel to the window keys.
    window_ends: Vec<u64>,
}

#[derive(Default)]
pub struct FlushState {
    /// Flushes that failed; each is retried, unchanged, before its tenant's
    /// newer pending windows are taken.
    in_flight: Vec<TenantFlush>,
    /// Tenants already in the tenant index (saves one command per flush).
    indexed_tenants: HashSet<String>,
}

impl TenantFlush {
    fn build(shared: &Shared, tenant: String, pending: TenantPending, now: u64) -> TenantFlush {
        let config = &shared.config;
        let retention_expiry = now + config.retention_secs;
        let mut index: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut window_keys = Vec::with_capacity(pending.windows.len() * 2);
        let mut window_ends = Vec::with_capacity(pending.windows.len() * 2);
        let mut window_args = Vec::with_capacity(pending.windows.len() * 4);
        // Minutes fold into their hour at write time, so merge them per hour first.
        let mut hours: HashMap<(crate::signal::SeriesKey, u64), crate::sketch::SeriesSketch> =
            HashMap::new();
        for ((key, window), sketch) in pending.windows {
            index
                .entry(keys::series_index_key(&tenant, key.kind))
                .or_default()
                .push(keys::series_member(&key));
            let len = keys::window_len(window.resolution);
            let start = window.start_unix_secs - window.start_unix_secs % len;
            // Minute keys are read only until their minute is older than the
            // roll-up age (then the hour answers), so they expire soon after.
            let minute_expiry = start + len + config.rollup_after_secs + 600;
            if window.resolution == Resolution::Minute && minute_expiry > now {
                window_keys.push(keys::window_key(&key, Resolution::Minute, start));
                window_ends.push(start + len);
                window_args.push(frames::frame(&sketch.encode()));
                window_args.push(minute_expiry.to_string().into_bytes());
            }
            let hour = start - start % 3_600;
            match hours.entry((key, hour)) {
                std::collections::hash_map::Entry::Occupied(mut e) => {
                    if let Err(err) = e.get_mut().merge(&sketch) {
                        tracing::error!(error = %err, "cannot fold a minute into its hour; hour key misses it");
                    }
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(sketch);
                }
            }
        }
        for ((key, hour), sketch) in hours {
            if hour + 3_600 + config.retention_secs <= now {
                continue; // already past the retention: nothing would read it
            }
            window_keys.push(keys::window_key(&key, Resolution::Hour, hour));
            window_ends.push(hour + 3_600);
            window_args.push(frames::frame(&sketch.encode()));
            window_args.push(
                (hour + 3_600 + config.retention_secs)
                    .to_string()
                    .into_bytes(),
            );
        }
        let mut key_list = vec![keys::checkpoint_key(&tenant, &shared.replica_id)];
        let mut args = vec![
            pending.last_seq.to_string().into_bytes(),
            retention_expiry.to_string().into_bytes(),
            retention_expiry.to_string().into_bytes(),
            index.len().to_string().into_bytes(),
        ];
        for (index_key, mut members) in index {
            members.sort();
            members.dedup();
            key_list.push(index_key);
            args.push(members.join("\n").into_bytes());
        }
        let first_window_key = key_list.len();
        key_list.extend(window_keys);
        args.extend(window_args);
        TenantFlush {
            tenant,
            first_seq: pending.first_seq,
            keys: key_list,
            args,
            first_window_key,
            window_ends,
        }
    }

    fn window_keys(&self) -> usize {
        self.keys.len() - self.first_window_key
    }
}

async fn apply(
    mut conn: RedisConn,
    flush: &TenantFlush,
    index_tenant: bool,
) -> redis::RedisResult<Vec<i64>> {
    if index_tenant {
        let _: i64 = conn.sadd(keys::TENANTS_KEY, &flush.tenant).await?;
    }
    let script = flush_script();
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(script.as_str())
        .arg(flush.keys.len())
        .arg(&flush.keys);
    for arg in &flush.args {
        cmd.arg(arg.as_slice());
    }
    cmd.query_async(&mut conn).await
}

fn flush_script() -> &'static String {
    static SCRIPT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SCRIPT.get_or_init(frames::flush_script)
}

pub async fn ensure_conn(shared: &Shared) -> Result<RedisConn, StoreError> {
    let connected = shared
        .conn
        .get_or_try_init(|| RedisConn::connect(&shared.config.url, shared.config.timeout))
        .await;
    match connected {
        Ok(conn) => Ok(conn.clone()),
        Err(e) => {
            shared.mark_down(format!("connect: {e}"));
            Err(StoreError::Unavailable(format!(
                "cannot connect to Redis: {e}"
            )))
        }
    }
}

/// Merges the log entries found at start into pending, minus what each
/// tenant's checkpoint says was flushed before the restart.
async fn resolve_replay(shared: &Shared, conn: &RedisConn) -> Result<(), StoreError> {
    let Some(entries) = shared.replay.lock().take() else {
        return Ok(());
    };
    let result = async {
        let mut decoded = Vec::with_capacity(entries.len());
        for e in &entries {
            decoded.push((e.seq, entry::decode(&e.payload)?));
        }
        let tenants: HashSet<&str> = decoded
            .iter()
            .flat_map(|(_, sketches)| sketches.iter().map(|s| s.key.tenant.as_str()))
            .collect();
        let mut checkpoints = HashMap::new();
        for tenant in tenants {
            let mut conn = conn.clone();
            let done: Option<u64> = conn
                .get(keys::checkpoint_key(tenant, &shared.replica_id))
                .await
                .map_err(|e| StoreError::Unavailable(format!("reading checkpoints: {e}")))?;
            checkpoints.insert(tenant.to_string(), done.unwrap_or(0));
        }
        let (mut kept, mut skipped) = (0usize, 0usize);
        let mut pending = shared.pending.lock();
        for (seq, sketches) in decoded {
            let (keep, drop): (Vec<WindowedSketch>, Vec<WindowedSketch>) = sketches
                .into_iter()
                .partition(|s| seq > checkpoints.get(&s.key.tenant).copied().unwrap_or(0));
            kept += keep.len();
            skipped += drop.len();
            if !keep.is_empty() {
                pending.merge(seq, keep)?;
            }
        }
        tracing::info!(
            kept,
            skipped,
            "write-ahead log replayed (skipped: already in redis)"
        );
        Ok::<(), StoreError>(())
    }
    .await;
    match result {
        Ok(()) => {
            shared.status.replayed.store(true, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => {
            *shared.replay.lock() = Some(entries);
            Err(e)
        }
    }
}

/// One flush round. Errors leave everything to be retried by the next round.
pub async fn flush_once(
    shared: &Arc<Shared>,
    writer: &mpsc::Sender<WriterMsg>,
) -> Result<(), StoreError> {
    let mut state = shared.flush_state.lock().await;
    let conn = ensure_conn(shared).await?;
    if let Err(e) = resolve_replay(shared, &conn).await {
        if matches!(e, StoreError::Unavailable(_)) {
            shared.mark_down(&e);
        } else {
            *shared.status.wal_error.lock() = Some(e.to_string());
        }
        return Err(e);
    }
    let started = Instant::now();
    let mut flushes = std::mem::take(&mut state.in_flight);
    let taken: Vec<(String, TenantPending)> = {
        let busy: HashSet<&str> = flushes.iter().map(|f| f.tenant.as_str()).collect();
        let mut pending = shared.pending.lock();
        let ready: Vec<String> = pending
            .tenants
            .keys()
            .filter(|t| !busy.contains(t.as_str()))
            .cloned()
            .collect();
        ready
            .into_iter()
            .filter_map(|t| pending.tenants.remove(&t).map(|p| (t, p)))
            .collect()
    };
    let now = unix_now();
    flushes.extend(
        taken
            .into_iter()
            .map(|(t, p)| TenantFlush::build(shared, t, p, now)),
    );
    if flushes.is_empty() {
        return probe(shared, &conn).await;
    }

    let mut tasks = tokio::task::JoinSet::new();
    let flushes: Vec<Arc<TenantFlush>> = flushes.into_iter().map(Arc::new).collect();
    for (i, flush) in flushes.iter().enumerate() {
        let (conn, flush) = (conn.clone(), flush.clone());
        let index = !state.indexed_tenants.contains(&flush.tenant);
        tasks.spawn(async move { (i, apply(conn, &flush, index).await) });
    }
    let mut results: Vec<Option<redis::RedisResult<Vec<i64>>>> =
        (0..flushes.len()).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        let (i, result) =
            joined.map_err(|e| StoreError::Unavailable(format!("flush task: {e}")))?;
        results[i] = Some(result);
    }

    let mut first_error = None;
    let mut to_compact = Vec::new();
    let mut frames_written = 0u64;
    for (flush, result) in flushes.into_iter().zip(results) {
        match result.expect("every task reported") {
            Ok(counts) => {
                state.indexed_tenants.insert(flush.tenant.clone());
                if counts.first() != Some(&-1) {
                    frames_written += flush.window_keys() as u64;
                    let mut dirty = shared.dirty.lock();
                    let written = flush.keys[flush.first_window_key..]
                        .iter()
                        .zip(&flush.window_ends);
                    for ((key, end), count) in written.zip(counts) {
                        if count >= i64::from(shared.config.compact_after_frames) {
                            to_compact.push(key.clone());
                            dirty.remove(key);
                        } else if count >= 2 {
                            // Compacted once its window has closed (see `compact_closed`).
                            dirty.insert(key.clone(), *end);
                        }
                    }
                }
            }
            Err(e) => {
                first_error.get_or_insert_with(|| e.to_string());
                state
                    .in_flight
                    .push(Arc::try_unwrap(flush).unwrap_or_else(|_| unreachable!("tasks joined")));
            }
        }
    }
    shared
        .status
        .frames_written
        .fetch_add(frames_written, Ordering::Relaxed);
    let oldest_needed = {
        let pending = shared.pending.lock();
        state
            .in_flight
            .iter()
            .map(|f| f.first_seq)
            .fold(pending.oldest_needed(), u64::min)
    };
    let (truncated, done) = tokio::sync::oneshot::channel();
    if writer
        .send(WriterMsg::Truncate(oldest_needed, truncated))
        .is_ok()
    {
        let _ = done.await;
    }
    if !to_compact.is_empty() {
        let shared_for_compaction = shared.clone();
        tokio::spawn(async move {
            compact(shared_for_compaction, conn, to_compact).await;
        });
    }
    match first_error {
        None => {
            shared.mark_up();
            shared.status.flushes.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "flushed to redis"
            );
            Ok(())
        }
        Some(e) => {
            shared.status.flush_failures.fetch_add(1, Ordering::Relaxed);
            shared.mark_down(&e);
            Err(StoreError::Unavailable(format!(
                "flush to Redis failed: {e}"
            )))
        }
    }
}

/// With nothing to flush, a PING keeps `/readyz` truthful during idle outages.
async fn probe(shared: &Shared, conn: &RedisConn) -> Result<(), StoreError> {
    let mut conn = conn.clone();
    match redis::cmd("PING").query_async::<String>(&mut conn).await {
        Ok(_) => {
            shared.mark_up();
            Ok(())
        }
        Err(e) => {
            shared.mark_down(&e);
            Err(StoreError::Unavailable(e.to_string()))
        }
    }
}

/// Folds each key's frames into one, one MGET and one pipeline per tenant
/// (its keys share a slot). Safe against concurrent appends and compactions
/// from other replicas (see `COMPACT_SCRIPT`).
/// Returns false (doing nothing) when another compaction is running.
async fn compact(shared: Arc<Shared>, mut conn: RedisConn, mut keys: Vec<String>) -> bool {
    if shared.compacting.swap(true, Ordering::AcqRel) {
        return false;
    }
    keys.sort();
    let tag = |key: &str| {
        key.split_once('}')
            .map_or(String::new(), |(t, _)| t.to_string())
    };
    let mut start = 0;
    while start < keys.len() {
        let group_tag = tag(&keys[start]);
        let end = keys[start..]
            .iter()
            .position(|k| tag(k) != group_tag)
            .map_or(keys.len(), |n| start + n);
        let group = &keys[start..end];
        start = end;
        let result: Result<u64, String> = async {
            let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                .arg(group)
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            let mut pipe = redis::pipe();
            for (key, value) in group.iter().zip(values) {
                let Some(value) = value else { continue };
                let merged = frames::merge_value(&value).map_err(|e| format!("{key}: {e}"))?;
                pipe.cmd("EVAL")
                    .arg(COMPACT_SCRIPT)
                    .arg(1)
                    .arg(key)
                    .arg(value)
                    .arg(frames::frame(&merged.encode()));
            }
            let replaced: Vec<i64> = pipe
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            Ok(replaced.iter().filter(|r| **r == 1).count() as u64)
        }
        .await;
        match result {
            Ok(n) => {
                shared.status.compactions.fetch_add(n, Ordering::Relaxed);
            }
            Err(error) => {
                tracing::warn!(%error, "compaction failed; the keys stay readable, uncompacted");
                break;
            }
        }
    }
    shared.compacting.store(false, Ordering::Release);
    true
}

/// Compacts keys whose window has closed since they last got a frame, so old
/// windows are stored (and read for 30 days) as one frame.
pub async fn compact_closed(shared: &Arc<Shared>, now: u64) -> u64 {
    let due: Vec<String> = {
        let settle = 2 * shared.config.flush_interval.as_secs().max(1);
        let mut dirty = shared.dirty.lock();
        let due: Vec<String> = dirty
            .iter()
            .filter(|(_, end)| **end + settle <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in &due {
            dirty.remove(key);
        }
        due
    };
    let Some(conn) = shared.conn.get().cloned() else {
        return 0;
    };
    let n = due.len() as u64;
    if n > 0 && !compact(shared.clone(), conn, due.clone()).await {
        // Busy with threshold compactions: try these again next pass.
        let mut dirty = shared.dirty.lock();
        dirty.extend(due.into_iter().map(|k| (k, now)));
        return 0;
    }
    n
}

pub async fn run(shared: Arc<Shared>, writer: mpsc::Sender<WriterMsg>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(shared.config.flush_interval) => {}
            _ = shared.flush_now.notified() => {}
        }
        if shared.shutdown.load(Ordering::Relaxed) {
            let _ = flush_once(&shared, &writer).await;
            return;
        }
        if let Err(e) = flush_once(&shared, &writer).await {
            tracing::debug!(error = %e, "flush to redis failed; retrying next round");
        }
    }
}

/// Flush rounds until nothing is pending or in flight.
pub async fn flush_until_empty(
    shared: &Arc<Shared>,
    writer: &mpsc::Sender<WriterMsg>,
) -> Result<(), StoreError> {
    for _ in 0..100 {
        flush_once(shared, writer).await?;
        let nothing_pending = shared.pending.lock().tenants.is_empty();
        let nothing_in_flight = shared.flush_state.lock().await.in_flight.is_empty();
        if nothing_pending && nothing_in_flight {
            return Ok(());
        }
    }
    Err(StoreError::Unavailable(
        "pending sketches keep arriving faster than flushes".into(),
    ))
}
