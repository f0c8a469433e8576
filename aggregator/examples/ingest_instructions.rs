//! A fixed ingest workload for counting instructions, which a noisy machine
//! does not move the way it moves time:
//!
//! ```sh
//! cargo build --release -p signal-aggregator --example ingest_instructions
//! for stage in generate decode pipeline; do
//!   perf stat -x, -e instructions:u target/release/examples/ingest_instructions spans $stage 200
//! done
//! ```
//!
//! Each run generates the same `<requests>` batches of 1,000 items (seeded,
//! fixed timestamps), then decodes them (`decode`) or decodes them and runs
//! the pipeline into the embedded store (`pipeline`). Differences between the
//! stages divided by the items give instructions per item for decode and for
//! everything after it.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use otlp_test_kit::synthetic::{FleetShape, MetricGenerator, SpanGenerator};
use prost::Message;
use signal_aggregator::normalize::{NormalizeConfig, Normalizer};
use signal_aggregator::pipeline::{ExportSink, Pipeline};
use signal_aggregator::signal::Origin;
use signal_aggregator::store::memory::{MemoryStore, MemoryStoreConfig};
use signal_aggregator::telemetry::SelfMetrics;

const BATCH: usize = 1_000;
const SEED: u64 = 7;
/// 2026-01-01T00:00:00Z; each request one second later.
const START_NANOS: u64 = 1_767_225_600_000_000_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: ingest_instructions spans|datapoints generate|decode|pipeline <requests>";
    let (signal, stage, requests) = match args.as_slice() {
        [_, signal, stage, requests] => (
            signal.as_str(),
            stage.as_str(),
            requests.parse::<u64>().expect(usage),
        ),
        _ => panic!("{usage}"),
    };
    let at = |i: u64| START_NANOS + i * 1_000_000_000;
    let encoded: Vec<Vec<u8>> = match signal {
        "spans" => {
            let mut spans = SpanGenerator::new(SEED, FleetShape::default());
            (0..requests)
                .map(|i| spans.batch(BATCH, at(i)).encode_to_vec())
                .collect()
        }
        "datapoints" => {
            let mut points = MetricGenerator::new(SEED, FleetShape::default());
            (0..requests)
                .map(|i| points.batch(BATCH, at(i)).encode_to_vec())
                .collect()
        }
        _ => panic!("{usage}"),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    let pipeline = Pipeline::new(
        Normalizer::new(NormalizeConfig::default()),
        Arc::new(MemoryStore::new(MemoryStoreConfig::default())),
        Arc::new(SelfMetrics::default()),
    );
    let origin = Origin::default();
    let mut kept = 0u64;
    for bytes in &encoded {
        match (signal, stage) {
            (_, "generate") => kept += bytes.len() as u64,
            ("spans", _) => {
                let request = ExportTraceServiceRequest::decode(bytes.as_slice()).expect("valid");
                if stage == "pipeline" {
                    let outcome = runtime
                        .block_on(pipeline.export_traces(&origin, request))
                        .expect("the embedded store accepts");
                    kept += BATCH as u64 - outcome.rejected as u64;
                } else {
                    kept += request.resource_spans.len() as u64;
                }
            }
            _ => {
                let request = ExportMetricsServiceRequest::decode(bytes.as_slice()).expect("valid");
                if stage == "pipeline" {
                    let outcome = runtime
                        .block_on(pipeline.export_metrics(&origin, request))
                        .expect("the embedded store accepts");
                    kept += BATCH as u64 - outcome.rejected as u64;
                } else {
                    kept += request.resource_metrics.len() as u64;
                }
            }
        }
    }
    println!("{signal} {stage} {requests} requests: {kept}");
}
