//! OTel GenAI semantic-convention metrics and spans (current and deprecated
//! attribute names), vLLM `llm_request` spans, sampling and prefix hashes.

use crate::support::normalize::*;
use opentelemetry_proto::tonic::common::v1::any_value;
use otlp_test_kit::*;
use signal_aggregator::normalize::{NormalizeConfig, Normalizer};
use signal_aggregator::signal::{Field, Origin, SignalKind, Value};

const RL: SignalKind = SignalKind::RequestLifecycle;
const DURATION_BOUNDS: &[f64] = &[
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

fn gateway_resource() -> Vec<opentelemetry_proto::tonic::common::v1::KeyValue> {
    let mut r = agent_resource("team-a", "us-east-1", "gateway", "gateway-0");
    r.push(string_kv("modelplane.tenant", "acme"));
    r
}

#[test]
fn genai_semconv_metrics_from_a_python_sdk() {
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let attrs = |extra: Vec<_>| {
        let mut a = vec![
            string_kv("gen_ai.operation.name", "chat"),
            string_kv("gen_ai.provider.name", "openai"),
            string_kv("gen_ai.request.model", "gpt-4o"),
            string_kv("gen_ai.response.model", "gpt-4o-2024-08-06"),
            string_kv("server.address", "api.openai.com"),
        ];
        a.extend(extra);
        a
    };
    let mut counts = vec![0u64; DURATION_BOUNDS.len() + 1];
    counts[6] = 3;
    counts[8] = 1;
    let mut token_counts = vec![0u64; 15];
    token_counts[5] = 4;
    let req = metrics_request(
        gateway_resource(),
        vec![
            // SDK delta temporality passes straight through.
            delta_histogram(
                "gen_ai.client.operation.duration",
                vec![
                    hist(attrs(vec![]), T0, T1, DURATION_BOUNDS, &counts, 3.1),
                    hist(
                        attrs(vec![string_kv("error.type", "timeout")]),
                        T0,
                        T1,
                        DURATION_BOUNDS,
                        &{
                            let mut c = vec![0u64; 15];
                            c[13] = 1;
                            c
                        },
                        60.0,
                    ),
                ],
            ),
            delta_histogram(
                "gen_ai.server.time_to_first_token",
                vec![hist(attrs(vec![]), T0, T1, &[0.1, 0.25], &[2, 2, 0], 0.5)],
            ),
            delta_histogram(
                "gen_ai.server.time_per_output_token",
                vec![hist(
                    attrs(vec![]),
                    T0,
                    T1,
                    &[0.01, 0.025],
                    &[0, 4, 0],
                    0.08,
                )],
            ),
            delta_histogram(
                "gen_ai.server.request.duration",
                vec![hist(attrs(vec![]), T0, T1, DURATION_BOUNDS, &counts, 3.1)],
            ),
            delta_histogram(
                "gen_ai.client.token.usage",
                vec![
                    hist(
                        attrs(vec![string_kv("gen_ai.token.type", "input")]),
                        T0,
                        T1,
                        &[
                            1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0,
                            262144.0, 1048576.0, 4194304.0, 16777216.0, 67108864.0,
                        ],
                        &token_counts,
                        2100.0,
                    ),
                    hist(
                        attrs(vec![string_kv("gen_ai.token.type", "output")]),
                        T0,
                        T1,
                        &[
                            1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0,
                            262144.0, 1048576.0, 4194304.0, 16777216.0, 67108864.0,
                        ],
                        &token_counts,
                        480.0,
                    ),
                ],
            ),
        ],
    );
    let out = normalizer.metrics(&Origin::default(), &req);
    assert_eq!(out.rejected, 0, "{}", out.rejected_message);
    let b = &out.batch;
    assert_eq!(
        b.series[0].key.tenant, "acme",
        "modelplane.tenant wins over the namespace"
    );
    assert_eq!(
        models(b, RL),
        vec!["gpt-4o-2024-08-06".to_string()],
        "the served (response) model wins"
    );
    // Requests: client 4 + 1 failed, server 4.
    assert!(close(plain_total(b, RL, Field::Requests), 9.0));
    assert!(close(plain_total(b, RL, Field::Errors), 1.0));
    assert!(close(plain_total(b, RL, Field::InputTokens), 2100.0));
    assert!(close(plain_total(b, RL, Field::OutputTokens), 480.0));
    assert_eq!(histogram_of(b, RL, Field::TtftSeconds).count, 4);
    assert_eq!(
        histogram_of(b, RL, Field::TpotSeconds).counts,
        vec![0, 4, 0]
    );
    assert_eq!(points(b, RL, Field::E2eSeconds).len(), 3);
}

fn chat_span(
    attrs: Vec<opentelemetry_proto::tonic::common::v1::KeyValue>,
) -> opentelemetry_proto::tonic::trace::v1::Span {
    span("chat gpt-4o", attrs, T0, T0 + 2 * SEC)
}

#[test]
fn genai_spans_current_and_deprecated_names_agree() {
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let current = chat_span(vec![
        string_kv("gen_ai.operation.name", "chat"),
        string_kv("gen_ai.provider.name", "openai"),
        string_kv("gen_ai.request.model", "gpt-4o"),
        int_kv("gen_ai.usage.input_tokens", 120),
        int_kv("gen_ai.usage.output_tokens", 41),
        double_kv("gen_ai.response.time_to_first_chunk", 0.4),
    ]);
    let deprecated = chat_span(vec![
        string_kv("gen_ai.system", "openai"),
        string_kv("gen_ai.request.model", "gpt-4o"),
        int_kv("gen_ai.usage.prompt_tokens", 120),
        int_kv("gen_ai.usage.completion_tokens", 41),
        double_kv("gen_ai.response.time_to_first_chunk", 0.4),
    ]);
    for span in [current, deprecated] {
        let out = normalizer.traces(
            &Origin::default(),
            &traces_request(gateway_resource(), vec![span]),
        );
        let b = &out.batch;
        assert_eq!((out.accepted, out.rejected), (1, 0));
        assert_eq!(models(b, RL), vec!["gpt-4o".to_string()]);
        assert_eq!(plain_total(b, RL, Field::Requests), 1.0);
        assert_eq!(plain_total(b, RL, Field::InputTokens), 120.0);
        assert_eq!(plain_total(b, RL, Field::OutputTokens), 41.0);
        assert_eq!(samples(b, RL, Field::TtftSeconds), vec![0.4]);
        // e2e from the span's duration; TPOT = (2.0 − 0.4) / (41 − 1).
        assert_eq!(samples(b, RL, Field::E2eSeconds), vec![2.0]);
        assert!(close(samples(b, RL, Field::TpotSeconds)[0], 0.04));
    }
}

#[test]
fn vllm_llm_request_span_latencies() {
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let span = span(
        "llm_request",
        vec![
            string_kv("gen_ai.response.model", "meta-llama/Llama-3.1-8B-Instruct"),
            string_kv("gen_ai.request.id", "cmpl-9f8e7d6c5b4a"),
            double_kv("gen_ai.request.temperature", 0.7),
            int_kv("gen_ai.request.max_tokens", 256),
            int_kv("gen_ai.usage.prompt_tokens", 900),
            int_kv("gen_ai.usage.completion_tokens", 101),
            double_kv("gen_ai.latency.time_in_queue", 0.05),
            double_kv("gen_ai.latency.time_to_first_token", 0.25),
            double_kv("gen_ai.latency.e2e", 2.25),
            double_kv("gen_ai.latency.time_in_model_prefill", 0.18),
        ],
        T0,
        T0 + 3 * SEC,
    );
    let out = normalizer.traces(
        &Origin::default(),
        &traces_request(
            agent_resource("team-a", "us-east-1", "vllm", "vllm-0"),
            vec![span],
        ),
    );
    let b = &out.batch;
    assert_eq!(samples(b, RL, Field::QueueSeconds), vec![0.05]);
    assert_eq!(samples(b, RL, Field::TtftSeconds), vec![0.25]);
    assert_eq!(
        samples(b, RL, Field::E2eSeconds),
        vec![2.25],
        "gen_ai.latency.e2e wins over span duration"
    );
    assert!(close(samples(b, RL, Field::TpotSeconds)[0], 2.0 / 100.0));
    assert_eq!(plain_total(b, RL, Field::InputTokens), 900.0);
    assert!(
        !format!("{b:?}").contains("cmpl-9f8e7d6c5b4a"),
        "request ids never reach a point"
    );
}

#[test]
fn failed_spans_count_errors_without_ttft() {
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let mut by_status = chat_span(vec![
        string_kv("gen_ai.request.model", "gpt-4o"),
        double_kv("gen_ai.response.time_to_first_chunk", 0.2),
    ]);
    by_status.status = error_status();
    let by_error_type = chat_span(vec![
        string_kv("gen_ai.request.model", "gpt-4o"),
        string_kv("error.type", "rate_limit_exceeded"),
    ]);
    let tool = chat_span(vec![
        string_kv("gen_ai.operation.name", "execute_tool"),
        string_kv("gen_ai.request.model", "gpt-4o"),
    ]);
    let plain_http = span(
        "GET /healthz",
        vec![string_kv("http.route", "/healthz")],
        T0,
        T1,
    );
    let out = normalizer.traces(
        &Origin::default(),
        &traces_request(
            gateway_resource(),
            vec![by_status, by_error_type, tool, plain_http],
        ),
    );
    assert_eq!(out.accepted, 4);
    assert_eq!(
        plain_total(&out.batch, RL, Field::Requests),
        2.0,
        "tool and non-GenAI spans are not requests"
    );
    assert_eq!(plain_total(&out.batch, RL, Field::Errors), 2.0);
    assert!(samples(&out.batch, RL, Field::TtftSeconds).is_empty());
}

#[test]
fn sample_rate_scales_counts_and_signal_selects_kinds() {
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let sampled = chat_span(vec![
        string_kv("gen_ai.request.model", "gpt-4o"),
        int_kv("gen_ai.usage.input_tokens", 100),
        string_kv("modelplane.signal", "RequestLifecycle"),
        double_kv("modelplane.sample_rate", 0.25),
        int_kv("modelplane.prefix.hash", 42),
    ]);
    let prefix_only = chat_span(vec![
        string_kv("gen_ai.request.model", "gpt-4o"),
        string_kv("modelplane.signal", "PrefixHash"),
        string_kv("modelplane.prefix.hash", "00000000deadbeef"),
        array_kv(
            "modelplane.prefix.hashes",
            vec![
                any_value::Value::IntValue(7),
                any_value::Value::StringValue("ffffffffffffffff".into()),
            ],
        ),
    ]);
    let out = normalizer.traces(
        &Origin::default(),
        &traces_request(gateway_resource(), vec![sampled, prefix_only]),
    );
    let b = &out.batch;
    assert_eq!(plain_total(b, RL, Field::Requests), 4.0);
    assert_eq!(plain_total(b, RL, Field::InputTokens), 400.0);
    let hashes: Vec<u64> = points(b, SignalKind::PrefixHash, Field::PrefixHashes)
        .into_iter()
        .map(|(_, p)| match p.value {
            Value::PrefixHash(h) => h,
            ref other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        hashes,
        vec![0xdead_beef, 7, u64::MAX],
        "the RequestLifecycle-only span contributes no hash"
    );
}

#[test]
fn contract_violations_are_rejected_with_reasons() {
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let bad = vec![
        chat_span(vec![
            string_kv("gen_ai.request.model", "gpt-4o"),
            string_kv("modelplane.signal", "Everything"),
        ]),
        chat_span(vec![
            string_kv("gen_ai.request.model", "gpt-4o"),
            double_kv("modelplane.sample_rate", 0.0),
        ]),
        chat_span(vec![string_kv(
            "modelplane.prefix.hash",
            "the system prompt of the tenant",
        )]),
        chat_span(vec![string_kv(
            "gen_ai.request.model",
            "a model name with spaces",
        )]),
        chat_span(vec![string_kv("gen_ai.request.model", "gpt-4o")]),
    ];
    let out = normalizer.traces(&Origin::default(), &traces_request(gateway_resource(), bad));
    assert_eq!((out.accepted, out.rejected), (1, 4));
    for expected in [
        "modelplane.signal",
        "modelplane.sample_rate",
        "modelplane.prefix.hash",
        "gen_ai.request.model",
    ] {
        assert!(
            out.rejected_message.contains(expected),
            "{}",
            out.rejected_message
        );
    }
    assert!(
        !out.rejected_message.contains("system prompt"),
        "messages never echo values"
    );
}

#[test]
fn one_vantage_per_field_so_requests_are_not_counted_twice() {
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let model = "meta-llama/Llama-3.1-8B-Instruct";
    let resource =
        |engine: &str| agent_resource("team-a", "us-east-1", engine, &format!("{engine}-0"));
    let gateway_span = || {
        chat_span(vec![
            string_kv("gen_ai.operation.name", "chat"),
            string_kv("gen_ai.provider.name", "openai"),
            string_kv("gen_ai.request.model", model),
            int_kv("gen_ai.usage.input_tokens", 100),
            double_kv("gen_ai.response.time_to_first_chunk", 0.3),
        ])
    };
    // Only the gateway reports: its spans own every field.
    let alone = normalizer.traces(
        &Origin::default(),
        &traces_request(resource("gateway"), vec![gateway_span()]),
    );
    assert_eq!(plain_total(&alone.batch, RL, Field::Requests), 1.0);

    // The engine's metrics arrive (fresh process: counted in full) and take over
    // the fields they carry.
    let fresh = T0 - 10 * SEC;
    let engine = metrics_request(
        resource("vllm"),
        vec![
            counter(
                "vllm:request_success_total",
                vec![number(
                    vec![
                        string_kv("model_name", model),
                        string_kv("finished_reason", "stop"),
                    ],
                    fresh,
                    T0,
                    5.0,
                )],
            ),
            counter(
                "vllm:prompt_tokens_total",
                vec![number(
                    vec![string_kv("model_name", model)],
                    fresh,
                    T0,
                    700.0,
                )],
            ),
        ],
    );
    let out = normalizer.metrics(&Origin::default(), &engine);
    assert_eq!(plain_total(&out.batch, RL, Field::Requests), 5.0);

    // The router's and the gateway's counts of the same requests are now dropped;
    // fields the engine does not report (TTFT samples here) still flow from spans.
    let router = metrics_request(
        resource("epp"),
        vec![delta_counter(
            "llm_d_epp_request_total",
            vec![number(vec![string_kv("model_name", model)], T0, T1, 5.0)],
        )],
    );
    let router_out = normalizer.metrics(&Origin::default(), &router);
    assert_eq!(router_out.batch.point_count(), 0);
    assert_eq!(router_out.dropped, vec![("outranked_source", 1)]);
    let spans = normalizer.traces(
        &Origin::default(),
        &traces_request(resource("gateway"), vec![gateway_span()]),
    );
    assert_eq!(plain_total(&spans.batch, RL, Field::Requests), 0.0);
    assert_eq!(plain_total(&spans.batch, RL, Field::InputTokens), 0.0);
    assert_eq!(samples(&spans.batch, RL, Field::TtftSeconds), vec![0.3]);
    assert_eq!(spans.dropped, vec![("outranked_source", 1)]);
}
