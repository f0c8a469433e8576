//! mesh-llm launch/lifecycle metrics (seed 5), llmkube and the documented
//! `modelplane.*` schema (cold-start phases, cost, capacity, failures).

use crate::support::normalize::*;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use otlp_test_kit::*;
use signal_aggregator::normalize::{NormalizeConfig, Normalizer};
use signal_aggregator::signal::{
    DIM_CAUSE, DIM_CONTEXT, DIM_PHASE, DIM_REASON, DIM_SKU, DIM_TIER, Field, FieldKey, Origin,
    SignalKind,
};

const CS: SignalKind = SignalKind::ColdStart;

fn mesh_resource() -> Vec<KeyValue> {
    vec![
        string_kv("service.name", "mesh-llm"),
        string_kv("service.version", "0.42.0"),
        string_kv("modelplane.tenant", "community"),
        string_kv("modelplane.cluster", "mesh-node-a"),
    ]
}

fn mesh_attrs(extra: Vec<KeyValue>) -> Vec<KeyValue> {
    let mut attrs = vec![
        string_kv("mesh_llm.model", "Qwen3-30B-A3B-Q4_K_M"),
        string_kv("mesh_llm.architecture", "qwen3moe"),
        string_kv("mesh_llm.quantization", "Q4_K_M"),
        string_kv("mesh_llm.launch_kind", "startup"),
        string_kv("mesh_llm.gpu_name", "Apple M3 Max"),
        string_kv("mesh_llm.gpu_stable_id", "c0ffee-1234"),
        string_kv("mesh_llm.backend", "metal"),
        string_kv("mesh_llm.context_bucket", "16k_32k"),
    ];
    attrs.extend(extra);
    attrs
}

fn mesh_key(field: Field, dims: &[(&str, &str)]) -> FieldKey {
    let mut key = FieldKey::plain(field);
    for (k, v) in dims {
        key.dims.insert((*k).into(), (*v).into());
    }
    key
}

#[test]
fn mesh_llm_launch_lifecycle() {
    // The Rust OTel SDK exports cumulative sums with the process start time.
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let start = T0 - 20 * SEC; // the node started 20 s ago: its counts are new.
    let failure = |reason: &str, v| {
        number(
            mesh_attrs(vec![string_kv("mesh_llm.failure_reason", reason)]),
            start,
            T0,
            v,
        )
    };
    let req = metrics_request(
        mesh_resource(),
        vec![
            counter(
                "mesh_llm_model_launch_total",
                vec![number(mesh_attrs(vec![]), start, T0, 3.0)],
            ),
            counter(
                "mesh_llm_model_launch_success_total",
                vec![number(mesh_attrs(vec![]), start, T0, 1.0)],
            ),
            counter(
                "mesh_llm_model_launch_failure_total",
                vec![
                    failure("health_timeout", 1.0),
                    failure("segfault at 0x0 in ggml", 1.0),
                ],
            ),
            counter(
                "mesh_llm_model_exit_unexpected_total",
                vec![number(mesh_attrs(vec![]), start, T0, 1.0)],
            ),
            counter(
                "mesh_llm_model_unload_total",
                vec![number(mesh_attrs(vec![]), start, T0, 1.0)],
            ),
            gauge(
                "mesh_llm_loaded_models",
                vec![number(vec![], start, T0, 1.0)],
            ),
            gauge(
                "mesh_llm_model_context_length",
                vec![number(mesh_attrs(vec![]), start, T0, 32768.0)],
            ),
            histogram(
                "mesh_llm_model_launch_duration_ms",
                vec![hist(
                    mesh_attrs(vec![]),
                    start,
                    T0,
                    &[1000.0, 10000.0, 60000.0],
                    &[0, 0, 1, 0],
                    41_000.0,
                )],
            ),
            histogram(
                "mesh_llm_model_uptime_s",
                vec![hist(
                    mesh_attrs(vec![]),
                    start,
                    T0,
                    &[60.0, 3600.0],
                    &[1, 0, 0],
                    12.0,
                )],
            ),
        ],
    );
    let out = normalizer.metrics(&Origin::default(), &req);
    assert_eq!(out.rejected, 0, "{}", out.rejected_message);
    let b = &out.batch;
    let sku = "apple-m3-max";
    let base = [(DIM_SKU, sku), (DIM_CONTEXT, "16k_32k")];
    assert_eq!(
        counter_total(b, CS, &mesh_key(Field::LaunchAttempts, &base)),
        3.0
    );
    assert_eq!(
        counter_total(b, CS, &mesh_key(Field::LaunchSuccesses, &base)),
        1.0
    );
    let timeout = [
        (DIM_SKU, sku),
        (DIM_CONTEXT, "16k_32k"),
        (DIM_REASON, "health_timeout"),
    ];
    assert_eq!(
        counter_total(b, CS, &mesh_key(Field::LaunchFailures, &timeout)),
        1.0
    );
    // An unknown (free-text) reason is bounded to `other`.
    let other = [
        (DIM_SKU, sku),
        (DIM_CONTEXT, "16k_32k"),
        (DIM_REASON, "other"),
    ];
    assert_eq!(
        counter_total(b, CS, &mesh_key(Field::LaunchFailures, &other)),
        1.0
    );
    let rel = SignalKind::Reliability;
    assert_eq!(
        counter_total(
            b,
            rel,
            &mesh_key(
                Field::Failures,
                &[(DIM_SKU, sku), (DIM_CAUSE, "health_timeout")]
            )
        ),
        1.0
    );
    assert_eq!(
        counter_total(
            b,
            rel,
            &mesh_key(
                Field::Failures,
                &[(DIM_SKU, sku), (DIM_CAUSE, "unexpected_exit")]
            )
        ),
        1.0
    );
    assert_eq!(
        counter_total(b, CS, &mesh_key(Field::UnexpectedExits, &[(DIM_SKU, sku)])),
        1.0
    );
    assert_eq!(counter_total(b, CS, &mesh_key(Field::Unloads, &base)), 1.0);
    assert_eq!(
        gauge_value(b, CS, &mesh_key(Field::ContextLength, &base)),
        32768.0
    );
    assert_eq!(
        gauge_value(b, CS, &FieldKey::plain(Field::LoadedModels)),
        1.0
    );
    let launch = histogram_of(b, CS, Field::LaunchSeconds);
    assert_eq!(launch.bounds, vec![1.0, 10.0, 60.0]);
    assert!(close(launch.sum, 41.0));
    assert_eq!(histogram_of(b, CS, Field::UptimeSeconds).count, 1);
    assert_eq!(
        models(b, CS),
        vec![String::new(), "Qwen3-30B-A3B-Q4_K_M".to_string()]
    );
    let debug = format!("{b:?}");
    assert!(
        !debug.contains("segfault") && !debug.contains("c0ffee"),
        "raw errors and device ids never stored"
    );
}

#[test]
fn modelplane_schema() {
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let model = || string_kv("gen_ai.request.model", "meta-llama/Llama-3.1-70B-Instruct");
    let phase = |p: &str, seconds: f64| {
        hist(
            vec![model(), string_kv("modelplane.coldstart.phase", p)],
            T0,
            T1,
            &[10.0, 60.0, 300.0],
            &[0, 1, 0, 0],
            seconds,
        )
    };
    let sku = |extra: Vec<KeyValue>| {
        let mut a = vec![string_kv("modelplane.gpu.sku", "NVIDIA H100 80GB HBM3")];
        a.extend(extra);
        a
    };
    let req = metrics_request(
        agent_resource("team-a", "us-east-1", "gateway", "modelplane-controller-0"),
        vec![
            delta_histogram(
                "modelplane.coldstart.phase.duration",
                vec![
                    phase("gpu_procurement", 45.0),
                    phase("image_load", 20.0),
                    phase("model_load", 50.0),
                    phase("engine_startup", 12.0),
                    phase("cache_hydration", 30.0),
                    phase("coffee_break", 1.0),
                ],
            ),
            gauge(
                "modelplane.gpu.price_per_hour",
                vec![number(sku(vec![]), 0, T1, 2.49)],
            ),
            delta_counter(
                "modelplane.gpu.seconds",
                vec![number(sku(vec![model()]), T0, T1, 120.0)],
            ),
            gauge(
                "modelplane.gpu.count",
                vec![number(sku(vec![]), 0, T1, 64.0)],
            ),
            gauge(
                "modelplane.gpu.allocated",
                vec![number(sku(vec![]), 0, T1, 48.0)],
            ),
            gauge(
                "modelplane.kv_cache.utilization",
                vec![
                    number(vec![string_kv("modelplane.kv.tier", "cpu")], 0, T1, 0.3),
                    number(vec![string_kv("modelplane.kv.tier", "l9")], 0, T1, 0.3),
                ],
            ),
            gauge(
                "modelplane.replicas",
                vec![
                    number(
                        vec![model(), string_kv("modelplane.replica.state", "active")],
                        0,
                        T1,
                        3.0,
                    ),
                    number(
                        vec![model(), string_kv("modelplane.replica.state", "starting")],
                        0,
                        T1,
                        1.0,
                    ),
                ],
            ),
            gauge(
                "modelplane.modelcache.bytes_staged",
                vec![number(vec![model()], 0, T1, 1.4e11)],
            ),
            delta_counter(
                "modelplane.failures",
                vec![number(
                    sku(vec![string_kv("modelplane.failure.cause", "nvlink_error")]),
                    T0,
                    T1,
                    2.0,
                )],
            ),
        ],
    );
    let out = normalizer.metrics(&Origin::default(), &req);
    assert_eq!(
        out.rejected, 2,
        "unknown phase and tier are refused: {}",
        out.rejected_message
    );
    assert!(
        out.rejected_message.contains("modelplane.coldstart.phase")
            && out.rejected_message.contains("modelplane.kv.tier")
    );
    let b = &out.batch;
    let phases: Vec<String> = points(b, CS, Field::PhaseSeconds)
        .iter()
        .map(|(_, p)| p.field.dims[DIM_PHASE].clone())
        .collect();
    assert_eq!(
        phases,
        vec![
            "gpu_procurement",
            "image_load",
            "model_load",
            "engine_startup",
            "cache_hydration"
        ]
    );
    let h100 = "nvidia-h100-80gb-hbm3";
    assert_eq!(
        gauge_value(
            b,
            SignalKind::Cost,
            &FieldKey::with_dim(Field::PricePerGpuHour, DIM_SKU, h100)
        ),
        2.49
    );
    assert_eq!(
        counter_total(
            b,
            SignalKind::Cost,
            &FieldKey::with_dim(Field::GpuSeconds, DIM_SKU, h100)
        ),
        120.0
    );
    let cap = SignalKind::Capacity;
    assert_eq!(
        gauge_value(b, cap, &FieldKey::with_dim(Field::Gpus, DIM_SKU, h100)),
        64.0
    );
    assert_eq!(
        gauge_value(
            b,
            cap,
            &FieldKey::with_dim(Field::GpusAllocated, DIM_SKU, h100)
        ),
        48.0
    );
    assert_eq!(
        gauge_value(
            b,
            cap,
            &FieldKey::with_dim(Field::KvCacheUtilization, DIM_TIER, "cpu")
        ),
        0.3
    );
    assert_eq!(
        gauge_value(b, cap, &FieldKey::plain(Field::ReplicasActive)),
        3.0
    );
    assert_eq!(
        gauge_value(b, cap, &FieldKey::plain(Field::ReplicasStarting)),
        1.0
    );
    assert_eq!(
        gauge_value(b, cap, &FieldKey::plain(Field::CacheBytesStaged)),
        1.4e11
    );
    let mut failure = FieldKey::with_dim(Field::Failures, DIM_CAUSE, "nvlink_error");
    failure.dims.insert(DIM_SKU.into(), h100.into());
    assert_eq!(counter_total(b, SignalKind::Reliability, &failure), 2.0);
}

#[test]
fn engine_and_controller_load_times_are_cold_start_phases() {
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let fresh = T0 - 10 * SEC;
    let req = metrics_request(
        agent_resource("team-a", "us-east-1", "vllm", "vllm-0"),
        vec![
            histogram(
                "vllm:model_load_duration_seconds",
                vec![hist(
                    vec![string_kv("model_name", "m")],
                    fresh,
                    T0,
                    &[30.0, 120.0],
                    &[0, 1, 0],
                    75.0,
                )],
            ),
            histogram(
                "llmkube_model_download_duration_seconds",
                vec![hist(vec![], fresh, T0, &[60.0, 600.0], &[0, 1, 0], 310.0)],
            ),
        ],
    );
    let out = normalizer.metrics(&Origin::default(), &req);
    let phases: Vec<(String, String)> = points(&out.batch, CS, Field::PhaseSeconds)
        .iter()
        .map(|(k, p)| (k.model.clone(), p.field.dims[DIM_PHASE].clone()))
        .collect();
    assert_eq!(
        phases,
        vec![
            ("m".into(), "model_load".into()),
            (String::new(), "cache_hydration".into())
        ]
    );
}
