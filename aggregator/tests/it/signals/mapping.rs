//! Every row of the mapping table (`normalize::mapping`, the table
//! docs/signals.md is generated from), end to end: one point per row and
//! target field, in the emitter's real shape (Prometheus-scraped sources as
//! the agent forwards them: cumulative, no start time, the process's
//! `process_start_time_seconds` beside them; OTLP sources cumulative with a
//! start time), sent over OTLP/gRPC or OTLP/HTTP, read back from the tenant
//! API at the documented answer field, values checked. Each (row, target)
//! is its own tenant so no answer mixes two rows.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::Metric;
use otlp_test_kit::*;
use serde_json::Value;
use signal_aggregator::normalize::NormalizeConfig;
use signal_aggregator::normalize::mapping::{Instrument, MappingRow, Target, answer_field, rows};
use signal_aggregator::signal::{Field, SignalKind};

use crate::support::stack::{Stack, Transport};

const SKU_NAME: &str = "NVIDIA H100 80GB HBM3";
const SKU: &str = "nvidia-h100-80gb-hbm3";
const MODEL: &str = "m1";
const SEC: u64 = 1_000_000_000;

/// Sources the agent scrapes from Prometheus endpoints.
fn scraped(row: &MappingRow) -> bool {
    matches!(
        row.source,
        "vLLM" | "SGLang" | "llama.cpp" | "llm-d EPP" | "DCGM exporter"
    )
}

/// The value a data point attribute carries, chosen so the point feeds `target`.
fn attribute(key: &str, target: &Target) -> Option<KeyValue> {
    let value = match key {
        "finished_reason" => match target.field {
            Field::Errors => "error",
            _ => "stop",
        },
        "error.type" => match target.field {
            Field::Errors => "timeout",
            _ => return None,
        },
        "gen_ai.token.type" => match target.field {
            Field::InputTokens => "input",
            _ => "output",
        },
        "modelplane.coldstart.phase" => "model_load",
        "modelName" | "modelplane.gpu.sku" | "mesh_llm.gpu_name" => SKU_NAME,
        "xid" => return Some(int_kv("xid", 79)),
        "mesh_llm.context_bucket" => "16k_32k",
        "mesh_llm.failure_reason" => "health_timeout",
        "modelplane.kv.tier" => "cpu",
        "modelplane.replica.state" => match target.field {
            Field::ReplicasActive => "active",
            _ => "starting",
        },
        "modelplane.failure.cause" => "nvlink_error",
        other => panic!("the test has no value for attribute {other}"),
    };
    Some(string_kv(key, value))
}

/// What each emitter puts on every point besides the row's attributes.
fn emitter_attributes(row: &MappingRow) -> Vec<KeyValue> {
    match row.source {
        "vLLM" => vec![string_kv("model_name", MODEL), string_kv("engine", "0")],
        "SGLang" => vec![string_kv("model_name", MODEL), string_kv("tp_rank", "0")],
        "llm-d EPP" => vec![
            string_kv("model_name", "alias"),
            string_kv("target_model_name", MODEL),
        ],
        "DCGM exporter" => vec![
            string_kv("gpu", "0"),
            string_kv("UUID", "GPU-5fd4a4a3-0000"),
            string_kv("Hostname", "node-7"),
        ],
        "GenAI semantic conventions" => vec![
            string_kv("gen_ai.request.model", MODEL),
            string_kv("gen_ai.operation.name", "chat"),
            string_kv("gen_ai.provider.name", "openai"),
        ],
        "mesh-llm" => vec![
            string_kv("mesh_llm.model", MODEL),
            string_kv("mesh_llm.architecture", "qwen3moe"),
            string_kv("mesh_llm.quantization", "Q4_K_M"),
            string_kv("mesh_llm.launch_kind", "startup"),
            string_kv("mesh_llm.gpu_stable_id", "c0ffee-1234"),
            string_kv("mesh_llm.backend", "metal"),
        ],
        _ => vec![],
    }
}

/// The instruments one row is sent as: what its emitter sends (both shapes
/// where the row takes either).
fn shapes(row: &MappingRow) -> Vec<Instrument> {
    match row.instrument {
        Instrument::HistogramOrGauge => vec![Instrument::Histogram, Instrument::Gauge],
        other => vec![other],
    }
}

const COUNTER: f64 = 3.0;
const GAUGE: f64 = 0.5;

/// The metrics of one (row, target, shape): the row's point, and what the
/// emitter sends beside it.
fn metrics(row: &MappingRow, target: &Target, shape: Instrument, now: u64) -> Vec<Vec<Metric>> {
    let mut attrs = emitter_attributes(row);
    attrs.extend(row.attributes.iter().filter_map(|k| attribute(k, target)));
    // Scraped: no start time on the points, the process start beside them.
    // OTLP SDKs: the start time on every cumulative point.
    let started = now - 10 * SEC;
    let start = if scraped(row) { 0 } else { started };
    let process = || {
        gauge(
            "process_start_time_seconds",
            vec![number(vec![], 0, now, (started / SEC) as f64)],
        )
    };
    let ms = row.metric.ends_with("_ms");
    let point = match shape {
        Instrument::Counter => counter(&row.metric, vec![number(attrs, start, now, COUNTER)]),
        Instrument::Gauge => {
            let reading = match row.name {
                "FI_DEV_XID_ERRORS" => 79.0,
                _ => GAUGE,
            };
            gauge(&row.metric, vec![number(attrs.clone(), 0, now, reading)])
        }
        Instrument::Histogram | Instrument::HistogramOrGauge => {
            let (bounds, sum) = if ms {
                (vec![1_000.0, 10_000.0, 100_000.0], 5_000.0)
            } else {
                (vec![1.0, 10.0, 100.0], 5.0)
            };
            histogram(
                &row.metric,
                vec![hist(attrs, start, now, &bounds, &[0, 1, 0, 0], sum)],
            )
        }
    };
    let mut first = vec![point];
    if scraped(row) {
        first.push(process());
    }
    if row.name == "FI_DEV_XID_ERRORS" {
        // DCGM's last-XID gauge: the first reading primes, a change to a
        // non-zero code is one failure.
        let mut primer = vec![gauge(
            &row.metric,
            vec![number(
                emitter_attributes(row)
                    .into_iter()
                    .chain([string_kv("modelName", SKU_NAME)])
                    .collect(),
                0,
                now - SEC,
                0.0,
            )],
        )];
        primer.push(process());
        return vec![primer, first];
    }
    vec![first]
}

fn resource(tenant: &str) -> Vec<KeyValue> {
    vec![
        string_kv("modelplane.tenant", tenant),
        string_kv("modelplane.cluster", "c1"),
        string_kv("modelplane.model", MODEL),
        string_kv("service.name", "emitter"),
    ]
}

/// The answer value at `path` (`a.b.<dim>`), dims filled from the target.
fn at<'a>(group: &'a Value, path: &str, target: &Target) -> &'a Value {
    let mut value = group;
    for part in path.split('.') {
        let part = match part {
            "<sku>" => SKU,
            "<tier>" => fixed(target, "tier").unwrap_or("cpu"),
            "<phase>" => fixed(target, "phase").unwrap_or("model_load"),
            "<reason>" => "health_timeout",
            other => other,
        };
        value = &value[part];
    }
    value
}

fn fixed(target: &Target, dim: &str) -> Option<&'static str> {
    target
        .dims
        .iter()
        .find(|(k, _)| *k == dim)
        .and_then(|(_, v)| *v)
}

fn close(actual: &Value, expected: f64, what: &str) {
    let actual = actual
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: not a number: {actual}"));
    assert!(
        (actual - expected).abs() <= expected.abs() * 1e-9,
        "{what}: {actual} != {expected}"
    );
}

/// Checks the answer for one (row, target, shape).
fn check(group: &Value, row: &MappingRow, target: &Target, shape: Instrument, what: &str) {
    let scale = if target.how.contains("÷ 1000") {
        0.001
    } else if target.how.contains("÷ 100") {
        0.01
    } else if target.how.contains("2²⁰") {
        1_048_576.0
    } else {
        1.0
    };
    let mut path = answer_field(target.kind, target.field).to_string();
    if target.field == Field::ContextLength && shape == Instrument::Histogram {
        path = "context_length_distribution".into();
    }
    assert!(!path.is_empty(), "{what}: no answer field");
    let value = at(group, &path, target);
    match (target.kind, target.field) {
        (SignalKind::Reliability, Field::Failures) => {
            let cause = match fixed(target, "cause") {
                Some("xid_<code>" | "xid_<xid>") => "xid_79",
                Some("<reason>") => "health_timeout",
                Some(cause) => cause,
                None => "nvlink_error",
            };
            let n = if row.name == "FI_DEV_XID_ERRORS" {
                1.0
            } else {
                COUNTER
            };
            assert_eq!(
                value,
                &serde_json::json!([{ "sku": SKU, "cause": cause, "count": n }]),
                "{what}"
            );
            close(&group["failures"], n, what);
        }
        (SignalKind::Cost, Field::GpuSeconds) => close(value, COUNTER / 3600.0, what),
        (SignalKind::Cost, Field::PricePerGpuHour) => close(value, GAUGE, what),
        _ => match shape {
            Instrument::Counter => close(value, COUNTER * scale, what),
            Instrument::Gauge if target.field == Field::PhaseSeconds => {
                assert_eq!(value["count"], 1, "{what}: {value}");
                close(&value["p50"], GAUGE, what);
            }
            Instrument::Gauge => close(&value["last"], GAUGE * scale, what),
            Instrument::Histogram | Instrument::HistogramOrGauge => {
                match target.field {
                    // Sums and counts of histograms.
                    Field::InputTokens | Field::OutputTokens => close(value, 5.0, what),
                    Field::Requests | Field::Errors => close(value, 1.0, what),
                    _ => {
                        assert_eq!(value["count"], 1, "{what}: {value}");
                        // One observation in (1, 10] seconds (or tokens).
                        let p50 = value["p50"]
                            .as_f64()
                            .unwrap_or_else(|| panic!("{what}: {value}"));
                        assert!(p50 > 1.0 && p50 <= 10.0, "{what}: p50 {p50}");
                    }
                }
            }
        },
    }
}

#[tokio::test]
async fn every_row_of_the_mapping_reads_back_at_its_answer_field() {
    let stack = Stack::start(NormalizeConfig::default()).await;
    let now = unix_nanos();
    let rows = rows();
    let mut checked = 0;
    let mut cases = Vec::new();
    for row in &rows {
        for target in &row.targets {
            for shape in shapes(row) {
                let tenant = format!("row-{}", cases.len());
                let transport = Transport::ALL[cases.len() % Transport::ALL.len()];
                for metrics in metrics(row, target, shape, now) {
                    let rejected = stack
                        .metrics(transport, metrics_request(resource(&tenant), metrics))
                        .await;
                    assert_eq!(rejected, 0, "{}", row.metric);
                }
                cases.push((tenant, row, target, shape));
            }
        }
    }
    for (tenant, row, target, shape) in &cases {
        let what = format!(
            "{} ({}) → {}.{} as {}",
            row.metric,
            row.source,
            target.kind.as_str(),
            target.field.as_str(),
            shape.as_str()
        );
        let body = stack
            .get(&format!(
                "/v1/tenants/{tenant}/signals/{}?groupBy=",
                target.kind.as_str()
            ))
            .await;
        let groups = body["groups"].as_array().unwrap();
        assert_eq!(groups.len(), 1, "{what}: {body}");
        assert_eq!(body["unmapped_points"], serde_json::json!({}), "{what}");
        check(&groups[0], row, target, *shape, &what);
        checked += 1;
    }
    // Every source and every answer field of the table was exercised.
    assert!(checked >= rows.len(), "{checked} < {} rows", rows.len());
    let unmapped = stack.metrics.unmapped_snapshot();
    assert!(unmapped.is_empty(), "{unmapped:?}");
}
