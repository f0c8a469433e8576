//! Engine Prometheus metrics in the shapes the real agent's capture
//! (the `agent_capture` tests) does not show: Prometheus 3's underscore escaping
//! (`vllm_`), the deprecated names older vLLM emits next to their
//! replacements, a restart that only `process_start_time_seconds` reveals,
//! and retried exports. Points carry no start time, as the collector's
//! Prometheus receiver sends them.

use crate::support::normalize::*;
use opentelemetry_proto::tonic::metrics::v1::Metric;
use otlp_test_kit::*;
use signal_aggregator::normalize::{NormalizeConfig, Normalizer};
use signal_aggregator::signal::{DIM_TIER, Field, FieldKey, Origin, SignalKind};

/// `process_start_time_seconds` of the scraped process, started at `start` (nanos).
fn process_start(start: u64, time: u64) -> Metric {
    gauge(
        "process_start_time_seconds",
        vec![number(vec![], 0, time, start as f64 / SEC as f64)],
    )
}

const MODEL: &str = "meta-llama/Llama-3.1-8B-Instruct";
const TTFT_BOUNDS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
const RL: SignalKind = SignalKind::RequestLifecycle;

fn labels() -> Vec<opentelemetry_proto::tonic::common::v1::KeyValue> {
    vec![string_kv("model_name", MODEL), string_kv("engine", "0")]
}

fn ttft_counts(k: u64) -> Vec<u64> {
    let mut counts = vec![0u64; TTFT_BOUNDS.len() + 1];
    counts[7] = 10 * k; // ≤ 0.1 s
    counts[9] = 2 * k; // ≤ 0.5 s
    counts
}

/// One vLLM V1 scrape; `k` scales every cumulative value.
fn vllm_scrape(prefix: &str, time: u64, k: u64) -> Vec<Metric> {
    let n = |v: f64| number(labels(), 0, time, v);
    let reason = |r: &str, v: f64| {
        let mut attrs = labels();
        attrs.push(string_kv("finished_reason", r));
        number(attrs, 0, time, v)
    };
    let k = k as f64;
    vec![
        process_start(OLD_START, time),
        histogram(
            &format!("{prefix}time_to_first_token_seconds"),
            vec![hist(
                labels(),
                0,
                time,
                TTFT_BOUNDS,
                &ttft_counts(k as u64),
                1.7 * k,
            )],
        ),
        histogram(
            &format!("{prefix}inter_token_latency_seconds"),
            vec![hist(
                labels(),
                0,
                time,
                &[0.01, 0.025, 0.05],
                &[100 * k as u64, 50 * k as u64, 0, 0],
                2.0 * k,
            )],
        ),
        histogram(
            &format!("{prefix}e2e_request_latency_seconds"),
            vec![hist(
                labels(),
                0,
                time,
                &[0.3, 0.5, 0.8, 1.0],
                &[0, 4 * k as u64, 8 * k as u64, 0, 0],
                8.0 * k,
            )],
        ),
        histogram(
            &format!("{prefix}request_queue_time_seconds"),
            vec![hist(
                labels(),
                0,
                time,
                &[0.3, 0.5],
                &[12 * k as u64, 0, 0],
                0.6 * k,
            )],
        ),
        counter(&format!("{prefix}prompt_tokens_total"), vec![n(1000.0 * k)]),
        counter(
            &format!("{prefix}generation_tokens_total"),
            vec![n(400.0 * k)],
        ),
        counter(
            &format!("{prefix}request_success_total"),
            vec![
                reason("stop", 9.0 * k),
                reason("length", 2.0 * k),
                reason("abort", 0.0),
                reason("error", 1.0 * k),
            ],
        ),
        counter(
            &format!("{prefix}prefix_cache_queries_total"),
            vec![n(1000.0 * k)],
        ),
        counter(
            &format!("{prefix}prefix_cache_hits_total"),
            vec![n(250.0 * k)],
        ),
        counter(&format!("{prefix}num_preemptions_total"), vec![n(3.0 * k)]),
        gauge(&format!("{prefix}num_requests_running"), vec![n(4.0)]),
        gauge(&format!("{prefix}num_requests_waiting"), vec![n(7.0)]),
        gauge(&format!("{prefix}kv_cache_usage_perc"), vec![n(0.42)]),
        // Dual-emitted deprecated names must not double count.
        gauge(&format!("{prefix}gpu_cache_usage_perc"), vec![n(0.42)]),
        counter(
            &format!("{prefix}gpu_prefix_cache_queries_total"),
            vec![n(1000.0 * k)],
        ),
        // Not part of any signal.
        gauge(&format!("{prefix}cache_config_info"), vec![n(1.0)]),
    ]
}

fn resource() -> Vec<opentelemetry_proto::tonic::common::v1::KeyValue> {
    agent_resource("team-a", "us-east-1", "vllm", "vllm-0")
}

fn check_vllm(prefix: &str) {
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let first = normalizer.metrics(
        &Origin::default(),
        &metrics_request(resource(), vllm_scrape(prefix, T0, 1)),
    );
    assert_eq!(first.rejected, 0, "{}", first.rejected_message);
    // Counters and histograms only prime state; gauges are readings already.
    assert_eq!(plain_total(&first.batch, RL, Field::InputTokens), 0.0);
    assert_eq!(
        gauge_value(&first.batch, RL, &FieldKey::plain(Field::QueueDepth)),
        7.0
    );

    let second = normalizer.metrics(
        &Origin::default(),
        &metrics_request(resource(), vllm_scrape(prefix, T1, 3)),
    );
    let b = &second.batch;
    assert_eq!(second.rejected, 0);
    assert_eq!(models(b, RL), vec![MODEL.to_string()]);
    assert_eq!(b.series[0].key.tenant, "team-a");
    assert_eq!(b.series[0].key.cluster, "us-east-1");
    assert!(close(plain_total(b, RL, Field::InputTokens), 2000.0));
    assert!(close(plain_total(b, RL, Field::OutputTokens), 800.0));
    // stop 18 + length 4 + error 2 (delta of 9+2+1 → 27+6+3).
    assert!(close(plain_total(b, RL, Field::Requests), 24.0));
    assert!(close(plain_total(b, RL, Field::Errors), 2.0));
    assert!(
        close(plain_total(b, RL, Field::PrefixCacheQueries), 2000.0),
        "deprecated twin skipped"
    );
    assert!(close(plain_total(b, RL, Field::PrefixCacheHits), 500.0));
    assert!(close(plain_total(b, RL, Field::Preemptions), 6.0));
    let ttft = histogram_of(b, RL, Field::TtftSeconds);
    assert_eq!(ttft.bounds, TTFT_BOUNDS.to_vec());
    assert_eq!(ttft.counts, ttft_counts(2));
    assert_eq!(ttft.count, 24);
    assert!(close(ttft.sum, 3.4));
    assert_eq!(histogram_of(b, RL, Field::TpotSeconds).count, 300);
    assert_eq!(
        histogram_of(b, RL, Field::E2eSeconds).counts,
        vec![0, 8, 16, 0, 0]
    );
    assert_eq!(histogram_of(b, RL, Field::QueueSeconds).count, 24);
    assert_eq!(
        gauge_value(b, RL, &FieldKey::plain(Field::RunningRequests)),
        4.0
    );
    let kv = FieldKey::with_dim(Field::KvCacheUtilization, DIM_TIER, "hbm");
    assert_eq!(gauge_value(b, SignalKind::Capacity, &kv), 0.42);
    assert!(
        second.dropped.contains(&("superseded_metric_name", 2)),
        "{:?}",
        second.dropped
    );
    assert_eq!(second.accepted, 20);
}

#[test]
fn vllm_underscore_spelling() {
    check_vllm("vllm_");
}

#[test]
fn staleness_markers_and_retried_points_add_nothing() {
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let req = |time, v| {
        metrics_request(
            resource(),
            vec![counter(
                "vllm:generation_tokens_total",
                vec![number(labels(), 0, time, v)],
            )],
        )
    };
    normalizer.metrics(&Origin::default(), &req(T0, 10.0));
    let once = normalizer.metrics(&Origin::default(), &req(T1, 30.0));
    let again = normalizer.metrics(&Origin::default(), &req(T1, 30.0));
    assert!(close(
        plain_total(&once.batch, RL, Field::OutputTokens),
        20.0
    ));
    assert_eq!(again.batch.point_count(), 0);
    assert_eq!(again.dropped, vec![("duplicate_point", 1)]);
    let mut stale = number(labels(), 0, T1 + 15 * SEC, 0.0);
    stale.flags = 1;
    let marker = normalizer.metrics(
        &Origin::default(),
        &metrics_request(
            resource(),
            vec![counter("vllm:generation_tokens_total", vec![stale])],
        ),
    );
    assert_eq!((marker.accepted, marker.batch.point_count()), (1, 0));
}

fn tokens_scrape(
    started: u64,
    time: u64,
    value: f64,
) -> opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest {
    metrics_request(
        resource(),
        vec![
            process_start(started, time),
            counter(
                "vllm:generation_tokens_total",
                vec![number(labels(), 0, time, value)],
            ),
        ],
    )
}

#[test]
fn a_process_started_within_the_fresh_window_counts_from_its_first_scrape() {
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let out = normalizer.metrics(&Origin::default(), &tokens_scrape(T0 - 20 * SEC, T0, 300.0));
    assert!(close(
        plain_total(&out.batch, RL, Field::OutputTokens),
        300.0
    ));

    let old = Normalizer::new(NormalizeConfig::default());
    let out = old.metrics(&Origin::default(), &tokens_scrape(OLD_START, T0, 300.0));
    assert_eq!(
        out.batch.point_count(),
        0,
        "a long-running process only primes"
    );
}

#[test]
fn a_restart_that_outgrew_the_last_value_is_seen_through_the_process_start() {
    let normalizer = Normalizer::new(NormalizeConfig::default());
    normalizer.metrics(&Origin::default(), &tokens_scrape(OLD_START, T0, 100.0));
    // Restarted 5 s before the next scrape and already past the old total:
    // the value alone looks like +50.
    let out = normalizer.metrics(&Origin::default(), &tokens_scrape(T1 - 5 * SEC, T1, 150.0));
    assert!(close(
        plain_total(&out.batch, RL, Field::OutputTokens),
        150.0
    ));
    let next = normalizer.metrics(
        &Origin::default(),
        &tokens_scrape(T1 - 5 * SEC, T1 + 15 * SEC, 170.0),
    );
    assert!(close(
        plain_total(&next.batch, RL, Field::OutputTokens),
        20.0
    ));
}
