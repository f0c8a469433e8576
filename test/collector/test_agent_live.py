"""The agent, run for real: the otelcol-k8s collector (built by
test/peers/build.sh) loads the config function-signals renders for
examples/ic-full, scrapes loopback stand-ins of vLLM, SGLang, llama.cpp, the
llm-d EPP and the DCGM exporter (test/collector/engines.py), receives gateway
spans from the OpenTelemetry Python SDK, and exports to a real
signal-aggregator authenticated with an ingest token file. Values are read
back through the aggregator's HTTP API; what the agent put on the wire is
read from a `file` exporter next to the aggregator's.

The test copy of the config differs from the rendered one only where this
machine is not a Kubernetes pod (see `local_agent_config`).

To refresh the fixture aggregator/tests/agent_capture.rs replays, run with
MODELPLANE_CAPTURE_FIXTURE=aggregator/tests/fixtures/agent-export.jsonl.gz:
what the agent exported (its `file` exporter's OTLP JSON lines) is kept
there, next to what the engines counted while it ran.
"""

from __future__ import annotations

import collections
import copy
import gzip
import hashlib
import json
import math
import os
import random
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import pytest
import requests
import yaml

from harness import peers
from harness.aggregator import Aggregator
from harness.procs import Process, free_port

from .engines import (
    EPP_LATENCY_BUCKETS,
    EPP_TTFT_BUCKETS,
    SGLANG_E2E_BUCKETS,
    SGLANG_ITL_BUCKETS,
    SGLANG_TTFT_BUCKETS,
    VLLM_ITL_BUCKETS,
    VLLM_REQUEST_LATENCY_BUCKETS,
    VLLM_TTFT_BUCKETS,
    Dcgm,
    Epp,
    EppRoute,
    Gpu,
    LlamaCpp,
    Request,
    Sglang,
    Vllm,
    self_signed_tls,
    wait_for_scrapes,
)
from .rendered import (
    EXAMPLES,
    PLACEHOLDER_SERVICE_ACCOUNT_TOKEN,
    agent_from_documents,
    component_type,
    render_documents,
)

XR = EXAMPLES / "ic-full" / "xr.yaml"
OBSERVED = EXAMPLES / "ic-full" / "observed"
CLUSTER = "eu-west-4"  # the XR's name: the ingest token's cluster
TENANT = "team-a"
GPU_NAMESPACE = "gpu-operator"
# Provisional: where DCGM series land (see the report).
GPU_TENANT = GPU_NAMESPACE
RENDERED_SCRAPE_INTERVAL = "15s"
# Four scrapes of a 15 s interval would take a minute; one second keeps the
# test short and changes nothing the rules or the receiver do per scrape.
TEST_SCRAPE_INTERVAL = "1s"

VLLM_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
SGLANG_MODEL = "Qwen/Qwen2.5-7B-Instruct"
LLAMACPP_MODEL = "gemma-3-4b-it"
EPP_MODEL = "qwen3-32b"
EPP_FLEET_MODEL = "qwen3-coder-30b"
GATEWAY_MODEL = "gpt-oss-120b"
DECOY_MODEL = "decoy-pending-pod"
H100 = "NVIDIA H100 80GB HBM3"
H100_SKU = "nvidia-h100-80gb-hbm3"

SPANS = 2000
PREFIX_HASHES = ("9f3c1a0b7d2e4f61", "00000000000abc12", "7d2e4f619f3c1a0b", "0123456789abcdef")
SIGMAS = 5.0

CAPTURE_ENV = "MODELPLANE_CAPTURE_FIXTURE"


# --- Kubernetes service discovery, as static targets -------------------------


def sanitize(name: str) -> str:
    """Prometheus's label-name sanitizer for Kubernetes labels/annotations."""
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)


@dataclass
class Pod:
    """A pod as Kubernetes SD (role: pod) describes it: one target per
    declared container port. `listen` maps each port number to where its
    server listens here (SD would address it as <pod IP>:<port>)."""

    name: str
    namespace: str
    container: str
    ports: dict[int, str]
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    phase: str = "Running"
    init_container: bool = False

    def static_configs(self) -> list[dict[str, Any]]:
        out = []
        for number, address in self.ports.items():
            meta = {
                "__meta_kubernetes_namespace": self.namespace,
                "__meta_kubernetes_pod_name": self.name,
                "__meta_kubernetes_pod_ip": "127.0.0.1",
                "__meta_kubernetes_pod_phase": self.phase,
                "__meta_kubernetes_pod_ready": "true" if self.phase == "Running" else "false",
                "__meta_kubernetes_pod_uid": f"uid-{self.name}",
                "__meta_kubernetes_pod_node_name": "gpu-node-7",
                "__meta_kubernetes_pod_host_ip": "10.0.0.7",
                "__meta_kubernetes_pod_container_name": self.container,
                "__meta_kubernetes_pod_container_init": "true" if self.init_container else "false",
                "__meta_kubernetes_pod_container_port_number": str(number),
                "__meta_kubernetes_pod_container_port_name": "metrics",
                "__meta_kubernetes_pod_container_port_protocol": "TCP",
            }
            for key, value in self.labels.items():
                meta[f"__meta_kubernetes_pod_label_{sanitize(key)}"] = value
                meta[f"__meta_kubernetes_pod_labelpresent_{sanitize(key)}"] = "true"
            for key, value in self.annotations.items():
                meta[f"__meta_kubernetes_pod_annotation_{sanitize(key)}"] = value
                meta[f"__meta_kubernetes_pod_annotationpresent_{sanitize(key)}"] = "true"
            out.append({"targets": [address], "labels": meta})
        return out


@dataclass(frozen=True)
class AgentPorts:
    otlp_grpc: int = field(default_factory=free_port)
    otlp_http: int = field(default_factory=free_port)
    health: int = field(default_factory=free_port)
    telemetry: int = field(default_factory=free_port)


def local_agent_config(rendered: dict[str, Any], *, pods: Sequence[Pod], ports: AgentPorts,
                       aggregator_grpc: str, capture: Path) -> dict[str, Any]:
    """The rendered config (its mount paths already moved by
    `RenderedAgent.local_pod`), changed only where this machine is not a pod:

    - kubernetes_sd_configs -> static_configs: every pod of the SD config's
      namespaces, with the __meta_kubernetes_* labels SD would give it, so the
      rendered relabel rules decide what is scraped;
    - listener ports: the rendered 4317/4318/13133/8888 are fixed and this
      machine is shared, so free ports (the host stays ${env:MY_POD_IP});
    - the exporter: the test aggregator's plaintext loopback gRPC port;
    - k8s_attributes leaves the pipelines: it needs a Kubernetes API server.
      Until the Kubernetes API server issue lands, the SDK sets the
      resource attributes it would add (k8s.namespace.name);
    - a `file` exporter next to the aggregator's in every pipeline: what the
      agent exported, for the wire-level privacy check and the fixture;
    - the scrape interval (see TEST_SCRAPE_INTERVAL).
    """
    config = copy.deepcopy(rendered)
    for receiver_id, receiver in config["receivers"].items():
        if component_type(receiver_id) != "prometheus":
            continue
        for job in receiver["config"]["scrape_configs"]:
            (discovery,) = job.pop("kubernetes_sd_configs")
            assert discovery["role"] == "pod", discovery
            namespaces = set(discovery["namespaces"]["names"])
            job["static_configs"] = [sc for pod in pods if pod.namespace in namespaces for sc in pod.static_configs()]
            if "credentials_file" in job.get("authorization", {}):
                assert Path(job["authorization"]["credentials_file"]).is_file(), job["authorization"]
            assert job["scrape_interval"] == RENDERED_SCRAPE_INTERVAL, job["scrape_interval"]
            job["scrape_interval"] = TEST_SCRAPE_INTERVAL

    protocols = config["receivers"]["otlp"]["protocols"]
    protocols["grpc"]["endpoint"] = rebind(protocols["grpc"]["endpoint"], 4317, ports.otlp_grpc)
    protocols["http"]["endpoint"] = rebind(protocols["http"]["endpoint"], 4318, ports.otlp_http)
    health = config["extensions"]["health_check"]
    health["endpoint"] = rebind(health["endpoint"], 13133, ports.health)
    (reader,) = config["service"]["telemetry"]["metrics"]["readers"]
    prometheus = reader["pull"]["exporter"]["prometheus"]
    assert prometheus["port"] == 8888, prometheus
    prometheus["port"] = ports.telemetry

    (exporter_id,) = [e for e in config["exporters"] if component_type(e) == "otlp_grpc"]
    exporter = config["exporters"][exporter_id]
    exporter["endpoint"] = aggregator_grpc
    exporter["tls"] = {"insecure": True}
    config["exporters"]["file/capture"] = {"path": str(capture), "format": "json", "flush_interval": "100ms"}

    for pipeline in config["service"]["pipelines"].values():
        pipeline["processors"] = [p for p in pipeline["processors"] if component_type(p) != "k8s_attributes"]
        assert pipeline["exporters"] == [exporter_id], pipeline
        pipeline["exporters"].append("file/capture")
    return config


def rebind(endpoint: str, rendered_port: int, port: int) -> str:
    host, _, rendered = endpoint.rpartition(":")
    assert host == "${env:MY_POD_IP}" and rendered == str(rendered_port), endpoint
    return f"{host}:{port}"


# --- Prometheus's histogram_quantile -----------------------------------------


def histogram_quantile(q: float, bounds: Sequence[float], cumulative: Sequence[float]) -> float:
    """promql's bucketQuantile for classic buckets: upper bounds `bounds`
    plus +Inf, cumulative counts."""
    total = cumulative[-1]
    if total == 0:
        return math.nan
    rank = q * total
    bucket = next(i for i, c in enumerate(cumulative[:-1]) if c >= rank) if cumulative[-2] >= rank else len(bounds)
    if bucket == len(bounds):
        return bounds[-1]
    if bucket == 0 and bounds[0] <= 0:
        return bounds[0]
    start = 0.0 if bucket == 0 else bounds[bucket - 1]
    below = 0.0 if bucket == 0 else cumulative[bucket - 1]
    return start + (bounds[bucket] - start) * ((rank - below) / (cumulative[bucket] - below))


@dataclass
class BucketDelta:
    """A histogram's growth between two readings (or its whole value when the
    series restarted), cumulative like the exposition."""

    bounds: tuple[float, ...]
    cumulative: list[float]

    @classmethod
    def zero(cls, bounds: Sequence[float]) -> "BucketDelta":
        return cls(tuple(bounds), [0.0] * (len(bounds) + 1))

    def plus(self, other: "BucketDelta") -> "BucketDelta":
        assert self.bounds == other.bounds
        return BucketDelta(self.bounds, [a + b for a, b in zip(self.cumulative, other.cumulative)])

    @property
    def count(self) -> int:
        return round(self.cumulative[-1])

    def quantile(self, q: float) -> float:
        return histogram_quantile(q, self.bounds, self.cumulative)


def prom_histogram(engine: Vllm | Sglang, name: str, bounds: Sequence[float]) -> BucketDelta:
    def bucket(le: float) -> float:
        return engine.sample(f"{name}_bucket", le=prom_le(le))

    return BucketDelta(tuple(bounds), [bucket(b) for b in bounds] + [bucket(math.inf)])


def prom_le(bound: float) -> str:
    from prometheus_client.utils import floatToGoString

    return floatToGoString(bound)


def minus(after: BucketDelta, before: BucketDelta) -> BucketDelta:
    return BucketDelta(after.bounds, [a - b for a, b in zip(after.cumulative, before.cumulative)])


# --- requests, deterministic -------------------------------------------------


def requests_batch(rng: random.Random, n: int, *, errors: int = 0) -> list[Request]:
    batch = []
    for i in range(n):
        batch.append(
            Request(
                prompt_tokens=rng.randint(40, 3000),
                output_tokens=rng.randint(2, 400),
                queue_seconds=round(rng.uniform(0.0, 0.6), 4),
                ttft_seconds=round(rng.lognormvariate(-1.6, 0.7), 4),
                itl_seconds=round(rng.uniform(0.008, 0.09), 4),
                finished_reason="error" if i < errors else rng.choice(("stop", "stop", "stop", "length")),
            )
        )
    return batch


# --- the gateway's spans -----------------------------------------------------


@dataclass(frozen=True)
class SentSpan:
    """What the gateway reported about one request: an exported span must
    carry exactly these values."""

    input_tokens: int
    output_tokens: int
    ttft: float
    prefix_hash: str
    error: bool


def send_gateway_spans(endpoint: str, prompt: str, rng: random.Random, n: int) -> list[SentSpan]:
    """`n` gen_ai chat spans from an LLM gateway, prompt and completion text in
    every attribute position a gateway or an instrumentation library uses."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry import trace
    from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags, TraceState

    resource = Resource.create({
        "service.name": "llm-gateway",
        # What k8s_attributes adds in a cluster (see local_agent_config).
        "k8s.namespace.name": TENANT,
        "k8s.pod.name": "llm-gateway-7c9d5",
        # Resource-level content some SDKs attach (prompt templates, session
        # context): the agent keeps only the resource attributes the
        # aggregator reads.
        "gen_ai.prompt": prompt,
        "app.last_prompt": prompt,
        "session.id": f"session {prompt}",
        "user.id": f"user {prompt}",
    })
    provider = TracerProvider(resource=resource)
    exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True, compression=None)
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=n + 100, max_export_batch_size=512))
    tracer = provider.get_tracer("llm-gateway", "1.4.0", attributes={"prompt.template": prompt})
    sent = []
    now = time.time_ns()
    for i in range(n):
        input_tokens, output_tokens = rng.randint(10, 4000), rng.randint(1, 800)
        ttft = round(rng.lognormvariate(-1.2, 0.6), 4)
        duration = round(ttft + output_tokens * rng.uniform(0.01, 0.04), 4)
        error = i % 25 == 0
        prefix_hash = PREFIX_HASHES[i % len(PREFIX_HASHES)]
        start = now - int(duration * 1e9) - (n - i) * 1000
        link = Link(
            SpanContext(trace_id=rng.getrandbits(128) | 1, span_id=rng.getrandbits(64) | 1, is_remote=True,
                        trace_flags=TraceFlags(TraceFlags.SAMPLED)),
            attributes={"gen_ai.prompt": prompt, "link.reason": f"retry of {prompt}"},
        )
        # The caller's trace context, its trace state carrying the prompt (a
        # vendor entry); one trace per request, as the sampler hashes trace ids.
        parent = trace.set_span_in_context(NonRecordingSpan(SpanContext(
            trace_id=rng.getrandbits(128) | 1, span_id=rng.getrandbits(64) | 1, is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED), trace_state=TraceState([("gateway", prompt.split("-tell")[0])]),
        )))
        span = tracer.start_span(f"chat {GATEWAY_MODEL}", context=parent, start_time=start, links=[link], attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": GATEWAY_MODEL,
            "gen_ai.response.model": GATEWAY_MODEL,
            "gen_ai.usage.input_tokens": input_tokens,
            "gen_ai.usage.output_tokens": output_tokens,
            "gen_ai.response.time_to_first_chunk": ttft,
            "modelplane.prefix.hash": prefix_hash,
            "gen_ai.prompt": prompt,
            "gen_ai.completion": f"completion of {prompt}",
            "gen_ai.prompt.0.content": prompt,
            "gen_ai.completion.0.content": prompt,
            "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": prompt}]}]),
            "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": prompt}]}]),
            "gen_ai.system_instructions": prompt,
            "gen_ai.tool.call.arguments": json.dumps({"query": prompt}),
            "gen_ai.tool.call.result": prompt,
            "input.value": prompt,
            "output.value": prompt,
            "llm.input_messages.0.message.content": prompt,
            "llm.output_messages.0.message.content": prompt,
            "traceloop.entity.input": prompt,
            "traceloop.entity.output": prompt,
            "langfuse.observation.input": prompt,
            "langfuse.trace.output": prompt,
            "user.id": f"user {prompt}",
            "session.id": f"session {prompt}",
        })
        # Every other span has no events: OTTL statements run in the wrong
        # context skip the attributes of spans without events.
        if i % 2:
            span.add_event("gen_ai.user.message", {"content": prompt, "gen_ai.prompt": prompt})
            span.add_event("gen_ai.choice", {"gen_ai.event.content": prompt, "gen_ai.output.messages": prompt})
            span.add_event("gen_ai.client.inference.operation.details", {
                "gen_ai.input.messages": prompt, "gen_ai.system_instructions": prompt, "gen_ai.completion.0": prompt,
            })
        if error:
            span.set_attribute("error.type", "upstream_timeout")
            span.set_status(Status(StatusCode.ERROR, f"upstream timed out answering {prompt}"))
        span.end(end_time=start + int(duration * 1e9))
        sent.append(SentSpan(input_tokens, output_tokens, ttft, prefix_hash, error))
    assert provider.force_flush(30_000), "the SDK could not flush its spans to the agent"
    provider.shutdown()
    return sent


# --- what the agent exported (file exporter) ---------------------------------


def read_capture(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def attr_value(attribute: dict[str, Any]) -> Any:
    value = attribute.get("value", {})
    for key in ("stringValue", "doubleValue", "boolValue"):
        if key in value:
            return value[key]
    if "intValue" in value:
        return int(value["intValue"])
    return value


def exported_spans(capture: Iterable[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(resource attributes, span) of every exported span."""
    out = []
    for request in capture:
        for resource_spans in request.get("resourceSpans", []):
            resource = {a["key"]: attr_value(a) for a in resource_spans.get("resource", {}).get("attributes", [])}
            for scope_spans in resource_spans.get("scopeSpans", []):
                out.extend((resource, span) for span in scope_spans.get("spans", []))
    return out


def exported_metric_points(capture: Iterable[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(metric name, data point attributes) of every exported data point."""
    for request in capture:
        for resource_metrics in request.get("resourceMetrics", []):
            for scope in resource_metrics["scopeMetrics"]:
                for metric in scope["metrics"]:
                    for shape in ("sum", "gauge", "histogram"):
                        for point in metric.get(shape, {}).get("dataPoints", []):
                            yield metric["name"], {a["key"]: attr_value(a) for a in point.get("attributes", [])}


def span_attrs(span: dict[str, Any]) -> dict[str, Any]:
    return {a["key"]: attr_value(a) for a in span.get("attributes", [])}


# --- reading the aggregator --------------------------------------------------


def groups_by_model(aggregator: Aggregator, tenant: str, kind: str) -> dict[str, dict[str, Any]]:
    body = aggregator.signals(tenant, kind, window="15m", group_by="cluster,model")
    groups = {}
    for group in body["groups"]:
        assert group["cluster"] == CLUSTER, group
        groups[group["model"]] = group
    return groups


def eventually(check, timeout: float = 20.0):
    """Retries `check` (which asserts) until it passes; the last failure is
    raised. Export is asynchronous (sending queue, batching), so the
    aggregator's answer settles a moment after the last scrape."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)


def binomial_bounds(n: int, p: float) -> tuple[float, float]:
    sigma = math.sqrt(n * p * (1 - p))
    return n * p - SIGMAS * sigma, n * p + SIGMAS * sigma


def nearest_rank(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


# --- the run all tests read ---------------------------------------------------


@dataclass
class Live:
    """The agent's run, kept alive while the module's tests read it."""

    aggregator: Aggregator
    collector: Process
    capture: Path
    prompt: str
    health: requests.Response
    sent: list[SentSpan]
    engines: dict[str, Any]
    expected: dict[str, Any]


def wait_until_healthy(port: int, timeout: float) -> requests.Response:
    """The health_check extension listens before the pipelines have started and
    answers 503 until they have; the last answer is returned either way, so
    an agent that never becomes healthy fails the test with what it said."""
    deadline = time.monotonic() + timeout
    while True:
        answer = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
        if answer.status_code == 200 or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    started = time.monotonic()
    tmp_path = tmp_path_factory.mktemp("agent-live")
    rng = random.Random(20261203)
    prompt = f"PROMPT-{secrets.token_hex(12)}-tell me about my medical history"

    agent = agent_from_documents(render_documents(XR, observed=OBSERVED))
    assert agent is not None
    token_env = [v["name"] for v in agent.container["env"] if "secretKeyRef" in v.get("valueFrom", {})]
    assert token_env == ["MODELPLANE_INGEST_TOKEN"], token_env

    token = secrets.token_urlsafe(32)
    tokens_file = tmp_path / "ingest-tokens.yaml"
    tokens_file.write_text(yaml.safe_dump({CLUSTER: token}))
    pod = agent.local_pod(tmp_path / "pod", token=token)
    capture = tmp_path / "agent-export.jsonl"

    long_ago = time.time() - 6 * 3600
    vllm = Vllm(VLLM_MODEL, started=long_ago)
    decoy = Vllm(DECOY_MODEL, started=long_ago)
    sglang = Sglang(SGLANG_MODEL, started=long_ago)
    llamacpp = LlamaCpp(started=long_ago)
    epp = Epp(
        "qwen3-pool",
        [
            EppRoute("qwen3", EPP_MODEL, ""),
            # Two fairness ids on one model: Fleet scope must keep their series apart.
            EppRoute("qwen3-coder", EPP_FLEET_MODEL, "tenant-a"),
            EppRoute("qwen3-coder", EPP_FLEET_MODEL, "tenant-b"),
        ],
        tls=self_signed_tls(tmp_path / "epp-tls"),
        # What the agent's projected service-account token (local_pod's stand-in) authenticates as.
        bearer_token=PLACEHOLDER_SERVICE_ACCOUNT_TOKEN,
        started=long_ago,
    )
    dcgm = Dcgm("gpu-node-7", "570.124.06", [
        Gpu(0, "GPU-5e3d9c1a-8f0b-4c1e-9d2a-000000000000", "00000000:18:00.0", H100,
            consumer=("vllm", TENANT, "llama-8b-decode-0")),
        Gpu(1, "GPU-5e3d9c1a-8f0b-4c1e-9d2a-000000000001", "00000000:2A:00.0", H100),
    ])
    scraped = [vllm, sglang, llamacpp, epp, dcgm]

    # Everything the engines did before the agent started: the first scrape
    # only primes the aggregator's cumulative state, none of it is counted.
    vllm.serve(requests_batch(rng, 300, errors=4))
    sglang.serve(requests_batch(rng, 200), cached_tokens=12_000)
    llamacpp.serve(requests_batch(rng, 50))
    for route in epp.routes:
        epp.serve(route, requests_batch(rng, 120), error_code="ResourceExhausted")
    decoy.serve(requests_batch(rng, 10))
    vllm_before = snapshot_vllm(vllm)
    sglang_before = snapshot_sglang(sglang)
    llamacpp_before = (llamacpp.prompt_tokens_total, llamacpp.tokens_predicted_total)
    epp_before = {model: snapshot_epp(epp, model) for model in (EPP_MODEL, EPP_FLEET_MODEL)}

    for engine in (*scraped, decoy):
        engine.start()
    pods = [
        Pod("llama-8b-decode-0", TENANT, "vllm", {8000: "127.0.0.1:8000", 8200: vllm.server.address},
            labels={"llm-d.ai/role": "decode", "llm-d.ai/model": "llama-3-1-8b-instruct",
                    "llm-d.ai/inference-serving": "true"},
            annotations={"signals.modelplane.ai/metrics-port": str(vllm.server.port)}),
        # Pending: the engines job keeps Running pods only, so this one's
        # server must never be scraped.
        Pod("llama-8b-decode-1", TENANT, "vllm", {8000: decoy.server.address},
            labels={"llm-d.ai/role": "decode", "llm-d.ai/model": DECOY_MODEL},
            annotations={"signals.modelplane.ai/metrics-port": str(decoy.server.port)}, phase="Pending"),
        Pod("qwen-7b-0", TENANT, "sglang", {30000: "127.0.0.1:30000"},
            annotations={"signals.modelplane.ai/engine": "sglang",
                         "signals.modelplane.ai/metrics-port": str(sglang.server.port)}),
        Pod("gemma-4b-0", TENANT, "llama-server", {8080: "127.0.0.1:8080"},
            labels={"modelplane.ai/serving": "gemma-4b-0", "llm-d.ai/model": LLAMACPP_MODEL},
            annotations={"signals.modelplane.ai/metrics-port": str(llamacpp.server.port)}),
        Pod("qwen3-pool-epp-6d8f9", TENANT, "epp",
            {9002: "127.0.0.1:9002", 9003: "127.0.0.1:9003", 9090: epp.server.address},
            labels={"llm-d-router-gateway": "qwen3-pool"}),
        Pod("nvidia-dcgm-exporter-x7k2p", GPU_NAMESPACE, "nvidia-dcgm-exporter", {9400: dcgm.server.address},
            labels={"app": "nvidia-dcgm-exporter"}),
        # An unrelated pod in a scraped namespace: no rule selects it.
        Pod("team-a-frontend-0", TENANT, "web", {8080: "127.0.0.1:8080"}, labels={"app": "frontend"}),
    ]

    ports = AgentPorts()
    aggregator = Aggregator("--ingest-tokens-file", str(tokens_file), env={"RUST_LOG": "debug"})
    with aggregator:
        config = local_agent_config(yaml.safe_load(pod.config_path.read_text()), pods=pods, ports=ports,
                                    aggregator_grpc=aggregator.grpc_target, capture=capture)
        pod.config_path.write_text(yaml.safe_dump(config, sort_keys=True))
        with Process([peers.otelcol(), *pod.args], env=pod.env, name="otelcol-k8s") as collector:
            collector.wait_for_port(ports.health, timeout=60)
            health = wait_until_healthy(ports.health, timeout=60)

            vllm_phase1 = run_scenario(rng, vllm, sglang, llamacpp, epp, dcgm, scraped)
            sent = send_gateway_spans(f"127.0.0.1:{ports.otlp_grpc}", prompt, rng, SPANS)
            expected = {
                VLLM_MODEL: restarted(vllm_before, vllm_phase1, snapshot_vllm(vllm)),
                SGLANG_MODEL: snapshot_sglang(sglang).minus(sglang_before),
                LLAMACPP_MODEL: (llamacpp.prompt_tokens_total - llamacpp_before[0],
                                 llamacpp.tokens_predicted_total - llamacpp_before[1]),
                **{model: snapshot_epp(epp, model).minus(epp_before[model]) for model in epp_before},
            }
            run = Live(aggregator, collector, capture, prompt, health, sent,
                       {"decoy": decoy, "epp": epp, "scraped": scraped}, expected)
            # Every test reads a settled aggregator: the last scrape's export included.
            eventually(lambda: check_engine_values(run))
            print(f"\nagent live run: {time.monotonic() - started:.1f}s until settled")
            yield run
            if os.environ.get(CAPTURE_ENV):
                keep_fixture(capture, Path(os.environ[CAPTURE_ENV]), expected)
    for engine in (*scraped, decoy):
        engine.stop()
    print(f"agent live module: {time.monotonic() - started:.1f}s wall")


def test_agent_health_check_answers(live: Live) -> None:
    assert live.health.status_code == 200, live.health.text
    assert live.health.json()["status"] == "Server available", live.health.text
    log = live.collector.log_text()
    assert "alias is deprecated" not in log, log[-3000:]
    # Without the rendered ottl.set.allowNil gate, set(span.links, nil) is a no-op.
    assert "ignored a nil value" not in log, log[-3000:]


def test_rendered_relabel_rules_choose_the_targets(live: Live) -> None:
    assert live.engines["decoy"].server.total_scrapes() == 0, "the Pending pod's server was scraped"
    assert live.engines["epp"].server.refused == 0, "the EPP refused the agent's service-account token"
    for engine in live.engines["scraped"]:
        assert engine.server.total_scrapes() >= 5, type(engine).__name__
    # The receiver asks for OpenMetrics first, so vLLM's and SGLang's
    # prometheus_client answer in it (vLLM with `_created` samples); the
    # receiver still sends cumulative points without a start time.
    (accept,) = live.engines["scraped"][0].server.accept_headers
    assert accept.startswith("application/openmetrics-text;version=1.0.0"), accept


def test_engine_metrics_become_exact_signals(live: Live) -> None:
    check_engine_values(live)


def test_sglang_request_counter_reaches_the_aggregator(live: Live) -> None:
    group = groups_by_model(live.aggregator, TENANT, "RequestLifecycle")[SGLANG_MODEL]
    assert group["requests"] == live.expected[SGLANG_MODEL].counters["requests"] == 135


def test_fleet_scope_keeps_every_fairness_series(live: Live) -> None:
    """Two fairness ids route to one model: their series stay apart on the
    wire (hashed ids), so the totals and distributions are exact."""
    group = groups_by_model(live.aggregator, TENANT, "RequestLifecycle")[EPP_FLEET_MODEL]
    fleet = live.expected[EPP_FLEET_MODEL]
    assert fleet.counters["requests"] == 90, fleet.counters
    assert_counts(group, fleet, "requests", "errors", "input_tokens", "output_tokens")
    for name, histogram in fleet.histograms.items():
        assert_distribution(group, name, histogram)


def test_fleet_scope_sends_fairness_ids_only_hashed(live: Live) -> None:
    capture = read_capture(live.capture)
    fairness = {route.fairness_id for route in live.engines["epp"].routes if route.fairness_id}
    hashed = {hashlib.sha256(f"{CLUSTER}/{fid}".encode()).hexdigest() for fid in fairness}
    on_the_wire: dict[str, set[str]] = collections.defaultdict(set)
    for name, attributes in exported_metric_points(capture):
        if "fairness_id" in attributes:
            on_the_wire[name].add(attributes["fairness_id"])
    assert on_the_wire, "no EPP series with a fairness id was exported"
    for name in ("llm_d_epp_request_total", "llm_d_epp_request_duration_seconds", "llm_d_epp_request_ttft_seconds"):
        assert on_the_wire[name] == hashed, (name, on_the_wire[name])
    raw = live.capture.read_text()
    assert not [fid for fid in fairness if f'"{fid}"' in raw]


def test_every_target_sends_its_process_start(live: Live) -> None:
    """normalize takes a cumulative series' start from its target's
    process_start_time_seconds (the receiver sends none), so every scrape
    job keeps it, whatever kinds are on."""
    starts: dict[str, set[float]] = collections.defaultdict(set)
    for request in read_capture(live.capture):
        for resource_metrics in request.get("resourceMetrics", []):
            resource = {a["key"]: attr_value(a) for a in resource_metrics["resource"]["attributes"]}
            for scope in resource_metrics["scopeMetrics"]:
                for metric in scope["metrics"]:
                    if metric["name"] == "process_start_time_seconds":
                        # Staleness markers (vLLM's failed scrape) carry no value.
                        starts[resource["k8s.pod.name"]] |= {
                            p["asDouble"] for p in metric["gauge"]["dataPoints"] if "asDouble" in p}
    engines = {type(e).__name__: e for e in live.engines["scraped"]}
    assert starts["qwen-7b-0"] == {engines["Sglang"].started}
    assert starts["qwen3-pool-epp-6d8f9"] == {engines["Epp"].started}
    # vLLM restarted: the start time of both processes.
    assert starts["llama-8b-decode-0"] == set(engines["Vllm"].starts), starts["llama-8b-decode-0"]


def test_gpu_metrics_become_capacity_and_reliability(live: Live) -> None:
    eventually(lambda: check_gpu_values(live.aggregator), timeout=5)


def test_spans_are_sampled_per_kind_and_counted_exactly(live: Live) -> None:
    eventually(lambda: check_span_values(live.aggregator, live.capture, live.sent), timeout=10)


def test_nothing_is_refused_and_nothing_is_lost(live: Live) -> None:
    def check() -> None:
        malformed = sum(
            1
            for request in read_capture(live.capture)
            for resource in request.get("resourceMetrics", [])
            for scope in resource["scopeMetrics"]
            for metric in scope["metrics"]
            for point in metric.get("histogram", {}).get("dataPoints", [])
            if any(a >= b for a, b in zip(point["explicitBounds"], point["explicitBounds"][1:]))
        )
        counters = prometheus_samples(live.aggregator.metrics())
        rejected = {labels: n for (name, labels), n in counters.items()
                    if name == "modelplane_aggregator_rejected_items_total" and n}
        # Fleet scope once merged the EPP's fairness series into histograms
        # with interleaved buckets, which the aggregator refused.
        assert malformed == 0
        assert rejected == {}, rejected
        lost = {labels: n for (name, labels), n in counters.items()
                if name == "modelplane_aggregator_dropped_items_total" and n
                and dict(labels)["reason"] in ("series_limit", "cumulative_state_full", "unsupported_metric_type")}
        assert not lost, lost

    eventually(check, timeout=5)


def prometheus_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """`name{labels} value` lines of a text exposition, labels sorted."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        name, _, labels = series.partition("{")
        pairs = tuple(sorted(
            (k, v.strip('"')) for k, _, v in (p.partition("=") for p in labels.rstrip("}").split(",") if p)
        ))
        samples[(name, pairs)] = float(value)
    return samples


def test_no_prompt_text_reaches_the_aggregator(live: Live) -> None:
    check_privacy(live.aggregator, live.capture, live.prompt)


def run_scenario(rng: random.Random, vllm: Vllm, sglang: Sglang, llamacpp: LlamaCpp, epp: Epp, dcgm: Dcgm,
                 scraped: list) -> "Totals":
    """Two phases of traffic after the priming scrape; vLLM restarts in the
    second. Returns vLLM's totals just before its restart."""
    # The agent's first look: the pre-existing totals prime its state.
    wait_for_scrapes(scraped, 1)

    # Phase 1: traffic everywhere; gauges at a first reading.
    vllm.serve(requests_batch(rng, 180, errors=3))
    with vllm.lock:
        vllm.waiting.set(2)
        vllm.running.set(17)
        vllm.kv_cache.set(0.41)
    sglang.serve(requests_batch(rng, 90), cached_tokens=4_321)
    with sglang.lock:
        sglang.queued.set(1)
        sglang.running.set(6)
        sglang.token_usage.set(0.22)
    llamacpp.serve(requests_batch(rng, 40))
    llamacpp.set_load(processing=2, deferred=0)
    epp.serve(epp.routes[0], requests_batch(rng, 70))
    epp.serve(epp.routes[0], requests_batch(rng, 6), error_code="ResourceExhausted")
    epp.serve(epp.routes[1], requests_batch(rng, 50))
    epp.serve(epp.routes[2], requests_batch(rng, 30), error_code="ResourceExhausted")
    epp.set_pool(kv_cache=0.35, queue={"10.1.0.4:8000": 1, "10.1.0.5:8000": 2}, ready=2)
    dcgm.update(0, utilization=35, fb_used_mib=41_000, fb_free_mib=40_559, power_watts=301.25)
    dcgm.update(1, utilization=0, fb_used_mib=0, fb_free_mib=81_559, power_watts=71.5)
    for engine in scraped:
        engine.changed()
    wait_for_scrapes(scraped, 2)

    # Phase 2: vLLM's process restarts (its counters fall to zero: a reset),
    # and is down long enough for a failed scrape (Prometheus staleness).
    vllm_phase1 = snapshot_vllm(vllm)
    vllm.stop()
    time.sleep(2.5)
    vllm.restart(started=time.time())
    vllm.serve(requests_batch(rng, 60, errors=2))
    with vllm.lock:
        vllm.waiting.set(5)
        vllm.running.set(23)
        vllm.kv_cache.set(0.63)
    vllm.start()
    sglang.serve(requests_batch(rng, 45), cached_tokens=1_000)
    with sglang.lock:
        sglang.queued.set(4)
        sglang.running.set(9)
        sglang.token_usage.set(0.57)
    llamacpp.serve(requests_batch(rng, 25))
    llamacpp.set_load(processing=3, deferred=7)
    epp.serve(epp.routes[0], requests_batch(rng, 20))
    epp.serve(epp.routes[1], requests_batch(rng, 10))
    epp.set_pool(kv_cache=0.58, queue={"10.1.0.4:8000": 3, "10.1.0.5:8000": 5}, ready=3)
    dcgm.update(0, utilization=92, fb_used_mib=78_000, fb_free_mib=3_559, power_watts=655.5, last_xid=79)
    for engine in scraped:
        engine.changed()
    wait_for_scrapes(scraped, 2)
    return vllm_phase1


# --- engine totals and the values they must become ---------------------------


@dataclass
class Totals:
    """Counters and cumulative histograms of one model, as an engine exposes
    them (or their growth over a stretch of time)."""

    counters: dict[str, float]
    histograms: dict[str, BucketDelta]

    def minus(self, before: "Totals") -> "Totals":
        return Totals(
            {k: v - before.counters[k] for k, v in self.counters.items()},
            {k: minus(h, before.histograms[k]) for k, h in self.histograms.items()},
        )

    def plus(self, other: "Totals") -> "Totals":
        return Totals(
            {k: v + other.counters[k] for k, v in self.counters.items()},
            {k: h.plus(other.histograms[k]) for k, h in self.histograms.items()},
        )


def restarted(before: Totals, last_before_restart: Totals, after_restart: Totals) -> Totals:
    """What a restarted engine added since `before`: the growth up to the
    restart, plus everything the new process counted from zero."""
    return last_before_restart.minus(before).plus(after_restart)


def snapshot_vllm(vllm: Vllm) -> Totals:
    with vllm.lock:
        return Totals(
            {
                "requests": sum(vllm.sample("vllm:request_success_total", finished_reason=r) for r in Vllm.FINISH_REASONS),
                "errors": vllm.sample("vllm:request_success_total", finished_reason="error"),
                "input_tokens": vllm.sample("vllm:prompt_tokens_total"),
                "output_tokens": vllm.sample("vllm:generation_tokens_total"),
                "prefix_queries": vllm.sample("vllm:prefix_cache_queries_total"),
                "prefix_hits": vllm.sample("vllm:prefix_cache_hits_total"),
            },
            {
                "ttft_seconds": prom_histogram(vllm, "vllm:time_to_first_token_seconds", VLLM_TTFT_BUCKETS),
                "tpot_seconds": prom_histogram(vllm, "vllm:inter_token_latency_seconds", VLLM_ITL_BUCKETS),
                "e2e_seconds": prom_histogram(vllm, "vllm:e2e_request_latency_seconds", VLLM_REQUEST_LATENCY_BUCKETS),
                "queue_seconds": prom_histogram(vllm, "vllm:request_queue_time_seconds", VLLM_REQUEST_LATENCY_BUCKETS),
            },
        )


def snapshot_sglang(sglang: Sglang) -> Totals:
    with sglang.lock:
        return Totals(
            {
                "requests": sglang.sample("sglang:num_requests_total"),
                "input_tokens": sglang.sample("sglang:prompt_tokens_total"),
                "output_tokens": sglang.sample("sglang:generation_tokens_total"),
                "prefix_hits": sglang.sample("sglang:cached_tokens_total"),
            },
            {
                "ttft_seconds": prom_histogram(sglang, "sglang:time_to_first_token_seconds", SGLANG_TTFT_BUCKETS),
                "tpot_seconds": prom_histogram(sglang, "sglang:inter_token_latency_seconds", SGLANG_ITL_BUCKETS),
                "e2e_seconds": prom_histogram(sglang, "sglang:e2e_request_latency_seconds", SGLANG_E2E_BUCKETS),
            },
        )


def snapshot_epp(epp: Epp, target_model: str) -> Totals:
    """One served model's totals over every route (alias, fairness id) to it."""
    with epp.lock:
        routes = [r for r in epp.routes if r.target_model_name == target_model]

        def summed(attribute: str, bounds: Sequence[float]) -> BucketDelta:
            total = BucketDelta.zero(bounds)
            for route in routes:
                total = total.plus(BucketDelta(tuple(bounds), [float(c) for c in getattr(route, attribute).cumulative()]))
            return total

        return Totals(
            {
                "requests": sum(r.requests for r in routes),
                "errors": sum(sum(r.errors.values()) for r in routes),
                "input_tokens": sum(r.input_tokens.sum for r in routes),
                "output_tokens": sum(r.output_tokens.sum for r in routes),
            },
            {
                "e2e_seconds": summed("duration", EPP_LATENCY_BUCKETS),
                "ttft_seconds": summed("ttft", EPP_TTFT_BUCKETS),
            },
        )


def assert_distribution(group: dict[str, Any], name: str, expected: BucketDelta) -> None:
    got = group[name]
    assert got["count"] == expected.count, (group.get("model"), name, got, expected.count)
    for q in (0.5, 0.9, 0.99):
        want = expected.quantile(q)
        assert got[f"p{round(q * 100)}"] == pytest.approx(want, rel=1e-9), (group.get("model"), name, q, got, want)


def assert_gauge(reading: dict[str, Any] | None, *, last: float | None = None, low: float, high: float,
                 what: str) -> None:
    assert reading is not None, f"{what}: no reading"
    if last is not None:
        assert reading["last"] == pytest.approx(last), (what, reading)
    assert reading["min"] == pytest.approx(low), (what, reading)
    assert reading["max"] == pytest.approx(high), (what, reading)


def assert_counts(group: dict[str, Any], totals: Totals, *names: str) -> None:
    for name in names:
        assert group[name] == totals.counters[name], (group.get("model"), name, group[name], totals.counters[name])


def check_engine_values(live: "Live") -> None:
    aggregator = live.aggregator
    vllm, sglang, epp = live.expected[VLLM_MODEL], live.expected[SGLANG_MODEL], live.expected[EPP_MODEL]
    llamacpp = live.expected[LLAMACPP_MODEL]
    lifecycle = groups_by_model(aggregator, TENANT, "RequestLifecycle")
    assert DECOY_MODEL not in lifecycle

    group = lifecycle.get(VLLM_MODEL)
    assert group is not None, sorted(lifecycle)
    assert_counts(group, vllm, "requests", "errors", "input_tokens", "output_tokens")
    for name, histogram in vllm.histograms.items():
        assert_distribution(group, name, histogram)
    assert group["prefix_cache_hit_rate"] == pytest.approx(
        vllm.counters["prefix_hits"] / vllm.counters["prefix_queries"], rel=1e-12)
    assert_gauge(group["queue_depth"], last=5, low=0, high=5, what="vLLM num_requests_waiting")
    assert_gauge(group["running_requests"], last=23, low=0, high=23, what="vLLM num_requests_running")

    group = lifecycle.get(SGLANG_MODEL)
    assert group is not None, sorted(lifecycle)
    assert_counts(group, sglang, "requests", "input_tokens", "output_tokens")
    for name, histogram in sglang.histograms.items():
        assert_distribution(group, name, histogram)
    assert group["queue_seconds"]["count"] == 0
    assert_gauge(group["queue_depth"], last=4, low=0, high=4, what="SGLang num_queue_reqs")
    assert_gauge(group["running_requests"], last=9, low=0, high=9, what="SGLang num_running_reqs")

    group = lifecycle.get(LLAMACPP_MODEL)
    assert group is not None, f"llama.cpp's series carry no model label; the pod's llm-d.ai/model names it: {sorted(lifecycle)}"
    assert (group["input_tokens"], group["output_tokens"]) == llamacpp
    assert group["requests"] == 0
    assert_gauge(group["queue_depth"], last=7, low=0, high=7, what="llama.cpp requests_deferred")
    assert_gauge(group["running_requests"], last=3, low=0, high=3, what="llama.cpp requests_processing")

    group = lifecycle.get(EPP_MODEL)
    assert group is not None, sorted(lifecycle)
    assert_counts(group, epp, "requests", "errors", "input_tokens", "output_tokens")
    for name, histogram in epp.histograms.items():
        assert_distribution(group, name, histogram)

    pool = lifecycle.get("")
    assert pool is not None, sorted(lifecycle)
    # Two endpoints report into the pool's one queue_depth gauge: the extremes are exact.
    assert_gauge(pool["queue_depth"], low=1, high=5, what="EPP per_endpoint_queue_size")
    assert pool["queue_depth"]["last"] in (3, 5), pool["queue_depth"]

    capacity = groups_by_model(aggregator, TENANT, "Capacity")
    assert_gauge(capacity[VLLM_MODEL]["kv_cache_utilization_by_tier"].get("hbm"), last=0.63, low=0, high=0.63,
                 what="vLLM kv_cache_usage_perc")
    assert_gauge(capacity[SGLANG_MODEL]["kv_cache_utilization_by_tier"].get("hbm"), last=0.57, low=0, high=0.57,
                 what="SGLang token_usage")
    assert_gauge(capacity[""]["kv_cache_utilization_by_tier"].get("hbm"), last=0.58, low=0, high=0.58,
                 what="EPP average_kv_cache_utilization")
    assert_gauge(capacity[""]["replicas"]["active"], last=3, low=0, high=3, what="EPP ready_endpoints")


def check_gpu_values(aggregator: Aggregator) -> None:
    capacity = groups_by_model(aggregator, GPU_TENANT, "Capacity")
    gpus = capacity[""]["gpus_by_sku"][H100_SKU]
    assert_gauge(gpus["utilization"], low=0, high=0.92, what="DCGM_FI_DEV_GPU_UTIL")
    reliability = groups_by_model(aggregator, GPU_TENANT, "Reliability")
    assert reliability[""]["failures_by_sku_and_cause"] == [{"sku": H100_SKU, "cause": "xid_79", "count": 1.0}]


def check_span_values(aggregator: Aggregator, capture: Path, sent: list[SentSpan]) -> int:
    """Per-kind sampling within binomial bounds of what was sent, and the
    aggregator's answer exactly what the agent exported, scaled by 1/rate."""
    spans = exported_spans(read_capture(capture))
    by_kind: dict[str, list[dict[str, Any]]] = {"RequestLifecycle": [], "PrefixHash": []}
    rates = {"RequestLifecycle": 0.25, "PrefixHash": 0.05}  # examples/ic-full/xr.yaml
    for resource, span in spans:
        assert resource.get("modelplane.cluster") == CLUSTER, resource
        attrs = span_attrs(span)
        kind = attrs["modelplane.signal"]
        assert attrs["modelplane.sample_rate"] == rates[kind], attrs
        by_kind[kind].append(span)
    for kind, exported in by_kind.items():
        # Each kind's pipeline exports a subset of what was sent, values untouched.
        unsent = collections.Counter(sent)
        for span in exported:
            attrs = span_attrs(span)
            unsent[SentSpan(attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"],
                            attrs["gen_ai.response.time_to_first_chunk"], attrs["modelplane.prefix.hash"],
                            "error.type" in attrs)] -= 1
        assert min(unsent.values()) >= 0, (kind, [s for s, n in unsent.items() if n < 0][:3])
        low, high = binomial_bounds(len(sent), rates[kind])
        assert low <= len(exported) <= high, f"{kind}: {len(exported)} of {len(sent)} spans outside [{low:.0f}, {high:.0f}]"

    lifecycle = by_kind["RequestLifecycle"]
    weight = 1 / rates["RequestLifecycle"]
    failed = [s for s in lifecycle if span_attrs(s).get("error.type") is not None]
    succeeded = [s for s in lifecycle if span_attrs(s).get("error.type") is None]
    assert len(failed) == sum(1 for s in lifecycle if s.get("status", {}).get("code") == 2)
    group = groups_by_model(aggregator, TENANT, "RequestLifecycle").get(GATEWAY_MODEL)
    assert group is not None
    assert group["requests"] == len(lifecycle) * weight, (group["requests"], len(lifecycle))
    assert group["errors"] == len(failed) * weight
    assert group["input_tokens"] == sum(span_attrs(s)["gen_ai.usage.input_tokens"] for s in lifecycle) * weight
    assert group["output_tokens"] == sum(span_attrs(s)["gen_ai.usage.output_tokens"] for s in lifecycle) * weight
    durations = [(int(s["endTimeUnixNano"]) - int(s["startTimeUnixNano"])) / 1e9 for s in lifecycle]
    ttfts = [span_attrs(s)["gen_ai.response.time_to_first_chunk"] for s in succeeded]
    for name, values in (("e2e_seconds", durations), ("ttft_seconds", ttfts)):
        got = group[name]
        assert got["count"] == len(values), (name, got, len(values))
        for q in (0.5, 0.9, 0.99):
            assert got[f"p{round(q * 100)}"] == pytest.approx(nearest_rank(values, q), rel=0.01), (name, q, got)

    prefix = by_kind["PrefixHash"]
    want: dict[str, int] = {}
    for span in prefix:
        hash_ = span_attrs(span)["modelplane.prefix.hash"]
        want[hash_] = want.get(hash_, 0) + 1
    group = groups_by_model(aggregator, TENANT, "PrefixHash").get(GATEWAY_MODEL)
    assert group is not None
    assert {t["hash"]: t["count"] for t in group["top"]} == want
    assert group["distinct"] == len(want)
    return len(spans)


def check_privacy(aggregator: Aggregator, capture: Path, prompt: str) -> None:
    """The prompt never comes back out of the aggregator, and no byte of it
    is on the wire: the agent keeps only what the aggregator reads, in every
    position a span carries text."""
    needle = prompt.split("-tell")[0]
    places = {"/metrics": aggregator.metrics(), "/openapi.json": aggregator.get("/openapi.json").text,
              "aggregator log": aggregator.process.log_text()}
    for tenant in (TENANT, GPU_TENANT):
        for kind in ("RequestLifecycle", "PrefixHash", "Capacity", "ColdStart", "Cost", "Reliability"):
            places[f"{tenant} {kind}"] = json.dumps(aggregator.signals(tenant, kind, window="15m", group_by=""))
    for path in ("/v1/scheduler/capacity", "/v1/scheduler/overflow",
                 f"/v1/scheduler/prefix-overlap?model={GATEWAY_MODEL}",
                 "/v1/fleet/compare?kind=RequestLifecycle&field=e2e_seconds"):
        places[path] = aggregator.get(path).text
    leaked = [where for where, text in places.items() if needle in text]
    assert not leaked, f"prompt text found in {leaked}"

    raw = capture.read_text()
    for fragment in (needle, "medical history"):
        assert fragment not in raw, f"{fragment!r} left the cluster"
    spans = exported_spans(read_capture(capture))
    assert spans
    kept = {"gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model",
            "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.response.time_to_first_chunk",
            "modelplane.prefix.hash", "modelplane.signal", "modelplane.sample_rate"}
    for resource, span in spans:
        assert resource == {"k8s.namespace.name": TENANT, "modelplane.cluster": CLUSTER}, resource
        assert set(span_attrs(span)) - {"error.type"} == kept, span_attrs(span)
        for position in ("name", "events", "links", "traceState"):
            assert position not in span, (position, span[position])
        assert "message" not in span.get("status", {}), span["status"]
    for request in read_capture(capture):
        for resource_spans in request.get("resourceSpans", []):
            for scope_spans in resource_spans["scopeSpans"]:
                assert scope_spans["scope"] == {"name": "llm-gateway", "version": "1.4.0"}, scope_spans["scope"]


def keep_fixture(capture: Path, target: Path, expected: dict[str, Any]) -> None:
    """The agent's export as a regression fixture (gzipped OTLP/JSON lines),
    and next to it (`agent-export.expected.json`) what the engines counted
    while it ran: the replay test checks normalize against the engines, not
    against its own earlier output."""
    with capture.open("rb") as raw, gzip.open(target, "wb", compresslevel=9) as packed:
        shutil.copyfileobj(raw, packed)

    def model(totals: Totals, gauges: dict[str, float]) -> dict[str, Any]:
        return {
            "counters": totals.counters,
            "histograms": {
                name: {"bounds": list(h.bounds),
                       "counts": [round(c - (h.cumulative[i - 1] if i else 0)) for i, c in enumerate(h.cumulative)]}
                for name, h in totals.histograms.items()
            },
            "last_gauges": gauges,
        }

    llamacpp = Totals(dict(zip(("input_tokens", "output_tokens"), map(float, expected[LLAMACPP_MODEL]))), {})
    document = {
        "cluster": CLUSTER,
        "tenant": TENANT,
        "models": {
            VLLM_MODEL: model(expected[VLLM_MODEL],
                              {"queue_depth": 5, "running_requests": 23, "kv_cache_utilization": 0.63}),
            SGLANG_MODEL: model(expected[SGLANG_MODEL],
                                {"queue_depth": 4, "running_requests": 9, "kv_cache_utilization": 0.57}),
            LLAMACPP_MODEL: model(llamacpp, {"queue_depth": 7, "running_requests": 3}),
            EPP_MODEL: model(expected[EPP_MODEL], {}),
            # Two fairness ids, hashed on the wire (privacy.scope Fleet).
            EPP_FLEET_MODEL: model(expected[EPP_FLEET_MODEL], {}),
            "": model(Totals({}, {}), {"kv_cache_utilization": 0.58, "replicas_active": 3}),
        },
        "gpus": {"tenant": GPU_TENANT, "sku": H100_SKU, "utilization_max": 0.92, "failures": {"xid_79": 1}},
        "span_sample_rates": {"RequestLifecycle": 0.25, "PrefixHash": 0.05},
    }
    expected_path = target.with_name(target.name.split(".")[0] + ".expected.json")
    expected_path.write_text(json.dumps(document, indent=1) + "\n")
