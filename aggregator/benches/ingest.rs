//! Ingest throughput on one core: protobuf bytes → decode → normalize → sketch
//! → embedded store merge, for batches of 1,000 GenAI spans and 1,000 engine
//! metric datapoints (histograms included), each next to the cost of decoding
//! the same bytes with prost alone, measured in the same run.
//!
//! Run pinned to one CPU (the runtime is current-thread, so the pipeline never
//! uses a second core):
//!
//! ```text
//! taskset -c 1 cargo bench -p signal-aggregator --bench ingest
//! ```
//!
//! After criterion's own report, the bench prints items/s from the medians and
//! the pipeline-to-prost ratio (target ≥ 0.5) for every pair it ran.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{BatchSize, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use otlp_test_kit::synthetic::{FleetShape, MetricGenerator, SpanGenerator};
use otlp_test_kit::unix_nanos;
use prost::Message;
use signal_aggregator::normalize::{NormalizeConfig, Normalizer};
use signal_aggregator::pipeline::{ExportSink, Pipeline};
use signal_aggregator::signal::Origin;
use signal_aggregator::store::memory::{MemoryStore, MemoryStoreConfig};
use signal_aggregator::telemetry::SelfMetrics;

const BATCH: usize = 1_000;
const SEED: u64 = 42;
const SPANS_GROUP: &str = "ingest_spans_1000";
const METRICS_GROUP: &str = "ingest_datapoints_1000";
const PROST: &str = "prost_decode_only";
const PIPELINE: &str = "decode_normalize_sketch_store";

fn pipeline() -> Pipeline {
    Pipeline::new(
        Normalizer::new(NormalizeConfig::default()),
        Arc::new(MemoryStore::new(MemoryStoreConfig::default())),
        Arc::new(SelfMetrics::default()),
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
}

/// Fails the run if the synthetic payloads are refused or dropped rather than
/// stored: a bench of the rejection path would report meaningless numbers.
/// Spans and metrics go to separate pipelines, as in the timed runs: for the
/// same series the aggregator lets engine metrics outrank span-derived points.
fn check_payloads_are_kept() {
    let runtime = runtime();
    let origin = Origin::default();
    let mut spans = SpanGenerator::new(SEED, FleetShape::default());
    let mut datapoints = MetricGenerator::new(SEED, FleetShape::default());
    for (signal, metrics_signal) in [("traces", false), ("metrics", true)] {
        let metrics = Arc::new(SelfMetrics::default());
        let store = Arc::new(MemoryStore::new(MemoryStoreConfig::default()));
        let sink = Pipeline::new(
            Normalizer::new(NormalizeConfig::default()),
            store.clone(),
            metrics.clone(),
        );
        for round in 0..3u64 {
            let now = unix_nanos() + round * 15_000_000_000;
            let outcome = if metrics_signal {
                runtime.block_on(sink.export_metrics(&origin, datapoints.batch(BATCH, now)))
            } else {
                runtime.block_on(sink.export_traces(&origin, spans.batch(BATCH, now)))
            }
            .expect("the embedded store accepts");
            assert_eq!(outcome.rejected, 0, "{signal} refused: {}", outcome.message);
        }
        let ingested = metrics.ingested_snapshot();
        assert_eq!(ingested.get(signal), Some(&(3 * BATCH as u64)));
        let dropped = metrics.dropped_snapshot();
        assert!(
            dropped.is_empty(),
            "synthetic {signal} lost points: {dropped:?}"
        );
        assert!(store.series_count() > 0, "no {signal} reached the store");
    }
}

fn bench_spans(c: &mut Criterion) {
    let mut group = c.benchmark_group(SPANS_GROUP);
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut spans = SpanGenerator::new(SEED, FleetShape::default());
    group.bench_function(PROST, |b| {
        b.iter_batched(
            || spans.batch(BATCH, unix_nanos()).encode_to_vec(),
            |bytes| ExportTraceServiceRequest::decode(bytes.as_slice()).expect("valid protobuf"),
            BatchSize::SmallInput,
        )
    });
    let runtime = runtime();
    let sink = pipeline();
    let origin = Origin::default();
    group.bench_function(PIPELINE, |b| {
        b.iter_batched(
            || spans.batch(BATCH, unix_nanos()).encode_to_vec(),
            |bytes| {
                let request =
                    ExportTraceServiceRequest::decode(bytes.as_slice()).expect("valid protobuf");
                runtime
                    .block_on(sink.export_traces(&origin, request))
                    .expect("the embedded store accepts")
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn bench_metrics(c: &mut Criterion) {
    let mut group = c.benchmark_group(METRICS_GROUP);
    group.throughput(Throughput::Elements(BATCH as u64));
    // One generator for both, so cumulative series keep growing and the
    // pipeline sees real deltas rather than resets.
    let mut metrics = MetricGenerator::new(SEED, FleetShape::default());
    group.bench_function(PROST, |b| {
        b.iter_batched(
            || metrics.batch(BATCH, unix_nanos()).encode_to_vec(),
            |bytes| ExportMetricsServiceRequest::decode(bytes.as_slice()).expect("valid protobuf"),
            BatchSize::SmallInput,
        )
    });
    let runtime = runtime();
    let sink = pipeline();
    let origin = Origin::default();
    group.bench_function(PIPELINE, |b| {
        b.iter_batched(
            || metrics.batch(BATCH, unix_nanos()).encode_to_vec(),
            |bytes| {
                let request =
                    ExportMetricsServiceRequest::decode(bytes.as_slice()).expect("valid protobuf");
                runtime
                    .block_on(sink.export_metrics(&origin, request))
                    .expect("the embedded store accepts")
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// Where criterion keeps its results: set explicitly so the summary below
/// reads exactly what this run wrote.
fn criterion_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    target.join("criterion")
}

/// Median nanoseconds per iteration, if this run (after `since`) measured it.
fn median_ns(home: &std::path::Path, group: &str, bench: &str, since: SystemTime) -> Option<f64> {
    let path = home.join(group).join(bench).join("new/estimates.json");
    let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
    if modified < since {
        return None;
    }
    let estimates: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    estimates["median"]["point_estimate"].as_f64()
}

fn summarize(home: &std::path::Path, since: SystemTime) {
    println!("\nmedian throughput on one core (batches of {BATCH}):");
    for (group, unit) in [(SPANS_GROUP, "spans"), (METRICS_GROUP, "datapoints")] {
        let prost = median_ns(home, group, PROST, since);
        let full = median_ns(home, group, PIPELINE, since);
        let per_sec = |ns: f64| BATCH as f64 / (ns * 1e-9);
        if let (Some(prost), Some(full)) = (prost, full) {
            println!(
                "  {unit:<10} pipeline {:>12.0}/s   prost decode alone {:>12.0}/s   ratio {:.3}",
                per_sec(full),
                per_sec(prost),
                prost / full
            );
        } else {
            println!("  {unit:<10} not measured in this run");
        }
    }
}

fn main() {
    check_payloads_are_kept();
    let started = SystemTime::now();
    let home = criterion_home();
    let mut criterion = Criterion::default()
        .output_directory(&home)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8))
        .configure_from_args();
    bench_spans(&mut criterion);
    bench_metrics(&mut criterion);
    criterion.final_summary();
    summarize(&home, started);
}
