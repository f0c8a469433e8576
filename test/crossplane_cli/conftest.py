from __future__ import annotations

import sys
from pathlib import Path

import pytest

from function.fnclient import FunctionServer
from harness import peers
from harness.procs import Process, free_port

from .xp import EXAMPLES, Run, function_object, load_yaml, render, write_yaml


@pytest.fixture(scope="session")
def signals_fn():
    """function-signals serving plaintext gRPC, as `crossplane composition
    render`'s Development runtime expects; shared by every render test."""
    with FunctionServer() as srv:
        yield srv


def serve(argv: list, name: str, port: int) -> Process:
    proc = Process(argv, name=name)
    proc.start()
    try:
        proc.wait_for_port(port, timeout=30)
    except BaseException:
        proc.stop()
        raise
    return proc


@pytest.fixture(scope="session")
def auto_ready_fn():
    """function-auto-ready, the second real function, served plaintext the
    same way: its address as host:port."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    proc = serve([peers.function_auto_ready(), "--insecure", f"--address={address}"], "function-auto-ready", port)
    yield address
    proc.stop()


@pytest.fixture(scope="session")
def cluster_access_fn():
    """pipeline/cluster_access_fn.py (the step Modelplane runs before
    function-signals), served plaintext: its address."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    script = Path(__file__).parent / "pipeline" / "cluster_access_fn.py"
    proc = serve([sys.executable, script, address], "function-cluster-access", port)
    yield address
    proc.stop()


class RenderedExample:
    """One examples/<name>/ rendered by the real CLI through a one-step
    pipeline equivalent to `function-signals render`: the step's input is
    input.yaml when there is one, observed resources come from observed/."""

    def __init__(self, directory: Path, workdir: Path, functions: Path) -> None:
        self.name = directory.name
        self.directory = directory
        self.xr = directory / "xr.yaml"
        xr = load_yaml(self.xr)[0]
        step = {"step": "signals", "functionRef": {"name": "function-signals"}}
        if (directory / "input.yaml").is_file():
            step["input"] = load_yaml(directory / "input.yaml")[0]
        api_group, version = xr["apiVersion"].split("/")
        self.composition = write_yaml(workdir / f"{self.name}-composition.yaml", {
            "apiVersion": "apiextensions.crossplane.io/v1",
            "kind": "Composition",
            "metadata": {"name": f"{xr['kind'].lower()}s.{api_group}"},
            "spec": {
                "compositeTypeRef": {"apiVersion": xr["apiVersion"], "kind": xr["kind"]},
                "mode": "Pipeline",
                "pipeline": [step],
            },
        })
        self.functions = functions
        observed = directory / "observed"
        self.observed = observed if observed.is_dir() else None
        self.run = self._render()
        self._full: Run | None = None

    def _render(self, *extra: str) -> Run:
        run = render(self.xr, self.composition, self.functions, observed=self.observed, results=False, extra=extra)
        assert run.returncode == 0, run.explain()
        return run

    def documents(self):
        return self.run.documents()

    def full_xr_documents(self):
        """The output with --include-full-xr: the XR's spec and metadata too."""
        if self._full is None:
            self._full = self._render("--include-full-xr")
        return self._full.documents()


@pytest.fixture(scope="session")
def example_functions(signals_fn, tmp_path_factory) -> Path:
    """functions.yaml pointing the CLI at the running function-signals."""
    workdir = tmp_path_factory.mktemp("functions")
    return write_yaml(workdir / "functions.yaml", function_object("function-signals", signals_fn.address))


@pytest.fixture(scope="session")
def rendered_examples(example_functions, tmp_path_factory) -> dict[str, RenderedExample]:
    """Every examples/*/ rendered once by the real CLI, for the golden and the
    validation tests."""
    workdir = tmp_path_factory.mktemp("examples")
    dirs = sorted(p.parent for p in EXAMPLES.glob("*/xr.yaml"))
    return {d.name: RenderedExample(d, workdir, example_functions) for d in dirs}
