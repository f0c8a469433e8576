//! Normalize throughput on realistic batches of 1,000 items, next to the
//! cost of prost-decoding the same payload (the baseline for the ratio in
//! `docs/benchmarks/normalize.md`).
//!
//! `cargo bench -p signal-aggregator --bench normalize`

#[path = "../tests/normalize_common/mod.rs"]
mod normalize_common;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use normalize_common::*;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric};
use prost::Message;
use signal_aggregator::normalize::{NormalizeConfig, Normalizer};
use signal_aggregator::signal::Origin;

const ITEMS: u64 = 1_000;
const MODELS: [&str; 4] = [
    "meta-llama/Llama-3.1-8B-Instruct",
    "meta-llama/Llama-3.3-70B-Instruct",
    "Qwen/Qwen2.5-7B-Instruct",
    "mistralai/Mistral-7B-Instruct-v0.3",
];

/// 1,000 gateway GenAI spans with 12 attributes each.
fn spans_request() -> ExportTraceServiceRequest {
    let spans = (0..ITEMS)
        .map(|n| {
            let model = MODELS[n as usize % MODELS.len()];
            let start = T0 + n * 1_000_000;
            span(
                &format!("chat {model}"),
                vec![
                    s("gen_ai.operation.name", "chat"),
                    s("gen_ai.provider.name", "openai"),
                    s("gen_ai.request.model", model),
                    s("gen_ai.response.model", model),
                    i("gen_ai.usage.input_tokens", 200 + (n % 1000) as i64),
                    i("gen_ai.usage.output_tokens", 20 + (n % 300) as i64),
                    f(
                        "gen_ai.response.time_to_first_chunk",
                        0.05 + (n % 50) as f64 / 100.0,
                    ),
                    s("gen_ai.response.id", &format!("chatcmpl-{n:016x}")),
                    s("server.address", "vllm.team-a.svc"),
                    i("server.port", 8000),
                    f("modelplane.sample_rate", 1.0),
                    i("modelplane.prefix.hash", (n * 0x9E37_79B9) as i64),
                ],
                start,
                start + 900_000_000,
            )
        })
        .collect();
    traces_request(
        agent_resource("team-a", "us-east-1", "gateway", "gateway-0"),
        spans,
    )
}

/// vLLM scrapes of several pods, 1,000 data points in all (histograms,
/// counters, gauges), as the Prometheus receiver forwards them.
fn metrics_request_1000() -> ExportMetricsServiceRequest {
    let ttft_bounds = [
        0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    ];
    let e2e_bounds = [
        0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
    ];
    let mut request = ExportMetricsServiceRequest::default();
    let mut points = 0u64;
    let mut pod = 0;
    while points < ITEMS {
        let model = MODELS[pod % MODELS.len()];
        let labels = || vec![s("model_name", model), s("engine", "0")];
        let counts = |n: usize| (0..n).map(|b| 10 * b as u64).collect::<Vec<_>>();
        let mut metrics: Vec<Metric> = vec![
            histogram(
                "vllm:time_to_first_token_seconds",
                vec![hist(
                    labels(),
                    OLD_START,
                    T0,
                    &ttft_bounds,
                    &counts(17),
                    12.0,
                )],
            ),
            histogram(
                "vllm:inter_token_latency_seconds",
                vec![hist(
                    labels(),
                    OLD_START,
                    T0,
                    &ttft_bounds,
                    &counts(17),
                    40.0,
                )],
            ),
            histogram(
                "vllm:e2e_request_latency_seconds",
                vec![hist(
                    labels(),
                    OLD_START,
                    T0,
                    &e2e_bounds,
                    &counts(16),
                    300.0,
                )],
            ),
            histogram(
                "vllm:request_queue_time_seconds",
                vec![hist(labels(), OLD_START, T0, &e2e_bounds, &counts(16), 3.0)],
            ),
            counter(
                "vllm:prompt_tokens_total",
                vec![number(labels(), OLD_START, T0, 1e6)],
            ),
            counter(
                "vllm:generation_tokens_total",
                vec![number(labels(), OLD_START, T0, 2e5)],
            ),
            counter(
                "vllm:prefix_cache_queries_total",
                vec![number(labels(), OLD_START, T0, 1e6)],
            ),
            counter(
                "vllm:prefix_cache_hits_total",
                vec![number(labels(), OLD_START, T0, 3e5)],
            ),
            counter(
                "vllm:num_preemptions_total",
                vec![number(labels(), OLD_START, T0, 4.0)],
            ),
            gauge(
                "vllm:num_requests_running",
                vec![number(labels(), 0, T0, 8.0)],
            ),
            gauge(
                "vllm:num_requests_waiting",
                vec![number(labels(), 0, T0, 2.0)],
            ),
            gauge(
                "vllm:kv_cache_usage_perc",
                vec![number(labels(), 0, T0, 0.4)],
            ),
        ];
        let reasons = ["stop", "length", "abort"].map(|r| {
            let mut attrs = labels();
            attrs.push(s("finished_reason", r));
            number(attrs, OLD_START, T0, 1000.0)
        });
        metrics.push(counter("vllm:request_success_total", reasons.to_vec()));
        points += 15;
        let mut resource_metrics = metrics_request(
            agent_resource("team-a", "us-east-1", "vllm", &format!("vllm-{pod}")),
            metrics,
        )
        .resource_metrics;
        request.resource_metrics.append(&mut resource_metrics);
        pod += 1;
    }
    request
}

fn data_points(request: &ExportMetricsServiceRequest) -> u64 {
    let mut n = 0;
    for m in request
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
    {
        n += match &m.data {
            Some(metric::Data::Gauge(g)) => g.data_points.len(),
            Some(metric::Data::Sum(s)) => s.data_points.len(),
            Some(metric::Data::Histogram(h)) => h.data_points.len(),
            _ => 0,
        } as u64;
    }
    n
}

/// Moves every data point forward one scrape interval, so each iteration
/// is a new scrape (a delta), not a retried export.
fn advance(request: &mut ExportMetricsServiceRequest, step: u64) {
    for m in request
        .resource_metrics
        .iter_mut()
        .flat_map(|r| &mut r.scope_metrics)
        .flat_map(|s| &mut s.metrics)
    {
        match &mut m.data {
            Some(metric::Data::Gauge(g)) => g
                .data_points
                .iter_mut()
                .for_each(|p| p.time_unix_nano = T0 + step * 15 * SEC),
            Some(metric::Data::Sum(s)) => s
                .data_points
                .iter_mut()
                .for_each(|p| p.time_unix_nano = T0 + step * 15 * SEC),
            Some(metric::Data::Histogram(h)) => h.data_points.iter_mut().for_each(|p| {
                p.time_unix_nano = T0 + step * 15 * SEC;
                p.bucket_counts.iter_mut().for_each(|c| *c += 1);
                p.count += p.bucket_counts.len() as u64;
            }),
            _ => {}
        }
    }
}

fn bench_spans(c: &mut Criterion) {
    let request = spans_request();
    let encoded = request.encode_to_vec();
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let origin = Origin::default();
    let mut group = c.benchmark_group("spans_1000");
    group.throughput(Throughput::Elements(ITEMS));
    group.bench_function("prost_decode", |b| {
        b.iter(|| ExportTraceServiceRequest::decode(encoded.as_slice()).unwrap())
    });
    group.bench_function("normalize", |b| {
        b.iter(|| normalizer.traces(&origin, &request))
    });
    group.finish();
}

fn bench_metrics(c: &mut Criterion) {
    let mut request = metrics_request_1000();
    assert_eq!(data_points(&request), 1005);
    let encoded = request.encode_to_vec();
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let origin = Origin::default();
    normalizer.metrics(&origin, &request);
    let mut group = c.benchmark_group("datapoints_1000");
    group.throughput(Throughput::Elements(data_points(&request)));
    group.bench_function("prost_decode", |b| {
        b.iter(|| ExportMetricsServiceRequest::decode(encoded.as_slice()).unwrap())
    });
    let mut step = 0;
    group.bench_function("normalize", |b| {
        b.iter_batched_ref(
            || {
                step += 1;
                advance(&mut request, step);
                request.clone()
            },
            |req| normalizer.metrics(&origin, req),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_spans, bench_metrics);
criterion_main!(benches);
