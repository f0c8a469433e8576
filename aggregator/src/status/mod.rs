//! The status writer: watches InferenceCluster and ModelService XRs into the
//! [`Directory`](crate::directory::Directory) and writes what the aggregator
//! learned back onto them by server-side apply (`docs/status.md`).

pub mod activity;
pub mod change;
pub mod compute;
pub mod cost;
pub mod shared;
pub mod writer;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use apis::RetentionDuration;
use clap::{Args, ValueEnum};

pub use activity::{Activity, ClusterActivity, DroppedOnXr, track_activity};
pub use shared::SharedActivity;
pub use writer::{PassReport, StatusWriter, WriterConfig};

use crate::directory::{self, Directory};
use crate::serve::Clock;
use crate::store::SketchStore;

/// How often each replica pushes its cluster activity to the shared record
/// (with the Redis store); status lags what replicas recorded by about this.
pub const SHARED_PUSH_INTERVAL: Duration = Duration::from_secs(1);

/// The field manager of every status write (`?fieldManager=`).
pub const FIELD_MANAGER: &str = "signal-aggregator";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KubeMode {
    /// Use in-cluster config or a kubeconfig when one is found; otherwise run
    /// without Kubernetes (logged at start).
    Auto,
    /// Require Kubernetes: fail at start without a usable config.
    On,
    /// Never talk to Kubernetes: no XR watch, no status writes.
    Off,
}

/// Kubernetes flags: the XR watch (fleet directory) and the status writer.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Whether to watch the XRs and write their status.
    #[arg(
        long = "kube",
        env = "SIGNAL_AGGREGATOR_KUBE",
        value_enum,
        default_value = "auto"
    )]
    pub kube: KubeMode,

    /// Kubeconfig to use instead of in-cluster config / `$KUBECONFIG` / `~/.kube/config`.
    #[arg(long, env = "SIGNAL_AGGREGATOR_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

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

    /// The Kubernetes client these flags ask for; `None` when Kubernetes is
    /// off (by flag, or in auto mode because no config was found).
    pub async fn client(&self) -> anyhow::Result<Option<kube::Client>> {
        if self.kube == KubeMode::Off {
            tracing::info!("Kubernetes is off (--kube off): no XR watch, no status writes");
            return Ok(None);
        }
        let config = match &self.kubeconfig {
            Some(path) => {
                let kubeconfig = kube::config::Kubeconfig::read_from(path)
                    .with_context(|| format!("cannot read --kubeconfig {}", path.display()));
                match kubeconfig {
                    Ok(k) => kube::Config::from_custom_kubeconfig(k, &Default::default())
                        .await
                        .with_context(|| format!("unusable --kubeconfig {}", path.display())),
                    Err(e) => Err(e),
                }
            }
            None => kube::Config::infer()
                .await
                .context("no in-cluster config and no usable kubeconfig"),
        };
        let config = match (config, self.kube) {
            (Ok(config), _) => config,
            (Err(error), KubeMode::On) => return Err(error.context("--kube on")),
            (Err(error), _) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "Kubernetes is off: no cluster config found (--kube auto); XR status will not be written and fleet opt-ins are unknown"
                );
                return Ok(None);
            }
        };
        tracing::info!(api_server = %config.cluster_url, "Kubernetes is on: watching XRs and writing their status");
        Ok(Some(
            kube::Client::try_from(config).context("cannot build the Kubernetes client")?,
        ))
    }
}

/// Watches the XRs into `directory` and runs the status writer until
/// `stopped`. Without Kubernetes it just waits for `stopped`.
pub async fn run(
    args: StatusArgs,
    store: Arc<dyn SketchStore>,
    directory: Directory,
    activity: Activity,
    clock: Clock,
    stopped: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let client = args.client().await?;
    run_with_client(client, args, store, directory, activity, clock, stopped).await
}

/// [`run`] with a client made by the caller (`None`: Kubernetes is off), so
/// the binary's other Kubernetes users (the token issuer) share it.
pub async fn run_with_client(
    client: Option<kube::Client>,
    args: StatusArgs,
    store: Arc<dyn SketchStore>,
    directory: Directory,
    activity: Activity,
    clock: Clock,
    stopped: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let wait = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    // Every replica shares what it recorded, whether or not it writes status.
    let pushes = tokio::spawn(shared::run_pushes(
        activity.clone(),
        SHARED_PUSH_INTERVAL,
        wait(),
    ));
    let Some(client) = client else {
        stopped.await;
        let _ = stop_tx.send(true);
        let _ = pushes.await;
        return Ok(());
    };
    let watch = tokio::spawn(directory::watch::run(
        client.clone(),
        directory.clone(),
        wait(),
    ));
    let writer = StatusWriter::new(client, directory, store, activity, args.writer_config());
    let interval = Duration::from_secs(args.status_interval.as_secs().max(1));
    let write = tokio::spawn(writer.run(clock, interval, wait()));
    stopped.await;
    let _ = stop_tx.send(true);
    let _ = tokio::join!(watch, write, pushes);
    Ok(())
}
