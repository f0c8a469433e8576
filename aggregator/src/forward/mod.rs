//! The trace fan-out: spans of ModelServices with traces on go, raw, to the
//! service's own trace forwarder (the collector function-signals renders in
//! the tenant's namespace), which exports them to the tenant's backend.
//!
//! It sits beside the pipeline as a decorator of its [`ExportSink`]
//! ([`ForwardingSink`]): a traces request is handed to the pipeline as
//! before; once the pipeline has acknowledged it, copies of the spans that
//! have a route are pushed onto their forwarder's bounded queue
//! ([`queue`]) and the request returns. Sending happens in one worker task
//! per forwarder ([`sender`]), so a slow or dead forwarder never slows
//! ingest or sketching: its queue drops the oldest spans, counted on
//! `/metrics` as `modelplane_aggregator_dropped_items_total{signal="traces",
//! reason="forward_queue_full"}`.
//!
//! Routes come from the XR watch ([`Directory`]): a ModelService whose
//! `spec.observability.traces.enabled` is true and whose status names its
//! forwarder's address in its own namespace. Spans of other services go
//! nowhere; spans are matched to a tenant's services only (see [`route`]),
//! and only for the tenants the authenticated cluster's InferenceCluster
//! lists in `spec.signals.traceForwarding.namespaces` (others are dropped as
//! `reason="tenant_not_forwarded_by_cluster"`).
//! Nothing here stores or logs span contents.

pub mod enrich;
pub mod queue;
pub mod route;
pub mod sender;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::directory::Directory;
use crate::pipeline::{ExportError, ExportOutcome, ExportSink};
use crate::signal::Origin;
use crate::telemetry::SelfMetrics;
pub use enrich::{Enricher, NoEnrichment};
use queue::BoundedQueue;
use route::{Route, Routes};

/// Drop reason (`modelplane_aggregator_dropped_items_total{signal="traces"}`)
/// of raw spans whose tenant the authenticated cluster's InferenceCluster
/// does not list in `spec.signals.traceForwarding.namespaces`.
pub const TENANT_NOT_FORWARDED_BY_CLUSTER: &str = "tenant_not_forwarded_by_cluster";

/// Trace fan-out flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ForwardArgs {
    /// Spans kept per trace forwarder while it is slow or down; past this the
    /// oldest are dropped (and counted).
    #[arg(long, env = "SIGNAL_AGGREGATOR_TRACE_FORWARD_QUEUE_SPANS", default_value_t = ForwardConfig::default().queue_spans)]
    pub trace_forward_queue_spans: usize,

    /// Timeout of one export to a trace forwarder, in seconds.
    #[arg(
        long,
        env = "SIGNAL_AGGREGATOR_TRACE_FORWARD_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub trace_forward_timeout_secs: u64,

    /// Longest wait between retries to a forwarder that is down (without
    /// RetryInfo from it), in seconds.
    #[arg(
        long,
        env = "SIGNAL_AGGREGATOR_TRACE_FORWARD_MAX_BACKOFF_SECS",
        default_value_t = 30
    )]
    pub trace_forward_max_backoff_secs: u64,

    /// Compression of the spans sent to trace forwarders: `none` (the
    /// default: the forwarder runs in the same cluster, and compressing a
    /// span with its prompt costs the aggregator many times what ingesting
    /// it does, see BENCHMARKS.md), `zstd` or `gzip`. The forwarder
    /// compresses towards the tenant's backend itself.
    #[arg(
        long,
        env = "SIGNAL_AGGREGATOR_TRACE_FORWARD_COMPRESSION",
        value_enum,
        default_value_t = ForwardCompression::None
    )]
    pub trace_forward_compression: ForwardCompression,

    /// Dial `ADDRESS` (a forwarder's `status.observability.traces.address`)
    /// at `TARGET` instead, as `ADDRESS=TARGET` (repeatable): for an
    /// aggregator outside the cluster's DNS, and for tests.
    #[arg(long, value_parser = parse_resolve)]
    pub trace_forward_resolve: Vec<(String, String)>,

    /// ModelService XRs (YAML documents) to route traces for when the
    /// aggregator runs without Kubernetes (development and tests), and the
    /// InferenceCluster XRs whose `spec.signals.traceForwarding.namespaces`
    /// say which tenants' spans each cluster may forward; with Kubernetes the
    /// XR watch is the only source.
    #[arg(long, env = "SIGNAL_AGGREGATOR_MODEL_SERVICES_FILE")]
    pub model_services_file: Option<std::path::PathBuf>,
}

fn parse_resolve(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .filter(|(a, t)| !a.is_empty() && !t.is_empty())
        .map(|(a, t)| (a.to_string(), t.to_string()))
        .ok_or_else(|| format!("{raw:?} is not ADDRESS=TARGET"))
}

/// Reads ModelService and InferenceCluster XRs from a YAML file into the
/// directory (see [`ForwardArgs::model_services_file`]); returns how many of
/// each. The clusters are replaced only when the file holds one.
pub fn load_services_file(
    path: &std::path::Path,
    directory: &Directory,
) -> anyhow::Result<(usize, usize)> {
    use anyhow::Context as _;
    use serde::Deserialize as _;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let (mut services, mut clusters) = (Vec::new(), Vec::new());
    for document in serde_yaml::Deserializer::from_str(&text) {
        let value = serde_json::Value::deserialize(document)
            .with_context(|| format!("parsing {}", path.display()))?;
        if value.is_null() {
            continue;
        }
        if value.get("kind").and_then(|k| k.as_str()) == Some("InferenceCluster") {
            clusters.push(crate::directory::cluster_from_object(&value)?);
        } else {
            services.push(crate::directory::service_from_object(&value)?);
        }
    }
    let counts = (services.len(), clusters.len());
    if !clusters.is_empty() {
        directory.replace_clusters(clusters);
    }
    directory.replace_services(services);
    Ok(counts)
}

impl ForwardArgs {
    pub fn config(&self) -> ForwardConfig {
        ForwardConfig {
            queue_spans: self.trace_forward_queue_spans.max(1),
            timeout: Duration::from_secs(self.trace_forward_timeout_secs.max(1)),
            max_backoff: Duration::from_secs(self.trace_forward_max_backoff_secs.max(1)),
            resolve: self.trace_forward_resolve.iter().cloned().collect(),
            compression: self.trace_forward_compression,
        }
    }
}

/// How spans are compressed on their way to a forwarder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ForwardCompression {
    #[default]
    None,
    Zstd,
    Gzip,
}

impl ForwardCompression {
    pub fn encoding(self) -> Option<tonic::codec::CompressionEncoding> {
        match self {
            ForwardCompression::None => None,
            ForwardCompression::Zstd => Some(tonic::codec::CompressionEncoding::Zstd),
            ForwardCompression::Gzip => Some(tonic::codec::CompressionEncoding::Gzip),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardConfig {
    pub queue_spans: usize,
    pub timeout: Duration,
    pub max_backoff: Duration,
    /// Forwarder address → where to dial it.
    pub resolve: BTreeMap<String, String>,
    pub compression: ForwardCompression,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig {
            queue_spans: 20_000,
            timeout: Duration::from_secs(10),
            max_backoff: Duration::from_secs(30),
            resolve: BTreeMap::new(),
            compression: ForwardCompression::None,
        }
    }
}

/// Counts of one forwarder, for tests and operators.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardStats {
    /// Spans the forwarder accepted.
    pub forwarded: u64,
    /// Spans dropped because the queue was full (drop-oldest).
    pub dropped_queue_full: u64,
    /// Spans the forwarder refused (not retryable) or rejected in a partial success.
    pub refused: u64,
    /// Send attempts that will be retried.
    pub retries: u64,
    /// gRPC code of the last failed attempt, if the last attempt failed.
    pub last_failure: Option<String>,
}

#[derive(Default)]
pub struct StatsCell(Mutex<ForwardStats>);

impl StatsCell {
    fn accepted(&self, spans: u64, rejected: u64) {
        let mut s = self.0.lock();
        s.forwarded += spans.saturating_sub(rejected);
        s.refused += rejected;
        s.last_failure = None;
    }
    fn refused(&self, spans: u64, code: tonic::Code) {
        let mut s = self.0.lock();
        s.refused += spans;
        s.last_failure = Some(format!("{code:?}"));
    }
    fn retrying(&self, code: tonic::Code) {
        let mut s = self.0.lock();
        s.retries += 1;
        s.last_failure = Some(format!("{code:?}"));
    }
    fn dropped(&self, spans: u64) {
        self.0.lock().dropped_queue_full += spans;
    }
    pub fn snapshot(&self) -> ForwardStats {
        self.0.lock().clone()
    }
}

/// One forwarder: its queue and its worker's counters.
pub struct Target {
    pub tenant: String,
    pub service: String,
    pub address: String,
    pub queue: BoundedQueue,
    pub wake: Notify,
    pub stats: StatsCell,
    metrics: Arc<SelfMetrics>,
    /// Where the worker connects: `address`, unless `--trace-forward-resolve` says otherwise.
    dial: String,
    config: ForwardConfig,
    stop: CancellationToken,
}

/// The routes and the forwarders' queues; shared by the sink and the task
/// that keeps them current ([`run`]).
pub struct Forwarding {
    config: ForwardConfig,
    metrics: Arc<SelfMetrics>,
    routes: RwLock<Arc<Routes>>,
    targets: RwLock<BTreeMap<String, Arc<Target>>>,
}

impl Forwarding {
    pub fn new(config: ForwardConfig, metrics: Arc<SelfMetrics>) -> Arc<Self> {
        Arc::new(Forwarding {
            config,
            metrics,
            routes: RwLock::default(),
            targets: RwLock::default(),
        })
    }

    /// Per forwarder (tenant, service, address): its counters and queued spans.
    pub fn stats(&self) -> Vec<(String, String, String, ForwardStats, usize)> {
        self.targets
            .read()
            .values()
            .map(|t| {
                (
                    t.tenant.clone(),
                    t.service.clone(),
                    t.address.clone(),
                    t.stats.snapshot(),
                    t.queue.queued_spans(),
                )
            })
            .collect()
    }

    /// Makes the routes what the directory says: a worker per new
    /// forwarder, removed forwarders stopped (their queued spans dropped).
    pub fn update_routes(&self, directory: &Directory, enricher: &Arc<dyn Enricher>) {
        let mut routes = Routes {
            tenants_by_cluster: directory
                .clusters()
                .iter()
                .filter(|c| !c.trace_forwarding_namespaces.is_empty())
                .map(|c| (c.name.clone(), c.trace_forwarding_namespaces.clone()))
                .collect(),
            ..Routes::default()
        };
        for service in directory.services() {
            let Some(address) = &service.trace_forwarder else {
                continue;
            };
            routes
                .by_tenant
                .entry(service.tenant.clone())
                .or_default()
                .push(Route {
                    tenant: service.tenant.clone(),
                    service: service.name.clone(),
                    models: service.models.clone(),
                    address: address.clone(),
                });
        }
        let wanted: BTreeMap<String, &Route> = routes
            .by_tenant
            .values()
            .flatten()
            .map(|r| (r.address.clone(), r))
            .collect();
        {
            let mut targets = self.targets.write();
            targets.retain(|address, target| {
                let keep = wanted
                    .get(address)
                    .is_some_and(|r| r.tenant == target.tenant && r.service == target.service);
                if !keep {
                    target.stop.cancel();
                }
                keep
            });
            for (address, route) in &wanted {
                if targets.contains_key(address) {
                    continue;
                }
                let target = Arc::new(Target {
                    tenant: route.tenant.clone(),
                    service: route.service.clone(),
                    address: address.clone(),
                    queue: BoundedQueue::new(self.config.queue_spans),
                    wake: Notify::new(),
                    stats: StatsCell::default(),
                    metrics: self.metrics.clone(),
                    dial: self
                        .config
                        .resolve
                        .get(address)
                        .cloned()
                        .unwrap_or_else(|| address.clone()),
                    config: self.config.clone(),
                    stop: CancellationToken::new(),
                });
                tokio::spawn(sender::run(
                    target.clone(),
                    enricher.clone(),
                    target.stop.clone(),
                ));
                targets.insert(address.clone(), target);
            }
        }
        *self.routes.write() = Arc::new(routes);
    }

    /// The copies of `request` that have a route, and what was refused.
    fn select(&self, origin: &Origin, request: &ExportTraceServiceRequest) -> route::Selection {
        let routes = self.routes.read().clone();
        route::select(&routes, origin, request)
    }

    fn enqueue(&self, selected: BTreeMap<String, (ExportTraceServiceRequest, usize)>) {
        if selected.is_empty() {
            return;
        }
        let targets = self.targets.read();
        for (address, (request, spans)) in selected {
            let Some(target) = targets.get(&address) else {
                continue;
            };
            let pushed = target.queue.push(request, spans);
            if pushed.dropped > 0 {
                target.stats.dropped(pushed.dropped as u64);
                self.metrics
                    .dropped("traces", "forward_queue_full", pushed.dropped as u64);
            }
            target.wake.notify_one();
        }
    }

    /// Stops every worker.
    pub fn stop(&self) {
        for target in self.targets.read().values() {
            target.stop.cancel();
        }
    }
}

/// Keeps the routes current with the directory until `stop`.
pub async fn run(
    forwarding: Arc<Forwarding>,
    directory: Directory,
    enricher: Arc<dyn Enricher>,
    stop: CancellationToken,
) {
    let mut changes = directory.subscribe();
    loop {
        forwarding.update_routes(&directory, &enricher);
        tokio::select! {
            _ = stop.cancelled() => break,
            changed = changes.changed() => if changed.is_err() { break },
        }
    }
    forwarding.stop();
}

/// The pipeline's sink with the fan-out on its traces path.
pub struct ForwardingSink {
    inner: Arc<dyn ExportSink>,
    forwarding: Arc<Forwarding>,
}

impl ForwardingSink {
    pub fn new(inner: Arc<dyn ExportSink>, forwarding: Arc<Forwarding>) -> Self {
        ForwardingSink { inner, forwarding }
    }
}

#[async_trait]
impl ExportSink for ForwardingSink {
    async fn export_metrics(
        &self,
        origin: &Origin,
        request: ExportMetricsServiceRequest,
    ) -> Result<ExportOutcome, ExportError> {
        self.inner.export_metrics(origin, request).await
    }

    /// Resources the agent marked for the trace path
    /// (`apis::wire::TRACE_PATH_ATTRIBUTE`) are forwarded and never reach
    /// the pipeline (they carry prompts); everything else goes to the
    /// pipeline and is never forwarded. The forward-only part of a request
    /// is queued once the pipeline acknowledged the rest: a request the
    /// sender is told to retry would otherwise reach the backend twice.
    async fn export_traces(
        &self,
        origin: &Origin,
        mut request: ExportTraceServiceRequest,
    ) -> Result<ExportOutcome, ExportError> {
        let forward_only = route::take_forward_path(&mut request);
        let Some(forward_only) = forward_only else {
            return self.inner.export_traces(origin, request).await;
        };
        let selected = self.forwarding.select(origin, &forward_only);
        let spans: u64 = forward_only
            .resource_spans
            .iter()
            .flat_map(|rs| rs.scope_spans.iter())
            .map(|ss| ss.spans.len() as u64)
            .sum();
        let routed = selected.routed() as u64;
        let refused = selected.refused as u64;
        drop(forward_only);
        let outcome = if request.resource_spans.is_empty() {
            Ok(ExportOutcome::default())
        } else {
            self.inner.export_traces(origin, request).await
        };
        if outcome.is_ok() {
            // Raw spans of a tenant the authenticated cluster's
            // InferenceCluster does not list in traceForwarding.namespaces go
            // nowhere, whatever tenant they claim; raw spans of services
            // without traces on likewise. Both counted, never kept.
            self.forwarding
                .metrics
                .dropped("traces", TENANT_NOT_FORWARDED_BY_CLUSTER, refused);
            self.forwarding.metrics.dropped(
                "traces",
                "forward_no_route",
                spans.saturating_sub(routed + refused),
            );
            self.forwarding.enqueue(selected.copies);
        }
        outcome
    }
}

/// The tenants with at least one forwarder (for logs at start).
pub fn traced_tenants(forwarding: &Forwarding) -> BTreeSet<String> {
    forwarding.routes.read().by_tenant.keys().cloned().collect()
}
