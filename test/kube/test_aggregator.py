"""signal-aggregator against a real kube-apiserver, authenticated as its
ServiceAccount under the RBAC the project ships (package/aggregator/base/rbac.yaml):
the XR watch (including a watch expired by an etcd compaction), server-side
apply of status beside a second field manager, ingest-token Secrets (issue,
rotate with two replicas racing, garbage collection through the owner
reference) and least privilege."""

from __future__ import annotations

import base64
import datetime
import random
import re
import time
from typing import Any, Callable, Iterator

import pytest
import requests
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from harness.aggregator import Aggregator
from harness.kube import ControlPlane, KubeError, load_documents, pause, resume

from .conftest import RBAC, TOKEN_NAMESPACE

IC = ("modelplane.ai/v1alpha1", "InferenceCluster")
MS = ("modelplane.ai/v1alpha1", "ModelService")
SECRET_PREFIX = "signals-ingest-"


def inference_cluster(name: str, kinds: list[str], **signals: Any) -> dict[str, Any]:
    return {
        "apiVersion": IC[0], "kind": IC[1], "metadata": {"name": name},
        "spec": {"signals": {"kinds": [{"name": k} for k in kinds], **signals}},
    }


def model_service(namespace: str, name: str, models: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": MS[0], "kind": MS[1],
        "metadata": {"name": name, "namespace": namespace,
                     "annotations": {"signals.modelplane.ai/models": ",".join(models)}},
        "spec": {"observability": {"metrics": {"scope": "Fleet"}}},
    }


def metric(aggregator: Aggregator, name: str, **labels: str) -> float | None:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.compile(rf"^{re.escape(name)}(\{{([^}}]*)\}})? (\S+)$")
    for line in aggregator.metrics().splitlines():
        match = pattern.match(line)
        if match and ",".join(sorted((match.group(2) or "").split(","))).strip(",") == wanted:
            return float(match.group(3))
    return None


def known_xrs(aggregator: Aggregator) -> tuple[float | None, float | None]:
    name = "modelplane_aggregator_directory_xrs"
    return metric(aggregator, name, kind="InferenceCluster"), metric(aggregator, name, kind="ModelService")


def status_of(plane: ControlPlane, xr: dict[str, Any]) -> dict[str, Any]:
    return plane.admin.get_object(xr).get("status", {})


def issued_secret(plane: ControlPlane, cluster: str) -> dict[str, Any] | None:
    response = plane.admin.request("GET", f"/api/v1/namespaces/{TOKEN_NAMESPACE}/secrets/{SECRET_PREFIX}{cluster}",
                                   expect_ok=False)
    return response.json() if response.status_code == 200 else None


def secret_value(secret: dict[str, Any], key: str) -> str | None:
    value = secret.get("data", {}).get(key)
    return base64.b64decode(value).decode() if value is not None else None


def send_spans(aggregator: Aggregator, token: str, tenant: str, model: str, count: int, seed: int) -> list[float]:
    """`count` chat spans from the OpenTelemetry SDK over OTLP/HTTP with the
    ingest token; returns their times to first token."""
    rng = random.Random(seed)
    provider = TracerProvider(resource=Resource.create({
        "service.name": "gateway", "modelplane.tenant": tenant, "k8s.namespace.name": tenant,
    }))
    exporter = OTLPSpanExporter(endpoint=f"{aggregator.otlp_http}/v1/traces",
                                headers={"authorization": f"Bearer {token}"})
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("kube-test")
    now = time.time_ns()
    ttfts = []
    for _ in range(count):
        ttft = round(rng.uniform(0.1, 0.5), 4)
        start = now - 3_000_000_000
        span = tracer.start_span(f"chat {model}", kind=SpanKind.CLIENT, start_time=start, attributes={
            "gen_ai.operation.name": "chat", "gen_ai.request.model": model, "gen_ai.response.model": model,
            "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 11,
            "gen_ai.response.time_to_first_chunk": ttft,
        })
        span.end(end_time=start + int((ttft + 1.0) * 1e9))
        ttfts.append(ttft)
    provider.shutdown()
    return ttfts


def ingest_status(aggregator: Aggregator, token: str) -> int:
    """HTTP status of an empty OTLP/HTTP export with `token`."""
    return requests.post(f"{aggregator.otlp_http}/v1/traces", data=b"", timeout=10, headers={
        "content-type": "application/x-protobuf", "authorization": f"Bearer {token}",
    }).status_code


@pytest.fixture
def kube_aggregator(control_plane: ControlPlane, aggregator_identity) -> Iterator[Callable[..., Aggregator]]:
    """Starts signal-aggregator processes against the real API server as the
    signal-aggregator ServiceAccount; stops them after the test."""
    started: list[Aggregator] = []

    def start(*extra: str, kubeconfig=None, replica: str = "kube-0", wait_ready: bool = True) -> Aggregator:
        defaults = [arg for flag, value in (("--status-interval", "1s"), ("--status-min-interval", "1s"))
                    if flag not in extra for arg in (flag, value)]
        aggregator = Aggregator(
            "--kube", "on", "--kubeconfig", str(kubeconfig or aggregator_identity),
            "--token-namespace", TOKEN_NAMESPACE, *defaults, *extra,
            replica_id=replica,
        )
        started.append(aggregator)
        aggregator.start()
        if wait_ready:
            aggregator.wait_ready(timeout=60)
        return aggregator

    yield start
    for aggregator in started:
        aggregator.process.stop()


@pytest.fixture
def cleanup(control_plane: ControlPlane) -> Iterator[Callable[[dict], dict]]:
    """Registers objects to delete after the test (and returns them)."""
    objects: list[dict] = []

    def register(obj: dict) -> dict:
        objects.append(obj)
        return obj

    yield register
    for obj in reversed(objects):
        control_plane.admin.delete(obj)


def test_the_watch_delivers_creates_updates_and_deletes_of_both_kinds(control_plane, kube_aggregator, cleanup):
    aggregator = kube_aggregator("--status-enabled-kinds")
    control_plane.admin.wait_for("directory synced", lambda: metric(aggregator, "modelplane_aggregator_directory_synced") == 1)
    clusters_before, services_before = known_xrs(aggregator)
    control_plane.ensure_namespace("team-watch")

    cluster = cleanup(inference_cluster("watch-a", ["RequestLifecycle"]))
    service = cleanup(model_service("team-watch", "chat", ["model-a"]))
    control_plane.admin.apply(cluster)
    control_plane.admin.apply(service)
    control_plane.admin.wait_for("both XRs in the directory", lambda: known_xrs(aggregator) == (
        clusters_before + 1, services_before + 1))
    control_plane.admin.wait_for("status.signals.enabledKinds from the spec", lambda: status_of(
        control_plane, cluster).get("signals", {}).get("enabledKinds") == ["RequestLifecycle"])

    cluster["spec"]["signals"]["kinds"].append({"name": "Capacity"})
    control_plane.admin.apply(cluster)
    control_plane.admin.wait_for("the spec update in status", lambda: status_of(
        control_plane, cluster).get("signals", {}).get("enabledKinds") == ["RequestLifecycle", "Capacity"])

    control_plane.admin.delete(cluster)
    control_plane.admin.delete(service)
    control_plane.admin.wait_for("both deletes in the directory", lambda: known_xrs(aggregator) == (
        clusters_before, services_before))
    assert "ERROR" not in aggregator.process.log_text()


def test_a_watch_expired_by_compaction_relists_without_losing_an_event(control_plane, kube_aggregator, cleanup):
    """The aggregator is frozen (SIGSTOP) while the API server restarts (every
    watch connection closes), XRs change, and etcd is compacted past the
    aggregator's last resourceVersion. Resumed, its watch gets 410 Gone and
    must re-list: the deleted XR leaves the directory, the created one joins."""
    aggregator = kube_aggregator("--status-enabled-kinds")
    control_plane.admin.wait_for("directory synced", lambda: metric(aggregator, "modelplane_aggregator_directory_synced") == 1)
    clusters_before, _ = known_xrs(aggregator)
    doomed = cleanup(inference_cluster("expiry-doomed", ["RequestLifecycle"]))
    changed = cleanup(inference_cluster("expiry-changed", ["RequestLifecycle"]))
    control_plane.admin.apply(doomed)
    control_plane.admin.apply(changed)
    control_plane.admin.wait_for("both in the directory", lambda: known_xrs(aggregator)[0] == clusters_before + 2)

    pause(aggregator.process)
    try:
        control_plane.restart_apiserver()
        control_plane.admin.delete(doomed)
        born = cleanup(inference_cluster("expiry-born", ["Cost"]))
        control_plane.admin.apply(born)
        changed["spec"]["signals"]["kinds"] = [{"name": "ColdStart"}]
        control_plane.admin.apply(changed)
        control_plane.compact_etcd()
    finally:
        resume(aggregator.process)

    control_plane.admin.wait_for("the re-listed directory", lambda: known_xrs(aggregator)[0] == clusters_before + 2,
                                 timeout=60)
    control_plane.admin.wait_for("status of the XR created while the watch was down", lambda: status_of(
        control_plane, born).get("signals", {}).get("enabledKinds") == ["Cost"], timeout=60)
    control_plane.admin.wait_for("the update made while the watch was down", lambda: status_of(
        control_plane, changed).get("signals", {}).get("enabledKinds") == ["ColdStart"], timeout=60)
    log = aggregator.process.log_text()
    assert re.search(r"410|too old resource version|Expired", log), log[-4000:]
    assert aggregator.process.running()


CROSSPLANE = "apiextensions.crossplane.io/composite"
# status.observability.policy as function-signals reports it for a metrics-only service.
POLICY = {"metricsScope": "Fleet", "tracesEnabled": False}


def crossplane_status(xr: dict[str, Any], reason: str, extra: dict[str, Any]) -> dict[str, Any]:
    """What Crossplane writes on the status subresource: conditions plus the
    function's fields."""
    meta = {k: v for k, v in xr["metadata"].items() if k in ("name", "namespace")}
    return {"apiVersion": xr["apiVersion"], "kind": xr["kind"], "metadata": meta, "status": {
        "conditions": [{"type": "Ready", "status": "True", "reason": reason,
                        "lastTransitionTime": "2026-12-01T00:00:00Z"}],
        **extra,
    }}


def write_time(obj: dict[str, Any], manager: str) -> float:
    """When `manager` last wrote the status (managedFields, whole seconds)."""
    entry = next(m for m in obj["metadata"]["managedFields"]
                 if m["manager"] == manager and m.get("subresource") == "status")
    return datetime.datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp()


def owned_status_fields(obj: dict[str, Any]) -> dict[str, set[str]]:
    """Per field manager, the status fields it owns (two levels deep, e.g.
    `observability.metrics`), from managedFields."""
    owned: dict[str, set[str]] = {}
    for entry in obj["metadata"].get("managedFields", []):
        if entry.get("subresource") != "status":
            continue
        status = entry.get("fieldsV1", {}).get("f:status", {})
        fields = owned.setdefault(entry["manager"], set())
        for top, below in status.items():
            nested = [k[2:] for k in below if k.startswith("f:")] if top != "f:conditions" else []
            if nested:
                fields.update(f"{top[2:]}.{k}" for k in nested)
            else:
                fields.add(top[2:])
    return owned


def test_status_apply_shares_the_status_with_crossplane_and_carries_real_numbers(
        control_plane, kube_aggregator, cleanup):
    aggregator = kube_aggregator("--status-timestamp-resolution", "1h", "--status-min-interval", "5s")
    tenant, model = "team-status", "model-status"
    control_plane.ensure_namespace(tenant)
    cluster = cleanup(inference_cluster("status-a", ["RequestLifecycle"]))
    service = cleanup(model_service(tenant, "chat", [model]))
    control_plane.admin.apply(cluster)
    control_plane.admin.apply(service)
    # Crossplane (another field manager) writes conditions and the function's fields first.
    control_plane.admin.apply(crossplane_status(cluster, "Available", {"signals": {"enabledKinds": ["RequestLifecycle"]}}),
                              manager=CROSSPLANE, subresource="status", force=False)
    control_plane.admin.apply(crossplane_status(service, "Available", {"observability": {"policy": POLICY}}),
                              manager=CROSSPLANE, subresource="status", force=False)

    secret = control_plane.admin.wait_for("the issued token", lambda: issued_secret(control_plane, "status-a"))
    ttfts = send_spans(aggregator, secret_value(secret, "token"), tenant, model, count=60, seed=3)

    def metrics_written():
        return status_of(control_plane, service).get("observability", {}).get("metrics", {}).get("ttftSeconds")
    control_plane.admin.wait_for("status.observability.metrics from the spans", metrics_written, timeout=60)
    service_status = status_of(control_plane, service)
    written = service_status["observability"]["metrics"]
    assert written["requestRate"] == pytest.approx(60 / 300, rel=1e-6), written
    assert min(ttfts) <= written["ttftSeconds"]["p50"] <= max(ttfts), written
    assert written["ttftSeconds"]["p50"] == pytest.approx(sorted(ttfts)[29], rel=0.02), written
    # Crossplane's fields are still there, and it can write again without a conflict.
    assert service_status["conditions"][0]["reason"] == "Available"
    assert service_status["observability"]["policy"] == POLICY
    cluster_status = control_plane.admin.wait_for("status.signals from the agent's data", lambda: (
        s := status_of(control_plane, cluster)).get("signals", {}).get("lastDatapoint") and s)
    assert cluster_status["signals"]["enabledKinds"] == ["RequestLifecycle"]
    assert cluster_status["signals"]["agentReporting"] is True
    assert cluster_status["signals"]["droppedEvents"] == 0
    assert set(cluster_status["signals"]["lastDatapoint"]) == {"RequestLifecycle"}

    control_plane.admin.apply(crossplane_status(service, "Reconciling", {"observability": {"policy": POLICY}}),
                              manager=CROSSPLANE, subresource="status", force=False)
    again = status_of(control_plane, service)
    assert again["conditions"][0]["reason"] == "Reconciling"
    assert again["observability"]["metrics"]["ttftSeconds"] == written["ttftSeconds"]
    owners = owned_status_fields(control_plane.admin.get_object(service))
    assert owners["signal-aggregator"] == {"observability.metrics"}, owners
    assert owners[CROSSPLANE] == {"conditions", "observability.policy"}, owners

    # Change threshold: more of the same traffic moves nothing by 5 %, so no write.
    version = control_plane.admin.get_object(service)["metadata"]["resourceVersion"]
    send_spans(aggregator, secret_value(secret, "token"), tenant, model, count=2, seed=3)
    time.sleep(4)
    assert control_plane.admin.get_object(service)["metadata"]["resourceVersion"] == version
    # Twice the traffic is a change: written, but no sooner than the minimum
    # interval after the previous write (managedFields times are whole seconds).
    previous_write = write_time(control_plane.admin.get_object(service), "signal-aggregator")
    send_spans(aggregator, secret_value(secret, "token"), tenant, model, count=62, seed=4)
    control_plane.admin.wait_for("the rate change written", lambda: status_of(control_plane, service)[
        "observability"]["metrics"]["requestRate"] == pytest.approx(124 / 300, rel=1e-6), timeout=30)
    rewrite = write_time(control_plane.admin.get_object(service), "signal-aggregator")
    assert rewrite - previous_write >= 4, (previous_write, rewrite)


def test_tokens_issued_rotated_by_racing_replicas_and_collected_with_their_xr(
        control_plane, kube_aggregator, cleanup):
    first = kube_aggregator("--ingest-token-overlap", "6s", replica="tokens-0")
    second = kube_aggregator("--ingest-token-overlap", "6s", replica="tokens-1")
    cluster = inference_cluster("tokens-a", ["RequestLifecycle"])
    created = control_plane.admin.apply(cluster)

    secret = control_plane.admin.wait_for("the issued Secret", lambda: issued_secret(control_plane, "tokens-a"))
    token = secret_value(secret, "token")
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
    assert secret["metadata"]["ownerReferences"] == [{
        "apiVersion": IC[0], "kind": IC[1], "name": "tokens-a", "uid": created["metadata"]["uid"],
    }]
    assert secret["metadata"]["annotations"]["signals.modelplane.ai/token-generation"] == "1"
    control_plane.admin.wait_for("status.signals.ingestToken", lambda: status_of(control_plane, cluster).get(
        "signals", {}).get("ingestToken", {}).get("generation") == 1)
    for replica in (first, second):
        control_plane.admin.wait_for("the token accepted", lambda r=replica: ingest_status(r, token) == 200)
        assert ingest_status(replica, "x" * 43) == 401

    # Both replicas see the rotate request at once and race to rotate.
    control_plane.admin.merge_patch(secret, {"metadata": {"annotations": {"signals.modelplane.ai/rotate": "true"}}})
    rotated = control_plane.admin.wait_for("the rotation", lambda: (
        s := issued_secret(control_plane, "tokens-a")) and secret_value(s, "token") != token and s)
    time.sleep(2)  # let the losing replica's retry land, if it (wrongly) rotates again
    rotated = issued_secret(control_plane, "tokens-a")
    assert rotated["metadata"]["annotations"]["signals.modelplane.ai/token-generation"] == "2"
    assert "signals.modelplane.ai/rotate" not in rotated["metadata"]["annotations"]
    assert secret_value(rotated, "previous-token") == token
    new_token = secret_value(rotated, "token")
    for replica in (first, second):
        control_plane.admin.wait_for("the new token accepted", lambda r=replica: ingest_status(r, new_token) == 200)
        assert ingest_status(replica, token) == 200, "the previous token is accepted during the overlap"
    for replica in (first, second):
        control_plane.admin.wait_for("the previous token refused after the overlap",
                                     lambda r=replica: ingest_status(r, token) == 401, timeout=20)
        assert ingest_status(replica, new_token) == 200

    # Deleting the XR deletes its Secret: the controller manager's garbage collector.
    control_plane.admin.delete(cluster)
    control_plane.admin.wait_for("the Secret collected with its XR",
                                 lambda: issued_secret(control_plane, "tokens-a") is None, timeout=60)
    for replica in (first, second):
        control_plane.admin.wait_for("the token revoked", lambda r=replica: ingest_status(r, new_token) == 401)


def access_review(client, verb: str, resource: str, group: str = "", namespace: str | None = None,
                  subresource: str = "") -> bool:
    attributes = {"verb": verb, "resource": resource, "group": group, "subresource": subresource}
    if namespace:
        attributes["namespace"] = namespace
    response = client.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", json={
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    })
    return response.json()["status"]["allowed"]


ALLOWED = [
    ("list", "inferenceclusters", "modelplane.ai", None, ""),
    ("watch", "modelservices", "modelplane.ai", "team-a", ""),
    ("patch", "inferenceclusters", "modelplane.ai", None, "status"),
    ("patch", "modelservices", "modelplane.ai", "team-a", "status"),
    ("create", "secrets", "", TOKEN_NAMESPACE, ""),
    ("update", "secrets", "", TOKEN_NAMESPACE, ""),
    ("watch", "secrets", "", TOKEN_NAMESPACE, ""),
]
FORBIDDEN = [
    ("patch", "inferenceclusters", "modelplane.ai", None, ""),        # never the spec
    ("update", "modelservices", "modelplane.ai", "team-a", ""),
    ("delete", "inferenceclusters", "modelplane.ai", None, ""),
    ("delete", "secrets", "", TOKEN_NAMESPACE, ""),                    # GC deletes, not us
    ("get", "secrets", "", "team-a", ""),                              # tenants' Secrets
    ("list", "secrets", "", None, ""),                                 # cluster-wide
    ("update", "inferenceclusters", "modelplane.ai", None, "finalizers"),
    ("list", "configmaps", "", TOKEN_NAMESPACE, ""),
    ("create", "serviceaccounts", "", TOKEN_NAMESPACE, "token"),
]


def test_the_shipped_rbac_allows_what_the_aggregator_does_and_nothing_else(control_plane, aggregator_identity):
    client, _ = control_plane.service_account(TOKEN_NAMESPACE, "signal-aggregator")
    for verb, resource, group, namespace, subresource in ALLOWED:
        assert access_review(client, verb, resource, group, namespace, subresource), (verb, resource, subresource)
    for verb, resource, group, namespace, subresource in FORBIDDEN:
        assert not access_review(client, verb, resource, group, namespace, subresource), (verb, resource, subresource)
    with pytest.raises(KubeError) as refused:
        client.get("/api/v1/namespaces/default/secrets")
    assert refused.value.status_code == 403 and refused.value.reason == "Forbidden"
    # Every object the file ships is what the aggregator runs under here.
    kinds = sorted(d["kind"] for d in load_documents(RBAC))
    assert kinds == ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ServiceAccount"]


def test_missing_rights_are_reported_clearly_without_a_crash_or_a_hot_loop(control_plane, kube_aggregator, cleanup):
    """An aggregator whose account lacks the Secrets Role: the issuer cannot
    watch Secrets. It says so, keeps serving, and retries with backoff."""
    account = "signal-aggregator-no-secrets"
    control_plane.service_account_token(TOKEN_NAMESPACE, account)
    binding = cleanup({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": account},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "signal-aggregator"},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": TOKEN_NAMESPACE}],
    })
    control_plane.admin.apply(binding)
    _, kubeconfig = control_plane.service_account(TOKEN_NAMESPACE, account)
    aggregator = kube_aggregator(kubeconfig=kubeconfig, replica="no-secrets", wait_ready=False)
    aggregator.process.wait_for_log("forbidden", timeout=30)
    time.sleep(10)
    assert aggregator.process.running()
    log = aggregator.process.log_text()
    refusals = [line for line in log.splitlines() if "forbidden" in line.lower()]
    assert any("secrets" in line for line in refusals), refusals
    # Backoff, not a hot loop: the watcher's default backoff caps retries well below one a second.
    assert len(refusals) <= 15, f"{len(refusals)} refusals in ~10 s:\n" + "\n".join(refusals[-5:])
    assert aggregator.get("/healthz").status_code == 200
