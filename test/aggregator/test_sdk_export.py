"""Real OTLP from the Python opentelemetry-sdk exporters (gRPC and HTTP, gzip),
read back through the query API: exact counts and token sums, quantiles
within bounds, histogram quantiles equal to Prometheus's histogram_quantile."""

from __future__ import annotations

import random
import time

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from .support import (
    VLLM_TTFT_BOUNDS,
    assert_quantile,
    bucket_counts,
    histogram_quantile,
)

TRANSPORTS = ["grpc", "http"]
CLUSTER = "eu-west-1"
MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def span_exporter(transport: str, aggregator):
    if transport == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.exporter import Compression
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=f"http://{aggregator.grpc_target}", insecure=True,
                                compression=Compression.Gzip)
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=f"{aggregator.otlp_http}/v1/traces", compression=Compression.Gzip)


def metric_exporter(transport: str, aggregator):
    if transport == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.exporter import Compression
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(endpoint=f"http://{aggregator.grpc_target}", insecure=True,
                                  compression=Compression.Gzip)
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter(endpoint=f"{aggregator.otlp_http}/v1/metrics", compression=Compression.Gzip)


def resource(tenant: str, engine: str = "vllm") -> Resource:
    return Resource.create({
        "service.name": engine,
        "modelplane.tenant": tenant,
        "k8s.namespace.name": tenant,
        "modelplane.cluster": CLUSTER,
        "modelplane.engine": engine,
    })


class SpanBooks:
    """Ground truth of the spans a test emitted."""

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.ttft: list[float] = []
        self.tpot: list[float] = []
        self.e2e: list[float] = []
        self.queue: list[float] = []
        self.prefix_counts: dict[int, int] = {}


def emit_inference_spans(tracer, rng: random.Random, count: int, books: SpanBooks,
                         prefixes: list[int], style: str, extra: dict | None = None) -> None:
    """`engine`: vLLM `llm_request` server spans (deprecated usage names,
    gen_ai.latency.*); `gateway`: `chat` client spans (current names, e2e from
    the span's duration). One vantage per series, as in a real fleet (the
    aggregator lets an engine's spans outrank a gateway's for the same series)."""
    now = time.time_ns()
    vllm_style = style == "engine"
    for _ in range(count):
        failed = rng.random() < 0.1
        input_tokens = rng.randint(20, 4000)
        output_tokens = rng.randint(2, 800)
        queue = round(rng.lognormvariate(-4.0, 1.0), 6)
        ttft = round(queue + rng.lognormvariate(-1.8, 0.6), 6)
        tpot = rng.lognormvariate(-3.5, 0.3)
        e2e_ns = int((ttft + tpot * (output_tokens - 1)) * 1e9)
        start = now - 5_000_000_000 - e2e_ns
        end = start + e2e_ns
        e2e = e2e_ns / 1e9
        prefix = prefixes[0] if rng.random() < 0.3 else rng.choice(prefixes)
        attributes = {"modelplane.prefix.hash": prefix, **(extra or {})}
        if vllm_style:
            name, kind = "llm_request", SpanKind.SERVER
            attributes.update({
                "gen_ai.response.model": MODEL,
                "gen_ai.request.id": f"cmpl-{rng.getrandbits(64):x}",
                "gen_ai.request.temperature": 0.7,
                "gen_ai.request.max_tokens": 1024,
                "gen_ai.usage.prompt_tokens": input_tokens,
                "gen_ai.usage.completion_tokens": output_tokens,
                "gen_ai.latency.time_in_queue": queue,
                "gen_ai.latency.time_to_first_token": ttft,
                "gen_ai.latency.e2e": e2e,
                "gen_ai.latency.time_in_model_decode": e2e - ttft,
            })
            books.queue.append(queue)
        else:
            name, kind = f"chat {MODEL}", SpanKind.CLIENT
            attributes.update({
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": MODEL,
                "gen_ai.response.model": MODEL,
                "gen_ai.usage.input_tokens": input_tokens,
                "gen_ai.usage.output_tokens": output_tokens,
                "gen_ai.response.time_to_first_chunk": ttft,
                "gen_ai.response.finish_reasons": ["stop"],
                "server.address": "vllm.inference.svc",
                "server.port": 8000,
            })
        if failed:
            attributes["error.type"] = "timeout"
        span = tracer.start_span(name, kind=kind, start_time=start, attributes=attributes)
        if failed:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=end)

        books.requests += 1
        books.errors += failed
        books.input_tokens += input_tokens
        books.output_tokens += output_tokens
        books.e2e.append(e2e)
        books.prefix_counts[prefix] = books.prefix_counts.get(prefix, 0) + 1
        if not failed:
            books.ttft.append(ttft)
            books.tpot.append((e2e - ttft) / max(output_tokens - 1, 1))


def send_spans(transport: str, aggregator, tenant: str, count: int, seed: int, style: str,
               extra: dict | None = None) -> SpanBooks:
    rng = random.Random(seed)
    prefixes = [rng.getrandbits(62) for _ in range(40)]
    provider = TracerProvider(resource=resource(tenant))
    processor = BatchSpanProcessor(span_exporter(transport, aggregator), max_export_batch_size=128)
    provider.add_span_processor(processor)
    books = SpanBooks()
    emit_inference_spans(provider.get_tracer(style), rng, count, books, prefixes, style, extra)
    assert provider.force_flush(30_000), "the span exporter did not flush"
    provider.shutdown()
    return books


@pytest.mark.parametrize("style", ["engine", "gateway"])
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_sdk_spans_give_exact_totals_and_bounded_quantiles(aggregator, transport, style):
    tenant = f"sdk-spans-{transport}-{style}"
    books = send_spans(transport, aggregator, tenant, count=600, seed=11, style=style)

    group = aggregator.group(tenant, "RequestLifecycle", CLUSTER, MODEL)
    assert group["requests"] == books.requests
    assert group["errors"] == books.errors
    assert group["input_tokens"] == books.input_tokens
    assert group["output_tokens"] == books.output_tokens
    for field, values in [("ttft_seconds", books.ttft), ("tpot_seconds", books.tpot),
                          ("e2e_seconds", books.e2e), ("queue_seconds", books.queue)]:
        assert group[field]["count"] == len(values), field
        for name, q in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)]:
            if values:
                assert_quantile(group[field][name], values, q)
            else:
                assert group[field][name] is None, (field, name)

    prefix = aggregator.signals(tenant, "PrefixHash", group_by="")["groups"]
    assert len(prefix) == 1
    assert abs(prefix[0]["distinct"] - len(books.prefix_counts)) <= 1
    heavy_hash, heavy_count = max(books.prefix_counts.items(), key=lambda kv: kv[1])
    top = prefix[0]["top"][0]
    assert top["hash"] == f"{heavy_hash:016x}"
    assert top["count"] == heavy_count


def test_sampled_spans_are_scaled_by_their_sample_rate(aggregator):
    tenant = "sdk-sampled"
    books = send_spans("grpc", aggregator, tenant, count=100, seed=5, style="gateway",
                       extra={"modelplane.sample_rate": 0.25})
    group = aggregator.group(tenant, "RequestLifecycle", CLUSTER, MODEL)
    assert group["requests"] == 4 * books.requests
    assert group["errors"] == 4 * books.errors
    assert group["input_tokens"] == 4 * books.input_tokens
    assert group["ttft_seconds"]["count"] == len(books.ttft)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_sdk_metrics_cumulative_counters_and_histograms(aggregator, transport):
    """vLLM-named instruments (underscore spelling: the SDK forbids `:`),
    exported twice cumulatively: the aggregator must count deltas, not totals
    twice, and its TTFT quantiles must be histogram_quantile's."""
    tenant = f"sdk-metrics-{transport}"
    rng = random.Random(3)
    reader = PeriodicExportingMetricReader(metric_exporter(transport, aggregator),
                                           export_interval_millis=3_600_000)
    provider = MeterProvider(resource=resource(tenant), metric_readers=[reader])
    meter = provider.get_meter("vllm")
    prompt = meter.create_counter("vllm_prompt_tokens_total", unit="{token}")
    generation = meter.create_counter("vllm_generation_tokens_total", unit="{token}")
    success = meter.create_counter("vllm_request_success_total")
    ttft = meter.create_histogram("vllm_time_to_first_token_seconds", unit="s",
                                  explicit_bucket_boundaries_advisory=VLLM_TTFT_BOUNDS)
    waiting = meter.create_gauge("vllm_num_requests_waiting")
    labels = {"model_name": MODEL}

    totals = {"input": 0, "output": 0, "requests": 0, "errors": 0}
    ttft_values: list[float] = []
    last_waiting = 0
    for _round in range(2):
        for _ in range(300):
            tokens_in, tokens_out = rng.randint(10, 3000), rng.randint(1, 500)
            reason = rng.choices(["stop", "length", "error"], weights=[85, 10, 5])[0]
            value = rng.lognormvariate(-1.7, 0.7)
            prompt.add(tokens_in, labels)
            generation.add(tokens_out, labels)
            success.add(1, {**labels, "finished_reason": reason})
            ttft.record(value, labels)
            totals["input"] += tokens_in
            totals["output"] += tokens_out
            totals["requests"] += 1
            totals["errors"] += reason == "error"
            ttft_values.append(value)
        last_waiting = rng.randint(0, 30)
        waiting.set(last_waiting, labels)
        assert provider.force_flush(30_000), "the metric exporter did not flush"
    provider.shutdown()

    group = aggregator.group(tenant, "RequestLifecycle", CLUSTER, MODEL)
    assert group["input_tokens"] == totals["input"]
    assert group["output_tokens"] == totals["output"]
    assert group["requests"] == totals["requests"]
    assert group["errors"] == totals["errors"]
    assert group["queue_depth"]["last"] == last_waiting
    assert group["ttft_seconds"]["count"] == len(ttft_values)
    counts = bucket_counts(ttft_values, VLLM_TTFT_BOUNDS)
    for name, q in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)]:
        expected = histogram_quantile(q, VLLM_TTFT_BOUNDS, counts)
        assert group["ttft_seconds"][name] == pytest.approx(expected, rel=1e-9), name
