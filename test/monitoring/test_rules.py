"""The alert rules with the real promtool: `promtool check rules` on the rule
file and on the PrometheusRule's groups, and `promtool test rules`
(rules_test.yaml) proving every alert fires on series that should trigger it
and stays quiet on series that should not. The PrometheusRule object is
generated from the plain rule file (one source): UPDATE_MONITORING=1 rewrites
it, and the test fails when it is stale."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from harness.binaries import REPO_ROOT

ALERTS = REPO_ROOT / "package" / "monitoring" / "alerts"
RULES = ALERTS / "rules.yaml"
PROMETHEUS_RULE = ALERTS / "prometheusrule.yaml"
UNIT_TESTS = Path(__file__).parent / "rules_test.yaml"

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None,
                                reason="promtool comes with Debian's prometheus (test/run-all.sh)")


class _Literal(str):
    pass


def _block_dumper() -> type[yaml.SafeDumper]:
    class Dumper(yaml.SafeDumper):
        pass

    def literal(dumper: yaml.SafeDumper, value: _Literal):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")

    Dumper.add_representer(_Literal, literal)
    return Dumper


def _literal_exprs(groups: list[dict]) -> list[dict]:
    for group in groups:
        for rule in group["rules"]:
            if "\n" in rule["expr"]:
                rule["expr"] = _Literal(rule["expr"])
    return groups


def prometheus_rule_text() -> str:
    """The PrometheusRule for the Prometheus Operator: the rule file's groups as its spec."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    document = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "modelplane-signals",
            "labels": {"app.kubernetes.io/name": "signal-aggregator",
                       "app.kubernetes.io/part-of": "modelplane-signals"},
        },
        "spec": {"groups": _literal_exprs(groups)},
    }
    header = ("# Generated from rules.yaml (the source; promtool reads it) by\n"
              "# test/monitoring/test_rules.py: UPDATE_MONITORING=1 pytest test/monitoring rewrites it.\n")
    return header + yaml.dump(document, Dumper=_block_dumper(), sort_keys=False, width=120)


def promtool(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=cwd, timeout=120)
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def alert_names() -> list[str]:
    return [r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r]


def test_prometheus_rule_is_generated_from_the_rule_file():
    wanted = prometheus_rule_text()
    if os.environ.get("UPDATE_MONITORING") == "1":
        PROMETHEUS_RULE.write_text(wanted)
    assert PROMETHEUS_RULE.read_text() == wanted, (
        f"{PROMETHEUS_RULE} is stale: UPDATE_MONITORING=1 pytest test/monitoring/test_rules.py")
    rule = yaml.safe_load(PROMETHEUS_RULE.read_text())
    assert rule["spec"] == yaml.safe_load(RULES.read_text())


def test_promtool_check_rules(tmp_path):
    assert "SUCCESS: 9 rules found" in promtool("check", "rules", str(RULES))
    # The operator hands Prometheus the PrometheusRule's groups: the same check on them.
    spec = tmp_path / "from-prometheusrule.yaml"
    spec.write_text(yaml.safe_dump(yaml.safe_load(PROMETHEUS_RULE.read_text())["spec"]))
    promtool("check", "rules", str(spec))


def test_promtool_test_rules():
    out = promtool("test", "rules", UNIT_TESTS.name, cwd=UNIT_TESTS.parent)
    assert "SUCCESS" in out, out


def test_every_alert_has_a_firing_and_a_quiet_case():
    """Each alert has a case with exactly the alerts it should raise (so a quiet
    series that fired would fail) and a case expecting none."""
    tests = yaml.safe_load(UNIT_TESTS.read_text())["tests"]
    cases: dict[str, list[list]] = {}
    for group in tests:
        for case in group.get("alert_rule_test", []):
            cases.setdefault(case["alertname"], []).append(case.get("exp_alerts") or [])
    for name in alert_names():
        assert any(cases.get(name, [])), f"{name}: no case where it fires"
        assert any(not c for c in cases.get(name, [])), f"{name}: no case where it stays quiet"
    assert set(cases) == set(alert_names())
