"""package/configuration: parses, points at the real XRDs, and its pipelines'
inputs are accepted by the built function."""

import os

import pytest
import yaml

from harness.binaries import REPO_ROOT

from .fnclient import FIXTURES, fatal_results, load_one, load_yaml, run_render

PACKAGE = REPO_ROOT / "package" / "configuration"
XRDS = REPO_ROOT / "apis" / "xrds"


def package_documents():
    return {str(p.relative_to(PACKAGE)): load_yaml(p) for p in sorted(PACKAGE.rglob("*.yaml"))}


def compositions():
    return [d for docs in package_documents().values() for d in docs if d["kind"] == "Composition"]


def test_every_package_file_is_one_yaml_object():
    docs = package_documents()
    assert set(docs) >= {
        "crossplane.yaml",
        "apis/inferenceclusters.yaml",
        "apis/modelservices.yaml",
        "compositions/inferenceclusters.yaml",
        "compositions/modelservices.yaml",
    }
    for path, objects in docs.items():
        assert len(objects) == 1, path
        assert {"apiVersion", "kind", "metadata"} <= set(objects[0]), path


def test_configuration_metadata_and_dependencies():
    meta = load_one(PACKAGE / "crossplane.yaml")
    assert meta["apiVersion"] == "meta.pkg.crossplane.io/v1"
    assert meta["kind"] == "Configuration"
    assert meta["metadata"]["name"] == "modelplane-signals"
    for annotation in ("maintainer", "source", "license", "description", "readme"):
        assert meta["metadata"]["annotations"][f"meta.crossplane.io/{annotation}"].strip()
    assert meta["spec"]["crossplane"]["version"].startswith(">=v2")
    deps = {d.get("function") or d.get("provider"): d["version"] for d in meta["spec"]["dependsOn"]}
    assert set(deps) == {
        "xpkg.crossplane.io/modelplane/function-signals",
        "xpkg.crossplane.io/crossplane-contrib/provider-kubernetes",
    }
    assert all(v.startswith(">=v") for v in deps.values())


def test_xrds_are_symlinks_to_the_single_source():
    for name in ("inferenceclusters.yaml", "modelservices.yaml"):
        link = PACKAGE / "apis" / name
        assert link.is_symlink(), f"{link} must not be a copy"
        assert link.resolve() == (XRDS / name).resolve()
        assert not os.path.isabs(os.readlink(link)), "relative, so it survives a clone anywhere"


def test_each_composition_targets_an_xrd_in_the_package():
    kinds = set()
    for path in ("apis/inferenceclusters.yaml", "apis/modelservices.yaml"):
        xrd = load_one(PACKAGE / path)
        kinds.add((f"{xrd['spec']['group']}/{xrd['spec']['versions'][0]['name']}", xrd["spec"]["names"]["kind"]))
    targeted = set()
    for comp in compositions():
        assert comp["apiVersion"] == "apiextensions.crossplane.io/v1"
        assert comp["spec"]["mode"] == "Pipeline"
        ref = comp["spec"]["compositeTypeRef"]
        targeted.add((ref["apiVersion"], ref["kind"]))
        steps = [s for s in comp["spec"]["pipeline"] if s["functionRef"]["name"] == "modelplane-function-signals"]
        assert len(steps) == 1, comp["metadata"]["name"]
    assert targeted == kinds


FIXTURE_FOR_KIND = {
    "InferenceCluster": "inferencecluster-full.yaml",
    "ModelService": "modelservice-traces.yaml",
}


@pytest.mark.parametrize("kind", sorted(FIXTURE_FOR_KIND))
def test_the_function_accepts_each_pipeline_input(kind, tmp_path):
    comp = next(c for c in compositions() if c["spec"]["compositeTypeRef"]["kind"] == kind)
    step = next(s for s in comp["spec"]["pipeline"] if s["functionRef"]["name"] == "modelplane-function-signals")
    input_path = tmp_path / "input.yaml"
    input_path.write_text(yaml.safe_dump(step["input"]))
    code, printed, stderr = run_render(FIXTURES / FIXTURE_FOR_KIND[kind], "--input", input_path)
    results = [d for d in printed if d.get("kind") == "Result"]
    assert code == 0, (stderr, results)
    assert not [r for r in results if r["severity"] == "SEVERITY_FATAL"]
    assert printed[0]["kind"] == kind
