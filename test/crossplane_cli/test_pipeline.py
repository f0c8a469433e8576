"""function-signals in a multi-step pipeline run by the real CLI and engine.

Before it: the CLI's own context-seeding step (--context-values), the step
that composes the workload cluster's ProviderConfig and resolves
status.providerConfigRef (pipeline/cluster_access_fn.py, Modelplane's role),
and function-auto-ready (a real Crossplane function) judging that
ProviderConfig ready. After it: function-auto-ready again, which must leave
the function's explicit readiness alone. What the earlier steps composed,
set and marked must survive the function-signals step.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import peers

from .xp import EXAMPLES, RESOURCE_NAME_ANNOTATION, by_resource_name, function_object, load_yaml, render, validate, write_yaml

COMPOSITION = Path(__file__).parent / "pipeline" / "composition.yaml"
# No status.providerConfigRef: alone, function-signals waits for one.
XR = EXAMPLES / "ic-waiting-for-providerconfig" / "xr.yaml"
PROVIDER_CONFIG = "ap-south-1-access"
AGENT_RESOURCES = {
    "signals-agent-serviceaccount", "signals-agent-clusterrole", "signals-agent-clusterrolebinding",
    "signals-agent-config", "signals-agent-deployment", "signals-agent-token",
}
CONTEXT_KEY = "modelplane.ai/fleet"
CONTEXT = {"region": "ap-south-1", "tier": ["gold", 3]}


@pytest.fixture(scope="module")
def functions(signals_fn, auto_ready_fn, cluster_access_fn, tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("pipeline")
    return write_yaml(
        workdir / "functions.yaml",
        function_object("function-cluster-access", cluster_access_fn),
        function_object("function-auto-ready", auto_ready_fn),
        function_object("function-signals", signals_fn.address),
    )


def observed(tmp_path: Path, *, provider_config_ready: bool) -> Path:
    """The ProviderConfig as it exists after an earlier reconcile created it."""
    directory = tmp_path / "observed"
    directory.mkdir()
    write_yaml(directory / "providerconfig.yaml", {
        "apiVersion": "kubernetes.m.crossplane.io/v1alpha1",
        "kind": "ClusterProviderConfig",
        "metadata": {"name": PROVIDER_CONFIG, "annotations": {RESOURCE_NAME_ANNOTATION: "cluster-providerconfig"}},
        "spec": {"credentials": {"source": "Secret", "secretRef": {
            "namespace": "modelplane-system", "name": "ap-south-1-kubeconfig", "key": "kubeconfig"}}},
        "status": {"conditions": [{
            "type": "Ready", "status": "True" if provider_config_ready else "False",
            "reason": "Available" if provider_config_ready else "Creating",
            "lastTransitionTime": "2026-12-01T00:00:00Z",
        }]},
    })
    return directory


def pipeline(functions: Path, observed_dir: Path | None = None):
    run = render(
        XR, COMPOSITION, functions, observed=observed_dir,
        extra=("--context-values", f"{CONTEXT_KEY}={json.dumps(CONTEXT)}", "--include-context"),
    )
    assert run.returncode == 0, run.explain()
    docs = run.documents()
    contexts = [d for d in docs if d.get("kind") == "Context"]
    assert len(contexts) == 1, run.explain()
    return docs[0], by_resource_name(docs), contexts[0]["fields"], [d for d in docs if d.get("kind") == "Result"]


def conditions_of(xr):
    return {c["type"]: c for c in xr["status"]["conditions"]}


def test_first_reconcile_composes_the_provider_config_and_waits(functions):
    """Before the ProviderConfig exists, the first step composes it and the
    signals step waits for status.providerConfigRef, keeping the first
    step's resource in the desired state."""
    xr, composed, context, _ = pipeline(functions)
    assert set(composed) == {"cluster-providerconfig"}
    pc = composed["cluster-providerconfig"]
    assert pc["kind"] == "ClusterProviderConfig"
    assert pc["spec"]["credentials"]["secretRef"] == {
        "namespace": "modelplane-system", "name": f"{xr['metadata']['name']}-kubeconfig", "key": "kubeconfig",
    }
    conditions = conditions_of(xr)
    assert conditions["AgentReady"]["reason"] == "WaitingForProviderConfig"
    assert "providerConfigRef" not in xr["status"]
    # Not observed yet, so nobody says it is ready.
    assert conditions["Ready"]["status"] == "False"
    assert context[CONTEXT_KEY] == CONTEXT


def test_second_reconcile_renders_the_agent_at_the_resolved_provider_config(functions, tmp_path):
    xr, composed, context, _ = pipeline(functions, observed(tmp_path, provider_config_ready=True))
    # Set by the first step; still there after function-signals.
    assert xr["status"]["providerConfigRef"] == {"name": PROVIDER_CONFIG, "kind": "ClusterProviderConfig"}
    # The first step's resource, with the name Crossplane gave it earlier.
    pc = composed["cluster-providerconfig"]
    assert pc["metadata"]["name"] == PROVIDER_CONFIG
    assert pc["spec"]["credentials"]["secretRef"]["name"] == f"{xr['metadata']['name']}-kubeconfig"
    agent = set(composed) - {"cluster-providerconfig"}
    assert agent >= AGENT_RESOURCES and all(n.startswith("signals-agent-") for n in agent), sorted(composed)
    # function-signals read what the first step resolved (the XR itself has
    # no providerConfigRef) and aims every Object at it.
    for name in agent:
        assert composed[name]["kind"] == "Object", name
        assert composed[name]["spec"]["providerConfigRef"] == {"kind": "ClusterProviderConfig", "name": PROVIDER_CONFIG}
    conditions = conditions_of(xr)
    assert conditions["AgentReady"]["status"] == "False"
    assert conditions["AgentReady"]["reason"] == "Creating"
    # Crossplane's Ready lists what is not ready: the agent's resources (not
    # observed yet) but not the ProviderConfig, which function-auto-ready
    # marked ready before function-signals ran and which function-signals
    # kept ready. The second function-auto-ready left the agent's explicit
    # readiness alone.
    assert conditions["Ready"]["status"] == "False"
    unready = conditions["Ready"]["message"]
    assert unready.startswith("Unready resources: signals-agent-"), unready
    assert "cluster-providerconfig" not in unready
    assert unready.endswith(f"and {len(agent) - 3} more"), unready
    assert xr["status"]["signals"]["enabledKinds"] == ["RequestLifecycle", "Cost"]
    assert context[CONTEXT_KEY] == CONTEXT
    # Everything the pipeline composed satisfies provider-kubernetes' CRDs.
    path = write_yaml(tmp_path / "composed.yaml", *composed.values())
    code, result = validate([peers.peer("PROVIDER_KUBERNETES_CRDS")], [path], tmp_path, "--error-on-missing-schemas")
    assert result["summary"]["valid"] == len(composed), result
    assert code == 0


def test_readiness_the_earlier_step_withheld_stays_withheld(functions, tmp_path):
    """The ProviderConfig exists but is not Ready: function-auto-ready leaves
    it unready, and function-signals does not make it ready either."""
    xr, composed, _, _ = pipeline(functions, observed(tmp_path, provider_config_ready=False))
    assert "cluster-providerconfig" in composed
    assert xr["status"]["providerConfigRef"]["name"] == PROVIDER_CONFIG
    unready = conditions_of(xr)["Ready"]["message"]
    assert unready.startswith("Unready resources: cluster-providerconfig, signals-agent-"), unready


def test_function_auto_ready_after_function_signals_changes_nothing(signals_fn, auto_ready_fn, tmp_path):
    """The golden ic-full example through [function-signals, function-auto-ready]:
    the second real function takes function-signals' desired state through
    the Go SDK and back, and the result is still exactly the golden file."""
    example = EXAMPLES / "ic-full"
    composition = write_yaml(tmp_path / "composition.yaml", {
        "apiVersion": "apiextensions.crossplane.io/v1",
        "kind": "Composition",
        "metadata": {"name": "inferenceclusters.modelplane.ai"},
        "spec": {
            "compositeTypeRef": {"apiVersion": "modelplane.ai/v1alpha1", "kind": "InferenceCluster"},
            "mode": "Pipeline",
            "pipeline": [
                {"step": "signals", "functionRef": {"name": "function-signals"}},
                {"step": "detect-readiness", "functionRef": {"name": "function-auto-ready"}},
            ],
        },
    })
    functions = write_yaml(
        tmp_path / "functions.yaml",
        function_object("function-signals", signals_fn.address),
        function_object("function-auto-ready", auto_ready_fn),
    )
    run = render(example / "xr.yaml", composition, functions, observed=example / "observed", results=False)
    assert run.returncode == 0, run.explain()
    assert run.documents() == load_yaml(example / "expected.yaml")
