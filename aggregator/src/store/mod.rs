//! Where sketches live: the [`SketchStore`] trait, with an embedded
//! (in-memory) implementation and Redis. Everything above the store sees
//! only the trait, including shutdown, `/metrics` and replica sharing.

pub mod memory;
pub mod redis;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use apis::RetentionDuration;
use async_trait::async_trait;

use crate::signal::{SeriesKey, SignalKind};
use crate::sketch::{SeriesSketch, WindowedSketch};
use crate::telemetry::SelfMetrics;
use memory::{MemoryStore, MemoryStoreConfig};
use redis::{RedisArgs, RedisStore, RedisStoreConfig};

/// Store flags: retention for both stores, and Redis when `--redis-url` is set.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// How long sketches are kept (e.g. 30d, 12h). Queries cannot reach further back.
    #[arg(long, env = "SIGNAL_AGGREGATOR_RETENTION", default_value = "30d")]
    pub retention: RetentionDuration,

    /// Age after which minute windows are folded into hour windows.
    #[arg(long, env = "SIGNAL_AGGREGATOR_ROLLUP_AFTER", default_value = "2h")]
    pub rollup_after: RetentionDuration,

    #[command(flatten)]
    pub redis: RedisArgs,
}

/// Which store the flags select, configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    Embedded(MemoryStoreConfig),
    Redis(RedisStoreConfig),
}

impl StoreArgs {
    pub fn choice(&self) -> StoreChoice {
        let retention_secs = self.retention.as_secs();
        let rollup_after_secs = self.rollup_after.as_secs();
        match RedisStoreConfig::from_args(&self.redis, retention_secs, rollup_after_secs) {
            Some(redis) => StoreChoice::Redis(redis),
            None => StoreChoice::Embedded(MemoryStoreConfig {
                retention_secs,
                rollup_after_secs,
            }),
        }
    }
}

impl StoreChoice {
    /// Opens the store (Redis: replays its write-ahead log first).
    pub fn open(self, metrics: Arc<SelfMetrics>) -> anyhow::Result<Arc<dyn SketchStore>> {
        Ok(match self {
            StoreChoice::Embedded(config) => Arc::new(MemoryStore::new(config)),
            StoreChoice::Redis(config) => {
                Arc::new(RedisStore::open(config, metrics).context("cannot open the Redis store")?)
            }
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Which series and which time range a query reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreQuery {
    /// `None` reads every tenant (operator and fleet queries only).
    pub tenant: Option<String>,
    pub kind: SignalKind,
    pub cluster: Option<String>,
    pub model: Option<String>,
    pub from_unix_secs: u64,
    pub to_unix_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreHealth {
    pub ready: bool,
    pub detail: String,
    /// Series currently held, when the store can count them cheaply.
    pub series: Option<u64>,
}

/// What one maintenance pass did (roll-ups and expiry).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Minute windows folded into their hour window.
    pub rolled_up: u64,
    /// Windows deleted because they ended before the retention.
    pub expired: u64,
    /// Windows that could not be rolled up, packed or unpacked (kept as they were).
    pub errors: u64,
}

/// How replicas sharing one store reach each other, so they can share other
/// records (cluster activity) the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaLink {
    pub url: redis::RedisUrl,
    /// This process, among the replicas.
    pub replica: String,
    /// How long a shared record outlives its last update.
    pub ttl_secs: u64,
    pub timeout: Duration,
}

#[async_trait]
pub trait SketchStore: Send + Sync {
    /// Merges sketches into the store; returns once they are durable for this
    /// store's notion of durable.
    async fn merge(&self, sketches: Vec<WindowedSketch>) -> Result<(), StoreError>;

    /// Every matching series, its windows in range merged into one sketch.
    async fn query(&self, query: &StoreQuery)
    -> Result<Vec<(SeriesKey, SeriesSketch)>, StoreError>;

    async fn health(&self) -> StoreHealth;

    /// Periodic housekeeping as of `now_unix_secs`: roll minute windows into
    /// hours and delete what is past the retention. Stores whose backend expires
    /// keys by itself may do less here.
    async fn run_maintenance(&self, now_unix_secs: u64) -> Result<MaintenanceReport, StoreError>;

    /// How far back this store keeps data; queries reaching further are refused.
    fn retention_secs(&self) -> u64;

    /// One line for people: which store, and where.
    fn describe(&self) -> String;

    /// Makes durable what the store buffers; called once at shutdown. What a
    /// failed close leaves behind must survive a restart.
    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// The store's own gauges and counters, in Prometheus text, for `/metrics`.
    fn prometheus_text(&self) -> String {
        String::new()
    }

    /// How to reach the other replicas of this store; `None` when the store
    /// belongs to this process alone.
    fn replica_link(&self) -> Option<ReplicaLink> {
        None
    }
}
