//! The Redis store: durable, shared sketches for every real deployment.
//!
//! Write path: `merge()` appends the export's windowed sketches to a local
//! write-ahead log (group commit, one fsync per group) and merges them into
//! in-memory pending windows; only then is the export acknowledged. A flush task
//! writes pending windows to Redis every `flush_interval`: per tenant one atomic
//! script appends one frame per window (minute and hour keys) and records this
//! replica's checkpoint (the last log sequence number it covers); the script is
//! skipped when the checkpoint already covers it, so replaying the log after a
//! crash writes nothing twice. Flushed log segments are deleted.
//!
//! Replicas never read-modify-write: frames are appended (atomic in Redis), so
//! any number of replicas write the same windows without losing updates; reads
//! merge the frames and compaction folds them. `docs/redis.md` has the
//! measurements behind that choice.
//!
//! Outages: while Redis is unreachable exports keep being accepted into the log
//! up to `buffer_bytes`, then refused with [`StoreError::Unavailable`] (the
//! sender retries); `health()` reports the outage; flushes catch up after.

pub mod config;
mod conn;
mod endpoint;
mod entry;
mod flush;
mod frames;
mod keys;
mod pending;
mod query;
mod series_count;
mod tls;
pub mod wal;

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::{Notify, OnceCell, oneshot};

use crate::signal::SeriesKey;
use crate::sketch::{SeriesSketch, WindowedSketch};
use crate::store::redis::wal::{Wal, WalEntry};
use crate::store::{
    MaintenanceReport, ReplicaLink, SketchStore, StoreError, StoreHealth, StoreQuery,
};
use crate::telemetry::SelfMetrics;

pub use config::{RedisArgs, parse_duration};
pub use conn::RedisConn;
pub use endpoint::RedisUrl;
pub use frames::{frames as split_frames, merge_value};
pub use keys::{TENANTS_KEY, window_key};
pub use tls::TlsFiles;

use pending::{Pending, WriterMsg};

/// Log segment size: the granularity at which flushed log is deleted.
const SEGMENT_BYTES: u64 = 8 << 20;
const REPLICA_ID_FILE: &str = "replica-id";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisStoreConfig {
    /// `--redis-url` with the `rediss://` TLS files.
    pub url: RedisUrl,
    pub replica_id: Option<String>,
    pub wal_dir: std::path::PathBuf,
    pub flush_interval: Duration,
    pub buffer_bytes: u64,
    pub retention_secs: u64,
    pub rollup_after_secs: u64,
    /// A window key is compacted once a flush leaves it with this many frames.
    pub compact_after_frames: u32,
    /// Connect and response timeout for Redis requests.
    pub timeout: Duration,
}

impl RedisStoreConfig {
    /// The store's configuration from its flags and the aggregator's retention
    /// and roll-up age; `None` without `--redis-url`.
    pub fn from_args(
        args: &RedisArgs,
        retention_secs: u64,
        rollup_after_secs: u64,
    ) -> Option<RedisStoreConfig> {
        Some(RedisStoreConfig {
            url: RedisUrl::new(args.redis_url.clone()?).with_tls(args.tls_files()),
            replica_id: args.replica_id.clone(),
            wal_dir: args.wal_dir.clone(),
            flush_interval: args.redis_flush_interval,
            buffer_bytes: args.redis_buffer_bytes,
            retention_secs,
            rollup_after_secs,
            compact_after_frames: 16,
            timeout: Duration::from_secs(2),
        })
    }

    pub fn new(url: impl Into<String>, wal_dir: impl Into<std::path::PathBuf>) -> Self {
        RedisStoreConfig {
            url: RedisUrl::new(url),
            replica_id: None,
            wal_dir: wal_dir.into(),
            flush_interval: Duration::from_secs(1),
            buffer_bytes: 256 << 20,
            retention_secs: 30 * 86_400,
            rollup_after_secs: 2 * 3_600,
            compact_after_frames: 16,
            timeout: Duration::from_secs(2),
        }
    }
}

/// What `/metrics` and `/readyz` show about the store.
#[derive(Default)]
pub struct Status {
    pub redis_up: AtomicBool,
    /// Unix seconds of the first failure of the current outage (0: none).
    pub down_since: AtomicU64,
    pub last_error: Mutex<Option<String>>,
    pub wal_error: Mutex<Option<String>>,
    /// Log bytes not yet flushed to Redis, plus appends in progress.
    pub buffered_bytes: AtomicU64,
    pub replayed: AtomicBool,
    pub flushes: AtomicU64,
    pub flush_failures: AtomicU64,
    pub frames_written: AtomicU64,
    pub compactions: AtomicU64,
    pub refused_exports: AtomicU64,
}

/// A point-in-time copy of [`Status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSnapshot {
    pub redis_up: bool,
    pub outage_seconds: u64,
    pub buffered_bytes: u64,
    pub buffer_limit_bytes: u64,
    pub replayed: bool,
    pub flushes: u64,
    pub flush_failures: u64,
    pub frames_written: u64,
    pub compactions: u64,
    pub refused_exports: u64,
}

pub(crate) struct Shared {
    config: RedisStoreConfig,
    replica_id: String,
    conn: OnceCell<RedisConn>,
    pending: Mutex<Pending>,
    /// Log entries found at start, held until the checkpoints in Redis say
    /// which of them were flushed before the restart.
    replay: Mutex<Option<Vec<WalEntry>>>,
    status: Status,
    flush_now: Notify,
    flush_state: tokio::sync::Mutex<flush::FlushState>,
    compacting: AtomicBool,
    /// Keys holding several frames, by the end of their window.
    dirty: Mutex<std::collections::HashMap<String, u64>>,
    shutdown: AtomicBool,
    series: series_count::SeriesCount,
    /// Kept for the counters ingest shares; the store's own are in `status`.
    _metrics: Arc<SelfMetrics>,
}

impl Shared {
    fn flush_wanted(&self) {
        if self.status.buffered_bytes.load(Ordering::Relaxed) > self.config.buffer_bytes / 8 {
            self.flush_now.notify_one();
        }
    }

    fn mark_up(&self) {
        self.status.redis_up.store(true, Ordering::Relaxed);
        self.status.down_since.store(0, Ordering::Relaxed);
        *self.status.last_error.lock() = None;
    }

    fn mark_down(&self, error: impl ToString) {
        let error = error.to_string();
        if self.status.redis_up.swap(false, Ordering::Relaxed)
            || self.status.down_since.load(Ordering::Relaxed) == 0
        {
            tracing::warn!(%error, "redis unreachable; buffering exports in the write-ahead log");
            self.status
                .down_since
                .store(unix_now().max(1), Ordering::Relaxed);
        }
        *self.status.last_error.lock() = Some(error);
    }
}

pub struct RedisStore {
    shared: Arc<Shared>,
    writer: mpsc::Sender<WriterMsg>,
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// On-disk bytes of one log entry with a payload of `len` bytes.
pub(crate) fn entry_bytes(len: usize) -> u64 {
    len as u64 + 20
}

/// Why the Redis store could not start. Both stop the aggregator: one names
/// the flag to fix, the other the local file the write-ahead log needs.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}")]
    Config(String),
    #[error("write-ahead log: {0}")]
    Wal(String),
}

fn resolve_replica_id(dir: &Path, configured: Option<&str>) -> Result<String, OpenError> {
    let path = dir.join(REPLICA_ID_FILE);
    let recorded = match fs::read_to_string(&path) {
        Ok(text) => Some(text.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(OpenError::Wal(format!("{}: {e}", path.display()))),
    };
    match (recorded, configured) {
        (Some(recorded), Some(configured)) if recorded != configured => {
            Err(OpenError::Config(format!(
                "--replica-id {configured:?} differs from {recorded:?} recorded in {}: a write-ahead \
                 log belongs to one replica (its checkpoints in Redis); use that id or another --wal-dir",
                path.display()
            )))
        }
        (Some(recorded), _) => Ok(recorded),
        (None, configured) => {
            let id = match configured {
                Some(id) => id.to_string(),
                None => format!("replica-{:016x}", random_u64()),
            };
            fs::write(&path, format!("{id}\n"))
                .and_then(|_| fs::File::open(&path)?.sync_all())
                .map_err(|e| OpenError::Wal(format!("{}: {e}", path.display())))?;
            Ok(id)
        }
    }
}

fn random_u64() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    xxhash_rust::xxh3::xxh3_64(
        &[
            nanos.to_le_bytes().as_slice(),
            &std::process::id().to_le_bytes(),
        ]
        .concat(),
    )
}

impl RedisStore {
    /// Opens the write-ahead log (replaying it once Redis answers) and starts the
    /// flush task. Does not wait for Redis: until it answers, exports are
    /// buffered in the log and `health()` says why the store is not ready.
    pub fn open(
        config: RedisStoreConfig,
        metrics: Arc<SelfMetrics>,
    ) -> Result<RedisStore, OpenError> {
        // Flag mistakes (URLs, certificate files) stop the start; an unreachable
        // Redis does not.
        config.url.check().map_err(OpenError::Config)?;
        let (wal, replayed) =
            Wal::open(&config.wal_dir, SEGMENT_BYTES).map_err(|e| OpenError::Wal(e.to_string()))?;
        let replica_id = resolve_replica_id(&config.wal_dir, config.replica_id.as_deref())?;
        tracing::info!(
            replica = %replica_id,
            wal = %config.wal_dir.display(),
            entries_to_replay = replayed.len(),
            "redis store write-ahead log open"
        );
        let status = Status::default();
        let unflushed: std::collections::VecDeque<(u64, u64)> = replayed
            .iter()
            .map(|e| (e.seq, entry_bytes(e.payload.len())))
            .collect();
        status.buffered_bytes.store(
            unflushed.iter().map(|(_, bytes)| bytes).sum(),
            Ordering::Relaxed,
        );
        let pending = Pending {
            tenants: Default::default(),
            merged_below: wal.next_seq(),
        };
        let shared = Arc::new(Shared {
            config,
            replica_id,
            conn: OnceCell::new(),
            pending: Mutex::new(pending),
            replay: Mutex::new(Some(replayed)),
            status,
            flush_now: Notify::new(),
            flush_state: Default::default(),
            compacting: AtomicBool::new(false),
            dirty: Mutex::new(Default::default()),
            shutdown: AtomicBool::new(false),
            series: Default::default(),
            _metrics: metrics,
        });
        let (tx, rx) = mpsc::channel();
        let writer_shared = shared.clone();
        std::thread::Builder::new()
            .name("wal-writer".into())
            .spawn(move || pending::run_writer(wal, unflushed, writer_shared, rx))
            .map_err(|e| OpenError::Wal(format!("cannot start the log writer: {e}")))?;
        tokio::spawn(flush::run(shared.clone(), tx.clone()));
        Ok(RedisStore { shared, writer: tx })
    }

    pub fn replica_id(&self) -> &str {
        &self.shared.replica_id
    }

    pub fn config(&self) -> &RedisStoreConfig {
        &self.shared.config
    }

    pub fn status(&self) -> StatusSnapshot {
        let s = &self.shared.status;
        let down_since = s.down_since.load(Ordering::Relaxed);
        StatusSnapshot {
            redis_up: s.redis_up.load(Ordering::Relaxed),
            outage_seconds: if down_since == 0 {
                0
            } else {
                unix_now().saturating_sub(down_since)
            },
            buffered_bytes: s.buffered_bytes.load(Ordering::Relaxed),
            buffer_limit_bytes: self.shared.config.buffer_bytes,
            replayed: s.replayed.load(Ordering::Relaxed),
            flushes: s.flushes.load(Ordering::Relaxed),
            flush_failures: s.flush_failures.load(Ordering::Relaxed),
            frames_written: s.frames_written.load(Ordering::Relaxed),
            compactions: s.compactions.load(Ordering::Relaxed),
            refused_exports: s.refused_exports.load(Ordering::Relaxed),
        }
    }

    /// The store's gauges and counters in Prometheus text format, for `/metrics`.
    fn metrics_text(&self) -> String {
        let s = self.status();
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        };
        metric(
            "signal_aggregator_redis_up",
            "gauge",
            "1 when the last Redis flush or probe succeeded.",
            u64::from(s.redis_up),
        );
        metric(
            "signal_aggregator_redis_outage_seconds",
            "gauge",
            "Seconds since Redis stopped answering (0 when up).",
            s.outage_seconds,
        );
        metric(
            "signal_aggregator_redis_buffered_bytes",
            "gauge",
            "Write-ahead-log bytes not yet deleted after a flush to Redis.",
            s.buffered_bytes,
        );
        metric(
            "signal_aggregator_redis_buffer_limit_bytes",
            "gauge",
            "Buffered bytes beyond which exports are refused as retryable.",
            s.buffer_limit_bytes,
        );
        metric(
            "signal_aggregator_redis_flushes_total",
            "counter",
            "Successful flushes to Redis.",
            s.flushes,
        );
        metric(
            "signal_aggregator_redis_flush_failures_total",
            "counter",
            "Flushes to Redis that failed and will be retried.",
            s.flush_failures,
        );
        metric(
            "signal_aggregator_redis_frames_written_total",
            "counter",
            "Window frames appended to Redis.",
            s.frames_written,
        );
        metric(
            "signal_aggregator_redis_refused_exports_total",
            "counter",
            "Exports refused because the outage buffer was full.",
            s.refused_exports,
        );
        out
    }

    /// Flushes everything pending now; returns once Redis has it (or fails).
    pub async fn flush(&self) -> Result<(), StoreError> {
        flush::flush_until_empty(&self.shared, &self.writer).await
    }

    /// Counts the series Redis holds now (every tenant's index sets) and keeps
    /// the count for `health()`.
    pub async fn count_series(&self) -> Result<u64, StoreError> {
        let count = series_count::count(self.connected()?)
            .await
            .map_err(|e| StoreError::Unavailable(format!("redis series count failed: {e}")))?;
        self.shared.series.record(count);
        Ok(count)
    }

    /// Starts one recount in the background when the last count is stale, so
    /// health checks report a recent count without waiting for Redis.
    fn recount_series_if_stale(&self) {
        let shared = &self.shared;
        if !shared.series.is_stale() {
            return;
        }
        let Some(conn) = shared.conn.get().cloned() else {
            return;
        };
        if !shared.series.try_begin() {
            return;
        }
        let shared = shared.clone();
        tokio::spawn(async move {
            match series_count::count(conn).await {
                Ok(count) => shared.series.record(count),
                Err(error) => tracing::debug!(%error, "redis series count failed"),
            }
            shared.series.end();
        });
    }

    fn connected(&self) -> Result<RedisConn, StoreError> {
        self.shared
            .conn
            .get()
            .cloned()
            .ok_or_else(|| StoreError::Unavailable("not connected to Redis yet".into()))
    }

    fn refuse(&self, why: String) -> StoreError {
        self.shared
            .status
            .refused_exports
            .fetch_add(1, Ordering::Relaxed);
        StoreError::Unavailable(why)
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Relaxed);
        self.shared.flush_now.notify_one();
    }
}

#[async_trait]
impl SketchStore for RedisStore {
    async fn merge(&self, sketches: Vec<WindowedSketch>) -> Result<(), StoreError> {
        if sketches.is_empty() {
            return Ok(());
        }
        let payload = entry::encode(&sketches)?;
        let size = entry_bytes(payload.len());
        let limit = self.shared.config.buffer_bytes;
        let buffered = self
            .shared
            .status
            .buffered_bytes
            .fetch_add(size, Ordering::Relaxed);
        if buffered + size > limit {
            self.shared
                .status
                .buffered_bytes
                .fetch_sub(size, Ordering::Relaxed);
            let status = self.status();
            let why = if status.redis_up {
                format!("flushes to Redis are behind ({buffered} of {limit} buffered bytes used)")
            } else {
                format!(
                    "Redis unreachable for {}s and the outage buffer is full ({buffered} of {limit} bytes)",
                    status.outage_seconds
                )
            };
            return Err(self.refuse(why));
        }
        let (reply, done) = oneshot::channel();
        let sent = self.writer.send(WriterMsg::Append {
            payload,
            sketches,
            reply,
        });
        if sent.is_err() {
            self.shared
                .status
                .buffered_bytes
                .fetch_sub(size, Ordering::Relaxed);
            return Err(self.refuse("write-ahead-log writer stopped".into()));
        }
        done.await
            .map_err(|_| StoreError::Unavailable("write-ahead-log writer stopped".into()))?
    }

    async fn query(
        &self,
        query: &StoreQuery,
    ) -> Result<Vec<(SeriesKey, SeriesSketch)>, StoreError> {
        let conn = self.connected()?;
        let started = Instant::now();
        let result = query::run(&self.shared.config, conn, query, unix_now()).await;
        if let Err(StoreError::Unavailable(e)) = &result {
            self.shared.mark_down(e);
        }
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "redis query"
        );
        result
    }

    async fn health(&self) -> StoreHealth {
        let s = self.status();
        let wal_error = self.shared.status.wal_error.lock().clone();
        let buffer = format!(
            "write-ahead log {} of {} buffer bytes",
            s.buffered_bytes, s.buffer_limit_bytes
        );
        let (ready, detail) = if let Some(e) = wal_error {
            (false, format!("write-ahead log failing: {e}; {buffer}"))
        } else if !s.redis_up {
            let error = self
                .shared
                .status
                .last_error
                .lock()
                .clone()
                .unwrap_or_else(|| "not connected yet".into());
            (
                false,
                format!(
                    "redis unreachable for {}s ({error}); accepting exports into the {buffer}, refusing them when full",
                    s.outage_seconds
                ),
            )
        } else if !s.replayed {
            (
                false,
                format!("replaying the write-ahead log into redis; {buffer}"),
            )
        } else {
            (
                true,
                format!("redis ok (replica {}); {buffer}", self.shared.replica_id),
            )
        };
        self.recount_series_if_stale();
        StoreHealth {
            ready,
            detail,
            series: self.shared.series.last(),
        }
    }

    async fn run_maintenance(&self, now_unix_secs: u64) -> Result<MaintenanceReport, StoreError> {
        // Redis expires keys by their TTL and every flush folds minutes into
        // their hour key as it writes; what is left is folding the frames of
        // windows that have closed.
        flush::compact_closed(&self.shared, now_unix_secs).await;
        Ok(MaintenanceReport::default())
    }

    fn retention_secs(&self) -> u64 {
        self.shared.config.retention_secs
    }

    fn describe(&self) -> String {
        let config = &self.shared.config;
        format!(
            "Redis at {} (write-ahead log in {})",
            config.url.redacted(),
            config.wal_dir.display()
        )
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.flush().await
    }

    fn prometheus_text(&self) -> String {
        self.metrics_text()
    }

    fn replica_link(&self) -> Option<ReplicaLink> {
        let config = &self.shared.config;
        Some(ReplicaLink {
            url: config.url.clone(),
            replica: self.shared.replica_id.clone(),
            ttl_secs: config.retention_secs,
            timeout: config.timeout,
        })
    }
}
