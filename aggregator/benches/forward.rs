//! Ingest with trace forwarding on vs off, in the same run (issue 12), and
//! the aggregator's memory with every trace forwarder down for 60 s.
//!
//! ```text
//! taskset -c 1 cargo bench -p signal-aggregator --bench forward
//! ```
//!
//! **Part 1, throughput** (in process, one current-thread runtime, so all of
//! the aggregator's work, forwarding included, is paid on the bench's core).
//! Each round interleaves three modes over the same protobuf bytes:
//!
//! - *off*: each batch of 1,000 GenAI spans is decoded and goes through the
//!   pipeline (normalize → sketch → embedded store), as the ingest bench does;
//! - *on*: the same, plus the raw copy of the batch the agent's trace path
//!   sends for tenants with traces on (every span with a 1 KiB prompt and a
//!   256 B completion, resource marked `modelplane.trace_path: forward`),
//!   decoded and handed to [`ForwardingSink`]: routed to one of 20 forwarders
//!   (a ModelService per tenant and model of the synthetic fleet), enriched
//!   with `modelplane.cache.prefix_warmth` from the same store, and sent
//!   over OTLP/gRPC to a real otelcol-k8s (OTLP receiver → `nop`
//!   exporter) pinned to core 0. The round's time includes draining every
//!   forwarder's queue: every span is sent and acknowledged (asserted);
//! - *down*: as *on*, but every forwarder's address is a loopback port nothing
//!   listens on (the backend is down; spans wait in the bounded queues).
//!
//! `FORWARD_BENCH_COMPRESSION` (none, the aggregator's default; zstd; gzip)
//! picks the compression towards the forwarders, `FORWARD_BENCH_ROUNDS` the
//! number of rounds (7).
//!
//! Spans/s counts the spans of the sketch path (the ingest rate); *on* does
//! twice the decoding, since the agent sends two copies. Printed per round
//! and as medians, by wall clock and per CPU second of the bench process.
//! Target: on ≥ 0.7 × off.
//!
//! **Part 2, memory with the backend down** (`FORWARD_BENCH_MEMORY_SECS`,
//! default 60; 0 skips it): the release `signal-aggregator` binary, pinned
//! to core 0, with the same 20 ModelServices (`--model-services-file`) whose
//! forwarders resolve to a dead port, and an InferenceCluster per synthetic
//! cluster listing every tenant in `traceForwarding.namespaces`, receives
//! both copies of every batch over OTLP/gRPC from this process, each
//! cluster's part with that cluster's ingest token, as fast as it
//! acknowledges them. Its
//! RSS, the spans acknowledged and the spans dropped from the forwarders'
//! queues (`/metrics`) are printed every 5 s.
//!
//! The collector comes from the peer cache (test/peers/build.sh;
//! `MODELPLANE_PEERS_DIR` or `~/.cache/modelplane-signals/peers`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use otlp_test_kit::synthetic::{
    FleetShape, SpanGenerator, SplitMix64, cluster_name, model_name, tenant_name,
};
use otlp_test_kit::{free_port, string_kv, unix_nanos};
use prost::Message;
use signal_aggregator::clock::system_clock;
use signal_aggregator::directory::{ClusterEntry, Directory, ServiceEntry};
use signal_aggregator::forward::enrich::PrefixWarmth;
use signal_aggregator::forward::{
    Enricher, ForwardCompression, ForwardConfig, Forwarding, ForwardingSink,
};
use signal_aggregator::normalize::{NormalizeConfig, Normalizer};
use signal_aggregator::pipeline::{ExportSink, Pipeline};
use signal_aggregator::signal::Origin;
use signal_aggregator::store::SketchStore;
use signal_aggregator::store::memory::{MemoryStore, MemoryStoreConfig};
use signal_aggregator::telemetry::SelfMetrics;

const BATCH: usize = 1_000;
const BATCHES_PER_ROUND: usize = 200;
const ROUNDS: usize = 7;
const PROMPT_BYTES: usize = 1024;
const COMPLETION_BYTES: usize = 256;
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

fn otelcol() -> PathBuf {
    let dir = std::env::var("MODELPLANE_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").expect("HOME"))
                .join(".cache/modelplane-signals/peers")
        });
    let env = std::fs::read_to_string(dir.join("peers.env"))
        .expect("peers.env: run test/peers/build.sh first");
    env.lines()
        .find_map(|l| l.strip_prefix("OTELCOL_BIN="))
        .map(PathBuf::from)
        .expect("OTELCOL_BIN in peers.env")
}

/// CPU seconds (user + system) this process has used so far (USER_HZ = 100).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of stat(5); the first after ')' is field 3.
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// A process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before listening: {status}");
        }
        assert!(Instant::now() < deadline, "{what} never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start_collector(workdir: &Path, port: u16) -> Killed {
    let config = workdir.join("collector.yaml");
    std::fs::write(
        &config,
        format!(
            "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:{port}\n\
             exporters:\n  nop: {{}}\n\
             service:\n  telemetry:\n    metrics:\n      level: none\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [nop]\n"
        ),
    )
    .unwrap();
    let mut child = Command::new("taskset")
        .args(["-c", "0"])
        .arg(otelcol())
        .arg(format!("--config={}", config.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("taskset and otelcol-k8s");
    wait_for_port(port, &mut child, "otelcol-k8s");
    Killed(child)
}

/// Text of about `bytes` bytes from a small vocabulary: compresses about as
/// well as prose does, unlike one repeated string.
fn text(rng: &mut SplitMix64, bytes: usize) -> String {
    const WORDS: [&str; 16] = [
        "the",
        "cache",
        "request",
        "model",
        "please",
        "summarize",
        "following",
        "document",
        "tokens",
        "answer",
        "because",
        "context",
        "prefix",
        "with",
        "and",
        "user",
    ];
    let mut out = String::with_capacity(bytes + 16);
    while out.len() < bytes {
        out.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
        out.push(' ');
    }
    out
}

/// The raw copy of a batch, as the agent's trace path sends it: marked for
/// forwarding, prompts and completions still on the spans.
fn raw_copy(batch: &ExportTraceServiceRequest, rng: &mut SplitMix64) -> ExportTraceServiceRequest {
    let mut raw = batch.clone();
    for rs in &mut raw.resource_spans {
        rs.resource
            .get_or_insert_default()
            .attributes
            .push(string_kv("modelplane.trace_path", "forward"));
        for span in rs.scope_spans.iter_mut().flat_map(|ss| ss.spans.iter_mut()) {
            span.attributes
                .push(string_kv("gen_ai.input.messages", text(rng, PROMPT_BYTES)));
            span.attributes.push(string_kv(
                "gen_ai.output.messages",
                text(rng, COMPLETION_BYTES),
            ));
        }
    }
    raw
}

/// The synthetic fleet's 20 ModelServices (one per tenant and model), each
/// with traces on and its forwarder at `fwd-<m>.<tenant>.svc:4317`.
fn services(shape: &FleetShape) -> Vec<ServiceEntry> {
    let mut out = Vec::new();
    for t in 0..shape.tenants {
        for m in 0..shape.models {
            let tenant = tenant_name(t);
            out.push(ServiceEntry {
                trace_forwarder: Some(format!("fwd-{m}.{tenant}.svc:4317")),
                tenant,
                name: format!("svc-{m}"),
                models: vec![model_name(m)],
                scope: apis::MetricsScope::PerTenant,
                observed_metrics: None,
            });
        }
    }
    out
}

fn resolve_all(services: &[ServiceEntry], target: &str) -> BTreeMap<String, String> {
    services
        .iter()
        .filter_map(|s| s.trace_forwarder.clone())
        .map(|address| (address, target.to_string()))
        .collect()
}

/// The resources of `request` whose `modelplane.cluster` is `cluster`.
fn of_cluster(request: &ExportTraceServiceRequest, cluster: &str) -> ExportTraceServiceRequest {
    let is_of = |rs: &&opentelemetry_proto::tonic::trace::v1::ResourceSpans| {
        rs.resource.as_ref().is_some_and(|r| {
            r.attributes.iter().any(|kv| {
                kv.key == "modelplane.cluster"
                    && kv.value.as_ref().and_then(|v| v.value.as_ref())
                        == Some(
                            &opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                                cluster.to_string(),
                            ),
                        )
            })
        })
    };
    ExportTraceServiceRequest {
        resource_spans: request
            .resource_spans
            .iter()
            .filter(is_of)
            .cloned()
            .collect(),
    }
}

fn decode(bytes: &[u8]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest::decode(bytes).expect("bytes this bench encoded")
}

struct Round {
    /// Spans of the sketch path per wall-clock second and per CPU second.
    wall: f64,
    cpu: f64,
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn spread(values: &[f64]) -> (f64, f64) {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

/// The trace path of a mode with forwarding.
struct Forward<'a> {
    raw: &'a [Vec<u8>],
    services: &'a [ServiceEntry],
    config: ForwardConfig,
    /// Wait until every forwarded span was acknowledged.
    drain: bool,
}

/// Decodes and ingests `stripped` (and, when forwarding, the raw copies),
/// one batch at a time, yielding between batches so the forwarders' workers
/// run as they would beside ingest.
fn run_mode(
    runtime: &tokio::runtime::Runtime,
    stripped: &[Vec<u8>],
    forward: Option<Forward<'_>>,
) -> Round {
    // The sketch path as before (each resource's claimed cluster); the raw
    // copies authenticated as one cluster whose InferenceCluster lists every
    // tenant for trace forwarding (the router forwards nothing otherwise).
    let origin = Origin::default();
    let forward_origin = Origin {
        authenticated_cluster: Some(cluster_name(0)),
    };
    let metrics = Arc::new(SelfMetrics::default());
    let store: Arc<dyn SketchStore> = Arc::new(MemoryStore::new(MemoryStoreConfig::default()));
    let pipeline: Arc<dyn ExportSink> = Arc::new(Pipeline::new(
        Normalizer::new(NormalizeConfig::default()),
        store.clone(),
        metrics.clone(),
    ));
    let spans = (BATCH * stripped.len()) as f64;
    let Some(Forward {
        raw,
        services,
        config,
        drain,
    }) = forward
    else {
        let started = Instant::now();
        let cpu = cpu_seconds();
        runtime.block_on(async {
            for bytes in stripped {
                pipeline
                    .export_traces(&origin, decode(bytes))
                    .await
                    .unwrap();
                tokio::task::yield_now().await;
            }
        });
        return Round {
            wall: spans / started.elapsed().as_secs_f64(),
            cpu: spans / (cpu_seconds() - cpu).max(0.01),
        };
    };
    let forwarding = Forwarding::new(config, metrics.clone());
    let directory = Directory::new();
    directory.replace_services(services.to_vec());
    let mut cluster = ClusterEntry::new(cluster_name(0));
    cluster.trace_forwarding_namespaces = services.iter().map(|s| s.tenant.clone()).collect();
    directory.replace_clusters(vec![cluster]);
    let enricher: Arc<dyn Enricher> = Arc::new(PrefixWarmth::new(store, system_clock()));
    let sink = ForwardingSink::new(pipeline, forwarding.clone());
    let (elapsed, cpu) = runtime.block_on(async {
        forwarding.update_routes(&directory, &enricher);
        let started = Instant::now();
        let cpu = cpu_seconds();
        for (stripped, raw) in stripped.iter().zip(raw) {
            sink.export_traces(&origin, decode(stripped)).await.unwrap();
            sink.export_traces(&forward_origin, decode(raw))
                .await
                .unwrap();
            tokio::task::yield_now().await;
        }
        if drain {
            loop {
                let done: u64 = forwarding
                    .stats()
                    .iter()
                    .map(|s| s.3.forwarded + s.3.refused + s.3.dropped_queue_full)
                    .sum();
                if done >= spans as u64 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        (started.elapsed(), cpu_seconds() - cpu)
    });
    forwarding.stop();
    let stats = forwarding.stats();
    let sum = |f: fn(&signal_aggregator::forward::ForwardStats) -> u64| -> u64 {
        stats.iter().map(|s| f(&s.3)).sum()
    };
    if drain {
        assert_eq!(
            (
                sum(|s| s.forwarded),
                sum(|s| s.refused),
                sum(|s| s.dropped_queue_full)
            ),
            (spans as u64, 0, 0),
            "every raw span reached the collector, none refused or dropped"
        );
    }
    assert_eq!(
        metrics.ingested_snapshot().get("traces").copied(),
        Some(spans as u64),
        "the sketch path kept every span"
    );
    Round {
        wall: spans / elapsed.as_secs_f64(),
        cpu: spans / cpu.max(0.01),
    }
}

/// `FORWARD_BENCH_COMPRESSION`: none (the default, as the aggregator's), zstd or gzip.
fn compression() -> ForwardCompression {
    match std::env::var("FORWARD_BENCH_COMPRESSION").as_deref() {
        Ok("gzip") => ForwardCompression::Gzip,
        Ok("zstd") => ForwardCompression::Zstd,
        Ok("none") | Err(_) => ForwardCompression::None,
        Ok(other) => panic!("FORWARD_BENCH_COMPRESSION={other}: none, zstd or gzip"),
    }
}

fn throughput(workdir: &Path, rounds: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let port = free_port();
    let _collector = start_collector(workdir, port);
    // Nothing listens here: a backend that is down.
    let dead = free_port();
    let shape = FleetShape::default();
    let services = services(&shape);
    let up = ForwardConfig {
        // Room for a whole round: "on" pays for sending every span.
        queue_spans: BATCH * BATCHES_PER_ROUND,
        resolve: resolve_all(&services, &format!("127.0.0.1:{port}")),
        compression: compression(),
        ..ForwardConfig::default()
    };
    let down = ForwardConfig {
        resolve: resolve_all(&services, &format!("127.0.0.1:{dead}")),
        ..ForwardConfig::default()
    };
    let mut generator = SpanGenerator::new(42, shape);
    let mut rng = SplitMix64::new(7);
    let (mut off, mut on, mut dn) = (Vec::new(), Vec::new(), Vec::new());
    let mut raw_bytes = 0;
    for round in 0..rounds {
        let mut stripped = Vec::new();
        let mut raw = Vec::new();
        for _ in 0..BATCHES_PER_ROUND {
            let batch = generator.batch(BATCH, unix_nanos());
            raw.push(raw_copy(&batch, &mut rng).encode_to_vec());
            stripped.push(batch.encode_to_vec());
        }
        raw_bytes = raw.iter().map(Vec::len).sum::<usize>() / (BATCH * BATCHES_PER_ROUND);
        let forward = |config: &ForwardConfig, drain| Forward {
            raw: &raw,
            services: &services,
            config: config.clone(),
            drain,
        };
        let r_off = run_mode(&runtime, &stripped, None);
        let r_on = run_mode(&runtime, &stripped, Some(forward(&up, true)));
        let r_dn = run_mode(&runtime, &stripped, Some(forward(&down, false)));
        println!(
            "round {round}: spans/s wall: off {:>7.0}, on {:>7.0} ({:.2}), down {:>7.0} ({:.2}); per CPU s: off {:>7.0}, on {:>7.0} ({:.2}), down {:>7.0} ({:.2})",
            r_off.wall,
            r_on.wall,
            r_on.wall / r_off.wall,
            r_dn.wall,
            r_dn.wall / r_off.wall,
            r_off.cpu,
            r_on.cpu,
            r_on.cpu / r_off.cpu,
            r_dn.cpu,
            r_dn.cpu / r_off.cpu,
        );
        off.push(r_off);
        on.push(r_on);
        dn.push(r_dn);
    }
    println!(
        "{rounds} rounds of {BATCHES_PER_ROUND} x {BATCH} spans; raw copies {raw_bytes} B/span encoded; compression to the forwarders: {:?}",
        up.compression
    );
    for (what, pick) in [
        ("wall clock", (|r: &Round| r.wall) as fn(&Round) -> f64),
        ("per CPU second", |r: &Round| r.cpu),
    ] {
        let v = |rounds: &[Round]| rounds.iter().map(pick).collect::<Vec<f64>>();
        let (v_off, v_on, v_dn) = (v(&off), v(&on), v(&dn));
        let ratios = |x: &[f64]| -> Vec<f64> { x.iter().zip(&v_off).map(|(a, b)| a / b).collect() };
        let (r_on, r_dn) = (ratios(&v_on), ratios(&v_dn));
        let (lo_off, hi_off) = spread(&v_off);
        let (lo_on, hi_on) = spread(&v_on);
        let (lo_r, hi_r) = spread(&r_on);
        let (lo_d, hi_d) = spread(&r_dn);
        println!(
            "median, {what}: off {:.0} spans/s ({lo_off:.0}-{hi_off:.0}), on {:.0} ({lo_on:.0}-{hi_on:.0}), down {:.0}; \
             on/off per round: median {:.2} ({lo_r:.2}-{hi_r:.2}); down/off: median {:.2} ({lo_d:.2}-{hi_d:.2}) (target on/off >= 0.70)",
            median(&v_off),
            median(&v_on),
            median(&v_dn),
            median(&r_on),
            median(&r_dn),
        );
    }
}

fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Sum of the samples of `name` in a Prometheus text page whose labels include every one of `labels`.
fn prometheus_sum(page: &str, name: &str, labels: &[&str]) -> f64 {
    page.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .fold(0.0, |a, b| a + b)
}

fn memory(workdir: &Path, secs: u64) {
    let shape = FleetShape::default();
    let services = services(&shape);
    let dead = free_port();
    let file = workdir.join("model-services.yaml");
    let mut yaml = String::new();
    for s in &services {
        yaml.push_str(&format!(
            "---\napiVersion: modelplane.ai/v1alpha1\nkind: ModelService\nmetadata:\n  name: {}\n  namespace: {}\n  annotations:\n    signals.modelplane.ai/models: {}\nspec:\n  observability:\n    traces:\n      enabled: true\n      endpoint: https://backend.example\nstatus:\n  observability:\n    traces:\n      address: {}\n",
            s.name,
            s.tenant,
            s.models[0],
            s.trace_forwarder.as_deref().unwrap()
        ));
    }
    // One InferenceCluster per synthetic cluster, each listing every tenant
    // for trace forwarding, and its ingest token: the router forwards only
    // for the tenants the authenticated cluster lists.
    let tenants: Vec<String> = (0..shape.tenants).map(tenant_name).collect();
    let clusters: Vec<String> = (0..shape.clusters).map(cluster_name).collect();
    let token_of = |cluster: &str| format!("bench-ingest-token-{cluster}");
    let mut tokens = String::new();
    for cluster in &clusters {
        yaml.push_str(&format!(
            "---\napiVersion: modelplane.ai/v1alpha1\nkind: InferenceCluster\nmetadata:\n  name: {cluster}\nspec:\n  signals:\n    traceForwarding:\n      namespaces: [{}]\n",
            tenants.join(", ")
        ));
        tokens.push_str(&format!("{cluster}: {}\n", token_of(cluster)));
    }
    std::fs::write(&file, yaml).unwrap();
    let tokens_file = workdir.join("ingest-tokens.yaml");
    std::fs::write(&tokens_file, tokens).unwrap();
    let (grpc, http, api) = (free_port(), free_port(), free_port());
    let mut command = Command::new("taskset");
    command
        .args(["-c", "0", env!("CARGO_BIN_EXE_signal-aggregator")])
        .args(["--otlp-grpc-addr", &format!("127.0.0.1:{grpc}")])
        .args(["--otlp-http-addr", &format!("127.0.0.1:{http}")])
        .args(["--api-addr", &format!("127.0.0.1:{api}")])
        .arg("--model-services-file")
        .arg(&file)
        .arg("--ingest-tokens-file")
        .arg(&tokens_file);
    for address in services.iter().filter_map(|s| s.trace_forwarder.as_ref()) {
        command.args([
            "--trace-forward-resolve",
            &format!("{address}=127.0.0.1:{dead}"),
        ]);
    }
    let mut child = command
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("taskset and signal-aggregator");
    wait_for_port(grpc, &mut child, "signal-aggregator");
    wait_for_port(api, &mut child, "signal-aggregator's API");
    let aggregator = Killed(child);
    let pid = aggregator.0.id();

    let mut generator = SpanGenerator::new(43, shape);
    let mut rng = SplitMix64::new(8);
    // Each batch's two copies, split by cluster (one agent per cluster, each
    // with its own token): (token, stripped, raw, stripped spans).
    let pairs: Vec<
        Vec<(
            String,
            ExportTraceServiceRequest,
            ExportTraceServiceRequest,
            u64,
        )>,
    > = (0..20)
        .map(|_| {
            let batch = generator.batch(BATCH, unix_nanos());
            let raw = raw_copy(&batch, &mut rng);
            clusters
                .iter()
                .map(|cluster| {
                    let (stripped, raw) = (of_cluster(&batch, cluster), of_cluster(&raw, cluster));
                    let spans = stripped
                        .resource_spans
                        .iter()
                        .flat_map(|rs| rs.scope_spans.iter())
                        .map(|ss| ss.spans.len() as u64)
                        .sum();
                    (token_of(cluster), stripped, raw, spans)
                })
                .filter(|(_, _, _, spans)| *spans > 0)
                .collect()
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut client = TraceServiceClient::connect(format!("http://127.0.0.1:{grpc}"))
            .await
            .expect("connect to the aggregator")
            .max_decoding_message_size(64 << 20);
        let metrics_page = || async {
            reqwest::get(format!("http://127.0.0.1:{api}/metrics"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        };
        let (rss0, _) = rss_kib(pid);
        println!(
            "memory, forwarders down: {} forwarders, queue {} spans each (default), raw copies with {PROMPT_BYTES} B prompts and {COMPLETION_BYTES} B completions; RSS at start {} MiB",
            services.len(),
            ForwardConfig::default().queue_spans,
            rss0 / 1024
        );
        let started = Instant::now();
        let mut next_sample = SAMPLE_EVERY;
        let (mut spans, mut refused) = (0u64, 0u64);
        let mut previous = (Duration::ZERO, 0u64);
        for (token, stripped, raw, n) in pairs.iter().flatten().cycle() {
            for (request, n) in [(stripped, *n), (raw, 0)] {
                let mut request = tonic::Request::new(request.clone());
                request.metadata_mut().insert(
                    "authorization",
                    format!("Bearer {token}").parse().unwrap(),
                );
                match client.export(request).await {
                    Ok(_) => spans += n,
                    Err(_) => refused += 1,
                }
            }
            let elapsed = started.elapsed();
            if elapsed >= next_sample {
                let page = metrics_page().await;
                let dropped = prometheus_sum(
                    &page,
                    "modelplane_aggregator_dropped_items_total",
                    &["signal=\"traces\"", "reason=\"forward_queue_full\""],
                );
                let (rss, hwm) = rss_kib(pid);
                println!(
                    "  t={:>3.0}s: RSS {:>5} MiB (peak {:>5} MiB); sketch-path spans acknowledged {spans:>9} ({:.0}/s in the last interval); raw spans dropped from full queues {dropped:.0}; requests refused {refused}",
                    elapsed.as_secs_f64(),
                    rss / 1024,
                    hwm / 1024,
                    (spans - previous.1) as f64 / (elapsed - previous.0).as_secs_f64(),
                );
                previous = (elapsed, spans);
                next_sample += SAMPLE_EVERY;
                if elapsed >= Duration::from_secs(secs) {
                    break;
                }
            }
        }
    });
    drop(aggregator);
}

fn main() {
    let workdir = std::env::temp_dir().join(format!("forward-bench-{}", std::process::id()));
    std::fs::create_dir_all(&workdir).unwrap();
    let env = |name: &str, default: usize| -> usize {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    throughput(&workdir, env("FORWARD_BENCH_ROUNDS", ROUNDS).max(1));
    let secs = env("FORWARD_BENCH_MEMORY_SECS", 60) as u64;
    if secs > 0 {
        memory(&workdir, secs);
    }
    let _ = std::fs::remove_dir_all(&workdir);
}
