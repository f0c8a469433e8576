//! `signal-loadgen`: sends synthetic OTLP (GenAI spans or engine metrics) to an
//! OTLP receiver and reports what it achieved.
//!
//! Payloads come from `otlp_test_kit::synthetic`, so a run is reproducible
//! from its seed. Requests are encoded (and gzipped) before the clock starts
//! ticking for them, so the latency measured is the receiver's, and each worker
//! owns a disjoint slice of the fleet so cumulative metric series stay
//! monotonic under concurrency.

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::{BufMut, Bytes};
use clap::{Parser, ValueEnum};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use otlp_test_kit::synthetic::{FleetShape, MetricGenerator, SpanGenerator, SpanTotals};
use otlp_test_kit::unix_nanos;
use prost::Message;
use tokio::sync::Mutex;
use tonic::codec::{Codec, CompressionEncoding, EncodeBuf, Encoder};
use tonic::transport::{Channel, Endpoint};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Protocol {
    Grpc,
    Http,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum SignalType {
    Traces,
    Metrics,
}

/// Send synthetic OTLP to an aggregator and report throughput and latency.
#[derive(Parser, Debug, Clone)]
#[command(name = "signal-loadgen", version)]
struct Args {
    /// host:port of the OTLP receiver (default: 127.0.0.1:4317 for gRPC, 127.0.0.1:4318 for HTTP).
    #[arg(long)]
    target: Option<String>,
    #[arg(long, value_enum, default_value = "grpc")]
    protocol: Protocol,
    #[arg(long, value_enum, default_value = "traces")]
    signal: SignalType,
    /// Spans or datapoints per request.
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
    /// Run for this long (e.g. 500ms, 10s, 2m). Ignored when --requests is given.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Send exactly this many requests in total, then stop.
    #[arg(long)]
    requests: Option<u64>,
    /// Requests in flight at once (one connection and one fleet slice each).
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Runtime worker threads (1 leaves the other cores to the receiver).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Compress requests with gzip, as the Collector's exporters do by default.
    #[arg(long)]
    gzip: bool,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 4)]
    tenants: usize,
    #[arg(long, default_value_t = 3)]
    clusters: usize,
    #[arg(long, default_value_t = 5)]
    models: usize,
    /// Spans per (tenant, cluster, model) resource block.
    #[arg(long, default_value_t = 100)]
    spans_per_resource: usize,
    /// Fraction of spans that fail.
    #[arg(long, default_value_t = 0.02)]
    error_ratio: f64,
    /// Build this many requests per worker up front and cycle through them,
    /// so the generator's cost stays out of the run (0: build every request
    /// fresh; needed for metrics, whose cumulative values must keep growing).
    #[arg(long, default_value_t = 0)]
    reuse_batches: usize,
    /// Bearer token sent as `authorization`.
    #[arg(long, env = "MODELPLANE_INGEST_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Permit a target that is not a loopback address.
    #[arg(long)]
    allow_remote: bool,
    /// Print the summary as one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

impl Args {
    /// HTTP bodies are gzipped here; gRPC compresses messages in the transport.
    fn gzip_bodies(&self) -> bool {
        self.gzip && self.protocol == Protocol::Http
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("{text:?} needs a unit: ms, s or m"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 10s"))?;
    let seconds = match unit {
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit {unit:?} in {text:?}: use ms, s or m")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

/// Encodes already-serialized protobuf bytes as the request and decodes the
/// OTLP response with prost, so requests can be built ahead of the clock.
struct PreEncoded<R>(std::marker::PhantomData<R>);

struct RawEncoder;

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put(item);
        Ok(())
    }
}

impl<R: Message + Default + Send + 'static> Codec for PreEncoded<R> {
    type Encode = Bytes;
    type Decode = R;
    type Encoder = RawEncoder;
    type Decoder = tonic_prost::ProstDecoder<R>;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic_prost::ProstDecoder::default()
    }
}

/// What the receiver said about one request.
enum Reply {
    Accepted { rejected: i64 },
    Failed(String),
}

/// One worker's source of encoded requests.
enum Source {
    Spans(SpanGenerator),
    Metrics(MetricGenerator),
    Pool { requests: Vec<Bytes>, next: usize },
}

impl Source {
    fn new(args: &Args, worker: usize) -> Self {
        let shape = FleetShape {
            tenants: args.tenants,
            clusters: args.clusters,
            models: args.models,
        };
        let seed = args.seed.wrapping_add(worker as u64);
        let mut source = match args.signal {
            SignalType::Traces => Source::Spans(
                SpanGenerator::new(seed, shape)
                    .partition(worker, args.concurrency)
                    .spans_per_resource(args.spans_per_resource)
                    .error_ratio(args.error_ratio),
            ),
            SignalType::Metrics => Source::Metrics(
                MetricGenerator::new(seed, shape).partition(worker, args.concurrency),
            ),
        };
        if args.reuse_batches > 0 {
            let requests = (0..args.reuse_batches)
                .map(|_| source.build(args.batch_size, args.gzip_bodies()))
                .collect();
            source = Source::Pool { requests, next: 0 };
        }
        source
    }

    fn next(&mut self, batch_size: usize, gzip: bool) -> Bytes {
        if let Source::Pool { requests, next } = self {
            let request = requests[*next % requests.len()].clone();
            *next += 1;
            return request;
        }
        self.build(batch_size, gzip)
    }

    fn build(&mut self, batch_size: usize, gzip: bool) -> Bytes {
        let now = unix_nanos();
        let encoded = match self {
            Source::Spans(spans) => spans.batch(batch_size, now).encode_to_vec(),
            Source::Metrics(metrics) => metrics.batch(batch_size, now).encode_to_vec(),
            Source::Pool { .. } => unreachable!("pools are built from generators"),
        };
        if gzip {
            otlp_test_kit::gzip(&encoded)
        } else {
            encoded
        }
        .into()
    }
}

enum Client {
    Grpc(tonic::client::Grpc<Channel>),
    Http(reqwest::Client),
}

struct Sender {
    client: Client,
    signal: SignalType,
    target: SocketAddr,
    gzip: bool,
    authorization: Option<String>,
}

impl Sender {
    async fn connect(args: &Args, target: SocketAddr) -> anyhow::Result<Self> {
        let client = match args.protocol {
            Protocol::Grpc => {
                let channel = Endpoint::from_shared(format!("http://{target}"))?
                    .connect()
                    .await
                    .with_context(|| format!("connecting to {target} over gRPC"))?;
                let mut grpc = tonic::client::Grpc::new(channel);
                if args.gzip {
                    grpc = grpc
                        .send_compressed(CompressionEncoding::Gzip)
                        .accept_compressed(CompressionEncoding::Gzip);
                }
                Client::Grpc(grpc)
            }
            Protocol::Http => Client::Http(reqwest::Client::builder().build()?),
        };
        Ok(Sender {
            client,
            signal: args.signal,
            target,
            gzip: args.gzip_bodies(),
            authorization: args.token.as_ref().map(|t| format!("Bearer {t}")),
        })
    }

    async fn send(&mut self, body: Bytes) -> Reply {
        match &mut self.client {
            Client::Grpc(grpc) => {
                if let Err(error) = grpc.ready().await {
                    return Reply::Failed(format!("transport: {error}"));
                }
                let mut request = tonic::Request::new(body);
                if let Some(value) = &self.authorization
                    && let Ok(value) = value.parse()
                {
                    request.metadata_mut().insert("authorization", value);
                }
                let rejected = match self.signal {
                    SignalType::Traces => grpc
                        .unary(
                            request,
                            http::uri::PathAndQuery::from_static(
                                "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                            ),
                            PreEncoded::<ExportTraceServiceResponse>(Default::default()),
                        )
                        .await
                        .map(|r| trace_rejected(&r.into_inner())),
                    SignalType::Metrics => grpc
                        .unary(
                            request,
                            http::uri::PathAndQuery::from_static(
                                "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
                            ),
                            PreEncoded::<ExportMetricsServiceResponse>(Default::default()),
                        )
                        .await
                        .map(|r| metric_rejected(&r.into_inner())),
                };
                match rejected {
                    Ok(rejected) => Reply::Accepted { rejected },
                    Err(status) => Reply::Failed(format!("grpc {:?}", status.code())),
                }
            }
            Client::Http(http) => {
                let path = match self.signal {
                    SignalType::Traces => "v1/traces",
                    SignalType::Metrics => "v1/metrics",
                };
                let mut request = http
                    .post(format!("http://{}/{path}", self.target))
                    .header("content-type", "application/x-protobuf")
                    .body(body);
                if self.gzip {
                    request = request.header("content-encoding", "gzip");
                }
                if let Some(value) = &self.authorization {
                    request = request.header("authorization", value);
                }
                let response = match request.send().await {
                    Ok(response) => response,
                    Err(error) => return Reply::Failed(format!("transport: {error}")),
                };
                let status = response.status();
                if !status.is_success() {
                    return Reply::Failed(format!("http {}", status.as_u16()));
                }
                let Ok(body) = response.bytes().await else {
                    return Reply::Failed("transport: response body".to_string());
                };
                let rejected = match self.signal {
                    SignalType::Traces => {
                        ExportTraceServiceResponse::decode(body).map(|r| trace_rejected(&r))
                    }
                    SignalType::Metrics => {
                        ExportMetricsServiceResponse::decode(body).map(|r| metric_rejected(&r))
                    }
                };
                match rejected {
                    Ok(rejected) => Reply::Accepted { rejected },
                    Err(error) => Reply::Failed(format!("undecodable response: {error}")),
                }
            }
        }
    }
}

fn trace_rejected(response: &ExportTraceServiceResponse) -> i64 {
    response
        .partial_success
        .as_ref()
        .map_or(0, |p| p.rejected_spans)
}

fn metric_rejected(response: &ExportMetricsServiceResponse) -> i64 {
    response
        .partial_success
        .as_ref()
        .map_or(0, |p| p.rejected_data_points)
}

#[derive(Default)]
struct WorkerReport {
    ok_requests: u64,
    items_sent_ok: u64,
    rejected_items: i64,
    failures: Vec<String>,
    latencies: Vec<Duration>,
    /// What the worker's span generator emitted (fresh batches only).
    spans: Option<SpanTotals>,
}

/// Shared stop condition: a deadline, or a request budget.
struct Budget {
    deadline: Instant,
    remaining: Option<Mutex<u64>>,
}

impl Budget {
    async fn take(&self) -> bool {
        if let Some(remaining) = &self.remaining {
            let mut left = remaining.lock().await;
            if *left == 0 {
                return false;
            }
            *left -= 1;
            return true;
        }
        Instant::now() < self.deadline
    }
}

async fn worker(
    args: Arc<Args>,
    target: SocketAddr,
    index: usize,
    budget: Arc<Budget>,
) -> anyhow::Result<WorkerReport> {
    let mut source = Source::new(&args, index);
    let mut sender = Sender::connect(&args, target).await?;
    let mut report = WorkerReport::default();
    while budget.take().await {
        let body = source.next(args.batch_size, args.gzip_bodies());
        let started = Instant::now();
        let reply = sender.send(body).await;
        report.latencies.push(started.elapsed());
        match reply {
            Reply::Accepted { rejected } => {
                report.ok_requests += 1;
                report.items_sent_ok += args.batch_size as u64;
                report.rejected_items += rejected;
            }
            Reply::Failed(reason) => report.failures.push(reason),
        }
    }
    if let Source::Spans(spans) = &source {
        report.spans = Some(spans.totals().clone());
    }
    Ok(report)
}

/// Ground truth of every span sent, when every worker built its batches
/// fresh (a reused pool repeats spans, so its totals would mislead).
fn span_totals(reports: &[WorkerReport]) -> Option<serde_json::Value> {
    let mut total = SpanTotals::default();
    for report in reports {
        let spans = report.spans.as_ref()?;
        total.spans += spans.spans;
        total.errors += spans.errors;
        total.input_tokens += spans.input_tokens;
        total.output_tokens += spans.output_tokens;
    }
    Some(serde_json::json!({
        "spans": total.spans,
        "errors": total.errors,
        "input_tokens": total.input_tokens,
        "output_tokens": total.output_tokens,
    }))
}

fn resolve_target(args: &Args) -> anyhow::Result<SocketAddr> {
    let target = args.target.clone().unwrap_or_else(|| match args.protocol {
        Protocol::Grpc => "127.0.0.1:4317".into(),
        Protocol::Http => "127.0.0.1:4318".into(),
    });
    let address = target
        .to_socket_addrs()
        .with_context(|| format!("resolving {target}"))?
        .next()
        .with_context(|| format!("{target} resolves to no address"))?;
    if !address.ip().is_loopback() && !args.allow_remote {
        bail!(
            "{target} ({}) is not a loopback address; pass --allow-remote to load a remote receiver",
            address.ip()
        );
    }
    Ok(address)
}

fn percentile(sorted: &[Duration], quantile: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 * quantile).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(error) => {
            eprintln!("signal-loadgen: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Ok(false) when some requests failed (transport errors or refusals).
fn run(args: Args) -> anyhow::Result<bool> {
    if args.batch_size == 0 || args.concurrency == 0 {
        bail!("--batch-size and --concurrency must be at least 1");
    }
    let target = resolve_target(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    let args = Arc::new(args);
    let (reports, elapsed) = runtime.block_on(async {
        let budget = Arc::new(Budget {
            deadline: Instant::now() + args.duration,
            remaining: args.requests.map(Mutex::new),
        });
        let started = Instant::now();
        let handles: Vec<_> = (0..args.concurrency)
            .map(|i| tokio::spawn(worker(args.clone(), target, i, budget.clone())))
            .collect();
        let mut reports = Vec::new();
        for handle in handles {
            reports.push(handle.await.context("worker panicked")??);
        }
        anyhow::Ok((reports, started.elapsed()))
    })?;

    let mut latencies: Vec<Duration> = reports.iter().flat_map(|r| r.latencies.clone()).collect();
    latencies.sort_unstable();
    let ok_requests: u64 = reports.iter().map(|r| r.ok_requests).sum();
    let sent_ok: u64 = reports.iter().map(|r| r.items_sent_ok).sum();
    let rejected: i64 = reports.iter().map(|r| r.rejected_items).sum();
    let failures: Vec<&String> = reports.iter().flat_map(|r| &r.failures).collect();
    let accepted = sent_ok as i64 - rejected;
    let items_per_sec = accepted as f64 / elapsed.as_secs_f64();
    let p50 = percentile(&latencies, 0.50);
    let p99 = percentile(&latencies, 0.99);
    let mut failure_kinds = std::collections::BTreeMap::<&str, u64>::new();
    for failure in &failures {
        *failure_kinds.entry(failure.as_str()).or_default() += 1;
    }

    let signal = match args.signal {
        SignalType::Traces => "traces",
        SignalType::Metrics => "metrics",
    };
    if args.json {
        let summary = serde_json::json!({
            "signal": signal,
            "protocol": format!("{:?}", args.protocol).to_lowercase(),
            "gzip": args.gzip,
            "target": target.to_string(),
            "concurrency": args.concurrency,
            "batch_size": args.batch_size,
            "requests_ok": ok_requests,
            "requests_failed": failures.len(),
            "failures": failure_kinds,
            "items_accepted": accepted,
            "items_rejected": rejected,
            "elapsed_seconds": elapsed.as_secs_f64(),
            "items_per_second": items_per_sec,
            "latency_p50_ms": p50.as_secs_f64() * 1e3,
            "latency_p99_ms": p99.as_secs_f64() * 1e3,
            "spans_generated": span_totals(&reports),
        });
        println!("{summary}");
    } else {
        println!(
            "signal-loadgen: {signal} over {:?}{} to {target}, {} workers, batches of {}",
            args.protocol,
            if args.gzip { " (gzip)" } else { "" },
            args.concurrency,
            args.batch_size
        );
        println!(
            "requests: {ok_requests} ok, {} failed; items: {accepted} accepted, {rejected} rejected",
            failures.len()
        );
        println!(
            "elapsed {:.2} s; {:.0} {signal} items/s; request latency p50 {:.2} ms, p99 {:.2} ms",
            elapsed.as_secs_f64(),
            items_per_sec,
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
        for (kind, count) in &failure_kinds {
            println!("failed: {count} x {kind}");
        }
    }
    Ok(failures.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_refuse_without() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1.5m").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("10h").is_err());
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&sorted, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&sorted, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&[], 0.99), Duration::ZERO);
    }

    #[test]
    fn remote_targets_need_an_explicit_flag() {
        let mut args = Args::parse_from(["signal-loadgen", "--target", "192.0.2.1:4317"]);
        assert!(resolve_target(&args).is_err());
        args.allow_remote = true;
        assert!(resolve_target(&args).is_ok());
        let args = Args::parse_from(["signal-loadgen", "--protocol", "http"]);
        assert_eq!(resolve_target(&args).unwrap().port(), 4318);
    }
}
