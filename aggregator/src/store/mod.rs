//! Where sketches live: a trait with an embedded (in-memory) implementation and,
//! later, Redis. Ingest and serve only see the trait.

pub mod memory;
pub mod redis;
pub mod wal;

use async_trait::async_trait;

use crate::signal::{SeriesKey, SignalKind};
use crate::sketch::{SeriesSketch, WindowedSketch};

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
    /// Windows that could not be rolled up (kept as they were).
    pub errors: u64,
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
}
