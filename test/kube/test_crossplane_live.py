"""Crossplane composing for real: Crossplane core runs against the test API
server and calls function-signals over mTLS (a FunctionRevision whose
endpoint is the running function, as Crossplane's package manager would
leave it; the package itself cannot be pulled here), signal-aggregator runs
beside it as its ServiceAccount, and `crossplane resource trace` shows what a
user sees. No kubelet runs, so composed Deployments never become available."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

from harness import peers
from harness.aggregator import Aggregator
from harness.binaries import REPO_ROOT, cargo_bin
from harness.kube import ControlPlane, load_documents
from harness.procs import Process, free_port

from .conftest import TOKEN_NAMESPACE

FUNCTION = "function-signals"


def tls_dir(plane: ControlPlane, workdir: Path, name: str, server: bool) -> Path:
    """tls.crt, tls.key and ca.crt, as Crossplane and the function read them."""
    directory = workdir / name
    directory.mkdir()
    cert, key = plane.ca.issue(name, name, server=server)
    shutil.copy(cert, directory / "tls.crt")
    shutil.copy(key, directory / "tls.key")
    shutil.copy(plane.ca.cert_path, directory / "ca.crt")
    return directory


@pytest.fixture(scope="module")
def crossplane(control_plane: ControlPlane, xr_crds, tmp_path_factory) -> Iterator[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("crossplane-live")
    function_port = free_port()
    function = Process([cargo_bin(FUNCTION), "--address", f"127.0.0.1:{function_port}",
                        "--tls-certs-dir", tls_dir(control_plane, workdir, "function", server=True),
                        "--metrics-address", ""], name=FUNCTION)
    core = Process([
        peers.crossplane_core(), "core", "start",
        "--tls-client-certs-dir", tls_dir(control_plane, workdir, "crossplane-client", server=False),
        "--tls-server-certs-dir", tls_dir(control_plane, workdir, "crossplane-server", server=True),
        "--xpkg-cache-dir", workdir / "xpkg", "--metrics-port", str(free_port()),
        "--health-probe-port", str(free_port()),
    ], env={"KUBECONFIG": str(control_plane.kubeconfig_path("admin"))}, name="crossplane-core")
    with function, core:
        function.wait_for_port(function_port)
        revision = {"apiVersion": "pkg.crossplane.io/v1", "kind": "FunctionRevision",
                    "metadata": {"name": f"{FUNCTION}-local", "labels": {"pkg.crossplane.io/package": FUNCTION}},
                    "spec": {"desiredState": "Active", "revision": 1,
                             "image": "xpkg.crossplane.io/modelplane/function-signals:v0.1.0"}}
        control_plane.admin.apply(revision)
        control_plane.admin.apply({**{k: revision[k] for k in ("apiVersion", "kind")},
                                   "metadata": {"name": revision["metadata"]["name"]},
                                   "status": {"endpoint": f"127.0.0.1:{function_port}",
                                              "capabilities": ["composition"]}}, subresource="status")
        composition = load_documents(REPO_ROOT / "examples" / "composition.yaml")[0]
        composition = copy.deepcopy(composition)
        composition["spec"]["pipeline"][0]["input"]["mode"] = "SingleCluster"
        control_plane.admin.apply(composition)
        control_plane.ensure_namespace(TOKEN_NAMESPACE)
        yield {"core": core, "function": function}


def trace(plane: ControlPlane, *args: str) -> str:
    result = subprocess.run([str(peers.crossplane()), "resource", "trace", *args],
                            env={**os.environ, "KUBECONFIG": str(plane.kubeconfig_path("admin"))},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == kind), {})


def test_crossplane_composes_the_agent_with_the_token_the_aggregator_issued(
        control_plane, crossplane, aggregator_identity):
    xr = {"apiVersion": "modelplane.ai/v1alpha1", "kind": "InferenceCluster", "metadata": {"name": "live"},
          "spec": {"signals": {"kinds": [{"name": "RequestLifecycle", "sampleRate": 0.5}, {"name": "Reliability"}],
                               "aggregator": {"insecure": True}}}}
    with Aggregator("--kube", "on", "--kubeconfig", str(aggregator_identity), "--token-namespace", TOKEN_NAMESPACE,
                    "--status-interval", "1s", "--status-min-interval", "1s", replica_id="live") as aggregator:
        control_plane.admin.apply(xr)
        try:
            # The aggregator issues the token and reports it; the function waits
            # for that report, then Crossplane composes the agent reading it.
            deployment = control_plane.admin.wait_for("the composed agent Deployment", lambda: (
                r := control_plane.admin.request("GET", f"/apis/apps/v1/namespaces/{TOKEN_NAMESPACE}/deployments/signals-agent",
                                                 expect_ok=False)).status_code == 200 and r.json(), timeout=90)
            pod = deployment["spec"]["template"]
            env = {e["name"]: e for e in pod["spec"]["containers"][0].get("env", [])}
            assert env["MODELPLANE_INGEST_TOKEN"]["valueFrom"]["secretKeyRef"] == {
                "name": "signals-ingest-live", "key": "token", "optional": False}
            secret = control_plane.admin.get(f"/api/v1/namespaces/{TOKEN_NAMESPACE}/secrets/signals-ingest-live")
            generation = secret["metadata"]["annotations"]["signals.modelplane.ai/token-generation"]
            assert generation in str(pod["metadata"].get("annotations", {})), pod["metadata"]

            # Everything but the Deployment turns ready (no kubelet runs its pods).
            stored = control_plane.admin.wait_for("Crossplane's verdict", lambda: (
                s := control_plane.admin.get_object(xr)) and condition(s, "Ready").get("message") ==
                "Unready resources: signals-agent-deployment" and s, timeout=60)
            assert condition(stored, "Synced")["status"] == "True"
            assert condition(stored, "Ready")["status"] == "False"
            # Both write the status: Crossplane's conditions and the function's
            # enabledKinds beside the aggregator's token report and signals.
            control_plane.admin.wait_for("the aggregator's status beside Crossplane's", lambda: "agentReporting" in
                                         control_plane.admin.get_object(xr).get("status", {}).get("signals", {}))
            signals = control_plane.admin.get_object(xr)["status"]["signals"]
            assert signals["enabledKinds"] == ["RequestLifecycle", "Reliability"], signals
            assert signals["ingestToken"]["secretName"] == "signals-ingest-live", signals
            assert signals["agentReporting"] is False, signals

            tree = trace(control_plane, "inferencecluster", "live")
            lines = [re.search(r"[A-Za-z]+/[a-z0-9.-]+", line).group(0) for line in tree.splitlines()[1:]
                     if line.strip()]
            assert lines[0] == "InferenceCluster/live", tree
            assert sorted(lines[1:]) == sorted([
                "ClusterRole/signals-agent-modelplane-system", "ClusterRoleBinding/signals-agent-modelplane-system",
                "ConfigMap/signals-agent-config", "Deployment/signals-agent", "Service/signals-agent",
                "ServiceAccount/signals-agent",
            ]), tree
            assert "Unready resources: signals-agent-deployment" in tree.splitlines()[1], tree
            assert '"level":"ERROR"' not in aggregator.process.log_text()
        finally:
            control_plane.admin.delete(xr)
