//! The composition root: builds every part from the flags, wires them, runs
//! them until a stop signal, then drains. In the manner of Vector's `app.rs`:
//! [`prepare`](Prepared::prepare) (decide modes, open the store, bind
//! listeners; any failure here stops the start with a message naming the
//! flag) → [`start`](Prepared::start) (spawn every task under one
//! cancellation token) → [`Running::run`] (until SIGTERM/SIGINT or a task
//! ends) → [`Running::shutdown`] (cancel, drain, close the store).

pub mod config;
pub mod kube;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiState};
use crate::auth::issuer::{self, IssuedTokens, RotationPolicy};
use crate::auth::{
    IngestTokenSource, IngestTokens, QueryAccess, Reloading, parse_ingest_tokens,
    parse_query_tokens,
};
use crate::clock::{Clock, system_clock};
use crate::directory::{self, Directory};
use crate::forward::{self, Forwarding, ForwardingSink};
use crate::ingest::{self, IngestConfig};
use crate::normalize::Normalizer;
use crate::pipeline::activity::{Activity, track_activity};
use crate::pipeline::shared_activity::{self, SHARED_PUSH_INTERVAL, SharedActivity};
use crate::pipeline::{ExportSink, Pipeline};
use crate::status::{self, StatusArgs};
use crate::store::SketchStore;
use crate::telemetry::{KnownXrs, SelfMetrics};
pub use config::{Config, LogFormat};

/// How often the store rolls minutes into hours and expires old windows.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(30);
/// How long in-flight requests get to finish after a shutdown signal, and
/// the store to close after that.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// Prepares, starts and runs the aggregator until a stop signal.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let mut running = Prepared::prepare(config).await?.start();
    let outcome = running.run().await;
    running.shutdown(outcome).await
}

/// A listener bound where the flags allow, and how people reach it.
struct Listener {
    socket: TcpListener,
    reachable: String,
    /// Bound to loopback instead of the configured address: unauthenticated.
    narrowed: bool,
}

/// Token issuance, when Kubernetes is on and `--issue-ingest-tokens` is set.
struct Issuance {
    namespace: String,
    policy: RotationPolicy,
    issued: IssuedTokens,
}

/// Everything built and bound, nothing running yet.
pub struct Prepared {
    clock: Clock,
    metrics: Arc<SelfMetrics>,
    store: Arc<dyn SketchStore>,
    activity: Activity,
    directory: Directory,
    sink: Arc<dyn ExportSink>,
    forwarding: Arc<Forwarding>,
    services_file: Option<std::path::PathBuf>,
    ingest: IngestConfig,
    access: QueryAccess,
    kube: Option<::kube::Client>,
    kube_announcement: String,
    issuance: Option<Issuance>,
    status: StatusArgs,
    grpc: Listener,
    http: Listener,
    api: Listener,
    retention: apis::RetentionDuration,
}

impl Prepared {
    pub async fn prepare(config: Config) -> anyhow::Result<Prepared> {
        config.validate()?;
        let clock = system_clock();
        let metrics = Arc::new(SelfMetrics::default());
        let store = config.store.choice().open(metrics.clone())?;
        let mut activity = Activity::new(clock.clone());
        // With Redis, replicas merge their cluster activity there, so each
        // writes the same InferenceCluster status.
        if let Some(link) = store.replica_link() {
            activity = activity.shared_through(SharedActivity::through(link));
        }
        let store = track_activity(store, &activity);
        let sink: Arc<dyn ExportSink> = Arc::new(
            Pipeline::new(
                Normalizer::new(config.normalize.config()),
                store.clone(),
                metrics.clone(),
            )
            .with_loss_observer(Arc::new(activity.clone())),
        );
        // Spans of ModelServices with traces on also go to their forwarders.
        let forwarding = Forwarding::new(config.forward.config(), metrics.clone());
        let sink: Arc<dyn ExportSink> = Arc::new(ForwardingSink::new(sink, forwarding.clone()));

        // Decided before anything binds: whether tokens are issued decides
        // whether ingest is authenticated, and so where it may listen.
        let kube = config.kube.connect().await?;
        let issuance = match (&kube.client, config.tokens.issue_ingest_tokens) {
            (Some(_), true) => Some(Issuance {
                namespace: config
                    .tokens
                    .namespace(std::env::var("POD_NAMESPACE").ok())?,
                policy: config.tokens.policy(),
                issued: IssuedTokens::new(clock.clone()),
            }),
            _ => None,
        };
        let mut ingest = config.ingest.config();
        let ingest_protected = match ingest_tokens(&config, issuance.as_ref())? {
            Some(tokens) => {
                ingest.authenticator = tokens;
                true
            }
            None => false,
        };
        let access = query_access(&config)?;

        let grpc = bind(
            config.ingest.otlp_grpc_addr,
            ingest_protected,
            "OTLP/gRPC",
            "--otlp-grpc-addr",
        )
        .await?;
        let http = bind(
            config.ingest.otlp_http_addr,
            ingest_protected,
            "OTLP/HTTP",
            "--otlp-http-addr",
        )
        .await?;
        let api = bind(
            config.api.api_addr,
            !access.is_open(),
            "the query API",
            "--api-addr",
        )
        .await?;
        if grpc.narrowed || http.narrowed {
            tracing::warn!(
                otlp_grpc = %grpc.reachable, otlp_http = %http.reachable,
                "NO INGEST TOKENS: OTLP ingest is unauthenticated, so it listens on loopback only; \
                 run with Kubernetes (issued tokens) or set --ingest-tokens-file to accept agents \
                 from other hosts (docs/auth.md)"
            );
        }
        if api.narrowed {
            tracing::warn!(
                api = %api.reachable,
                "NO QUERY TOKENS: the query API is open, so it listens on loopback only; \
                 set --query-tokens-file to serve other hosts (docs/auth.md)"
            );
        }
        Ok(Prepared {
            clock,
            metrics,
            store,
            activity,
            directory: Directory::new(),
            sink,
            forwarding,
            services_file: config.forward.model_services_file.clone(),
            ingest,
            access,
            kube: kube.client,
            kube_announcement: kube.announcement,
            issuance,
            status: config.status,
            grpc,
            http,
            api,
            retention: config.store.retention,
        })
    }

    /// Spawns every task; all stop when the returned [`Running`] is shut down.
    pub fn start(self) -> Running {
        let cancel = CancellationToken::new();
        let stopped = || cancel.clone().cancelled_owned();
        let mut tasks = JoinSet::new();

        tasks.spawn(ingest::serve_grpc(
            self.grpc.socket,
            self.sink.clone(),
            self.ingest.clone(),
            self.metrics.clone(),
            stopped(),
        ));
        let http_router = ingest::http_router(self.sink, self.ingest, self.metrics.clone());
        let http_stop = stopped();
        let http_socket = self.http.socket;
        tasks.spawn(async move {
            axum::serve(http_socket, http_router)
                .with_graceful_shutdown(http_stop)
                .await
                .context("OTLP/HTTP server failed")
        });

        let mut api_state = ApiState::new(self.store.clone(), self.metrics.clone());
        // Fleet answers include only what the directory says opted in; until
        // the XRs are listed (or without Kubernetes) that is nothing.
        api_state.fleet = Arc::new(self.directory.clone());
        api_state.prices = Arc::new(self.directory.clone());
        api_state.access = Arc::new(self.access);
        let api_router = api::router(api_state);
        let api_stop = stopped();
        let api_socket = self.api.socket;
        tasks.spawn(async move {
            api::serve(api_socket, api_router, api_stop)
                .await
                .context("query API server failed")
        });

        if self.kube.is_none()
            && let Some(path) = &self.services_file
        {
            match forward::load_services_file(path, &self.directory) {
                Ok((services, clusters)) => {
                    tracing::info!(services, clusters, file = %path.display(), "ModelServices and InferenceClusters read from a file (no Kubernetes)")
                }
                Err(error) => tracing::error!(%error, "cannot read --model-services-file"),
            }
        }
        let enricher: Arc<dyn forward::Enricher> = Arc::new(forward::enrich::PrefixWarmth::new(
            self.store.clone(),
            self.clock.clone(),
        ));
        tasks.spawn(finished(forward::run(
            self.forwarding.clone(),
            self.directory.clone(),
            enricher,
            cancel.clone(),
        )));
        // Every replica shares what it recorded, whether or not it writes status.
        tasks.spawn(finished(shared_activity::run_pushes(
            self.activity.clone(),
            SHARED_PUSH_INTERVAL,
            stopped(),
        )));
        if let Some(client) = &self.kube {
            tasks.spawn(finished(directory::watch::run(
                client.clone(),
                self.directory.clone(),
                stopped(),
            )));
            tasks.spawn(finished(count_known_xrs(
                self.directory.clone(),
                self.metrics.clone(),
                stopped(),
            )));
            tasks.spawn(finished(status::run(
                client.clone(),
                self.status,
                self.directory.clone(),
                self.store.clone(),
                self.activity,
                self.clock.clone(),
                stopped(),
            )));
        }
        if let (Some(client), Some(issuance)) = (&self.kube, self.issuance) {
            tracing::info!(namespace = %issuance.namespace,
                "issuing ingest tokens: Secret signals-ingest-<cluster> per InferenceCluster; ingest accepts them");
            tasks.spawn(finished(issuer::run(
                client.clone(),
                issuance.namespace,
                issuance.policy,
                self.directory.clone(),
                issuance.issued,
                self.clock.clone(),
                stopped(),
            )));
        }
        tasks.spawn(maintain(self.store.clone(), self.clock, stopped()));

        let description = self.store.describe();
        tracing::info!(
            otlp_grpc = %self.grpc.reachable,
            otlp_http = %self.http.reachable,
            api = %self.api.reachable,
            store = %description,
            retention = %self.retention,
            kubernetes = %self.kube_announcement,
            "signal-aggregator ready"
        );
        if self.grpc.narrowed || self.http.narrowed {
            announce(
                "WARNING: OTLP ingest has no tokens (--ingest-tokens-file, or issued ones with Kubernetes): listening on loopback only",
            );
        }
        if self.api.narrowed {
            announce(
                "WARNING: the query API has no tokens (--query-tokens-file): listening on loopback only",
            );
        }
        announce(&format!(
            "signal-aggregator ready ({description}, retention {retention})\n  \
             {kubernetes}\n  \
             send OTLP to   grpc://{grpc}  or  http://{http}/v1/metrics, http://{http}/v1/traces\n  \
             query at       http://{api}/v1/tenants/<tenant>/signals/RequestLifecycle?window=5m\n  \
             API reference  http://{api}/openapi.json   metrics  http://{api}/metrics",
            retention = self.retention,
            kubernetes = self.kube_announcement,
            grpc = self.grpc.reachable,
            http = self.http.reachable,
            api = self.api.reachable,
        ));
        Running {
            tasks,
            cancel,
            store: self.store,
        }
    }
}

/// Why [`Running::run`] returned.
pub enum Outcome {
    /// SIGTERM or SIGINT.
    Signalled(&'static str),
    /// A task ended on its own: a server failed, or something stopped early.
    TaskEnded(anyhow::Error),
}

pub struct Running {
    tasks: JoinSet<anyhow::Result<()>>,
    cancel: CancellationToken,
    store: Arc<dyn SketchStore>,
}

impl Running {
    /// Until a stop signal, or until any task ends (none should on its own).
    pub async fn run(&mut self) -> Outcome {
        tokio::select! {
            signal = shutdown_signal() => Outcome::Signalled(signal),
            finished = self.tasks.join_next() => Outcome::TaskEnded(match finished {
                Some(Ok(Err(error))) => error,
                Some(Err(join_error)) => anyhow::anyhow!("a server task panicked: {join_error}"),
                Some(Ok(Ok(()))) | None => anyhow::anyhow!("a server stopped unexpectedly"),
            }),
        }
    }

    /// Stops every task, lets in-flight requests finish (bounded), then
    /// closes the store.
    pub async fn shutdown(mut self, outcome: Outcome) -> anyhow::Result<()> {
        let result = match outcome {
            Outcome::Signalled(signal) => {
                tracing::info!(signal, "shutting down: draining in-flight requests");
                Ok(())
            }
            Outcome::TaskEnded(error) => Err(error),
        };
        self.cancel.cancel();
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while let Some(finished) = self.tasks.join_next().await {
                if let Ok(Err(error)) = finished {
                    tracing::error!(error = format!("{error:#}"), "server failed while draining");
                }
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                timeout_secs = DRAIN_TIMEOUT.as_secs(),
                "gave up waiting for in-flight requests"
            );
        }
        // With Redis, what is not flushed stays in the write-ahead log and is
        // replayed on the next start, so a failed close loses nothing.
        match tokio::time::timeout(DRAIN_TIMEOUT, self.store.close()).await {
            Ok(Ok(())) => tracing::info!("store closed: pending sketches flushed"),
            Ok(Err(error)) => {
                tracing::warn!(%error, "closing the store failed; the write-ahead log keeps the data")
            }
            Err(_) => {
                tracing::warn!("closing the store timed out; the write-ahead log keeps the data")
            }
        }
        tracing::info!("signal-aggregator stopped");
        result
    }
}

/// Per-cluster ingest tokens from the file and/or the issuer; `None` when
/// neither is configured (ingest is then open, on loopback only).
fn ingest_tokens(
    config: &Config,
    issuance: Option<&Issuance>,
) -> anyhow::Result<Option<Arc<IngestTokens>>> {
    let mut sources: Vec<Arc<dyn IngestTokenSource>> = Vec::new();
    if let Some(path) = &config.auth.ingest_tokens_file {
        let tokens = Reloading::open(path, parse_ingest_tokens, reload_interval(config))
            .context("--ingest-tokens-file")?;
        tracing::info!(file = %path.display(), tokens = tokens.current().len(),
            "ingest accepts the per-cluster tokens in the token file");
        sources.push(tokens);
    }
    if let Some(issuance) = issuance {
        sources.push(Arc::new(issuance.issued.clone()));
    }
    Ok((!sources.is_empty()).then(|| Arc::new(IngestTokens::from_sources(sources))))
}

fn query_access(config: &Config) -> anyhow::Result<QueryAccess> {
    let Some(path) = &config.auth.query_tokens_file else {
        return Ok(QueryAccess::open());
    };
    let tokens = Reloading::open(path, parse_query_tokens, reload_interval(config))
        .context("--query-tokens-file")?;
    tracing::info!(file = %path.display(), tokens = tokens.current().len(),
        metrics_open = config.auth.metrics_open, "the query API requires bearer tokens");
    Ok(QueryAccess::with_tokens(tokens, config.auth.metrics_open))
}

fn reload_interval(config: &Config) -> Option<Duration> {
    Some(Duration::from_secs(
        config.auth.tokens_reload_interval.as_secs().max(1),
    ))
}

/// Binds `configured`, or its port on loopback when the listener is
/// unauthenticated: an open endpoint must not be reachable from other hosts
/// by accident.
async fn bind(
    configured: SocketAddr,
    protected: bool,
    what: &str,
    flag: &str,
) -> anyhow::Result<Listener> {
    let (addr, narrowed) = narrow_to_loopback(configured, protected);
    let socket = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for {what} on {addr} (change it with {flag})"))?;
    let reachable = reachable(socket.local_addr()?);
    Ok(Listener {
        socket,
        reachable,
        narrowed,
    })
}

/// `configured`, or the same port on loopback when unprotected (and the
/// bool says it was narrowed).
fn narrow_to_loopback(configured: SocketAddr, protected: bool) -> (SocketAddr, bool) {
    if protected || configured.ip().is_loopback() {
        return (configured, false);
    }
    let loopback: std::net::IpAddr = if configured.is_ipv6() {
        std::net::Ipv6Addr::LOCALHOST.into()
    } else {
        std::net::Ipv4Addr::LOCALHOST.into()
    };
    (SocketAddr::new(loopback, configured.port()), true)
}

/// The address to tell people: a wildcard bind is reachable as localhost.
fn reachable(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("localhost:{}", addr.port())
    } else {
        addr.to_string()
    }
}

/// A task that has no error to report, as the task set expects.
async fn finished(task: impl Future<Output = ()>) -> anyhow::Result<()> {
    task.await;
    Ok(())
}

/// Keeps `/metrics`' view of the directory current: a user asking "does the
/// aggregator see my XR?" reads it there.
async fn count_known_xrs(
    directory: Directory,
    metrics: Arc<SelfMetrics>,
    stopped: impl Future<Output = ()>,
) {
    let mut changes = directory.subscribe();
    tokio::pin!(stopped);
    loop {
        metrics.set_known_xrs(KnownXrs {
            synced: directory.is_synced(),
            inference_clusters: directory.clusters().len(),
            model_services: directory.services().len(),
        });
        tokio::select! {
            _ = &mut stopped => return,
            changed = changes.changed() => if changed.is_err() { return },
        }
    }
}

async fn maintain(
    store: Arc<dyn SketchStore>,
    clock: Clock,
    stopped: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut ticker = tokio::time::interval(MAINTENANCE_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = &mut stopped => return Ok(()),
            _ = ticker.tick() => {}
        }
        match store.run_maintenance(clock()).await {
            Ok(report) => tracing::debug!(
                rolled_up = report.rolled_up,
                expired = report.expired,
                errors = report.errors,
                "store maintenance"
            ),
            Err(error) => {
                tracing::warn!(%error, "store maintenance failed; retrying next interval")
            }
        }
    }
}

/// Resolves on SIGTERM or SIGINT with the signal's name.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        };
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

/// Prints a line for the person who started the aggregator. Whoever reads
/// stdout may have gone (`| head`, a supervisor closing the pipe): that must
/// not stop the service, so write errors are ignored (`println!` panics).
fn announce(text: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unprotected_listeners_bind_to_loopback() {
        let any: SocketAddr = "0.0.0.0:4317".parse().unwrap();
        assert_eq!(
            narrow_to_loopback(any, false),
            ("127.0.0.1:4317".parse().unwrap(), true)
        );
        assert_eq!(narrow_to_loopback(any, true), (any, false));
        let v6: SocketAddr = "[::]:8080".parse().unwrap();
        assert_eq!(
            narrow_to_loopback(v6, false),
            ("[::1]:8080".parse().unwrap(), true)
        );
        let local: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(narrow_to_loopback(local, false), (local, false));
    }
}
