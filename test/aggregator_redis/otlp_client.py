"""A steady OTLP/HTTP span sender that keeps exact books of what was acknowledged.

Every request carries `spans` GenAI spans for one (tenant, cluster, model); its
spans' output tokens are the request's own sequence number, so a request whose
effect is in the store but whose response was lost (cut by a SIGKILL) can be
identified exactly instead of hiding in a tolerance.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

INPUT_TOKENS_PER_SPAN = 7


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, str):
        return KeyValue(key=key, value=AnyValue(string_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(int_value=int(value)))


def export_request(tenant: str, cluster: str, model: str, seq: int, spans: int) -> bytes:
    now = time.time_ns()
    items = []
    for i in range(spans):
        items.append(
            Span(
                trace_id=(seq * 1000 + i + 1).to_bytes(16, "big"),
                span_id=(seq * 1000 + i + 1).to_bytes(8, "big"),
                name="chat",
                kind=Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=now - 500_000_000,
                end_time_unix_nano=now,
                attributes=[
                    _kv("gen_ai.operation.name", "chat"),
                    _kv("gen_ai.provider.name", "vllm"),
                    _kv("gen_ai.request.model", model),
                    _kv("gen_ai.usage.input_tokens", INPUT_TOKENS_PER_SPAN),
                    _kv("gen_ai.usage.output_tokens", seq),
                    _kv("gen_ai.latency.time_to_first_token", 0.05 + (i % 10) * 0.01),
                    _kv("gen_ai.latency.e2e", 0.5),
                ],
            )
        )
    resource = Resource(
        attributes=[_kv("modelplane.tenant", tenant), _kv("modelplane.cluster", cluster)]
    )
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=items)])]
    )
    return request.SerializeToString()


@dataclass
class Books:
    """What the sender knows for certain."""

    acked_requests: int = 0
    acked_spans: int = 0
    acked_output_tokens: int = 0
    refused_retryable: int = 0
    retry_after_seen: int = 0
    # seq -> spans, for requests sent without an answer (connection cut).
    in_doubt: dict[int, int] = field(default_factory=dict)
    other_failures: list[str] = field(default_factory=list)


class SteadySender:
    """Sends one request at a time from each of `workers` threads until stopped."""

    def __init__(self, endpoint: str, tenant: str, cluster: str, model: str,
                 spans: int = 20, workers: int = 2, pause: float = 0.0) -> None:
        self.endpoint = endpoint
        self.tenant, self.cluster, self.model = tenant, cluster, model
        self.spans = spans
        self.pause = pause
        self.books = Books()
        self._lock = threading.Lock()
        self._next_seq = 1
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(workers)]

    def _seq(self) -> int:
        with self._lock:
            seq = self._next_seq
            self._next_seq += 1
            return seq

    def send_one(self, session: requests.Session) -> None:
        seq = self._seq()
        body = export_request(self.tenant, self.cluster, self.model, seq, self.spans)
        try:
            response = session.post(
                f"{self.endpoint}/v1/traces",
                data=body,
                headers={"content-type": "application/x-protobuf"},
                timeout=10,
            )
        except requests.RequestException:
            with self._lock:
                self.books.in_doubt[seq] = self.spans
            time.sleep(0.05)
            return
        with self._lock:
            if response.status_code == 200:
                parsed = ExportTraceServiceResponse.FromString(response.content)
                if parsed.partial_success.rejected_spans:
                    self.books.other_failures.append(f"partial: {parsed.partial_success}")
                self.books.acked_requests += 1
                self.books.acked_spans += self.spans
                self.books.acked_output_tokens += seq * self.spans
            elif response.status_code in (429, 503):
                self.books.refused_retryable += 1
                if response.headers.get("retry-after"):
                    self.books.retry_after_seen += 1
            else:
                self.books.other_failures.append(f"{response.status_code}: {response.text[:200]}")

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            self.send_one(session)
            if self.pause:
                time.sleep(self.pause)

    def start(self) -> "SteadySender":
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> Books:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
        return self.books
