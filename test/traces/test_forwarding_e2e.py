"""Per-request traces to the tenant's own backend, end to end with real
processes only (issue 12):

    OpenTelemetry Python SDK spans (gateways in team-a and team-b)
      -> otelcol-k8s running the agent config function-signals renders
         (spec.signals.traceForwarding: team-a, team-b)
      -> signal-aggregator (ModelServices and the InferenceCluster from
         --model-services-file, their status.observability.traces.address as
         function-signals renders it; the agent authenticated by its ingest
         token)
      -> otelcol-k8s running each ModelService's rendered trace-forwarder config
      -> otelcol-k8s with an OTLP receiver and a `file` exporter per tenant:
         the tenant's backend.

What is asserted: the backend of team-a/chat receives that service's spans
with their prompts and the enrichment attributes, sampled at the spec's
ratio (within 5 standard deviations of a binomial), and nothing of team-b or
of team-a/untraced (traces off); team-b's backend only team-b's; a second
cluster whose InferenceCluster lists only team-a cannot push spans into
team-b's backend by claiming team-b (counted as refused); the sketch
path still counts every request; no prompt byte in any API answer, in
/metrics or in the aggregator's log; and a dead forwarder never blocks
ingest while the aggregator counts what it dropped.

The local changes to the rendered configs are only those a machine without
Kubernetes needs (as in test_agent_live.py): free loopback ports instead of
the fixed pod ports, k8s_attributes out of the agent's pipelines (the SDK
sets k8s.namespace.name, which it would add), the agent's exporter pointed
at the test aggregator. The forwarders' configs are run as rendered, ports
aside.
"""

from __future__ import annotations

import copy
import json
import math
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from harness import peers
from harness.aggregator import Aggregator
from harness.procs import Process, free_port

from collector.forwarder import model_service, render_forwarder
from collector.rendered import PLACEHOLDER_TOKEN, component_type, render_agent, render_documents

CLUSTER = "eu-1"
# A second workload cluster whose InferenceCluster forwards team-a's traces only.
OTHER_CLUSTER = "eu-2"
OTHER_TOKEN = f"e2e-ingest-token-{secrets.token_hex(8)}"
RATIO_A = 0.5
SENT_A = 400
SENT_A_LATE = 30
SENT_A_UNTRACED = 50
SENT_B = 100
SENT_B_WHILE_DEAD = 2500
QUEUE_SPANS = 1000
SECRET_VALUE = "Bearer e2e-secret-header-value"
RUN = secrets.token_hex(4)
PROMPT = f"PROMPT-e2e-{RUN}"
HASHES = [f"{i:016x}" for i in (0xA1, 0xB2, 0xC3)]


def rebind(endpoint: str, port: int) -> str:
    host, _, _ = endpoint.rpartition(":")
    assert host == "${env:MY_POD_IP}", endpoint
    return f"{host}:{port}"


def run_collector(config: dict[str, Any], workdir: Path, args: list[str], env: dict[str, str], name: str) -> Process:
    path = workdir / "collector.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    argv = [str(peers.otelcol()), *[a for a in args if not a.startswith("--config=")], f"--config={path}"]
    return Process(argv, env=env, name=name).start()


def wait_health(process: Process, port: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        if not process.running or time.monotonic() > deadline:
            raise process.failure("health_check never answered 200")
        time.sleep(0.1)


def local_ports(config: dict[str, Any]) -> dict[str, int]:
    """Moves the rendered fixed ports to free ones; returns them."""
    ports = {"health": free_port(), "telemetry": free_port()}
    config["extensions"]["health_check"]["endpoint"] = rebind(config["extensions"]["health_check"]["endpoint"], ports["health"])
    (reader,) = config["service"]["telemetry"]["metrics"]["readers"]
    reader["pull"]["exporter"]["prometheus"]["port"] = ports["telemetry"]
    for protocol, settings in config["receivers"]["otlp"]["protocols"].items():
        ports[protocol] = free_port()
        settings["endpoint"] = rebind(settings["endpoint"], ports[protocol])
    return ports


def counter(metrics_text: str, name: str, **labels: str) -> float:
    """Sum of a Prometheus counter's samples whose labels include `labels`."""
    total = 0.0
    for line in metrics_text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


def backend_spans(path: Path) -> list[dict[str, Any]]:
    """Spans a `file` exporter wrote (OTLP JSON lines), each with its resource attributes."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        for rs in json.loads(line).get("resourceSpans", []):
            resource = {a["key"]: a["value"].get("stringValue") for a in rs.get("resource", {}).get("attributes", [])}
            for ss in rs.get("scopeSpans", []):
                for span in ss.get("spans", []):
                    attributes = {a["key"]: next(iter(a["value"].values()), None) for a in span.get("attributes", [])}
                    out.append({"name": span["name"], "resource": resource, "attributes": attributes})
    return out


def wait_until(what: str, done, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def send_spans(endpoint: str, tenant: str, spans: list[tuple[str, str]]) -> None:
    """(model, name) per span, each its own trace, from a gateway in `tenant`."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import SpanKind

    resource = Resource.create({"service.name": "llm-gateway", "k8s.namespace.name": tenant})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(
        OTLPSpanExporter(endpoint=endpoint, insecure=True), max_queue_size=len(spans) + 512, max_export_batch_size=256))
    tracer = provider.get_tracer("llm-gateway")
    for i, (model, name) in enumerate(spans):
        with tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": 100 + i % 7,
            "gen_ai.usage.output_tokens": 20,
            "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": f"{PROMPT} {tenant} {name}"}]}]),
            "gen_ai.output.messages": f"{PROMPT} answer {name}",
            "modelplane.prefix.hash": HASHES[i % len(HASHES)],
            "modelplane.cache.kv_tier_hit": "gpu",
        }):
            pass
    assert provider.force_flush(30_000)
    provider.shutdown()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("traces-e2e")
    processes: list[Process] = []
    try:
        yield from _rig(root, processes)
    finally:
        for process in reversed(processes):
            process.stop()


def _rig(root: Path, processes: list[Process]):
    # The tenants' backends: a collector each, OTLP/HTTP in, a file out.
    backends = {}
    for tenant in ("team-a", "team-b"):
        port, health = free_port(), free_port()
        out = root / f"backend-{tenant}.jsonl"
        config = {
            "extensions": {"health_check": {"endpoint": f"127.0.0.1:{health}"}},
            "receivers": {"otlp": {"protocols": {"http": {"endpoint": f"127.0.0.1:{port}"}}}},
            "exporters": {"file": {"path": str(out), "format": "json", "flush_interval": "100ms"}},
            "service": {"extensions": ["health_check"], "telemetry": {"metrics": {"level": "none"}},
                        "pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["file"]}}},
        }
        workdir = root / f"backend-{tenant}"
        workdir.mkdir()
        process = run_collector(config, workdir, [], {}, f"backend-{tenant}")
        processes.append(process)
        wait_health(process, health)
        backends[tenant] = {"url": f"http://127.0.0.1:{port}", "out": out, "headers_file": None}

    # The ModelServices, rendered by function-signals: their forwarders and
    # the status the aggregator reads their addresses from.
    specs = {
        ("team-a", "chat"): {"enabled": True, "endpoint": backends["team-a"]["url"],
                              "headers": {"x-team": {"value": "team-a"},
                                          "authorization": {"valueFrom": {"secretKeyRef": {"name": "backend", "key": "token"}}}},
                              "sampling": {"ratio": RATIO_A}},
        ("team-a", "untraced"): {"enabled": False},
        ("team-b", "chat"): {"enabled": True, "endpoint": backends["team-b"]["url"], "protocol": "http/json"},
    }
    xr_docs, forwarders, resolve = [], {}, []
    for (tenant, name), traces in specs.items():
        xr = model_service(name, tenant, traces)
        workdir = root / f"render-{tenant}-{name}"
        workdir.mkdir()
        xr_path = workdir / "xr.yaml"
        xr_path.write_text(yaml.safe_dump(xr))
        (rendered_xr, *_) = render_documents(xr_path)
        xr["status"] = rendered_xr.get("status", {})
        xr_docs.append(xr)
        if not traces["enabled"]:
            assert "traces" not in xr["status"].get("observability", {}), xr["status"]
            continue
        forwarder = render_forwarder(model_service(name, tenant, traces), root / f"fwd-render-{tenant}")
        pod = forwarder.local_pod(root / f"fwd-{tenant}", pod_ip="127.0.0.1", token=SECRET_VALUE)
        config = yaml.safe_load(pod.config_path.read_text())
        ports = local_ports(config)
        process = run_collector(config, root / f"fwd-{tenant}", pod.args, pod.env, f"forwarder-{tenant}")
        processes.append(process)
        wait_health(process, ports["health"])
        forwarders[tenant] = {"process": process, "ports": ports}
        address = xr["status"]["observability"]["traces"]["address"]
        assert address == f"traces-{name}.{tenant}.svc:4317", address
        resolve += ["--trace-forward-resolve", f"{address}=127.0.0.1:{ports['grpc']}"]
    # The aggregator authenticates each cluster by its ingest token (the agent
    # sends the placeholder token its pod is given here) and forwards a
    # cluster's raw spans only for the namespaces its InferenceCluster lists
    # in spec.signals.traceForwarding; without Kubernetes the InferenceClusters
    # come from the same file as the ModelServices.
    services_file = root / "model-services.yaml"
    tokens_file = root / "ingest-tokens.yaml"
    tokens_file.write_text(yaml.safe_dump({CLUSTER: PLACEHOLDER_TOKEN, OTHER_CLUSTER: OTHER_TOKEN}))
    aggregator = Aggregator("--model-services-file", str(services_file),
                            "--ingest-tokens-file", str(tokens_file),
                            "--trace-forward-queue-spans", str(QUEUE_SPANS),
                            "--trace-forward-max-backoff-secs", "1", *resolve,
                            env={"RUST_LOG": "info,signal_aggregator=trace"})

    # The agent, rendered for an InferenceCluster with the trace path on.
    cluster_xr = {
        "apiVersion": "modelplane.ai/v1alpha1", "kind": "InferenceCluster", "metadata": {"name": CLUSTER},
        "spec": {"signals": {
            "kinds": [{"name": "RequestLifecycle"}, {"name": "PrefixHash"}],
            "aggregator": {"endpoint": aggregator.grpc_target, "insecure": True},
            "traceForwarding": {"namespaces": ["team-a", "team-b"]},
        }},
    }
    other_cluster_xr = copy.deepcopy(cluster_xr)
    other_cluster_xr["metadata"]["name"] = OTHER_CLUSTER
    other_cluster_xr["spec"]["signals"]["traceForwarding"]["namespaces"] = ["team-a"]
    services_file.write_text(yaml.safe_dump_all(xr_docs + [cluster_xr, other_cluster_xr]))
    aggregator.__enter__()
    processes.append(aggregator.process)

    agent = render_agent(cluster_xr, mode="SingleCluster", workdir=root / "agent-render")
    pod = agent.local_pod(root / "agent", pod_ip="127.0.0.1")
    config = yaml.safe_load(pod.config_path.read_text())
    assert "traces/forward" in config["service"]["pipelines"], config["service"]["pipelines"]
    ports = local_ports(config)
    # No engines to scrape here (and scrape discovery needs an API server).
    config["service"]["pipelines"].pop("metrics", None)
    for receiver in [r for r in config["receivers"] if component_type(r) == "prometheus"]:
        del config["receivers"][receiver]
    for pipeline in config["service"]["pipelines"].values():
        pipeline["processors"] = [p for p in pipeline["processors"] if component_type(p) != "k8s_attributes"]
    agent_process = run_collector(config, root / "agent", pod.args, pod.env, "agent")
    processes.append(agent_process)
    wait_health(agent_process, ports["health"])

    yield {
        "aggregator": aggregator, "agent": f"127.0.0.1:{ports['grpc']}", "backends": backends,
        "forwarders": forwarders,
    }


def forwarder_counter(rig, tenant: str, name: str, **labels: str) -> float:
    port = rig["forwarders"][tenant]["ports"]["telemetry"]
    return counter(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text, name, **labels)


def test_traces_reach_only_their_own_backend_with_prompts_enrichment_and_sampling(rig) -> None:
    aggregator = rig["aggregator"]
    send_spans(rig["agent"], "team-a",
               [("chat", f"a-chat-{i}") for i in range(SENT_A)] + [("untraced", f"a-untraced-{i}") for i in range(SENT_A_UNTRACED)])
    send_spans(rig["agent"], "team-b", [("chat", f"b-chat-{i}") for i in range(SENT_B)])
    # The sketch path counted every request, stripped.
    wait_until("the sketches to count team-a's requests",
               lambda: {g["model"]: g["requests"] for g in aggregator.lifecycle("team-a")}
               == {"chat": SENT_A, "untraced": SENT_A_UNTRACED})
    assert {g["model"]: g["requests"] for g in aggregator.lifecycle("team-b")} == {"chat": SENT_B}
    # Requests whose prefixes the sketches have now seen 100+ times each. (The
    # first ones' warmth depends on whether the agent's stripped copy reached
    # the sketches before the raw copy was forwarded: the two pipelines race.)
    send_spans(rig["agent"], "team-a", [("chat", f"a-late-{i}") for i in range(SENT_A_LATE)])
    sent_a = SENT_A + SENT_A_LATE

    # Everything reached each forwarder, and each forwarder's backend has
    # what that forwarder exported.
    try:
        wait_until("team-a's forwarder to receive its spans",
                   lambda: forwarder_counter(rig, "team-a", "otelcol_receiver_accepted_spans") >= sent_a)
    except AssertionError as error:
        dropped = [line for line in aggregator.metrics().splitlines() if "dropped" in line]
        fwd = rig["forwarders"]["team-a"]["process"].log_text()[-2000:]
        raise AssertionError(f"{error}\n{dropped}\naggregator:\n{aggregator.process.log_text()[-3000:]}\nforwarder:\n{fwd}") from None
    wait_until("team-b's backend to hold 100 spans", lambda: len(backend_spans(rig["backends"]["team-b"]["out"])) >= SENT_B)
    # Once every span was received, what passed the sampler is final; wait
    # until the exporter sent all of it and the backend wrote all of it.
    wait_until("team-a's backend to hold what its forwarder's sampler passed",
               lambda: 0 < forwarder_counter(rig, "team-a", "otelcol_processor_outgoing_items",
                                             processor="probabilistic_sampler")
               == forwarder_counter(rig, "team-a", "otelcol_exporter_sent_spans")
               == len(backend_spans(rig["backends"]["team-a"]["out"])))
    spans_a = backend_spans(rig["backends"]["team-a"]["out"])
    spans_b = backend_spans(rig["backends"]["team-b"]["out"])
    assert forwarder_counter(rig, "team-a", "otelcol_receiver_accepted_spans") == sent_a

    # Sampling: binomial(430, 0.5) within 5 standard deviations.
    sd = math.sqrt(sent_a * RATIO_A * (1 - RATIO_A))
    assert abs(len(spans_a) - sent_a * RATIO_A) <= 5 * sd, len(spans_a)

    # Isolation: each backend only its own service's spans.
    assert {s["name"].rsplit("-", 1)[0] for s in spans_a} == {"a-chat", "a-late"}
    assert sorted(s["name"] for s in spans_b) == sorted(f"b-chat-{i}" for i in range(SENT_B))
    for span in spans_a:
        assert span["resource"]["modelplane.tenant"] == "team-a"
        assert span["resource"]["modelplane.service"] == "chat"
        assert span["resource"]["modelplane.routing.cluster"] == CLUSTER
        assert "modelplane.trace_path" not in span["resource"]
        # The prompt and the response travel on the trace path.
        assert PROMPT in span["attributes"]["gen_ai.input.messages"]
        assert PROMPT in span["attributes"]["gen_ai.output.messages"]
        assert span["attributes"]["gen_ai.request.model"] == "chat"
        assert span["attributes"]["modelplane.cache.kv_tier_hit"] == "gpu"
        assert span["attributes"]["modelplane.cache.prefix_warmth"] in {"hot", "warm", "cold"}
    late = [s["attributes"]["modelplane.cache.prefix_warmth"] for s in spans_a if s["name"].startswith("a-late-")]
    assert late and set(late) == {"hot"}, late
    for span in spans_b:
        assert span["resource"]["modelplane.tenant"] == "team-b" and PROMPT in span["attributes"]["gen_ai.input.messages"]

    # No prompt byte on the metrics path.
    answers = [
        aggregator.get(f"/v1/tenants/{t}/signals/{k}", window="15m", groupBy="cluster,model").text
        for t in ("team-a", "team-b") for k in ("RequestLifecycle", "PrefixHash")
    ]
    answers += [aggregator.metrics(), aggregator.get("/openapi.json").text]
    for text in answers + [aggregator.process.log_text()]:
        assert PROMPT not in text
    # What had no route (team-a/untraced: traces off) was counted, not kept.
    assert counter(aggregator.metrics(), "modelplane_aggregator_dropped_items_total",
                   signal="traces", reason="forward_no_route") == SENT_A_UNTRACED
    # The agent's cluster lists both tenants: nothing it sent was refused.
    assert counter(aggregator.metrics(), "modelplane_aggregator_dropped_items_total",
                   signal="traces", reason="tenant_not_forwarded_by_cluster") == 0


def raw_resource_spans(tenant: str, names: list[str], claims: dict[str, str]) -> dict[str, Any]:
    """OTLP/JSON resource spans as an agent's trace path sends them (marked
    for forwarding, prompt on), from a gateway in `tenant`, plus `claims`."""
    now = time.time_ns()
    attributes = {"k8s.namespace.name": tenant, "modelplane.trace_path": "forward", **claims}
    return {
        "resource": {"attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attributes.items()]},
        "scopeSpans": [{"scope": {"name": "llm-gateway"}, "spans": [{
            "traceId": secrets.token_hex(16), "spanId": secrets.token_hex(8), "name": name, "kind": 3,
            "startTimeUnixNano": str(now - 1_000_000), "endTimeUnixNano": str(now),
            "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in {
                "gen_ai.operation.name": "chat", "gen_ai.request.model": "chat",
                "gen_ai.input.messages": f"{PROMPT} {name}"}.items()],
        }]} for name in names],
    }


def test_a_cluster_cannot_push_spans_into_a_tenant_it_does_not_forward(rig) -> None:
    """Issue 12: spans from one tenant never reach another tenant's
    forwarder, whatever attributes they claim. eu-2's InferenceCluster lists
    team-a only; holding eu-2's token, it sends raw spans claiming team-b
    (by namespace, by modelplane.tenant, and claiming to be eu-1) beside a
    team-a span of its own."""
    aggregator = rig["aggregator"]
    refused_before = counter(aggregator.metrics(), "modelplane_aggregator_dropped_items_total",
                             signal="traces", reason="tenant_not_forwarded_by_cluster")
    b_before = forwarder_counter(rig, "team-b", "otelcol_receiver_accepted_spans")
    a_before = forwarder_counter(rig, "team-a", "otelcol_receiver_accepted_spans")
    body = {"resourceSpans": [
        raw_resource_spans("team-b", ["eu2-claims-b-ns"], {"modelplane.cluster": CLUSTER}),
        raw_resource_spans("team-a", ["eu2-claims-b-attr"], {"modelplane.tenant": "team-b"}),
        raw_resource_spans("team-a", ["eu2-own-a"], {}),
    ]}
    response = requests.post(f"{aggregator.otlp_http}/v1/traces", data=json.dumps(body),
                             headers={"content-type": "application/json",
                                      "authorization": f"Bearer {OTHER_TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text
    # The team-a span went to team-a's forwarder (in the same request as the
    # refused ones, so their fate is settled too).
    wait_until("team-a's forwarder to receive eu-2's team-a span",
               lambda: forwarder_counter(rig, "team-a", "otelcol_receiver_accepted_spans") == a_before + 1)
    assert forwarder_counter(rig, "team-b", "otelcol_receiver_accepted_spans") == b_before
    assert not [s for s in backend_spans(rig["backends"]["team-b"]["out"]) if s["name"].startswith("eu2-")]
    assert counter(aggregator.metrics(), "modelplane_aggregator_dropped_items_total",
                   signal="traces", reason="tenant_not_forwarded_by_cluster") == refused_before + 2


def test_a_dead_forwarder_never_blocks_ingest_and_drops_are_counted(rig) -> None:
    aggregator = rig["aggregator"]
    before = {g["model"]: g["requests"] for g in aggregator.lifecycle("team-b")}.get("chat", 0)
    rig["forwarders"]["team-b"]["process"].stop()
    send_spans(rig["agent"], "team-b", [("chat", f"b-dead-{i}") for i in range(SENT_B_WHILE_DEAD)])
    # Ingest took every request for the sketches.
    wait_until("the sketches to count every request",
               lambda: {g["model"]: g["requests"] for g in aggregator.lifecycle("team-b")}.get("chat") == before + SENT_B_WHILE_DEAD)
    # The queue holds at most QUEUE_SPANS; the rest were dropped, oldest first, and counted.
    dropped = counter(aggregator.metrics(), "modelplane_aggregator_dropped_items_total",
                      signal="traces", reason="forward_queue_full")
    # Dropped oldest first: the newest (at most QUEUE_SPANS) are still queued.
    assert SENT_B_WHILE_DEAD - QUEUE_SPANS <= dropped < SENT_B_WHILE_DEAD, dropped
