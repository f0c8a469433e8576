"""A real Prometheus (Debian's `prometheus`) scrapes a real signal-aggregator
on a real Redis, fed over OTLP/HTTP with a known fleet (fleet.py), and loads
the shipped alert rules. Every query of every dashboard panel, read out of
package/monitoring/dashboards/fleet.json (so a new panel is covered without
touching this test), must return series, with the values the fleet makes
known; the alerts that must be pending for this fleet are, and no other."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest
import requests

from harness.aggregator import Aggregator
from harness.binaries import REPO_ROOT
from harness.procs import Process, free_port
from harness.redis import RedisServer

from . import fleet
from .fleet import FLEET, GHOST

MONITORING = REPO_ROOT / "package" / "monitoring"
DASHBOARD = MONITORING / "dashboards" / "fleet.json"
RULES = MONITORING / "alerts" / "rules.yaml"
JOB = "signal-aggregator"

# What each Grafana variable becomes in the test: every cluster and model,
# the p99, the job the test's Prometheus scrapes, a rate window of 60 scrapes.
VARIABLES = {
    "cluster": ".*",
    "model": ".*",
    "quantile": "0.99",
    "job": JOB,
    "__rate_interval": "1m",
}

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None,
                                reason="Debian's prometheus is installed by test/run-all.sh")


def panels(dashboard: dict) -> list[dict]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # collapsed rows hold theirs
    return [p for p in out if p.get("type") != "row"]


def substitute(expr: str) -> str:
    def one(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        assert name in VARIABLES, f"{name!r} in {expr!r}: a dashboard variable the test does not know"
        return VARIABLES[name]
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", one, expr)


def dashboard_queries() -> list[tuple[str, str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables - {"datasource"} <= set(VARIABLES), variables
    return [(p["title"], t["refId"], t["expr"]) for p in panels(dashboard) for t in p["targets"]]


def labels(**kv: str) -> frozenset:
    return frozenset(kv.items())


def by_cluster(value) -> dict:
    return {labels(cluster=c.name): value(c) for c in FLEET}


def median(value) -> dict:
    return {labels(): fleet.fleet_median([value(c) for c in FLEET])}


TTFT_MEDIAN = fleet.fleet_median([c.ttft for c in FLEET])
SKUS = sorted({c.sku for c in FLEET})
KINDS = ("RequestLifecycle", "Capacity", "ColdStart", "Cost")

# (panel title, refId) → the exact series and values this fleet gives.
# Panels not listed (per-second rates, per-replica health) are checked for
# series only, plus what test_alerts_and_health checks.
EXPECTED = {
    ("TTFT p$quantile per cluster vs fleet median", "A"): by_cluster(lambda c: c.ttft),
    ("TTFT p$quantile per cluster vs fleet median", "B"): median(lambda c: c.ttft),
    ("TPOT p$quantile per cluster vs fleet median", "A"): by_cluster(lambda c: c.tpot),
    ("TPOT p$quantile per cluster vs fleet median", "B"): median(lambda c: c.tpot),
    ("End-to-end latency p$quantile per cluster vs fleet median", "A"): by_cluster(lambda c: c.e2e),
    ("End-to-end latency p$quantile per cluster vs fleet median", "B"): median(lambda c: c.e2e),
    ("TTFT p$quantile ratio to the fleet median", "A"): by_cluster(lambda c: c.ttft / TTFT_MEDIAN),
    ("Queue wait p$quantile per cluster", "A"): by_cluster(lambda c: fleet.QUEUE_SECONDS),
    ("Queue depth per cluster", "A"): by_cluster(lambda c: c.queue_depth),
    ("Error rate per cluster", "A"): by_cluster(lambda c: c.errors / fleet.REQUESTS),
    ("Requests per second per cluster", "A"): by_cluster(lambda c: fleet.REQUESTS / 300),
    ("Prefix-cache hit rate per cluster", "A"): by_cluster(lambda c: c.cached_tokens / fleet.INPUT_TOKENS),
    ("KV-cache utilization per cluster and tier", "A"): {
        **{labels(cluster=c.name, tier="hbm"): c.kv_hbm for c in FLEET},
        **{labels(cluster=c.name, tier="cpu"): fleet.KV_CPU for c in FLEET},
    },
    ("GPUs by SKU", "A"): {labels(cluster=c.name, sku=c.sku): c.gpus for c in FLEET},
    ("GPUs by SKU", "B"): {labels(cluster=c.name, sku=c.sku): c.allocated for c in FLEET},
    ("GPUs by SKU", "C"): {labels(sku=s): sum(c.gpus for c in FLEET if c.sku == s) for s in SKUS},
    ("Free GPUs by SKU", "A"): {labels(cluster=c.name, sku=c.sku): c.gpus - c.allocated for c in FLEET},
    ("Replicas by state", "A"): {labels(cluster=c.name, state=s): n
                                  for c in FLEET for s, n in fleet.REPLICAS.items()},
    ("Cold-start phases p$quantile", "A"): {
        **{labels(cluster=c.name, phase="model_load"): c.model_load for c in FLEET},
        **{labels(cluster=c.name, phase="image_load"): c.image_load for c in FLEET},
    },
    ("$ per token per cluster", "A"): by_cluster(lambda c: c.dollars / c.tokens),
    ("GPU-hours and dollars per cluster", "A"): {labels(cluster=c.name, sku=c.sku): c.gpu_seconds / 3600
                                                 for c in FLEET},
    ("GPU-hours and dollars per cluster", "B"): by_cluster(lambda c: c.dollars),
    ("Failures by root cause", "A"): {labels(cluster=c.name, sku=c.sku, cause=cause): n
                                      for c in FLEET for cause, n in c.failures.items()},
    ("Agents not reporting", "A"): {labels(cluster=GHOST): 1.0},
    ("Series reporting per cluster and kind", "A"): {
        **{labels(cluster=c.name, kind=k): 1.0 for c in FLEET for k in KINDS},
        **{labels(cluster=c.name, kind="Reliability"): 1.0 for c in FLEET if c.failures},
    },
}

# (alertname, identifying labels) that must be pending or firing for this fleet, and no other.
EXPECTED_ALERTS = {
    ("ModelplaneHighErrorRate", labels(cluster="eu-west-1", model=fleet.MODEL)),
    ("ModelplaneTTFTDegradedVsFleet", labels(cluster="eu-west-1", model=fleet.MODEL)),
    ("ModelplaneQueueBacklog", labels(cluster="eu-west-1", model=fleet.MODEL)),
    ("ModelplaneKVCacheSaturated", labels(cluster="eu-west-1", model=fleet.MODEL)),
    ("ModelplaneAgentNotReporting", labels(cluster=GHOST)),
    ("ModelplaneDroppedEvents", labels(signal="metrics", reason="unsupported_metric_type")),
}


class Prometheus:
    """Debian's prometheus on a free loopback port with its own config and storage."""

    def __init__(self, workdir: Path, target: str) -> None:
        self.port = free_port()
        config = workdir / "prometheus.yml"
        config.write_text(json.dumps({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [target]}]}],
        }))
        self.process = Process([
            shutil.which("prometheus"), f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle", "--log.level=warn",
        ], name="prometheus")
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Prometheus":
        self.process.start()
        self.process.wait_for_port(self.port, timeout=60)
        wait_until("Prometheus ready", lambda: requests.get(f"{self.url}/-/ready", timeout=5).ok, timeout=60)
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.stop()

    def query(self, expr: str) -> list[dict]:
        response = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", (expr, body)
        return body["data"]["result"]

    def alerts(self) -> list[dict]:
        return requests.get(f"{self.url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]


def wait_until(what: str, condition, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def series(result: list[dict]) -> dict[frozenset, float]:
    return {frozenset((k, v) for k, v in r["metric"].items() if k != "__name__"): float(r["value"][1])
            for r in result}


@pytest.fixture(scope="module")
def scraped_fleet(tmp_path_factory):
    """Aggregator (Redis store) scraped by Prometheus, fed the fleet; yields
    once the ghost cluster has come and gone from both."""
    workdir = tmp_path_factory.mktemp("monitoring")
    with RedisServer() as redis, \
            Aggregator("--redis-flush-interval", "200ms", redis_url=redis.url,
                       wal_dir=workdir / "wal") as aggregator, \
            Prometheus(workdir, f"127.0.0.1:{aggregator.api_port}") as prometheus:
        wait_until("the first scrape", lambda: prometheus.query(f'up{{job="{JOB}"}} == 1'))
        fleet.send_ghost(aggregator.otlp_http)
        fleet.send_fleet(aggregator.otlp_http)
        fleet.send_rejected(aggregator.otlp_http)
        ghost = f'modelplane_aggregator_reporting_series{{cluster="{GHOST}"}}'
        # Seen reporting, then gone (its minute left /metrics' 5-minute window).
        wait_until("the ghost cluster scraped", lambda: prometheus.query(ghost))
        wait_until("the ghost cluster off /metrics", lambda: GHOST not in aggregator.metrics())
        wait_until("the ghost cluster stale in Prometheus", lambda: not prometheus.query(ghost))
        wait_until("every cluster scraped", lambda: len(prometheus.query(
            'group by (cluster) (modelplane_aggregator_reporting_series)')) == len(FLEET))
        yield aggregator, prometheus


@pytest.mark.parametrize("title,ref,expr", dashboard_queries(),
                         ids=[f"{t} [{r}]" for t, r, _ in dashboard_queries()])
def test_panel_query(scraped_fleet, title, ref, expr):
    _, prometheus = scraped_fleet
    query = substitute(expr)
    got = wait_until(f"series for {query}", lambda: series(prometheus.query(query)), timeout=30)
    expected = EXPECTED.get((title, ref))
    if expected is None:
        assert all(v == v for v in got.values()), got  # no NaN
        return
    assert set(got) == set(expected), (query, got)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-6), (query, dict(key), got[key], value)


def test_every_expectation_names_a_panel():
    queries = {(title, ref) for title, ref, _ in dashboard_queries()}
    assert set(EXPECTED) <= queries, set(EXPECTED) - queries


def test_alerts_and_health(scraped_fleet):
    aggregator, prometheus = scraped_fleet
    up = series(prometheus.query(f'up{{job="{JOB}"}}'))
    assert list(up.values()) == [1.0], up
    for name in ("modelplane_aggregator_store_ready", "modelplane_aggregator_signals_readable",
                 "signal_aggregator_redis_up"):
        assert list(series(prometheus.query(name)).values()) == [1.0], name
    dropped = series(prometheus.query('modelplane_aggregator_dropped_items_total'))
    assert dropped[labels(job=JOB, instance=f"127.0.0.1:{aggregator.api_port}", signal="metrics",
                          reason="unsupported_metric_type")] == fleet.UNSUPPORTED_POINTS, dropped

    def active() -> set:
        out = set()
        for alert in prometheus.alerts():
            identity = {k: v for k, v in alert["labels"].items()
                        if k not in ("alertname", "severity", "job", "instance")}
            out.add((alert["labels"]["alertname"], frozenset(identity.items())))
        return out

    # The rules evaluate every second; pending (their `for` is minutes) is enough.
    try:
        wait_until("the expected alerts", lambda: active() >= EXPECTED_ALERTS, timeout=60)
    finally:
        assert active() == EXPECTED_ALERTS, sorted((a, sorted(l)) for a, l in active())
