"""OTLP/HTTP JSON posted with raw `requests`: the same payloads as protobuf to a
twin tenant must give identical answers (hex ids, 64-bit ints as strings and as
numbers, enum numbers). Logs are refused on both transports."""

from __future__ import annotations

import base64
import gzip
import json
import random
import time

import grpc
import pytest
import requests
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from harness.otlp import kv

from .support import VLLM_TTFT_BOUNDS, bucket_counts

CLUSTER = "us-east-1"
MODELS = ["Qwen/Qwen2.5-72B-Instruct", "mistralai/Mistral-7B-Instruct-v0.3"]



def otlp_resource(tenant: str) -> Resource:
    return Resource(attributes=[kv("modelplane.tenant", tenant), kv("modelplane.cluster", CLUSTER),
                                kv("service.name", "vllm")])


def trace_request(tenant: str, seed: int = 1) -> ExportTraceServiceRequest:
    rng = random.Random(seed)
    now = time.time_ns()
    spans = []
    for i in range(120):
        e2e = rng.uniform(0.5, 9.0)
        ttft = rng.uniform(0.02, 0.4)
        failed = i % 17 == 0
        attributes = [
            kv("gen_ai.response.model", MODELS[i % 2]),
            kv("gen_ai.usage.prompt_tokens", rng.randint(1, 5000)),
            kv("gen_ai.usage.completion_tokens", rng.randint(1, 900)),
            kv("gen_ai.latency.time_to_first_token", ttft),
            kv("gen_ai.latency.e2e", e2e),
            kv("gen_ai.latency.time_in_queue", rng.uniform(0.0, 0.05)),
            kv("gen_ai.response.finish_reasons", ["stop"]),
            # Mostly above 2^53: JSON carries it as a string; it must decode exactly.
            kv("modelplane.prefix.hash", rng.getrandbits(63)),
        ]
        if failed:
            attributes.append(kv("error.type", "500"))
        spans.append(Span(
            trace_id=rng.getrandbits(128).to_bytes(16, "big"),
            span_id=rng.getrandbits(64).to_bytes(8, "big"),
            parent_span_id=rng.getrandbits(64).to_bytes(8, "big"),
            name="llm_request",
            kind=Span.SPAN_KIND_SERVER,
            start_time_unix_nano=now - int(e2e * 1e9),
            end_time_unix_nano=now,
            attributes=attributes,
            status=Status(code=Status.STATUS_CODE_ERROR if failed else Status.STATUS_CODE_OK),
        ))
    return ExportTraceServiceRequest(resource_spans=[
        ResourceSpans(resource=otlp_resource(tenant), scope_spans=[ScopeSpans(spans=spans)])])


def metrics_request(tenant: str, round_: int, start: int) -> ExportMetricsServiceRequest:
    """Cumulative scrapes of one vLLM pod started at `start`: round 0, then round 1 grown."""
    rng = random.Random(7)
    now = start + (round_ + 1) * 1_000_000_000
    ttft_values = [rng.lognormvariate(-1.5, 0.8) for _ in range(200 * (round_ + 1))]
    labels = [kv("model_name", MODELS[0])]

    def number(value: int) -> metrics_pb2.NumberDataPoint:
        return metrics_pb2.NumberDataPoint(attributes=labels, start_time_unix_nano=start,
                                           time_unix_nano=now, as_int=value)

    metrics = [
        metrics_pb2.Metric(name="vllm:prompt_tokens_total", sum=metrics_pb2.Sum(
            data_points=[number(123_456 * (round_ + 1))], is_monotonic=True,
            aggregation_temporality=metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE)),
        metrics_pb2.Metric(name="vllm:generation_tokens_total", sum=metrics_pb2.Sum(
            data_points=[number(45_678 * (round_ + 1))], is_monotonic=True,
            aggregation_temporality=metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE)),
        metrics_pb2.Metric(name="vllm:num_requests_waiting", gauge=metrics_pb2.Gauge(
            data_points=[metrics_pb2.NumberDataPoint(attributes=labels, time_unix_nano=now,
                                                     as_double=3.0 + round_)])),
        metrics_pb2.Metric(name="vllm:time_to_first_token_seconds", histogram=metrics_pb2.Histogram(
            aggregation_temporality=metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE,
            data_points=[metrics_pb2.HistogramDataPoint(
                attributes=labels, start_time_unix_nano=start, time_unix_nano=now,
                count=len(ttft_values), sum=sum(ttft_values),
                bucket_counts=bucket_counts(ttft_values, VLLM_TTFT_BOUNDS),
                explicit_bounds=VLLM_TTFT_BOUNDS)])),
    ]
    return ExportMetricsServiceRequest(resource_metrics=[metrics_pb2.ResourceMetrics(
        resource=otlp_resource(tenant), scope_metrics=[metrics_pb2.ScopeMetrics(metrics=metrics)])])


def to_otlp_json(message, numbers_for_timestamps: bool) -> dict:
    """Protobuf → OTLP/JSON as the spec writes it: lowerCamelCase, enum
    numbers, ids as hex (not proto3's base64), 64-bit ints as strings; and
    optionally timestamps as plain numbers, which receivers must also accept."""
    body = MessageToDict(message, use_integers_for_enums=True)

    def fix(node):
        if isinstance(node, dict):
            for key, value in list(node.items()):
                if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                    node[key] = base64.b64decode(value).hex()
                elif numbers_for_timestamps and key.endswith("UnixNano"):
                    node[key] = int(value)
                else:
                    fix(value)
        elif isinstance(node, list):
            for item in node:
                fix(item)

    fix(body)
    return body


def post(aggregator, path: str, body: bytes, content_type: str, gzipped: bool = False) -> requests.Response:
    headers = {"Content-Type": content_type}
    if gzipped:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    return requests.post(f"{aggregator.otlp_http}{path}", data=body, headers=headers, timeout=10)


def assert_accepted(response: requests.Response) -> None:
    assert response.status_code == 200, response.text
    if response.headers["content-type"].startswith("application/json"):
        assert response.json().get("partialSuccess", {}).get("rejectedSpans", 0) in (0, "0")


@pytest.mark.parametrize("numbers_for_timestamps", [False, True], ids=["string-ints", "number-ints"])
def test_json_spans_equal_protobuf_spans(aggregator, numbers_for_timestamps):
    json_body = to_otlp_json(trace_request("json-spans"), numbers_for_timestamps)
    assert json_body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["kind"] == 2
    assert len(json_body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"]) == 32
    response = post(aggregator, "/v1/traces", json.dumps(json_body).encode(), "application/json", gzipped=True)
    assert_accepted(response)
    assert response.headers["content-type"].startswith("application/json")
    response = post(aggregator, "/v1/traces", trace_request("proto-spans").SerializeToString(),
                    "application/x-protobuf")
    assert_accepted(response)

    for kind in ("RequestLifecycle", "PrefixHash"):
        from_json = aggregator.signals("json-spans", kind)["groups"]
        from_proto = aggregator.signals("proto-spans", kind)["groups"]
        assert from_json == from_proto, kind
    lifecycle = aggregator.signals("json-spans", "RequestLifecycle", group_by="")["groups"][0]
    assert lifecycle["requests"] == 120
    assert lifecycle["errors"] == len(range(0, 120, 17))


def test_json_metrics_equal_protobuf_metrics(aggregator):
    start = time.time_ns() - 10_000_000_000
    for round_ in range(2):
        response = post(aggregator, "/v1/metrics",
                        json.dumps(to_otlp_json(metrics_request("json-metrics", round_, start), False)).encode(),
                        "application/json")
        assert response.status_code == 200, response.text
        response = post(aggregator, "/v1/metrics", metrics_request("proto-metrics", round_, start).SerializeToString(),
                        "application/x-protobuf", gzipped=True)
        assert response.status_code == 200, response.text

    from_json = aggregator.signals("json-metrics", "RequestLifecycle")["groups"]
    from_proto = aggregator.signals("proto-metrics", "RequestLifecycle")["groups"]
    assert from_json == from_proto
    group = from_json[0]
    assert group["input_tokens"] == 2 * 123_456
    assert group["output_tokens"] == 2 * 45_678
    assert group["ttft_seconds"]["count"] == 400
    assert group["queue_depth"]["last"] == 4.0


def logs_request() -> logs_service_pb2.ExportLogsServiceRequest:
    return logs_service_pb2.ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        resource=otlp_resource("logs-tenant"),
        scope_logs=[ScopeLogs(log_records=[LogRecord(body=AnyValue(string_value="hello"))])])])


def test_logs_are_refused_over_http_and_grpc(aggregator):
    response = post(aggregator, "/v1/logs", logs_request().SerializeToString(), "application/x-protobuf")
    assert response.status_code == 501, response.status_code
    response = post(aggregator, "/v1/logs", b"{}", "application/json")
    assert response.status_code == 501
    assert "log" in response.text.lower()

    with grpc.insecure_channel(aggregator.grpc_target) as channel:
        stub = logs_service_pb2_grpc.LogsServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.Export(logs_request(), timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "log" in refused.value.details().lower()
