"""A known fleet, sent to a real aggregator over OTLP/HTTP (protobuf built with
the OpenTelemetry proto classes), and what every dashboard panel must show for it.

Four clusters serve one model for one tenant; eu-west-1 is the degraded one
(TTFT 4x its peers, 10% errors, a queue, a full KV cache, GPU failures).
Every request of a cluster has the same latencies, so every quantile of a
cluster is that value. A fifth cluster, sa-east-1, sent one request 295 s
ago: it is on /metrics for a few seconds and then its agent "stops"."""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass, field

import requests
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from harness.otlp import kv

TENANT = "team-a"
MODEL = "llama-3.1-8b"
REQUESTS = 100
INPUT_TOKENS = 1000
OUTPUT_TOKENS = 101
DECODE_SECONDS = 2.0
QUEUE_SECONDS = 0.05
H100 = "nvidia-h100-80gb-hbm3"
A100 = "nvidia-a100-sxm4-80gb"
GHOST = "sa-east-1"


@dataclass(frozen=True)
class Cluster:
    name: str
    ttft: float
    errors: int
    cached_tokens: int  # per request, of INPUT_TOKENS
    queue_depth: float
    kv_hbm: float
    sku: str
    gpus: float
    allocated: float
    price_per_hour: float
    gpu_seconds: float
    model_load: float
    image_load: float
    failures: dict[str, int] = field(default_factory=dict)

    @property
    def e2e(self) -> float:
        return self.ttft + DECODE_SECONDS

    @property
    def tpot(self) -> float:
        return DECODE_SECONDS / (OUTPUT_TOKENS - 1)

    @property
    def dollars(self) -> float:
        return self.price_per_hour * self.gpu_seconds / 3600

    @property
    def tokens(self) -> int:
        return REQUESTS * (INPUT_TOKENS + OUTPUT_TOKENS)


KV_CPU = 0.1
REPLICAS = {"active": 3.0, "starting": 1.0}

FLEET = [
    Cluster("us-east-1", ttft=0.2, errors=1, cached_tokens=500, queue_depth=2, kv_hbm=0.5, sku=H100,
            gpus=8, allocated=6, price_per_hour=4.0, gpu_seconds=1800, model_load=30.0, image_load=12.0),
    Cluster("us-west-2", ttft=0.2, errors=2, cached_tokens=400, queue_depth=3, kv_hbm=0.6, sku=H100,
            gpus=16, allocated=10, price_per_hour=4.0, gpu_seconds=3600, model_load=32.0, image_load=10.0),
    Cluster("ap-south-1", ttft=0.25, errors=0, cached_tokens=250, queue_depth=1, kv_hbm=0.4, sku=A100,
            gpus=4, allocated=4, price_per_hour=2.5, gpu_seconds=1440, model_load=45.0, image_load=20.0,
            failures={"unexpected_exit": 1}),
    Cluster("eu-west-1", ttft=0.8, errors=10, cached_tokens=100, queue_depth=80, kv_hbm=0.97, sku=H100,
            gpus=8, allocated=8, price_per_hour=4.5, gpu_seconds=2880, model_load=90.0, image_load=15.0,
            failures={"xid_79": 2, "xid_48": 1}),
]


def fleet_median(values: list[float]) -> float:
    """The median over clusters, as PromQL's quantile(0.5, ...) computes it."""
    return statistics.median(values)



def resource(cluster: str) -> Resource:
    return Resource(attributes=[kv("service.name", "vllm"), kv("modelplane.tenant", TENANT),
                                kv("modelplane.cluster", cluster), kv("modelplane.model", MODEL)])


def spans(cluster: Cluster, end_ns: int, seed: int) -> list[Span]:
    rng = random.Random(seed)
    out = []
    for i in range(REQUESTS):
        failed = i < cluster.errors
        attributes = [
            kv("gen_ai.response.model", MODEL),
            kv("gen_ai.usage.input_tokens", INPUT_TOKENS),
            kv("gen_ai.usage.output_tokens", OUTPUT_TOKENS),
            kv("gen_ai.usage.cache_read.input_tokens", cluster.cached_tokens),
            kv("gen_ai.latency.time_to_first_token", cluster.ttft),
            kv("gen_ai.latency.e2e", cluster.e2e),
            kv("gen_ai.latency.time_in_queue", QUEUE_SECONDS),
        ]
        if failed:
            attributes.append(kv("error.type", "500"))
        out.append(Span(
            trace_id=rng.getrandbits(128).to_bytes(16, "big"),
            span_id=rng.getrandbits(64).to_bytes(8, "big"),
            name="llm_request", kind=Span.SPAN_KIND_SERVER,
            start_time_unix_nano=end_ns - int(cluster.e2e * 1e9), end_time_unix_nano=end_ns,
            attributes=attributes,
            status=Status(code=Status.STATUS_CODE_ERROR if failed else Status.STATUS_CODE_OK),
        ))
    return out


def gauge(name: str, points: list[tuple[dict[str, str], float]], now: int) -> metrics_pb2.Metric:
    return metrics_pb2.Metric(name=name, gauge=metrics_pb2.Gauge(data_points=[
        metrics_pb2.NumberDataPoint(attributes=[kv(k, v) for k, v in attrs.items()],
                                    time_unix_nano=now, as_double=value)
        for attrs, value in points]))


def delta_sum(name: str, points: list[tuple[dict[str, str], float]], now: int) -> metrics_pb2.Metric:
    return metrics_pb2.Metric(name=name, sum=metrics_pb2.Sum(
        is_monotonic=True, aggregation_temporality=metrics_pb2.AGGREGATION_TEMPORALITY_DELTA,
        data_points=[metrics_pb2.NumberDataPoint(attributes=[kv(k, v) for k, v in attrs.items()],
                                                 start_time_unix_nano=now - 60_000_000_000,
                                                 time_unix_nano=now, as_double=value)
                     for attrs, value in points]))


def metrics(cluster: Cluster, now: int) -> list[metrics_pb2.Metric]:
    sku = {"modelplane.gpu.sku": cluster.sku}
    out = [
        gauge("vllm:num_requests_waiting", [({}, cluster.queue_depth)], now),
        gauge("modelplane.kv_cache.utilization", [({"modelplane.kv.tier": "hbm"}, cluster.kv_hbm),
                                                  ({"modelplane.kv.tier": "cpu"}, KV_CPU)], now),
        gauge("modelplane.gpu.count", [(sku, cluster.gpus)], now),
        gauge("modelplane.gpu.allocated", [(sku, cluster.allocated)], now),
        gauge("modelplane.replicas", [({"modelplane.replica.state": s}, n) for s, n in REPLICAS.items()], now),
        gauge("modelplane.coldstart.phase.duration",
              [({"modelplane.coldstart.phase": "model_load"}, cluster.model_load),
               ({"modelplane.coldstart.phase": "image_load"}, cluster.image_load)], now),
        gauge("modelplane.gpu.price_per_hour", [(sku, cluster.price_per_hour)], now),
        delta_sum("modelplane.gpu.seconds", [(sku, cluster.gpu_seconds)], now),
    ]
    if cluster.failures:
        out.append(delta_sum("modelplane.failures", [
            ({"modelplane.failure.cause": cause, **sku}, float(n)) for cause, n in cluster.failures.items()], now))
    return out


# Accepted and dropped (`unsupported_metric_type`): what the dropped-events panel shows.
UNSUPPORTED_POINTS = 3


def unsupported(now: int) -> metrics_pb2.Metric:
    return metrics_pb2.Metric(name="vllm:time_to_first_token_seconds", exponential_histogram=metrics_pb2.ExponentialHistogram(
        aggregation_temporality=metrics_pb2.AGGREGATION_TEMPORALITY_DELTA,
        data_points=[metrics_pb2.ExponentialHistogramDataPoint(
            attributes=[kv("replica", str(i))], start_time_unix_nano=now - 60_000_000_000,
            time_unix_nano=now, count=1, sum=0.5, scale=0,
            positive=metrics_pb2.ExponentialHistogramDataPoint.Buckets(offset=0, bucket_counts=[1]))
            for i in range(UNSUPPORTED_POINTS)]))


def post(url: str, message, response_type) -> None:
    response = requests.post(url, data=message.SerializeToString(),
                             headers={"content-type": "application/x-protobuf"}, timeout=10)
    assert response.status_code == 200, (response.status_code, response.text)
    answer = response_type()
    answer.ParseFromString(response.content)
    rejected = ("rejected_spans" if isinstance(answer, ExportTraceServiceResponse) else "rejected_data_points")
    assert getattr(answer.partial_success, rejected) == 0, answer


def send_fleet(otlp_http: str) -> None:
    """Every cluster's spans and metrics, stamped now."""
    now = time.time_ns()
    traces = ExportTraceServiceRequest(resource_spans=[
        ResourceSpans(resource=resource(c.name), scope_spans=[ScopeSpans(spans=spans(c, now, seed))])
        for seed, c in enumerate(FLEET)])
    post(f"{otlp_http}/v1/traces", traces, ExportTraceServiceResponse)
    resource_metrics = [
        metrics_pb2.ResourceMetrics(resource=resource(c.name),
                                    scope_metrics=[metrics_pb2.ScopeMetrics(metrics=metrics(c, now))])
        for c in FLEET]
    resource_metrics[0].scope_metrics[0].metrics.append(unsupported(now))
    post(f"{otlp_http}/v1/metrics", ExportMetricsServiceRequest(resource_metrics=resource_metrics),
         ExportMetricsServiceResponse)


def send_ghost(otlp_http: str, seconds_ago: float = 295.0) -> None:
    """One request from a cluster whose agent then stops: stamped so that its
    minute window leaves /metrics' 5-minute window within about a minute."""
    end = time.time_ns() - int(seconds_ago * 1e9)
    ghost = Cluster(GHOST, ttft=0.3, errors=0, cached_tokens=0, queue_depth=0, kv_hbm=0, sku=H100, gpus=0,
                    allocated=0, price_per_hour=0, gpu_seconds=0, model_load=0, image_load=0)
    traces = ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=resource(GHOST), scope_spans=[ScopeSpans(spans=spans(ghost, end, 99)[:1])])])
    post(f"{otlp_http}/v1/traces", traces, ExportTraceServiceResponse)


def send_rejected(otlp_http: str) -> None:
    """One span with no tenant: refused back to the sender (`rejected_items_total`)."""
    now = time.time_ns()
    nameless = Resource(attributes=[kv("service.name", "vllm"), kv("modelplane.cluster", FLEET[0].name)])
    lone = spans(FLEET[0], now, 7)[:1]
    traces = ExportTraceServiceRequest(resource_spans=[ResourceSpans(resource=nameless,
                                                                     scope_spans=[ScopeSpans(spans=lone)])])
    response = requests.post(f"{otlp_http}/v1/traces", data=traces.SerializeToString(),
                             headers={"content-type": "application/x-protobuf"}, timeout=10)
    assert response.status_code == 200, (response.status_code, response.text)
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(response.content)
    assert answer.partial_success.rejected_spans == 1, answer
