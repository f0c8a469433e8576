"""Run the real Crossplane CLI (test/peers/build.sh builds it) and read what it prints."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness import peers
from harness.binaries import REPO_ROOT

EXAMPLES = REPO_ROOT / "examples"
XRDS = REPO_ROOT / "apis" / "xrds"
PACKAGE = REPO_ROOT / "package"
RESOURCE_NAME_ANNOTATION = "crossplane.io/composition-resource-name"
DEV_RUNTIME = "render.crossplane.io/runtime"
DEV_TARGET = "render.crossplane.io/runtime-development-target"


@dataclass
class Run:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    def documents(self) -> list[dict[str, Any]]:
        return [d for d in yaml.safe_load_all(self.stdout) if d is not None]

    def explain(self) -> str:
        return f"$ {' '.join(self.argv)}\nexit {self.returncode}\n--- stdout ---\n{self.stdout[-6000:]}\n--- stderr ---\n{self.stderr[-6000:]}"


def crossplane(*args: str | Path, cwd: Path | None = None, timeout: float = 120) -> Run:
    """Runs the Crossplane CLI. HOME is left alone, but every command the
    tests use takes its cache and config paths as flags."""
    argv = [str(peers.crossplane()), *map(str, args)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    return Run(argv, result.returncode, result.stdout, result.stderr)


def function_object(name: str, target: str) -> dict[str, Any]:
    """A Function that `composition render` reaches at `target` instead of
    pulling and running its package image (the Development runtime)."""
    return {
        "apiVersion": "pkg.crossplane.io/v1",
        "kind": "Function",
        "metadata": {"name": name, "annotations": {DEV_RUNTIME: "Development", DEV_TARGET: target}},
        "spec": {"package": f"xpkg.crossplane.io/modelplane/{name}:v0.1.0"},
    }


def write_yaml(path: Path, *docs: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def load_yaml(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def render(
    xr: Path,
    composition: Path,
    functions: Path,
    *,
    observed: Path | None = None,
    results: bool = True,
    extra: tuple[str, ...] = (),
) -> Run:
    """`crossplane composition render` with the real Crossplane core binary as
    the render engine (no Docker); with `results`, the events (function
    results and Crossplane's own) as Result documents."""
    args: list[str | Path] = [
        "composition", "render", xr, composition, functions,
        f"--crossplane-binary={peers.crossplane_core()}",
    ]
    if results:
        args.append("--include-function-results")
    if observed is not None:
        args.append(f"--observed-resources={observed}")
    return crossplane(*args, *extra)


def by_resource_name(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Composed resources of a render output keyed by composition resource name."""
    out = {}
    for doc in docs:
        name = doc.get("metadata", {}).get("annotations", {}).get(RESOURCE_NAME_ANNOTATION)
        if name is not None:
            out[name] = doc
    return out


def validate(extensions: list[Path], resources: list[Path], tmp_path: Path, *flags: str) -> tuple[int, dict[str, Any]]:
    """`crossplane resource validate` offline (no Crossplane image pulled for
    built-in schemas, a per-test cache dir): its exit status and JSON report."""
    run = crossplane(
        "resource", "validate",
        "--crossplane-image=",
        f"--cache-dir={tmp_path / 'validate-cache'}",
        "--output=json",
        *flags,
        ",".join(map(str, extensions)),
        ",".join(map(str, resources)),
    )
    assert run.stdout.strip(), run.explain()
    return run.returncode, json.loads(run.stdout)
