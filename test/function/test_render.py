"""`function-signals render` prints what the gRPC handler returns (one code path)."""

import pytest

import yaml

from .fnclient import (
    FIXTURES,
    fatal_results,
    function_view_of_render,
    load_one,
    load_yaml,
    render_cases,
    response_as_function_view,
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
    if fatal_results(rsp):
        # As the Crossplane CLI: the pipeline fails, nothing is printed.
        assert (code, printed) == (1, []), stderr
        assert fatal_results(rsp)[0].message in stderr
        return
    assert code == 0, stderr
    assert function_view_of_render(printed, rsp) == response_as_function_view(req, rsp), stderr
    if case.expected is not None:
        assert load_yaml(case.expected) == printed, f"{case.expected} is stale"


def test_render_of_a_bad_spec_fails_like_crossplane_render(tmp_path):
    xr = load_one(FIXTURES / "inferencecluster-minimal.yaml")
    xr["spec"]["signals"]["kinds"][0]["sampleRate"] = 2
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(xr))
    code, printed, stderr = run_render(path)
    assert code == 1
    assert printed == []
    assert 'pipeline step "signals" returned a fatal result: spec.signals.kinds[0].sampleRate' in stderr


def test_render_of_a_missing_file_is_a_clear_error(tmp_path):
    code, printed, stderr = run_render(tmp_path / "absent.yaml")
    assert code == 2
    assert printed == []
    assert "absent.yaml" in stderr
