//! OTLP/HTTP ingest over real sockets with reqwest (and a raw TCP client
//! where reqwest would be too polite).

use std::sync::Arc;
use std::time::Duration;

use crate::support::ingest::{
    Behaviour, OneToken, RecordingSink, Running, gzip_of_zeros, start_http,
};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use otlp_test_kit::gzip;
use otlp_test_kit::rich::{rich_metrics, rich_metrics_json, rich_traces, rich_traces_json};
use prost::Message;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE};
use serde_json::{Value, json};
use signal_aggregator::ingest::IngestConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

async fn post(
    running: &Running,
    path: &str,
    content_type: Option<&str>,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(running.http_url(path))
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    if let Some(encoding) = encoding {
        request = request.header(CONTENT_ENCODING, encoding);
    }
    request.send().await.unwrap()
}

fn content_type(response: &reqwest::Response) -> String {
    response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_string()
}

/// A `google.rpc.Status` body in protobuf.
async fn rpc_status(response: reqwest::Response) -> tonic_types::pb::Status {
    assert_eq!(content_type(&response), PROTOBUF);
    tonic_types::pb::Status::decode(response.bytes().await.unwrap()).unwrap()
}

async fn json_body(response: reqwest::Response) -> Value {
    assert_eq!(content_type(&response), JSON);
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

#[tokio::test]
async fn protobuf_and_json_bodies_in_every_coding_decode_to_the_same_request() {
    let sink = RecordingSink::new(Behaviour::Accept);
    let running = start_http(Arc::clone(&sink), IngestConfig::default()).await;
    let metrics_protobuf = rich_metrics().encode_to_vec();
    let metrics_json = rich_metrics_json().into_bytes();
    let bodies = [
        (PROTOBUF, None, metrics_protobuf.clone()),
        (PROTOBUF, Some("gzip"), gzip(&metrics_protobuf)),
        (JSON, None, metrics_json.clone()),
        (
            "application/json; charset=utf-8",
            Some("gzip"),
            gzip(&metrics_json),
        ),
        (
            JSON,
            Some("zstd"),
            zstd::encode_all(metrics_json.as_slice(), 3).unwrap(),
        ),
    ];
    for (kind, encoding, body) in bodies {
        let response = post(&running, "/v1/metrics", Some(kind), encoding, body).await;
        assert_eq!(response.status(), StatusCode::OK, "{kind} {encoding:?}");
        if kind == PROTOBUF {
            let body = response.bytes().await.unwrap();
            let decoded = ExportMetricsServiceResponse::decode(body).unwrap();
            assert_eq!(decoded.partial_success, None);
        } else {
            assert_eq!(json_body(response).await, json!({}));
        }
    }
    let recorded = sink.metrics.lock().clone();
    assert_eq!(recorded.len(), 5);
    assert!(
        recorded
            .iter()
            .all(|(_, request)| request == &rich_metrics())
    );

    let traces_protobuf = rich_traces().encode_to_vec();
    for (kind, body) in [
        (PROTOBUF, traces_protobuf),
        (JSON, rich_traces_json().into_bytes()),
    ] {
        let response = post(
            &running,
            "/v1/traces",
            Some(kind),
            Some("gzip"),
            gzip(&body),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{kind}");
        assert_eq!(content_type(&response), kind);
    }
    let recorded = sink.traces.lock();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0].1, rich_traces());
    assert_eq!(recorded[1].1, rich_traces());
    assert!(
        running.metrics.ingested_snapshot().is_empty(),
        "the sink counts accepted items"
    );
}

#[tokio::test]
async fn partial_success_passes_through_in_both_encodings() {
    let sink = RecordingSink::new(Behaviour::PartiallyReject {
        rejected: 1,
        message: "1 span had no model".into(),
    });
    let running = start_http(Arc::clone(&sink), IngestConfig::default()).await;
    let response = post(
        &running,
        "/v1/traces",
        Some(JSON),
        None,
        rich_traces_json().into_bytes(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        json_body(response).await,
        json!({"partialSuccess": {"rejectedSpans": "1", "errorMessage": "1 span had no model"}})
    );
    let response = post(
        &running,
        "/v1/traces",
        Some(PROTOBUF),
        None,
        rich_traces().encode_to_vec(),
    )
    .await;
    let decoded = ExportTraceServiceResponse::decode(response.bytes().await.unwrap()).unwrap();
    let partial = decoded.partial_success.unwrap();
    assert_eq!(
        (partial.rejected_spans, partial.error_message.as_str()),
        (1, "1 span had no model")
    );
    assert!(
        running.metrics.rejected_snapshot().is_empty(),
        "the sink counts its rejections"
    );
}

#[tokio::test]
async fn bad_json_is_400_with_the_location() {
    let sink = RecordingSink::new(Behaviour::Accept);
    let running = start_http(Arc::clone(&sink), IngestConfig::default()).await;
    let body = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"XYZ"}]}]}]}"#;
    let response = post(&running, "/v1/traces", Some(JSON), None, body.into()).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let status = json_body(response).await;
    assert_eq!(status["code"], 3);
    let message = status["message"].as_str().unwrap();
    assert_eq!(
        message,
        "resourceSpans[0].scopeSpans[0].spans[0].traceId: expected 32 hex digits, got 3 characters"
    );
    assert_eq!(
        status["details"][0]["@type"],
        "type.googleapis.com/google.rpc.BadRequest"
    );
    assert_eq!(
        status["details"][0]["fieldViolations"][0]["field"],
        "resourceSpans[0].scopeSpans[0].spans[0].traceId"
    );
    let response = post(
        &running,
        "/v1/metrics",
        Some(JSON),
        None,
        b"{not json".to_vec(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let status = json_body(response).await;
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .starts_with("body is not valid JSON")
    );
    assert_eq!(sink.entered(), 0);
    assert_eq!(running.rejected("traces", "invalid_data"), 1);
    assert_eq!(running.rejected("metrics", "invalid_data"), 1);
}

#[tokio::test]
async fn bad_protobuf_is_400_with_a_protobuf_status() {
    let sink = RecordingSink::new(Behaviour::Accept);
    let running = start_http(Arc::clone(&sink), IngestConfig::default()).await;
    let response = post(
        &running,
        "/v1/metrics",
        Some(PROTOBUF),
        None,
        vec![0x0a, 0xff, 0xff],
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let status = rpc_status(response).await;
    assert_eq!(status.code, 3);
    assert!(
        status
            .message
            .contains("not a valid ExportMetricsServiceRequest"),
        "{}",
        status.message
    );
    assert!(
        status.details[0]
            .type_url
            .ends_with("google.rpc.BadRequest")
    );
    // Corrupt gzip is bad data too, not a server error.
    let response = post(
        &running,
        "/v1/metrics",
        Some(PROTOBUF),
        Some("gzip"),
        b"garbage".to_vec(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        rpc_status(response)
            .await
            .message
            .contains("could not be decompressed")
    );
    assert_eq!(sink.entered(), 0);
}

#[tokio::test]
async fn oversized_bodies_are_413_before_and_after_decompression() {
    let sink = RecordingSink::new(Behaviour::Accept);
    let config = IngestConfig {
        max_request_bytes: 64 * 1024,
        ..IngestConfig::default()
    };
    let running = start_http(Arc::clone(&sink), config).await;
    let response = post(
        &running,
        "/v1/metrics",
        Some(PROTOBUF),
        None,
        vec![0; 100 * 1024],
    )
    .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(rpc_status(response).await.message.contains("65536 bytes"));
    // 16 MiB of zeros gzip to ~16 KiB: under the limit on the wire.
    let bomb = gzip_of_zeros(16 << 20);
    assert!(bomb.len() < 64 * 1024);
    let response = post(&running, "/v1/metrics", Some(JSON), Some("gzip"), bomb).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let status = json_body(response).await;
    assert_eq!(status["code"], 8);
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("after decompression")
    );
    assert_eq!(running.rejected("metrics", "too_large"), 2);
    assert_eq!(sink.entered(), 0);
}

/// A chunked body has no Content-Length; the streaming limit must catch it.
#[tokio::test]
async fn chunked_body_over_the_limit_is_413() {
    let sink = RecordingSink::new(Behaviour::Accept);
    let config = IngestConfig {
        max_request_bytes: 4096,
        ..IngestConfig::default()
    };
    let running = start_http(Arc::clone(&sink), config).await;
    let mut stream = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    let head = "POST /v1/traces HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-protobuf\r\n\
                Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'x'; 1024];
    for _ in 0..8 {
        stream.write_all(b"400\r\n").await.unwrap();
        stream.write_all(&chunk).await.unwrap();
        if stream.write_all(b"\r\n").await.is_err() {
            break; // the server may answer and close before reading it all
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert_eq!(sink.entered(), 0);
}

#[tokio::test]
async fn unknown_content_types_and_codings_are_415() {
    let sink = RecordingSink::new(Behaviour::Accept);
    let running = start_http(Arc::clone(&sink), IngestConfig::default()).await;
    for content_type in [Some("text/plain"), None] {
        let response = post(&running, "/v1/metrics", content_type, None, b"{}".to_vec()).await;
        assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let status = json_body(response).await;
        let message = status["message"].as_str().unwrap();
        assert!(
            message.contains("application/x-protobuf, application/json"),
            "{message}"
        );
    }
    let response = post(
        &running,
        "/v1/metrics",
        Some(JSON),
        Some("br"),
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        json_body(response).await["message"]
            .as_str()
            .unwrap()
            .contains("gzip")
    );
    assert_eq!(running.rejected("metrics", "unsupported_media_type"), 3);
    assert_eq!(sink.entered(), 0);
}

#[tokio::test]
async fn other_methods_and_paths() {
    let sink = RecordingSink::new(Behaviour::Accept);
    let running = start_http(Arc::clone(&sink), IngestConfig::default()).await;
    let client = reqwest::Client::new();
    let response = client
        .get(running.http_url("/v1/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST");
    let response = client
        .post(running.http_url("/v2/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.text().await.unwrap().contains("POST /v1/metrics"));
}

#[tokio::test]
async fn logs_are_refused_as_not_implemented() {
    let sink = RecordingSink::new(Behaviour::Accept);
    let running = start_http(Arc::clone(&sink), IngestConfig::default()).await;
    let response = post(&running, "/v1/logs", Some(JSON), None, b"{}".to_vec()).await;
    assert_eq!(response.status(), StatusCode::NOT_IMPLEMENTED);
    let status = json_body(response).await;
    assert_eq!(status["code"], 12);
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("carries no logs")
    );
    let response = post(
        &running,
        "/v1/logs",
        Some(PROTOBUF),
        Some("gzip"),
        gzip(b""),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_IMPLEMENTED);
    assert_eq!(rpc_status(response).await.code, 12);
    assert_eq!(running.rejected("logs", "logs_not_accepted"), 2);
}

#[tokio::test]
async fn shedding_is_503_with_retry_after() {
    let sink = RecordingSink::new(Behaviour::Overloaded(Duration::from_secs(3)));
    let config = IngestConfig {
        max_in_flight_requests: 1,
        retry_after: Duration::from_secs(4),
        ..IngestConfig::default()
    };
    let running = start_http(Arc::clone(&sink), config).await;
    let response = post(
        &running,
        "/v1/metrics",
        Some(PROTOBUF),
        None,
        rich_metrics().encode_to_vec(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "3");
    let status = rpc_status(response).await;
    assert_eq!(status.code, 14);
    let retry_info = status
        .details
        .iter()
        .find(|d| d.type_url.ends_with("google.rpc.RetryInfo"))
        .expect("RetryInfo detail");
    let retry_info = tonic_types::pb::RetryInfo::decode(retry_info.value.as_slice()).unwrap();
    assert_eq!(retry_info.retry_delay.unwrap().seconds, 3);

    // Fractional delays round up: never advertise an immediate retry.
    sink.set(Behaviour::Unavailable(
        Duration::from_millis(1500),
        "redis down".into(),
    ));
    let response = post(
        &running,
        "/v1/traces",
        Some(JSON),
        None,
        rich_traces_json().into_bytes(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "2");
    let status = json_body(response).await;
    assert_eq!(
        status["details"][0]["@type"],
        "type.googleapis.com/google.rpc.RetryInfo"
    );
    assert_eq!(status["details"][0]["retryDelay"], "1.5s");
    assert!(status["message"].as_str().unwrap().contains("redis down"));

    // In-flight bound: one held request, the next is shed before its body is read.
    sink.set(Behaviour::Hold);
    let held = {
        let url = running.http_url("/v1/traces");
        let body = rich_traces().encode_to_vec();
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(url)
                .header(CONTENT_TYPE, PROTOBUF)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    sink.wait_entered(3).await;
    let response = post(
        &running,
        "/v1/traces",
        Some(PROTOBUF),
        None,
        rich_traces().encode_to_vec(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "4");
    assert_eq!(sink.entered(), 3);
    sink.release(1);
    assert_eq!(held.await.unwrap(), StatusCode::OK);
    // Only the shed request is ingest's to count; the sink's refusals are its own.
    assert_eq!(
        running
            .metrics
            .rejected_snapshot()
            .into_iter()
            .collect::<Vec<_>>(),
        vec![(("traces", "in_flight_limit"), 1)]
    );
}

#[tokio::test]
async fn authenticator_refuses_with_401_and_sets_the_origin() {
    let sink = RecordingSink::new(Behaviour::Accept);
    let config = IngestConfig {
        authenticator: Arc::new(OneToken),
        ..IngestConfig::default()
    };
    let running = start_http(Arc::clone(&sink), config).await;
    let response = post(
        &running,
        "/v1/metrics",
        Some(JSON),
        None,
        rich_metrics_json().into_bytes(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_eq!(json_body(response).await["code"], 16);
    let response = reqwest::Client::new()
        .post(running.http_url("/v1/metrics"))
        .header(CONTENT_TYPE, JSON)
        .header("authorization", "Bearer good")
        .body(rich_metrics_json())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let recorded = sink.metrics.lock();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].0.authenticated_cluster.as_deref(), Some("c1"));
}

/// A sender that stops mid-body must not keep its in-flight slot.
#[tokio::test]
async fn stalled_body_is_refused_and_frees_its_slot() {
    let sink = RecordingSink::new(Behaviour::Accept);
    let config = IngestConfig {
        max_in_flight_requests: 1,
        body_read_timeout: Duration::from_millis(200),
        ..IngestConfig::default()
    };
    let running = start_http(Arc::clone(&sink), config).await;
    let mut stream = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    let head = "POST /v1/metrics HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
                Content-Length: 1000\r\n\r\n{\"resourceMetrics\":";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut response))
        .await
        .expect("the receiver answers a stalled body")
        .unwrap();
    let response = String::from_utf8_lossy(&response[..n]).to_lowercase();
    assert!(response.starts_with("http/1.1 503"), "{response}");
    assert!(response.contains("retry-after: 1"), "{response}");
    assert!(
        response.contains("did not arrive within 0.2s"),
        "{response}"
    );
    assert_eq!(running.rejected("metrics", "body_read_timeout"), 1);
    let response = post(&running, "/v1/metrics", Some(JSON), None, b"{}".to_vec()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(sink.entered(), 1);
}
