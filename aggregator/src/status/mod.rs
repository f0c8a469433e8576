//! The status writer: writes what the aggregator learned back onto the
//! InferenceCluster and ModelService XRs the
//! [`Directory`](crate::directory::Directory) knows, by server-side apply
//! (`docs/status.md`). Numbers come from the read model ([`crate::query`]),
//! cluster activity from the pipeline's tap ([`crate::pipeline::activity`]).

pub mod change;
pub mod compute;
pub mod cost;
pub mod writer;

use std::sync::Arc;
use std::time::Duration;

use apis::RetentionDuration;
use clap::Args;

pub use writer::{PassReport, StatusWriter, WriterConfig};

use crate::clock::Clock;
use crate::directory::Directory;
use crate::pipeline::activity::Activity;
use crate::store::SketchStore;

/// The field manager of every status write (`?fieldManager=`).
pub const FIELD_MANAGER: &str = "signal-aggregator";

/// Status writer flags (with Kubernetes on).
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// How often status is recomputed (writes still need a change and the minimum interval).
    #[arg(long, env = "SIGNAL_AGGREGATOR_STATUS_INTERVAL", default_value = "10s")]
    pub status_interval: RetentionDuration,

    /// At most one status write per XR per this interval.
    #[arg(
        long,
        env = "SIGNAL_AGGREGATOR_STATUS_MIN_INTERVAL",
        default_value = "30s"
    )]
    pub status_min_interval: RetentionDuration,

    /// Relative change of a number (quantile, rate) that makes a write due, 0..1.
    #[arg(long, env = "SIGNAL_AGGREGATOR_STATUS_CHANGE_THRESHOLD", default_value_t = 0.05,
          value_parser = parse_fraction)]
    pub status_change_threshold: f64,

    /// Window the ModelService metrics cover.
    #[arg(long, env = "SIGNAL_AGGREGATOR_STATUS_WINDOW", default_value = "5m")]
    pub status_window: RetentionDuration,

    /// Timestamps in status are rounded down to this (a write is due when one crosses it).
    #[arg(
        long,
        env = "SIGNAL_AGGREGATOR_STATUS_TIMESTAMP_RESOLUTION",
        default_value = "1m"
    )]
    pub status_timestamp_resolution: RetentionDuration,

    /// Also write `status.signals.enabledKinds`. Leave off when function-signals
    /// is in the composition: it owns that field.
    #[arg(long, env = "SIGNAL_AGGREGATOR_STATUS_ENABLED_KINDS")]
    pub status_enabled_kinds: bool,

    /// A cluster's agent counts as reporting if its data was stored within this long.
    #[arg(
        long,
        env = "SIGNAL_AGGREGATOR_AGENT_REPORTING_TIMEOUT",
        default_value = "2m"
    )]
    pub agent_reporting_timeout: RetentionDuration,
}

fn parse_fraction(raw: &str) -> Result<f64, String> {
    let value: f64 = raw
        .parse()
        .map_err(|_| format!("{raw:?} is not a number; want a fraction such as 0.05"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "{value} is outside 0..1; want a fraction such as 0.05"
        ))
    }
}

impl StatusArgs {
    pub fn writer_config(&self) -> WriterConfig {
        WriterConfig {
            settings: compute::Settings {
                window_secs: self.status_window.as_secs(),
                agent_timeout_secs: self.agent_reporting_timeout.as_secs(),
                timestamp_resolution_secs: self.status_timestamp_resolution.as_secs(),
                write_enabled_kinds: self.status_enabled_kinds,
            },
            threshold: change::Threshold {
                relative: self.status_change_threshold,
            },
            min_interval_secs: self.status_min_interval.as_secs(),
        }
    }
}

/// Writes status until `stopped`: one pass every `--status-interval`.
pub async fn run(
    client: kube::Client,
    args: StatusArgs,
    directory: Directory,
    store: Arc<dyn SketchStore>,
    activity: Activity,
    clock: Clock,
    stopped: impl std::future::Future<Output = ()>,
) {
    let writer = StatusWriter::new(client, directory, store, activity, args.writer_config());
    let interval = Duration::from_secs(args.status_interval.as_secs().max(1));
    writer.run(clock, interval, stopped).await;
}
