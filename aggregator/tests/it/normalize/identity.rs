//! Identity, privacy allowlist, series budget, first sightings and
//! concurrency of the normalizer.

use std::sync::Arc;
use std::time::Duration;

use crate::support::normalize::*;
use opentelemetry_proto::tonic::common::v1::{KeyValue, KeyValueList, any_value};
use opentelemetry_proto::tonic::trace::v1::span::Event;
use otlp_test_kit::*;
use signal_aggregator::normalize::{NormalizeConfig, Normalizer, OVERFLOW_MODEL};
use signal_aggregator::signal::{Field, FieldKey, Origin, SignalKind, Value};

const RL: SignalKind = SignalKind::RequestLifecycle;

fn tokens(
    resource: Vec<KeyValue>,
    start: u64,
    time: u64,
    v: f64,
) -> opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest {
    metrics_request(
        resource,
        vec![counter(
            "vllm:prompt_tokens_total",
            vec![number(vec![string_kv("model_name", "m")], start, time, v)],
        )],
    )
}

#[test]
fn missing_or_invalid_identity_is_rejected_with_an_actionable_message() {
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let no_tenant = vec![string_kv("modelplane.cluster", "c1")];
    let out = normalizer.metrics(&Origin::default(), &tokens(no_tenant, OLD_START, T0, 1.0));
    assert_eq!((out.accepted, out.rejected), (0, 1));
    assert!(
        out.rejected_message
            .contains("modelplane.tenant or k8s.namespace.name"),
        "{}",
        out.rejected_message
    );

    let no_cluster = vec![string_kv("k8s.namespace.name", "team-a")];
    let out = normalizer.traces(
        &Origin::default(),
        &traces_request(no_cluster, vec![span("chat m", vec![], T0, T1); 3]),
    );
    assert_eq!((out.accepted, out.rejected), (0, 3));
    assert!(
        out.rejected_message
            .contains("modelplane.cluster or k8s.cluster.name"),
        "{}",
        out.rejected_message
    );

    let long_tenant = "t".repeat(200);
    let weird = vec![
        string_kv("modelplane.tenant", &long_tenant),
        string_kv("modelplane.cluster", "c1"),
    ];
    let out = normalizer.metrics(&Origin::default(), &tokens(weird, OLD_START, T0, 1.0));
    assert_eq!(out.rejected, 1);
    assert!(
        out.rejected_message.contains("invalid tenant")
            && !out.rejected_message.contains(&long_tenant)
    );

    let spaced_cluster = vec![
        string_kv("k8s.namespace.name", "team-a"),
        string_kv("k8s.cluster.name", "my cluster; DROP TABLE"),
    ];
    assert_eq!(
        normalizer
            .metrics(
                &Origin::default(),
                &tokens(spaced_cluster, OLD_START, T0, 1.0)
            )
            .rejected,
        1
    );

    // Fallbacks: namespace for tenant, k8s.cluster.name for cluster.
    let fallback = vec![
        string_kv("k8s.namespace.name", "team-a"),
        string_kv("k8s.cluster.name", "gke-prod"),
    ];
    let out = normalizer.traces(
        &Origin::default(),
        &traces_request(
            fallback,
            vec![span(
                "chat m",
                vec![string_kv("gen_ai.request.model", "m")],
                T0,
                T1,
            )],
        ),
    );
    assert_eq!(
        (
            out.batch.series[0].key.tenant.as_str(),
            out.batch.series[0].key.cluster.as_str()
        ),
        ("team-a", "gke-prod")
    );
}

#[test]
fn the_authenticated_cluster_wins() {
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let origin = Origin {
        authenticated_cluster: Some("eu-west-1".into()),
    };
    let claims_other = agent_resource("team-a", "us-east-1", "gateway", "gw-0");
    let out = normalizer.traces(
        &origin,
        &traces_request(
            claims_other,
            vec![span(
                "chat m",
                vec![string_kv("gen_ai.request.model", "m")],
                T0,
                T1,
            )],
        ),
    );
    assert_eq!(out.batch.series[0].key.cluster, "eu-west-1");
    // Even with no cluster attribute at all.
    let out = normalizer.traces(
        &origin,
        &traces_request(
            vec![string_kv("k8s.namespace.name", "team-a")],
            vec![span(
                "chat m",
                vec![string_kv("gen_ai.request.model", "m")],
                T0,
                T1,
            )],
        ),
    );
    assert_eq!(
        (out.rejected, out.batch.series[0].key.cluster.as_str()),
        (0, "eu-west-1")
    );
}

#[test]
fn first_sighting_primes_unless_the_series_just_started() {
    let normalizer = Normalizer::new(NormalizeConfig {
        fresh_series_window: Duration::from_secs(60),
        ..Default::default()
    });
    let resource = || agent_resource("team-a", "c1", "vllm", "vllm-0");
    let old = normalizer.metrics(
        &Origin::default(),
        &tokens(resource(), OLD_START, T0, 5000.0),
    );
    assert_eq!((old.accepted, old.batch.point_count()), (1, 0));
    let other_pod = agent_resource("team-a", "c1", "vllm", "vllm-1");
    let fresh = normalizer.metrics(
        &Origin::default(),
        &tokens(other_pod, T0 - 30 * SEC, T0, 42.0),
    );
    assert_eq!(
        plain_total(&fresh.batch, RL, Field::InputTokens),
        42.0,
        "pods are distinct series; a 30 s old series counts in full"
    );
}

#[test]
fn tenant_series_budget_folds_new_series_into_overflow_with_exact_totals() {
    let normalizer = Normalizer::new(NormalizeConfig {
        max_series_per_tenant: 3,
        ..Default::default()
    });
    let spans = chat_spans_per_model(0..5, T0, T1);
    let out = normalizer.traces(
        &Origin::default(),
        &traces_request(
            agent_resource("team-a", "c1", "gateway", "gw"),
            spans.clone(),
        ),
    );
    assert_eq!(out.accepted, 5);
    assert_eq!(
        models(&out.batch, RL),
        vec!["model-0", "model-1", "model-2", OVERFLOW_MODEL]
    );
    assert_eq!(out.dropped, vec![("series_overflow", 2)]);
    assert_eq!(plain_total(&out.batch, RL, Field::Requests), 5.0);
    let overflow: f64 = out
        .batch
        .series
        .iter()
        .filter(|s| s.key.model == OVERFLOW_MODEL)
        .flat_map(|s| {
            assert_eq!((s.key.cluster.as_str(), s.key.kind), ("c1", RL));
            &s.points
        })
        .filter(|p| p.field == FieldKey::plain(Field::Requests))
        .map(|p| match p.value {
            Value::Counter(n) => n,
            ref other => panic!("{other:?}"),
        })
        .sum();
    assert_eq!(overflow, 2.0, "model-3 and model-4, one request each");
    // Known series keep flowing; another tenant has its own budget.
    let again = normalizer.traces(
        &Origin::default(),
        &traces_request(
            agent_resource("team-a", "c1", "gateway", "gw"),
            spans[..1].to_vec(),
        ),
    );
    assert_eq!(plain_total(&again.batch, RL, Field::Requests), 1.0);
    let other = normalizer.traces(
        &Origin::default(),
        &traces_request(agent_resource("team-b", "c1", "gateway", "gw"), spans),
    );
    assert_eq!(other.dropped, vec![("series_overflow", 2)]);
    assert_eq!(models(&other.batch, RL).len(), 4);
}

const PROMPT: &str =
    "PROMPT-SECRET my social security number is 078-05-1120, summarise my medical file";

fn text(key: &str) -> KeyValue {
    string_kv(key, PROMPT)
}

#[test]
fn prompt_text_in_every_position_never_reaches_a_point() {
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let nested = kv(
        "gen_ai.input.messages",
        any_value::Value::KvlistValue(KeyValueList {
            values: vec![text("content"), text("role")],
        }),
    );
    let mut resource = agent_resource("team-a", "c1", "gateway", "gw");
    resource.extend([
        text("process.command_line"),
        text("user.id"),
        text("url.full"),
    ]);
    let mut attrs = vec![
        string_kv("gen_ai.operation.name", "chat"),
        string_kv("gen_ai.request.model", "gpt-4o"),
        int_kv("gen_ai.usage.input_tokens", 10),
        text("gen_ai.prompt"),
        text("gen_ai.completion"),
        text("gen_ai.system_instructions"),
        text("gen_ai.output.messages"),
        text("gen_ai.request.id"),
        text("gen_ai.response.id"),
        text("gen_ai.conversation.id"),
        text("user.id"),
        text("enduser.id"),
        text("url.full"),
        text("http.url"),
        text("llm.prompts"),
        text(PROMPT),
        nested,
    ];
    attrs.push(array_kv(
        "gen_ai.response.finish_reasons",
        vec![any_value::Value::StringValue(PROMPT.into())],
    ));
    let mut span = span(PROMPT, attrs, T0, T1);
    span.events = vec![Event {
        time_unix_nano: T0,
        name: PROMPT.into(),
        attributes: vec![text("gen_ai.event.content"), text("message")],
        dropped_attributes_count: 0,
    }];
    span.status = Some(opentelemetry_proto::tonic::trace::v1::Status {
        code: 2,
        message: PROMPT.into(),
    });
    let traces = normalizer.traces(
        &Origin::default(),
        &traces_request(resource.clone(), vec![span]),
    );
    assert_eq!(traces.accepted, 1);
    assert_eq!(plain_total(&traces.batch, RL, Field::Requests), 1.0);

    let mut dp_attrs = vec![
        string_kv("model_name", "m"),
        text("finished_reason"),
        text("error.type"),
        text("prompt"),
        text("modelName"),
    ];
    dp_attrs.push(text("mesh_llm.failure_reason"));
    let metrics = normalizer.metrics(
        &Origin::default(),
        &metrics_request(
            resource,
            vec![
                gauge(
                    "vllm:num_requests_waiting",
                    vec![number(dp_attrs.clone(), 0, T0, 3.0)],
                ),
                delta_counter(
                    "mesh_llm_model_launch_failure_total",
                    vec![number(dp_attrs.clone(), T0, T1, 1.0)],
                ),
                delta_counter(
                    "modelplane.failures",
                    vec![number(vec![text("modelplane.failure.cause")], T0, T1, 1.0)],
                ),
                gauge("DCGM_FI_DEV_GPU_UTIL", vec![number(dp_attrs, 0, T0, 50.0)]),
            ],
        ),
    );
    assert!(metrics.batch.point_count() >= 3);
    let everything = format!(
        "{:?}{:?}{}{}",
        traces.batch, metrics.batch, traces.rejected_message, metrics.rejected_message
    );
    for needle in ["PROMPT-SECRET", "078-05-1120", "medical"] {
        assert!(
            !everything.contains(needle),
            "{needle} leaked: {everything}"
        );
    }
}

#[test]
fn concurrent_requests_share_cumulative_state_safely() {
    let normalizer = Arc::new(Normalizer::new(NormalizeConfig::default()));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let normalizer = Arc::clone(&normalizer);
            std::thread::spawn(move || {
                let pod = format!("vllm-{t}");
                let mut total = 0.0;
                for step in 0..200u64 {
                    let req = tokens(
                        agent_resource("team-a", "c1", "vllm", &pod),
                        OLD_START,
                        T0 + step * SEC,
                        10.0 * step as f64,
                    );
                    total += plain_total(
                        &normalizer.metrics(&Origin::default(), &req).batch,
                        RL,
                        Field::InputTokens,
                    );
                }
                total
            })
        })
        .collect();
    for thread in threads {
        // Primed at step 0 (value 0), then +10 per step for 199 steps.
        assert_eq!(thread.join().unwrap(), 1990.0);
    }
    assert_eq!(normalizer.cumulative_series(), 4);
}
