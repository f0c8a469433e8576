"""What `function-signals render` gives the collector: the agent's config
text and the environment its Deployment sets, pulled out of the rendered
documents whichever mode rendered them.

SingleCluster renders plain manifests; MultiCluster wraps each one in a
provider-kubernetes Object (`spec.forProvider.manifest`). Both are unwrapped
here so a test never depends on the mode to find the agent.
"""

from __future__ import annotations

import copy
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.binaries import REPO_ROOT, cargo_bin

EXAMPLES = REPO_ROOT / "examples"
FULL_CLUSTER_XR = EXAMPLES / "ic-full" / "xr.yaml"
INPUT_API_VERSION = "signals.fn.modelplane.ai/v1beta1"
OBJECT_API_VERSION = "kubernetes.m.crossplane.io/v1alpha1"
AGENT_CONFIG_MAP = "signals-agent-config"
AGENT_DEPLOYMENT = "signals-agent"
CONFIG_KEY = "collector.yaml"
SIGNAL_KINDS = ("RequestLifecycle", "PrefixHash", "Capacity", "ColdStart", "Cost", "Reliability")
MODES = ("SingleCluster", "MultiCluster")
COMPONENT_CLASSES = ("receivers", "processors", "exporters", "extensions", "connectors")

# What the kubelet would put in env vars the Deployment fills from the pod or
# a Secret. Only shapes matter to a collector that is validated or run
# locally: an address it can bind and a token it sends as-is.
LOCAL_POD_IP = "127.0.0.1"
PLACEHOLDER_TOKEN = "test-ingest-token"
PLACEHOLDER_SERVICE_ACCOUNT_TOKEN = "test-service-account-token"
# Where the kubelet mounts the pod's service-account token when
# automountServiceAccountToken is on; the EPP scrape job reads it.
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


class RenderFailed(AssertionError):
    pass


def render_documents(xr: Path, *, step_input: Path | None = None, observed: Path | None = None) -> list[dict[str, Any]]:
    """`function-signals render` of these files, as parsed documents. A
    non-zero exit (a Fatal result, an unreadable file) raises."""
    argv = [str(cargo_bin("function-signals")), "render", str(xr)]
    if step_input is not None:
        argv += ["--input", str(step_input)]
    if observed is not None:
        argv += ["--observed", str(observed)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RenderFailed(f"{' '.join(argv)} exited {result.returncode}:\n{result.stderr}\n{result.stdout[-4000:]}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]


def manifest(document: dict[str, Any]) -> dict[str, Any]:
    """The Kubernetes manifest a rendered document stands for."""
    if document.get("kind") == "Object" and document.get("apiVersion") == OBJECT_API_VERSION:
        return document["spec"]["forProvider"]["manifest"]
    return document


def find_manifest(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any] | None:
    matches = [
        m
        for m in map(manifest, documents)
        if m.get("kind") == kind and m.get("metadata", {}).get("name") == name
    ]
    if len(matches) > 1:
        raise AssertionError(f"{len(matches)} {kind}s named {name} rendered")
    return matches[0] if matches else None


@dataclass(frozen=True)
class RenderedAgent:
    """The collector half of a rendered agent: its config and its container."""

    config_text: str
    deployment: dict[str, Any]

    @property
    def config(self) -> dict[str, Any]:
        return yaml.safe_load(self.config_text)

    @property
    def container(self) -> dict[str, Any]:
        containers = self.deployment["spec"]["template"]["spec"]["containers"]
        assert len(containers) == 1, f"the agent pod has one container, got {[c['name'] for c in containers]}"
        return containers[0]

    @property
    def config_mount_path(self) -> str:
        """Where the pod mounts the ConfigMap holding collector.yaml."""
        volumes = self.deployment["spec"]["template"]["spec"]["volumes"]
        config_volumes = {v["name"] for v in volumes if v.get("configMap", {}).get("name") == AGENT_CONFIG_MAP}
        mounts = [m["mountPath"] for m in self.container["volumeMounts"] if m["name"] in config_volumes]
        assert len(mounts) == 1, f"want one mount of {AGENT_CONFIG_MAP}, got {mounts}"
        return mounts[0].rstrip("/")

    def env(self, *, pod_ip: str = LOCAL_POD_IP, token: str = PLACEHOLDER_TOKEN) -> dict[str, str]:
        """The container's environment as the kubelet would set it, with the
        pod IP and the Secret's value replaced by local stand-ins."""
        env: dict[str, str] = {}
        for var in self.container.get("env", []):
            if "value" in var:
                env[var["name"]] = str(var["value"])
            elif var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "status.podIP":
                env[var["name"]] = pod_ip
            elif "secretKeyRef" in var.get("valueFrom", {}):
                env[var["name"]] = token
            else:
                # A new kind of env source needs a deliberate stand-in here,
                # not a silent empty value the collector would accept.
                raise AssertionError(f"no local stand-in for env var {var}")
        return env

    def local_pod(self, root: Path, *, pod_ip: str = LOCAL_POD_IP, token: str = PLACEHOLDER_TOKEN) -> "LocalPod":
        """The container's files, args and env recreated under `root`, so
        the collector can run outside a pod.

        The kubelet's mounts become directories under `root` (the ConfigMap,
        and the service-account token when the pod automounts it); every
        reference to a mount path in the config and the args is moved to its
        local copy. Nothing else in the config changes.
        """
        mounts = {self.config_mount_path: root / "conf"}
        pod_spec = self.deployment["spec"]["template"]["spec"]
        if pod_spec.get("automountServiceAccountToken", True):
            mounts[SERVICE_ACCOUNT_DIR] = root / "serviceaccount"
        for local in mounts.values():
            local.mkdir(parents=True, exist_ok=True)
        if SERVICE_ACCOUNT_DIR in mounts:
            (mounts[SERVICE_ACCOUNT_DIR] / "token").write_text(PLACEHOLDER_SERVICE_ACCOUNT_TOKEN)
            (mounts[SERVICE_ACCOUNT_DIR] / "namespace").write_text(self.deployment["metadata"]["namespace"])

        def localize(text: str) -> str:
            for pod_path, local in mounts.items():
                text = text.replace(pod_path + "/", f"{local}/")
            return text

        config_path = mounts[self.config_mount_path] / CONFIG_KEY
        config_path.write_text(localize(self.config_text))
        return LocalPod(
            config_path=config_path,
            args=[localize(arg) for arg in self.container["args"]],
            env=self.env(pod_ip=pod_ip, token=token),
        )


@dataclass(frozen=True)
class LocalPod:
    """What `RenderedAgent.local_pod` set up: run the collector with `args`
    and exactly `env`."""

    config_path: Path
    args: list[str]
    env: dict[str, str]


def agent_from_documents(documents: list[dict[str, Any]]) -> RenderedAgent | None:
    """The agent in rendered documents, or None when nothing was rendered
    for it (signals disabled, waiting for a ProviderConfig, a ModelService)."""
    config_map = find_manifest(documents, "ConfigMap", AGENT_CONFIG_MAP)
    deployment = find_manifest(documents, "Deployment", AGENT_DEPLOYMENT)
    if config_map is None and deployment is None:
        return None
    assert config_map is not None and deployment is not None, "a ConfigMap without a Deployment or the reverse"
    return RenderedAgent(config_text=config_map["data"][CONFIG_KEY], deployment=deployment)


def step_input(mode: str, **fields: Any) -> dict[str, Any]:
    return {"apiVersion": INPUT_API_VERSION, "kind": "Input", "mode": mode, **fields}


def render_agent(xr: dict[str, Any], *, mode: str, workdir: Path, input_fields: dict[str, Any] | None = None) -> RenderedAgent:
    """Renders an XR given as a dict, in `mode`, and returns its agent;
    raises when no agent is rendered."""
    workdir.mkdir(parents=True, exist_ok=True)
    xr_path = workdir / "xr.yaml"
    xr_path.write_text(yaml.safe_dump(xr, sort_keys=False))
    input_path = workdir / "input.yaml"
    input_path.write_text(yaml.safe_dump(step_input(mode, **(input_fields or {})), sort_keys=False))
    agent = agent_from_documents(render_documents(xr_path, step_input=input_path))
    if agent is None:
        raise RenderFailed(f"no {AGENT_CONFIG_MAP} rendered for {xr_path} in {mode} mode")
    return agent


def full_cluster_xr() -> dict[str, Any]:
    """examples/ic-full/xr.yaml: all six kinds, split span sampling, Fleet
    scope, two scraped namespaces, an explicit aggregator and token Secret."""
    return yaml.safe_load(FULL_CLUSTER_XR.read_text())


def with_kinds(xr: dict[str, Any], kinds: list[str]) -> dict[str, Any]:
    """The XR with spec.signals.kinds cut down to `kinds`, each keeping the
    policy (sample rate) the XR gave it."""
    out = copy.deepcopy(xr)
    policies = {k["name"]: k for k in out["spec"]["signals"]["kinds"]}
    out["spec"]["signals"]["kinds"] = [copy.deepcopy(policies.get(name, {"name": name})) for name in kinds]
    return out


def component_type(component_id: str) -> str:
    """`k8s_attributes/team-a` -> `k8s_attributes`."""
    return component_id.split("/", 1)[0]


def component_types(config: dict[str, Any]) -> dict[str, set[str]]:
    """The component types a config defines, by class."""
    return {cls: {component_type(i) for i in (config.get(cls) or {})} for cls in COMPONENT_CLASSES}
