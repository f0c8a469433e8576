"""XRs every schema check must refuse, shared by the offline validation
(`crossplane resource validate`, test/crossplane_cli/) and the real API server
(test/kube/): each case names the field and the message the schema or its CEL
rule gives."""

from __future__ import annotations

import copy
from typing import Any, Callable

import yaml

from harness.binaries import REPO_ROOT

EXAMPLES = REPO_ROOT / "examples"


def load_example(name: str) -> dict[str, Any]:
    return copy.deepcopy(next(d for d in yaml.safe_load_all((EXAMPLES / name / "xr.yaml").read_text()) if d))


def _ic() -> dict[str, Any]:
    return load_example("ic-full")


def _ms() -> dict[str, Any]:
    return load_example("model-service")


def _signals(xr):
    return xr["spec"]["signals"]


def _traces(xr):
    return xr["spec"]["observability"]["traces"]


# (id, XR factory, mutation, field, message the CLI must print for that field)
INVALID: list[tuple[str, Callable[[], dict], Callable[[dict], Any], str, str]] = [
    ("unknown-kind", _ic, lambda x: _signals(x)["kinds"][2].update(name="Throughput"),
     "spec.signals.kinds[2].name", 'Unsupported value: "Throughput": supported values: "RequestLifecycle", "PrefixHash"'),
    ("duplicate-kind", _ic, lambda x: _signals(x)["kinds"].__setitem__(5, {"name": "Capacity"}),
     "spec.signals.kinds", "Invalid value: each signal kind may be listed only once"),
    ("seven-kinds", _ic, lambda x: _signals(x)["kinds"].append({"name": "Capacity"}),
     "spec.signals.kinds", "Too many: 7: must have at most 6 items"),
    ("sample-rate-above-one", _ic, lambda x: _signals(x)["kinds"][0].update(sampleRate=2),
     "spec.signals.kinds[0].sampleRate", "should be less than or equal to 1"),
    ("metric-kind-sampled", _ic, lambda x: _signals(x)["kinds"][2].update(sampleRate=0.5),
     "spec.signals.kinds[2]", "only span-derived kinds (RequestLifecycle, PrefixHash) can be sampled"),
    ("zero-replicas", _ic, lambda x: _signals(x)["agent"].update(replicas=0),
     "spec.signals.agent.replicas", "should be greater than or equal to 1"),
    ("namespace-not-dns-label", _ic, lambda x: _signals(x)["agent"].update(namespace="Signals_NS"),
     "spec.signals.agent.namespace", 'Invalid value: "Signals_NS"'),
    ("endpoint-without-port", _ic, lambda x: _signals(x)["aggregator"].update(endpoint="signals.example.com"),
     "spec.signals.aggregator.endpoint", 'Invalid value: "signals.example.com"'),
    ("token-ref-without-key", _ic, lambda x: _signals(x)["aggregator"]["tokenSecretRef"].pop("key"),
     "spec.signals.aggregator.tokenSecretRef.key", "Required value"),
    ("gpu-priced-twice", _ic, lambda x: _signals(x)["cost"]["pricing"].append({"gpu": "L40S", "pricePerGpuHour": 1.0}),
     "spec.signals.cost.pricing", "each gpu may be priced only once"),
    ("negative-price", _ic, lambda x: _signals(x)["cost"]["pricing"][0].update(pricePerGpuHour=-1),
     "spec.signals.cost.pricing[0].pricePerGpuHour", "should be greater than or equal to 0"),
    ("lowercase-currency", _ic, lambda x: _signals(x)["cost"]["pricing"][0].update(currency="usd"),
     "spec.signals.cost.pricing[0].currency", "should match '^[A-Z]{3}$'"),
    ("retention-not-a-duration", _ic, lambda x: _signals(x)["retention"].update(sketches="2 weeks"),
     "spec.signals.retention.sketches", "should match '^[1-9][0-9]{0,5}[smhd]$'"),
    ("unknown-privacy-scope", _ic, lambda x: _signals(x)["privacy"].update(scope="Global"),
     "spec.signals.privacy.scope", 'Unsupported value: "Global": supported values: "PerTenant", "Fleet"'),
    ("unknown-field-in-owned-subtree", _ic, lambda x: _signals(x).update(sampling=0.5),
     "spec.signals.sampling", 'unknown field: "sampling"'),
    ("provider-config-kind", _ic, lambda x: x["status"]["providerConfigRef"].update(kind="Provider"),
     "status.providerConfigRef.kind", 'Unsupported value: "Provider"'),
    ("traces-without-endpoint", _ms, lambda x: _traces(x).pop("endpoint"),
     "spec.observability.traces", "endpoint is required when traces are enabled"),
    ("traces-endpoint-not-http", _ms, lambda x: _traces(x).update(endpoint="grpc://collector:4317"),
     "spec.observability.traces.endpoint", "should match '^https?://"),
    ("header-name-not-a-token", _ms, lambda x: _traces(x)["headers"].update({"bad header": {"value": "x"}}),
     "spec.observability.traces.headers", "header names must be HTTP tokens of at most 128 characters"),
    ("header-value-and-value-from", _ms,
     lambda x: _traces(x)["headers"]["x-langfuse-ingestion-version"].update(
         valueFrom={"secretKeyRef": {"name": "a", "key": "b"}}),
     "spec.observability.traces.headers[x-langfuse-ingestion-version]", "set exactly one of value or valueFrom"),
    ("header-without-value", _ms, lambda x: _traces(x)["headers"].update({"x-empty": {}}),
     "spec.observability.traces.headers[x-empty]", "set exactly one of value or valueFrom"),
    ("extra-signal-lowercase", _ms, lambda x: x["spec"]["observability"]["metrics"]["extraSignals"].append("kvOffload"),
     "spec.observability.metrics.extraSignals[1]", "should match '^[A-Z][A-Za-z0-9]{0,62}$'"),
    ("negative-service-sample-rate", _ms, lambda x: x["spec"]["observability"]["metrics"].update(sampleRate=-0.1),
     "spec.observability.metrics.sampleRate", "should be greater than or equal to 0"),
]
