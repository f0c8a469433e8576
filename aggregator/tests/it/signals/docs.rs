//! The docs cannot drift from the product:
//! - docs/signals.md's source → signal tables are the mapping table
//!   (`cargo run -p signal-aggregator --example generate-docs` rewrites them);
//! - the answer examples in docs/api.md and `/openapi.json` are what a real
//!   run answers for a fixed fleet sent over OTLP (`UPDATE_API_EXAMPLES=1`
//!   and this test rewrites `aggregator/src/api/examples.json` and the
//!   examples in docs/api.md);
//! - every field name of a real answer is in docs/api.md and in the
//!   OpenAPI schema, and every answer field docs/signals.md names is in a
//!   real answer.

use std::collections::BTreeSet;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use otlp_test_kit::*;
use serde_json::{Value, json};
use signal_aggregator::api::openapi;
use signal_aggregator::normalize::NormalizeConfig;
use signal_aggregator::normalize::mapping::{self, answer_field, rows};
use signal_aggregator::signal::SignalKind;

use crate::support::stack::{Stack, Transport};

const SEC: u64 = 1_000_000_000;
const MODEL: &str = "llama-3.1-8b";
const H100: &str = "NVIDIA H100 80GB HBM3";

fn root(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

#[test]
fn docs_signals_md_tables_are_the_mapping_table() {
    let page = std::fs::read_to_string(root("docs/signals.md")).unwrap();
    let rendered = mapping::render_signals_doc(&page).expect("docs/signals.md has the markers");
    assert!(
        rendered == page,
        "docs/signals.md is stale: run `cargo run -p signal-aggregator --example generate-docs`"
    );
}

// --- the fixed fleet -------------------------------------------------------

fn resource(cluster: &str, service: &str) -> Vec<KeyValue> {
    vec![
        string_kv("modelplane.tenant", "team-a"),
        string_kv("modelplane.cluster", cluster),
        string_kv("modelplane.model", MODEL),
        string_kv("service.name", service),
    ]
}

/// vLLM as the agent scrapes it (cumulative, no start time; the process
/// started 10 s ago), DCGM, the modelplane controller, mesh-llm and a
/// gateway's spans, for two clusters of one tenant.
async fn send_fleet(stack: &Stack) {
    let now = unix_nanos();
    let started = now - 10 * SEC;
    let model = || vec![string_kv("model_name", MODEL)];
    let process = || {
        gauge(
            "process_start_time_seconds",
            vec![number(vec![], 0, now, (started / SEC) as f64)],
        )
    };
    let latency = |name: &str, counts: &[u64], sum: f64| {
        histogram(
            name,
            vec![hist(
                model(),
                0,
                now,
                &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5],
                counts,
                sum,
            )],
        )
    };
    for (cluster, scale) in [("us-east-1", 1u64), ("eu-west-1", 2)] {
        let requests = 100 * scale;
        let vllm = metrics_request(
            resource(cluster, "vllm"),
            vec![
                process(),
                // eu-west-1 is slower to first token.
                if scale == 1 {
                    latency(
                        "vllm:time_to_first_token_seconds",
                        &[0, 10, 60, 20, 8, 2, 0],
                        30.0,
                    )
                } else {
                    latency(
                        "vllm:time_to_first_token_seconds",
                        &[0, 5, 60, 60, 50, 25, 0],
                        120.0,
                    )
                },
                latency(
                    "vllm:inter_token_latency_seconds",
                    &[80, 15, 5, 0, 0, 0, 0],
                    3.0,
                ),
                latency(
                    "vllm:e2e_request_latency_seconds",
                    &[0, 0, 0, 20, 50, 28, 2],
                    90.0,
                ),
                latency(
                    "vllm:request_queue_time_seconds",
                    &[90, 6, 4, 0, 0, 0, 0],
                    1.5,
                ),
                counter(
                    "vllm:request_success_total",
                    vec![
                        number(
                            [model(), vec![string_kv("finished_reason", "stop")]].concat(),
                            0,
                            now,
                            (requests - 2) as f64,
                        ),
                        number(
                            [model(), vec![string_kv("finished_reason", "error")]].concat(),
                            0,
                            now,
                            2.0,
                        ),
                    ],
                ),
                counter(
                    "vllm:prompt_tokens_total",
                    vec![number(model(), 0, now, 40_000.0)],
                ),
                counter(
                    "vllm:generation_tokens_total",
                    vec![number(model(), 0, now, 8_000.0)],
                ),
                counter(
                    "vllm:prefix_cache_queries_total",
                    vec![number(model(), 0, now, 40_000.0)],
                ),
                counter(
                    "vllm:prefix_cache_hits_total",
                    vec![number(model(), 0, now, 25_000.0)],
                ),
                counter(
                    "vllm:num_preemptions_total",
                    vec![number(model(), 0, now, 1.0)],
                ),
                gauge(
                    "vllm:num_requests_running",
                    vec![number(model(), 0, now, 24.0)],
                ),
                gauge(
                    "vllm:num_requests_waiting",
                    vec![number(model(), 0, now, 3.0)],
                ),
                gauge(
                    "vllm:kv_cache_usage_perc",
                    vec![number(model(), 0, now, 0.7)],
                ),
            ],
        );
        assert_eq!(stack.metrics(Transport::Grpc, vllm).await, 0);
        let gpu = || vec![string_kv("modelName", H100), string_kv("gpu", "0")];
        let dcgm = metrics_request(
            resource(cluster, "dcgm-exporter"),
            vec![
                process(),
                gauge("DCGM_FI_DEV_GPU_UTIL", vec![number(gpu(), 0, now, 71.0)]),
                gauge("DCGM_FI_DEV_FB_USED", vec![number(gpu(), 0, now, 61_440.0)]),
                gauge("DCGM_FI_DEV_FB_FREE", vec![number(gpu(), 0, now, 20_480.0)]),
                counter(
                    "DCGM_EXP_XID_ERRORS_COUNT",
                    vec![number(
                        [gpu(), vec![int_kv("xid", 79)]].concat(),
                        0,
                        now,
                        1.0,
                    )],
                ),
            ],
        );
        assert_eq!(stack.metrics(Transport::HttpProtobuf, dcgm).await, 0);
        let sku = || vec![string_kv("modelplane.gpu.sku", H100)];
        let phase = |p: &str, counts: &[u64], sum: f64| {
            hist(
                vec![string_kv("modelplane.coldstart.phase", p)],
                started,
                now,
                &[10.0, 30.0, 60.0, 120.0],
                counts,
                sum,
            )
        };
        let controller = metrics_request(
            resource(cluster, "modelplane-controller"),
            vec![
                gauge("modelplane.gpu.count", vec![number(sku(), 0, now, 16.0)]),
                gauge(
                    "modelplane.gpu.allocated",
                    vec![number(sku(), 0, now, 12.0)],
                ),
                gauge(
                    "modelplane.gpu.price_per_hour",
                    vec![number(sku(), 0, now, 4.0)],
                ),
                counter(
                    "modelplane.gpu.seconds",
                    vec![number(sku(), started, now, 3_600.0)],
                ),
                gauge(
                    "modelplane.replicas",
                    vec![
                        number(
                            vec![string_kv("modelplane.replica.state", "active")],
                            0,
                            now,
                            3.0,
                        ),
                        number(
                            vec![string_kv("modelplane.replica.state", "starting")],
                            0,
                            now,
                            1.0,
                        ),
                    ],
                ),
                gauge(
                    "modelplane.modelcache.bytes_staged",
                    vec![number(vec![], 0, now, 1.6e10)],
                ),
                histogram(
                    "modelplane.coldstart.phase.duration",
                    vec![
                        phase("gpu_procurement", &[0, 1, 1, 0, 0], 55.0),
                        phase("image_load", &[1, 1, 0, 0, 0], 25.0),
                        phase("model_load", &[0, 0, 1, 1, 0], 130.0),
                    ],
                ),
                counter(
                    "modelplane.failures",
                    vec![number(
                        [sku(), vec![string_kv("modelplane.failure.cause", "oom")]].concat(),
                        started,
                        now,
                        2.0,
                    )],
                ),
            ],
        );
        assert_eq!(stack.metrics(Transport::HttpJson, controller).await, 0);
        let mesh = |extra: &[(&str, &str)]| {
            let mut attrs = vec![
                string_kv("mesh_llm.model", MODEL),
                string_kv("mesh_llm.gpu_name", H100),
                string_kv("mesh_llm.context_bucket", "16k_32k"),
            ];
            attrs.extend(extra.iter().map(|(k, v)| string_kv(k, *v)));
            attrs
        };
        let mesh_llm = metrics_request(
            resource(cluster, "mesh-llm"),
            vec![
                counter(
                    "mesh_llm_model_launch_total",
                    vec![number(mesh(&[]), started, now, 5.0)],
                ),
                counter(
                    "mesh_llm_model_launch_success_total",
                    vec![number(mesh(&[]), started, now, 3.0)],
                ),
                counter(
                    "mesh_llm_model_launch_failure_total",
                    vec![number(
                        mesh(&[("mesh_llm.failure_reason", "health_timeout")]),
                        started,
                        now,
                        2.0,
                    )],
                ),
                counter(
                    "mesh_llm_model_unload_total",
                    vec![number(mesh(&[]), started, now, 1.0)],
                ),
                gauge(
                    "mesh_llm_model_loaded",
                    vec![number(mesh(&[]), 0, now, 1.0)],
                ),
                gauge(
                    "mesh_llm_model_context_length",
                    vec![number(mesh(&[]), 0, now, 32_768.0)],
                ),
                histogram(
                    "mesh_llm_model_launch_duration_ms",
                    vec![hist(
                        mesh(&[]),
                        started,
                        now,
                        &[10_000.0, 30_000.0, 60_000.0],
                        &[0, 2, 1, 0],
                        75_000.0,
                    )],
                ),
                histogram(
                    "mesh_llm_model_uptime_s",
                    vec![hist(
                        mesh(&[]),
                        started,
                        now,
                        &[600.0, 3_600.0, 86_400.0],
                        &[0, 1, 0, 0],
                        1_800.0,
                    )],
                ),
            ],
        );
        assert_eq!(stack.metrics(Transport::Grpc, mesh_llm).await, 0);
        // A gateway's spans with prefix hashes (PrefixHash only: the
        // engine's metrics own RequestLifecycle).
        let spans: Vec<_> = (0..40u64)
            .map(|i| {
                let hash = if i % 4 == 0 {
                    0x9f3c_1a0b_7d2e_4f61
                } else {
                    i % 10 + scale * 5
                };
                span(
                    "chat",
                    vec![
                        string_kv("gen_ai.request.model", MODEL),
                        string_kv("modelplane.signal", "PrefixHash"),
                        string_kv("modelplane.prefix.hash", format!("{hash:016x}")),
                    ],
                    now - 2 * SEC,
                    now - SEC,
                )
            })
            .collect();
        assert_eq!(
            stack
                .traces(traces_request(resource(cluster, "gateway"), spans))
                .await,
            0
        );
    }
}

/// The window every example shows (the run's own window moves with the clock).
fn example_window() -> Value {
    json!({ "from": "2026-01-01T00:55:00Z", "to": "2026-01-01T01:00:00Z",
            "from_unix_secs": 1767228900u64, "to_unix_secs": 1767229200u64, "seconds": 300 })
}

/// Every answer the examples show, from a real run.
async fn real_answers() -> Value {
    let stack = Stack::start(NormalizeConfig::default()).await;
    send_fleet(&stack).await;
    let mut signals = serde_json::Map::new();
    for kind in SignalKind::ALL {
        let mut body = stack
            .get(&format!(
                "/v1/tenants/team-a/signals/{}?cluster=us-east-1",
                kind.as_str()
            ))
            .await;
        body["window"] = example_window();
        signals.insert(kind.as_str().to_string(), body);
    }
    let mut out = json!({ "signals": signals });
    for (name, path) in [
        (
            "compare",
            "/v1/fleet/compare?kind=RequestLifecycle&field=ttft_seconds&quantile=0.99",
        ),
        ("capacity", "/v1/scheduler/capacity"),
        (
            "prefix_overlap",
            "/v1/scheduler/prefix-overlap?model=llama-3.1-8b&top=2",
        ),
        ("overflow", "/v1/scheduler/overflow?model=llama-3.1-8b"),
    ] {
        let mut body = stack.get(path).await;
        body["window"] = example_window();
        out[name] = body;
    }
    out
}

/// One line per top-level key, values compact: how docs/api.md shows a group.
fn doc_json(value: &Value) -> String {
    let object = value.as_object().unwrap();
    let lines: Vec<String> = object
        .iter()
        .map(|(k, v)| format!(" {}: {}", json!(k), serde_json::to_string(v).unwrap()))
        .collect();
    format!("{{\n{}\n}}", lines.join(",\n"))
}

fn begin(name: &str) -> String {
    format!("<!-- BEGIN GENERATED: example {name} (aggregator/tests/it/signals/docs.rs) -->")
}
const END: &str = "<!-- END GENERATED -->";

/// docs/api.md with each example block filled from `answers`.
fn render_api_md(page: &str, answers: &Value) -> String {
    let mut page = page.to_string();
    let mut blocks: Vec<(String, Value)> = SignalKind::ALL
        .iter()
        .map(|k| {
            (
                k.as_str().to_string(),
                answers["signals"][k.as_str()]["groups"][0].clone(),
            )
        })
        .collect();
    let mut envelope = answers["signals"]["RequestLifecycle"].clone();
    envelope["groups"] =
        json!([{ "cluster": "us-east-1", "model": MODEL, "...": "kind-specific fields, below" }]);
    blocks.push(("envelope".into(), envelope));
    for name in ["compare", "capacity", "prefix_overlap", "overflow"] {
        blocks.push((name.into(), answers[name].clone()));
    }
    for (name, value) in blocks {
        let begin = begin(&name);
        let start = page
            .find(&begin)
            .unwrap_or_else(|| panic!("docs/api.md has no {begin}"))
            + begin.len();
        let end = page[start..].find(END).expect("an END marker") + start;
        let block = format!("\n\n```json\n{}\n```\n\n", doc_json(&value));
        page.replace_range(start..end, &block);
    }
    page
}

#[tokio::test]
async fn api_examples_are_a_real_run_and_documented_fields_are_real() {
    let answers = real_answers().await;
    let examples_path = root("aggregator/src/api/examples.json");
    let api_md_path = root("docs/api.md");
    let examples = format!("{}\n", serde_json::to_string_pretty(&answers).unwrap());
    let mut api_md = std::fs::read_to_string(&api_md_path).unwrap();
    let rendered = render_api_md(&api_md, &answers);
    if std::env::var_os("UPDATE_API_EXAMPLES").is_some() {
        std::fs::write(&examples_path, &examples).unwrap();
        std::fs::write(&api_md_path, &rendered).unwrap();
        api_md = rendered.clone();
    }
    assert!(
        std::fs::read_to_string(&examples_path).unwrap() == examples,
        "aggregator/src/api/examples.json is not what the fixed fleet answers: rerun this test with UPDATE_API_EXAMPLES=1"
    );
    assert!(
        rendered == api_md,
        "docs/api.md's examples are not what the fixed fleet answers: rerun this test with UPDATE_API_EXAMPLES=1"
    );
    assert!(!examples.contains("-0.0"));

    // Every field name of every real answer is documented in docs/api.md
    // and is a property in the OpenAPI document.
    let document = openapi::document().to_string();
    let mut names = BTreeSet::new();
    let signals = answers["signals"].as_object().unwrap();
    for body in signals
        .values()
        .chain(["compare", "capacity", "prefix_overlap", "overflow"].map(|n| &answers[n]))
    {
        field_names(body, &mut names);
    }
    for name in &names {
        assert!(
            api_md.contains(&format!("`{name}`")) || api_md.contains(&format!("\"{name}\"")),
            "docs/api.md does not mention `{name}`"
        );
        assert!(
            document.contains(&format!("\"{name}\":")),
            "/openapi.json has no property `{name}`"
        );
    }
    // Every field docs/api.md's signal and scheduler sections name (outside
    // the generated examples) is in a real answer: the docs promise nothing
    // the product does not answer. Besides field names those sections
    // name enum values, the compare parameters and one signal field.
    const NOT_FIELDS: &[&str] = &[
        "gpu_procurement",
        "image_load",
        "model_load",
        "engine_startup",
        "cache_hydration",
        "hbm",
        "cpu",
        "ssd",
        "network",
        "unexpected_exit",
        "phase",
        "phase_seconds",
        "gpu_seconds",
    ];
    let mut values = names.clone();
    all_keys(&answers, &mut values);
    let prose = without_generated(&api_md);
    let sections = &prose
        [prose.find("### RequestLifecycle").unwrap()..prose.find("## `GET /metrics`").unwrap()];
    for word in backticked(sections) {
        assert!(
            values.contains(&word) || NOT_FIELDS.contains(&word.as_str()),
            "docs/api.md names `{word}`, which no answer has"
        );
    }
    // And every answer field docs/signals.md names is in a real answer.
    let signals_md = std::fs::read_to_string(root("docs/signals.md")).unwrap();
    for row in rows() {
        for target in &row.targets {
            let path = answer_field(target.kind, target.field);
            let first = path.split('.').next().unwrap();
            assert!(
                names.contains(first),
                "{}: `{path}` is in no answer",
                row.metric
            );
            assert!(signals_md.contains(&format!("`{path}`")), "{path}");
            assert!(api_md.contains(&format!("`{first}`")), "{first}");
        }
    }
}

/// Maps whose keys are values (SKUs, tiers, phases, reasons, clusters,
/// metric names), not field names.
const VALUE_KEYED: &[&str] = &[
    "gpus_by_sku",
    "kv_cache_utilization_by_tier",
    "phases",
    "failures_by_reason",
    "failures_by_sku",
    "failures_by_cause",
    "by_sku",
    "counts",
    "unmapped_points",
];

fn field_names(value: &Value, names: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                names.insert(k.clone());
                if VALUE_KEYED.contains(&k.as_str()) {
                    if let Some(inner) = v.as_object() {
                        inner.values().for_each(|v| field_names(v, names));
                    }
                } else {
                    field_names(v, names);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| field_names(v, names)),
        _ => {}
    }
}

fn all_keys(value: &Value, keys: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                keys.insert(k.clone());
                all_keys(v, keys);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| all_keys(v, keys)),
        _ => {}
    }
}

fn without_generated(page: &str) -> String {
    let mut out = String::new();
    let mut rest = page;
    while let Some(start) = rest.find("<!-- BEGIN GENERATED") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find(END).expect("an END marker") + start + END.len();
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Backticked lower-case identifiers (`like_this`).
fn backticked(text: &str) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| {
            !w.is_empty()
                && w.starts_with(|c: char| c.is_ascii_lowercase())
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .map(str::to_string)
        .collect()
}
