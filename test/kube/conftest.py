"""One real control plane for every test in test/kube/ (start-up is the slow
part): etcd, kube-apiserver and kube-controller-manager, the XRDs turned into
CRDs by Crossplane core itself, and the aggregator's shipped RBAC."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Iterator

import pytest

from harness import peers
from harness.binaries import REPO_ROOT
from harness.kube import ControlPlane, load_documents
from harness.procs import Process, free_port

XRDS = REPO_ROOT / "apis" / "xrds"
RBAC = REPO_ROOT / "package" / "aggregator" / "base" / "rbac.yaml"
TOKEN_NAMESPACE = "modelplane-system"
XR_CRDS = ("inferenceclusters.modelplane.ai", "modelservices.modelplane.ai")


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory) -> Iterator[ControlPlane]:
    plane = ControlPlane(tmp_path_factory.mktemp("control-plane"))
    try:
        plane.start()
        timings = ", ".join(f"{k} {v:.1f}s" for k, v in plane.startup_seconds.items())
        print(f"\ncontrol plane up: {timings}")
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def xr_crds(control_plane: ControlPlane, tmp_path_factory) -> dict[str, dict]:
    """The CRDs Crossplane's own XRD controller generates from apis/xrds/:
    with Crossplane's CRDs installed, `crossplane core start` (out of cluster,
    webhooks off) reconciles our XRDs into CRDs; it is stopped once they are
    established. Returns them by name."""
    workdir = tmp_path_factory.mktemp("crossplane")
    env = {"KUBECONFIG": str(control_plane.kubeconfig_path("admin"))}
    # What `crossplane core init` installs first (it also provisions webhook
    # TLS Secrets, which nothing here uses): Crossplane's CRDs from its module.
    crossplane_crds = [d for path in sorted(peers.peer("CROSSPLANE_CRDS").glob("*.yaml"))
                       for d in load_documents(path)]
    control_plane.apply_documents(crossplane_crds)
    control_plane.wait_for_crds_established(crd["metadata"]["name"] for crd in crossplane_crds)
    # Crossplane loads its function-client and webhook-server certificates
    # at start even when no function runs; one CA signs both.
    certs = {}
    for role in ("client", "server"):
        directory = workdir / f"tls-{role}"
        directory.mkdir()
        cert, key = control_plane.ca.issue(f"crossplane-{role}", f"crossplane-{role}")
        shutil.copy(cert, directory / "tls.crt")
        shutil.copy(key, directory / "tls.key")
        shutil.copy(control_plane.ca.cert_path, directory / "ca.crt")
        certs[role] = directory
    core = Process([
        peers.crossplane_core(), "core", "start",
        "--tls-client-certs-dir", certs["client"], "--tls-server-certs-dir", certs["server"],
        "--xpkg-cache-dir", workdir / "xpkg", "--metrics-port", str(free_port()),
        "--health-probe-port", str(free_port()),
    ], env=env, name="crossplane-core")
    started = time.monotonic()
    with core:
        control_plane.apply_documents(d for path in sorted(XRDS.glob("*.yaml")) for d in load_documents(path))
        control_plane.wait_for_crds_established(XR_CRDS, timeout=120)
    print(f"\nXRDs served as CRDs by Crossplane core in {time.monotonic() - started:.1f}s")
    return {
        name: control_plane.admin.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        for name in XR_CRDS
    }


@pytest.fixture(scope="session")
def aggregator_identity(control_plane: ControlPlane, xr_crds) -> Path:
    """Applies the shipped RBAC and returns a kubeconfig for the aggregator's
    ServiceAccount (a real token from the TokenRequest API)."""
    control_plane.ensure_namespace(TOKEN_NAMESPACE)
    control_plane.apply_documents(load_documents(RBAC))
    _, kubeconfig = control_plane.service_account(TOKEN_NAMESPACE, "signal-aggregator")
    return kubeconfig
