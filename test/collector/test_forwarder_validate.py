"""Every trace-forwarder config function-signals renders for a ModelService
is accepted by the real collector (otelcol-k8s 0.159.0, the image the
forwarder runs), with the container's args and environment: `validate`
exits 0, and a start at debug level logs no warning, error, deprecated alias
or inferred OTTL context until every component is created (the same two
checks as test_config_validate.py makes for the agent)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .forwarder import MODEL_SERVICE_EXAMPLES, RenderedForwarder, forwarder_from_documents, model_service, render_forwarder
from .rendered import component_types, render_documents
from .test_config_validate import DEPRECATION, build_log_complaints, collector_build_log, collector_validate

# Every component type function/src/render/forwarder/config.rs can emit.
FORWARDER_TYPES: dict[str, set[str]] = {
    "receivers": {"otlp"},
    "processors": {"memory_limiter", "filter", "probabilistic_sampler", "resource"},
    "exporters": {"otlp_http", "otlp_grpc"},
    "extensions": {"health_check"},
    "connectors": set(),
}

SECRET = {"name": "creds", "key": "token"}

# One per protocol, header form and preset.
SHAPES: dict[str, dict[str, Any]] = {
    "otlp-http-protobuf": {"endpoint": "https://otel.example.com"},
    "otlp-http-json": {"endpoint": "http://otel.example.com:4318/base", "protocol": "http/json"},
    "otlp-grpc-tls": {"endpoint": "https://otel.example.com:4317", "protocol": "grpc"},
    "otlp-grpc-plaintext": {"endpoint": "http://otel:4317", "protocol": "grpc"},
    "headers-literal-and-secret": {
        "endpoint": "https://otel.example.com",
        "headers": {"x-team": {"value": "a$b ${env:NOT_EXPANDED}"}, "authorization": {"valueFrom": {"secretKeyRef": SECRET}}},
    },
    "grpc-headers": {
        "endpoint": "https://otel.example.com:4317",
        "protocol": "grpc",
        "headers": {"x-team": {"value": "t"}, "authorization": {"valueFrom": {"secretKeyRef": SECRET}}},
    },
    "sampled": {"endpoint": "https://otel.example.com", "sampling": {"ratio": 0.125}},
    "never-sampled": {"endpoint": "https://otel.example.com", "sampling": {"ratio": 0}},
    "langfuse": {"preset": {"langfuse": {"basicAuth": SECRET}}},
    "langsmith": {"preset": {"langSmith": {"apiKey": SECRET, "project": "prod \"quoted\""}}},
    "phoenix": {"endpoint": "http://phoenix:6006", "preset": {"phoenix": {"apiKey": SECRET, "project": "rag"}}},
    "phoenix-no-auth": {"endpoint": "http://phoenix:6006", "preset": {"phoenix": {}}},
    "datadog": {"preset": {"datadog": {"apiKey": SECRET, "site": "datadoghq.eu"}}, "headers": {"dd-otel-span-mapping": {"value": "{}"}}},
}


def assert_collector_accepts(forwarder: RenderedForwarder, workdir: Path) -> None:
    for cls, types in component_types(forwarder.config).items():
        unlisted = types - FORWARDER_TYPES[cls]
        assert not unlisted, f"the forwarder uses {cls} {sorted(unlisted)}, which FORWARDER_TYPES does not list"
    result = collector_validate(forwarder, workdir / "validate")
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"otelcol-k8s validate exited {result.returncode}:\n{output}\nconfig:\n{forwarder.config_text}"
    assert not DEPRECATION.search(output), output
    complaints = build_log_complaints(collector_build_log(forwarder, workdir / "start"))
    assert complaints == [], "the collector complains while creating the components:\n" + "\n".join(complaints)


@pytest.mark.parametrize("example", [e for e in MODEL_SERVICE_EXAMPLES], ids=lambda p: p.name)
def test_example_forwarder_is_accepted(example: Path, tmp_path: Path) -> None:
    documents = render_documents(example / "xr.yaml", observed=example / "observed" if (example / "observed").is_dir() else None)
    forwarder = forwarder_from_documents(documents)
    assert forwarder is not None, f"{example.name} renders no forwarder"
    assert_collector_accepts(forwarder, tmp_path)


def test_every_preset_has_an_example() -> None:
    names = {p.name for p in MODEL_SERVICE_EXAMPLES}
    assert {"ms-langfuse", "ms-langsmith", "ms-phoenix", "ms-datadog", "ms-otlp-grpc", "model-service"} <= names


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_forwarder_shape_is_accepted(shape: str, tmp_path: Path) -> None:
    traces = {"enabled": True, **SHAPES[shape]}
    forwarder = render_forwarder(model_service("chat", "team-a", traces), tmp_path / "render")
    assert_collector_accepts(forwarder, tmp_path)


def test_the_test_collector_has_every_forwarder_component() -> None:
    from harness import peers
    import subprocess

    listed = subprocess.run([str(peers.otelcol()), "components"], capture_output=True, text=True, timeout=60).stdout
    for types in FORWARDER_TYPES.values():
        for name in types:
            assert f"name: {name}\n" in listed, f"otelcol-k8s has no {name}"
