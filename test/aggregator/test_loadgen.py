"""signal-loadgen against a running aggregator: what the load tool reports
sending is exactly what the aggregator answers (so its throughput numbers
measure real, kept work), over gRPC and HTTP, gzip on."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from harness.binaries import cargo_bin

TENANTS = 3


def run_loadgen(*args: str) -> dict:
    result = subprocess.run([str(cargo_bin("signal-loadgen")), "--json", *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr + result.stdout
    return json.loads(result.stdout)


@pytest.mark.parametrize("protocol,port_attr", [("grpc", "grpc_target"), ("http", "http_port")])
def test_loadgen_spans_are_all_counted(aggregator, protocol, port_attr):
    target = getattr(aggregator, port_attr)
    target = target if isinstance(target, str) else f"127.0.0.1:{target}"
    report = run_loadgen("--target", target, "--protocol", protocol, "--gzip", "--requests", "12",
                         "--concurrency", "3", "--batch-size", "500", "--tenants", str(TENANTS),
                         "--clusters", "2", "--models", "3", "--seed", "9")
    assert report["requests_ok"] == 12 and report["requests_failed"] == 0, report
    assert report["items_accepted"] == 6000 and report["items_rejected"] == 0
    sent = report["spans_generated"]
    assert sent["spans"] == 6000

    totals = {"requests": 0, "errors": 0, "input_tokens": 0, "output_tokens": 0}
    for tenant in range(TENANTS):
        groups = aggregator.signals(f"tenant-{tenant:04d}", "RequestLifecycle", group_by="")["groups"]
        for key in totals:
            totals[key] += groups[0][key]
    assert totals == {"requests": sent["spans"], "errors": sent["errors"],
                      "input_tokens": sent["input_tokens"], "output_tokens": sent["output_tokens"]}


def test_loadgen_metrics_are_ingested_and_refusals_make_it_fail(aggregator):
    report = run_loadgen("--target", aggregator.grpc_target, "--signal", "metrics", "--requests", "8",
                         "--concurrency", "2", "--batch-size", "1000")
    assert report["requests_ok"] == 8 and report["items_accepted"] == 8000
    metrics = aggregator.get("/metrics").text
    ingested = re.search(r'^modelplane_aggregator_ingested_items_total\{signal="metrics"\} (\d+)$', metrics, re.M)
    assert ingested and int(ingested.group(1)) == 8000, metrics[:2000]

    # The query API port is no OTLP/gRPC receiver: every request fails, and the exit status says so.
    result = subprocess.run([str(cargo_bin("signal-loadgen")), "--target", f"127.0.0.1:{aggregator.api_port}",
                             "--protocol", "grpc", "--requests", "2"], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
