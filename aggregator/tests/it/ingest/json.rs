//! The OTLP/JSON decoder against hand-written JSON: the same data sent as
//! JSON and as protobuf must decode to equal prost messages, and bad input
//! must be refused with the location of the fault.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use otlp_test_kit::rich::{
    RICH_METRICS_POINTS, RICH_TRACES_SPANS, rich_metrics, rich_metrics_json, rich_traces,
    rich_traces_json,
};
use prost::Message;
use signal_aggregator::ingest::otlp_json::{decode_metrics, decode_traces};
use signal_aggregator::ingest::{
    ContentCoding, OtlpRequest, PayloadFormat, Refusal, decode_request, decompress,
};

#[test]
fn rich_metrics_json_equals_protobuf() {
    let from_json = decode_metrics(rich_metrics_json().as_bytes()).unwrap();
    let from_protobuf =
        ExportMetricsServiceRequest::decode(rich_metrics().encode_to_vec().as_slice()).unwrap();
    assert_eq!(from_json, from_protobuf);
    assert_eq!(from_json, rich_metrics());
}

#[test]
fn rich_traces_json_equals_protobuf() {
    let from_json = decode_traces(rich_traces_json().as_bytes()).unwrap();
    let from_protobuf =
        ExportTraceServiceRequest::decode(rich_traces().encode_to_vec().as_slice()).unwrap();
    assert_eq!(from_json, from_protobuf);
    assert_eq!(from_json, rich_traces());
}

/// The shape of the spec repository's `examples/trace.json`: upper-case hex
/// ids, unquoted 64-bit timestamps, `kind` as a number.
#[test]
fn spec_example_shaped_trace() {
    let json = r#"{"resourceSpans":[{"resource":{"attributes":[
        {"key":"service.name","value":{"stringValue":"svc"}}]},
      "scopeSpans":[{"scope":{"name":"lib","version":"2.0.0","attributes":[
        {"key":"scope.key","value":{"stringValue":"scope value"}}]},
      "spans":[{"traceId":"AB8EFFF798038103D269B633813FC60C","spanId":"AAE19B7EC3C1B174",
        "parentSpanId":"AAE19B7EC3C1B173","name":"a server span",
        "startTimeUnixNano":1544712660000000000,"endTimeUnixNano":1544712661000000000,
        "kind":2,"attributes":[{"key":"span.key","value":{"stringValue":"v"}}]}]}]}]}"#;
    let request = decode_traces(json.as_bytes()).unwrap();
    let span = &request.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(span.trace_id[0], 0xab);
    assert_eq!(span.trace_id.len(), 16);
    assert_eq!(
        span.parent_span_id,
        vec![0xaa, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x73]
    );
    assert_eq!(span.kind, 2);
    assert_eq!(span.end_time_unix_nano, 1_544_712_661_000_000_000);
    assert_eq!(
        request.resource_spans[0].scope_spans[0]
            .scope
            .as_ref()
            .unwrap()
            .version,
        "2.0.0"
    );
}

/// The shape of the spec repository's `examples/metrics.json`: a sum, a
/// gauge and a histogram with numbers where strings are also allowed.
#[test]
fn spec_example_shaped_metrics() {
    let json = r#"{"resourceMetrics":[{"resource":{"attributes":[
        {"key":"service.name","value":{"stringValue":"svc"}}]},
      "scopeMetrics":[{"scope":{"name":"lib","version":"2.0.0"},
      "metrics":[
        {"name":"a.counter","unit":"1","description":"c","sum":{"aggregationTemporality":1,
          "isMonotonic":true,"dataPoints":[{"asDouble":7,"startTimeUnixNano":1544712660300000000,
          "timeUnixNano":1544712660300000000,"attributes":[{"key":"k","value":{"stringValue":"v"}}]}]}},
        {"name":"a.gauge","unit":"1","gauge":{"dataPoints":[{"asDouble":11,
          "timeUnixNano":1544712660300000000}]}},
        {"name":"a.histogram","unit":"1","histogram":{"aggregationTemporality":1,
          "dataPoints":[{"startTimeUnixNano":1544712660300000000,"timeUnixNano":1544712660300000000,
          "count":4,"sum":5,"bucketCounts":[1,2,1],"explicitBounds":[1,2],"min":0.5,"max":3}]}}]}]}]}"#;
    let request = decode_metrics(json.as_bytes()).unwrap();
    let metrics = &request.resource_metrics[0].scope_metrics[0].metrics;
    assert_eq!(metrics.len(), 3);
    let Some(metric::Data::Sum(sum)) = &metrics[0].data else {
        panic!("sum lost: {:?}", metrics[0]);
    };
    assert!(sum.is_monotonic);
    assert_eq!(sum.aggregation_temporality, 1);
    assert_eq!(
        sum.data_points[0].value,
        Some(number_data_point::Value::AsDouble(7.0))
    );
    let Some(metric::Data::Gauge(gauge)) = &metrics[1].data else {
        panic!("gauge lost: {:?}", metrics[1]);
    };
    assert_eq!(
        gauge.data_points[0].value,
        Some(number_data_point::Value::AsDouble(11.0))
    );
    let Some(metric::Data::Histogram(histogram)) = &metrics[2].data else {
        panic!("histogram lost: {:?}", metrics[2]);
    };
    let point = &histogram.data_points[0];
    assert_eq!(
        (point.count, point.sum, point.min, point.max),
        (4, Some(5.0), Some(0.5), Some(3.0))
    );
    assert_eq!(point.bucket_counts, vec![1, 2, 1]);
    assert_eq!(point.explicit_bounds, vec![1.0, 2.0]);
}

#[test]
fn nan_is_decoded_from_its_string_form() {
    let json = r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"g",
        "gauge":{"dataPoints":[{"asDouble":"NaN"}]}}]}]}]}"#;
    let request = decode_metrics(json.as_bytes()).unwrap();
    let Some(metric::Data::Gauge(gauge)) =
        &request.resource_metrics[0].scope_metrics[0].metrics[0].data
    else {
        panic!("gauge lost");
    };
    let Some(number_data_point::Value::AsDouble(value)) = gauge.data_points[0].value else {
        panic!("value lost");
    };
    assert!(value.is_nan());
}

#[test]
fn enum_names_are_accepted_leniently() {
    for (kind, expected) in [
        (r#""SPAN_KIND_CONSUMER""#, 5),
        (r#""span_kind_producer""#, 4),
        (r#""INTERNAL""#, 1),
        (r#""3""#, 3),
        ("99", 99),
    ] {
        let json =
            format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"kind":{kind}}}]}}]}}]}}"#);
        let request = decode_traces(json.as_bytes()).unwrap();
        assert_eq!(
            request.resource_spans[0].scope_spans[0].spans[0].kind, expected,
            "{kind}"
        );
    }
}

#[test]
fn base64_bytes_accept_url_safe_and_unpadded() {
    for encoded in ["AAEC/v8=", "AAEC/v8", "AAEC_v8"] {
        let json = format!(
            r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"b","value":{{"bytesValue":"{encoded}"}}}}]}}}}]}}"#
        );
        let request = decode_traces(json.as_bytes()).unwrap();
        let value = &request.resource_spans[0]
            .resource
            .as_ref()
            .unwrap()
            .attributes[0]
            .value;
        assert_eq!(
            value.as_ref().unwrap().value,
            Some(any_value::Value::BytesValue(vec![0, 1, 2, 0xfe, 0xff])),
            "{encoded}"
        );
    }
}

fn traces_error(json: &str) -> String {
    decode_traces(json.as_bytes()).unwrap_err().to_string()
}

fn metrics_error(json: &str) -> String {
    decode_metrics(json.as_bytes()).unwrap_err().to_string()
}

#[test]
fn bad_trace_id_is_refused_with_its_location() {
    let json = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[]},{"spans":[{},{},{},
        {"traceId":"5B8EFFF798038103D269B633813FC60"}]}]}]}"#;
    assert_eq!(
        traces_error(json),
        "resourceSpans[0].scopeSpans[1].spans[3].traceId: expected 32 hex digits, got 31 characters"
    );
    let json = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"zzzzzzzzzzzzzzzz"}]}]}]}"#;
    assert_eq!(
        traces_error(json),
        "resourceSpans[0].scopeSpans[0].spans[0].spanId: expected 16 hex digits, found a non-hex character"
    );
}

#[test]
fn base64_ids_are_refused_not_misread() {
    // Plain proto3 JSON would send ids as base64; OTLP requires hex.
    let json = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"W47/95gDgQPSabYzgT/GDA=="}]}]}]}"#;
    assert!(traces_error(json).contains("traceId: expected 32 hex digits"));
}

#[test]
fn malformed_values_name_their_location() {
    let cases = [
        (
            r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"s","sum":{"dataPoints":[{"asInt":"12x"}]}}]}]}]}"#,
            "resourceMetrics[0].scopeMetrics[0].metrics[0].sum.dataPoints[0].asInt: expected an integer in the range of int64",
        ),
        (
            r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"h","histogram":{"dataPoints":[{"bucketCounts":[1,-2]}]}}]}]}]}"#,
            "resourceMetrics[0].scopeMetrics[0].metrics[0].histogram.dataPoints[0].bucketCounts[1]: expected an integer in the range of uint64",
        ),
        (
            r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"g","gauge":{"dataPoints":[{"asDouble":1,"asInt":"1"}]}}]}]}]}"#,
            "resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[0]: both asDouble and asInt are set",
        ),
        (
            r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"x","gauge":{},"sum":{}}]}]}]}"#,
            "resourceMetrics[0].scopeMetrics[0].metrics[0]: both gauge and sum are set",
        ),
        (
            r#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"k","value":{"kvlistValue":{"values":[{"key":"a","value":{"doubleValue":"fast"}}]}}}]}}]}"#,
            "resourceMetrics[0].resource.attributes[0].value.kvlistValue.values[0].value.doubleValue: expected a number",
        ),
        (
            r#"{"resourceMetrics":{"not":"an array"}}"#,
            "resourceMetrics: expected an array, got an object",
        ),
        (
            r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"s","sum":{"aggregationTemporality":"SOMETIMES"}}]}]}]}"#,
            "resourceMetrics[0].scopeMetrics[0].metrics[0].sum.aggregationTemporality: unknown enum name",
        ),
    ];
    for (json, expected) in cases {
        let error = metrics_error(json);
        assert!(
            error.starts_with(expected),
            "got {error:?}, want prefix {expected:?}"
        );
    }
}

#[test]
fn body_level_errors() {
    assert!(metrics_error("{\"resourceMetrics\": [").starts_with("body is not valid JSON"));
    assert_eq!(metrics_error("[1]"), "expected an object, got an array");
    // Empty request: full success per the spec.
    assert_eq!(
        decode_metrics(b"{}").unwrap(),
        ExportMetricsServiceRequest::default()
    );
}

#[test]
fn errors_never_echo_payload_text() {
    let secret = "my prompt is secret";
    let json = format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"{secret}"}}]}}]}}]}}"#
    );
    assert!(!traces_error(&json).contains(secret));
}

#[test]
fn bounded_decompression_refuses_a_gzip_bomb() {
    let bomb = crate::support::ingest::gzip_of_zeros(64 << 20);
    assert!(bomb.len() < 100_000, "bomb is {} bytes", bomb.len());
    assert_eq!(
        decompress(&bomb, ContentCoding::Gzip, 1 << 20),
        Err(Refusal::TooLarge { limit: 1 << 20 })
    );
    // Exactly at the limit is fine.
    let at_limit = crate::support::ingest::gzip_of_zeros(1 << 20);
    assert_eq!(
        decompress(&at_limit, ContentCoding::Gzip, 1 << 20)
            .unwrap()
            .len(),
        1 << 20
    );
}

#[test]
fn decode_request_handles_every_coding() {
    let protobuf = rich_metrics().encode_to_vec();
    let zstd = zstd::encode_all(protobuf.as_slice(), 3).unwrap();
    let deflate = {
        use std::io::Write;
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&protobuf).unwrap();
        encoder.finish().unwrap()
    };
    let gzip = otlp_test_kit::gzip(&protobuf);
    for (body, coding) in [
        (&protobuf, ContentCoding::Identity),
        (&gzip, ContentCoding::Gzip),
        (&deflate, ContentCoding::Deflate),
        (&zstd, ContentCoding::Zstd),
    ] {
        let decoded: ExportMetricsServiceRequest =
            decode_request(body, PayloadFormat::Protobuf, coding, 1 << 20).unwrap();
        assert_eq!(decoded, rich_metrics(), "{coding:?}");
    }
    let corrupt = decode_request::<ExportMetricsServiceRequest>(
        b"not gzip at all",
        PayloadFormat::Protobuf,
        ContentCoding::Gzip,
        1 << 20,
    );
    assert!(
        matches!(corrupt, Err(Refusal::InvalidData { .. })),
        "{corrupt:?}"
    );
}

#[test]
fn item_counts_are_spans_and_data_points() {
    assert_eq!(rich_metrics().item_count(), RICH_METRICS_POINTS);
    assert_eq!(rich_traces().item_count(), RICH_TRACES_SPANS);
    assert_eq!(ExportMetricsServiceRequest::default().item_count(), 0);
}

/// serde_json's default float parser can be one ulp off; OTLP/JSON doubles
/// must decode to exactly what protobuf would carry.
#[test]
fn doubles_decode_exactly() {
    for value in [
        0.19006930044215822_f64,
        1e-300,
        2.2250738585072014e-308,
        5e-324,
    ] {
        let json = format!(
            r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[{{"name":"g",
            "gauge":{{"dataPoints":[{{"asDouble":{value:?}}}]}}}}]}}]}}]}}"#
        );
        let request = decode_metrics(json.as_bytes()).unwrap();
        let Some(metric::Data::Gauge(gauge)) =
            &request.resource_metrics[0].scope_metrics[0].metrics[0].data
        else {
            panic!("gauge lost");
        };
        assert_eq!(
            gauge.data_points[0].value,
            Some(number_data_point::Value::AsDouble(value)),
            "{value:?}"
        );
    }
}
