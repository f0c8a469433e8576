"""`function-signals render` prints what the gRPC handler returns (one code path)."""

import pytest

import yaml

from .fnclient import (
    FIXTURES,
    fatal_results,
    load_one,
    load_yaml,
    render_cases,
    response_as_render_documents,
    run_render,
)

CASES = render_cases()


def test_examples_and_fixtures_were_found():
    ids = [c.id for c in CASES]
    assert len([i for i in ids if i.startswith("apis/tests/fixtures/")]) >= 5, ids
    assert len([i for i in ids if i.startswith("examples/")]) >= 1, ids


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_render_prints_the_grpc_response(server, case):
    req = case.request(tag="render")
    rsp = server.run(req)
    code, printed, stderr = run_render(*case.render_argv())
    from_grpc = response_as_render_documents(req, rsp)
    assert printed == from_grpc, stderr
    assert code == (1 if fatal_results(rsp) else 0), stderr
    if case.expected is not None:
        assert load_yaml(case.expected) == from_grpc, f"{case.expected} is stale"


def test_render_of_a_bad_spec_prints_the_fatal_result_and_exits_1(tmp_path):
    xr = load_one(FIXTURES / "inferencecluster-minimal.yaml")
    xr["spec"]["signals"]["kinds"][0]["sampleRate"] = 2
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(xr))
    code, printed, _ = run_render(path)
    assert code == 1
    results = [d for d in printed if d.get("kind") == "Result"]
    assert len(results) == 1
    assert results[0]["severity"] == "SEVERITY_FATAL"
    assert "spec.signals.kinds[0].sampleRate" in results[0]["message"]


def test_render_of_a_missing_file_is_a_clear_error(tmp_path):
    code, printed, stderr = run_render(tmp_path / "absent.yaml")
    assert code == 2
    assert printed == []
    assert "absent.yaml" in stderr
