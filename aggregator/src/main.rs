//! `signal-aggregator`: OTLP in on 4317/4318, query API on 8080.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser as _;
use tokio::net::TcpListener;
use tokio::sync::watch;

use signal_aggregator::auth::issuer::IssuedTokens;
use signal_aggregator::auth::{
    IngestTokenSource, IngestTokens, QueryAccess, Reloading, parse_ingest_tokens,
    parse_query_tokens,
};
use signal_aggregator::config::{Config, LogFormat, StoreChoice};
use signal_aggregator::directory::Directory;
use signal_aggregator::ingest;
use signal_aggregator::normalize::Normalizer;
use signal_aggregator::pipeline::{ExportSink, Pipeline};
use signal_aggregator::serve::{self, ApiState};
use signal_aggregator::status;
use signal_aggregator::store::SketchStore;
use signal_aggregator::store::memory::MemoryStore;
use signal_aggregator::store::redis::RedisStore;
use signal_aggregator::telemetry::SelfMetrics;

/// How often the store rolls minutes into hours and expires old windows.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(30);
/// How long in-flight requests get to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

fn main() -> ExitCode {
    let config = Config::parse();
    init_logging(config.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("signal-aggregator: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "signal-aggregator stopped");
            eprintln!("signal-aggregator: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

/// The running store, plus what only the concrete Redis store offers.
struct Store {
    store: Arc<dyn SketchStore>,
    redis: Option<Arc<RedisStore>>,
    description: String,
}

fn build_store(choice: StoreChoice, metrics: &Arc<SelfMetrics>) -> anyhow::Result<Store> {
    Ok(match choice {
        StoreChoice::Embedded(config) => Store {
            store: Arc::new(MemoryStore::new(config)),
            redis: None,
            description: "embedded in-memory store".into(),
        },
        StoreChoice::Redis(config) => {
            let description = format!(
                "Redis at {} (write-ahead log in {})",
                redact_url(&config.url),
                config.wal_dir.display()
            );
            let redis = Arc::new(
                RedisStore::open(config, metrics.clone()).context("cannot open the Redis store")?,
            );
            Store {
                store: redis.clone(),
                redis: Some(redis),
                description,
            }
        }
    })
}

/// `redis://user:secret@host` → `redis://user:***@host`: URLs reach logs.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

async fn bind(addr: std::net::SocketAddr, what: &str, flag: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for {what} on {addr} (change it with {flag})"))
}

async fn run(config: Config) -> anyhow::Result<()> {
    config.validate()?;
    config.tokens.validate()?;
    let metrics = Arc::new(SelfMetrics::default());
    let Store {
        store,
        redis,
        description,
    } = build_store(config.store(), &metrics)?;
    let activity = status::Activity::new(serve::system_clock());
    // With Redis, replicas merge their cluster activity there, so each
    // writes the same InferenceCluster status.
    let activity = match &redis {
        Some(redis) => activity.shared_through(status::SharedActivity::for_store(redis)),
        None => activity,
    };
    let store = status::track_activity(store, &activity);
    let directory = Directory::new();
    let sink: Arc<dyn ExportSink> = Arc::new(
        Pipeline::new(
            Normalizer::new(config.normalize()),
            store.clone(),
            metrics.clone(),
        )
        .with_loss_observer(Arc::new(activity.clone())),
    );
    let mut ingest_config = config.ingest();
    let reload = Some(Duration::from_secs(
        config.tokens_reload_interval.as_secs().max(1),
    ));
    // Made before anything binds: whether tokens are issued decides whether
    // ingest is authenticated, and so where it may listen.
    let kube = config.status.client().await?;
    let issuance = match (&kube, config.tokens.issue_ingest_tokens) {
        (Some(client), true) => {
            let namespace = config
                .tokens
                .namespace(std::env::var("POD_NAMESPACE").ok())?;
            let issued = IssuedTokens::new(serve::system_clock());
            Some((client.clone(), namespace, issued))
        }
        (None, true) => {
            tracing::info!("not issuing ingest tokens: Kubernetes is off");
            None
        }
        (_, false) => None,
    };
    let mut token_sources: Vec<Arc<dyn IngestTokenSource>> = Vec::new();
    if let Some(path) = &config.ingest_tokens_file {
        let tokens =
            Reloading::open(path, parse_ingest_tokens, reload).context("--ingest-tokens-file")?;
        tracing::info!(file = %path.display(), tokens = tokens.current().len(), "ingest accepts the per-cluster tokens in the token file");
        token_sources.push(tokens);
    }
    if let Some((_, namespace, issued)) = &issuance {
        tracing::info!(%namespace, "issuing ingest tokens: Secret signals-ingest-<cluster> per InferenceCluster; ingest accepts them");
        token_sources.push(Arc::new(issued.clone()));
    }
    let ingest_protected = !token_sources.is_empty();
    if ingest_protected {
        ingest_config.authenticator = Arc::new(IngestTokens::from_sources(token_sources));
    }
    let access = match &config.query_tokens_file {
        Some(path) => {
            let tokens =
                Reloading::open(path, parse_query_tokens, reload).context("--query-tokens-file")?;
            tracing::info!(file = %path.display(), tokens = tokens.current().len(), metrics_open = config.metrics_open, "the query API requires bearer tokens");
            QueryAccess::with_tokens(tokens, config.metrics_open)
        }
        None => QueryAccess::open(),
    };
    let api_protected = !access.is_open();
    let (grpc_bind, grpc_narrowed) = Config::bind_addr(config.otlp_grpc_addr, ingest_protected);
    let (http_bind, http_narrowed) = Config::bind_addr(config.otlp_http_addr, ingest_protected);
    let (api_bind, api_narrowed) = Config::bind_addr(config.api_addr, api_protected);
    if grpc_narrowed || http_narrowed {
        tracing::warn!(
            otlp_grpc = %grpc_bind, otlp_http = %http_bind,
            "NO INGEST TOKENS: OTLP ingest is unauthenticated, so it listens on loopback only; \
             run with Kubernetes (issued tokens) or set --ingest-tokens-file to accept agents \
             from other hosts (docs/auth.md)"
        );
    }
    if api_narrowed {
        tracing::warn!(
            api = %api_bind,
            "NO QUERY TOKENS: the query API is open, so it listens on loopback only; \
             set --query-tokens-file to serve other hosts (docs/auth.md)"
        );
    }

    let grpc_listener = bind(grpc_bind, "OTLP/gRPC", "--otlp-grpc-addr").await?;
    let http_listener = bind(http_bind, "OTLP/HTTP", "--otlp-http-addr").await?;
    let api_listener = bind(api_bind, "the query API", "--api-addr").await?;
    let grpc_addr = reachable(grpc_listener.local_addr()?);
    let http_addr = reachable(http_listener.local_addr()?);
    let api_addr = reachable(api_listener.local_addr()?);

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };

    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(ingest::serve_grpc(
        grpc_listener,
        sink.clone(),
        ingest_config.clone(),
        metrics.clone(),
        stopped(),
    ));
    let http_router = ingest::http_router(sink, ingest_config, metrics.clone());
    let http_stop = stopped();
    tasks.spawn(async move {
        axum::serve(http_listener, http_router)
            .with_graceful_shutdown(http_stop)
            .await
            .context("OTLP/HTTP server failed")
    });
    let mut api_state = ApiState::new(store.clone(), metrics);
    // Fleet answers include only what the directory says opted in; until the
    // XRs are listed (or without Kubernetes) that is nothing.
    api_state.fleet = Arc::new(directory.clone());
    api_state.prices = Arc::new(directory.clone());
    api_state.access = Arc::new(access);
    if let Some(redis) = &redis {
        let redis = redis.clone();
        api_state
            .extra_metrics
            .push(Arc::new(move || redis.prometheus_text()));
    }
    if let Some(shared) = activity.shared().cloned() {
        api_state
            .extra_metrics
            .push(Arc::new(move || shared.prometheus_text()));
    }
    let api = serve::router(api_state);
    let api_stop = stopped();
    tasks.spawn(async move {
        serve::serve(api_listener, api, api_stop)
            .await
            .context("query API server failed")
    });
    if let Some((client, namespace, issued)) = issuance {
        let issuer = signal_aggregator::auth::issuer::run(
            client,
            namespace,
            config.tokens.policy(),
            directory.clone(),
            issued,
            serve::system_clock(),
            stopped(),
        );
        tasks.spawn(async move {
            issuer.await;
            Ok(())
        });
    }
    tasks.spawn(status::run_with_client(
        kube,
        config.status.clone(),
        store.clone(),
        directory,
        activity,
        serve::system_clock(),
        stopped(),
    ));
    tasks.spawn(maintain(store, stopped()));

    tracing::info!(
        otlp_grpc = %grpc_addr,
        otlp_http = %http_addr,
        api = %api_addr,
        store = %description,
        retention = %config.retention,
        "signal-aggregator ready"
    );
    for (narrowed, what) in [
        (
            grpc_narrowed || http_narrowed,
            "OTLP ingest has no tokens (--ingest-tokens-file, or issued ones with Kubernetes)",
        ),
        (
            api_narrowed,
            "the query API has no tokens (--query-tokens-file)",
        ),
    ] {
        if narrowed {
            announce(&format!("WARNING: {what}: listening on loopback only"));
        }
    }
    announce(&format!(
        "signal-aggregator ready ({description}, retention {retention})\n  \
         send OTLP to   grpc://{grpc_addr}  or  http://{http_addr}/v1/metrics, http://{http_addr}/v1/traces\n  \
         query at       http://{api_addr}/v1/tenants/<tenant>/signals/RequestLifecycle?window=5m\n  \
         API reference  http://{api_addr}/openapi.json   metrics  http://{api_addr}/metrics",
        retention = config.retention,
    ));

    let first_exit = tokio::select! {
        signal = shutdown_signal() => {
            tracing::info!(signal, "shutting down: draining in-flight requests");
            None
        }
        finished = tasks.join_next() => finished,
    };
    let _ = stop_tx.send(true);
    let result = match first_exit {
        Some(Ok(Err(error))) => Err(error),
        Some(Err(join_error)) => Err(anyhow::anyhow!("a server task panicked: {join_error}")),
        Some(Ok(Ok(()))) => Err(anyhow::anyhow!("a server stopped unexpectedly")),
        None => Ok(()),
    };
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while let Some(finished) = tasks.join_next().await {
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
    if let Some(redis) = redis {
        // What is not flushed stays in the write-ahead log and is replayed on
        // the next start, so a failed final flush loses nothing.
        match tokio::time::timeout(DRAIN_TIMEOUT, redis.flush()).await {
            Ok(Ok(())) => tracing::info!("flushed pending sketches to Redis"),
            Ok(Err(error)) => {
                tracing::warn!(%error, "final Redis flush failed; the write-ahead log keeps the data")
            }
            Err(_) => {
                tracing::warn!("final Redis flush timed out; the write-ahead log keeps the data")
            }
        }
    }
    tracing::info!("signal-aggregator stopped");
    result
}

/// The address to tell people: a wildcard bind is reachable as localhost.
fn reachable(addr: std::net::SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("localhost:{}", addr.port())
    } else {
        addr.to_string()
    }
}

async fn maintain(
    store: Arc<dyn SketchStore>,
    stopped: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut ticker = tokio::time::interval(MAINTENANCE_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = &mut stopped => return Ok(()),
            _ = ticker.tick() => {}
        }
        let now = (serve::system_clock())();
        match store.run_maintenance(now).await {
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
    use super::redact_url;

    #[test]
    fn redacts_redis_passwords() {
        assert_eq!(
            redact_url("redis://u:pw@h:6379/0"),
            "redis://u:***@h:6379/0"
        );
        assert_eq!(redact_url("rediss://:pw@h"), "rediss://:***@h");
        assert_eq!(redact_url("redis://h:6379"), "redis://h:6379");
    }
}
