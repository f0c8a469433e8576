//! llm-d endpoint picker metric name generations and DCGM GPU metrics. The
//! current generation (`llm_d_epp_`) as a real EPP serves it, through the real
//! agent, is in `agent_capture`; here the older names, their dual emission
//! next to the current ones, and DCGM fields the capture does not check.

use crate::support::normalize::*;
use opentelemetry_proto::tonic::metrics::v1::Metric;
use otlp_test_kit::*;
use signal_aggregator::normalize::{NormalizeConfig, Normalizer};
use signal_aggregator::signal::{
    DIM_CAUSE, DIM_SKU, DIM_TIER, Field, FieldKey, Origin, SignalKind,
};

const RL: SignalKind = SignalKind::RequestLifecycle;

fn epp_scrape(prefix_req: &str, prefix_pool: &str, time: u64, k: f64) -> Vec<Metric> {
    let req = || {
        vec![
            string_kv("model_name", "llama-chat"),
            string_kv("target_model_name", "meta-llama/Llama-3.1-8B-Instruct"),
        ]
    };
    let n = |v: f64| number(req(), 0, time, v);
    let pool = |v: f64| number(vec![string_kv("name", "llama-pool")], 0, time, v);
    let tok = |sum: f64| {
        hist(
            req(),
            0,
            time,
            &[64.0, 1024.0],
            &[0, 2 * k as u64, 0],
            sum * k,
        )
    };
    let (input, output, running, ready) = if prefix_req == "llm_d_epp_" {
        (
            "request_input_tokens",
            "request_output_tokens",
            "request_running",
            "ready_endpoints",
        )
    } else {
        (
            "input_tokens",
            "output_tokens",
            "running_requests",
            "ready_pods",
        )
    };
    vec![
        counter(&format!("{prefix_req}request_total"), vec![n(10.0 * k)]),
        counter(&format!("{prefix_req}request_error_total"), vec![n(k)]),
        histogram(
            &format!("{prefix_req}request_duration_seconds"),
            vec![hist(
                req(),
                0,
                time,
                &[0.5, 1.0],
                &[k as u64, 9 * k as u64, 0],
                8.0 * k,
            )],
        ),
        histogram(&format!("{prefix_req}{input}"), vec![tok(700.0)]),
        histogram(&format!("{prefix_req}{output}"), vec![tok(300.0)]),
        gauge(&format!("{prefix_req}{running}"), vec![n(5.0)]),
        gauge(
            &format!("{prefix_pool}average_kv_cache_utilization"),
            vec![pool(0.55)],
        ),
        gauge(&format!("{prefix_pool}{ready}"), vec![pool(4.0)]),
    ]
}

fn check_epp(prefix_req: &str, prefix_pool: &str) {
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let resource = agent_resource("team-a", "us-east-1", "epp", "epp-0");
    normalizer.metrics(
        &Origin::default(),
        &metrics_request(
            resource.clone(),
            epp_scrape(prefix_req, prefix_pool, T0, 1.0),
        ),
    );
    let out = normalizer.metrics(
        &Origin::default(),
        &metrics_request(resource, epp_scrape(prefix_req, prefix_pool, T1, 3.0)),
    );
    assert_eq!(out.rejected, 0, "{}", out.rejected_message);
    let b = &out.batch;
    // target_model_name (the served model) wins over the requested alias.
    assert_eq!(
        models(b, RL),
        vec!["meta-llama/Llama-3.1-8B-Instruct".to_string()]
    );
    assert!(close(plain_total(b, RL, Field::Requests), 20.0));
    assert!(close(plain_total(b, RL, Field::Errors), 2.0));
    assert_eq!(histogram_of(b, RL, Field::E2eSeconds).count, 20);
    assert!(close(plain_total(b, RL, Field::InputTokens), 1400.0));
    assert!(close(plain_total(b, RL, Field::OutputTokens), 600.0));
    assert_eq!(
        gauge_value(b, RL, &FieldKey::plain(Field::RunningRequests)),
        5.0
    );
    // Pool-wide readings belong to no single model.
    let kv = FieldKey::with_dim(Field::KvCacheUtilization, DIM_TIER, "hbm");
    assert_eq!(gauge_value(b, SignalKind::Capacity, &kv), 0.55);
    assert_eq!(models(b, SignalKind::Capacity), vec![String::new()]);
    assert_eq!(
        gauge_value(
            b,
            SignalKind::Capacity,
            &FieldKey::plain(Field::ReplicasActive)
        ),
        4.0
    );
}

#[test]
fn epp_generation_1_inference_model() {
    check_epp("inference_model_", "inference_pool_");
}

#[test]
fn epp_generation_2_inference_objective() {
    check_epp("inference_objective_", "inference_pool_");
}

#[test]
fn current_epp_dual_emitting_old_names_counts_once() {
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let resource = agent_resource("team-a", "us-east-1", "epp", "epp-0");
    let scrape = |time, k| {
        let mut metrics = epp_scrape("llm_d_epp_", "llm_d_epp_", time, k);
        metrics.extend(epp_scrape(
            "inference_objective_",
            "inference_pool_",
            time,
            k,
        ));
        metrics_request(resource.clone(), metrics)
    };
    normalizer.metrics(&Origin::default(), &scrape(T0, 1.0));
    let out = normalizer.metrics(&Origin::default(), &scrape(T1, 2.0));
    assert!(close(plain_total(&out.batch, RL, Field::Requests), 10.0));
    assert!(
        out.dropped.contains(&("superseded_metric_name", 8)),
        "{:?}",
        out.dropped
    );
}

fn dcgm_resource() -> Vec<opentelemetry_proto::tonic::common::v1::KeyValue> {
    agent_resource("gpu-operator", "us-east-1", "dcgm", "dcgm-exporter-abcde")
}

fn gpu_labels(gpu: &str) -> Vec<opentelemetry_proto::tonic::common::v1::KeyValue> {
    vec![
        string_kv("gpu", gpu),
        string_kv("UUID", format!("GPU-5e3d9c1a-000{gpu}")),
        string_kv("device", format!("nvidia{gpu}")),
        string_kv("modelName", "NVIDIA H100 80GB HBM3"),
        string_kv("Hostname", "gpu-node-7"),
        string_kv("DCGM_FI_DRIVER_VERSION", "550.54.15"),
    ]
}

#[test]
fn dcgm_utilization_and_framebuffer_by_sku() {
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let req = metrics_request(
        dcgm_resource(),
        vec![
            gauge(
                "DCGM_FI_DEV_GPU_UTIL",
                vec![number(gpu_labels("0"), 0, T0, 87.0)],
            ),
            gauge(
                "DCGM_FI_DEV_FB_USED",
                vec![number(gpu_labels("0"), 0, T0, 61_440.0)],
            ),
            gauge(
                "DCGM_FI_DEV_FB_FREE",
                vec![number(gpu_labels("0"), 0, T0, 20_480.0)],
            ),
            gauge(
                "DCGM_FI_DEV_SM_CLOCK",
                vec![number(gpu_labels("0"), 0, T0, 1980.0)],
            ),
        ],
    );
    let out = normalizer.metrics(&Origin::default(), &req);
    let b = &out.batch;
    let cap = SignalKind::Capacity;
    let sku = "nvidia-h100-80gb-hbm3";
    assert!(close(
        gauge_value(
            b,
            cap,
            &FieldKey::with_dim(Field::GpuUtilization, DIM_SKU, sku)
        ),
        0.87
    ));
    assert_eq!(
        gauge_value(
            b,
            cap,
            &FieldKey::with_dim(Field::GpuMemoryUsedBytes, DIM_SKU, sku)
        ),
        61_440.0 * 1_048_576.0
    );
    assert_eq!(
        gauge_value(
            b,
            cap,
            &FieldKey::with_dim(Field::GpuMemoryFreeBytes, DIM_SKU, sku)
        ),
        20_480.0 * 1_048_576.0
    );
    assert_eq!(out.accepted, 4);
    assert!(
        !format!("{b:?}").contains("gpu-node-7"),
        "host names are identity only, never stored"
    );
}

#[test]
fn dcgm_xid_changes_become_reliability_failures() {
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let xid = |gpu: &str, time, code| {
        metrics_request(
            dcgm_resource(),
            vec![gauge(
                "DCGM_FI_DEV_XID_ERRORS",
                vec![number(gpu_labels(gpu), 0, time, code)],
            )],
        )
    };
    let rel = SignalKind::Reliability;
    assert_eq!(
        normalizer
            .metrics(&Origin::default(), &xid("0", T0, 0.0))
            .batch
            .point_count(),
        0
    );
    let fell_off = normalizer.metrics(&Origin::default(), &xid("0", T1, 79.0));
    let mut key = FieldKey::with_dim(Field::Failures, DIM_CAUSE, "xid_79");
    key.dims
        .insert(DIM_SKU.into(), "nvidia-h100-80gb-hbm3".into());
    assert_eq!(counter_total(&fell_off.batch, rel, &key), 1.0);
    // The gauge keeps reporting the last XID: no new event until it changes.
    let same = normalizer.metrics(&Origin::default(), &xid("0", T1 + 15 * SEC, 79.0));
    assert_eq!(same.batch.point_count(), 0);

    // The exporter's XID counter (labelled by code) feeds the same field.
    let mut labels = gpu_labels("1");
    labels.push(string_kv("xid", "48"));
    let counter_req = |time, v| {
        metrics_request(
            dcgm_resource(),
            vec![counter(
                "DCGM_EXP_XID_ERRORS_COUNT",
                vec![number(labels.clone(), 0, time, v)],
            )],
        )
    };
    normalizer.metrics(&Origin::default(), &counter_req(T0, 1.0));
    let out = normalizer.metrics(&Origin::default(), &counter_req(T1, 3.0));
    let mut key = FieldKey::with_dim(Field::Failures, DIM_CAUSE, "xid_48");
    key.dims
        .insert(DIM_SKU.into(), "nvidia-h100-80gb-hbm3".into());
    assert_eq!(counter_total(&out.batch, rel, &key), 2.0);
}
