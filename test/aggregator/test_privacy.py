"""Prompt, completion and message text sent to the aggregator in every position
OTLP offers (resource, scope, span name, attributes of every type, events,
links, status, trace state, metric description/unit, datapoint attributes,
exemplars; allowlisted keys carrying text included) must not be retrievable
anywhere: export responses, every API endpoint the OpenAPI document lists,
`/metrics`, `/openapi.json`, the process's logs (at trace level), and, for the
Redis store, every key and value in Redis plus the write-ahead log files."""

from __future__ import annotations

import json
import random
import time
import uuid
from pathlib import Path

import grpc
import pytest
import redis as redis_client
import requests
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status
from opentelemetry.sdk.resources import Resource as SdkResource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from harness.otlp import kv
from harness.redis import RedisServer

from .support import SIGNAL_KINDS, Aggregator
from .test_otlp_json import to_otlp_json

TENANT = "privacy-tenant"
# Metrics go to their own tenant so the span totals above stay exact.
METRICS_TENANT = "privacy-metrics"
CLUSTER = "privacy-cluster"
MODEL = "meta-llama/Llama-3.1-8B-Instruct"
# The common part of every secret; found anywhere, something leaked.
PHRASE = "please summarise this confidential contract"

# Keys that carry content in the GenAI, OpenInference and HTTP conventions,
# plus keys the aggregator does read (its allowlist) given text instead of
# the bounded values it expects.
CONTENT_KEYS = [
    "gen_ai.prompt", "gen_ai.completion", "gen_ai.input.messages", "gen_ai.output.messages",
    "gen_ai.system_instructions", "gen_ai.tool.definitions", "gen_ai.prompt.0.content",
    "gen_ai.completion.0.content", "llm.prompts", "input.value", "output.value", "user.id",
    "gen_ai.conversation.id", "gen_ai.request.id", "gen_ai.response.id", "url.full", "http.url",
    "db.statement", "message",
]
ALLOWLISTED_KEYS_GIVEN_TEXT = [
    "error.type", "gen_ai.provider.name", "gen_ai.response.finish_reasons", "server.address",
]
# Allowlisted keys whose text value must make the item rejected (not stored).
REJECTING_KEYS = [
    "gen_ai.request.model", "gen_ai.response.model", "modelplane.signal",
    "modelplane.prefix.hash", "modelplane.sample_rate",
]


class Secrets:
    """Unique prompt-like texts; remembers each so every one can be searched for."""

    def __init__(self) -> None:
        self.tokens: list[str] = []

    def text(self, where: str) -> str:
        token = f"SECRET{uuid.uuid4().hex}"
        self.tokens.append(token)
        return f"User: {PHRASE} ({where}) {token}. Assistant: here is the summary of {token}"

    def needles(self) -> list[str]:
        return [PHRASE, *self.tokens]


def text_value(secrets: Secrets, where: str) -> AnyValue:
    return AnyValue(string_value=secrets.text(where))


def text_attributes(secrets: Secrets, where: str, keys: list[str]) -> list[KeyValue]:
    attributes = [KeyValue(key=k, value=text_value(secrets, f"{where}/{k}")) for k in keys]
    attributes += [
        KeyValue(key="gen_ai.input.messages.array", value=AnyValue(array_value=ArrayValue(
            values=[text_value(secrets, f"{where}/array")]))),
        KeyValue(key="gen_ai.output.messages.kvlist", value=AnyValue(kvlist_value=KeyValueList(
            values=[KeyValue(key="content", value=text_value(secrets, f"{where}/kvlist"))]))),
        KeyValue(key="gen_ai.prompt.bytes",
                 value=AnyValue(bytes_value=secrets.text(f"{where}/bytes").encode())),
    ]
    return attributes



def resource(secrets: Secrets, tenant: str = TENANT, cluster: str = CLUSTER) -> Resource:
    return Resource(attributes=[
        kv("modelplane.tenant", tenant), kv("modelplane.cluster", cluster),
        *text_attributes(secrets, "resource", ["service.name", "k8s.pod.name", "modelplane.engine",
                                               "process.command_line", *CONTENT_KEYS]),
    ])


def scope(secrets: Secrets) -> InstrumentationScope:
    return InstrumentationScope(name=secrets.text("scope.name"), version=secrets.text("scope.version"),
                                attributes=text_attributes(secrets, "scope", ["gen_ai.prompt"]))


def request_span(secrets: Secrets, rng: random.Random, extra: list[KeyValue]) -> Span:
    now = time.time_ns()
    return Span(
        trace_id=rng.getrandbits(128).to_bytes(16, "big"),
        span_id=rng.getrandbits(64).to_bytes(8, "big"),
        trace_state=f"vendor={uuid.uuid4().hex}",
        name=f"chat {secrets.text('span.name')}",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=now - 2_000_000_000,
        end_time_unix_nano=now,
        attributes=[
            kv("gen_ai.operation.name", "chat"),
            kv("gen_ai.request.model", MODEL),
            kv("gen_ai.usage.input_tokens", 100),
            kv("gen_ai.usage.output_tokens", 10),
            kv("gen_ai.latency.time_to_first_token", 0.25),
            kv("modelplane.prefix.hash", rng.getrandbits(62)),
            *text_attributes(secrets, "span", CONTENT_KEYS + ALLOWLISTED_KEYS_GIVEN_TEXT),
            *extra,
        ],
        events=[Span.Event(time_unix_nano=now - 1_000_000_000, name=secrets.text("event.name"),
                           attributes=text_attributes(secrets, "event", ["gen_ai.prompt", "gen_ai.completion"]))],
        links=[Span.Link(trace_id=rng.getrandbits(128).to_bytes(16, "big"),
                         span_id=rng.getrandbits(64).to_bytes(8, "big"),
                         attributes=text_attributes(secrets, "link", ["gen_ai.prompt"]))],
        status=Status(code=Status.STATUS_CODE_ERROR, message=secrets.text("status.message")),
    )


def trace_request(secrets: Secrets, accepted_spans: int) -> ExportTraceServiceRequest:
    """`accepted_spans` valid request spans full of text, then one span per
    rejecting key, then resources whose identity itself is text."""
    rng = random.Random(uuid.uuid4().int)
    spans = [request_span(secrets, rng, []) for _ in range(accepted_spans)]
    spans += [request_span(secrets, rng, [KeyValue(key=k, value=text_value(secrets, f"reject/{k}"))])
              for k in REJECTING_KEYS]
    # Not a request (unknown operation), so only its prefix hash could be kept.
    spans.append(request_span(secrets, rng, [kv("gen_ai.operation.name", secrets.text("operation"))]))
    return ExportTraceServiceRequest(resource_spans=[
        ResourceSpans(resource=resource(secrets), scope_spans=[ScopeSpans(scope=scope(secrets), spans=spans)]),
        ResourceSpans(resource=resource(secrets, cluster=secrets.text("cluster")),
                      scope_spans=[ScopeSpans(spans=[request_span(secrets, rng, [])])]),
        ResourceSpans(resource=resource(secrets, tenant=secrets.text("tenant")),
                      scope_spans=[ScopeSpans(spans=[request_span(secrets, rng, [])])]),
    ])


def metrics_request(secrets: Secrets) -> ExportMetricsServiceRequest:
    now = time.time_ns()
    start = now - 5_000_000_000
    dims = ["finished_reason", "gen_ai.token.type", "error.type", "modelplane.coldstart.phase",
            "modelplane.kv.tier", "modelplane.failure.cause", "modelplane.replica.state", "modelName",
            "gpu", "reason", "prompt", "gen_ai.prompt"]

    def labels(where: str, model: str = MODEL) -> list[KeyValue]:
        return [kv("model_name", model), *text_attributes(secrets, where, dims)]

    def counter(name: str, value: int, attrs: list[KeyValue]) -> metrics_pb2.Metric:
        return metrics_pb2.Metric(
            name=name, description=secrets.text(f"{name}/description"), unit="{token}",
            sum=metrics_pb2.Sum(is_monotonic=True,
                                aggregation_temporality=metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE,
                                data_points=[metrics_pb2.NumberDataPoint(
                                    attributes=attrs, start_time_unix_nano=start, time_unix_nano=now,
                                    as_int=value,
                                    exemplars=[metrics_pb2.Exemplar(
                                        time_unix_nano=now, as_int=1,
                                        filtered_attributes=text_attributes(secrets, "exemplar", ["gen_ai.prompt"]))])]))

    metrics = [
        counter("vllm:prompt_tokens_total", 500, labels("prompt_tokens")),
        counter("vllm:request_success_total", 5, labels("request_success")),
        counter("modelplane.failures", 2, labels("failures")),
        counter("modelplane.launch.attempts", 3, labels("launch")),
        counter("vllm:generation_tokens_total", 50, labels("bad-model", model=secrets.text("model_name"))),
        metrics_pb2.Metric(name="gen_ai.client.token.usage", unit=secrets.text("unit"),
                           histogram=metrics_pb2.Histogram(
                               aggregation_temporality=metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE,
                               data_points=[metrics_pb2.HistogramDataPoint(
                                   attributes=labels("token_usage"), start_time_unix_nano=start,
                                   time_unix_nano=now, count=3, sum=30.0, bucket_counts=[1, 2, 0],
                                   explicit_bounds=[4.0, 16.0])])),
        metrics_pb2.Metric(name="vllm:num_requests_waiting", gauge=metrics_pb2.Gauge(data_points=[
            metrics_pb2.NumberDataPoint(attributes=labels("waiting"), time_unix_nano=now, as_double=2.0)])),
    ]
    return ExportMetricsServiceRequest(resource_metrics=[metrics_pb2.ResourceMetrics(
        resource=resource(secrets, tenant=METRICS_TENANT), scope_metrics=[metrics_pb2.ScopeMetrics(scope=scope(secrets), metrics=metrics)])])


def send_everywhere(aggregator: Aggregator, secrets: Secrets) -> tuple[int, list[str]]:
    """Sends text-laden payloads over every transport and encoding; returns
    the request spans that should have been counted and every response text."""
    responses: list[str] = []
    accepted = 0
    http = aggregator.otlp_http

    for content_type, encode in [
        ("application/x-protobuf", lambda m: m.SerializeToString()),
        ("application/json", lambda m: json.dumps(to_otlp_json(m, False)).encode()),
    ]:
        request = trace_request(secrets, accepted_spans=3)
        response = requests.post(f"{http}/v1/traces", data=encode(request),
                                 headers={"Content-Type": content_type}, timeout=10)
        assert response.status_code == 200, response.text
        responses.append(response.text if content_type.endswith("json") else repr(response.content))
        accepted += 3
        response = requests.post(f"{http}/v1/metrics", data=encode(metrics_request(secrets)),
                                 headers={"Content-Type": content_type}, timeout=10)
        assert response.status_code == 200, response.text
        responses.append(response.text if content_type.endswith("json") else repr(response.content))

    with grpc.insecure_channel(aggregator.grpc_target) as channel:
        reply = trace_service_pb2_grpc.TraceServiceStub(channel).Export(trace_request(secrets, 3), timeout=10)
        assert reply.partial_success.rejected_spans > 0, "text-valued identities must be rejected"
        responses.append(str(reply))
        accepted += 3
        reply = metrics_service_pb2_grpc.MetricsServiceStub(channel).Export(metrics_request(secrets), timeout=10)
        responses.append(str(reply))

    # And as an instrumented gateway would, through the SDK's exporter.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=SdkResource.create({
        "modelplane.tenant": TENANT, "modelplane.cluster": CLUSTER, "service.name": secrets.text("sdk.service")}))
    provider.add_span_processor(BatchSpanProcessor(
        OTLPSpanExporter(endpoint=f"http://{aggregator.grpc_target}", insecure=True)))
    tracer = provider.get_tracer(secrets.text("sdk.tracer"))
    for _ in range(2):
        with tracer.start_as_current_span(f"chat {secrets.text('sdk.span')}", attributes={
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
            "gen_ai.request.model": MODEL, "gen_ai.usage.input_tokens": 100,
            "gen_ai.usage.output_tokens": 10, **{k: secrets.text(f"sdk/{k}") for k in CONTENT_KEYS},
        }) as span:
            span.add_event("gen_ai.content.prompt", {"gen_ai.prompt": secrets.text("sdk.event")})
        accepted += 1
    assert provider.force_flush(30_000)
    provider.shutdown()
    return accepted, responses


def api_texts(aggregator: Aggregator) -> dict[str, str]:
    """Every API endpoint the OpenAPI document lists, with every kind, window
    and grouping, plus the operational endpoints."""
    texts: dict[str, str] = {}
    openapi = aggregator.get("/openapi.json")
    assert openapi.status_code == 200
    texts["/openapi.json"] = openapi.text
    paths = sorted(openapi.json()["paths"])
    assert "/v1/tenants/{tenant}/signals/{kind}" in paths and "/v1/fleet/compare" in paths, paths
    for path in paths:
        if path == "/v1/tenants/{tenant}/signals/{kind}":
            for kind in SIGNAL_KINDS:
                for window in ("5m", "1h", "30d"):
                    for group_by in ("cluster,model", "model", ""):
                        for tenant in (TENANT, METRICS_TENANT):
                            url = f"/v1/tenants/{tenant}/signals/{kind}"
                            response = aggregator.get(url, window=window, groupBy=group_by)
                            assert response.status_code == 200, (url, response.text)
                            texts[f"{url}?{window}&{group_by}"] = response.text
        elif path == "/v1/fleet/compare":
            comparisons = [{"kind": "RequestLifecycle", "field": f} for f in
                           ("ttft_seconds", "tpot_seconds", "e2e_seconds", "queue_seconds")]
            comparisons.append({"kind": "ColdStart", "field": "phase_seconds", "phase": "model_load"})
            for params in comparisons:
                for quantile in ("0.5", "0.99"):
                    response = aggregator.get(path, quantile=quantile, window="1h", **params)
                    assert response.status_code == 200, (path, params, response.text)
                    texts[f"{path}?{params}&{quantile}"] = response.text
        elif "{" not in path:
            texts[path] = aggregator.get(path).text
        else:
            pytest.fail(f"the privacy test does not know how to fill in {path}; teach it")
    return texts


def redis_dump(url: str) -> str:
    """Every key and every value in Redis, whatever its type."""
    client = redis_client.Redis.from_url(url)
    parts: list[bytes] = []
    for key in client.scan_iter(count=1000):
        parts.append(key)
        kind = client.type(key).decode()
        if kind == "string":
            parts.append(client.get(key) or b"")
        elif kind == "hash":
            parts += [b for pair in client.hgetall(key).items() for b in pair]
        elif kind == "list":
            parts += client.lrange(key, 0, -1)
        elif kind == "set":
            parts += list(client.smembers(key))
        elif kind == "zset":
            parts += [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            for _id, fields in client.xrange(key):
                parts += [b for pair in fields.items() for b in pair]
        else:
            pytest.fail(f"unexpected Redis type {kind} at {key!r}")
    assert parts, "Redis holds nothing: the store dump proves nothing"
    return b"\n".join(parts).decode("latin-1")


def assert_nowhere(secrets: Secrets, places: dict[str, str]) -> None:
    leaks = [(where, needle) for where, text in places.items() for needle in secrets.needles()
             if needle in text]
    assert not leaks, f"prompt text found in: {sorted({w for w, _ in leaks})[:10]}"


@pytest.mark.parametrize("store", ["embedded", "redis"])
def test_prompt_text_is_not_retrievable_anywhere(store, tmp_path: Path):
    secrets = Secrets()
    redis_server = RedisServer() if store == "redis" else None
    try:
        if redis_server is not None:
            redis_server.__enter__()
        wal_dir = tmp_path / "wal"
        with Aggregator(env={"RUST_LOG": "trace"},
                        redis_url=redis_server.url if redis_server else None,
                        wal_dir=wal_dir) as aggregator:
            accepted, responses = send_everywhere(aggregator, secrets)

            # The valid parts were kept: the test would prove nothing if the
            # aggregator had simply thrown everything away.
            # The Redis store acknowledges once the write-ahead log has it and
            # flushes to Redis in the background, so give it a moment.
            deadline = time.monotonic() + 30
            while True:
                lifecycle = aggregator.signals(TENANT, "RequestLifecycle", group_by="")["groups"]
                if (lifecycle and lifecycle[0]["requests"] == accepted) or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert lifecycle and lifecycle[0]["requests"] == accepted, lifecycle
            assert lifecycle[0]["input_tokens"] == 100 * accepted
            assert aggregator.signals(TENANT, "PrefixHash", group_by="")["groups"][0]["distinct"] > 0
            from_metrics = aggregator.signals(METRICS_TENANT, "RequestLifecycle", group_by="")["groups"]
            assert from_metrics and from_metrics[0]["input_tokens"] >= 500, from_metrics

            places = {f"response {i}": text for i, text in enumerate(responses)}
            places.update(api_texts(aggregator))
            if redis_server is not None:
                places["redis"] = redis_dump(redis_server.url)
                places.update({f"wal {p.name}": p.read_bytes().decode("latin-1")
                               for p in wal_dir.rglob("*") if p.is_file()})
            aggregator.process.stop()
            log = aggregator.process.log_text()
            assert "signal-aggregator ready" in log and '"level":"TRACE"' in log, "trace logs were not captured"
            places["process log"] = log
        assert_nowhere(secrets, places)
        assert len(secrets.tokens) > 300
    finally:
        if redis_server is not None:
            redis_server.__exit__(None, None, None)
