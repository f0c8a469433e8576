"""The binaries' own spans, exported over OTLP to a real OpenTelemetry
Collector (otelcol-k8s from test/peers/build.sh) whose `file` exporter keeps
what arrived: signal-aggregator over OTLP/HTTP (`OTEL_EXPORTER_OTLP_ENDPOINT`,
the default protocol) and function-signals over OTLP/gRPC
(`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` + `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`).
The spans carry the documented ids and sizes, hang together (flush under
ingest, RunFunction under the caller's traceparent), and no byte of what the
tenants sent (a prompt in every position of the ingested span, the XR's spec)
appears anywhere in the export."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import grpc
import pytest
import requests
import yaml
from crossplane.function.proto.v1 import run_function_pb2_grpc as fngrpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from function.fnclient import FunctionServer, RenderCase
from harness import peers
from harness.aggregator import Aggregator
from harness.binaries import REPO_ROOT
from harness.procs import Process, free_port
from harness.otlp import kv

PROMPT = "Summarize the merger memo for ACME-7731 confidential"
TENANT = "team-a"
CLUSTER = "us-east-1"
MODEL = "llama-3.1-8b"
SPANS = 7
BATCH_DELAY_MS = "200"


class Collector:
    """otelcol-k8s receiving OTLP on loopback and writing OTLP JSON lines."""

    def __init__(self, workdir: Path) -> None:
        self.grpc_port, self.http_port, self.telemetry_port = free_port(), free_port(), free_port()
        self.capture = workdir / "spans.jsonl"
        config = {
            "receivers": {"otlp": {"protocols": {
                "grpc": {"endpoint": f"127.0.0.1:{self.grpc_port}"},
                "http": {"endpoint": f"127.0.0.1:{self.http_port}"},
            }}},
            "exporters": {"file": {"path": str(self.capture), "format": "json", "flush_interval": "100ms"}},
            "service": {
                "pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["file"]}},
                "telemetry": {"metrics": {"readers": [{"pull": {"exporter": {"prometheus": {
                    "host": "127.0.0.1", "port": self.telemetry_port}}}}]}},
            },
        }
        path = workdir / "collector.yaml"
        path.write_text(yaml.safe_dump(config))
        self.process = Process([str(peers.otelcol()), f"--config={path}"], name="otelcol-k8s")

    def __enter__(self) -> "Collector":
        self.process.start()
        self.process.wait_for_port(self.grpc_port, timeout=60)
        self.process.wait_for_port(self.http_port, timeout=60)
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.stop()

    def text(self) -> str:
        return self.capture.read_text() if self.capture.exists() else ""

    def spans(self) -> list[tuple[dict[str, Any], str, dict[str, Any]]]:
        """(resource attributes, scope name, span) of everything received."""
        out = []
        for line in self.text().splitlines():
            for rs in json.loads(line).get("resourceSpans", []):
                resource = attrs(rs.get("resource", {}))
                for ss in rs.get("scopeSpans", []):
                    for span in ss.get("spans", []):
                        out.append((resource, ss.get("scope", {}).get("name", ""), span))
        return out

    def wait_for(self, what: str, condition, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        while True:
            found = condition(self.spans())
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} arrived: {[s['name'] for _, _, s in self.spans()]}")
            time.sleep(0.2)


def attrs(item: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for a in item.get("attributes", []):
        value = a["value"]
        (kind, v), = value.items() if value else (("stringValue", ""),)
        out[a["key"]] = int(v) if kind == "intValue" else v
    return out



def tenant_request() -> ExportTraceServiceRequest:
    """GenAI spans with the prompt in the span name, attributes and events."""
    now = time.time_ns()
    spans = []
    for i in range(SPANS):
        spans.append(Span(
            trace_id=(i + 1).to_bytes(16, "big"), span_id=(i + 1).to_bytes(8, "big"),
            name=f"chat {PROMPT}", kind=Span.SPAN_KIND_SERVER,
            start_time_unix_nano=now - 1_000_000_000, end_time_unix_nano=now,
            attributes=[kv("gen_ai.response.model", MODEL), kv("gen_ai.prompt", PROMPT),
                        kv("gen_ai.usage.input_tokens", 100), kv("gen_ai.usage.output_tokens", 11),
                        kv("gen_ai.latency.time_to_first_token", 0.2), kv("gen_ai.latency.e2e", 1.0)],
            events=[Span.Event(name="gen_ai.content.prompt", time_unix_nano=now,
                               attributes=[kv("gen_ai.prompt", PROMPT)])],
        ))
    resource = Resource(attributes=[kv("service.name", "vllm"), kv("modelplane.tenant", TENANT),
                                    kv("modelplane.cluster", CLUSTER), kv("modelplane.model", MODEL)])
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(resource=resource,
                                                                   scope_spans=[ScopeSpans(spans=spans)])])


@pytest.fixture(scope="module")
def collector(tmp_path_factory) -> Iterator[Collector]:
    with Collector(tmp_path_factory.mktemp("selftrace")) as running:
        yield running


def test_aggregator_spans_over_otlp_http(collector: Collector):
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.http_port}",
           "OTEL_BSP_SCHEDULE_DELAY": BATCH_DELAY_MS}
    request = tenant_request()
    body = request.SerializeToString()
    with Aggregator(env=env) as aggregator:
        assert "exporting the aggregator's own spans over OTLP" in aggregator.process.log_text()
        posted = requests.post(f"{aggregator.otlp_http}/v1/traces", data=body,
                               headers={"content-type": "application/x-protobuf"}, timeout=10)
        assert posted.status_code == 200, posted.text
        answer = ExportTraceServiceResponse()
        answer.ParseFromString(posted.content)
        assert answer.partial_success.rejected_spans == 0, answer
        signals = aggregator.signals(TENANT, "RequestLifecycle", group_by="")
        assert signals["groups"], signals
        ingest = collector.wait_for("ingest span", lambda spans: [
            (r, scope, s) for r, scope, s in spans if s["name"] == "ingest"])
        collector.wait_for("flush and query spans", lambda spans: {"flush", "query"} <= {
            s["name"] for _, _, s in spans})
        # /readyz (polled by the harness) and /healthz make no span.
        assert not [s for _, _, s in collector.spans() if attrs(s).get("http.route") in ("/readyz", "/healthz")]

    (resource, scope, span), = ingest
    assert resource["service.name"] == "signal-aggregator", resource
    assert scope == "signal-aggregator"
    assert span["kind"] == Span.SPAN_KIND_SERVER, span  # OTLP JSON: the enum as its number
    assert attrs(span) == {"signal": "traces", "items": SPANS, "bytes": len(body),
                           "rejected": 0, "outcome": "accepted"}, span
    (flush,) = [s for _, _, s in collector.spans() if s["name"] == "flush"]
    assert flush["traceId"] == span["traceId"] and flush["parentSpanId"] == span["spanId"], (flush, span)
    assert attrs(flush) == {"signal": "traces", "accepted": SPANS, "rejected": 0, "dropped": 0,
                            "sketches": 1}, flush
    queries = [attrs(s) for _, _, s in collector.spans() if s["name"] == "query"]
    assert {"http.request.method": "GET", "http.route": "/v1/tenants/{tenant}/signals/{kind}",
            "http.response.status_code": 200} in queries, queries
    exported = collector.text()
    assert PROMPT not in exported
    assert "ACME" not in exported


def test_function_run_function_span_over_otlp_grpc(collector: Collector):
    env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{collector.grpc_port}",
           "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_BSP_SCHEDULE_DELAY": BATCH_DELAY_MS}
    case = RenderCase(REPO_ROOT / "examples" / "ic-full" / "xr.yaml")
    req = case.request(tag="selftrace-tag")
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    with FunctionServer(env=env) as function:
        with function.channel() as channel:
            rsp = fngrpc.FunctionRunnerServiceStub(channel).RunFunction(
                req, timeout=10, metadata=[("traceparent", f"00-{trace_id}-{parent_id}-01")])
        assert "exporting RunFunction spans over OTLP" in function.process.log_text()
        found = collector.wait_for("RunFunction span", lambda spans: [
            (r, scope, s) for r, scope, s in spans if s["name"] == "RunFunction"])
    (resource, scope, span), = found
    assert resource["service.name"] == "function-signals", resource
    assert scope == "function-signals"
    assert span["kind"] == Span.SPAN_KIND_SERVER, span  # OTLP JSON: the enum as its number
    assert span["traceId"] == trace_id and span["parentSpanId"] == parent_id, span
    xr = yaml.safe_load(case.xr.read_text())
    assert attrs(span) == {
        "rpc.system": "grpc",
        "rpc.service": "apiextensions.fn.proto.v1.FunctionRunnerService",
        "rpc.method": "RunFunction",
        "crossplane.request.tag": "selftrace-tag",
        "crossplane.xr.api_version": xr["apiVersion"],
        "crossplane.xr.kind": xr["kind"],
        "crossplane.xr.name": xr["metadata"]["name"],
        **({"crossplane.xr.namespace": xr["metadata"]["namespace"]} if "namespace" in xr["metadata"] else {}),
        "function_signals.request.bytes": req.ByteSize(),
        "function_signals.response.bytes": rsp.ByteSize(),
        "function_signals.desired.resources": len(rsp.desired.resources),
        "function_signals.results": len(rsp.results),
        "function_signals.fatal": False,
    }, span
    assert len(rsp.desired.resources) > 0
    # Nothing of the XR's spec travels: none of its string values is in a
    # span name or attribute value (but for the ids exported on purpose).
    exported = [s for _, _, s in collector.spans() if s["name"] == "RunFunction"]
    values = [str(v) for s in exported for v in attrs(s).values()] + [s["name"] for s in exported]
    ids = {xr["apiVersion"], xr["kind"], xr["metadata"]["name"], "selftrace-tag"}
    for secret in spec_strings(xr.get("spec", {})):
        if len(secret) >= 4 and secret not in ids:
            assert not [v for v in values if secret in v], (secret, values)


def spec_strings(node) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from spec_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from spec_strings(value)
    elif isinstance(node, str):
        yield node
