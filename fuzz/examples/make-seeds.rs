//! Writes the seed corpora (corpus/<target>/seed-*) from the OTLP test kit
//! and the function's examples. Run from fuzz/: `cargo run --example make-seeds`.

use std::io::Write;
use std::path::{Path, PathBuf};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use otlp_test_kit as kit;
use prost::Message;
use signal_aggregator::normalize::{NormalizeConfig, Normalizer};
use signal_aggregator::signal::Origin;
use signal_aggregator::sketch::sketch_batch_at;
use signal_aggregator::store::redis::wal::Wal;

const NOW_SECS: u64 = modelplane_signals_fuzz::NOW_SECS;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
}

fn metrics_requests() -> Vec<(&'static str, ExportMetricsServiceRequest)> {
    let now = NOW_SECS * 1_000_000_000;
    let shape = kit::synthetic::FleetShape::default();
    vec![
        ("rich", kit::rich::rich_metrics()),
        (
            "synthetic",
            kit::synthetic::MetricGenerator::new(7, shape).batch(40, now),
        ),
        (
            "retried",
            kit::losses::retried_counter(kit::losses::resource("team-a", "c1"), now),
        ),
    ]
}

fn trace_requests() -> Vec<(&'static str, ExportTraceServiceRequest)> {
    let now = NOW_SECS * 1_000_000_000;
    let shape = kit::synthetic::FleetShape::default();
    vec![
        ("rich", kit::rich::rich_traces()),
        (
            "synthetic",
            kit::synthetic::SpanGenerator::new(7, shape).batch(20, now),
        ),
    ]
}

fn main() {
    let metrics = metrics_requests();
    let traces = trace_requests();
    for (name, request) in &metrics {
        let bytes = request.encode_to_vec();
        write("otlp_http_protobuf", &format!("metrics-{name}"), &bytes);
        write("normalize_metrics", name, &bytes);
    }
    for (name, request) in &traces {
        let bytes = request.encode_to_vec();
        write("otlp_http_protobuf", &format!("traces-{name}"), &bytes);
        write("normalize_traces", name, &bytes);
    }
    write(
        "otlp_http_json",
        "metrics-rich",
        kit::rich::rich_metrics_json().as_bytes(),
    );
    write(
        "otlp_http_json",
        "traces-rich",
        kit::rich::rich_traces_json().as_bytes(),
    );

    // body_coding: [selector][body]; selector & 3 picks gzip, deflate, zstd, identity.
    let body = metrics[0].1.encode_to_vec();
    for (selector, name) in [
        (0x28u8, "gzip"),
        (0x29, "deflate"),
        (0x2a, "zstd"),
        (0x2b, "identity"),
    ] {
        let packed = match selector & 3 {
            0 => kit::gzip(&body),
            1 => {
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(&body).unwrap();
                e.finish().unwrap()
            }
            2 => zstd::encode_all(&body[..], 3).unwrap(),
            _ => body.clone(),
        };
        let mut input = vec![selector];
        input.extend_from_slice(&packed);
        write("body_coding", name, &input);
    }

    // store_value and wal_reader: sketches as the pipeline makes them.
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(NOW_SECS);
    let mut sketches = Vec::new();
    for (_, request) in &metrics {
        let n = normalizer.metrics_at(&Origin::default(), request, now);
        sketches.extend(sketch_batch_at(&n.batch, NOW_SECS));
    }
    for (_, request) in &traces {
        let n = normalizer.traces_at(&Origin::default(), request, now);
        sketches.extend(sketch_batch_at(&n.batch, NOW_SECS));
    }
    // A few small, varied ones (the fuzzer works best on short inputs).
    sketches.sort_by_key(|s| s.sketch.encode().len());
    let picked: Vec<_> = sketches
        .iter()
        .step_by((sketches.len() / 8).max(1))
        .take(8)
        .collect();
    for (i, windowed) in picked.iter().enumerate() {
        let encoded = windowed.sketch.encode();
        let mut value = vec![1u8];
        value.extend_from_slice(&2u32.to_be_bytes());
        for frame in [&encoded, &encoded] {
            value.extend_from_slice(&(frame.len() as u32).to_be_bytes());
            value.extend_from_slice(frame);
        }
        write("store_value", &format!("value-{i}"), &value);
        let mut pair = vec![encoded.len().min(255) as u8];
        pair.extend_from_slice(&encoded);
        pair.extend_from_slice(&encoded);
        write("store_value", &format!("pair-{i}"), &pair);
        write(
            "store_value",
            &format!("v1-{i}"),
            &windowed.sketch.encode_version(1).unwrap(),
        );
    }

    // wal_reader: a real segment of three entries, whole and torn.
    let dir = std::env::temp_dir().join(format!("make-seeds-wal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    {
        let (mut wal, _) = Wal::open(&dir, 1 << 20).unwrap();
        let payloads: Vec<Vec<u8>> = picked.iter().take(3).map(|w| w.sketch.encode()).collect();
        let refs: Vec<&[u8]> = payloads.iter().map(|p| &p[..]).collect();
        wal.append(&refs).unwrap();
    }
    let segment: PathBuf = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "wal"))
        .unwrap();
    let contents = std::fs::read(&segment).unwrap();
    let mut input = vec![0u8];
    input.extend_from_slice(&1u64.to_le_bytes());
    input.extend_from_slice(&contents);
    write("wal_reader", "whole", &input);
    write("wal_reader", "torn", &input[..input.len() - 7]);
    input[0] = 1;
    write("wal_reader", "older", &input);
    std::fs::remove_dir_all(&dir).unwrap();

    // function_handler: every example's request, as `function-signals render` builds it.
    let examples = Path::new("../examples");
    let mut names: Vec<_> = std::fs::read_dir(examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("xr.yaml").is_file())
        .collect();
    names.sort();
    for dir in names {
        let args = function_signals::render_cmd::RenderArgs {
            xr: dir.join("xr.yaml"),
            observed: Some(dir.join("observed")).filter(|p| p.is_dir()),
            input: Some(dir.join("input.yaml")).filter(|p| p.is_file()),
        };
        let request = function_signals::render_cmd::build_request(&args).unwrap();
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        write(
            "function_handler",
            &name,
            &serde_json::to_vec(&request).unwrap(),
        );
    }
    println!("seeds written under corpus/");
}
