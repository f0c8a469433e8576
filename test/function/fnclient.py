"""Drive function-signals the way Crossplane (and `crossplane render`) does.

Requests are built from YAML documents: the XR becomes observed.composite,
the step input becomes input, observed composed resources are keyed by their
crossplane.io/composition-resource-name annotation.
"""

from __future__ import annotations

import contextlib
import copy
import subprocess
from pathlib import Path
from typing import Any, Iterator

import grpc
import yaml
from crossplane.function import resource
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from crossplane.function.proto.v1 import run_function_pb2_grpc as fngrpc
from google.protobuf import json_format

from harness.binaries import REPO_ROOT, cargo_bin
from harness.procs import Process, free_port

BINARY = "function-signals"
RESOURCE_NAME_ANNOTATION = "crossplane.io/composition-resource-name"
OBJECT_API_VERSION = "kubernetes.m.crossplane.io/v1alpha1"
INPUT_API_VERSION = "signals.fn.modelplane.ai/v1beta1"
FIXTURES = REPO_ROOT / "apis" / "tests" / "fixtures"
EXAMPLES = REPO_ROOT / "examples"


def load_yaml(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def load_one(path: Path) -> dict[str, Any]:
    docs = load_yaml(path)
    assert len(docs) == 1, f"{path} must hold one document"
    return docs[0]


class RenderCase:
    """One `render` input: an XR plus, for examples/<case>/, the step input,
    the observed resources (observed/*.yaml) and the golden expected.yaml."""

    def __init__(self, xr: Path) -> None:
        self.xr = xr
        self.id = str(xr.relative_to(REPO_ROOT))
        case = xr.parent
        is_example = case.parent == EXAMPLES
        self.input = case / "input.yaml" if is_example and (case / "input.yaml").is_file() else None
        self.observed_dir = case / "observed" if is_example and (case / "observed").is_dir() else None
        self.expected = case / "expected.yaml" if is_example and (case / "expected.yaml").is_file() else None

    def observed(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        if self.observed_dir is not None:
            for path in sorted(self.observed_dir.glob("*.y*ml")):
                for doc in load_yaml(path):
                    out[doc["metadata"]["annotations"][RESOURCE_NAME_ANNOTATION]] = doc
        return out

    def request(self, tag: str = "") -> "fnv1.RunFunctionRequest":
        step_input = load_one(self.input) if self.input else None
        return request(load_one(self.xr), tag=tag, step_input=step_input, observed=self.observed())

    def render_argv(self) -> list[str]:
        argv = [str(self.xr)]
        if self.input:
            argv += ["--input", str(self.input)]
        if self.observed_dir:
            argv += ["--observed", str(self.observed_dir)]
        return argv


def render_cases() -> list[RenderCase]:
    """examples/*/xr.yaml and every XR fixture of the apis crate."""
    cases = [RenderCase(p) for p in sorted(EXAMPLES.glob("*/xr.yaml"))]
    cases += [RenderCase(p) for p in sorted(FIXTURES.glob("*.yaml"))]
    return cases


def request(
    xr: dict[str, Any],
    *,
    tag: str = "",
    step_input: dict[str, Any] | None = None,
    observed: dict[str, dict[str, Any]] | None = None,
    desired: dict[str, dict[str, Any]] | None = None,
    desired_composite: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
) -> fnv1.RunFunctionRequest:
    req = fnv1.RunFunctionRequest(
        meta=fnv1.RequestMeta(tag=tag),
        observed=fnv1.State(composite=fnv1.Resource(resource=resource.dict_to_struct(xr))),
    )
    if step_input is not None:
        req.input.CopyFrom(resource.dict_to_struct(step_input))
    for key, obj in (observed or {}).items():
        req.observed.resources[key].resource.CopyFrom(resource.dict_to_struct(obj))
    for key, obj in (desired or {}).items():
        req.desired.resources[key].resource.CopyFrom(resource.dict_to_struct(obj))
    if desired_composite is not None:
        req.desired.composite.resource.CopyFrom(resource.dict_to_struct(desired_composite))
    if context is not None:
        req.context.CopyFrom(resource.dict_to_struct(context))
    return req


def single_cluster_input(**extra: Any) -> dict[str, Any]:
    return {"apiVersion": INPUT_API_VERSION, "kind": "Input", "mode": "SingleCluster", **extra}


def desired_resources(rsp: fnv1.RunFunctionResponse) -> dict[str, dict[str, Any]]:
    return {k: resource.struct_to_dict(v.resource) for k, v in rsp.desired.resources.items()}


def manifest(obj: dict[str, Any]) -> dict[str, Any]:
    """The Kubernetes manifest a desired resource stands for (unwrapping a
    provider-kubernetes Object)."""
    if obj.get("kind") == "Object" and obj.get("apiVersion") == OBJECT_API_VERSION:
        return obj["spec"]["forProvider"]["manifest"]
    return obj


def manifests_by_kind(rsp: fnv1.RunFunctionResponse) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for obj in desired_resources(rsp).values():
        m = manifest(obj)
        out.setdefault(m["kind"], []).append(m)
    return out


def fatal_results(rsp: fnv1.RunFunctionResponse) -> list[fnv1.Result]:
    return [r for r in rsp.results if r.severity == fnv1.SEVERITY_FATAL]


def condition(rsp: fnv1.RunFunctionResponse, typ: str) -> fnv1.Condition:
    matches = [c for c in rsp.conditions if c.type == typ]
    assert len(matches) == 1, f"want one {typ} condition, got {list(rsp.conditions)}"
    return matches[0]


SYSTEM_CONDITIONS = {"Ready", "Synced", "Healthy", "UpToDate", "Responsive"}
COMPOSITE_LABEL = "crossplane.io/composite"


def function_view_of_render(printed: list[dict[str, Any]], rsp: fnv1.RunFunctionResponse) -> list[dict[str, Any]]:
    """`function-signals render` output with what Crossplane's reconciler adds
    taken away (resource references, its own conditions and condition times,
    generated names, the composite label, the controller reference), so it
    can be compared with the function's gRPC response. What is added is
    checked against the real CLI in test/crossplane_cli/."""
    xr, *composed = copy.deepcopy(printed)
    xr.pop("spec", None)
    status = xr.get("status", {})
    conditions = [
        {k: v for k, v in c.items() if k != "lastTransitionTime"}
        for c in status.pop("conditions", [])
        if c["type"] not in SYSTEM_CONDITIONS
    ]
    if conditions:
        status["conditions"] = conditions
    if not status:
        xr.pop("status", None)
    out = [xr]
    for doc in composed:
        meta = doc["metadata"]
        key = meta["annotations"].pop(RESOURCE_NAME_ANNOTATION)
        if not meta["annotations"]:
            del meta["annotations"]
        desired = resource.struct_to_dict(rsp.desired.resources[key].resource).get("metadata", {})
        for field in ("generateName", "ownerReferences"):
            meta.pop(field, None)
        for field in ("name", "namespace"):
            if field not in desired:
                meta.pop(field, None)
        meta.get("labels", {}).pop(COMPOSITE_LABEL, None)
        if "labels" in meta and not meta["labels"]:
            del meta["labels"]
        out.append(doc)
    return out


def response_as_function_view(req: fnv1.RunFunctionRequest, rsp: fnv1.RunFunctionResponse) -> list[dict[str, Any]]:
    """The gRPC response in the shape of function_view_of_render: the XR's
    identity, desired status and the function's conditions, then the desired
    composed resources by name."""
    observed = resource.struct_to_dict(req.observed.composite.resource)
    xr: dict[str, Any] = {"apiVersion": observed["apiVersion"], "kind": observed["kind"], "metadata": {}}
    for field in ("name", "namespace"):
        if field in observed.get("metadata", {}):
            xr["metadata"][field] = observed["metadata"][field]
    desired_xr = resource.struct_to_dict(rsp.desired.composite.resource)
    if "status" in desired_xr:
        xr["status"] = desired_xr["status"]
    if rsp.conditions:
        names = {fnv1.STATUS_CONDITION_TRUE: "True", fnv1.STATUS_CONDITION_FALSE: "False"}
        conditions = []
        for c in rsp.conditions:
            doc = {"type": c.type, "status": names.get(c.status, "Unknown"), "reason": c.reason}
            if c.HasField("message"):
                doc["message"] = c.message
            conditions.append(doc)
        xr.setdefault("status", {})["conditions"] = conditions
    docs = [xr]
    for key in sorted(rsp.desired.resources):
        docs.append(resource.struct_to_dict(rsp.desired.resources[key].resource))
    return docs


def run_render(*args: str | Path) -> tuple[int, list[dict[str, Any]], str]:
    """Runs `function-signals render ARGS`: (exit status, printed documents, stderr)."""
    argv = [str(cargo_bin(BINARY)), "render", *map(str, args)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    docs = [d for d in yaml.safe_load_all(result.stdout) if d is not None] if result.stdout else []
    return result.returncode, docs, result.stderr


def to_json(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message)


class FunctionServer:
    """A running function-signals process and a client for it."""

    def __init__(self, *extra_args: str, env: dict[str, str] | None = None, insecure: bool = True) -> None:
        self.port = free_port()
        self.metrics_port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        argv = [
            str(cargo_bin(BINARY)),
            "--address", self.address,
            "--metrics-address", f"127.0.0.1:{self.metrics_port}",
            *(["--insecure"] if insecure else []),
            *extra_args,
        ]
        self.process = Process(argv, env=env, name=BINARY)

    def __enter__(self) -> "FunctionServer":
        self.process.start()
        self.process.wait_for_port(self.port, timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.stop()

    @contextlib.contextmanager
    def channel(self) -> Iterator[grpc.Channel]:
        with grpc.insecure_channel(self.address) as ch:
            grpc.channel_ready_future(ch).result(timeout=10)
            yield ch

    def run(self, req: fnv1.RunFunctionRequest) -> fnv1.RunFunctionResponse:
        with self.channel() as ch:
            return fngrpc.FunctionRunnerServiceStub(ch).RunFunction(req, timeout=10)
