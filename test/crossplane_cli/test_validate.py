"""`crossplane resource validate`, offline: the example XRs against the XRDs we
ship, every composed resource the real render produces against its CRD, and
invalid XRs that the schema (and its CEL rules) must reject.

The CLI turns each XRD into the CRD Crossplane would serve (its own xcrd
conversion) and validates with the API server's validation library, CEL
included. `--crossplane-image=` keeps it from pulling Crossplane's image for
the built-in Crossplane schemas, which none of these resources need.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from harness import peers

from harness.xr_cases import INVALID

from .xp import EXAMPLES, PACKAGE, XRDS, load_yaml, validate, write_yaml

FIXTURES = XRDS.parent / "tests" / "fixtures"
PACKAGED_XRDS = PACKAGE / "configuration" / "apis"
OBJECT_GVK = ("kubernetes.m.crossplane.io/v1alpha1", "Object")
# What SingleCluster mode composes directly, and what a provider-kubernetes
# Object carries in spec.forProvider.manifest: Kubernetes' own kinds, which
# have no CRD.
BUILT_IN_KINDS = {
    ("v1", "ServiceAccount"),
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("v1", "Secret"),
    ("apps/v1", "Deployment"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
}


def test_every_example_xr_is_valid_against_the_packaged_xrds(tmp_path):
    xrs = sorted(EXAMPLES.glob("*/xr.yaml"))
    assert len(xrs) >= 7
    code, result = validate([PACKAGED_XRDS], xrs, tmp_path)
    assert result["summary"] == {"total": len(xrs), "valid": len(xrs), "invalid": 0, "missingSchemas": 0}, result
    assert code == 0
    validated = {(r["kind"], r["name"]) for r in result["resources"]}
    assert ("InferenceCluster", "eu-west-4") in validated
    assert ("ModelService", "chat") in validated


def test_modelplane_status_fields_need_modelplanes_own_xrd(tmp_path):
    """The apis fixtures carry fields of Modelplane's own XRD. Those under
    spec pass (the XRD's spec keeps unknown fields); those under status are
    unknown fields to Crossplane, because its XRD -> CRD conversion drops
    x-kubernetes-preserve-unknown-fields on status (see the XRDs' header)."""
    fixtures = sorted(FIXTURES.glob("*.yaml"))
    code, result = validate([PACKAGED_XRDS], fixtures, tmp_path)
    assert code != 0
    invalid = {r["name"]: [(e["type"], e["field"]) for e in r["errors"]] for r in result["resources"] if r["status"] != "valid"}
    assert invalid == {
        "eu-west-1": [("unknownField", "status.gateway")],
        "chat": [("unknownField", "status.model")],
    }, result
    assert result["summary"]["valid"] == len(fixtures) - 2
    spec_only = [load_yaml(p)[0] for p in fixtures]
    assert any("endpoints" in x["spec"] for x in spec_only), "a Modelplane spec field is among the valid ones"


def test_rendered_xrs_with_the_function_status_are_valid(tmp_path, rendered_examples):
    """The XR as `render --include-full-xr` prints it (spec plus the status the
    pipeline produced) still satisfies the XRD, status schema included."""
    paths = []
    for name, run in rendered_examples.items():
        xr = run.full_xr_documents()[0]
        paths.append(write_yaml(tmp_path / f"{name}.yaml", xr))
    code, result = validate([PACKAGED_XRDS], paths, tmp_path)
    assert result["summary"]["valid"] == len(paths), result
    assert result["summary"]["invalid"] == 0 and result["summary"]["missingSchemas"] == 0, result
    assert code == 0


def composed_documents(rendered_examples) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name, run in rendered_examples.items():
        for doc in run.documents()[1:]:
            if doc.get("kind") != "Result":
                out.append((name, doc))
    return out


def test_composed_objects_are_valid_against_provider_kubernetes_crds(tmp_path, rendered_examples):
    composed = composed_documents(rendered_examples)
    objects = [(n, d) for n, d in composed if (d["apiVersion"], d["kind"]) == OBJECT_GVK]
    assert len(objects) >= 20, [n for n, _ in composed]
    path = write_yaml(tmp_path / "objects.yaml", *(d for _, d in objects))
    code, result = validate([peers.peer("PROVIDER_KUBERNETES_CRDS")], [path], tmp_path, "--error-on-missing-schemas")
    assert result["summary"] == {
        "total": len(objects), "valid": len(objects), "invalid": 0, "missingSchemas": 0,
    }, json.dumps([r for r in result["resources"] if r["status"] != "valid"], indent=1)
    assert code == 0


def test_provider_kubernetes_crd_rejects_what_it_should(tmp_path, rendered_examples):
    """The Object CRD really constrains the composed Objects: a broken copy of
    one is refused with the schema's message (so the pass above means something)."""
    obj = next(d for _, d in composed_documents(rendered_examples) if (d["apiVersion"], d["kind"]) == OBJECT_GVK)
    broken = copy.deepcopy(obj)
    broken["spec"]["managementPolicies"] = ["Sometimes"]
    del broken["spec"]["forProvider"]
    path = write_yaml(tmp_path / "broken.yaml", broken)
    code, result = validate([peers.peer("PROVIDER_KUBERNETES_CRDS")], [path], tmp_path)
    assert code != 0
    messages = [e["message"] for e in result["resources"][0]["errors"]]
    assert any(m.startswith("spec.forProvider: Required value") for m in messages), messages
    assert any('spec.managementPolicies[0]: Unsupported value: "Sometimes"' in m for m in messages), messages


def test_built_in_kinds_pass_the_clis_strict_decoding(tmp_path, rendered_examples):
    """SingleCluster mode composes plain Kubernetes kinds, and every Object
    embeds one. They have no CRD; CLI v2.5.0 checks them by strict decoding
    into the k8s.io/api Go types (pkg/validate newKubernetesResourceValidator):
    unknown fields and wrong types are caught. All rendered ones pass."""
    single = rendered_examples["ic-single-cluster"]
    plain = [d for d in single.documents()[1:] if d.get("kind") != "Result"]
    kinds = {(d["apiVersion"], d["kind"]) for d in plain}
    assert kinds and kinds <= BUILT_IN_KINDS, kinds
    embedded = [d["spec"]["forProvider"]["manifest"] for _, d in composed_documents(rendered_examples)
                if (d["apiVersion"], d["kind"]) == OBJECT_GVK]
    assert {(m["apiVersion"], m["kind"]) for m in embedded} <= BUILT_IN_KINDS
    path = write_yaml(tmp_path / "plain.yaml", *plain, *embedded)
    total = len(plain) + len(embedded)
    code, result = validate([XRDS], [path], tmp_path, "--error-on-missing-schemas")
    assert result["summary"] == {"total": total, "valid": total, "invalid": 0, "missingSchemas": 0}, result
    assert code == 0


def test_what_the_built_in_kind_check_catches_and_what_it_does_not(tmp_path, rendered_examples):
    """Strict decoding, not the API server's validation: a misspelt field and
    a wrong type are refused; an invalid object name is not (the API server
    would refuse it), so names and other server-side rules are not checked
    for built-in kinds here."""
    deployment = next(d for d in rendered_examples["ic-single-cluster"].documents() if d.get("kind") == "Deployment")
    misspelt = copy.deepcopy(deployment)
    misspelt["spec"]["replica"] = misspelt["spec"].pop("replicas", 1)
    misspelt["metadata"]["name"] = "misspelt"
    config_map = next(d for d in rendered_examples["ic-single-cluster"].documents() if d.get("kind") == "ConfigMap")
    wrong_type = copy.deepcopy(config_map)
    wrong_type["data"]["replicas"] = 2
    bad_name = copy.deepcopy(deployment)
    bad_name["metadata"]["name"] = "Not_A_DNS_Name"
    path = write_yaml(tmp_path / "broken.yaml", misspelt, wrong_type, bad_name)
    code, result = validate([XRDS], [path], tmp_path)
    assert code != 0
    by_name = {r["name"]: r for r in result["resources"]}
    assert by_name["misspelt"]["errors"] == [{"type": "schema", "message": 'unknown field "spec.replica"'}]
    assert "cannot unmarshal number into Go struct field ConfigMap.data of type string" in \
        by_name[config_map["metadata"]["name"]]["errors"][0]["message"]
    assert by_name["Not_A_DNS_Name"]["status"] == "valid"


def test_compositions_and_their_step_inputs_are_valid(tmp_path):
    """The shipped Compositions and the examples' snippet against the
    Composition CRD from Crossplane's module (cluster/crds). The CLI also
    validates each pipeline step's input as a resource of its own: those
    are checked against the Function package's input CRD."""
    compositions = sorted((PACKAGE / "configuration" / "compositions").glob("*.yaml"))
    snippet = load_yaml(EXAMPLES / "composition.yaml")
    compositions.append(write_yaml(tmp_path / "snippet.yaml", *snippet))
    docs = [d for p in compositions for d in load_yaml(p)]
    inputs = [s["input"] for d in docs for s in d["spec"]["pipeline"] if "input" in s]
    assert len(docs) == 4 and len(inputs) == 3
    extensions = [peers.peer("CROSSPLANE_CRDS"), PACKAGE / "function" / "input"]
    code, result = validate(extensions, compositions, tmp_path, "--error-on-missing-schemas")
    total = len(docs) + len(inputs)
    assert result["summary"] == {"total": total, "valid": total, "invalid": 0, "missingSchemas": 0}, result
    assert code == 0
    assert sorted(r["kind"] for r in result["resources"]) == ["Composition"] * 4 + ["Input"] * 3

    broken = copy.deepcopy(snippet[0])
    broken["spec"]["mode"] = "Resources"
    broken["spec"]["pipeline"][0]["input"]["mode"] = "Everywhere"
    code, result = validate(extensions, [write_yaml(tmp_path / "broken.yaml", broken)], tmp_path)
    assert code != 0
    messages = [e["message"] for r in result["resources"] for e in r.get("errors", [])]
    assert any('spec.mode: Unsupported value: "Resources"' in m for m in messages), messages
    assert any('mode: Unsupported value: "Everywhere"' in m for m in messages), messages


@pytest.mark.parametrize(("make", "mutate", "field", "message"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_xr_is_rejected_with_the_schema_message(tmp_path, make, mutate, field, message):
    xr = make()
    mutate(xr)
    path = write_yaml(tmp_path / "xr.yaml", xr)
    code, result = validate([XRDS], [path], tmp_path)
    assert code != 0
    assert result["summary"]["invalid"] == 1, result
    errors = result["resources"][0]["errors"]
    assert any(e.get("field") == field and message in e["message"] for e in errors), json.dumps(errors, indent=1)
