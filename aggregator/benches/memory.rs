//! Memory per active series (tenant × cluster × model × signal kind) in the
//! embedded store, at 100,000 series, fed through the real pipeline.
//!
//! Two measures, both as deltas from a baseline taken after the pipeline was
//! built: live heap bytes (a counting global allocator: exact, independent of
//! allocator fragmentation) and process RSS (what an operator sees). Memory
//! the payload generator itself keeps (metric series' cumulative state) is
//! measured separately and left out.
//!
//! Each series is first fed one minute window, then a second minute, so the
//! report gives the cost of a series with one window and of each further
//! window (an active series holds up to `rollup_after` minutes of windows).
//!
//! ```text
//! cargo bench -p signal-aggregator --bench memory
//! cargo bench -p signal-aggregator --bench memory -- --series 20000 --signal metrics
//! ```

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use otlp_test_kit::heap::{CountingAllocator, live_bytes, rss_bytes};
use otlp_test_kit::synthetic::{FleetShape, MetricGenerator, SpanGenerator};
use prost::Message;
use signal_aggregator::normalize::{NormalizeConfig, Normalizer};
use signal_aggregator::pipeline::{ExportSink, Pipeline};
use signal_aggregator::signal::{Origin, SignalKind};
use signal_aggregator::store::SketchStore;
use signal_aggregator::store::memory::{MemoryStore, MemoryStoreConfig};
use signal_aggregator::telemetry::SelfMetrics;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Signal {
    Spans,
    Metrics,
}

struct Options {
    series: u64,
    signals: Vec<Signal>,
}

fn options() -> Options {
    let mut options = Options {
        series: 100_000,
        signals: vec![Signal::Spans, Signal::Metrics],
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        match (args[i].as_str(), args.get(i + 1)) {
            ("--series", Some(n)) => {
                options.series = n.parse().expect("--series takes a number");
                i += 1;
            }
            ("--signal", Some(s)) => {
                options.signals = match s.as_str() {
                    "spans" | "traces" => vec![Signal::Spans],
                    "metrics" => vec![Signal::Metrics],
                    other => panic!("--signal is spans or metrics, not {other}"),
                };
                i += 1;
            }
            // cargo bench passes `--bench`; anything else is criterion-style noise.
            _ => {}
        }
        i += 1;
    }
    options
}

/// Feeds synthetic OTLP for a fleet through one pipeline, tracking the heap
/// the generator keeps so it can be left out of the pipeline's share.
struct Feeder {
    signal: Signal,
    spans: SpanGenerator,
    metrics: MetricGenerator,
    sink: Pipeline,
    store: Arc<MemoryStore>,
    runtime: tokio::runtime::Runtime,
    generator_bytes: i64,
}

impl Feeder {
    fn new(signal: Signal, shape: FleetShape) -> Self {
        let config = NormalizeConfig {
            max_series_per_tenant: usize::MAX,
            ..NormalizeConfig::default()
        };
        let store = Arc::new(MemoryStore::new(MemoryStoreConfig::default()));
        Feeder {
            signal,
            // One span per identity per resource block keeps batches spread over the fleet.
            spans: SpanGenerator::new(7, shape).spans_per_resource(4),
            metrics: MetricGenerator::new(7, shape),
            sink: Pipeline::new(
                Normalizer::new(config),
                store.clone(),
                Arc::new(SelfMetrics::default()),
            ),
            store,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            generator_bytes: 0,
        }
    }

    /// Sends `items` spans or datapoints stamped `now_unix_nano`.
    fn feed(&mut self, items: usize, now_unix_nano: u64) {
        const BATCH: usize = 1_000;
        let origin = Origin::default();
        let mut left = items;
        while left > 0 {
            let n = left.min(BATCH);
            left -= n;
            let before = live_bytes();
            let bytes = match self.signal {
                Signal::Spans => self.spans.batch(n, now_unix_nano).encode_to_vec(),
                Signal::Metrics => self.metrics.batch(n, now_unix_nano).encode_to_vec(),
            };
            self.generator_bytes += live_bytes() - before - bytes.capacity() as i64;
            let outcome = match self.signal {
                Signal::Spans => {
                    let request = ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap();
                    self.runtime
                        .block_on(self.sink.export_traces(&origin, request))
                }
                Signal::Metrics => {
                    let request = ExportMetricsServiceRequest::decode(bytes.as_slice()).unwrap();
                    self.runtime
                        .block_on(self.sink.export_metrics(&origin, request))
                }
            };
            let outcome = outcome.expect("the embedded store accepts");
            assert_eq!(
                outcome.rejected, 0,
                "synthetic data was refused: {}",
                outcome.message
            );
        }
    }

    fn series(&self) -> u64 {
        self.store.series_count()
    }

    fn series_by_kind(&self) -> Vec<(SignalKind, usize)> {
        let now = unix_secs();
        SignalKind::ALL
            .iter()
            .map(|kind| {
                let query = signal_aggregator::store::StoreQuery {
                    tenant: None,
                    kind: *kind,
                    cluster: None,
                    model: None,
                    from_unix_secs: now - 3_600,
                    to_unix_secs: now + 3_600,
                };
                let found = self
                    .runtime
                    .block_on(self.store.query(&query))
                    .expect("query");
                (*kind, found.len())
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Items per identity that reach every series of that identity: a whole
/// resource block of spans, or a whole engine scrape of datapoints.
fn items_per_identity(signal: Signal) -> usize {
    match signal {
        Signal::Spans => 4,
        // A vLLM scrape is 13 datapoints, an SGLang one 10; identities alternate.
        Signal::Metrics => 12,
    }
}

/// Identities the fleet needs for `series` series: probes a small fleet to
/// learn how many series (signal kinds) one identity makes.
fn identities_needed(signal: Signal, series: u64) -> usize {
    let probe_shape = FleetShape {
        tenants: 2,
        clusters: 2,
        models: 50,
    };
    let mut probe = Feeder::new(signal, probe_shape);
    let now = unix_secs() * 1_000_000_000;
    probe.feed(probe_shape.identities() * items_per_identity(signal), now);
    let per_identity = probe.series() as f64 / probe_shape.identities() as f64;
    assert!(per_identity > 0.0, "the probe made no series");
    (series as f64 / per_identity).ceil() as usize
}

fn shape_for(identities: usize) -> FleetShape {
    // 20 tenants × 10 clusters × N models, N rounded up.
    let models = identities.div_ceil(200).max(1);
    FleetShape {
        tenants: 20,
        clusters: 10,
        models,
    }
}

fn measure(signal: Signal, target_series: u64) {
    let identities = identities_needed(signal, target_series);
    let shape = shape_for(identities);
    let mut feeder = Feeder::new(signal, shape);
    let items = shape.identities() * items_per_identity(signal);
    let now = unix_secs();
    // Start of the current minute, so both rounds land in distinct whole minutes.
    let minute = now - now % 60;

    let heap0 = live_bytes();
    let rss0 = rss_bytes();
    let started = Instant::now();
    feeder.feed(items, minute * 1_000_000_000);
    let heap1 = live_bytes() - feeder.generator_bytes;
    let rss1 = rss_bytes();
    let series = feeder.series();
    let first_round = started.elapsed();
    feeder.feed(items, (minute + 60) * 1_000_000_000);
    let heap2 = live_bytes() - feeder.generator_bytes;
    let rss2 = rss_bytes();

    let per = |bytes: i64| bytes as f64 / series as f64;
    println!(
        "{signal:?}: {} identities ({} tenants x {} clusters x {} models), {items} items per round",
        shape.identities(),
        shape.tenants,
        shape.clusters,
        shape.models
    );
    println!(
        "  series in store: {series} ({:?})",
        feeder.series_by_kind()
    );
    println!(
        "  one window per series:  heap {:>8.0} B/series ({:.2} KiB)   rss {:>8.0} B/series ({:.2} KiB)   [{:.1} s]",
        per(heap1 - heap0),
        per(heap1 - heap0) / 1024.0,
        per(rss1 - rss0),
        per(rss1 - rss0) / 1024.0,
        first_round.as_secs_f64()
    );
    println!(
        "  each further window:    heap {:>8.0} B/series ({:.2} KiB)   rss {:>8.0} B/series ({:.2} KiB)",
        per(heap2 - heap1),
        per(heap2 - heap1) / 1024.0,
        per(rss2 - rss1),
        per(rss2 - rss1) / 1024.0
    );
    println!(
        "  generator state (excluded): {:.1} MiB",
        feeder.generator_bytes as f64 / 1048576.0
    );
}

fn main() {
    let options = options();
    for signal in &options.signals {
        measure(*signal, options.series);
    }
}
