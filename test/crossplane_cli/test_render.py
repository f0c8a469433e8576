"""`crossplane composition render` (the real CLI, with the real Crossplane
core binary as its render engine) against a running function-signals: the
output for every example is its golden expected.yaml, which
`function-signals render` must print too (function/tests/examples.rs)."""

from __future__ import annotations

import pytest

from function.fnclient import run_render
from harness import peers

from .xp import EXAMPLES, PACKAGE, DEV_RUNTIME, DEV_TARGET, by_resource_name, crossplane, load_yaml, render, write_yaml

EXAMPLE_NAMES = sorted(p.parent.name for p in EXAMPLES.glob("*/xr.yaml"))


def test_every_example_is_rendered():
    assert len(EXAMPLE_NAMES) >= 7, EXAMPLE_NAMES


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_real_render_equals_the_golden_file(rendered_examples, name):
    example = rendered_examples[name]
    assert example.documents() == load_yaml(example.directory / "expected.yaml"), example.run.explain()


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_function_signals_render_prints_what_the_real_cli_prints(rendered_examples, name):
    """Same documents from both, compared independently of the golden files."""
    example = rendered_examples[name]
    argv = [example.xr]
    if (example.directory / "input.yaml").is_file():
        argv += ["--input", example.directory / "input.yaml"]
    if example.observed is not None:
        argv += ["--observed", example.observed]
    code, printed, stderr = run_render(*argv)
    assert code == 0, stderr
    assert printed == example.documents()


def test_the_documented_command_renders(signals_fn):
    """examples/README.md's command, as written (examples/composition.yaml
    holds two Compositions; the CLI reads the first, the InferenceCluster's),
    with only the Development target pointed at the test's port."""
    run = crossplane(
        "composition", "render",
        EXAMPLES / "ic-minimal" / "xr.yaml", EXAMPLES / "composition.yaml", EXAMPLES / "functions.yaml",
        f"--crossplane-binary={peers.crossplane_core()}",
        "-r", "-a", f"{DEV_TARGET}={signals_fn.address}",
    )
    assert run.returncode == 0, run.explain()
    docs = run.documents()
    composed = by_resource_name(docs)
    assert len(composed) == 6
    config = composed["signals-agent-config"]["spec"]["forProvider"]["manifest"]["data"]["collector.yaml"]
    # The snippet's input reaches the function: its aggregator endpoint.
    assert "signals.control-plane.example.com:4317" in config
    assert [r["reason"] for r in docs if r.get("kind") == "Result"].count("SelectComposition") == 1


@pytest.mark.parametrize("kind", ["InferenceCluster", "ModelService"])
def test_the_packaged_compositions_render(signals_fn, tmp_path, kind):
    """package/configuration's Compositions, unchanged, with the Function
    named as Crossplane names the installed dependency."""
    fixture = {"InferenceCluster": "inferencecluster-full.yaml", "ModelService": "modelservice-traces.yaml"}[kind]
    xr = PACKAGE.parent / "apis" / "tests" / "fixtures" / fixture
    composition = PACKAGE / "configuration" / "compositions" / f"{kind.lower()}s.yaml"
    functions = write_yaml(
        tmp_path / "functions.yaml",
        {
            "apiVersion": "pkg.crossplane.io/v1",
            "kind": "Function",
            "metadata": {
                "name": "modelplane-function-signals",
                "annotations": {DEV_RUNTIME: "Development", DEV_TARGET: signals_fn.address},
            },
            "spec": {"package": "xpkg.crossplane.io/modelplane/function-signals:v0.1.0"},
        },
    )
    run = render(xr, composition, functions)
    assert run.returncode == 0, run.explain()
    docs = run.documents()
    assert docs[0]["kind"] == kind
    results = [d for d in docs if d.get("kind") == "Result"]
    assert all(r["severity"] != "Warning" for r in results), results
    conditions = {c["type"]: c for c in docs[0]["status"]["conditions"]}
    if kind == "InferenceCluster":
        composed = by_resource_name(docs)
        assert {"signals-agent-deployment", "signals-agent-config", "signals-agent-serviceaccount"} <= set(composed)
        assert all(d["kind"] == "Object" for d in composed.values())
        assert conditions["AgentReady"]["status"] == "False"
    else:
        assert docs[0]["status"]["observability"]["policy"]["tracesHeaderNames"] == [
            "Authorization", "x-langfuse-ingestion-version",
        ]


def one_step_composition(tmp_path, xr, step):
    """A Pipeline Composition for `xr`'s type with `step` as its only step."""
    return write_yaml(tmp_path / "composition.yaml", {
        "apiVersion": "apiextensions.crossplane.io/v1",
        "kind": "Composition",
        "metadata": {"name": "inferenceclusters.modelplane.ai"},
        "spec": {
            "compositeTypeRef": {"apiVersion": xr["apiVersion"], "kind": xr["kind"]},
            "mode": "Pipeline",
            "pipeline": [step],
        },
    })


def test_function_results_are_printed_as_crossplane_prints_them(example_functions, tmp_path):
    """A Warning result (SingleCluster, agent outside the token namespace)
    through the real CLI with -r, and through `function-signals render -r`:
    the same documents, except that the CLI also prints Crossplane's own
    events (composition selected, each composed resource not yet ready),
    which function-signals render does not emulate."""
    example = EXAMPLES / "ic-single-cluster"
    xr = load_yaml(example / "xr.yaml")[0]
    xr["spec"]["signals"]["agent"] = {"namespace": "signals"}
    xr_path = write_yaml(tmp_path / "xr.yaml", xr)
    step = {"step": "signals", "functionRef": {"name": "function-signals"}, "input": load_yaml(example / "input.yaml")[0]}
    composition = one_step_composition(tmp_path, xr, step)
    real = render(xr_path, composition, example_functions)
    assert real.returncode == 0, real.explain()
    code, ours, stderr = run_render(xr_path, "--input", example / "input.yaml", "--include-function-results")
    assert code == 0, stderr

    def split(docs):
        return [d for d in docs if d.get("kind") != "Result"], [d for d in docs if d.get("kind") == "Result"]

    real_docs, real_results = split(real.documents())
    our_docs, our_results = split(ours)
    assert our_docs == real_docs
    assert len(our_results) == 1
    warning = our_results[0]
    assert warning["severity"] == "Warning" and warning["reason"] == "IngestTokenUnreachable"
    assert warning["message"].startswith('Pipeline step "signals": the agent runs in namespace signals')
    assert warning in real_results
    crossplane_events = sorted((r["reason"], r["message"]) for r in real_results if r != warning)
    unready = sorted(c for c in by_resource_name(real_docs))
    assert crossplane_events == sorted(
        [("SelectComposition", "Successfully selected composition: inferenceclusters.modelplane.ai")]
        + [("ComposeResources", f'Composed resource "{name}" is not yet ready') for name in unready]
    )


def test_a_fatal_result_fails_both_renders_the_same_way(example_functions, tmp_path):
    xr = load_yaml(EXAMPLES / "ic-minimal" / "xr.yaml")[0]
    xr["spec"]["signals"]["kinds"][0]["sampleRate"] = 2
    xr_path = write_yaml(tmp_path / "xr.yaml", xr)
    composition = one_step_composition(tmp_path, xr, {"step": "signals", "functionRef": {"name": "function-signals"}})
    real = render(xr_path, composition, example_functions)
    code, ours, stderr = run_render(xr_path)
    error = 'pipeline step "signals" returned a fatal result: spec.signals.kinds[0].sampleRate: must be between 0 and 1, got 2'
    assert real.returncode == 1 and real.stdout == "", real.explain()
    assert error in real.stderr
    assert (code, ours) == (1, [])
    assert error in stderr

