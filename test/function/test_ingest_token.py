"""The ingest token's way to the agent, observed over real gRPC: the
provider-kubernetes Object that copies the aggregator's Secret to the
workload cluster, the token generation on the pod template (a rotation
restarts the agent), and no token value in any response."""

import base64
import copy

from crossplane.function.proto.v1 import run_function_pb2 as fnv1

from .fnclient import (
    INPUT_API_VERSION,
    OBJECT_API_VERSION,
    condition,
    desired_resources,
    manifest,
    request,
    single_cluster_input,
)

TOKEN_KEY = "signals-agent-token"
GENERATION_ANNOTATION = "signals.modelplane.ai/token-generation"
POD_GENERATION_ANNOTATION = "signals.modelplane.ai/ingest-token-generation"
# What the aggregator would issue: 32 random bytes, base64url without padding.
TOKEN = "q3Zl1bJ0v2m8kT4sX9cNwP7eR5yH6aU0iO3dF8gJ2kL"


def copying(cluster):
    """The cluster without tokenSecretRef: the function copies the issued token."""
    del cluster["spec"]["signals"]["aggregator"]["tokenSecretRef"]
    return cluster


def issued(cluster, generation, namespace="modelplane-system"):
    cluster["status"]["signals"]["ingestToken"] = {
        "secretName": f"signals-ingest-{cluster['metadata']['name']}",
        "secretNamespace": namespace,
        "generation": generation,
        "issuedAt": "2026-11-22T10:00:00Z",
    }
    return cluster


def observed_copy(generation, ready="True"):
    """The copy Object as provider-kubernetes leaves it: the patched token in
    its spec, the workload cluster's Secret (unsanitized) in its status."""
    data = {"token": base64.b64encode(TOKEN.encode()).decode()}

    def secret():
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": TOKEN_KEY,
                "namespace": "modelplane-system",
                "annotations": {GENERATION_ANNOTATION: str(generation)},
            },
            "type": "Opaque",
            "data": dict(data),
        }

    return {
        "apiVersion": OBJECT_API_VERSION,
        "kind": "Object",
        "metadata": {"name": "eu-west-1-token-5hq8d", "namespace": "modelplane-system"},
        "spec": {"forProvider": {"manifest": secret()}},
        "status": {
            "atProvider": {"manifest": secret()},
            "conditions": [{"type": "Ready", "status": ready}, {"type": "Synced", "status": "True"}],
        },
    }


def deployment_manifest(rsp):
    return manifest(desired_resources(rsp)["signals-agent-deployment"])


def pod_annotations(rsp):
    return deployment_manifest(rsp)["spec"]["template"]["metadata"]["annotations"]


def token_env(rsp):
    (container,) = deployment_manifest(rsp)["spec"]["template"]["spec"]["containers"]
    (env,) = [e for e in container["env"] if e["name"] == "MODELPLANE_INGEST_TOKEN"]
    return env


def test_multi_cluster_renders_the_token_copy_object(server, full_cluster):
    rsp = server.run(request(copying(full_cluster)))
    desired = desired_resources(rsp)
    copy_object = desired[TOKEN_KEY]
    assert copy_object["apiVersion"] == OBJECT_API_VERSION
    assert copy_object["kind"] == "Object"
    assert copy_object["spec"]["providerConfigRef"] == desired["signals-agent-deployment"]["spec"]["providerConfigRef"]
    assert copy_object["spec"]["readiness"] == {"policy": "SuccessfulCreate"}
    secret = copy_object["spec"]["forProvider"]["manifest"]
    assert (secret["apiVersion"], secret["kind"], secret["type"]) == ("v1", "Secret", "Opaque")
    assert (secret["metadata"]["name"], secret["metadata"]["namespace"]) == (TOKEN_KEY, "modelplane-system")
    assert "data" not in secret and "stringData" not in secret, "provider-kubernetes patches the value in"
    source = {
        "apiVersion": "v1",
        "kind": "Secret",
        "name": "signals-ingest-eu-west-1",
        "namespace": "modelplane-system",
    }
    generation_path = f"metadata.annotations[{GENERATION_ANNOTATION}]"
    assert copy_object["spec"]["references"] == [
        {"patchesFrom": {**source, "fieldPath": "data.token"}, "toFieldPath": "data.token"},
        {"patchesFrom": {**source, "fieldPath": generation_path}, "toFieldPath": generation_path},
    ]
    assert token_env(rsp) == {
        "name": "MODELPLANE_INGEST_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": TOKEN_KEY, "key": "token", "optional": False}},
    }
    assert rsp.desired.resources[TOKEN_KEY].ready == fnv1.READY_FALSE
    ready = condition(rsp, "AgentReady")
    assert ready.reason == "Creating"
    assert "Secret modelplane-system/signals-ingest-eu-west-1 on the control plane" in ready.message


def test_token_namespace_comes_from_the_step_input(server, full_cluster):
    step_input = {"apiVersion": INPUT_API_VERSION, "kind": "Input", "tokenNamespace": "signal-tokens"}
    rsp = server.run(request(copying(full_cluster), step_input=step_input))
    references = desired_resources(rsp)[TOKEN_KEY]["spec"]["references"]
    assert [r["patchesFrom"]["namespace"] for r in references] == ["signal-tokens", "signal-tokens"]
    assert not rsp.results


def test_a_token_secret_ref_is_left_to_the_user(server, full_cluster):
    rsp = server.run(request(full_cluster))
    desired = desired_resources(rsp)
    assert TOKEN_KEY not in desired
    assert all(manifest(o)["kind"] != "Secret" for o in desired.values())
    assert token_env(rsp)["valueFrom"]["secretKeyRef"]["name"] == "eu-west-1.ingest-token"


def test_a_rotation_rolls_the_agent_once_the_copy_holds_the_new_token(server, full_cluster):
    cluster = copying(full_cluster)
    first = server.run(request(issued(copy.deepcopy(cluster), 1), observed={TOKEN_KEY: observed_copy(1)}))
    assert pod_annotations(first)[POD_GENERATION_ANNOTATION] == "1"

    # The aggregator rotated; provider-kubernetes has not copied generation 2 yet.
    lagging = server.run(request(issued(copy.deepcopy(cluster), 2), observed={TOKEN_KEY: observed_copy(1)}))
    assert pod_annotations(lagging) == pod_annotations(first), "no restart onto the old token"

    copied = server.run(request(issued(copy.deepcopy(cluster), 2), observed={TOKEN_KEY: observed_copy(2)}))
    after = pod_annotations(copied)
    assert after[POD_GENERATION_ANNOTATION] == "2"
    checksum = [k for k in after if k.endswith("config-checksum")]
    assert [after[k] for k in checksum] == [pod_annotations(first)[k] for k in checksum], (
        "only the token generation changed"
    )


def test_a_users_secret_rolls_on_the_issuers_generation(server, full_cluster):
    rsp = server.run(request(issued(full_cluster, 5)))
    assert pod_annotations(rsp)[POD_GENERATION_ANNOTATION] == "5"


def test_single_cluster_reads_the_issued_secret_and_rolls_on_its_generation(server, full_cluster):
    rsp = server.run(request(issued(copying(full_cluster), 3), step_input=single_cluster_input()))
    desired = desired_resources(rsp)
    assert TOKEN_KEY not in desired
    assert token_env(rsp)["valueFrom"]["secretKeyRef"] == {
        "name": "signals-ingest-eu-west-1",
        "key": "token",
        "optional": False,
    }
    assert pod_annotations(rsp)[POD_GENERATION_ANNOTATION] == "3"
    assert not rsp.results


def test_single_cluster_outside_the_token_namespace_warns(server, full_cluster):
    cluster = copying(full_cluster)
    cluster["spec"]["signals"]["agent"]["namespace"] = "signals"
    rsp = server.run(request(cluster, step_input=single_cluster_input()))
    (result,) = rsp.results
    assert result.severity == fnv1.SEVERITY_WARNING
    assert result.reason == "IngestTokenUnreachable"
    assert "tokenSecretRef" in result.message and "modelplane-system/signals-ingest-eu-west-1" in result.message


def test_no_token_value_crosses_the_wire(server, full_cluster):
    cluster = issued(copying(full_cluster), 2)
    req = request(cluster, observed={TOKEN_KEY: observed_copy(2)})
    assert TOKEN.encode() in base64.b64decode(observed_copy(2)["spec"]["forProvider"]["manifest"]["data"]["token"])
    wire = server.run(req).SerializeToString()
    for form in (TOKEN, base64.b64encode(TOKEN.encode()).decode()):
        assert form.encode() not in wire, f"{form} leaked"
    assert b"signals-ingest-eu-west-1" in wire, "the copy Object itself is in the response"
