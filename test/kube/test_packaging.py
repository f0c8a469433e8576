"""What users install, applied to the real API server: every Kustomize overlay
of package/aggregator (built by the real kustomize) and every GitOps example,
server-side dry-run against kube-apiserver with the CRDs they need installed
from their upstream modules (Prometheus Operator, Argo CD, Flux, Crossplane,
and our XRDs as Crossplane serves them). The embedded overlay's Deployment is
also run: its exact args and env, as its ServiceAccount under its RBAC."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import peers
from harness.aggregator import Aggregator
from harness.binaries import REPO_ROOT, cargo_bin
from harness.kube import ControlPlane, load_documents

from .conftest import RBAC, TOKEN_NAMESPACE

OVERLAYS = REPO_ROOT / "package" / "aggregator" / "overlays"
GITOPS = REPO_ROOT / "examples" / "gitops"
REPLICAS = {"embedded": 1, "redis": 2, "redis-cluster": 3}


def kustomize_build(path: Path) -> list[dict[str, Any]]:
    result = subprocess.run([str(peers.peer("KUSTOMIZE_BIN")), "build", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"kustomize build {path} failed:\n{result.stderr}"
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.fixture(scope="module")
def ecosystem_crds(control_plane: ControlPlane, xr_crds) -> None:
    """The Prometheus Operator's, Argo CD's and Flux's CRDs, from their modules."""
    crds = [d for key in ("PROMETHEUS_OPERATOR_CRDS", "ARGOCD_CRDS", "FLUX_CRDS")
            for path in sorted(peers.peer(key).glob("*.yaml")) for d in load_documents(path)]
    control_plane.apply_documents(crds)
    control_plane.wait_for_crds_established(crd["metadata"]["name"] for crd in crds)
    for namespace in (TOKEN_NAMESPACE, "argocd", "flux-system", "crossplane-system"):
        control_plane.ensure_namespace(namespace)


def dry_run_all(plane: ControlPlane, documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Server-side applies each document as a dry run (strict field
    validation); returns what the server would store."""
    for document in documents:
        if document["kind"] == "Namespace":
            plane.admin.apply(document)
    return [plane.admin.apply(document, dry_run=True) for document in documents]


def deployment_of(documents: list[dict[str, Any]]) -> dict[str, Any]:
    return next(d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == "signal-aggregator")


@pytest.mark.parametrize("overlay", sorted(REPLICAS))
def test_every_overlay_builds_and_the_api_server_accepts_every_object(control_plane, ecosystem_crds, overlay):
    documents = kustomize_build(OVERLAYS / overlay)
    stored = dry_run_all(control_plane, documents)
    assert len(stored) == len(documents)
    kinds = sorted({d["kind"] for d in documents})
    for kind in ("Deployment", "Service", "ServiceAccount", "ClusterRole", "Role", "PodDisruptionBudget",
                 "NetworkPolicy", "ServiceMonitor"):
        assert kind in kinds, (overlay, kinds)
    assert all(d["metadata"].get("namespace") in (None, TOKEN_NAMESPACE) for d in documents)

    deployment = deployment_of(stored)
    spec = deployment["spec"]
    assert spec["replicas"] == REPLICAS[overlay]
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["serviceAccountName"] == "signal-aggregator"
    assert "memory" in container["resources"]["limits"]
    assert len(pod["topologySpreadConstraints"]) == 2
    redis_backed = overlay != "embedded"
    assert any(a.startswith("--redis-url=") for a in container["args"]) == redis_backed
    env = {e["name"] for e in container.get("env", [])}
    assert ("SIGNAL_AGGREGATOR_WAL_DIR" in env) == redis_backed
    if redis_backed:
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/var/lib/signal-aggregator/wal" in mounts, "a read-only root needs the log on a volume"


@pytest.mark.parametrize("overlay", sorted(REPLICAS))
def test_every_overlay_ships_exactly_the_rbac_the_tests_run_under(overlay):
    shipped = {(d["kind"], d["metadata"]["name"]): d for d in load_documents(RBAC)}
    built = {(d["kind"], d["metadata"]["name"]): d for d in kustomize_build(OVERLAYS / overlay)
             if (d["kind"], d["metadata"]["name"]) in shipped}
    assert built.keys() == shipped.keys()
    for key, document in shipped.items():
        for field in ("rules", "roleRef", "subjects"):
            assert built[key].get(field) == document.get(field), (key, field)


def help_flags() -> set[str]:
    output = subprocess.run([str(cargo_bin("signal-aggregator")), "--help"], capture_output=True, text=True,
                            timeout=30).stdout
    return set(re.findall(r"^\s+(--[a-z0-9-]+)", output, re.MULTILINE))


@pytest.mark.parametrize("overlay", sorted(REPLICAS))
def test_every_flag_and_variable_in_the_manifests_is_one_the_binary_takes(overlay):
    container = deployment_of(kustomize_build(OVERLAYS / overlay))["spec"]["template"]["spec"]["containers"][0]
    flags = help_flags()
    for arg in container["args"]:
        assert arg.split("=", 1)[0] in flags, arg
    for variable in container.get("env", []):
        name = variable["name"]
        if name.startswith("SIGNAL_AGGREGATOR_"):
            assert "--" + name.removeprefix("SIGNAL_AGGREGATOR_").lower().replace("_", "-") in flags, name


def test_the_embedded_overlay_runs_as_shipped_against_the_api_server(control_plane, ecosystem_crds,
                                                                      aggregator_identity):
    """The Deployment's own args and env (addresses moved to free loopback
    ports), as its ServiceAccount: ready, and issuing tokens in its namespace."""
    container = deployment_of(kustomize_build(OVERLAYS / "embedded"))["spec"]["template"]["spec"]["containers"][0]
    args = [a for a in container["args"] if not a.startswith(("--otlp-grpc-addr", "--otlp-http-addr", "--api-addr"))]
    env = {"KUBECONFIG": str(aggregator_identity)}
    for variable in container["env"]:
        field = variable.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        env[variable["name"]] = TOKEN_NAMESPACE if field == "metadata.namespace" else variable["value"]
    cluster = {"apiVersion": "modelplane.ai/v1alpha1", "kind": "InferenceCluster",
               "metadata": {"name": "packaged"}, "spec": {"signals": {"kinds": [{"name": "Cost"}]}}}
    control_plane.admin.apply(cluster)
    try:
        with Aggregator(*args, env=env) as aggregator:
            assert aggregator.readyz()[0] == 200
            secret = control_plane.admin.wait_for("the token Secret in the Deployment's namespace", lambda: (
                control_plane.admin.request("GET", f"/api/v1/namespaces/{TOKEN_NAMESPACE}/secrets/signals-ingest-packaged",
                                            expect_ok=False).status_code == 200))
            assert secret
            log = aggregator.process.log_text()
            assert "Kubernetes: on" in log and '"level":"ERROR"' not in log
    finally:
        control_plane.admin.delete(cluster)


def gitops_documents() -> list[tuple[str, dict[str, Any]]]:
    return [(str(path.relative_to(GITOPS)), d) for path in sorted(GITOPS.rglob("*.yaml"))
            if path.name != "kustomization.yaml" for d in load_documents(path)]


def test_every_gitops_object_is_accepted_by_the_api_server(control_plane, ecosystem_crds):
    documents = gitops_documents()
    kinds = {d["kind"] for _, d in documents}
    assert {"Application", "GitRepository", "Kustomization", "Configuration", "InferenceCluster",
            "ModelService"} <= kinds, kinds
    stored = dry_run_all(control_plane, [d for _, d in documents])
    clusters = sorted(s["metadata"]["name"] for s in stored if s["kind"] == "InferenceCluster")
    tenants = sorted({s["metadata"]["namespace"] for s in stored if s["kind"] == "ModelService"})
    assert clusters == ["ap-south-1", "eu-west-1", "us-east-1"]
    assert tenants == ["team-a", "team-b"]


def test_gitops_paths_point_at_what_the_repository_holds(control_plane):
    """Every path an Application or Kustomization syncs exists and builds."""
    synced = []
    for _, document in gitops_documents():
        if document["kind"] == "Application":
            synced.append(document["spec"]["source"]["path"])
        elif document["kind"] == "Kustomization" and document["apiVersion"].startswith("kustomize.toolkit"):
            synced.append(document["spec"]["path"].removeprefix("./"))
    assert len(synced) == 6
    for path in synced:
        assert kustomize_build(REPO_ROOT / path), path


def test_the_prometheus_rule_is_accepted_by_the_api_server(control_plane, ecosystem_crds):
    """package/monitoring's PrometheusRule against the Prometheus Operator's
    own CRD (promtool checks the expressions in test/monitoring)."""
    path = REPO_ROOT / "package" / "monitoring" / "alerts" / "prometheusrule.yaml"
    (rule,) = load_documents(path)
    rule["metadata"]["namespace"] = "modelplane-system"
    control_plane.ensure_namespace("modelplane-system")
    (stored,) = dry_run_all(control_plane, [rule])
    alerts = [r["alert"] for group in stored["spec"]["groups"] for r in group["rules"] if "alert" in r]
    source = yaml.safe_load((path.parent / "rules.yaml").read_text())
    assert alerts == [r["alert"] for group in source["groups"] for r in group["rules"] if "alert" in r]
    assert len(alerts) >= 9
