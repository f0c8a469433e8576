"""The rendered span processors, run by the real collector, let only what
the aggregator reads leave the cluster: no byte of a prompt survives, in any
position a sender can put it (resource and scope attributes, span and
span-event attributes, links, trace state, status message, span name).

Only the processors that work without a cluster run: k8s_attributes needs a
Kubernetes API server and the probabilistic sampler would drop spans at
random, so both are left out of the rendered chain (test_agent_live.py runs
the whole agent). Spans go in over OTLP/HTTP and out to a file exporter.

Two failures this guards against: transform/privacy as one plain statement
list ran in the span-event context, so a span without events kept every
prompt attribute; and as a denylist of prompt keys it let prompt text
through under every key and in every field it did not name.
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

# Span attributes that carry content, in every naming a denylist would have
# to know (OTel GenAI current and legacy, OpenInference, Traceloop,
# Langfuse), and some no list names.
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
    "app.request.body",
    "http.request.header.x-prompt",
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
# Attributes the aggregator reads (apis::wire::SPAN_ATTRIBUTES): untouched.
KEPT_SPAN_ATTRIBUTES = {
    "gen_ai.request.model": "llama-3.1-8b",
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.usage.input_tokens": 812,
    "gen_ai.usage.output_tokens": 96,
    "gen_ai.response.time_to_first_chunk": 0.25,
    "error.type": "upstream_timeout",
    "modelplane.prefix.hash": "9f3c1a0b7d2e4f61",
}
# Resource attributes the aggregator reads (apis::wire::RESOURCE_ATTRIBUTES).
KEPT_RESOURCE_ATTRIBUTES = {"k8s.namespace.name": "team-a", "modelplane.model": "llama-3-1-8b-instruct"}


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


def send_spans(endpoint: str) -> dict[str, str]:
    """Three spans with the prompt everywhere a sender can put it; returns
    their span ids (hex) by what they are."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags, TraceState

    provider = TracerProvider(
        resource=Resource.create({
            "service.name": "llm-gateway",
            "user.name": "Ada Lovelace",
            "app.last_prompt": PROMPT,
            "gen_ai.prompt": PROMPT,
            **KEPT_RESOURCE_ATTRIBUTES,
        })
    )
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"http://{endpoint}/v1/traces")))
    tracer = provider.get_tracer("llm-gateway", "1.4.0", attributes={"prompt.template": PROMPT})
    attributes = {
        **KEPT_SPAN_ATTRIBUTES,
        **{key: PROMPT for key in CONTENT_SPAN_ATTRIBUTES},
        **END_USER_SPAN_ATTRIBUTES,
    }
    # A remote parent whose trace state carries the prompt: the children inherit it.
    parent = trace.set_span_in_context(NonRecordingSpan(SpanContext(
        trace_id=0x5B8EFFF798038103D269B633813FC60C, span_id=0xEEE19B7EC3C1B174, is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED), trace_state=TraceState([("gateway", PROMPT)]),
    )))
    link = Link(
        SpanContext(trace_id=0x0AF7651916CD43DD8448EB211C80319C, span_id=0xB7AD6B7169203331, is_remote=True,
                    trace_state=TraceState([("retry", PROMPT)])),
        attributes={"gen_ai.prompt": PROMPT, "link.reason": f"retry of {PROMPT}"},
    )
    ids = {}
    for what, name in (("without events", f"chat {PROMPT}"), ("with events", "chat"), ("llm_request", "llm_request")):
        span = tracer.start_span(name, context=parent, attributes=attributes, links=[link])
        if what == "with events":
            span.add_event("gen_ai.user.message", {"kept": "no", **{key: PROMPT for key in CONTENT_EVENT_ATTRIBUTES}})
            span.add_event(PROMPT)
        span.set_status(Status(StatusCode.ERROR, f"upstream timed out answering {PROMPT}"))
        span.end()
        ids[what] = format(span.get_span_context().span_id, "016x")
    provider.shutdown()
    return ids


def attribute_values(attributes: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for attribute in attributes:
        ((kind, value),) = attribute["value"].items()
        out[attribute["key"]] = int(value) if kind == "intValue" else value
    return out


def exported(capture: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """(each batch's resource, each batch's scope, each span by span id)."""
    resources, scopes, spans = [], [], {}
    for line in capture.read_text().splitlines():
        for resource_spans in json.loads(line)["resourceSpans"]:
            resources.append(resource_spans["resource"])
            for scope_spans in resource_spans["scopeSpans"]:
                scopes.append(scope_spans["scope"])
                for span in scope_spans["spans"]:
                    spans[span["spanId"]] = span
    return resources, scopes, spans


@pytest.mark.parametrize("scope", ["Fleet", "PerTenant"])
def test_no_content_leaves_the_span_processors(scope: str, tmp_path: Path) -> None:
    xr = full_cluster_xr()
    xr["spec"]["signals"]["privacy"]["scope"] = scope
    agent = render_agent(xr, mode="SingleCluster", workdir=tmp_path / "render")
    rendered = agent.config
    endpoint = f"127.0.0.1:{free_port()}"
    capture = tmp_path / "spans.jsonl"
    config_path = tmp_path / "collector.yaml"
    config_path.write_text(yaml.safe_dump(collector_config(rendered, endpoint, capture)))

    # The container's command line, with this config file.
    args = [f"--config={config_path}" if a.startswith("--config=") else a for a in agent.container["args"]]
    with Process([peers.otelcol(), *args], name="otelcol-k8s") as collector:
        collector.wait_for_log("Everything is ready", timeout=60)
        ids = send_spans(endpoint)
        assert collector.stop() == 0, collector.log_text()
    assert "ignored a nil value" not in collector.log_text()

    wire = capture.read_text()
    for fragment in (PROMPT, "launch codes", "Ada Lovelace", "user-4711", "session-0815"):
        assert fragment not in wire, fragment
    resources, scopes, spans = exported(capture)
    assert sorted(spans) == sorted(ids.values())
    # Both scopes: the allowlist leaves nothing end-user related to remove.
    for resource in resources:
        assert attribute_values(resource["attributes"]) == {**KEPT_RESOURCE_ATTRIBUTES, "modelplane.cluster": "eu-west-4"}
    for instrumentation in scopes:
        assert instrumentation == {"name": "llm-gateway", "version": "1.4.0"}, instrumentation
    expected_attributes = {
        **KEPT_SPAN_ATTRIBUTES,
        "modelplane.signal": "RequestLifecycle",
        "modelplane.sample_rate": 0.25,
    }
    for what, span_id in ids.items():
        span = spans[span_id]
        assert attribute_values(span["attributes"]) == expected_attributes, what
        # Only the vLLM/SGLang request span name is read, so only it stays.
        assert span.get("name", "") == ("llm_request" if what == "llm_request" else ""), what
        assert span["status"] == {"code": 2}, what
        for field in ("events", "links", "traceState"):
            assert field not in span, (what, field, span.get(field))
        assert span["parentSpanId"] == "eee19b7ec3c1b174", what
