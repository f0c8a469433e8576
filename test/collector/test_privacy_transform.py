"""The rendered span processors, run by the real collector, remove prompt
and completion content from every span, with or without span events.

Only the processors that work without a cluster run: k8s_attributes needs a
Kubernetes API server and the probabilistic sampler would drop spans at
random, so both are left out of the rendered chain (test_agent_live.py runs
the whole agent). Spans go in over OTLP/HTTP and out to a file exporter.

This is the behaviour that broke when transform/privacy was one plain
statement list: the collector ran all of it in the span-event context, so a
span without events kept every prompt attribute.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import peers
from harness.procs import Process, free_port

from .rendered import component_type, full_cluster_xr, render_agent

PROMPT = "tell me the launch codes 7f3a"
TRACES_PIPELINE = "traces/request_lifecycle"
NEEDS_A_CLUSTER_OR_DROPS_SPANS = {"k8s_attributes", "probabilistic_sampler"}

# Span attributes that carry content, in every naming the privacy transform
# covers (OTel GenAI current and legacy, OpenInference, Traceloop, Langfuse).
CONTENT_SPAN_ATTRIBUTES = [
    "gen_ai.prompt",
    "gen_ai.completion",
    "gen_ai.prompt.0.content",
    "gen_ai.completion.0.content",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "input.value",
    "output.value",
    "llm.input_messages.0.message.content",
    "llm.output_messages.0.message.content",
    "traceloop.entity.input",
    "traceloop.entity.output",
    "langfuse.observation.input",
    "langfuse.trace.output",
]
CONTENT_EVENT_ATTRIBUTES = [
    "content",
    "gen_ai.prompt",
    "gen_ai.completion.0",
    "gen_ai.event.content",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
]
END_USER_SPAN_ATTRIBUTES = {"user.id": "user-4711", "enduser.id": "enduser-4711", "session.id": "session-0815"}
KEPT_SPAN_ATTRIBUTES = {"gen_ai.request.model": "llama-3.1-8b", "gen_ai.usage.input_tokens": 812}


def collector_config(rendered: dict[str, Any], endpoint: str, capture: Path) -> dict[str, Any]:
    pipeline = rendered["service"]["pipelines"][TRACES_PIPELINE]
    chain = [p for p in pipeline["processors"] if component_type(p) not in NEEDS_A_CLUSTER_OR_DROPS_SPANS]
    return {
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": endpoint}}}},
        "processors": {p: rendered["processors"][p] for p in chain},
        "exporters": {"file": {"path": str(capture)}},
        "service": {
            "telemetry": {"metrics": {"level": "none"}},
            "pipelines": {"traces": {"receivers": ["otlp"], "processors": chain, "exporters": ["file"]}},
        },
    }


def send_spans(endpoint: str) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(
        resource=Resource.create({"service.name": "llm-gateway", "user.name": "Ada Lovelace"})
    )
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"http://{endpoint}/v1/traces")))
    tracer = provider.get_tracer("llm-gateway")
    attributes = {
        **KEPT_SPAN_ATTRIBUTES,
        **{key: PROMPT for key in CONTENT_SPAN_ATTRIBUTES},
        **END_USER_SPAN_ATTRIBUTES,
    }
    with tracer.start_as_current_span("chat without events", attributes=attributes):
        pass
    with tracer.start_as_current_span("chat with events", attributes=attributes) as span:
        span.add_event("gen_ai.user.message", {"kept": "yes", **{key: PROMPT for key in CONTENT_EVENT_ATTRIBUTES}})
    provider.shutdown()


def attribute_values(attributes: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for attribute in attributes:
        ((kind, value),) = attribute["value"].items()
        out[attribute["key"]] = int(value) if kind == "intValue" else value
    return out


def exported(capture: Path) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """(resource attributes of each batch, each span by name)."""
    resources, spans = [], {}
    for line in capture.read_text().splitlines():
        for resource_spans in json.loads(line)["resourceSpans"]:
            resources.append(attribute_values(resource_spans["resource"]["attributes"]))
            for scope_spans in resource_spans["scopeSpans"]:
                for span in scope_spans["spans"]:
                    spans[span["name"]] = span
    return resources, spans


@pytest.mark.parametrize("scope", ["Fleet", "PerTenant"])
def test_no_content_leaves_the_span_processors(scope: str, tmp_path: Path) -> None:
    xr = full_cluster_xr()
    xr["spec"]["signals"]["privacy"]["scope"] = scope
    rendered = render_agent(xr, mode="SingleCluster", workdir=tmp_path / "render").config
    endpoint = f"127.0.0.1:{free_port()}"
    capture = tmp_path / "spans.jsonl"
    config_path = tmp_path / "collector.yaml"
    config_path.write_text(yaml.safe_dump(collector_config(rendered, endpoint, capture)))

    with Process([peers.otelcol(), f"--config={config_path}"], name="otelcol-k8s") as collector:
        collector.wait_for_log("Everything is ready", timeout=60)
        send_spans(endpoint)
        assert collector.stop() == 0, collector.log_text()

    assert PROMPT not in capture.read_text()
    resources, spans = exported(capture)
    assert sorted(spans) == ["chat with events", "chat without events"]
    # Fleet scope also drops end-user identifiers; per-tenant keeps them.
    expected_attributes = {
        **KEPT_SPAN_ATTRIBUTES,
        **({} if scope == "Fleet" else END_USER_SPAN_ATTRIBUTES),
        "modelplane.signal": "RequestLifecycle",
        "modelplane.sample_rate": 0.25,
    }
    for name, span in spans.items():
        assert attribute_values(span["attributes"]) == expected_attributes, name
    (event,) = spans["chat with events"]["events"]
    assert attribute_values(event["attributes"]) == {"kept": "yes"}
    assert "events" not in spans["chat without events"]
    for resource in resources:
        assert resource["modelplane.cluster"] == "eu-west-4"
        assert resource.get("user.name") == (None if scope == "Fleet" else "Ada Lovelace")
