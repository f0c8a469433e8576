//! Normalize throughput on realistic batches of 1,000 items (the shared
//! `otlp_test_kit::synthetic` payloads the load generator sends), next to
//! prost-decoding the same payload in the same run: the baseline for the
//! ratio reported in `docs/benchmarks/normalize.md`.
//!
//! `cargo bench -p signal-aggregator --bench normalize`

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use otlp_test_kit::synthetic::{FleetShape, MetricGenerator, SpanGenerator};
use otlp_test_kit::unix_nanos;
use prost::Message;
use signal_aggregator::normalize::{NormalizeConfig, Normalizer};
use signal_aggregator::signal::Origin;

const ITEMS: usize = 1_000;

fn bench_spans(c: &mut Criterion) {
    let request = SpanGenerator::new(7, FleetShape::default()).batch(ITEMS, unix_nanos());
    let encoded = request.encode_to_vec();
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let origin = Origin::default();
    let out = normalizer.traces(&origin, &request);
    assert_eq!(
        (out.accepted, out.rejected),
        (ITEMS as u64, 0),
        "{}",
        out.rejected_message
    );
    assert!(
        out.batch.point_count() >= 5 * ITEMS,
        "every span yields points"
    );

    let mut group = c.benchmark_group("spans_1000");
    group.throughput(Throughput::Elements(ITEMS as u64));
    group.bench_function("prost_decode", |b| {
        b.iter(|| ExportTraceServiceRequest::decode(encoded.as_slice()).unwrap())
    });
    group.bench_function("normalize", |b| {
        b.iter(|| normalizer.traces(&origin, &request))
    });
    group.finish();
}

fn bench_metrics(c: &mut Criterion) {
    let mut generator = MetricGenerator::new(7, FleetShape::default());
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let origin = Origin::default();
    // Prime every identity's cumulative state so timed batches are deltas.
    for _ in 0..200 {
        normalizer.metrics(&origin, &generator.batch(ITEMS, unix_nanos()));
    }
    let sample = generator.batch(ITEMS, unix_nanos());
    let encoded = sample.encode_to_vec();
    let out = normalizer.metrics(&origin, &sample);
    assert_eq!(
        (out.accepted, out.rejected),
        (ITEMS as u64, 0),
        "{}",
        out.rejected_message
    );
    assert!(
        out.batch.point_count() > ITEMS / 2,
        "deltas, not first sightings"
    );

    let mut group = c.benchmark_group("datapoints_1000");
    group.throughput(Throughput::Elements(ITEMS as u64));
    group.bench_function("prost_decode", |b| {
        b.iter(|| ExportMetricsServiceRequest::decode(encoded.as_slice()).unwrap())
    });
    group.bench_function("normalize", |b| {
        b.iter_batched_ref(
            || generator.batch(ITEMS, unix_nanos()),
            |request| normalizer.metrics(&origin, request),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_spans, bench_metrics);
criterion_main!(benches);
