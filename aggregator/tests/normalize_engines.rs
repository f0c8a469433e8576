//! Engine Prometheus metrics (vLLM, SGLang, llama.cpp) as the collector's
//! Prometheus receiver forwards them, scraped twice: the first scrape of a
//! long-running process primes cumulative state, the second yields deltas.

mod normalize_common;

use normalize_common::*;
use opentelemetry_proto::tonic::metrics::v1::Metric;
use signal_aggregator::normalize::{NormalizeConfig, Normalizer};
use signal_aggregator::signal::{DIM_TIER, Field, FieldKey, Origin, SignalKind};

const MODEL: &str = "meta-llama/Llama-3.1-8B-Instruct";
const TTFT_BOUNDS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
const RL: SignalKind = SignalKind::RequestLifecycle;

fn labels() -> Vec<opentelemetry_proto::tonic::common::v1::KeyValue> {
    vec![s("model_name", MODEL), s("engine", "0")]
}

fn ttft_counts(k: u64) -> Vec<u64> {
    let mut counts = vec![0u64; TTFT_BOUNDS.len() + 1];
    counts[7] = 10 * k; // ≤ 0.1 s
    counts[9] = 2 * k; // ≤ 0.5 s
    counts
}

/// One vLLM V1 scrape; `k` scales every cumulative value.
fn vllm_scrape(prefix: &str, time: u64, k: u64) -> Vec<Metric> {
    let n = |v: f64| number(labels(), OLD_START, time, v);
    let reason = |r: &str, v: f64| {
        let mut attrs = labels();
        attrs.push(s("finished_reason", r));
        number(attrs, OLD_START, time, v)
    };
    let k = k as f64;
    vec![
        histogram(
            &format!("{prefix}time_to_first_token_seconds"),
            vec![hist(
                labels(),
                OLD_START,
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
                OLD_START,
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
                OLD_START,
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
                OLD_START,
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
    assert_eq!(second.accepted, 19);
}

#[test]
fn vllm_colon_spelling() {
    check_vllm("vllm:");
}

#[test]
fn vllm_underscore_spelling() {
    check_vllm("vllm_");
}

#[test]
fn vllm_restart_counts_the_new_process_from_zero() {
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let tokens = |start, time, v| {
        metrics_request(
            resource(),
            vec![counter(
                "vllm:prompt_tokens_total",
                vec![number(labels(), start, time, v)],
            )],
        )
    };
    normalizer.metrics(&Origin::default(), &tokens(OLD_START, T0, 5000.0));
    // The pod restarted: new start time, counter back near zero.
    let after = normalizer.metrics(&Origin::default(), &tokens(T0 + 5 * SEC, T1, 120.0));
    assert!(close(
        plain_total(&after.batch, RL, Field::InputTokens),
        120.0
    ));
}

#[test]
fn sglang_metrics() {
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let scrape = |time, k: f64| {
        let n = |v: f64| {
            number(
                vec![
                    s("model_name", "Qwen/Qwen2.5-7B-Instruct"),
                    s("tp_rank", "0"),
                ],
                OLD_START,
                time,
                v,
            )
        };
        let h = |counts: &[u64], sum| {
            hist(
                vec![s("model_name", "Qwen/Qwen2.5-7B-Instruct")],
                OLD_START,
                time,
                &[0.1, 0.5],
                counts,
                sum,
            )
        };
        metrics_request(
            agent_resource("team-b", "eu-west-1", "sglang", "sglang-0"),
            vec![
                counter("sglang:prompt_tokens_total", vec![n(300.0 * k)]),
                counter("sglang:generation_tokens_total", vec![n(90.0 * k)]),
                counter("sglang:cached_tokens_total", vec![n(120.0 * k)]),
                counter("sglang:num_requests_total", vec![n(6.0 * k)]),
                histogram(
                    "sglang:time_to_first_token_seconds",
                    vec![h(&[5 * k as u64, k as u64, 0], 0.9 * k)],
                ),
                histogram(
                    "sglang:e2e_request_latency_seconds",
                    vec![h(&[0, 6 * k as u64, 0], 2.0 * k)],
                ),
                gauge("sglang:num_running_reqs", vec![n(3.0)]),
                gauge("sglang:num_queue_reqs", vec![n(11.0)]),
                gauge("sglang:token_usage", vec![n(0.61)]),
            ],
        )
    };
    normalizer.metrics(&Origin::default(), &scrape(T0, 1.0));
    let out = normalizer.metrics(&Origin::default(), &scrape(T1, 2.0));
    let b = &out.batch;
    assert_eq!(models(b, RL), vec!["Qwen/Qwen2.5-7B-Instruct".to_string()]);
    assert!(close(plain_total(b, RL, Field::InputTokens), 300.0));
    assert!(close(plain_total(b, RL, Field::OutputTokens), 90.0));
    assert!(close(plain_total(b, RL, Field::PrefixCacheHits), 120.0));
    assert!(close(plain_total(b, RL, Field::Requests), 6.0));
    assert_eq!(
        histogram_of(b, RL, Field::TtftSeconds).counts,
        vec![5, 1, 0]
    );
    assert_eq!(histogram_of(b, RL, Field::E2eSeconds).count, 6);
    assert_eq!(
        gauge_value(b, RL, &FieldKey::plain(Field::QueueDepth)),
        11.0
    );
    assert_eq!(
        gauge_value(b, RL, &FieldKey::plain(Field::RunningRequests)),
        3.0
    );
    let kv = FieldKey::with_dim(Field::KvCacheUtilization, DIM_TIER, "hbm");
    assert_eq!(gauge_value(b, SignalKind::Capacity, &kv), 0.61);
}

#[test]
fn llamacpp_metrics_use_the_resource_model_when_unlabelled() {
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let mut resource = agent_resource("team-c", "edge-1", "llamacpp", "llama-0");
    // llama-server labels nothing; the agent (or mesh-llm) names the model on the resource.
    resource.push(s("mesh_llm.model", "Qwen3-8B-Q4_K_M"));
    let scrape = |time, k: f64| {
        let n = |v: f64| number(vec![], OLD_START, time, v);
        metrics_request(
            resource.clone(),
            vec![
                counter("llamacpp:prompt_tokens_total", vec![n(512.0 * k)]),
                counter("llamacpp:tokens_predicted_total", vec![n(128.0 * k)]),
                gauge("llamacpp:requests_processing", vec![n(2.0)]),
                gauge("llamacpp:requests_deferred", vec![n(1.0)]),
                gauge("llamacpp:kv_cache_usage_ratio", vec![n(0.3)]),
                counter("llamacpp:n_decode_total", vec![n(77.0 * k)]),
            ],
        )
    };
    normalizer.metrics(&Origin::default(), &scrape(T0, 1.0));
    let out = normalizer.metrics(&Origin::default(), &scrape(T1, 4.0));
    let b = &out.batch;
    assert_eq!(models(b, RL), vec!["Qwen3-8B-Q4_K_M".to_string()]);
    assert!(close(plain_total(b, RL, Field::InputTokens), 1536.0));
    assert!(close(plain_total(b, RL, Field::OutputTokens), 384.0));
    assert_eq!(
        gauge_value(b, RL, &FieldKey::plain(Field::RunningRequests)),
        2.0
    );
    assert_eq!(gauge_value(b, RL, &FieldKey::plain(Field::QueueDepth)), 1.0);
    assert_eq!(out.accepted, 6);
}

#[test]
fn staleness_markers_and_retried_points_add_nothing() {
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let req = |time, v| {
        metrics_request(
            resource(),
            vec![counter(
                "vllm:generation_tokens_total",
                vec![number(labels(), OLD_START, time, v)],
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
    let mut stale = number(labels(), OLD_START, T1 + 15 * SEC, 0.0);
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
