"""The Crossplane function protocol, observed from outside the binary."""

import re

import grpc
import requests
import yaml
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from .fnclient import (
    FunctionServer,
    condition,
    desired_resources,
    fatal_results,
    manifest,
    request,
    single_cluster_input,
)

SERVICE = "apiextensions.fn.proto.v1.FunctionRunnerService"


def test_copies_the_tag_and_sets_the_default_ttl(server, full_cluster):
    rsp = server.run(request(full_cluster, tag="tag-8f2c"))
    assert rsp.meta.tag == "tag-8f2c"
    assert rsp.meta.ttl.seconds == 60
    assert not fatal_results(rsp)


def test_ttl_comes_from_the_flag_and_the_step_input_wins(full_cluster):
    with FunctionServer("--ttl", "5m") as srv:
        assert srv.run(request(full_cluster)).meta.ttl.seconds == 300
        with_input = request(full_cluster, step_input=single_cluster_input(ttl="30s"))
        assert srv.run(with_input).meta.ttl.seconds == 30


def test_passes_through_desired_state_from_earlier_steps(server, full_cluster):
    earlier = {
        "apiVersion": "s3.aws.m.upbound.io/v1beta1",
        "kind": "Bucket",
        "metadata": {"name": "model-artifacts"},
        "spec": {"forProvider": {"region": "eu-west-1", "tags": {"n": 3, "nested": {"x": [1, "two"]}}}},
    }
    desired_xr = {
        "apiVersion": "modelplane.ai/v1alpha1",
        "kind": "InferenceCluster",
        "status": {"gateway": {"address": "203.0.113.7"}},
    }
    context = {"apiextensions.crossplane.io/environment": {"region": "eu-west-1"}}
    req = request(
        full_cluster,
        desired={"model-artifacts": earlier},
        desired_composite=desired_xr,
        context=context,
    )
    rsp = server.run(req)
    desired = desired_resources(rsp)
    assert desired["model-artifacts"] == earlier
    assert rsp.desired.resources["model-artifacts"] == req.desired.resources["model-artifacts"]
    assert rsp.context == req.context
    status = rsp.desired.composite.resource["status"]
    assert status["gateway"]["address"] == "203.0.113.7", "the earlier step's XR status must survive"
    assert list(status["signals"]["enabledKinds"]) == [
        "RequestLifecycle", "PrefixHash", "Capacity", "ColdStart", "Cost", "Reliability",
    ]
    assert len(desired) > 1, "the agent is rendered next to the passed-through resource"


def test_multi_cluster_wraps_every_agent_resource_in_an_object(server, full_cluster):
    rsp = server.run(request(full_cluster))
    desired = {k: v for k, v in desired_resources(rsp).items()}
    assert desired, "an XR with a ProviderConfig gets an agent"
    for key, obj in desired.items():
        assert key.startswith("signals-agent-"), key
        assert obj["apiVersion"] == "kubernetes.m.crossplane.io/v1alpha1", key
        assert obj["kind"] == "Object", key
        assert obj["spec"]["providerConfigRef"]["name"] == "eu-west-1", key
        assert "name" not in obj["metadata"], f"{key}: composed resources are named by Crossplane"
    kinds = {manifest(o)["kind"] for o in desired.values()}
    assert {"ServiceAccount", "ConfigMap", "Deployment", "Service"} <= kinds
    assert condition(rsp, "AgentReady").reason == "Creating"


def test_single_cluster_mode_renders_plain_resources(server, full_cluster):
    rsp = server.run(request(full_cluster, step_input=single_cluster_input()))
    desired = desired_resources(rsp)
    kinds = sorted(o["kind"] for o in desired.values())
    assert "Object" not in kinds
    assert {"ServiceAccount", "ConfigMap", "Deployment", "Service"} <= set(kinds)
    deployment = next(o for o in desired.values() if o["kind"] == "Deployment")
    assert deployment["metadata"]["namespace"] == "modelplane-system"
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "otel/opentelemetry-collector-k8s:0.140.0"
    token_env = next(e for e in container["env"] if e["name"] == "MODELPLANE_INGEST_TOKEN")
    secret_ref = token_env["valueFrom"]["secretKeyRef"]
    assert (secret_ref["name"], secret_ref["key"]) == ("eu-west-1.ingest-token", "token")
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert any("checksum" in name for name in annotations), annotations
    service = next(o for o in desired.values() if o["kind"] == "Service")
    assert sorted(int(p["port"]) for p in service["spec"]["ports"]) == [4317, 4318]


def test_config_change_changes_the_checksum(server, full_cluster):
    def checksum(xr):
        rsp = server.run(request(xr, step_input=single_cluster_input()))
        deployment = next(o for o in desired_resources(rsp).values() if o["kind"] == "Deployment")
        return {k: v for k, v in deployment["spec"]["template"]["metadata"]["annotations"].items() if "checksum" in k}

    before = checksum(full_cluster)
    assert checksum(full_cluster) == before, "same spec, same checksum"
    full_cluster["spec"]["signals"]["kinds"][0]["sampleRate"] = 0.5
    assert checksum(full_cluster) != before


def test_waits_for_a_provider_config_before_rendering(server, full_cluster):
    del full_cluster["status"]
    rsp = server.run(request(full_cluster, tag="wait"))
    assert rsp.meta.tag == "wait"
    assert dict(rsp.desired.resources) == {}
    ready = condition(rsp, "AgentReady")
    assert ready.status == fnv1.STATUS_CONDITION_FALSE
    assert ready.reason == "WaitingForProviderConfig"
    assert "providerConfigRef" in ready.message
    assert not fatal_results(rsp)


def test_readiness_follows_observed_objects(server, full_cluster):
    first = server.run(request(full_cluster))
    keys = sorted(first.desired.resources)
    observed = {}
    for key in keys:
        obj = desired_resources(first)[key]
        obj["metadata"]["name"] = f"{key}-x7k2p"
        obj["status"] = {"conditions": [{"type": "Ready", "status": "True", "reason": "Available"}]}
        observed[key] = obj
    not_ready = keys[0]
    observed[not_ready]["status"]["conditions"][0]["status"] = "False"
    rsp = server.run(request(full_cluster, observed=observed))
    for key in keys:
        want = fnv1.READY_FALSE if key == not_ready else fnv1.READY_TRUE
        assert rsp.desired.resources[key].ready == want, key
    assert condition(rsp, "AgentReady").status == fnv1.STATUS_CONDITION_FALSE

    observed[not_ready]["status"]["conditions"][0]["status"] = "True"
    rsp = server.run(request(full_cluster, observed=observed))
    assert all(rsp.desired.resources[k].ready == fnv1.READY_TRUE for k in keys)
    ready = condition(rsp, "AgentReady")
    assert (ready.status, ready.reason) == (fnv1.STATUS_CONDITION_TRUE, "Available")


def test_bad_spec_is_a_fatal_result_naming_the_field(server, full_cluster):
    full_cluster["spec"]["signals"]["kinds"][0]["sampleRate"] = 2
    desired = {"earlier": {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}}}
    rsp = server.run(request(full_cluster, tag="bad", desired=desired))
    assert rsp.meta.tag == "bad"
    fatal = fatal_results(rsp)
    assert len(fatal) == 1 and len(rsp.results) == 1
    assert "spec.signals.kinds[0].sampleRate" in fatal[0].message
    assert "between 0 and 1" in fatal[0].message
    assert desired_resources(rsp) == desired, "nothing half-rendered; earlier steps' state kept"


def test_each_kind_of_bad_input_is_fatal_with_its_field(server, full_cluster, traces_service):
    cases = []
    dup = full_cluster | {"spec": {"signals": {"kinds": [{"name": "Cost"}, {"name": "Cost"}]}}}
    cases.append(("duplicate kind", request(dup), "spec.signals.kinds[1].name"))
    unknown = full_cluster | {"spec": {"signals": {"kinds": [{"name": "Latency"}]}}}
    cases.append(("unknown kind", request(unknown), "spec.signals.kinds[0].name"))
    retention = full_cluster | {"spec": {"signals": {"retention": {"sketches": "1w"}}}}
    cases.append(("retention", request(retention), "spec.signals.retention.sketches"))
    header = dict(traces_service)
    header["spec"]["observability"]["traces"]["headers"]["Authorization"]["value"] = "literal"
    cases.append(("header with both", request(header), "spec.observability.traces.headers[Authorization]"))
    bad_input = single_cluster_input(mode="Sideways")
    cases.append(("input mode", request(full_cluster, step_input=bad_input), "mode"))
    typo_input = single_cluster_input(colectorImage="x")
    cases.append(("input typo", request(full_cluster, step_input=typo_input), "colectorImage"))
    wrong_kind = {"apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelDeployment", "metadata": {"name": "x"}}
    cases.append(("wrong kind", request(wrong_kind), "ModelDeployment"))
    for name, req, needle in cases:
        rsp = server.run(req)
        fatal = fatal_results(rsp)
        assert len(fatal) == 1, f"{name}: {list(rsp.results)}"
        assert needle in fatal[0].message, f"{name}: {fatal[0].message!r} does not name {needle}"
        assert rsp.meta.ttl.seconds > 0, name


def test_model_service_policy_lands_in_status_without_secret_values(server, traces_service):
    traces = traces_service["spec"]["observability"]["traces"]
    traces["endpoint"] = "https://cloud.langfuse.com/api/public/otel"
    traces["headers"]["x-api-key"] = {"value": "SECRET-literal-header"}
    rsp = server.run(request(traces_service, tag="ms"))
    assert not fatal_results(rsp)
    policy = rsp.desired.composite.resource["status"]["observability"]["policy"]
    assert policy["metricsScope"] == "Fleet"
    assert policy["tracesEnabled"] is True
    assert policy["tracesEndpoint"] == "https://cloud.langfuse.com/api/public/otel"
    assert list(policy["tracesHeaderNames"]) == ["Authorization", "x-api-key", "x-langfuse-ingestion-version"]
    assert policy["tracesSamplingRatio"] == 0.1
    assert condition(rsp, "ObservabilityPolicy").status == fnv1.STATUS_CONDITION_TRUE


def test_a_traces_endpoint_carrying_credentials_is_refused_without_echoing_them(server, traces_service):
    traces = traces_service["spec"]["observability"]["traces"]
    traces["endpoint"] = "https://pk-lf-1:sk-lf-SECRET@cloud.langfuse.com/api/public/otel?key=SECRET"
    rsp = server.run(request(traces_service, tag="ms"))
    fatal = fatal_results(rsp)
    assert len(fatal) == 1
    assert "without user-info, query or fragment" in fatal[0].message
    assert "credentials go in headers from a Secret" in fatal[0].message
    assert not rsp.desired.resources
    assert b"SECRET" not in rsp.SerializeToString()


def test_responses_are_deterministic(server, full_cluster):
    req = request(full_cluster, tag="same")
    first = server.run(req).SerializeToString(deterministic=True)
    for _ in range(3):
        assert server.run(req).SerializeToString(deterministic=True) == first


def test_health_check_reports_serving(server):
    with server.channel() as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        for service in ("", SERVICE):
            rsp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert rsp.status == health_pb2.HealthCheckResponse.SERVING, service


def test_reflection_lists_the_function_runner_service(server):
    with server.channel() as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
        names = {s.name for r in responses for s in r.list_services_response.service}
    assert SERVICE in names


def test_counts_handled_calls_in_prometheus_metrics(full_cluster):
    handled_ok = re.compile(
        r'^grpc_server_handled_total\{[^}]*grpc_service="apiextensions\.fn\.proto\.v1\.FunctionRunnerService"'
        r'[^}]*grpc_method="RunFunction"[^}]*grpc_code="OK"[^}]*\} (\d+)$',
        re.MULTILINE,
    )
    with FunctionServer() as srv:
        for _ in range(3):
            srv.run(request(full_cluster))
        full_cluster["spec"]["signals"]["kinds"][0]["sampleRate"] = 2
        srv.run(request(full_cluster))  # a Fatal result is still an OK call
        body = requests.get(f"http://127.0.0.1:{srv.metrics_port}/metrics", timeout=5).text
    counts = handled_ok.findall(body)
    assert counts == ["4"], body[:2000]


def test_unknown_method_is_a_grpc_error_not_a_crash(server, full_cluster):
    with server.channel() as ch:
        call = ch.unary_unary("/apiextensions.fn.proto.v1.FunctionRunnerService/Nope")
        try:
            call(b"", timeout=5)
            raise AssertionError("an unknown method must fail")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNIMPLEMENTED
    assert server.run(request(full_cluster)).meta.ttl.seconds == 60


def test_collector_config_is_wired_and_the_token_only_travels_by_secret_ref(server, full_cluster):
    rsp = server.run(request(full_cluster, step_input=single_cluster_input()))
    desired = desired_resources(rsp)
    config_map = next(o for o in desired.values() if o["kind"] == "ConfigMap")
    (config_text,) = config_map["data"].values()
    config = yaml.safe_load(config_text)
    for pipeline_name, pipeline in config["service"]["pipelines"].items():
        for section in ("receivers", "processors", "exporters"):
            for component in pipeline.get(section, []):
                assert component in config[section], f"{pipeline_name} uses undefined {section[:-1]} {component}"
    (exporter,) = [e for name, e in config["exporters"].items() if name.startswith("otlp_grpc")]
    assert exporter["endpoint"] == "signal-aggregator.modelplane-system.svc:65535"
    assert exporter["headers"]["authorization"] == "Bearer ${env:MODELPLANE_INGEST_TOKEN}"
    deployment = next(o for o in desired.values() if o["kind"] == "Deployment")
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        for env in container.get("env", []):
            if env["name"] == "MODELPLANE_INGEST_TOKEN":
                assert "value" not in env and "secretKeyRef" in env["valueFrom"]


def test_sigterm_shuts_down_cleanly(full_cluster):
    srv = FunctionServer()
    with srv:
        assert srv.run(request(full_cluster)).meta.ttl.seconds == 60
        assert srv.process.stop(timeout=10) == 0, srv.process.log_text()
