"""Every collector config function-signals renders is accepted by the real
collector the agent image ships (otelcol-k8s 0.159.0, built by
test/peers/build.sh), with today's component names.

Two runs of the real binary per config, both with exactly the args and
environment the rendered Deployment gives the container:

- `otelcol-k8s validate` unmarshals the config against the compiled-in
  factories (unknown types and keys fail), runs each component's Validate(),
  checks every pipeline reference and builds the pipeline graph. It must exit 0.
- validate builds that graph with a no-op logger, so it never prints a
  warning: a deprecated alias such as `k8sattributes` passes it silently. So
  the collector is also started, at debug log level, and stopped once it
  logs "Starting ...", the line after every component has been created with
  the real logger and before any is started (starting needs a Kubernetes API
  server). Up to there the log must hold no warning or error (where
  `"k8sattributes" alias is deprecated` appears) and no inferred OTTL
  context: a transform processor given a plain statement list runs all of
  it in the most specific context any statement names, which once ran the
  privacy deletions per span event and skipped spans without events.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import random
import re
import subprocess
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from harness import peers

from .rendered import (
    AGENT_CONFIG_MAP,
    EXAMPLES,
    MODES,
    SIGNAL_KINDS,
    RenderedAgent,
    agent_from_documents,
    component_types,
    full_cluster_xr,
    render_agent,
    render_documents,
    with_kinds,
)

# Every component type function/src/render/collector_config.rs can emit, by
# class. test_collector_has_every_renderable_component checks that each is
# compiled into the test collector, and every validated config is checked to
# use nothing outside this list, so a type the renderer starts to use cannot
# slip past a collector that left it out.
RENDERABLE_TYPES: dict[str, set[str]] = {
    "receivers": {"otlp", "prometheus"},
    "processors": {
        "memory_limiter",
        "resource",
        "transform",
        "k8s_attributes",
        "probabilistic_sampler",
        "groupbyattrs",
        "filter",
    },
    "exporters": {"otlp_grpc"},
    "extensions": {"health_check"},
    "connectors": set(),
}

# A renamed component still loads under its old name and only logs this:
# `"k8sattributes" alias is deprecated; use "k8s_attributes" instead`.
DEPRECATION = re.compile(r"deprecat", re.IGNORECASE)
# A zap console log line: timestamp, level, caller, message, fields.
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\S+\t(?P<level>[a-z]+)\t")
QUIET_LEVELS = {"debug", "info"}
# Logged at debug level by OTTL when a statement group names no context.
INFERRED_CONTEXT = "Inferred OTTL context"
# Logged by service.Start after every component has been created, before any
# is started.
COMPONENTS_BUILT = "Starting otelcol-k8s..."


def examples_with_an_agent() -> list[Path]:
    """Examples whose golden output holds the agent's ConfigMap (a
    ModelService's trace forwarder is a collector config too, checked in
    test_forwarder_validate.py). The goldens equal what render prints
    (function/tests/examples.rs), and each case here re-renders and fails if
    the agent is missing."""
    return [
        case
        for case in sorted(p.parent for p in EXAMPLES.glob("*/xr.yaml"))
        if f"composition-resource-name: {AGENT_CONFIG_MAP}" in (case / "expected.yaml").read_text()
    ]


def kind_mixes() -> list[tuple[str, ...]]:
    return [mix for n in range(1, len(SIGNAL_KINDS) + 1) for mix in itertools.combinations(SIGNAL_KINDS, n)]


def _unset_scrape_namespaces(xr: dict[str, Any]) -> None:
    del xr["spec"]["signals"]["agent"]["scrapeNamespaces"]


def _one_scrape_namespace(xr: dict[str, Any]) -> None:
    xr["spec"]["signals"]["agent"]["scrapeNamespaces"] = ["team-a"]


def _span_rates(rates: tuple[float | None, float | None]) -> Callable[[dict[str, Any]], None]:
    def apply(xr: dict[str, Any]) -> None:
        for kind, rate in zip(xr["spec"]["signals"]["kinds"][:2], rates):
            kind.pop("sampleRate", None)
            if rate is not None:
                kind["sampleRate"] = rate

    return apply


def _per_tenant_privacy(xr: dict[str, Any]) -> None:
    xr["spec"]["signals"]["privacy"]["scope"] = "PerTenant"


def _insecure_aggregator(xr: dict[str, Any]) -> None:
    xr["spec"]["signals"]["aggregator"]["insecure"] = True


def _default_aggregator(xr: dict[str, Any]) -> None:
    del xr["spec"]["signals"]["aggregator"]


def _trace_forwarding(xr: dict[str, Any]) -> None:
    xr["spec"]["signals"]["traceForwarding"] = {"namespaces": ["team-a", "team-b"]}


def _trace_forwarding_metrics_only(xr: dict[str, Any]) -> None:
    xr["spec"]["signals"]["kinds"] = [{"name": "Capacity"}]
    xr["spec"]["signals"]["traceForwarding"] = {"namespaces": ["team-a"]}


# Changes to ic-full (all six kinds) that change the config's shape beyond
# which kinds are on. ic-full itself: two scraped namespaces (one
# k8s_attributes per namespace), span kinds at different rates (a sampled
# pipeline per kind), Fleet scope, an explicit aggregator.
SHAPE_VARIANTS: dict[str, Callable[[dict[str, Any]], None]] = {
    # one cluster-wide k8s_attributes, cluster-wide service discovery
    "scrape-namespaces-unset": _unset_scrape_namespaces,
    "scrape-namespaces-one": _one_scrape_namespace,
    # no sampler; both span kinds share traces/spans
    "span-sample-rates-unset": _span_rates((None, None)),
    # one shared, sampled traces/spans pipeline
    "span-sample-rates-equal": _span_rates((0.5, 0.5)),
    # one kind sampled, the other not
    "span-sample-rate-one-kind": _span_rates((0.3, None)),
    # no transform/fleet_scope (no fairness_id hashing on the metrics path)
    "privacy-per-tenant": _per_tenant_privacy,
    "aggregator-insecure": _insecure_aggregator,
    # the step input's default endpoint and the copied token Secret
    "aggregator-default": _default_aggregator,
    # the raw trace path (traces/forward) beside the stripped span pipelines
    "trace-forwarding": _trace_forwarding,
    # the trace path alone with a metric kind: the OTLP receiver is there for it
    "trace-forwarding-metrics-only": _trace_forwarding_metrics_only,
}


def shape_variant_xr(name: str) -> dict[str, Any]:
    xr = copy.deepcopy(full_cluster_xr())
    SHAPE_VARIANTS[name](xr)
    return xr


def collector_validate(agent: RenderedAgent, workdir: Path) -> subprocess.CompletedProcess[str]:
    """`otelcol-k8s validate` with the container's args and environment."""
    pod = agent.local_pod(workdir)
    assert f"--config={pod.config_path}" in pod.args, f"the container does not load the ConfigMap's file: {pod.args}"
    return subprocess.run(
        [str(peers.otelcol()), "validate", *pod.args],
        env=pod.env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def collector_build_log(agent: RenderedAgent, workdir: Path) -> list[str]:
    """The collector's log from start until every component is created.

    The pod IP is a random loopback address, so the telemetry listener it
    opens cannot collide with another test's ports."""
    pod_ip = "127.{}.{}.{}".format(*(random.randint(1, 254) for _ in range(3)))
    pod = agent.local_pod(workdir, pod_ip=pod_ip)
    process = subprocess.Popen(
        [str(peers.otelcol()), *pod.args, "--set=service::telemetry::logs::level=debug"],
        env=pod.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if COMPONENTS_BUILT in line:
                return lines
    finally:
        process.kill()
        process.communicate(timeout=30)
    raise AssertionError(
        f"otelcol-k8s exited {process.returncode} before creating every component:\n" + "\n".join(lines)
    )


def assert_collector_accepts(agent: RenderedAgent, workdir: Path) -> None:
    used = component_types(agent.config)
    for cls, types in used.items():
        unlisted = types - RENDERABLE_TYPES[cls]
        assert not unlisted, (
            f"the config uses {cls} {sorted(unlisted)}, which RENDERABLE_TYPES does not list: "
            "add them there so the components test checks the collector has them"
        )
    result = collector_validate(agent, workdir / "validate")
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"otelcol-k8s validate exited {result.returncode}:\n{output}\nconfig:\n{agent.config_text}"
    assert not DEPRECATION.search(output), f"otelcol-k8s validate:\n{output}"
    complaints = build_log_complaints(collector_build_log(agent, workdir / "start"))
    assert complaints == [], "the collector complains while creating the components:\n" + "\n".join(complaints)


def build_log_complaints(build_log: list[str]) -> list[str]:
    return [
        line
        for line in build_log
        if DEPRECATION.search(line)
        or INFERRED_CONTEXT in line
        or ((m := LOG_LINE.match(line)) and m["level"] not in QUIET_LEVELS)
    ]


@pytest.mark.parametrize("example", examples_with_an_agent(), ids=lambda p: p.name)
def test_example_config_is_accepted(example: Path, tmp_path: Path) -> None:
    documents = render_documents(
        example / "xr.yaml",
        step_input=example / "input.yaml" if (example / "input.yaml").is_file() else None,
        observed=example / "observed" if (example / "observed").is_dir() else None,
    )
    agent = agent_from_documents(documents)
    assert agent is not None, f"{example.name}: expected.yaml holds an agent, render printed none"
    assert_collector_accepts(agent, tmp_path)


def test_examples_cover_both_modes() -> None:
    names = [p.name for p in examples_with_an_agent()]
    # ic-full/ic-minimal/ic-token-rotation are MultiCluster, ic-single-cluster is not.
    assert names == ["ic-full", "ic-minimal", "ic-single-cluster", "ic-token-rotation"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kinds", kind_mixes(), ids="+".join)
def test_kind_mix_config_is_accepted(kinds: tuple[str, ...], mode: str, tmp_path: Path) -> None:
    agent = render_agent(with_kinds(full_cluster_xr(), list(kinds)), mode=mode, workdir=tmp_path / "render")
    assert_collector_accepts(agent, tmp_path)


def test_kind_mixes_are_every_non_empty_subset() -> None:
    mixes = kind_mixes()
    assert len(mixes) == 63
    assert len(set(frozenset(m) for m in mixes)) == 63


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", sorted(SHAPE_VARIANTS))
def test_shape_variant_config_is_accepted(variant: str, mode: str, tmp_path: Path) -> None:
    agent = render_agent(shape_variant_xr(variant), mode=mode, workdir=tmp_path / "render")
    assert_collector_accepts(agent, tmp_path)


def test_shape_variants_change_the_config(tmp_path: Path) -> None:
    """Each variant renders what it claims to, so the cases above really
    cover those shapes."""

    def config(variant: str | None) -> dict[str, Any]:
        xr = full_cluster_xr() if variant is None else shape_variant_xr(variant)
        return render_agent(xr, mode="SingleCluster", workdir=tmp_path / (variant or "base")).config

    def processors(cfg: dict[str, Any]) -> list[str]:
        return sorted(cfg["processors"])

    def pipelines(cfg: dict[str, Any]) -> list[str]:
        return sorted(cfg["service"]["pipelines"])

    def samplers(cfg: dict[str, Any]) -> list[str]:
        return [p for p in processors(cfg) if p.startswith("probabilistic_sampler")]

    def k8s_attributes(cfg: dict[str, Any]) -> list[str]:
        return [p for p in processors(cfg) if p.startswith("k8s_attributes")]

    def exporter(cfg: dict[str, Any]) -> dict[str, Any]:
        return cfg["exporters"]["otlp_grpc/aggregator"]

    base = config(None)
    split = ["metrics", "traces/prefix_hash", "traces/request_lifecycle"]
    assert k8s_attributes(base) == ["k8s_attributes/gpu-operator", "k8s_attributes/team-a"]
    assert pipelines(base) == split
    assert samplers(base) == ["probabilistic_sampler/prefix_hash", "probabilistic_sampler/request_lifecycle"]
    assert "transform/fleet_scope" in processors(base)
    assert exporter(base)["endpoint"] == "signals.control-plane.example.com:4317"
    assert exporter(base)["tls"] == {"insecure": False}

    assert k8s_attributes(config("scrape-namespaces-unset")) == ["k8s_attributes"]
    assert k8s_attributes(config("scrape-namespaces-one")) == ["k8s_attributes/team-a"]
    rates_unset = config("span-sample-rates-unset")
    assert (pipelines(rates_unset), samplers(rates_unset)) == (["metrics", "traces/spans"], [])
    rates_equal = config("span-sample-rates-equal")
    assert (pipelines(rates_equal), samplers(rates_equal)) == (["metrics", "traces/spans"], ["probabilistic_sampler/spans"])
    one_rate = config("span-sample-rate-one-kind")
    assert (pipelines(one_rate), samplers(one_rate)) == (split, ["probabilistic_sampler/request_lifecycle"])
    assert "transform/fleet_scope" not in processors(config("privacy-per-tenant"))
    assert exporter(config("aggregator-insecure"))["tls"] == {"insecure": True}
    assert exporter(config("aggregator-default"))["endpoint"] == "signal-aggregator.modelplane-system.svc.cluster.local:4317"


def collector_components() -> dict[str, set[str]]:
    result = subprocess.run([str(peers.otelcol()), "components"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"otelcol-k8s components exited {result.returncode}:\n{result.stderr}"
    listed = yaml.safe_load(result.stdout)
    return {cls: {c["name"] for c in listed.get(cls) or []} for cls in RENDERABLE_TYPES}


def test_collector_has_every_renderable_component() -> None:
    compiled = collector_components()
    missing = {cls: sorted(types - compiled[cls]) for cls, types in RENDERABLE_TYPES.items() if types - compiled[cls]}
    assert missing == {}, f"components function-signals renders but the test collector lacks: {missing}"


def test_full_example_uses_every_renderable_component(tmp_path: Path) -> None:
    """RENDERABLE_TYPES holds nothing stale: ic-full plus a cluster-wide
    and a trace-forwarding variant use every type in it, so the list is what
    the renderer emits."""
    used: dict[str, set[str]] = {cls: set() for cls in RENDERABLE_TYPES}
    variants = ("scrape-namespaces-unset", "trace-forwarding")
    for mode in MODES:
        for name, xr in (("full", full_cluster_xr()), *((v, shape_variant_xr(v)) for v in variants)):
            agent = render_agent(xr, mode=mode, workdir=tmp_path / f"{name}-{mode}")
            for cls, types in component_types(agent.config).items():
                used[cls] |= types
    assert used == RENDERABLE_TYPES


def test_a_deprecated_alias_fails_the_check(tmp_path: Path) -> None:
    """The checks above are not vacuous: the old name `k8sattributes` passes
    validate but is caught from the collector's own log."""
    agent = render_agent(full_cluster_xr(), mode="SingleCluster", workdir=tmp_path / "render")
    old_names = dataclasses.replace(agent, config_text=agent.config_text.replace("k8s_attributes/", "k8sattributes/"))
    assert collector_validate(old_names, tmp_path / "validate").returncode == 0
    warnings = [line for line in collector_build_log(old_names, tmp_path / "start") if DEPRECATION.search(line)]
    assert len(warnings) == 4, warnings  # two k8sattributes processors in each of two traces pipelines
    assert all('"k8sattributes" alias is deprecated; use "k8s_attributes" instead' in line for line in warnings)


def test_a_transform_without_a_context_fails_the_check(tmp_path: Path) -> None:
    """A transform/privacy written as one plain list (as it once was) passes
    validate; the collector's debug log shows it inferred one context for all
    of it (here span, which once was span events and skipped spans without
    any), which the check refuses."""
    agent = render_agent(full_cluster_xr(), mode="SingleCluster", workdir=tmp_path / "render")
    config = agent.config
    groups = config["processors"]["transform/privacy"]["trace_statements"]
    assert [g["context"] for g in groups] == ["resource", "scope", "span"]
    config["processors"]["transform/privacy"]["trace_statements"] = [s for g in groups for s in g["statements"]]
    # The `$$` escapes must survive the round trip, so dump the parsed value as is.
    flat = dataclasses.replace(agent, config_text=yaml.safe_dump(config, sort_keys=True))
    assert collector_validate(flat, tmp_path / "validate").returncode == 0
    inferred = [line for line in collector_build_log(flat, tmp_path / "start") if INFERRED_CONTEXT in line]
    assert len(inferred) == 2, inferred  # transform/privacy in each of the two traces pipelines
    assert all('Inferred OTTL context: "span"' in line for line in inferred)
