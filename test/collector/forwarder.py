"""What `function-signals render` gives a ModelService's trace forwarder: its
collector config and Deployment, and the same local recreation of the pod
(`RenderedAgent.local_pod`) the agent tests use."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .rendered import EXAMPLES, CONFIG_KEY, RenderedAgent, find_manifest, render_documents

FORWARDER_APP = "signals-trace-forwarder"
MODEL_SERVICE_EXAMPLES = sorted(
    p.parent for p in EXAMPLES.glob("*/xr.yaml") if "kind: ModelService" in p.read_text()
)


@dataclass(frozen=True)
class RenderedForwarder(RenderedAgent):
    """A forwarder: like the agent, except that its ConfigMap is named after
    the ModelService (`traces-<name>`)."""

    @property
    def config_map_name(self) -> str:
        return self.deployment["metadata"]["name"]

    @property
    def config_mount_path(self) -> str:
        volumes = self.deployment["spec"]["template"]["spec"]["volumes"]
        config_volumes = {v["name"] for v in volumes if v.get("configMap", {}).get("name") == self.config_map_name}
        mounts = [m["mountPath"] for m in self.container["volumeMounts"] if m["name"] in config_volumes]
        assert len(mounts) == 1, f"want one mount of {self.config_map_name}, got {mounts}"
        return mounts[0].rstrip("/")


def forwarder_from_documents(documents: list[dict[str, Any]]) -> RenderedForwarder | None:
    deployments = [
        d
        for d in documents
        if d.get("kind") == "Deployment"
        and d.get("metadata", {}).get("labels", {}).get("app.kubernetes.io/name") == FORWARDER_APP
    ]
    if not deployments:
        return None
    assert len(deployments) == 1, f"{len(deployments)} forwarders rendered"
    deployment = deployments[0]
    config_map = find_manifest(documents, "ConfigMap", deployment["metadata"]["name"])
    assert config_map is not None, "a forwarder Deployment without its ConfigMap"
    return RenderedForwarder(config_text=config_map["data"][CONFIG_KEY], deployment=deployment)


def render_forwarder(xr: dict[str, Any], workdir: Path, *, observed: Path | None = None) -> RenderedForwarder:
    workdir.mkdir(parents=True, exist_ok=True)
    xr_path = workdir / "xr.yaml"
    xr_path.write_text(yaml.safe_dump(xr, sort_keys=False))
    forwarder = forwarder_from_documents(render_documents(xr_path, observed=observed))
    assert forwarder is not None, f"no forwarder rendered for {xr_path}"
    return forwarder


def model_service(name: str, namespace: str, traces: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "modelplane.ai/v1alpha1",
        "kind": "ModelService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"observability": {"traces": copy.deepcopy(traces)}},
    }
