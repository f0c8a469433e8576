//! What the real agent exported, replayed. test/collector/test_agent_live.py
//! ran otelcol-k8s 0.159.0 with the config function-signals renders for
//! examples/ic-full against vLLM, SGLang, llama.cpp, llm-d EPP and DCGM
//! stand-ins and gateway spans; its `file` exporter kept every OTLP request
//! (fixtures/agent-export.jsonl.gz). The expected values
//! (fixtures/agent-export.expected.json) are what the engines counted while
//! the agent ran, so this checks normalize against the sources, through the
//! receiver's real output: no start times on cumulative points (vLLM's restart
//! is seen through `process_start_time_seconds`), `_total` kept, staleness
//! markers during the restart, the scrape target's k8s resource attributes.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::time::{Duration, UNIX_EPOCH};

use crate::support::normalize::{close, counter_total};
use flate2::read::GzDecoder;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::metrics::v1::metric;
use serde_json::Value as Json;
use signal_aggregator::ingest::otlp_json::{decode_metrics, decode_traces};
use signal_aggregator::normalize::{NormalizeConfig, Normalizer};
use signal_aggregator::signal::{
    DIM_CAUSE, DIM_SKU, DIM_TIER, Field, FieldKey, Origin, SignalBatch, SignalKind, Value,
};

const CAPTURE: &[u8] = include_bytes!("../fixtures/agent-export.jsonl.gz");
const EXPECTED: &str = include_str!("../fixtures/agent-export.expected.json");

const RL: SignalKind = SignalKind::RequestLifecycle;
const CAP: SignalKind = SignalKind::Capacity;

struct Replay {
    expected: Json,
    batch: SignalBatch,
    traces: Vec<ExportTraceServiceRequest>,
    rejected: u64,
    malformed: u64,
}

/// Every captured request through decode and normalize, in capture order,
/// each at the time of its newest point (as the aggregator would have seen
/// it); the resulting batches concatenated.
fn replay() -> Replay {
    let expected: Json = serde_json::from_str(EXPECTED).unwrap();
    let cluster = expected["cluster"].as_str().unwrap().to_string();
    let origin = Origin {
        authenticated_cluster: Some(cluster),
    };
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let mut batch = SignalBatch::default();
    let mut traces = Vec::new();
    let mut rejected = 0;
    let mut malformed = 0;
    for line in BufReader::new(GzDecoder::new(CAPTURE)).lines() {
        let line = line.unwrap();
        let shape: Json = serde_json::from_str(&line).unwrap();
        let out = if shape.get("resourceMetrics").is_some() {
            let request = decode_metrics(line.as_bytes()).unwrap();
            malformed += malformed_histograms(&request);
            normalizer.metrics_at(&origin, &request, newest(&shape))
        } else {
            let request = decode_traces(line.as_bytes()).unwrap();
            let out = normalizer.traces_at(&origin, &request, newest(&shape));
            traces.push(request);
            out
        };
        rejected += out.rejected;
        batch.series.extend(out.batch.series);
    }
    Replay {
        expected,
        batch,
        traces,
        rejected,
        malformed,
    }
}

/// Histogram points whose bounds are not strictly ascending. The agent once
/// made them under `privacy.scope: Fleet`: dropping the EPP's `fairness_id`
/// label made two series one, and the receiver interleaved their buckets
/// (bounds repeated, counts wrapped below zero). It now hashes the id.
fn malformed_histograms(request: &ExportMetricsServiceRequest) -> u64 {
    request
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .filter_map(|m| match &m.data {
            Some(metric::Data::Histogram(h)) => Some(&h.data_points),
            _ => None,
        })
        .flatten()
        .filter(|dp| dp.explicit_bounds.windows(2).any(|w| w[0] >= w[1]))
        .count() as u64
}

/// The newest `timeUnixNano` / `endTimeUnixNano` in a captured request.
fn newest(shape: &Json) -> std::time::SystemTime {
    fn walk(value: &Json, max: &mut u64) {
        match value {
            Json::Object(map) => {
                for (key, v) in map {
                    if key == "timeUnixNano" || key == "endTimeUnixNano" {
                        let nanos = v.as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
                        *max = (*max).max(nanos);
                    } else {
                        walk(v, max);
                    }
                }
            }
            Json::Array(items) => items.iter().for_each(|v| walk(v, max)),
            _ => {}
        }
    }
    let mut max = 0;
    walk(shape, &mut max);
    UNIX_EPOCH + Duration::from_nanos(max)
}

fn in_model(batch: &SignalBatch, tenant: &str, model: &str) -> SignalBatch {
    SignalBatch {
        series: batch
            .series
            .iter()
            .filter(|s| s.key.tenant == tenant && s.key.model == model)
            .cloned()
            .collect(),
    }
}

/// The newest reading of a gauge across every point of the key.
fn last_gauge(batch: &SignalBatch, kind: SignalKind, key: &FieldKey) -> Option<f64> {
    batch
        .series
        .iter()
        .filter(|s| s.key.kind == kind)
        .flat_map(|s| &s.points)
        .filter(|p| &p.field == key)
        .filter_map(|p| match p.value {
            Value::Gauge(v) => Some((p.time_unix_nano, v)),
            _ => None,
        })
        .max_by_key(|(time, _)| *time)
        .map(|(_, v)| v)
}

/// Bucket counts of every histogram delta of `field`, added up.
fn merged_counts(batch: &SignalBatch, field: Field) -> Option<(Vec<f64>, Vec<u64>)> {
    let mut merged: Option<(Vec<f64>, Vec<u64>)> = None;
    for point in batch.series.iter().flat_map(|s| &s.points) {
        let Value::Histogram(h) = &point.value else {
            continue;
        };
        if point.field != FieldKey::plain(field) {
            continue;
        }
        match &mut merged {
            None => merged = Some((h.bounds.clone(), h.counts.clone())),
            Some((bounds, counts)) => {
                assert_eq!(bounds, &h.bounds, "{field:?} changed bounds");
                counts.iter_mut().zip(&h.counts).for_each(|(a, b)| *a += b);
            }
        }
    }
    merged
}

fn field(name: &str) -> Field {
    match name {
        "requests" => Field::Requests,
        "errors" => Field::Errors,
        "input_tokens" => Field::InputTokens,
        "output_tokens" => Field::OutputTokens,
        "prefix_queries" => Field::PrefixCacheQueries,
        "prefix_hits" => Field::PrefixCacheHits,
        "ttft_seconds" => Field::TtftSeconds,
        "tpot_seconds" => Field::TpotSeconds,
        "e2e_seconds" => Field::E2eSeconds,
        "queue_seconds" => Field::QueueSeconds,
        other => panic!("no field for {other}"),
    }
}

fn gauge_key(name: &str) -> (SignalKind, FieldKey) {
    match name {
        "queue_depth" => (RL, FieldKey::plain(Field::QueueDepth)),
        "running_requests" => (RL, FieldKey::plain(Field::RunningRequests)),
        "kv_cache_utilization" => (
            CAP,
            FieldKey::with_dim(Field::KvCacheUtilization, DIM_TIER, "hbm"),
        ),
        "replicas_active" => (CAP, FieldKey::plain(Field::ReplicasActive)),
        other => panic!("no gauge for {other}"),
    }
}

#[test]
fn captured_engine_metrics_normalize_to_what_the_engines_counted() {
    let replay = replay();
    // Nothing mangled by the agent, nothing refused (see malformed_histograms).
    assert_eq!((replay.malformed, replay.rejected), (0, 0));
    let tenant = replay.expected["tenant"].as_str().unwrap();
    let models = replay.expected["models"].as_object().unwrap();
    for (model, want) in models {
        let batch = in_model(&replay.batch, tenant, model);
        for (name, value) in want["counters"].as_object().unwrap() {
            let got = counter_total(&batch, RL, &FieldKey::plain(field(name)));
            assert!(
                close(got, value.as_f64().unwrap()),
                "{model} {name}: {got} != {value}"
            );
        }
        for (name, histogram) in want["histograms"].as_object().unwrap() {
            let (bounds, counts) = merged_counts(&batch, field(name))
                .unwrap_or_else(|| panic!("{model} {name}: no histogram"));
            let want_bounds: Vec<f64> =
                serde_json::from_value(histogram["bounds"].clone()).unwrap();
            let want_counts: Vec<u64> =
                serde_json::from_value(histogram["counts"].clone()).unwrap();
            assert_eq!(bounds, want_bounds, "{model} {name}");
            assert_eq!(counts, want_counts, "{model} {name}");
        }
        for (name, value) in want["last_gauges"].as_object().unwrap() {
            let (kind, key) = gauge_key(name);
            assert_eq!(
                last_gauge(&batch, kind, &key),
                value.as_f64(),
                "{model} {name}"
            );
        }
    }
}

#[test]
fn captured_dcgm_metrics_land_in_the_exporters_namespace() {
    let replay = replay();
    let gpus = &replay.expected["gpus"];
    let batch = in_model(&replay.batch, gpus["tenant"].as_str().unwrap(), "");
    let sku = gpus["sku"].as_str().unwrap();
    let utilization = FieldKey::with_dim(Field::GpuUtilization, DIM_SKU, sku);
    let max = batch
        .series
        .iter()
        .flat_map(|s| &s.points)
        .filter(|p| p.field == utilization)
        .filter_map(|p| match p.value {
            Value::Gauge(v) => Some(v),
            _ => None,
        })
        .fold(f64::MIN, f64::max);
    assert!(close(max, gpus["utilization_max"].as_f64().unwrap()));
    for (cause, count) in gpus["failures"].as_object().unwrap() {
        let mut key = FieldKey::with_dim(Field::Failures, DIM_CAUSE, cause.as_str());
        key.dims.insert(DIM_SKU.into(), sku.into());
        let got = counter_total(&batch, SignalKind::Reliability, &key);
        assert_eq!(got, count.as_f64().unwrap(), "{cause}");
    }
}

#[test]
fn captured_spans_count_once_per_kind_scaled_by_their_rate() {
    let replay = replay();
    let tenant = replay.expected["tenant"].as_str().unwrap();
    let rates = replay.expected["span_sample_rates"].as_object().unwrap();
    let mut spans: BTreeMap<String, (f64, f64)> = BTreeMap::new(); // kind -> (spans, input tokens)
    for request in &replay.traces {
        for span in request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
        {
            let attr = |key: &str| {
                span.attributes
                    .iter()
                    .find(|kv| kv.key == key)
                    .and_then(|kv| kv.value.as_ref()?.value.clone())
            };
            let Some(any_value::Value::StringValue(kind)) = attr("modelplane.signal") else {
                panic!("an exported span without modelplane.signal");
            };
            let Some(any_value::Value::IntValue(input)) = attr("gen_ai.usage.input_tokens") else {
                panic!("an exported span without input tokens");
            };
            let entry = spans.entry(kind).or_default();
            entry.0 += 1.0;
            entry.1 += input as f64;
        }
    }
    let (lifecycle_spans, lifecycle_input) = spans["RequestLifecycle"];
    let weight = 1.0 / rates["RequestLifecycle"].as_f64().unwrap();
    let gateway = |field| {
        replay
            .batch
            .series
            .iter()
            .filter(|s| s.key.tenant == tenant && s.key.kind == RL && s.key.model == "gpt-oss-120b")
            .flat_map(|s| &s.points)
            .filter(|p| p.field == FieldKey::plain(field))
            .map(|p| match p.value {
                Value::Counter(n) => n,
                ref other => panic!("{other:?}"),
            })
            .sum::<f64>()
    };
    assert!(close(gateway(Field::Requests), lifecycle_spans * weight));
    assert!(close(gateway(Field::InputTokens), lifecycle_input * weight));
    let hashes = replay
        .batch
        .series
        .iter()
        .filter(|s| s.key.kind == SignalKind::PrefixHash)
        .flat_map(|s| &s.points)
        .filter(|p| matches!(p.value, Value::PrefixHash(_)))
        .count();
    assert_eq!(hashes as f64, spans["PrefixHash"].0);
}
